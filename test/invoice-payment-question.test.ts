/**
 * The invoice workflow when a payment keeps failing (examples/invoice/tools.ts), in process with a
 * ledger whose `pay` fails on demand: a transient failure within the step's retries is retried
 * without a question; one that outlasts them asks a person (retry_now, retry_later, abort), and
 * decline or cancel of that question pay nothing more. Every ending is a result — `paid`, or
 * `partially_paid` with the paid and unpaid lines — never a half-paid failed task, and an aborted
 * invoice can be resubmitted, which pays only the lines not yet paid. Ledger rows are counted.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { McpServer } from '@modelcontextprotocol/server';
import Database from 'better-sqlite3';
import { Erp } from '../examples/invoice/erp.js';
import { Ledger, type Payment } from '../examples/invoice/ledger.js';
import { PAYMENT_FAILURE_SCHEMA, registerInvoiceTasks, registerLedgerTools } from '../examples/invoice/tools.js';
import { createTaskServer, silentLogger, type TaskServer } from '../src/index.js';
import { ModernRawClient } from './helpers/modern-client.js';
import { until } from './helpers/until.js';

/** A real ledger whose `pay` fails on demand, counting every call. */
class FlakyLedger extends Ledger {
  /** Idempotency key → how many more calls fail (`Infinity`: until changed), and with what. */
  readonly failures = new Map<string, { left: number; error: () => Error }>();
  /** Keys whose next call finds a newer run's fencing token in the ledger first. */
  readonly staleFor = new Set<string>();
  /** Every call's idempotency key, in order. */
  readonly calls: string[] = [];

  override pay(input: Parameters<Ledger['pay']>[0]): Payment {
    const key = `${input.invoiceId}/${input.lineId}`;
    this.calls.push(key);
    const failure = this.failures.get(key);
    if (failure && failure.left > 0) {
      failure.left--;
      throw failure.error();
    }
    if (this.staleFor.delete(key)) super.pay({ ...input, invoiceId: 'NEWER-RUN', fencingToken: input.fencingToken + 1 });
    return super.pay(input);
  }
}

const busy = () => Object.assign(new Error('database is locked'), { name: 'SqliteError', code: 'SQLITE_BUSY' });
const refused = () => new Error('beneficiary account closed');

const dir = mkdtempSync(join(tmpdir(), 'mcp-tasks-payq-'));
const ledgerPath = join(dir, 'ledger.db');
const ledger = new FlakyLedger(ledgerPath);
let server: TaskServer;
let client: ModernRawClient;

before(async () => {
  server = createTaskServer({
    store: 'memory:',
    storeOptions: { policy: { pollIntervalMs: 50 } },
    logger: silentLogger,
    createMcpServer: () => {
      const mcp = new McpServer({ name: 'invoice-test', version: '0' });
      registerLedgerTools(mcp, ledger);
      return mcp;
    },
  });
  const erp = new Erp({
    vendors: [{ vendorId: 'V1', name: 'Acme', currency: 'EUR', active: true }],
    purchaseOrders: [{ poNumber: 'PO1', vendorId: 'V1', currency: 'EUR', amount: 1_000_000 }],
  });
  // One automatic retry (a wait of 0.5 s) per payment attempt.
  registerInvoiceTasks(server.tasks, { erp, ledger, runtime: server.runtime, paymentRetries: 1, logger: silentLogger });
  const http = await server.listen({ port: 0 });
  client = new ModernRawClient(http.url);
});
after(async () => {
  await server.close();
  ledger.close();
  rmSync(dir, { recursive: true, force: true });
});

const invoice = (invoiceId: string) => ({
  invoiceId,
  vendorId: 'V1',
  poNumber: 'PO1',
  currency: 'EUR',
  issuedOn: '2026-11-20',
  lines: [
    { lineId: 'a', description: 'chairs', amount: 10 },
    { lineId: 'b', description: 'desks', amount: 20.5 },
    { lineId: 'c', description: 'lamps', amount: 30 },
  ],
});

async function submit(invoiceId: string): Promise<string> {
  const res = await client.request('tools/call', { name: 'process_invoice', arguments: { invoice: invoice(invoiceId) } });
  assert.equal(res.result?.resultType, 'task', JSON.stringify(res));
  return res.result.taskId;
}

/** Polls `tasks/get` until `ok(task)`; resolves with the task. */
async function untilTask(taskId: string, ok: (task: any) => boolean, what: string): Promise<any> {
  let task: any;
  return until(
    async () => {
      task = (await client.request('tasks/get', { taskId })).result;
      return task && ok(task) && task;
    },
    { timeoutMs: 20_000, intervalMs: 25, what: () => `${what}: ${JSON.stringify(task)}` },
  );
}

/** Waits until the task asks question `key` (and nothing else); resolves with its message. */
async function question(taskId: string, key: string): Promise<string> {
  const task = await untilTask(taskId, (t) => t.status === 'input_required' && t.inputRequests?.[key], `question ${key}`);
  assert.deepEqual(Object.keys(task.inputRequests), [key]);
  return task.inputRequests[key].params.message;
}

async function answer(taskId: string, key: string, response: object): Promise<void> {
  const res = await client.request('tasks/update', { taskId, inputResponses: { [key]: response } });
  assert.equal(res.result?.resultType, 'complete', JSON.stringify(res));
}

async function approve(taskId: string): Promise<string> {
  const message = await question(taskId, 'elicit-1');
  await answer(taskId, 'elicit-1', { action: 'accept', content: { decision: 'approve' } });
  return message;
}

const done = (taskId: string) => untilTask(taskId, (t) => t.status === 'completed' || t.status === 'failed', 'the end');
const paidLines = (invoiceId: string) => ledger.payments(invoiceId).map((p) => p.lineId);
const claimStatus = (invoiceId: string) => {
  const db = new Database(ledgerPath, { readonly: true });
  try {
    return (db.prepare(`SELECT status FROM claims WHERE invoice_id = ?`).get(invoiceId) as { status: string } | undefined)?.status;
  } finally {
    db.close();
  }
};
const callsFor = (key: string) => ledger.calls.filter((k) => k === key).length;

describe('a payment that fails', () => {
  it('transiently, within the step retries: retried, paid, no question asked', { timeout: 30_000 }, async () => {
    ledger.failures.set('T1/b', { left: 1, error: busy });
    const taskId = await submit('T1');
    await approve(taskId);
    // Nobody answers anything more: a question would leave the task input_required and time this out.
    const end = await done(taskId);
    assert.equal(end.status, 'completed');
    assert.equal(end.result.structuredContent.status, 'paid');
    assert.deepEqual(end.result.structuredContent.unpaid, []);
    assert.equal(callsFor('T1/b'), 2, 'one failed attempt, one retry');
    assert.deepEqual(paidLines('T1'), ['a', 'b', 'c']);
    assert.equal(claimStatus('T1'), 'paid');
  });

  it('beyond the retries: asks; retry_now asks again while it still fails, then pays the rest once', { timeout: 30_000 }, async () => {
    ledger.failures.set('T2/b', { left: Infinity, error: busy });
    const taskId = await submit('T2');
    await approve(taskId);
    const first = await question(taskId, 'payment-failed:b#1');
    assert.match(first, /^Payment of line b \(EUR 20\.50\) of invoice T2 failed after automatic retries: database is locked\./);
    assert.match(first, /Already paid: line a \(EUR 10\.00\)\. Not yet paid: line b \(EUR 20\.50\), line c \(EUR 30\.00\)\./);
    assert.match(first, /retry_now .* retry_later .* abort/);
    const asked = (await client.request('tasks/get', { taskId })).result.inputRequests['payment-failed:b#1'].params;
    assert.deepEqual(asked.requestedSchema, PAYMENT_FAILURE_SCHEMA);
    assert.equal(callsFor('T2/b'), 2);
    assert.deepEqual(paidLines('T2'), ['a'], 'the task waits half-paid, not ended');
    assert.equal(claimStatus('T2'), 'approved');

    // An answer outside the schema is refused and changes nothing.
    const bad = await client.request('tasks/update', {
      taskId,
      inputResponses: { 'payment-failed:b#1': { action: 'accept', content: { choice: 'pay_twice' } } },
    });
    assert.equal(bad.error?.code, -32602, JSON.stringify(bad));

    await answer(taskId, 'payment-failed:b#1', { action: 'accept', content: { choice: 'retry_now' } });
    const second = await question(taskId, 'payment-failed:b#2');
    assert.match(second, /failed again \(attempt 2\)/);
    assert.equal(callsFor('T2/b'), 4);

    ledger.failures.delete('T2/b');
    await answer(taskId, 'payment-failed:b#2', { action: 'accept', content: { choice: 'retry_now' } });
    const end = await done(taskId);
    assert.equal(end.result.structuredContent.status, 'paid', JSON.stringify(end.result));
    assert.deepEqual(
      end.result.structuredContent.payments.map((p: any) => p.lineId),
      ['a', 'b', 'c'],
    );
    assert.equal(callsFor('T2/b'), 5);
    assert.deepEqual(
      ledger.attempts({ invoiceId: 'T2' }).map((a) => `${a.lineId}:${a.outcome}`),
      ['a:paid', 'b:paid', 'c:paid'],
      'failed calls never reached the ledger; each line paid once',
    );
    assert.equal(claimStatus('T2'), 'paid');
  });

  it('for good (not transient): asks at once, without automatic retries', { timeout: 30_000 }, async () => {
    ledger.failures.set('T3/b', { left: 1, error: refused });
    const taskId = await submit('T3');
    await approve(taskId);
    assert.match(await question(taskId, 'payment-failed:b#1'), /failed after automatic retries: beneficiary account closed\./);
    assert.equal(callsFor('T3/b'), 1);
    await answer(taskId, 'payment-failed:b#1', { action: 'accept', content: { choice: 'retry_now' } });
    assert.equal((await done(taskId)).result.structuredContent.status, 'paid');
    assert.deepEqual(paidLines('T3'), ['a', 'b', 'c']);
  });

  it('abort: a partially_paid result listing paid and unpaid lines; a resubmission pays only the unpaid ones', { timeout: 30_000 }, async () => {
    ledger.failures.set('T4/b', { left: Infinity, error: busy });
    const first = await submit('T4');
    await approve(first);
    await question(first, 'payment-failed:b#1');
    await answer(first, 'payment-failed:b#1', { action: 'accept', content: { choice: 'abort', comment: 'bank down, pay next week' } });
    const end = await done(first);
    assert.equal(end.status, 'completed');
    assert.notEqual(end.result.isError, true, 'an aborted payment is a result, not an error');
    const sc = end.result.structuredContent;
    assert.equal(sc.status, 'partially_paid');
    assert.deepEqual(
      sc.payments.map((p: any) => p.lineId),
      ['a'],
    );
    assert.deepEqual(sc.unpaid, [
      { lineId: 'b', amount: 20.5 },
      { lineId: 'c', amount: 30 },
    ]);
    assert.deepEqual(sc.paymentFailure, { lineId: 'b', error: 'database is locked', decision: 'aborted', comment: 'bank down, pay next week' });
    assert.match(
      end.result.content[0].text,
      /only partly paid: 1 of 3 line\(s\), EUR 10\.00 of EUR 60\.50.*Not paid: line b \(EUR 20\.50\), line c \(EUR 30\.00\)\. Resubmit/,
    );
    assert.equal(claimStatus('T4'), 'partially_paid');
    assert.equal(callsFor('T4/c'), 0, 'nothing after the failed line was tried');

    ledger.failures.delete('T4/b');
    const second = await submit('T4');
    assert.match(await approve(second), /3 line\(s\), total EUR 60\.50; 1 of them \(EUR 10\.00\) already paid by an earlier submission and not paid again\?$/);
    const again = await done(second);
    assert.equal(again.result.structuredContent.status, 'paid', JSON.stringify(again.result));
    const paidA = again.result.structuredContent.payments.find((p: any) => p.lineId === 'a');
    assert.equal(paidA.paidAt, sc.payments[0].paidAt, 'line a is the first payment');
    assert.deepEqual(paidLines('T4').sort(), ['a', 'b', 'c']);
    assert.deepEqual(
      ledger.attempts({ invoiceId: 'T4' }).map((a) => `${a.lineId}:${a.outcome}:${a.taskId === first ? 1 : 2}`),
      ['a:paid:1', 'a:duplicate:2', 'b:paid:2', 'c:paid:2'],
    );
    assert.equal(claimStatus('T4'), 'paid');
  });

  for (const action of ['decline', 'cancel'] as const) {
    it(`${action} of the question: nothing more is paid, the invoice ends partially_paid`, { timeout: 30_000 }, async () => {
      const id = `T5-${action}`;
      ledger.failures.set(`${id}/b`, { left: Infinity, error: busy });
      const taskId = await submit(id);
      await approve(taskId);
      await question(taskId, 'payment-failed:b#1');
      const calls = callsFor(`${id}/b`);
      await answer(taskId, 'payment-failed:b#1', { action });
      const end = await done(taskId);
      assert.equal(end.result.structuredContent.status, 'partially_paid');
      assert.equal(end.result.structuredContent.paymentFailure.decision, action === 'decline' ? 'declined' : 'cancelled');
      assert.match(
        end.result.content[0].text,
        new RegExp(`the question what to do was ${action === 'decline' ? 'declined' : 'cancelled'}, so nothing more was paid`),
      );
      assert.equal(callsFor(`${id}/b`), calls, 'no retry without a person asking for it');
      assert.deepEqual(paidLines(id), ['a']);
      assert.equal(claimStatus(id), 'partially_paid');
      ledger.failures.delete(`${id}/b`);
    });
  }

  it('retry_later: a durable wait until the time asked; cancelling meanwhile leaves the invoice partially_paid', { timeout: 30_000 }, async () => {
    ledger.failures.set('T6/b', { left: Infinity, error: busy });
    const taskId = await submit('T6');
    await approve(taskId);
    await question(taskId, 'payment-failed:b#1');
    const before = Date.now();
    await answer(taskId, 'payment-failed:b#1', { action: 'accept', content: { choice: 'retry_later', retryInMinutes: 5 } });
    const waiting = await untilTask(taskId, (t) => t.status === 'working' && /retrying at/.test(t.statusMessage ?? ''), 'the retry wait');
    const at = /retrying at (\S+) as asked \(attempt 2\)$/.exec(waiting.statusMessage)?.[1];
    assert.ok(at, waiting.statusMessage);
    assert.match(waiting.statusMessage, /^Payment of line b \(EUR 20\.50\) of invoice T6 failed; retrying at /);
    assert.ok(Date.parse(at) >= before + 5 * 60_000, `${at} is 5 minutes after the answer`);
    const calls = callsFor('T6/b');
    assert.equal((await client.request('tasks/cancel', { taskId })).result?.resultType, 'complete');
    await untilTask(taskId, (t) => t.status === 'cancelled', 'cancelled');
    await until(() => claimStatus('T6') === 'partially_paid', { what: 'the claim of the cancelled invoice' });
    assert.equal(callsFor('T6/b'), calls, 'not retried before its time');
    assert.deepEqual(paidLines('T6'), ['a']);
  });

  it('with a stale fencing token: never asked about, nothing paid (the run is not the task’s current one)', { timeout: 30_000 }, async () => {
    ledger.staleFor.add('T7/b');
    const taskId = await submit('T7');
    await approve(taskId);
    const end = await done(taskId);
    assert.equal(end.result?.isError, true, JSON.stringify(end));
    assert.match(end.result.content[0].text, /Stale fencing token/);
    assert.deepEqual(paidLines('T7'), ['a']);
    assert.deepEqual(
      ledger.attempts({ invoiceId: 'T7', lineId: 'b' }).map((a) => a.outcome),
      ['stale_token'],
      'refused once, not retried',
    );
  });
});
