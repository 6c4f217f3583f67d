/**
 * The chaos worker: an MCP server with one task tool, `multi_step {steps, pauseMs}`, whose every
 * step performs one side effect through an idempotent effect API and then sleeps durably. Used by
 * `test/helpers/chaos.ts` (`npm run chaos`, test/chaos.test.ts) to kill and restart instances at
 * random.
 *
 * Usage: node --import tsx examples/chaos/server.ts <store-url> <effects.db> <instance-id> <lease-ms>
 * Prints the MCP URL on stdout once listening.
 */
import { mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import Database from 'better-sqlite3';
import * as z from 'zod';
import { createLogger, createTaskServer } from '../../src/index.js';

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

const server = createTaskServer({
  store: storeUrl,
  storeOptions: { policy: { pollIntervalMs: 100 } },
  runtime: { instanceId, leaseMs: Number(leaseMs), onError: () => undefined },
  tasks: { onError: () => undefined },
  logger: createLogger({ level: 'warn' }),
  info: { name: 'chaos-worker', version: '0' },
});
server.registerTool(
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
const http = await server.listen({ port: 0, onError: () => undefined });
process.stdout.write(`${http.url}\n`);
