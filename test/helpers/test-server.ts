import { McpServer } from '@modelcontextprotocol/server';
import * as z from 'zod';
import { TaskRpcError } from '../../src/core/errors.js';
import { silentLogger } from '../../src/core/log.js';
import type { LifetimePolicy } from '../../src/core/policy.js';
import { createTaskServer, type ListenOptions } from '../../src/server/task-server.js';

const text = (t: string) => ({ content: [{ type: 'text', text: t }] });

/**
 * An HTTP MCP server with small task tools that exercise each wire behaviour:
 * echo (optional), ask (optional, elicits), slow (optional, sleeps), soft_fail (isError result),
 * rpc_fail (JSON-RPC error), report (required), and the ordinary tool plain. `policy` overrides the
 * store's `LifetimePolicy` (ms values; `pollIntervalMs` defaults to 50 here).
 */
export async function startTestServer(
  storeUrl: string,
  options: {
    port?: number;
    list?: boolean;
    policy?: Partial<LifetimePolicy>;
    listen?: ListenOptions;
    syncWaitMs?: number;
    /** `McpTasksOptions.declareIdempotency` (default true). */
    declareIdempotency?: boolean;
  } = {},
) {
  const server = createTaskServer({
    store: storeUrl,
    storeOptions: { policy: { pollIntervalMs: 50, ...options.policy } },
    runtime: { onError: () => undefined },
    tasks: {
      list: options.list,
      maxArgumentBytes: 64 * 1024,
      ...(options.syncWaitMs !== undefined && { syncWaitMs: options.syncWaitMs }),
      ...(options.declareIdempotency !== undefined && { declareIdempotency: options.declareIdempotency }),
    },
    logger: silentLogger,
    subscriptions: { keepAliveMs: 1000 },
    createMcpServer: () => {
      const mcp = new McpServer({ name: 'test', version: '0' });
      mcp.registerTool('plain', { description: 'Not a task tool', inputSchema: z.object({}) }, async () => ({
        content: [{ type: 'text' as const, text: 'plain' }],
      }));
      return mcp;
    },
  });
  server.registerTool('echo', { description: 'Echoes text', inputSchema: z.object({ text: z.string() }), taskSupport: 'optional' }, async ({ text: t }) =>
    text(t),
  );
  server.registerTool(
    'ask',
    { description: 'Asks a question', inputSchema: z.object({ question: z.string() }), taskSupport: 'optional' },
    async ({ question }, ctx) => {
      const answer = await ctx.elicit(question, { type: 'object', properties: { reply: { type: 'string' } }, required: ['reply'] });
      return text(answer.action === 'accept' ? `reply: ${answer.content?.reply}` : `no reply (${answer.action})`);
    },
  );
  server.registerTool('slow', { description: 'Sleeps', inputSchema: z.object({ ms: z.number() }), taskSupport: 'optional' }, async ({ ms }, ctx) => {
    await ctx.sleep(ms);
    return text('slept');
  });
  server.registerTool('soft_fail', { description: 'isError', inputSchema: z.object({}), taskSupport: 'optional' }, async () => ({
    ...text('soft failure'),
    isError: true,
  }));
  server.registerTool('rpc_fail', { description: 'JSON-RPC error', inputSchema: z.object({}), taskSupport: 'optional' }, async () => {
    throw new TaskRpcError(-32602, 'the order does not exist', { orderId: 7 });
  });
  server.registerTool('throws', { description: 'Throws', inputSchema: z.object({}), taskSupport: 'optional' }, async () => {
    throw new Error('kaput');
  });
  server.registerTool(
    'quick',
    { description: 'Fast unless asked to sleep', inputSchema: z.object({ ms: z.number() }), taskSupport: 'optional', taskPolicy: { afterMs: 1000 } },
    async ({ ms }, ctx) => {
      if (ms > 0) await ctx.sleep(ms);
      return text(`quick ${ms}`);
    },
  );
  server.registerTool('report', { description: 'Required task', inputSchema: z.object({}), taskSupport: 'required' }, async () => text('report'));
  const http = await server.listen({ port: options.port ?? 0, ...options.listen });
  return {
    url: http.url,
    stats: () => http.stats(),
    store: server.store,
    runtime: server.runtime,
    close: () => server.close(),
  };
}
