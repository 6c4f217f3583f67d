/**
 * A rolling deploy on a shared store: while an instance that does not have a task's tool (the old
 * release) runs beside the task, it leaves the task alone instead of taking it over and failing it
 * with "No handler is registered"; an instance that has the tool (the new release) takes it over
 * and finishes it. On an exclusive store (one process) a task whose tool is gone still ends failed
 * at once: nobody else could ever run it.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, it } from 'node:test';
import * as z from 'zod';
import { createTaskServer, silentLogger, type TaskServer } from '../src/index.js';
import { until } from './helpers/until.js';

const dir = mkdtempSync(join(tmpdir(), 'mcp-tasks-rolling-'));
const servers: TaskServer[] = [];
after(async () => {
  for (const server of servers) await server.close();
  rmSync(dir, { recursive: true, force: true });
});

/** A server on `store`, with the `deploy_v2` tool (a question) when `withTool`. */
function instance(store: string, withTool: boolean): TaskServer {
  const server = createTaskServer({ store, logger: silentLogger, runtime: { leaseMs: 300 } });
  servers.push(server);
  server.registerTool('health', { description: 'Always there', inputSchema: z.object({}), taskSupport: 'optional' }, async () => ({ content: [] }));
  if (withTool)
    server.registerTool('deploy_v2', { description: 'New in this release', inputSchema: z.object({}), taskSupport: 'optional' }, async (_args, ctx) => {
      const answer = await ctx.elicit('Ship it?', { type: 'object', properties: { ok: { type: 'boolean' } }, required: ['ok'] });
      return { content: [{ type: 'text', text: `shipped: ${String(answer.content?.ok)}` }] };
    });
  return server;
}

it('an instance without the tool leaves the task to one that has it (shared store)', async () => {
  const store = `sqlite:${join(dir, 'shared.db')}?shared=true`;
  const creator = instance(store, true);
  await creator.start();
  const task = await creator.runtime.submit({ tool: 'deploy_v2', arguments: {}, owner: null, errorResultStatus: 'failed' });
  await until(async () => (await creator.runtime.get(task.taskId, null)).status === 'input_required', { what: 'the question' });
  await creator.close(); // its lease is given back: the others may take the task at once

  const old = instance(store, false);
  await old.start();
  await new Promise((resolve) => setTimeout(resolve, 1500)); // several heartbeats (leaseMs 300)
  const meanwhile = await old.runtime.get(task.taskId, null);
  assert.equal(meanwhile.status, 'input_required', `the old release must not fail it: ${meanwhile.statusMessage ?? ''}`);

  const next = instance(store, true);
  await next.start();
  const key = Object.keys((await next.runtime.get(task.taskId, null)).inputRequests)[0]!;
  await next.runtime.provideInput(task.taskId, key, { action: 'accept', content: { ok: true } }, null);
  const done = await until(
    async () => {
      const t = await next.runtime.get(task.taskId, null);
      return t.status === 'completed' ? t : undefined;
    },
    { what: 'the new release to finish it' },
  );
  assert.deepEqual(done.outcome, { type: 'result', result: { content: [{ type: 'text', text: 'shipped: true' }] } });
});

it('on an exclusive store a task whose tool is gone ends failed, naming the tool', async () => {
  const store = `sqlite:${join(dir, 'alone.db')}`;
  const before = instance(store, true);
  await before.start();
  const task = await before.runtime.submit({ tool: 'deploy_v2', arguments: {}, owner: null, errorResultStatus: 'failed' });
  await until(async () => (await before.runtime.get(task.taskId, null)).status === 'input_required');
  await before.close();
  const after = instance(store, false);
  await after.start();
  let last = '';
  const ended = await until(
    async () => {
      const t = await after.runtime.get(task.taskId, null);
      last = JSON.stringify(t);
      return t.status === 'failed' ? t : undefined;
    },
    { what: () => last },
  );
  assert.match(JSON.stringify(ended.outcome), /deploy_v2/);
});
