/**
 * A server process running tasks on the DBOS executor, for the DBOS tests (SIGKILL, SIGSTOP).
 * Environment: STORE_URL (postgres, with ?schema=), DBOS_URL, DBOS_SCHEMA, EXECUTOR_ID (optional),
 * LEASE_MS, LEDGER (table name for payments and step attempts).
 * Commands on stdin, one JSON object a line; replies on stdout, one JSON object a line:
 *   {"op":"submit","tool":"invoice","args":{...}} → {"taskId":...}
 *   {"op":"answer","taskId":...,"key":...,"value":{...}} → {"taken":[...]}
 *   {"op":"cancel","taskId":...} → {"cancelled":true}
 * Prints {"ready":true,"pid":...,"executorId":...} once recovered.
 */
import { createInterface } from 'node:readline';
import pg from 'pg';
import { ENGINE_ACCESS } from '../../src/core/access.js';
import { createLogger } from '../../src/core/log.js';
import { monotonicNow } from '../../src/runtime/lease-guard.js';
import type { TaskContext } from '../../src/runtime/context.js';
import type { TaskToolResult } from '../../src/runtime/runtime.js';
import { openStore } from '../../src/store/open-store.js';
import { createDbosExecutor } from '../../src/executors/dbos/index.js';
import { testHost } from './dbos-host.js';

const env = (name: string): string => {
  const value = process.env[name];
  if (!value) throw new Error(`${name} is required`);
  return value;
};
const ledger = env('LEDGER');
const pool = new pg.Pool({ connectionString: env('DBOS_URL'), max: 4 });
const store = openStore(env('STORE_URL'));
const log = createLogger({ level: (process.env.LOG_LEVEL as 'info') ?? 'warn' });

/** A side effect outside the engine: every attempt is counted, every payment is a ledger row. */
async function attempt(taskId: string, step: string): Promise<void> {
  await pool.query(`INSERT INTO ${ledger}_attempts (task_id, step, pid) VALUES ($1, $2, $3)`, [taskId, step, process.pid]);
}

interface InvoiceArgs {
  lines: number;
  /** ms after the approval the lines are due (the payOn timer). */
  payDelayMs: number;
  /** ms each payment takes (a window for a pause or a kill inside it). */
  payMs?: number;
}

/** The invoice workflow: check lines, ask for approval, wait until the pay date, pay each line once. */
async function invoice(args: InvoiceArgs, ctx: TaskContext): Promise<TaskToolResult> {
  for (let i = 0; i < args.lines; i++) await ctx.step(`check-${i}`, () => attempt(ctx.taskId, `check-${i}`));
  const answer = await ctx.elicit('Approve the invoice?', { type: 'object', properties: { ok: { type: 'boolean' } }, required: ['ok'] }, { key: 'approve' });
  if (answer.action !== 'accept' || answer.content?.ok !== true) return { content: [{ type: 'text', text: 'rejected' }] };
  const dueAt = await ctx.step('due', async () => Date.now() + args.payDelayMs);
  await ctx.sleepUntil(new Date(dueAt), 'Waiting for the pay date');
  for (let i = 0; i < args.lines; i++) {
    await ctx.step(`pay-${i}`, async () => {
      await attempt(ctx.taskId, `pay-${i}`);
      if (args.payMs) await new Promise((resolve) => setTimeout(resolve, args.payMs));
      await pool.query(`INSERT INTO ${ledger} (task_id, line, due_at, pid) VALUES ($1, $2, to_timestamp($3 / 1000.0), $4)`, [
        ctx.taskId,
        i,
        dueAt,
        process.pid,
      ]);
    });
  }
  return { content: [{ type: 'text', text: `paid ${args.lines} lines` }] };
}

/** Steps separated by sleeps: for pause and cancel tests. */
async function ticker(args: { steps: number; sleepMs: number }, ctx: TaskContext): Promise<TaskToolResult> {
  for (let i = 0; i < args.steps; i++) {
    await ctx.step(`tick-${i}`, () => attempt(ctx.taskId, `tick-${i}`));
    await ctx.sleep(args.sleepMs);
  }
  return { content: [{ type: 'text', text: 'done' }] };
}

const executor = createDbosExecutor({
  systemDatabaseUrl: env('DBOS_URL'),
  systemDatabaseSchemaName: env('DBOS_SCHEMA'),
  ...(process.env.EXECUTOR_ID && { executorId: process.env.EXECUTOR_ID }),
  leaseMs: Number(process.env.LEASE_MS ?? 3000),
  reconcileMs: 2000,
  receiveTimeoutSeconds: 30,
});
const host = testHost(store, { invoice: invoice as never, ticker: ticker as never }, log);
executor.bind(host);

async function handle(command: { op: string; [key: string]: unknown }): Promise<unknown> {
  switch (command.op) {
    case 'submit': {
      const since = monotonicNow();
      const task = await store.create({
        owner: null,
        request: { tool: command.tool as string, arguments: command.args as never },
        errorResultStatus: 'failed',
        lease: executor.leaseForNewTask(),
      });
      void executor.start(task, since);
      return { taskId: task.taskId };
    }
    case 'answer': {
      const taken = await store.answerInputs(command.taskId as string, { [command.key as string]: command.value }, ENGINE_ACCESS);
      await executor.answered(command.taskId as string, taken);
      return { taken };
    }
    case 'cancel': {
      let revoked;
      const task = await store.get(command.taskId as string, ENGINE_ACCESS);
      await store.cancel(task.taskId, ENGINE_ACCESS, { onRevoked: (lease) => (revoked = lease) });
      await executor.cancelled(task, revoked);
      return { cancelled: true };
    }
    case 'close': {
      await executor.close();
      await store.close();
      await pool.end();
      setImmediate(() => process.exit(0));
      return { closed: true };
    }
  }
  throw new Error(`unknown op ${command.op}`);
}

const recovered = await executor.recover();
process.stdout.write(JSON.stringify({ ready: true, pid: process.pid, executorId: executor.executorId, recovered }) + '\n');
createInterface({ input: process.stdin }).on('line', (line) => {
  const command = JSON.parse(line) as { op: string; id: number };
  handle(command).then(
    (reply) => process.stdout.write(JSON.stringify({ id: command.id, ...(reply as object) }) + '\n'),
    (error: unknown) => process.stdout.write(JSON.stringify({ id: command.id, error: String(error) }) + '\n'),
  );
});
