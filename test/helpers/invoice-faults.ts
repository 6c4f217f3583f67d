/**
 * What the fault tests (`test/faults-*.test.ts`) share: the ERP fixture, invoices, driving the
 * invoice demo over 2026-07-28, and reading the demo's ledger — its payments and its attempt log
 * (`payment_attempts`: one row per `pay()` call that reached the ledger, whoever made it).
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after } from 'node:test';
import Database from 'better-sqlite3';
import type { TaskStore } from '../../src/store/task-store.js';
import type { DemoProcess } from './demo-process.js';
import { ModernRawClient } from './modern-client.js';
import { PG_URL, REDIS_URL, withParam } from './services.js';
import { until } from './until.js';

/**
 * What every fault test file starts with: a temporary folder holding the ERP fixture (`erp`), a
 * `tag` for its PostgreSQL schemas and Redis prefixes (`sharedStores`), and the lists of what to
 * stop when the file ends: the demos it started (`running`, killed) and the stores it opened
 * (`stores`, closed). `beforeKill` / `afterKill` add cleanups that run before the demos are killed
 * (monitors, children) or after (proxies, mounts). Then the folder and the namespaces go.
 */
export function faultSuite(prefix: string): {
  dir: string;
  tag: string;
  erp: string;
  running: DemoProcess[];
  stores: TaskStore[];
  beforeKill: (cleanup: () => unknown) => void;
  afterKill: (cleanup: () => unknown) => void;
} {
  const dir = mkdtempSync(join(tmpdir(), `mcp-tasks-faults-${prefix}-`));
  const tag = `f${prefix}_${randomBytes(3).toString('hex')}`;
  const running: DemoProcess[] = [];
  const stores: TaskStore[] = [];
  const first: (() => unknown)[] = [];
  const then: (() => unknown)[] = [];
  after(async () => {
    for (const cleanup of first) await cleanup();
    for (const p of running) await p.kill();
    for (const cleanup of then) await cleanup();
    for (const s of stores) await s.close().catch(() => undefined);
    rmSync(dir, { recursive: true, force: true });
    await dropNamespaces(tag);
  });
  return { dir, tag, erp: writeErp(dir), running, stores, beforeKill: (c) => void first.push(c), afterKill: (c) => void then.push(c) };
}

/** Writes an ERP file with vendor V1 (EUR, active) and a PO large enough for any test; returns its path. */
export function writeErp(dir: string): string {
  const path = join(dir, 'erp.json');
  writeFileSync(
    path,
    JSON.stringify({
      vendors: [{ vendorId: 'V1', name: 'Acme', currency: 'EUR', active: true }],
      purchaseOrders: [{ poNumber: 'PO1', vendorId: 'V1', currency: 'EUR', amount: 100_000_000 }],
    }),
  );
  return path;
}

export interface Line {
  lineId: string;
  amount: number;
  /** ISO date-time; absent = pay at once after approval. */
  payOn?: string;
}

/** `process_invoice` arguments for invoice `invoiceId` with `lines`. */
export function invoiceArgs(invoiceId: string, lines: Line[]) {
  return {
    invoice: {
      invoiceId,
      vendorId: 'V1',
      poNumber: 'PO1',
      currency: 'EUR',
      issuedOn: '2026-11-20',
      lines: lines.map((l) => ({ lineId: l.lineId, description: `line ${l.lineId}`, amount: l.amount, ...(l.payOn && { payOn: l.payOn }) })),
    },
  };
}

/** Submits `process_invoice` to the demo at `url` (2026-07-28); resolves with the task id. */
export async function submitInvoice(url: string, args: object): Promise<string> {
  const res = await new ModernRawClient(url).request('tools/call', { name: 'process_invoice', arguments: args });
  assert.equal(res.result?.resultType, 'task', `process_invoice was not answered with a task: ${JSON.stringify(res)}`);
  return res.result.taskId as string;
}

/** Polls `tasks/get` (2026-07-28) at `url()` (called per probe: a test may rotate instances) until `ok(task)`; resolves with the task. */
export function untilTask(url: () => string, taskId: string, ok: (task: any) => boolean, what: string, timeoutMs = 30_000): Promise<any> {
  let task: any;
  return until(
    async () => {
      task = (await new ModernRawClient(url()).request('tasks/get', { taskId })).result;
      return task && ok(task) && task;
    },
    { timeoutMs, intervalMs: 50, what: () => `${what}: task ${taskId} is ${JSON.stringify(task)}` },
  );
}

/** Waits for the approval question of `taskId` and approves it through `url`. */
export async function approve(url: string, taskId: string): Promise<void> {
  const task = await untilTask(
    () => url,
    taskId,
    (t) => t.status === 'input_required',
    'the approval question',
  );
  const key = Object.keys(task.inputRequests)[0]!;
  const res = await new ModernRawClient(url).request('tasks/update', {
    taskId,
    inputResponses: { [key]: { action: 'accept', content: { decision: 'approve' } } },
  });
  assert.ok(!res.error, `tasks/update refused: ${JSON.stringify(res)}`);
}

export interface PaymentRow {
  idempotency_key: string;
  invoice_id: string;
  line_id: string;
  paid_at: string;
  task_id: string;
}

export interface AttemptRow {
  id: number;
  idempotency_key: string;
  invoice_id: string;
  line_id: string;
  task_id: string;
  fencing_token: number;
  pid: number;
  attempted_at: string;
  outcome: string;
}

/** Read-only access to the demo's ledger file (a fresh connection per read: the demos write it meanwhile). */
export class LedgerReader {
  constructor(readonly path: string) {}

  private read<T>(query: (db: Database.Database) => T): T {
    const db = new Database(this.path, { readonly: true, fileMustExist: true });
    try {
      db.pragma('busy_timeout = 5000');
      return query(db);
    } finally {
      db.close();
    }
  }

  /** Payments of invoices whose id starts with `prefix`, by invoice and line. */
  payments(prefix = ''): PaymentRow[] {
    return this.read((db) => db.prepare(`SELECT * FROM payments WHERE invoice_id LIKE ? ORDER BY invoice_id, line_id`).all(`${prefix}%`)) as PaymentRow[];
  }

  /**
   * Every `pay()` call that reached the ledger for invoices whose id starts with `prefix`, oldest
   * first. Fails with a clear message when the ledger has no attempt log (`payment_attempts`).
   */
  attempts(prefix = ''): AttemptRow[] {
    return this.read((db) => {
      const table = db.prepare(`SELECT name FROM sqlite_master WHERE type = 'table' AND name = 'payment_attempts'`).get();
      assert.ok(
        table,
        `the ledger ${this.path} has no payment_attempts table: the demo's attempt log (examples/invoice/ledger.ts, issue 23) is missing, so side-effect attempts cannot be counted`,
      );
      return db.prepare(`SELECT * FROM payment_attempts WHERE invoice_id LIKE ? ORDER BY id`).all(`${prefix}%`) as AttemptRow[];
    });
  }
}

/** A compact listing of attempt rows for assertion messages. */
export function describeAttempts(rows: AttemptRow[]): string {
  return rows.map((r) => `${r.invoice_id}/${r.line_id} pid ${r.pid} token ${r.fencing_token} at ${r.attempted_at} → ${r.outcome}`).join('\n');
}

/** Milliseconds of an ISO timestamp. */
export const ms = (iso: string): number => Date.parse(iso);

/**
 * The shared stores of this machine (PostgreSQL and Redis, see `services.ts`), each test in a
 * namespace of its own so that instances a failed test left running cannot touch another test's
 * tasks: `url(test)` is PostgreSQL schema `mcpt_<tag>_<test>` or Redis prefix `mcpt-<tag>-<test>`.
 * `tag` (letters, digits, `_`) names the file's run; `dropNamespaces(tag)` removes them all.
 */
export function sharedStores(tag: string): { name: 'postgres' | 'redis'; url: (test: string) => string }[] {
  return [
    { name: 'postgres', url: (test) => withParam(PG_URL, 'schema', `mcpt_${tag}_${test}`) },
    { name: 'redis', url: (test) => withParam(REDIS_URL, 'prefix', `mcpt-${tag}-${test}`) },
  ];
}

/** Drops every PostgreSQL schema and Redis key of `sharedStores(tag)`. */
export async function dropNamespaces(tag: string): Promise<void> {
  const { default: pg } = await import('pg');
  const client = new pg.Client({ connectionString: PG_URL });
  await client.connect();
  try {
    const { rows } = await client.query<{ nspname: string }>(`SELECT nspname FROM pg_namespace WHERE nspname LIKE $1`, [`mcpt\\_${tag}\\_%`]);
    for (const { nspname } of rows) await client.query(`DROP SCHEMA IF EXISTS "${nspname}" CASCADE`);
  } finally {
    await client.end();
  }
  const { Redis } = await import('ioredis');
  const redis = new Redis(REDIS_URL);
  try {
    const keys = await redis.keys(`mcpt-${tag}-*`);
    if (keys.length > 0) await redis.del(...keys);
  } finally {
    await redis.quit();
  }
}
