/**
 * Benchmark server for scenario 9 (what fencing costs): the same tools on the mcp-tasks sources
 * found at `<src-root>` — this checkout, or a worktree of the commit before fencing (bench/run.ts
 * makes one) — so both are measured by the same client in the same run.
 *
 * - `trivial`: answers at once (a lifecycle's writes: create, finish);
 * - `stepped`: four journaled steps — each a permit check and a fenced journal append;
 * - `timed`: a 1 ms durable timer, then a step — the timer's continuation a permit confirmed by the
 *   store, which also reads the store's clock.
 *
 * Usage: node --import tsx bench/servers/fenced.ts <src-root> <store-url>. Prints the MCP URL on stdout.
 */
import { join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { registerStepTools } from './step-tools.js';

const [root, storeUrl] = process.argv.slice(2) as [string, string];
const api = (await import(pathToFileURL(join(resolve(root), 'src/index.ts')).href)) as typeof import('../../src/index.js');
const server = api.createTaskServer({
  store: storeUrl,
  storeOptions: { policy: { pollIntervalMs: 10 } },
  runtime: { onError: () => undefined, purgeIntervalMs: 0 },
  tasks: { throttlePolling: false, onError: () => undefined },
  logger: api.createLogger({ level: 'warn' }),
  info: { name: 'bench-fenced', version: '0' },
});
registerStepTools(server);
const http = await server.listen({ port: 0, onError: () => undefined });
process.stdout.write(`${http.url}\n`);
process.on('SIGTERM', () => process.exit(0));
