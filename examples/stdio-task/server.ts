// A durable task server on stdio, for MCP hosts that start servers as a command (see the README).
// Logs go to stderr: stdout belongs to the protocol. STORE env: the task store (default SQLite).
import * as z from 'zod';
import { createLogger, createTaskServer } from '../../src/index.js'; // in your project: from 'mcp-tasks'

const server = createTaskServer({ store: process.env.STORE ?? 'sqlite:.mcp-tasks/stdio.db', logger: createLogger({ level: 'warn' }) });

server.registerTool(
  'count_to',
  {
    description: 'Counts to n, one durable step a number, asking before it starts',
    inputSchema: z.object({ n: z.number().int().min(1).max(100) }),
    taskSupport: 'optional',
  },
  async ({ n }, ctx) => {
    const go = await ctx.elicit(`Count to ${n}?`, { type: 'object', properties: { go: { type: 'boolean' } }, required: ['go'] });
    if (go.action !== 'accept' || go.content?.go !== true) return { content: [{ type: 'text', text: 'Not counted.' }] };
    for (let i = 1; i <= n; i++) await ctx.step(`count-${i}`, () => i).then((v) => ctx.progress(v, n));
    return { content: [{ type: 'text', text: `Counted to ${n}.` }] };
  },
);

const { closed } = await server.serveStdio(); // the client closing stdin ends the connection
await closed;
await server.close();
