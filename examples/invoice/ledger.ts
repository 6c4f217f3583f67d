import { mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import Database from 'better-sqlite3';
import { NonRetryableError } from '../../src/index.js';
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

/**
 * Where an invoice stands in the ledger. `open` = being processed; `approved` = approved, lines
 * being paid; `paid` = every line paid; `rejected` = not approved; `released` = given up with
 * nothing paid (cancelled); `partially_paid` = given up with some lines paid and others not (a
 * person aborted after a payment kept failing, or the task was cancelled between payments).
 * `released` and `partially_paid` claims may be taken again by a resubmission of the invoice, which
 * then pays only the lines not yet paid (the payments' idempotency keys).
 */
export type ClaimStatus = 'open' | 'approved' | 'rejected' | 'paid' | 'released' | 'partially_paid';

/** Tells whether the task that holds a claim is gone for good (unknown, cancelled or failed). */
export type IsTaskDead = (taskId: string) => Promise<boolean>;

/**
 * What became of one `Ledger.pay` call that reached the ledger: `paid` — this call made the
 * payment; `duplicate` — the line was already paid (this call returned the earlier payment);
 * `stale_token` — refused, a newer run of the same task had shown the ledger a higher fencing token.
 */
export type PaymentOutcome = 'paid' | 'duplicate' | 'stale_token';

/**
 * One row of the attempt log (table `payment_attempts`): a `pay` call that got the ledger's write
 * lock, written in the same transaction as its outcome. Calls that could not get the lock (busy)
 * wrote nothing, so the log counts side-effect attempts that reached the payment system.
 */
export interface PaymentAttempt {
  /** Ascending in the order the attempts committed. */
  id: number;
  /** `<invoiceId>/<lineId>`, the payment's idempotency key. */
  idempotencyKey: string;
  invoiceId: string;
  lineId: string;
  /** The task that asked for the payment. */
  taskId: string;
  /** The fencing token it presented (`ctx.fencingToken`, the run's lease epoch). */
  fencingToken: number;
  /** `process.pid` of the process that made the call. */
  pid: number;
  /** When the call reached the ledger, ISO 8601. */
  attemptedAt: string;
  outcome: PaymentOutcome;
}

/** Which attempts `Ledger.attempts` lists (all given fields must match). */
export interface PaymentAttemptFilter {
  invoiceId?: string;
  lineId?: string;
  taskId?: string;
  outcome?: PaymentOutcome;
}

/**
 * The ledger refused a write for `taskId` because it has already seen a higher fencing token for
 * that task (`highest` > `token`): the caller is a run that lost the task to a newer run (it was
 * paused — SIGSTOP, a GC pause — after its last lease check, and another instance took over). Nothing
 * was paid or changed; a refused `pay` is still logged as a `stale_token` attempt. A
 * `NonRetryableError`, so `ctx.step` records it at once instead of retrying it (and the step's
 * record is then refused by the engine's own fencing, so the stale run stops).
 */
export class StaleFencingTokenError extends NonRetryableError {
  constructor(
    readonly taskId: string,
    readonly token: number,
    readonly highest: number,
  ) {
    super(`Stale fencing token ${token} for task ${taskId}: the ledger has already seen token ${highest} (a newer run of the task acts for it now)`);
    this.name = 'StaleFencingTokenError';
  }
}

/** Options of a `Ledger`. */
export interface LedgerOptions {
  /**
   * How long one write waits for another connection's write lock before failing with SQLite's
   * `SQLITE_BUSY` (ms, default 100). better-sqlite3 waits synchronously, blocking the process's event
   * loop (and so its lease renewals), so keep it short: the workflow's steps retry busy errors
   * asynchronously (`ctx.step` transient retries).
   */
  busyTimeoutMs?: number;
}

/**
 * The demo's payment system: a durable SQLite ledger standing in for a bank or ERP payment API.
 * It is the side effect the workflow must perform exactly once, so every payment carries an
 * idempotency key (`<invoiceId>/<lineId>`): paying twice with the same key returns the first
 * payment. `claim` records that an invoice is being processed, so no invoice is processed twice.
 *
 * Fencing: every write for a task (`pay`, `claim`, `setStatus`) presents the run's fencing token
 * (`ctx.fencingToken`); the ledger keeps the highest token seen per task (table `fencing_tokens`)
 * and refuses lower ones with `StaleFencingTokenError`, checked and recorded in the same `BEGIN
 * IMMEDIATE` transaction as the write. Equal tokens pass (one run retrying its own write).
 *
 * Errors: a write that cannot get the write lock within `busyTimeoutMs` throws better-sqlite3's
 * `SqliteError` with `code` `SQLITE_BUSY` unchanged, which `ctx.step` treats as transient.
 */
export class Ledger {
  private readonly db: Database.Database;

  /** `path` is a file, or `:memory:`. */
  constructor(path: string, options: LedgerOptions = {}) {
    if (path !== ':memory:') mkdirSync(dirname(path), { recursive: true });
    this.db = new Database(path);
    this.db.pragma('journal_mode = WAL');
    this.db.pragma('synchronous = FULL');
    this.db.pragma(`busy_timeout = ${Math.max(0, Math.floor(options.busyTimeoutMs ?? 100))}`);
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
      );
      CREATE TABLE IF NOT EXISTS fencing_tokens (
        task_id    TEXT PRIMARY KEY,
        token      INTEGER NOT NULL,
        updated_at TEXT NOT NULL
      );
      CREATE TABLE IF NOT EXISTS payment_attempts (
        id              INTEGER PRIMARY KEY AUTOINCREMENT,
        idempotency_key TEXT NOT NULL,
        invoice_id      TEXT NOT NULL,
        line_id         TEXT NOT NULL,
        task_id         TEXT NOT NULL,
        fencing_token   INTEGER NOT NULL,
        pid             INTEGER NOT NULL,
        attempted_at    TEXT NOT NULL,
        outcome         TEXT NOT NULL
      );
      CREATE INDEX IF NOT EXISTS payment_attempts_invoice ON payment_attempts (invoice_id, line_id);`);
  }

  /**
   * Claims `invoiceId` for `taskId` (fenced by `fencingToken`, see the class comment). Succeeds if
   * unclaimed, already claimed by this task (a step re-run after a crash), claimed by a dead task
   * while `open`, or `released` / `partially_paid` (a resubmission); otherwise names the holder.
   * Throws `StaleFencingTokenError` for a stale token, `SqliteError` (`SQLITE_BUSY`) when locked.
   */
  async claim(
    invoiceId: string,
    taskId: string,
    poNumber: string,
    totalCents: number,
    isDead: IsTaskDead,
    fencingToken: number,
  ): Promise<{ ok: true } | { ok: false; reason: string }> {
    checkToken(fencingToken);
    const existing = this.db.prepare(`SELECT task_id, status FROM claims WHERE invoice_id = ?`).get(invoiceId) as
      { task_id: string; status: ClaimStatus } | undefined;
    if (
      existing &&
      existing.task_id !== taskId &&
      existing.status !== 'released' &&
      existing.status !== 'partially_paid' &&
      !(existing.status === 'open' && (await isDead(existing.task_id)))
    ) {
      return { ok: false, reason: `invoice ${invoiceId} was already processed (${existing.status}, task ${existing.task_id})` };
    }
    this.fenced(taskId, fencingToken, () =>
      this.db
        .prepare(
          `INSERT INTO claims (invoice_id, task_id, po_number, total_cents, status) VALUES (?, ?, ?, ?, 'open')
                ON CONFLICT (invoice_id) DO UPDATE SET task_id = excluded.task_id, po_number = excluded.po_number, total_cents = excluded.total_cents,
                status = CASE WHEN claims.task_id = excluded.task_id THEN claims.status ELSE 'open' END`,
        )
        .run(invoiceId, taskId, poNumber, totalCents),
    );
    return { ok: true };
  }

  /**
   * Cents committed against `poNumber` by invoices other than `excludingInvoiceId`: the total of
   * live claims (`open` of a live task, `approved`, `paid`) and the cents actually paid for
   * `partially_paid` ones.
   */
  async committedCents(poNumber: string, excludingInvoiceId: string, isDead: IsTaskDead): Promise<number> {
    const rows = this.db
      .prepare(
        `SELECT c.task_id, c.total_cents, c.status,
                (SELECT COALESCE(SUM(p.amount_cents), 0) FROM payments p WHERE p.invoice_id = c.invoice_id) AS paid_cents
           FROM claims c WHERE c.po_number = ? AND c.invoice_id != ? AND c.status IN ('open', 'approved', 'paid', 'partially_paid')`,
      )
      .all(poNumber, excludingInvoiceId) as { task_id: string; total_cents: number; status: ClaimStatus; paid_cents: number }[];
    let sum = 0;
    for (const row of rows) {
      if (row.status === 'partially_paid') sum += row.paid_cents;
      else if (row.status !== 'open' || !(await isDead(row.task_id))) sum += row.total_cents;
    }
    return sum;
  }

  /**
   * Moves the claim of `invoiceId` held by `taskId` to `status` (fenced by `fencingToken`; nothing
   * happens when another task holds the claim). Throws `StaleFencingTokenError` for a stale token,
   * `SqliteError` (`SQLITE_BUSY`) when locked.
   */
  setStatus(invoiceId: string, taskId: string, status: ClaimStatus, fencingToken: number): void {
    checkToken(fencingToken);
    this.fenced(taskId, fencingToken, () =>
      this.db.prepare(`UPDATE claims SET status = ? WHERE invoice_id = ? AND task_id = ?`).run(status, invoiceId, taskId),
    );
  }

  /**
   * Pays once per idempotency key `<invoiceId>/<lineId>`: a repeated call returns the original
   * payment unchanged (whatever amount it names). One `BEGIN IMMEDIATE` transaction checks the
   * fencing token, records it, inserts the payment and logs the attempt (`payment_attempts`, with
   * `process.pid`). `amountCents` in minor units; `now` (default: the clock) is the payment time.
   *
   * Throws `StaleFencingTokenError` when a newer run of `taskId` has shown the ledger a higher
   * token (the refusal is logged as a `stale_token` attempt; nothing is paid), `TypeError` for a
   * token that is not a non-negative integer, and better-sqlite3's `SqliteError` (`code`
   * `SQLITE_BUSY`, transient) when another connection holds the write lock — then nothing was
   * written, not even an attempt.
   */
  pay(input: { invoiceId: string; lineId: string; amountCents: number; currency: string; taskId: string; fencingToken: number; now?: Date }): Payment {
    checkToken(input.fencingToken);
    const key = `${input.invoiceId}/${input.lineId}`;
    const at = (input.now ?? new Date()).toISOString();
    const logAttempt = (outcome: PaymentOutcome) =>
      this.db
        .prepare(
          `INSERT INTO payment_attempts (idempotency_key, invoice_id, line_id, task_id, fencing_token, pid, attempted_at, outcome) VALUES (?, ?, ?, ?, ?, ?, ?, ?)`,
        )
        .run(key, input.invoiceId, input.lineId, input.taskId, input.fencingToken, process.pid, at, outcome);
    const outcome = this.db
      .transaction((): { stale: number } | { row: PaymentRow } => {
        const highest = this.advance(input.taskId, input.fencingToken);
        if (highest !== undefined) {
          logAttempt('stale_token');
          return { stale: highest };
        }
        const inserted = this.db
          .prepare(
            `INSERT OR IGNORE INTO payments (idempotency_key, invoice_id, line_id, amount_cents, currency, paid_at, task_id) VALUES (?, ?, ?, ?, ?, ?, ?)`,
          )
          .run(key, input.invoiceId, input.lineId, input.amountCents, input.currency, at, input.taskId);
        logAttempt(inserted.changes === 1 ? 'paid' : 'duplicate');
        return { row: this.db.prepare(`SELECT * FROM payments WHERE idempotency_key = ?`).get(key) as PaymentRow };
      })
      .immediate();
    if ('stale' in outcome) throw new StaleFencingTokenError(input.taskId, input.fencingToken, outcome.stale);
    return toPayment(outcome.row);
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

  /** The attempt log (`payment_attempts`), oldest first, optionally filtered (see `PaymentAttemptFilter`). */
  attempts(filter: PaymentAttemptFilter = {}): PaymentAttempt[] {
    const columns = { invoiceId: 'invoice_id', lineId: 'line_id', taskId: 'task_id', outcome: 'outcome' } as const;
    const where: string[] = [];
    const values: string[] = [];
    for (const [field, column] of Object.entries(columns)) {
      const value = filter[field as keyof PaymentAttemptFilter];
      if (value === undefined) continue;
      where.push(`${column} = ?`);
      values.push(value);
    }
    const rows = this.db
      .prepare(`SELECT * FROM payment_attempts${where.length > 0 ? ` WHERE ${where.join(' AND ')}` : ''} ORDER BY id`)
      .all(...values) as AttemptRow[];
    return rows.map((row) => ({
      id: row.id,
      idempotencyKey: row.idempotency_key,
      invoiceId: row.invoice_id,
      lineId: row.line_id,
      taskId: row.task_id,
      fencingToken: row.fencing_token,
      pid: row.pid,
      attemptedAt: row.attempted_at,
      outcome: row.outcome,
    }));
  }

  /** The highest fencing token the ledger has seen for `taskId` (undefined: none yet). */
  highestToken(taskId: string): number | undefined {
    return (this.db.prepare(`SELECT token FROM fencing_tokens WHERE task_id = ?`).get(taskId) as { token: number } | undefined)?.token;
  }

  /** Closes the database connection (idempotent). */
  close(): void {
    if (this.db.open) this.db.close();
  }

  /**
   * Within a transaction: records `token` as the highest seen for `taskId` unless a higher one was
   * seen, and returns that higher one (the caller is stale) or undefined (go ahead).
   */
  private advance(taskId: string, token: number): number | undefined {
    const highest = this.highestToken(taskId);
    if (highest !== undefined && highest > token) return highest;
    if (highest !== token) {
      this.db
        .prepare(
          `INSERT INTO fencing_tokens (task_id, token, updated_at) VALUES (?, ?, ?) ON CONFLICT (task_id) DO UPDATE SET token = excluded.token, updated_at = excluded.updated_at`,
        )
        .run(taskId, token, new Date().toISOString());
    }
    return undefined;
  }

  /** Runs `write` in a `BEGIN IMMEDIATE` transaction after the fencing check (see `advance`); throws `StaleFencingTokenError` instead when stale. */
  private fenced(taskId: string, token: number, write: () => void): void {
    const stale = this.db
      .transaction(() => {
        const highest = this.advance(taskId, token);
        if (highest === undefined) write();
        return highest;
      })
      .immediate();
    if (stale !== undefined) throw new StaleFencingTokenError(taskId, token, stale);
  }
}

/** A fencing token is a non-negative safe integer (`ctx.fencingToken`; 0 outside a runtime). */
function checkToken(token: number): void {
  if (!Number.isSafeInteger(token) || token < 0) throw new TypeError(`a fencing token must be a non-negative integer, got ${String(token)}`);
}

interface PaymentRow {
  invoice_id: string;
  line_id: string;
  amount_cents: number;
  currency: string;
  paid_at: string;
  task_id: string;
}

interface AttemptRow {
  id: number;
  idempotency_key: string;
  invoice_id: string;
  line_id: string;
  task_id: string;
  fencing_token: number;
  pid: number;
  attempted_at: string;
  outcome: PaymentOutcome;
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
