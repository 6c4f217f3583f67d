import { McpServer } from '@modelcontextprotocol/server';
import * as z from 'zod';
import { TaskRpcError } from '../../src/core/errors.js';
import { silentLogger } from '../../src/core/log.js';
import { TaskRuntime } from '../../src/runtime/runtime.js';
import { startHttpServer } from '../../src/server/http.js';
import { openStore } from '../../src/store/open-store.js';
import { McpTasks } from '../../src/wire/mcp-tasks.js';
import { TaskSubscriptions } from '../../src/wire/rev2026/subscriptions.js';

const text = (t: string) => ({ content: [{ type: 'text', text: t }] });

/**
 * An HTTP MCP server with small task tools that exercise each wire behaviour:
 * echo (optional), ask (optional, elicits), slow (optional, sleeps), soft_fail (isError result),
 * rpc_fail (JSON-RPC error), report (required), and the ordinary tool plain.
 */
export async function startTestServer(storeUrl: string, options: { port?: number; list?: boolean } = {}) {
  const store = openStore(storeUrl, { policy: { pollIntervalMs: 50 } });
  const runtime = new TaskRuntime(store, { logger: silentLogger, onError: () => undefined });
  const tasks = new McpTasks(runtime, { list: options.list, maxArgumentBytes: 64 * 1024, logger: silentLogger });
  tasks.registerTool('echo', { description: 'Echoes text', inputSchema: z.object({ text: z.string() }), taskSupport: 'optional' }, async ({ text: t }) =>
    text(t),
  );
  tasks.registerTool(
    'ask',
    { description: 'Asks a question', inputSchema: z.object({ question: z.string() }), taskSupport: 'optional' },
    async ({ question }, ctx) => {
      const answer = await ctx.elicit(question, { type: 'object', properties: { reply: { type: 'string' } }, required: ['reply'] });
      return text(answer.action === 'accept' ? `reply: ${answer.content?.reply}` : `no reply (${answer.action})`);
    },
  );
  tasks.registerTool('slow', { description: 'Sleeps', inputSchema: z.object({ ms: z.number() }), taskSupport: 'optional' }, async ({ ms }, ctx) => {
    await ctx.sleep(ms);
    return text('slept');
  });
  tasks.registerTool('soft_fail', { description: 'isError', inputSchema: z.object({}), taskSupport: 'optional' }, async () => ({
    ...text('soft failure'),
    isError: true,
  }));
  tasks.registerTool('rpc_fail', { description: 'JSON-RPC error', inputSchema: z.object({}), taskSupport: 'optional' }, async () => {
    throw new TaskRpcError(-32602, 'the order does not exist', { orderId: 7 });
  });
  tasks.registerTool('throws', { description: 'Throws', inputSchema: z.object({}), taskSupport: 'optional' }, async () => {
    throw new Error('kaput');
  });
  tasks.registerTool(
    'quick',
    { description: 'Fast unless asked to sleep', inputSchema: z.object({ ms: z.number() }), taskSupport: 'optional', taskPolicy: { afterMs: 1000 } },
    async ({ ms }, ctx) => {
      if (ms > 0) await ctx.sleep(ms);
      return text(`quick ${ms}`);
    },
  );
  tasks.registerTool('report', { description: 'Required task', inputSchema: z.object({}), taskSupport: 'required' }, async () => text('report'));
  const http = await startHttpServer({
    logger: silentLogger,
    port: options.port ?? 0,
    taskSubscriptions: new TaskSubscriptions(runtime, { keepAliveMs: 1000 }),
    createMcpServer: ({ era }) => {
      const mcp = new McpServer({ name: 'test', version: '0' });
      tasks.attach(mcp, { era });
      mcp.registerTool('plain', { description: 'Not a task tool', inputSchema: z.object({}) }, async () => ({
        content: [{ type: 'text' as const, text: 'plain' }],
      }));
      return mcp;
    },
  });
  await runtime.recover();
  return {
    url: http.url,
    store,
    runtime,
    close: async () => {
      await http.close();
      await runtime.close();
      await store.close();
    },
  };
}
