/**
 * The chaos worker: an MCP server with one task tool, `multi_step {steps, pauseMs}`, whose every
 * step performs one side effect through an idempotent effect API and then sleeps durably. Used by
 * `bench/chaos.ts` (and its test) to kill and restart instances at random.
 *
 * Usage: node --import tsx examples/chaos/server.ts <store-url> <effects.db> <instance-id> <lease-ms>
 * Prints the MCP URL on stdout once listening.
 */
import { mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import Database from 'better-sqlite3';
import { McpServer } from '@modelcontextprotocol/server';
import * as z from 'zod';
import { createLogger } from '../../src/core/log.js';
import { TaskRuntime } from '../../src/runtime/runtime.js';
import { startHttpServer } from '../../src/server/http.js';
import { openStore } from '../../src/store/open-store.js';
import { McpTasks } from '../../src/wire/mcp-tasks.js';

const [storeUrl, effectsPath, instanceId, leaseMs] = process.argv.slice(2) as [string, string, string, string];

/**
 * The side-effect system under test: `apply(key)` records one effect per key. It is idempotent by a
 * check-then-insert in one transaction — no unique constraint hides a bug: if an effect were ever
 * applied twice, `effects` would hold two rows for its key.
 */
mkdirSync(dirname(effectsPath), { recursive: true });
const db = new Database(effectsPath);
db.pragma('journal_mode = WAL');
db.pragma('busy_timeout = 10000');
db.exec(`CREATE TABLE IF NOT EXISTS effects (key TEXT NOT NULL, instance TEXT NOT NULL, at TEXT NOT NULL)`);
// BEGIN IMMEDIATE: a deferred read-then-write transaction can fail with SQLITE_BUSY at once when
// another process wrote meanwhile (busy_timeout does not apply to that upgrade).
const applyTx = db.transaction((key: string) => {
  const seen = db.prepare(`SELECT 1 FROM effects WHERE key = ?`).get(key);
  if (!seen) db.prepare(`INSERT INTO effects (key, instance, at) VALUES (?, ?, ?)`).run(key, instanceId, new Date().toISOString());
  return !seen;
});
const apply = (key: string) => applyTx.immediate(key);

const store = openStore(storeUrl, { policy: { pollIntervalMs: 100 } });
const logger = createLogger({ level: 'warn' });
const runtime = new TaskRuntime(store, { instanceId, leaseMs: Number(leaseMs), logger, onError: () => undefined });
const tasks = new McpTasks(runtime, { logger, onError: () => undefined });
tasks.registerTool(
  'multi_step',
  {
    description: 'Several durable steps with side effects',
    inputSchema: z.object({ steps: z.number().int().min(1).max(50), pauseMs: z.number().int().min(0) }),
    taskSupport: 'optional',
  },
  async ({ steps, pauseMs }, ctx) => {
    for (let i = 0; i < steps; i++) {
      await ctx.step(`effect-${i}`, () => apply(`${ctx.taskId}/${i}`));
      await ctx.progress(i + 1, steps, `step ${i + 1} of ${steps}`);
      if (pauseMs > 0) await ctx.sleep(pauseMs);
    }
    return { content: [{ type: 'text', text: `${steps} steps done` }] };
  },
);
await runtime.recover();
const http = await startHttpServer({
  logger,
  port: 0,
  createMcpServer: ({ era }) => {
    const mcp = new McpServer({ name: 'chaos-worker', version: '0' });
    tasks.attach(mcp, { era });
    return mcp;
  },
  onError: () => undefined,
});
process.stdout.write(`${http.url}\n`);
