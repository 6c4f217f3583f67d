import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { createInterface } from 'node:readline';
import pg from 'pg';
import { ENGINE_ACCESS } from '../../src/core/access.js';
import type { TaskRecord } from '../../src/core/task.js';
import { openStore } from '../../src/store/open-store.js';
import type { TaskStore } from '../../src/store/task-store.js';

const ADMIN_URL = process.env.DBOS_TEST_ADMIN_URL ?? 'postgres://postgres@127.0.0.1:5432/test';
const DATABASE = 'dbos_test_exec';
export const DATABASE_URL = process.env.DBOS_TEST_URL ?? `postgres://postgres@127.0.0.1:5432/${DATABASE}`;

/** A DBOS test's own corner of the shared PostgreSQL: a task-store schema, a DBOS schema and ledger tables, all named by a random suffix. */
export interface DbosTestEnv {
  suffix: string;
  storeUrl: string;
  dbosSchema: string;
  ledger: string;
  pool: pg.Pool;
  /** A store on the same schema (for the test's own reads and writes). */
  store: TaskStore;
  workerEnv(extra?: Record<string, string>): Record<string, string>;
  /** Payments per task and line. */
  payments(): Promise<Array<{ task_id: string; line: number; paid_at: Date; due_at: Date; pid: number }>>;
  attempts(taskId: string, step: string): Promise<number>;
  waitTerminal(taskId: string, timeoutMs: number): Promise<TaskRecord>;
  waitStatus(taskId: string, status: string, timeoutMs: number): Promise<TaskRecord>;
  dispose(): Promise<void>;
}

export async function dbosTestEnv(): Promise<DbosTestEnv> {
  const admin = new pg.Client({ connectionString: ADMIN_URL });
  await admin.connect();
  try {
    const exists = await admin.query('SELECT 1 FROM pg_database WHERE datname = $1', [DATABASE]);
    if (exists.rowCount === 0) await admin.query(`CREATE DATABASE ${DATABASE}`).catch(() => undefined); // a parallel run may create it
  } finally {
    await admin.end();
  }
  const suffix = randomBytes(4).toString('hex');
  const ledger = `ledger_${suffix}`;
  const pool = new pg.Pool({ connectionString: DATABASE_URL, max: 4 });
  await pool.query(`CREATE TABLE ${ledger} (task_id text, line int, paid_at timestamptz DEFAULT clock_timestamp(), due_at timestamptz, pid int)`);
  await pool.query(`CREATE TABLE ${ledger}_attempts (task_id text, step text, pid int, began timestamptz, at timestamptz DEFAULT clock_timestamp())`);
  const storeUrl = `${DATABASE_URL}?schema=tasks_${suffix}`;
  const store = openStore(storeUrl);
  const dbosSchema = `dbos_${suffix}`;
  const until = async (taskId: string, done: (task: TaskRecord) => boolean, timeoutMs: number, what: string): Promise<TaskRecord> => {
    const deadline = Date.now() + timeoutMs;
    let task: TaskRecord | undefined;
    while (Date.now() < deadline) {
      task = await store.get(taskId, ENGINE_ACCESS);
      if (done(task)) return task;
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
    throw new Error(`task ${taskId} not ${what} within ${timeoutMs} ms: ${JSON.stringify(task)}`);
  };
  return {
    suffix,
    storeUrl,
    dbosSchema,
    ledger,
    pool,
    store,
    workerEnv: (extra = {}) => ({ STORE_URL: storeUrl, DBOS_URL: DATABASE_URL, DBOS_SCHEMA: dbosSchema, LEDGER: ledger, ...extra }),
    payments: async () => (await pool.query(`SELECT * FROM ${ledger} ORDER BY task_id, line`)).rows,
    attempts: async (taskId, step) =>
      Number((await pool.query(`SELECT count(*) FROM ${ledger}_attempts WHERE task_id = $1 AND step = $2`, [taskId, step])).rows[0].count),
    waitTerminal: (taskId, timeoutMs) => until(taskId, (task) => ['completed', 'failed', 'cancelled'].includes(task.status), timeoutMs, 'terminal'),
    waitStatus: (taskId, status, timeoutMs) => until(taskId, (task) => task.status === status, timeoutMs, status),
    async dispose() {
      await store.close();
      await pool.query(`DROP TABLE IF EXISTS ${ledger}, ${ledger}_attempts`);
      await pool.query(`DROP SCHEMA IF EXISTS tasks_${suffix} CASCADE`);
      await pool.query(`DROP SCHEMA IF EXISTS ${dbosSchema} CASCADE`);
      await pool.end();
    },
  };
}

/** A DBOS worker process (`test/helpers/dbos-worker.ts`). */
export interface DbosWorker {
  pid: number;
  executorId: string;
  recovered: number;
  child: ChildProcess;
  send(command: Record<string, unknown>, timeoutMs?: number): Promise<Record<string, unknown>>;
  log(): string;
  kill(): Promise<void>;
  stop(): void;
  cont(): void;
  exited(): Promise<void>;
}

export async function startWorker(env: Record<string, string>): Promise<DbosWorker> {
  const child = spawn(process.execPath, ['--import', 'tsx', 'test/helpers/dbos-worker.ts'], {
    stdio: ['pipe', 'pipe', 'pipe'],
    env: { ...process.env, ...env },
  });
  let stderr = '';
  child.stderr!.on('data', (chunk) => (stderr += String(chunk)));
  const waiting = new Map<number, (reply: Record<string, unknown>) => void>();
  let next = 1;
  let ready: (value: Record<string, unknown>) => void;
  const readyReply = new Promise<Record<string, unknown>>((resolve, reject) => {
    ready = resolve;
    child.once('exit', (code, signal) => reject(new Error(`worker exited (${code ?? signal}) before it was ready:\n${stderr}`)));
    setTimeout(() => reject(new Error(`worker not ready in time:\n${stderr}`)), 60_000).unref();
  });
  createInterface({ input: child.stdout! }).on('line', (line) => {
    let reply: Record<string, unknown>;
    try {
      reply = JSON.parse(line) as Record<string, unknown>;
    } catch {
      stderr += `[stdout] ${line}\n`;
      return;
    }
    if (reply.ready) ready(reply);
    else waiting.get(reply.id as number)?.(reply);
  });
  const hello = await readyReply;
  const exit = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const signal = (name: NodeJS.Signals) => {
    if (child.exitCode === null && child.signalCode === null) process.kill(child.pid!, name);
  };
  return {
    pid: child.pid!,
    executorId: hello.executorId as string,
    recovered: hello.recovered as number,
    child,
    send(command, timeoutMs = 30_000) {
      const id = next++;
      return new Promise((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error(`no reply to ${JSON.stringify(command)}:\n${stderr}`)), timeoutMs);
        waiting.set(id, (reply) => {
          clearTimeout(timer);
          waiting.delete(id);
          if (reply.error) reject(new Error(String(reply.error)));
          else resolve(reply);
        });
        child.stdin!.write(JSON.stringify({ ...command, id }) + '\n');
      });
    },
    log: () => stderr,
    async kill() {
      signal('SIGKILL');
      await exit;
    },
    stop: () => signal('SIGSTOP'),
    cont: () => signal('SIGCONT'),
    exited: () => exit,
  };
}
