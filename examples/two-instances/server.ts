// One of several instances sharing a PostgreSQL task store (see README.md here).
// Env: STORE (the same for every instance), PORT, INSTANCE (a name per instance), LEASE_MS, BUILD_LOG.
import { appendFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as z from 'zod';
import { createTaskServer } from '../../src/index.js'; // in your project: from 'mcp-tasks'

const instance = process.env.INSTANCE ?? `instance-${process.pid}`;
const server = createTaskServer({
  store: process.env.STORE ?? 'postgres://postgres@127.0.0.1:5432/postgres?schema=two_instances',
  // A task runs on the instance holding its lease; when that instance dies, another takes it over after leaseMs.
  runtime: { instanceId: instance, leaseMs: Number(process.env.LEASE_MS ?? 5_000) },
});

server.registerTool(
  'deploy',
  {
    description: 'Builds a version, waits for the deploy window, asks for approval, deploys',
    inputSchema: z.object({ version: z.string(), windowSeconds: z.number().min(0).max(86_400).default(5) }),
    taskSupport: 'optional',
  },
  async ({ version, windowSeconds }, ctx) => {
    const build = await ctx.step('build', () => {
      appendFileSync(process.env.BUILD_LOG ?? join(tmpdir(), 'deploy-builds.log'), `${version} built on ${instance}\n`); // a side effect: once per task
      return `${version}+${ctx.taskId.slice(0, 8)}`;
    });
    await ctx.sleep(windowSeconds * 1_000); // a durable timer: fires on whichever instance holds the task by then
    const answer = await ctx.elicit(`Deploy ${build}?`, { type: 'object', properties: { approve: { type: 'boolean' } }, required: ['approve'] });
    const approved = answer.action === 'accept' && answer.content?.approve === true;
    return { content: [{ type: 'text', text: `${approved ? 'Deployed' : 'Not deployed:'} ${build} (finished on ${instance})` }] };
  },
);

const http = await server.listen({ port: Number(process.env.PORT ?? 3000) });
console.log(http.url);
server.closeOnSignals(); // SIGTERM releases this instance's leases: the others take its tasks over at once
