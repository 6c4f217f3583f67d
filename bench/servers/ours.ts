/**
 * Benchmark server on mcp-tasks: `trivial` (answers at once), `sleepy` (waits a long durable timer),
 * `waits` (asks a question nobody answers), `parked` (one journaled step, then a long durable timer; announces on stderr when every parked
 * task has resumed after a restart). Polling is not throttled, so raw `tasks/get` cost is measured.
 *
 * Usage: node --import tsx bench/servers/ours.ts <store-url> [expectParked]
 * Prints the MCP URL on stdout.
 *
 * For bench/soak.ts (nothing changes without these): SOAK_STATS_MS adds the `approve` tool (asks one
 * form question, returns once answered) and writes `stats {"rss":…,"heapUsed":…,"handles":…,"timers":…,
 * "sessions":…,"requests":…}` to stderr every that many ms (bytes; active resources, of which
 * `Timeout`s; open 2025-11-25 sessions and requests being served); SOAK_SESSION_IDLE_MS /
 * SOAK_MAX_SESSIONS set `sessions.idleTimeoutMs` / `sessions.max` of `listen`.
 */
import './gc-stats.js';
import * as z from 'zod';
// BENCH_LIB=dist: the package as published (tsc's output, `npm run build` first) instead of the
// sources through tsx, whose transform adds a `__name` call to every function it names.
const { createLogger, createTaskServer } = (
  process.env.BENCH_LIB === 'dist' ? await import('../../dist/src/index.js') : await import('../../src/index.js')
) as typeof import('../../src/index.js');

const started = performance.now();
const [storeUrl, expectParked] = process.argv.slice(2) as [string, string | undefined];
const server = createTaskServer({
  store: storeUrl,
  storeOptions: { policy: { pollIntervalMs: 10 } },
  runtime: { onError: () => undefined, purgeIntervalMs: 0 },
  tasks: { throttlePolling: false, onError: () => undefined },
  // Faults only: per-task lifecycle lines would be measured too, and the SDK 1.x baseline logs nothing.
  logger: createLogger({ level: 'warn' }),
  info: { name: 'bench-ours', version: '0' },
  // BENCH_FAST_PATH=off: every request through the SDK (what the fast path saves, side by side).
  fastPath: process.env.BENCH_FAST_PATH !== 'off',
});
server.registerTool('trivial', { description: 'answers at once', inputSchema: z.object({}), taskSupport: 'optional' }, async () => ({
  content: [{ type: 'text', text: 'ok' }],
}));
server.registerTool('sleepy', { description: 'sleeps', inputSchema: z.object({}), taskSupport: 'optional' }, async (_a, ctx) => {
  await ctx.sleep(3_600_000);
  return { content: [{ type: 'text', text: 'woke' }] };
});
server.registerTool('waits', { description: 'asks a question nobody answers', inputSchema: z.object({}), taskSupport: 'optional' }, async (_a, ctx) => {
  await ctx.elicit('Approve?', { type: 'object', properties: { ok: { type: 'boolean' } }, required: ['ok'] });
  return { content: [{ type: 'text', text: 'answered' }] };
});
const statsMs = process.env.SOAK_STATS_MS ? Number(process.env.SOAK_STATS_MS) : undefined;
if (statsMs)
  server.registerTool(
    'approve',
    { description: 'asks one question, returns the answer', inputSchema: z.object({}), taskSupport: 'optional' },
    async (_a, ctx) => {
      const answer = await ctx.elicit('Approve?', { type: 'object', properties: { ok: { type: 'boolean' } }, required: ['ok'] });
      return { content: [{ type: 'text', text: `answered ${answer.action}` }] };
    },
  );
let resumed = 0;
const target = Number(expectParked ?? 0);
server.registerTool('parked', { description: 'a step, then a long wait', inputSchema: z.object({}), taskSupport: 'optional' }, async (_a, ctx) => {
  await ctx.step('a', () => 1);
  if (++resumed === target) process.stderr.write(`resumed-all ${Math.round(performance.now() - started)}\n`);
  await ctx.sleep(3_600_000);
  return { content: [{ type: 'text', text: 'done' }] };
});
const sessions = {
  ...(process.env.SOAK_SESSION_IDLE_MS && { idleTimeoutMs: Number(process.env.SOAK_SESSION_IDLE_MS) }),
  ...(process.env.SOAK_MAX_SESSIONS && { max: Number(process.env.SOAK_MAX_SESSIONS) }),
};
const http = await server.listen({ port: 0, onError: () => undefined, ...(Object.keys(sessions).length > 0 && { sessions }) });
if (statsMs)
  setInterval(() => {
    const resources = process.getActiveResourcesInfo();
    const { rss, heapUsed } = process.memoryUsage();
    const stats = { rss, heapUsed, handles: resources.length, timers: resources.filter((r) => r === 'Timeout').length, ...http.stats() };
    process.stderr.write(`stats ${JSON.stringify(stats)}\n`);
  }, statsMs).unref();
process.stderr.write(`recovered ${http.resumed}\n`);
process.stdout.write(`${http.url}\n`);
process.on('SIGTERM', () => process.exit(0)); // lets --cpu-prof write its profile
