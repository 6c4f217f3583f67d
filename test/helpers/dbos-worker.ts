/**
 * A server process running tasks on the DBOS executor through the real `TaskRuntime` (as
 * `createTaskServer({ executor })` builds it), for the DBOS tests (SIGKILL, SIGSTOP).
 * Environment: STORE_URL (postgres, with ?schema=), DBOS_URL, DBOS_SCHEMA, EXECUTOR_ID (optional),
 * LEASE_MS, LEDGER (table name for payments and step attempts).
 * Commands on stdin, one JSON object a line; replies on stdout, one JSON object a line:
 *   {"op":"submit","tool":"invoice","args":{...},"ttl"?:ms} → {"taskId":...}
 *   {"op":"answer","taskId":...,"key":...,"value":{...}} → {"taken":[...]}
 *   {"op":"cancel","taskId":...} → {"cancelled":true}
 *   {"op":"purge"} → {"tasks":n,"workflows":n} (the runtime's purge of expired tasks, then the executor's of their workflows)
 * Prints {"ready":true,"pid":...,"executorId":...} once recovered.
 */
import { createInterface } from 'node:readline';
import pg from 'pg';
import { ENGINE_ACCESS } from '../../src/core/access.js';
import { createLogger } from '../../src/core/log.js';
import type { TaskContext } from '../../src/runtime/context.js';
import { TaskRuntime, type TaskToolResult } from '../../src/runtime/runtime.js';
import { openStore } from '../../src/store/open-store.js';
import { createDbosExecutor } from '../../src/executors/dbos/index.js';

const env = (name: string): string => {
  const value = process.env[name];
  if (!value) throw new Error(`${name} is required`);
  return value;
};
const ledger = env('LEDGER');
const pool = new pg.Pool({ connectionString: env('DBOS_URL'), max: 4 });
const store = openStore(env('STORE_URL'));
const log = createLogger({ level: (process.env.LOG_LEVEL as 'info') ?? 'warn' });

/**
 * A side effect outside the engine: every attempt is counted, every payment is a ledger row. `began`
 * is when the step function began (this process's clock, before the insert is sent): an attempt that
 * began before a SIGSTOP may reach the database after the SIGCONT.
 */
async function attempt(taskId: string, step: string): Promise<void> {
  const began = new Date();
  await pool.query(`INSERT INTO ${ledger}_attempts (task_id, step, pid, began) VALUES ($1, $2, $3, $4)`, [taskId, step, process.pid, began]);
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
const runtime = new TaskRuntime(store, {
  executor,
  logger: log,
  purgeIntervalMs: 0,
  onError: (error, taskId) => log.error({ err: error, taskId }, 'runtime error'),
});
runtime.register('invoice', { parse: (args) => args, handler: invoice as never });
runtime.register('ticker', { parse: (args) => args, handler: ticker as never });

async function handle(command: { op: string; [key: string]: unknown }): Promise<unknown> {
  switch (command.op) {
    case 'submit': {
      const task = await runtime.submit({
        owner: null,
        tool: command.tool as string,
        arguments: command.args as never,
        errorResultStatus: 'failed',
        ...(typeof command.ttl === 'number' && { ttl: command.ttl }),
      });
      return { taskId: task.taskId };
    }
    case 'answer':
      return { taken: await runtime.provideInputs(command.taskId as string, { [command.key as string]: command.value }, ENGINE_ACCESS) };
    case 'cancel':
      await runtime.cancel(command.taskId as string, ENGINE_ACCESS);
      return { cancelled: true };
    case 'purge':
      return { tasks: await runtime.purgeExpired(), workflows: await executor.purgeWorkflows() };
    case 'close': {
      await runtime.close();
      await store.close();
      await pool.end();
      setImmediate(() => process.exit(0));
      return { closed: true };
    }
  }
  throw new Error(`unknown op ${command.op}`);
}

const recovered = await runtime.recover();
process.stdout.write(JSON.stringify({ ready: true, pid: process.pid, executorId: executor.executorId, recovered }) + '\n');
createInterface({ input: process.stdin }).on('line', (line) => {
  const command = JSON.parse(line) as { op: string; id: number };
  handle(command).then(
    (reply) => process.stdout.write(JSON.stringify({ id: command.id, ...(reply as object) }) + '\n'),
    (error: unknown) => process.stdout.write(JSON.stringify({ id: command.id, error: String(error) }) + '\n'),
  );
});
