/**
 * `mcp-tasks/store/sqlite`: the embedded backend that `openStore('sqlite:<path>')` builds, for a
 * `TaskStore` with options a URL does not carry. Its driver, `better-sqlite3` (a dependency), is
 * loaded by the first `SqliteBackend` constructed, not by the import.
 *
 * ```ts
 * import { createTaskServer, TaskStore } from 'mcp-tasks';
 * import { SqliteBackend } from 'mcp-tasks/store/sqlite';
 * const store = new TaskStore(new SqliteBackend('.data/tasks.db', { synchronous: 'full' }));
 * const server = createTaskServer({ store });
 * ```
 *
 * @module mcp-tasks/store/sqlite
 */
import { mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import type Database from 'better-sqlite3';
import { idempotencyScope } from '../core/idempotency.js';
import { askedKey } from '../core/journal-keys.js';
import { isExpired } from '../core/policy.js';
import type { Json } from '../core/json.js';
import type { Fence, TaskRecord } from '../core/task.js';
import { zeroCounts, type ListQuery, type OperatorListPage, type OperatorListQuery, type StatusCounts, type StoreBackend } from './backend.js';
import { GroupCommit } from './group-commit.js';
import { loadDriver } from './load-driver.js';
import { newClaim, type DeliverySettlement, type OutboxBackend, type OutboxDelivery } from './outbox.js';
import * as sql from './outbox-sql.js';

/** Options of the SQLite backend. */
export interface SqliteBackendOptions {
  /**
   * `full` (default) fsyncs every commit, so an acknowledged write survives power loss;
   * `normal` survives process crashes (SIGKILL) but may lose the last commits on power loss.
   */
  synchronous?: 'full' | 'normal';
  /**
   * Whether this process is the only one executing the file's tasks (default true). Set false when
   * several server processes share one SQLite file; they then take over each other's tasks only
   * after a lease expires.
   */
  exclusive?: boolean;
  /**
   * Group commit (default true): writes issued in the same turn of the event loop share one
   * transaction and one fsync (see `GroupCommit`). False commits each write on its own. Either way a
   * write resolves only once its transaction has committed.
   */
  groupCommit?: boolean;
  /**
   * How long a write waits for another process's lock on the file before failing with
   * `SQLITE_BUSY` (ms, default 5000; the store reports that as unavailable, see
   * `StoreUnavailableError`).
   */
  busyTimeoutMs?: number;
}

/**
 * The schema migrations, in order: migration `n` (1-based) brings a file from version `n - 1` to `n`.
 * The version is kept in `mcp_tasks_meta.schema_version`. Every statement is idempotent (`IF NOT
 * EXISTS`), so a migration interrupted before its version was recorded can simply run again.
 */
const MIGRATIONS: string[] = [
  // 1: tasks with their lookup columns, the per-owner and unfinished indexes, the journal.
  `CREATE TABLE IF NOT EXISTS tasks (
     task_id    TEXT PRIMARY KEY,
     owner      TEXT,
     status     TEXT NOT NULL,
     created_at TEXT NOT NULL,
     version    INTEGER NOT NULL,
     body       TEXT NOT NULL
   );
   CREATE INDEX IF NOT EXISTS tasks_by_owner ON tasks (owner, created_at, task_id);
   CREATE INDEX IF NOT EXISTS tasks_unfinished ON tasks (status) WHERE status IN ('working', 'input_required');
   CREATE TABLE IF NOT EXISTS journal (
     task_id TEXT NOT NULL,
     key     TEXT NOT NULL,
     value   TEXT NOT NULL,
     PRIMARY KEY (task_id, key)
   ) WITHOUT ROWID;`,
  // 2: every principal's tasks newest first (operator listing, `listAll`).
  `CREATE INDEX IF NOT EXISTS tasks_by_created ON tasks (created_at, task_id);`,
  // 3: idempotency keys (SEP-3182): `idem` is `idempotencyScope(owner, key)` of a task created with
  // a key, unique among the tasks holding one. (ADD COLUMN has no IF NOT EXISTS; the migration runs
  // in one transaction with the version it records, so it never runs twice.)
  `ALTER TABLE tasks ADD COLUMN idem TEXT;
   CREATE UNIQUE INDEX IF NOT EXISTS tasks_by_idem ON tasks (idem) WHERE idem IS NOT NULL;`,
  // 4: the webhook outbox (deliveries enqueued in the task write that is their event), due ones
  // found by `outbox_due`, a task's by `outbox_by_task`. Times are ms since the epoch.
  `CREATE TABLE IF NOT EXISTS outbox (
     delivery_id     TEXT PRIMARY KEY,
     task_id         TEXT NOT NULL,
     endpoint_id     TEXT NOT NULL,
     type            TEXT NOT NULL,
     payload         TEXT NOT NULL,
     created_at      INTEGER NOT NULL,
     attempts        INTEGER NOT NULL,
     next_attempt_at INTEGER NOT NULL,
     state           TEXT NOT NULL,
     last_error      TEXT,
     claim           TEXT
   );
   CREATE INDEX IF NOT EXISTS outbox_due ON outbox (next_attempt_at) WHERE state = 'pending';
   CREATE INDEX IF NOT EXISTS outbox_by_task ON outbox (task_id, created_at);`,
];

const SCHEMA_VERSION = MIGRATIONS.length;

/** A task's status as an operator reads it: `failed` for one that completed with a tool error (`OperatorListQuery.toolErrorsAsFailed`). */
const SHOWN_STATUS = `(CASE WHEN status = 'completed' AND json_extract(body, '$.outcome.result.isError') = 1 THEN 'failed' ELSE status END)`;

/**
 * SQL of `countByStatus` (parameters: the `asked:` key prefix, then `nowMs`): a terminal task counts
 * until `createdAt + ttl` (ms) passes, see `purgeExpired`; an `input_required` task waits since the
 * first ask of its oldest outstanding question (its `asked:<key>` journal entry, else its
 * `lastUpdatedAt`), read by primary key per question.
 */
const COUNT_BY_STATUS = `
  SELECT status, COUNT(*) AS n,
    SUM(status = 'completed' AND json_extract(body, '$.outcome.result.isError') = 1) AS tool_errors,
    MIN(CASE WHEN status = 'input_required' THEN COALESCE(
      (SELECT MIN(COALESCE(json_extract(j.value, '$.at'), json_extract(t.body, '$.lastUpdatedAt')))
       FROM json_each(t.body, '$.inputRequests') AS q LEFT JOIN journal AS j ON j.task_id = t.task_id AND j.key = ? || q.key),
      json_extract(t.body, '$.lastUpdatedAt')) END) AS oldest
  FROM tasks AS t
  WHERE status IN ('working', 'input_required') OR json_extract(body, '$.ttl') IS NULL
     OR unixepoch(created_at, 'subsec') * 1000 + json_extract(body, '$.ttl') > ?
  GROUP BY status`;

/**
 * better-sqlite3 (a native addon), loaded on first construction, so applications on `memory:` or a
 * shared store never load it. It is a dependency of mcp-tasks; it is missing only when its install
 * (or native build) failed, and the error says so.
 */
function driver(): typeof Database {
  return loadDriver<typeof Database>(
    'better-sqlite3',
    'A sqlite: store (SqliteBackend)',
    'a dependency of mcp-tasks: its install or native build must have failed',
  );
}

/**
 * Embedded backend (`sqlite:<path>`) on better-sqlite3 in WAL mode. Each record is one row: the
 * columns used for lookups (`owner`, `status`, `created_at`, `version`) beside the full record as
 * JSON. Compare-and-swap is a single `UPDATE … WHERE version = ?`. Several processes may open the
 * same file (SQLite serializes writers; `busy_timeout` 5 s).
 *
 * Writes use group commit (`GroupCommit`): those issued while the event loop is busy share one
 * transaction and so one fsync, and each resolves only once that transaction has committed — with
 * `synchronous = FULL` (the default), an acknowledged write is on disk, as with one commit per write.
 *
 * Import it from `mcp-tasks/store/sqlite` (or let `openStore('sqlite:<path>')` build it). The native
 * driver `better-sqlite3` (a dependency) is loaded by the first constructor call, not by the import.
 */
export class SqliteBackend implements StoreBackend, OutboxBackend {
  private readonly db: Database.Database;
  private readonly stmt: ReturnType<SqliteBackend['prepare']>;
  /** Every write goes through here: writes issued in the same turn of the event loop share one commit (see `GroupCommit`). */
  private readonly writes: GroupCommit;
  /** `listAll` statements by SQL text (at most one per combination of filters: 64). */
  private readonly listAllStatements = new Map<string, Database.Statement>();
  readonly exclusive: boolean;
  private readonly path: string;

  /**
   * Opens (creating it if missing) and migrates the file at `path`. Throws an `Error` naming the file,
   * the cause (SQLite's code) and what to do when it cannot be opened or read: a directory that
   * cannot be created or written, a file that is not an SQLite database or is corrupted, a read-only
   * file, a file written by a newer mcp-tasks.
   */
  constructor(path: string, options: SqliteBackendOptions = {}) {
    this.exclusive = options.exclusive ?? true;
    this.path = path;
    const Driver = driver();
    try {
      if (path !== ':memory:') mkdirSync(dirname(path), { recursive: true });
      this.db = new Driver(path);
    } catch (error) {
      throw openError(path, error);
    }
    try {
      this.db.pragma('journal_mode = WAL');
      this.db.pragma(`synchronous = ${options.synchronous === 'normal' ? 'NORMAL' : 'FULL'}`);
      this.db.pragma(`busy_timeout = ${Math.max(0, Math.floor(options.busyTimeoutMs ?? 5000))}`);
      this.migrate();
      this.stmt = this.prepare();
    } catch (error) {
      this.db.close();
      throw openError(path, error);
    }
    this.writes = new GroupCommit(this.db, options.groupCommit === false ? 1 : undefined);
  }

  /**
   * Brings the file to `SCHEMA_VERSION`, one recorded migration at a time (a new file runs them all;
   * a version-1 file only gains the `created_at` index). Runs in an IMMEDIATE transaction that
   * re-reads the version, so processes opening one file at once migrate it once. Throws when the
   * file was written by a newer mcp-tasks.
   */
  private migrate(): void {
    this.db.exec(`CREATE TABLE IF NOT EXISTS mcp_tasks_meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)`);
    const version = () => {
      const row = this.db.prepare(`SELECT value FROM mcp_tasks_meta WHERE key = 'schema_version'`).get() as { value: string } | undefined;
      const current = row ? Number(row.value) : 0;
      if (current > SCHEMA_VERSION) throw new Error(`store schema version ${current} is newer than this mcp-tasks (${SCHEMA_VERSION})`);
      return current;
    };
    if (version() === SCHEMA_VERSION) return;
    this.db
      .transaction(() => {
        for (let next = version() + 1; next <= SCHEMA_VERSION; next++) {
          this.db.exec(MIGRATIONS[next - 1]!);
          this.db.prepare(`INSERT OR REPLACE INTO mcp_tasks_meta (key, value) VALUES ('schema_version', ?)`).run(String(next));
        }
      })
      .immediate();
  }

  private prepare() {
    return {
      insert: this.db.prepare(`INSERT INTO tasks (task_id, owner, status, created_at, version, body, idem) VALUES (?, ?, ?, ?, ?, ?, ?)`),
      keyed: this.db.prepare(`SELECT body FROM tasks WHERE idem = ?`),
      releaseKey: this.db.prepare(`UPDATE tasks SET idem = NULL WHERE task_id = ?`),
      get: this.db.prepare(`SELECT body FROM tasks WHERE task_id = ?`),
      replace: this.db.prepare(`UPDATE tasks SET owner = ?, status = ?, version = ?, body = ? WHERE task_id = ? AND version = ?`),
      listFirst: this.db.prepare(`SELECT body FROM tasks WHERE owner IS ? ORDER BY created_at, task_id LIMIT ?`),
      listAfter: this.db.prepare(
        `SELECT body FROM tasks WHERE owner IS ? AND (created_at > ? OR (created_at = ? AND task_id > ?)) ORDER BY created_at, task_id LIMIT ?`,
      ),
      unfinished: this.db.prepare(`SELECT body FROM tasks WHERE status IN ('working', 'input_required') ORDER BY created_at, task_id`),
      deleteTask: this.db.prepare(`DELETE FROM tasks WHERE task_id = ?`),
      deleteJournal: this.db.prepare(`DELETE FROM journal WHERE task_id = ?`),
      readJournal: this.db.prepare(`SELECT key, value FROM journal WHERE task_id = ?`),
      deleteEntries: this.db.prepare(`DELETE FROM journal WHERE task_id = ? AND key IN (SELECT value FROM json_each(?))`),
      appendJournal: this.db.prepare(`INSERT OR IGNORE INTO journal (task_id, key, value) VALUES (?, ?, ?)`),
      appendFenced: this.db.prepare(
        `INSERT OR IGNORE INTO journal (task_id, key, value) SELECT ?, ?, ? WHERE EXISTS (
           SELECT 1 FROM tasks WHERE task_id = ? AND status IN ('working', 'input_required')
             AND json_extract(body, '$.lease.holder') = ? AND IFNULL(json_extract(body, '$.lease.epoch'), 0) = ?)`,
      ),
      expired: this.db.prepare(
        `SELECT task_id FROM tasks WHERE status IN ('completed', 'failed', 'cancelled') AND json_extract(body, '$.ttl') IS NOT NULL
         AND unixepoch(created_at, 'subsec') * 1000 + json_extract(body, '$.ttl') <= ? LIMIT ?`,
      ),
      countByStatus: this.db.prepare(COUNT_BY_STATUS),
      versionsOf: this.db.prepare(`SELECT task_id, version FROM tasks WHERE task_id IN (SELECT value FROM json_each(?))`),
      countUnfinished: this.db.prepare(`SELECT COUNT(*) AS n FROM tasks WHERE owner IS ? AND status IN ('working', 'input_required')`),
      enqueue: this.db.prepare(`INSERT INTO outbox (${sql.OUTBOX_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`),
      due: this.db.prepare(`SELECT * FROM outbox WHERE state = 'pending' AND next_attempt_at <= ? ORDER BY next_attempt_at LIMIT ?`),
      claim: this.db.prepare(`UPDATE outbox SET attempts = attempts + 1, next_attempt_at = ?, claim = ? WHERE delivery_id = ?`),
      settle: this.db.prepare(
        `UPDATE outbox SET state = ?, next_attempt_at = COALESCE(?, next_attempt_at), last_error = COALESCE(?, last_error), claim = NULL WHERE delivery_id = ? AND claim = ?`,
      ),
      deliveriesOf: this.db.prepare(`SELECT * FROM outbox WHERE task_id = ? ORDER BY created_at, delivery_id`),
      nextDue: this.db.prepare(`SELECT MIN(next_attempt_at) AS at FROM outbox WHERE state = 'pending'`),
      deleteOutbox: this.db.prepare(`DELETE FROM outbox WHERE task_id = ?`),
    };
  }

  /**
   * One write of the group commit: with an idempotency key, the key's holder is read and the row
   * inserted in the same savepoint of the same transaction, so no other write (of this process or,
   * under SQLite's write lock, of another) comes between the check and the insert.
   */
  async insert(task: TaskRecord): Promise<TaskRecord | undefined> {
    const body = JSON.stringify(task);
    const scope = task.idempotency ? idempotencyScope(task.owner, task.idempotency.key) : null;
    return this.writes.run(() => {
      if (scope !== null) {
        const holder = this.holding(scope, Date.parse(task.createdAt), true);
        if (holder) return holder;
      }
      this.stmt.insert.run(task.taskId, task.owner, task.status, task.createdAt, task.version, body, scope);
      return undefined;
    });
  }

  async findByIdempotency(scope: string, nowMs: number): Promise<TaskRecord | undefined> {
    return this.holding(scope, nowMs);
  }

  /** The retained task holding `scope` at `nowMs`; an expired holder gives the key up (inside a write only). */
  private holding(scope: string, nowMs: number, release = false): TaskRecord | undefined {
    const row = this.stmt.keyed.get(scope) as { body: string } | undefined;
    const holder = row ? (JSON.parse(row.body) as TaskRecord) : undefined;
    if (!holder || !isExpired(holder, nowMs)) return holder;
    if (release) this.stmt.releaseKey.run(holder.taskId);
    return undefined;
  }

  async get(taskId: string): Promise<TaskRecord | undefined> {
    const row = this.stmt.get.get(taskId) as { body: string } | undefined;
    return row ? (JSON.parse(row.body) as TaskRecord) : undefined;
  }

  /** The compare-and-swap, and the outbox rows of its event in the same savepoint (written only if the swap was). */
  async replace(task: TaskRecord, expectedVersion: number, deliveries?: OutboxDelivery[]): Promise<boolean> {
    const body = JSON.stringify(task);
    return this.writes.run(() => {
      if (this.stmt.replace.run(task.owner, task.status, task.version, body, task.taskId, expectedVersion).changes !== 1) return false;
      for (const delivery of deliveries ?? []) this.stmt.enqueue.run(...sql.rowValues(delivery));
      return true;
    });
  }

  async enqueueDeliveries(deliveries: OutboxDelivery[]): Promise<void> {
    await this.writes.run(() => {
      for (const delivery of deliveries) this.stmt.enqueue.run(...sql.rowValues(delivery));
    });
  }

  /** Selected and claimed in one write transaction: SQLite's write lock keeps other processes out between the two. */
  async claimDeliveries(holder: string, nowMs: number, leaseMs: number, limit: number): Promise<OutboxDelivery[]> {
    return this.writes.run(() =>
      (this.stmt.due.all(nowMs, limit) as sql.OutboxRow[]).map((row) => {
        const claim = newClaim(holder);
        this.stmt.claim.run(nowMs + leaseMs, claim, row.delivery_id);
        return { ...sql.deliveryOfRow(row), attempts: Number(row.attempts) + 1, nextAttemptAt: nowMs + leaseMs, claim };
      }),
    );
  }

  async settleDelivery(deliveryId: string, claim: string, settlement: DeliverySettlement): Promise<boolean> {
    const next = settlement.state === 'pending' ? settlement.nextAttemptAt : null;
    return this.writes.run(() => this.stmt.settle.run(settlement.state, next, sql.settlementError(settlement), deliveryId, claim).changes === 1);
  }

  async listDeliveries(taskId: string): Promise<OutboxDelivery[]> {
    return (this.stmt.deliveriesOf.all(taskId) as sql.OutboxRow[]).map(sql.deliveryOfRow);
  }

  async nextDeliveryAt(): Promise<number | undefined> {
    const at = (this.stmt.nextDue.get() as { at: number | null }).at;
    return at === null ? undefined : at;
  }

  async list(query: ListQuery): Promise<TaskRecord[]> {
    const rows = (
      query.after
        ? this.stmt.listAfter.all(query.owner, query.after.createdAt, query.after.createdAt, query.after.taskId, query.limit)
        : this.stmt.listFirst.all(query.owner, query.limit)
    ) as { body: string }[];
    return rows.map((row) => JSON.parse(row.body) as TaskRecord);
  }

  /**
   * One SQL query per page: the filters in `WHERE`, newest first by the `(created_at, task_id)`
   * index (or the per-owner one when `owner` is given), the tool read with
   * `json_extract(body, '$.request.tool')`. Statements are prepared once per combination of filters.
   */
  async listAll(query: OperatorListQuery): Promise<OperatorListPage> {
    if (query.statuses?.length === 0) return { tasks: [] };
    const where: string[] = [];
    const params: unknown[] = [];
    const and = (condition: string, ...values: unknown[]) => {
      where.push(condition);
      params.push(...values);
    };
    if (query.owner !== undefined) and('owner IS ?', query.owner);
    if (query.statuses !== undefined)
      and(`${query.toolErrorsAsFailed ? SHOWN_STATUS : 'status'} IN (SELECT value FROM json_each(?))`, JSON.stringify(query.statuses));
    if (query.tool !== undefined) and(`json_extract(body, '$.request.tool') = ?`, query.tool);
    if (query.createdFrom !== undefined) and('created_at >= ?', query.createdFrom);
    if (query.createdTo !== undefined) and('created_at < ?', query.createdTo);
    if (query.before !== undefined) and('(created_at, task_id) < (?, ?)', query.before.createdAt, query.before.taskId);
    const sql = `SELECT body FROM tasks ${where.length > 0 ? `WHERE ${where.join(' AND ')}` : ''} ORDER BY created_at DESC, task_id DESC LIMIT ?`;
    let statement = this.listAllStatements.get(sql);
    if (!statement) this.listAllStatements.set(sql, (statement = this.db.prepare(sql)));
    const rows = statement.all(...params, query.limit) as { body: string }[];
    return { tasks: rows.map((row) => JSON.parse(row.body) as TaskRecord) };
  }

  /** One `GROUP BY status` scan of the table (terminal rows read their `ttl` from the JSON body); see `COUNT_BY_STATUS`. */
  async countByStatus(nowMs: number): Promise<StatusCounts> {
    const rows = this.stmt.countByStatus.all(askedKey(''), nowMs) as { status: string; n: number; tool_errors: number | null; oldest: string | null }[];
    const counts = zeroCounts();
    let toolErrors = 0;
    let oldestInputRequiredAt: string | undefined;
    for (const row of rows) {
      if (Object.hasOwn(counts, row.status)) counts[row.status as keyof typeof counts] = row.n;
      if (row.status === 'completed') toolErrors = row.tool_errors ?? 0;
      if (row.status === 'input_required' && row.oldest !== null) oldestInputRequiredAt = row.oldest;
    }
    return {
      counts,
      ...(toolErrors > 0 && { completedWithToolError: toolErrors }),
      ...(oldestInputRequiredAt !== undefined && { oldestInputRequiredAt }),
    };
  }

  async listUnfinished(): Promise<TaskRecord[]> {
    return (this.stmt.unfinished.all() as { body: string }[]).map((row) => JSON.parse(row.body) as TaskRecord);
  }

  async purgeExpired(nowMs: number, limit: number): Promise<number> {
    return this.writes.run(() => {
      let deleted = 0;
      for (const { task_id: id } of this.stmt.expired.all(nowMs, limit) as { task_id: string }[]) {
        this.stmt.deleteJournal.run(id);
        this.stmt.deleteOutbox.run(id);
        deleted += this.stmt.deleteTask.run(id).changes;
      }
      return deleted;
    });
  }

  async countUnfinished(owner: string | null): Promise<number> {
    return (this.stmt.countUnfinished.get(owner) as { n: number }).n;
  }

  async versionsOf(taskIds: string[]): Promise<Map<string, number>> {
    // json_each over one bound JSON array: one statement for any number of ids.
    const rows = this.stmt.versionsOf.all(JSON.stringify(taskIds)) as { task_id: string; version: number }[];
    return new Map(rows.map((row) => [row.task_id, row.version]));
  }

  async delete(taskId: string): Promise<boolean> {
    return this.writes.run(() => {
      this.stmt.deleteJournal.run(taskId);
      this.stmt.deleteOutbox.run(taskId);
      return this.stmt.deleteTask.run(taskId).changes === 1;
    });
  }

  async readJournal(taskId: string): Promise<Map<string, Json>> {
    const rows = this.stmt.readJournal.all(taskId) as { key: string; value: string }[];
    return new Map(rows.map((row) => [row.key, JSON.parse(row.value) as Json]));
  }

  async deleteJournal(taskId: string, keys: string[]): Promise<number> {
    if (keys.length === 0) return 0;
    return this.writes.run(() => this.stmt.deleteEntries.run(taskId, JSON.stringify(keys)).changes);
  }

  async appendJournal(taskId: string, key: string, value: Json, fence?: Fence): Promise<boolean> {
    const text = JSON.stringify(value);
    // The fence is checked inside the write transaction, so no claim can come between check and insert.
    if (fence) return this.writes.run(() => this.stmt.appendFenced.run(taskId, key, text, taskId, fence.holder, fence.epoch).changes === 1);
    return this.writes.run(() => this.stmt.appendJournal.run(taskId, key, text).changes === 1);
  }

  /** `sqlite file <path>` (or `sqlite in memory`), for logs and errors. */
  describe(): string {
    return this.path === ':memory:' ? 'sqlite in memory' : `sqlite file ${this.path}`;
  }

  async close(): Promise<void> {
    if (!this.db.open) return;
    this.writes.flushAll();
    this.db.close();
  }
}

/** SQLite's error codes at open, with what to do about each. */
const OPEN_ADVICE: Record<string, string> = {
  SQLITE_NOTADB:
    'the file is not an SQLite database (or its header is damaged): point the store at another path, or move the file aside and restore it from a backup',
  SQLITE_CORRUPT: 'the database is corrupted: restore it from a backup (or try `sqlite3 FILE .recover`), after moving the damaged file aside',
  SQLITE_CANTOPEN: 'the file cannot be opened: check that its directory exists and that this process may read and write both',
  SQLITE_READONLY: 'the file is read-only for this process: fix its permissions (the store writes the file and its -wal and -shm files)',
  SQLITE_PERM: 'permission denied: fix the permissions of the file and its directory',
  SQLITE_FULL: 'the disk is full: free some space and start again',
  SQLITE_IOERR: 'the disk reported an I/O error: check the disk and the file system',
  EACCES: 'permission denied: fix the permissions of the directory (or choose another path)',
  ENOTDIR: 'a part of the path is a file, not a directory: choose another path',
  ENOSPC: 'the disk is full: free some space and start again',
  EROFS: 'the file system is read-only: choose a writable path',
};

/** An `Error` naming the SQLite task store's file, the cause and what to do (see the constructor). */
function openError(path: string, error: unknown): Error {
  const code = String((error as { code?: unknown })?.code ?? '');
  const message = error instanceof Error ? error.message : String(error);
  const advice =
    OPEN_ADVICE[code] ?? OPEN_ADVICE[code.replace(/_[A-Z]+$/, '')] ?? 'check the path and the file, or choose another path with --store sqlite:<path>';
  return new Error(
    `Cannot open the SQLite task store ${path === ':memory:' ? '(in memory)' : `file ${path}`}: ${message}${code ? ` (${code})` : ''}. What to do: ${advice}.`,
    {
      cause: error,
    },
  );
}
