/**
 * End to end: the invoice demo as a child process (SQLite store and ledger, `--payment-retries 3`)
 * while the payment system is busy — this test holds the ledger's write lock (`BEGIN IMMEDIATE` on
 * the ledger file) from its own connection, as a frozen instance in the middle of a write would.
 *
 * - Held longer than the retries last: the invoices are not left terminal and half-paid; each asks
 *   the payment question. Once the lock is released, retry_now pays the remaining lines exactly
 *   once; abort ends with a partially_paid result and a claim that lets the invoice be resubmitted,
 *   and the resubmission pays only the lines not yet paid.
 * - Released within the retries: the invoice completes with no question asked.
 *
 * Lines are counted in the ledger's tables (payments, payment_attempts), not only in statuses. The
 * lock is taken while the invoices wait for a line's `payOn`, after their first line was paid.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import Database from 'better-sqlite3';
import { startDemo, type DemoProcess } from './helpers/demo-process.js';
import { ModernRawClient } from './helpers/modern-client.js';
import { until } from './helpers/until.js';

const PAYMENT_RETRIES = 3;
/** How far ahead the locked lines' payOn lies: time enough to approve, see the wait, and take the lock. */
const PAY_ON_MS = 5000;

const dir = mkdtempSync(join(tmpdir(), 'mcp-tasks-locked-'));
const ledgerPath = join(dir, 'ledger.db');
const erpPath = join(dir, 'erp.json');
writeFileSync(
  erpPath,
  JSON.stringify({
    vendors: [{ vendorId: 'V1', name: 'Acme', currency: 'EUR', active: true }],
    purchaseOrders: [{ poNumber: 'PO1', vendorId: 'V1', currency: 'EUR', amount: 1_000_000 }],
  }),
);

let demo: DemoProcess;
let client: ModernRawClient;
before(async () => {
  demo = await startDemo([
    '--store',
    `sqlite:${join(dir, 'invoice.db')}`,
    '--ledger',
    ledgerPath,
    '--erp',
    erpPath,
    '--poll-interval',
    '100',
    '--payment-retries',
    String(PAYMENT_RETRIES),
  ]);
  client = new ModernRawClient(demo.url);
});
after(async () => {
  await demo?.kill();
  rmSync(dir, { recursive: true, force: true });
});

/** Lines `a` (now), `b` and `c` (at `payOn`). */
const invoice = (invoiceId: string, payOn: string) => ({
  invoiceId,
  vendorId: 'V1',
  poNumber: 'PO1',
  currency: 'EUR',
  issuedOn: '2026-11-20',
  lines: [
    { lineId: 'a', description: 'setup', amount: 10 },
    { lineId: 'b', description: 'desks', amount: 20.5, payOn },
    { lineId: 'c', description: 'lamps', amount: 30, payOn },
  ],
});

async function submit(args: object): Promise<string> {
  const res = await client.request('tools/call', { name: 'process_invoice', arguments: { invoice: args } });
  assert.equal(res.result?.resultType, 'task', JSON.stringify(res));
  return res.result.taskId;
}

async function untilTask(taskId: string, ok: (task: any) => boolean, what: string, timeoutMs = 30_000): Promise<any> {
  let task: any;
  return until(
    async () => {
      task = (await client.request('tasks/get', { taskId })).result;
      return task && ok(task) && task;
    },
    { timeoutMs, intervalMs: 50, what: () => `${what}: task ${taskId} is ${JSON.stringify(task)}` },
  );
}

async function answer(taskId: string, key: string, response: object): Promise<void> {
  const res = await client.request('tasks/update', { taskId, inputResponses: { [key]: response } });
  assert.equal(res.result?.resultType, 'complete', JSON.stringify(res));
}

async function approve(taskId: string): Promise<string> {
  const task = await untilTask(taskId, (t) => t.status === 'input_required' && t.inputRequests?.['elicit-1'], 'approval question');
  await answer(taskId, 'elicit-1', { action: 'accept', content: { decision: 'approve' } });
  return task.inputRequests['elicit-1'].params.message;
}

/** Reads the ledger file with a connection of its own. */
function read<T>(sql: string, ...params: unknown[]): T[] {
  const db = new Database(ledgerPath, { readonly: true });
  try {
    return db.prepare(sql).all(...params) as T[];
  } finally {
    db.close();
  }
}
const paidLines = (invoiceId: string) =>
  read<{ line_id: string }>(`SELECT line_id FROM payments WHERE invoice_id = ? ORDER BY line_id`, invoiceId).map((r) => r.line_id);
const attempts = (invoiceId: string) =>
  read<{ line_id: string; outcome: string; task_id: string; pid: number }>(`SELECT * FROM payment_attempts WHERE invoice_id = ? ORDER BY id`, invoiceId);
const claimStatus = (invoiceId: string) => read<{ status: string }>(`SELECT status FROM claims WHERE invoice_id = ?`, invoiceId)[0]?.status;
/** The demo's log lines for failed payment attempts of `taskId`'s line `lineId`. */
const failedAttempts = (taskId: string, lineId: string) =>
  demo
    .log()
    .split('\n')
    .filter((l) => l.startsWith('{'))
    .map((l) => JSON.parse(l) as { msg?: string; taskId?: string; lineId?: string; code?: string })
    .filter((e) => e.msg === 'payment attempt failed' && e.taskId === taskId && e.lineId === lineId);

/** Approves `taskIds`, waits until each paid line `a` and waits for `payOn`, then takes the ledger's write lock. */
async function lockWhileWaiting(taskIds: string[], invoiceIds: string[], payOn: string): Promise<Database.Database> {
  for (const taskId of taskIds) await approve(taskId);
  for (const taskId of taskIds) await untilTask(taskId, (t) => t.status === 'working' && /waiting until/i.test(t.statusMessage ?? ''), 'the payOn wait');
  for (const id of invoiceIds) assert.deepEqual(paidLines(id), ['a']);
  const holder = new Database(ledgerPath);
  holder.exec('BEGIN IMMEDIATE');
  assert.ok(Date.now() < Date.parse(payOn), `the test could not take the lock before payOn ${payOn}: increase PAY_ON_MS`);
  return holder;
}

describe('the payment ledger locked by another process', () => {
  it(
    'longer than the retries: the invoices ask; retry_now pays the rest once; abort ends partially_paid and a resubmission pays only the rest',
    { timeout: 120_000 },
    async () => {
      const payOn = new Date(Date.now() + PAY_ON_MS).toISOString();
      const A = await submit(invoice('LOCK-A', payOn));
      const B = await submit(invoice('LOCK-B', payOn));
      const holder = await lockWhileWaiting([A, B], ['LOCK-A', 'LOCK-B'], payOn);
      let released = false;
      try {
        for (const taskId of [A, B]) {
          const task = await untilTask(taskId, (t) => t.status === 'input_required' && t.inputRequests?.['payment-failed:b#1'], 'the payment question');
          assert.deepEqual(Object.keys(task.inputRequests), ['payment-failed:b#1']);
          const { message, requestedSchema } = task.inputRequests['payment-failed:b#1'].params;
          assert.match(message, /^Payment of line b \(EUR 20\.50\) of invoice LOCK-[AB] failed after automatic retries: database is locked\./);
          assert.match(message, /Already paid: line a \(EUR 10\.00\)\. Not yet paid: line b \(EUR 20\.50, payOn [^)]+\), line c \(EUR 30\.00, payOn [^)]+\)\./);
          assert.deepEqual(requestedSchema.properties.choice.enum, ['retry_now', 'retry_later', 'abort']);
          const failed = failedAttempts(taskId, 'b');
          assert.equal(failed.length, 1 + PAYMENT_RETRIES, 'the first attempt and each retry failed');
          assert.ok(
            failed.every((e) => e.code === 'SQLITE_BUSY'),
            JSON.stringify(failed),
          );
        }
        // Half-paid but not ended: waiting for a person, the claim still approved; the busy calls wrote nothing.
        for (const id of ['LOCK-A', 'LOCK-B']) {
          assert.deepEqual(paidLines(id), ['a']);
          assert.deepEqual(
            attempts(id).map((a) => `${a.line_id}:${a.outcome}`),
            ['a:paid'],
          );
          assert.equal(claimStatus(id), 'approved');
        }
        holder.exec('ROLLBACK');
        released = true;
      } finally {
        if (!released) holder.exec('ROLLBACK');
        holder.close();
      }

      await answer(A, 'payment-failed:b#1', { action: 'accept', content: { choice: 'retry_now' } });
      await answer(B, 'payment-failed:b#1', { action: 'accept', content: { choice: 'abort' } });

      const a = await untilTask(A, (t) => t.status === 'completed', 'A completes');
      assert.equal(a.result.structuredContent.status, 'paid', JSON.stringify(a.result));
      assert.deepEqual(
        a.result.structuredContent.payments.map((p: any) => p.lineId),
        ['a', 'b', 'c'],
      );
      assert.deepEqual(a.result.structuredContent.unpaid, []);
      assert.deepEqual(paidLines('LOCK-A'), ['a', 'b', 'c']);
      assert.deepEqual(
        attempts('LOCK-A').map((x) => `${x.line_id}:${x.outcome}`),
        ['a:paid', 'b:paid', 'c:paid'],
      );
      assert.ok(
        attempts('LOCK-A').every((x) => x.task_id === A && x.pid === demo.child.pid),
        'paid by the demo process for task A',
      );
      assert.equal(claimStatus('LOCK-A'), 'paid');

      const b = await untilTask(B, (t) => t.status === 'completed', 'B ends');
      assert.notEqual(b.result.isError, true);
      const sc = b.result.structuredContent;
      assert.equal(sc.status, 'partially_paid', JSON.stringify(b.result));
      assert.deepEqual(
        sc.payments.map((p: any) => p.lineId),
        ['a'],
      );
      assert.deepEqual(
        sc.unpaid.map((l: any) => l.lineId),
        ['b', 'c'],
      );
      assert.deepEqual(sc.paymentFailure, { lineId: 'b', error: 'database is locked', decision: 'aborted' });
      assert.deepEqual(paidLines('LOCK-B'), ['a']);
      assert.equal(claimStatus('LOCK-B'), 'partially_paid');

      // Resubmitting B is accepted and pays only b and c (their payOn has passed).
      const B2 = await submit(invoice('LOCK-B', payOn));
      assert.match(await approve(B2), /1 of them \(EUR 10\.00\) already paid by an earlier submission and not paid again\?$/);
      const b2 = await untilTask(B2, (t) => t.status === 'completed', 'the resubmission completes');
      assert.equal(b2.result.structuredContent.status, 'paid', JSON.stringify(b2.result));
      assert.equal(b2.result.structuredContent.payments[0].paidAt, sc.payments[0].paidAt, 'line a: the first payment');
      assert.deepEqual(paidLines('LOCK-B'), ['a', 'b', 'c']);
      assert.deepEqual(
        attempts('LOCK-B').map((x) => `${x.line_id}:${x.outcome}:${x.task_id === B ? 'first' : x.task_id === B2 ? 'resubmission' : x.task_id}`),
        ['a:paid:first', 'a:duplicate:resubmission', 'b:paid:resubmission', 'c:paid:resubmission'],
      );
      assert.equal(claimStatus('LOCK-B'), 'paid');
      const counts = read<{ n: number }>(`SELECT COUNT(*) AS n FROM payments GROUP BY idempotency_key`);
      assert.ok(
        counts.every((r) => r.n === 1),
        'no key paid twice',
      );
    },
  );

  it('released within the retries: the invoice completes with no question asked', { timeout: 60_000 }, async () => {
    const payOn = new Date(Date.now() + PAY_ON_MS).toISOString();
    const C = await submit(invoice('LOCK-C', payOn));
    const holder = await lockWhileWaiting([C], ['LOCK-C'], payOn);
    try {
      await until(() => failedAttempts(C, 'b').length > 0, { timeoutMs: 30_000, what: 'a failed payment attempt of line b' });
    } finally {
      holder.exec('ROLLBACK');
      holder.close();
    }
    // Nobody answers anything: a question would leave the task input_required and time this out.
    const c = await untilTask(C, (t) => t.status === 'completed' || t.status === 'failed' || t.status === 'input_required', 'C ends');
    assert.equal(c.status, 'completed', JSON.stringify(c));
    assert.equal(c.result.structuredContent.status, 'paid');
    const failed = failedAttempts(C, 'b');
    assert.ok(failed.length >= 1 && failed.length <= PAYMENT_RETRIES, `${failed.length} failed attempts, within the retries`);
    assert.deepEqual(paidLines('LOCK-C'), ['a', 'b', 'c']);
    assert.deepEqual(
      attempts('LOCK-C').map((x) => `${x.line_id}:${x.outcome}`),
      ['a:paid', 'b:paid', 'c:paid'],
    );
    assert.equal(claimStatus('LOCK-C'), 'paid');
  });
});
