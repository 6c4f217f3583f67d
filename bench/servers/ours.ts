/**
 * Benchmark server on mcp-tasks: `trivial` (answers at once), `sleepy` (waits a long durable timer),
 * `parked` (one journaled step, then a long durable timer; announces on stderr when every parked
 * task has resumed after a restart). Polling is not throttled, so raw `tasks/get` cost is measured.
 *
 * Usage: node --import tsx bench/servers/ours.ts <store-url> [expectParked]
 * Prints the MCP URL on stdout.
 */
import { McpServer } from '@modelcontextprotocol/server';
import * as z from 'zod';
import { createLogger } from '../../src/core/log.js';
import { TaskRuntime } from '../../src/runtime/runtime.js';
import { startHttpServer } from '../../src/server/http.js';
import { openStore } from '../../src/store/open-store.js';
import { McpTasks } from '../../src/wire/mcp-tasks.js';

const started = performance.now();
const [storeUrl, expectParked] = process.argv.slice(2) as [string, string | undefined];
const store = openStore(storeUrl, { policy: { pollIntervalMs: 10 } });
// Faults only: per-task lifecycle lines would be measured too, and the SDK 1.x baseline logs nothing.
const logger = createLogger({ level: 'warn' });
const runtime = new TaskRuntime(store, { logger, onError: () => undefined, purgeIntervalMs: 0 });
const tasks = new McpTasks(runtime, { throttlePolling: false, logger, onError: () => undefined });
tasks.registerTool('trivial', { description: 'answers at once', inputSchema: z.object({}), taskSupport: 'optional' }, async () => ({
  content: [{ type: 'text', text: 'ok' }],
}));
tasks.registerTool('sleepy', { description: 'sleeps', inputSchema: z.object({}), taskSupport: 'optional' }, async (_a, ctx) => {
  await ctx.sleep(3_600_000);
  return { content: [{ type: 'text', text: 'woke' }] };
});
let resumed = 0;
const target = Number(expectParked ?? 0);
tasks.registerTool('parked', { description: 'a step, then a long wait', inputSchema: z.object({}), taskSupport: 'optional' }, async (_a, ctx) => {
  await ctx.step('a', () => 1);
  if (++resumed === target) process.stderr.write(`resumed-all ${Math.round(performance.now() - started)}\n`);
  await ctx.sleep(3_600_000);
  return { content: [{ type: 'text', text: 'done' }] };
});
const resumedCount = await runtime.recover();
process.stderr.write(`recovered ${resumedCount}\n`);
const http = await startHttpServer({
  logger,
  port: 0,
  createMcpServer: ({ era }) => {
    const mcp = new McpServer({ name: 'bench-ours', version: '0' });
    tasks.attach(mcp, { era });
    return mcp;
  },
  onError: () => undefined,
});
process.stdout.write(`${http.url}\n`);
process.on('SIGTERM', () => process.exit(0)); // lets --cpu-prof write its profile
