import { mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import Database from 'better-sqlite3';
import { fromCents } from './money.js';

/** One payment in the ledger. `amount` in major units, `paidAt` ISO 8601. */
export interface Payment {
  invoiceId: string;
  lineId: string;
  amount: number;
  currency: string;
  paidAt: string;
  taskId: string;
}

/** Where an invoice stands in the ledger. `open` = being processed. */
export type ClaimStatus = 'open' | 'approved' | 'rejected' | 'paid' | 'released';

/** Tells whether the task that holds a claim is gone for good (unknown, cancelled or failed). */
export type IsTaskDead = (taskId: string) => Promise<boolean>;

/**
 * The demo's payment system: a durable SQLite ledger standing in for a bank or ERP payment API.
 * It is the side effect the workflow must perform exactly once, so every payment carries an
 * idempotency key (`<invoiceId>/<lineId>`): paying twice with the same key returns the first
 * payment. `claim` records that an invoice is being processed, so no invoice is processed twice.
 */
export class Ledger {
  private readonly db: Database.Database;

  /** `path` is a file, or `:memory:`. */
  constructor(path: string) {
    if (path !== ':memory:') mkdirSync(dirname(path), { recursive: true });
    this.db = new Database(path);
    this.db.pragma('journal_mode = WAL');
    this.db.pragma('synchronous = FULL');
    this.db.pragma('busy_timeout = 5000');
    this.db.exec(`
      CREATE TABLE IF NOT EXISTS claims (
        invoice_id  TEXT PRIMARY KEY,
        task_id     TEXT NOT NULL,
        po_number   TEXT NOT NULL,
        total_cents INTEGER NOT NULL,
        status      TEXT NOT NULL
      );
      CREATE TABLE IF NOT EXISTS payments (
        idempotency_key TEXT PRIMARY KEY,
        invoice_id      TEXT NOT NULL,
        line_id         TEXT NOT NULL,
        amount_cents    INTEGER NOT NULL,
        currency        TEXT NOT NULL,
        paid_at         TEXT NOT NULL,
        task_id         TEXT NOT NULL
      );`);
  }

  /**
   * Claims `invoiceId` for `taskId`. Succeeds if unclaimed, already claimed by this task (a step
   * re-run after a crash), or claimed by a dead task; otherwise names the holder.
   */
  async claim(
    invoiceId: string,
    taskId: string,
    poNumber: string,
    totalCents: number,
    isDead: IsTaskDead,
  ): Promise<{ ok: true } | { ok: false; reason: string }> {
    const existing = this.db.prepare(`SELECT task_id, status FROM claims WHERE invoice_id = ?`).get(invoiceId) as
      { task_id: string; status: ClaimStatus } | undefined;
    if (existing && existing.task_id !== taskId && existing.status !== 'released' && !(existing.status === 'open' && (await isDead(existing.task_id)))) {
      return { ok: false, reason: `invoice ${invoiceId} was already processed (${existing.status}, task ${existing.task_id})` };
    }
    this.db
      .prepare(
        `INSERT INTO claims (invoice_id, task_id, po_number, total_cents, status) VALUES (?, ?, ?, ?, 'open')
                ON CONFLICT (invoice_id) DO UPDATE SET task_id = excluded.task_id, po_number = excluded.po_number, total_cents = excluded.total_cents,
                status = CASE WHEN claims.task_id = excluded.task_id THEN claims.status ELSE 'open' END`,
      )
      .run(invoiceId, taskId, poNumber, totalCents);
    return { ok: true };
  }

  /** Cents committed against `poNumber` by live invoices other than `excludingInvoiceId`. */
  async committedCents(poNumber: string, excludingInvoiceId: string, isDead: IsTaskDead): Promise<number> {
    const rows = this.db
      .prepare(`SELECT task_id, total_cents, status FROM claims WHERE po_number = ? AND invoice_id != ? AND status IN ('open', 'approved', 'paid')`)
      .all(poNumber, excludingInvoiceId) as { task_id: string; total_cents: number; status: ClaimStatus }[];
    let sum = 0;
    for (const row of rows) if (row.status !== 'open' || !(await isDead(row.task_id))) sum += row.total_cents;
    return sum;
  }

  /** Moves the claim of `invoiceId` held by `taskId` to `status`. */
  setStatus(invoiceId: string, taskId: string, status: ClaimStatus): void {
    this.db.prepare(`UPDATE claims SET status = ? WHERE invoice_id = ? AND task_id = ?`).run(status, invoiceId, taskId);
  }

  /** Pays once per idempotency key; a repeated call returns the original payment unchanged. */
  pay(input: { invoiceId: string; lineId: string; amountCents: number; currency: string; taskId: string; now?: Date }): Payment {
    const key = `${input.invoiceId}/${input.lineId}`;
    this.db
      .prepare(`INSERT OR IGNORE INTO payments (idempotency_key, invoice_id, line_id, amount_cents, currency, paid_at, task_id) VALUES (?, ?, ?, ?, ?, ?, ?)`)
      .run(key, input.invoiceId, input.lineId, input.amountCents, input.currency, (input.now ?? new Date()).toISOString(), input.taskId);
    return toPayment(this.db.prepare(`SELECT * FROM payments WHERE idempotency_key = ?`).get(key) as PaymentRow);
  }

  /** All payments, or those of one invoice, oldest first. */
  payments(invoiceId?: string): Payment[] {
    const rows = (
      invoiceId === undefined
        ? this.db.prepare(`SELECT * FROM payments ORDER BY paid_at, invoice_id, line_id`).all()
        : this.db.prepare(`SELECT * FROM payments WHERE invoice_id = ? ORDER BY paid_at, line_id`).all(invoiceId)
    ) as PaymentRow[];
    return rows.map(toPayment);
  }

  close(): void {
    if (this.db.open) this.db.close();
  }
}

interface PaymentRow {
  invoice_id: string;
  line_id: string;
  amount_cents: number;
  currency: string;
  paid_at: string;
  task_id: string;
}

function toPayment(row: PaymentRow): Payment {
  return {
    invoiceId: row.invoice_id,
    lineId: row.line_id,
    amount: fromCents(row.amount_cents),
    currency: row.currency,
    paidAt: row.paid_at,
    taskId: row.task_id,
  };
}
