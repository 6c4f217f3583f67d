/**
 * The invoice demo's ledger (examples/invoice/ledger.ts): fencing tokens per task (a lower token
 * than one already seen is refused and logged), the attempt log `payment_attempts` (its columns are
 * a contract with the fault tests that read it directly), idempotent payments, busy errors that
 * reach the caller with their SQLite code and write nothing, and claims that an aborted invoice
 * leaves open to a resubmission.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import Database from 'better-sqlite3';
import { validateInvoice, type Invoice } from '../examples/invoice/invoice.js';
import { Erp } from '../examples/invoice/erp.js';
import { Ledger, StaleFencingTokenError } from '../examples/invoice/ledger.js';
import { isTransientError, NonRetryableError } from '../src/index.js';

const dir = mkdtempSync(join(tmpdir(), 'mcp-tasks-ledger-'));
after(() => rmSync(dir, { recursive: true, force: true }));
let files = 0;
const fresh = () => {
  const path = join(dir, `ledger-${++files}.db`);
  return { path, ledger: new Ledger(path) };
};
const alive = async () => false;

describe('Ledger.pay', () => {
  it('pays once per idempotency key and logs every call as an attempt with the caller pid and token', () => {
    const { ledger } = fresh();
    const first = ledger.pay({
      invoiceId: 'I1',
      lineId: 'a',
      amountCents: 1050,
      currency: 'EUR',
      taskId: 't1',
      fencingToken: 1,
      now: new Date('2026-11-01T10:00:00Z'),
    });
    assert.deepEqual(first, { invoiceId: 'I1', lineId: 'a', amount: 10.5, currency: 'EUR', paidAt: '2026-11-01T10:00:00.000Z', taskId: 't1' });
    // A repeat — even from another task (a resubmission) and naming another amount — returns the first payment.
    const again = ledger.pay({ invoiceId: 'I1', lineId: 'a', amountCents: 9999, currency: 'EUR', taskId: 't2', fencingToken: 1 });
    assert.deepEqual(again, first);
    assert.equal(ledger.payments('I1').length, 1);
    const attempts = ledger.attempts();
    assert.deepEqual(
      attempts.map(({ idempotencyKey, invoiceId, lineId, taskId, fencingToken, pid, outcome }) => ({
        idempotencyKey,
        invoiceId,
        lineId,
        taskId,
        fencingToken,
        pid,
        outcome,
      })),
      [
        { idempotencyKey: 'I1/a', invoiceId: 'I1', lineId: 'a', taskId: 't1', fencingToken: 1, pid: process.pid, outcome: 'paid' },
        { idempotencyKey: 'I1/a', invoiceId: 'I1', lineId: 'a', taskId: 't2', fencingToken: 1, pid: process.pid, outcome: 'duplicate' },
      ],
    );
    assert.equal(attempts[0]!.attemptedAt, '2026-11-01T10:00:00.000Z');
    assert.ok(attempts[1]!.id > attempts[0]!.id);
    assert.ok(!Number.isNaN(Date.parse(attempts[1]!.attemptedAt)));
    ledger.close();
  });

  it('refuses a token lower than the highest seen for the task, logs it as stale_token, and accepts equal and higher ones', () => {
    const { ledger } = fresh();
    ledger.pay({ invoiceId: 'I1', lineId: 'a', amountCents: 100, currency: 'EUR', taskId: 't1', fencingToken: 3 });
    assert.equal(ledger.highestToken('t1'), 3);
    let refused: unknown;
    try {
      ledger.pay({ invoiceId: 'I1', lineId: 'b', amountCents: 200, currency: 'EUR', taskId: 't1', fencingToken: 2 });
    } catch (error) {
      refused = error;
    }
    assert.ok(refused instanceof StaleFencingTokenError, String(refused));
    assert.ok(refused instanceof NonRetryableError, 'ctx.step must not retry it');
    assert.equal(isTransientError(refused), false);
    assert.deepEqual([refused.taskId, refused.token, refused.highest], ['t1', 2, 3]);
    assert.match(refused.message, /Stale fencing token 2 for task t1: the ledger has already seen token 3/);
    assert.deepEqual(
      ledger.payments('I1').map((p) => p.lineId),
      ['a'],
      'nothing paid for the stale call',
    );
    const stale = ledger.attempts({ outcome: 'stale_token' });
    assert.equal(stale.length, 1);
    assert.deepEqual([stale[0]!.lineId, stale[0]!.taskId, stale[0]!.fencingToken], ['b', 't1', 2]);
    assert.equal(ledger.highestToken('t1'), 3, 'a refused token changes nothing');

    // The same run retrying (equal token) and a newer run (higher token) go through.
    ledger.pay({ invoiceId: 'I1', lineId: 'b', amountCents: 200, currency: 'EUR', taskId: 't1', fencingToken: 3 });
    ledger.pay({ invoiceId: 'I1', lineId: 'c', amountCents: 300, currency: 'EUR', taskId: 't1', fencingToken: 7 });
    assert.equal(ledger.highestToken('t1'), 7);
    assert.throws(() => ledger.pay({ invoiceId: 'I1', lineId: 'b', amountCents: 200, currency: 'EUR', taskId: 't1', fencingToken: 3 }), StaleFencingTokenError);
    // Tokens are per task: another task starts from its own.
    ledger.pay({ invoiceId: 'I2', lineId: 'a', amountCents: 100, currency: 'EUR', taskId: 't2', fencingToken: 1 });
    assert.deepEqual(
      ledger.attempts({ taskId: 't1' }).map((a) => `${a.lineId}@${a.fencingToken}:${a.outcome}`),
      ['a@3:paid', 'b@2:stale_token', 'b@3:paid', 'c@7:paid', 'b@3:stale_token'],
    );
    assert.deepEqual(
      ledger.attempts({ invoiceId: 'I1', lineId: 'b', outcome: 'paid' }).map((a) => a.fencingToken),
      [3],
    );
    assert.deepEqual(
      ledger.payments().map((p) => `${p.invoiceId}/${p.lineId}`),
      ['I1/a', 'I1/b', 'I1/c', 'I2/a'],
    );
    assert.throws(() => ledger.pay({ invoiceId: 'I1', lineId: 'z', amountCents: 1, currency: 'EUR', taskId: 't1', fencingToken: -1 }), TypeError);
    assert.throws(() => ledger.pay({ invoiceId: 'I1', lineId: 'z', amountCents: 1, currency: 'EUR', taskId: 't1', fencingToken: 1.5 }), TypeError);
    ledger.close();
  });

  it('fails with SQLITE_BUSY (transient) and writes nothing while another connection holds the write lock', () => {
    const { path, ledger } = fresh();
    ledger.pay({ invoiceId: 'I1', lineId: 'a', amountCents: 100, currency: 'EUR', taskId: 't1', fencingToken: 1 });
    const holder = new Database(path);
    holder.exec('BEGIN IMMEDIATE');
    let busy: unknown;
    try {
      ledger.pay({ invoiceId: 'I1', lineId: 'b', amountCents: 200, currency: 'EUR', taskId: 't1', fencingToken: 2 });
    } catch (error) {
      busy = error;
    }
    assert.equal((busy as { code?: string }).code, 'SQLITE_BUSY', String(busy));
    assert.equal(isTransientError(busy), true, 'ctx.step retries it by default');
    assert.throws(
      () => ledger.setStatus('I1', 't1', 'approved', 2),
      (e: { code?: string }) => e.code === 'SQLITE_BUSY',
    );
    holder.exec('ROLLBACK');
    holder.close();
    assert.equal(ledger.attempts().length, 1, 'the busy call logged no attempt');
    assert.equal(ledger.payments('I1').length, 1);
    assert.equal(ledger.highestToken('t1'), 1, 'nor recorded its token');
    ledger.pay({ invoiceId: 'I1', lineId: 'b', amountCents: 200, currency: 'EUR', taskId: 't1', fencingToken: 2 });
    assert.equal(ledger.payments('I1').length, 2);
    ledger.close();
  });

  it('keeps the payment_attempts columns other tests read directly', () => {
    const { path, ledger } = fresh();
    ledger.pay({ invoiceId: 'I1', lineId: 'a', amountCents: 100, currency: 'EUR', taskId: 't1', fencingToken: 4 });
    const db = new Database(path, { readonly: true });
    const columns = db.prepare(`PRAGMA table_info(payment_attempts)`).all() as { name: string; type: string; notnull: number; pk: number }[];
    assert.deepEqual(
      columns.map((c) => `${c.name} ${c.type}${c.notnull ? ' NOT NULL' : ''}${c.pk ? ' PK' : ''}`),
      [
        'id INTEGER PK',
        'idempotency_key TEXT NOT NULL',
        'invoice_id TEXT NOT NULL',
        'line_id TEXT NOT NULL',
        'task_id TEXT NOT NULL',
        'fencing_token INTEGER NOT NULL',
        'pid INTEGER NOT NULL',
        'attempted_at TEXT NOT NULL',
        'outcome TEXT NOT NULL',
      ],
    );
    const row = db.prepare(`SELECT * FROM payment_attempts`).get() as Record<string, unknown>;
    assert.equal(row.idempotency_key, 'I1/a');
    assert.equal(row.fencing_token, 4);
    assert.equal(row.pid, process.pid);
    assert.equal(row.outcome, 'paid');
    db.close();
    ledger.close();
  });
});

describe('Ledger claims', () => {
  it('refuses claim and status writes with a stale token', async () => {
    const { ledger } = fresh();
    assert.deepEqual(await ledger.claim('I1', 't1', 'PO1', 1000, alive, 5), { ok: true });
    await assert.rejects(ledger.claim('I1', 't1', 'PO1', 1000, alive, 4), StaleFencingTokenError);
    assert.throws(() => ledger.setStatus('I1', 't1', 'approved', 4), StaleFencingTokenError);
    assert.equal(await ledger.committedCents('PO1', 'other', alive), 1000);
    ledger.setStatus('I1', 't1', 'rejected', 5);
    assert.equal(await ledger.committedCents('PO1', 'other', alive), 0, 'the later write went through');
    ledger.close();
  });

  it('lets a partially_paid invoice be claimed again, counting only its paid cents against the PO meanwhile', async () => {
    const { ledger } = fresh();
    assert.deepEqual(await ledger.claim('I1', 't1', 'PO1', 600, alive, 1), { ok: true });
    ledger.setStatus('I1', 't1', 'approved', 1);
    ledger.pay({ invoiceId: 'I1', lineId: 'a', amountCents: 100, currency: 'EUR', taskId: 't1', fencingToken: 1 });
    assert.deepEqual(await ledger.claim('I1', 't2', 'PO1', 600, alive, 1), { ok: false, reason: 'invoice I1 was already processed (approved, task t1)' });
    assert.equal(await ledger.committedCents('PO1', 'other', alive), 600);
    ledger.setStatus('I1', 't1', 'partially_paid', 1);
    assert.equal(await ledger.committedCents('PO1', 'other', alive), 100, 'only what was paid stays committed');
    assert.deepEqual(await ledger.claim('I1', 't2', 'PO1', 600, alive, 1), { ok: true });
    assert.equal(await ledger.committedCents('PO1', 'other', alive), 600, 'the resubmission commits the whole invoice again');
    ledger.close();
  });
});

describe('validateInvoice with lines paid by an earlier submission', () => {
  const erp = new Erp({
    vendors: [{ vendorId: 'V1', name: 'Acme', currency: 'EUR', active: true }],
    purchaseOrders: [{ poNumber: 'PO1', vendorId: 'V1', currency: 'EUR', amount: 1000 }],
  });
  const invoice: Invoice = {
    invoiceId: 'I1',
    vendorId: 'V1',
    poNumber: 'PO1',
    currency: 'EUR',
    issuedOn: '2026-11-01',
    lines: [
      { lineId: 'a', description: 'x', amount: 1 },
      { lineId: 'b', description: 'y', amount: 2 },
    ],
  };

  it('names the lines already paid, and refuses a resubmission that changed or dropped one', () => {
    assert.deepEqual(validateInvoice(invoice, erp, 0), { ok: true, totalCents: 300, vendorName: 'Acme' });
    assert.deepEqual(validateInvoice(invoice, erp, 0, [{ lineId: 'a', amountCents: 100, currency: 'EUR' }]), {
      ok: true,
      totalCents: 300,
      vendorName: 'Acme',
      alreadyPaid: ['a'],
    });
    assert.deepEqual(validateInvoice(invoice, erp, 0, [{ lineId: 'a', amountCents: 150, currency: 'EUR' }]), {
      ok: false,
      reason: 'line a was already paid (EUR 1.50) by an earlier submission; this one says EUR 1.00',
    });
    assert.deepEqual(validateInvoice(invoice, erp, 0, [{ lineId: 'z', amountCents: 100, currency: 'EUR' }]), {
      ok: false,
      reason: 'line z was already paid (EUR 1.00) by an earlier submission and is missing from this one',
    });
  });
});
