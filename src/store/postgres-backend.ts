/**
 * `mcp-tasks/store/postgres`: the PostgreSQL backend that `openStore('postgres://…')` builds, for
 * several server instances on one database, with options a URL does not carry (`max`, `maxBatch`).
 * Its driver, `pg` (an optional peer dependency), is loaded by the first `PostgresBackend`
 * constructed, not by the import.
 *
 * ```ts
 * import { createTaskServer, TaskStore } from 'mcp-tasks';
 * import { PostgresBackend } from 'mcp-tasks/store/postgres';
 * const store = new TaskStore(new PostgresBackend({ connectionString: process.env.DATABASE_URL!, schema: 'tasks', max: 20 }));
 * const server = createTaskServer({ store });
 * ```
 *
 * @module mcp-tasks/store/postgres
 */
import DataLoader from 'dataloader';
import type pg from 'pg';
import { idempotencyScope } from '../core/idempotency.js';
import { askedKey } from '../core/journal-keys.js';
import { isExpired } from '../core/policy.js';
import { copyJson, type Json } from '../core/json.js';
import type { Fence, TaskRecord } from '../core/task.js';
import {
  parseChangeNotice,
  redactUrl,
  zeroCounts,
  type ListQuery,
  type OperatorListPage,
  type OperatorListQuery,
  type StatusCounts,
  type StoreBackend,
} from './backend.js';
import { DEFAULT_ENDED_CACHE_BYTES, EndedCache } from './ended-cache.js';
import { loadDriver } from './load-driver.js';
import { newClaim, type DeliverySettlement, type OutboxBackend, type OutboxDelivery } from './outbox.js';
import * as sql from './outbox-sql.js';

/** Options of the PostgreSQL backend. */
export interface PostgresBackendOptions {
  /** libpq connection string, e.g. `postgres://postgres@127.0.0.1:5432/test`. */
  connectionString: string;
  /** Schema holding the tables (created if missing). Default `mcp_tasks`. */
  schema?: string;
  /** Pool size. Default 10. */
  max?: number;
  /**
   * Most calls of one kind sent as one statement (see "Batching" on `PostgresBackend`); 1 sends
   * every call on its own. Default 500.
   */
  maxBatch?: number;
  /**
   * How long opening a connection (or waiting for a free one in the pool) may take before the call
   * fails as unavailable, in ms. Default 3000.
   */
  connectTimeoutMs?: number;
  /**
   * How long one query may take, in ms (default 5000): the client gives up on the reply after it
   * (a stalled or unreachable server) and discards the connection, and the server cancels a
   * statement running that long (`statement_timeout`).
   */
  queryTimeoutMs?: number;
  /**
   * Bytes of ended tasks' records kept in memory so the reads after a task's end (`tasks/get`,
   * `tasks/result`) need no round trip (see `EndedCache`: entries are dropped by the change notices
   * of later writes and whenever notices may have been missed). Default 16 MiB; 0 disables it.
   */
  endedCacheBytes?: number;
}

/** A replace waiting for its batch. */
interface PendingReplace {
  task: TaskRecord;
  expectedVersion: number;
  /** `task` as JSON, made once (the statement's `body`, and the cache of ended tasks). */
  json: string;
}

/** A journal append waiting for its batch; `fence` makes it conditional on the task's lease. */
interface PendingAppend {
  taskId: string;
  key: string;
  value: Json;
  fence?: Fence;
}

/**
 * SQL condition: the `tasks` row `t` is live and held under the fence in `holder` / `epoch`. Used in
 * an `EXISTS (SELECT 1 FROM tasks t WHERE … FOR SHARE)`: the share lock makes a concurrent claim
 * (an `UPDATE` of that row) wait for the append's commit, or the append see the claim's commit and
 * re-check (read committed), so check and insert are atomic against it.
 */
const FENCE_HOLDS = (holder: string, epoch: string) =>
  `t.status IN ('working', 'input_required') AND t.body->'lease'->>'holder' = ${holder} AND COALESCE((t.body->'lease'->>'epoch')::int, 0) = ${epoch}`;

/** A task's status as an operator reads it: `failed` for one that completed with a tool error (`OperatorListQuery.toolErrorsAsFailed`). */
const SHOWN_STATUS = `(CASE WHEN status = 'completed' AND body->'outcome'->'result'->'isError' = 'true'::jsonb THEN 'failed' ELSE status END)`;

/** The migrations, in order; each runs once per schema, recorded in `mcp_tasks_migrations`. */
const MIGRATIONS: ((schema: string) => string)[] = [
  (s) => `
    CREATE TABLE ${s}.tasks (
      task_id    TEXT PRIMARY KEY,
      owner      TEXT,
      status     TEXT NOT NULL,
      created_at TEXT NOT NULL,
      version    INTEGER NOT NULL,
      body       JSONB NOT NULL
    );
    CREATE INDEX tasks_by_owner ON ${s}.tasks (owner, created_at, task_id);
    CREATE INDEX tasks_unfinished ON ${s}.tasks (status) WHERE status IN ('working', 'input_required');
    CREATE TABLE ${s}.journal (
      task_id TEXT NOT NULL,
      key     TEXT NOT NULL,
      value   JSONB NOT NULL,
      PRIMARY KEY (task_id, key)
    );`,
  // 2: every principal's tasks newest first (operator listing, `listAll`). A plain CREATE INDEX: it
  // blocks writes to `tasks` while it builds, once, at the first start of this version.
  (s) => `CREATE INDEX tasks_by_created ON ${s}.tasks (created_at, task_id);`,
  // 3: idempotency keys (SEP-3182): `idem` is `idempotencyScope(owner, key)` of a task created with
  // a key, unique among the tasks holding one. Adding a nullable column without a default rewrites
  // nothing; the partial index starts empty.
  (s) => `
    ALTER TABLE ${s}.tasks ADD COLUMN idem TEXT;
    CREATE UNIQUE INDEX tasks_by_idem ON ${s}.tasks (idem) WHERE idem IS NOT NULL;`,
  // 4: the webhook outbox (deliveries enqueued in the statement of the task write that is their
  // event). A new, empty table: nothing existing is rewritten or locked. Times are ms since the epoch.
  (s) => `
    CREATE TABLE ${s}.outbox (
      delivery_id     TEXT PRIMARY KEY,
      task_id         TEXT NOT NULL,
      endpoint_id     TEXT NOT NULL,
      type            TEXT NOT NULL,
      payload         JSONB NOT NULL,
      created_at      BIGINT NOT NULL,
      attempts        INTEGER NOT NULL,
      next_attempt_at BIGINT NOT NULL,
      state           TEXT NOT NULL,
      last_error      TEXT,
      claim           TEXT
    );
    CREATE INDEX outbox_due ON ${s}.outbox (next_attempt_at) WHERE state = 'pending';
    CREATE INDEX outbox_by_task ON ${s}.outbox (task_id, created_at);`,
];

/** Identifier check for the schema name (it is interpolated into SQL). */
/**
 * node-postgres, loaded on first construction (an optional peer dependency: applications that never
 * open a `postgres://` store need not install it). Throws naming `npm install pg` when it is missing.
 */
function driver(): typeof pg {
  return loadDriver<typeof pg>('pg', 'A postgres:// store (PostgresBackend)', 'an optional peer dependency of mcp-tasks');
}

function safeIdentifier(name: string): string {
  if (!/^[a-z_][a-z0-9_]{0,62}$/.test(name)) throw new Error(`invalid schema name '${name}': use lowercase letters, digits and _`);
  return name;
}

/**
 * Shared backend (`postgres://…`) on node-postgres, for several server instances on one database.
 *
 * - Schema and tables are created by versioned migrations on first use; concurrent starts are
 *   serialized with a transaction-scoped advisory lock, so two instances starting at once are safe.
 * - Compare-and-swap is one `UPDATE … WHERE task_id = $1 AND version = $2`; journal entries are
 *   `INSERT … ON CONFLICT DO NOTHING` (first write wins).
 * - Every task write sends `NOTIFY mcp_tasks_<schema>, '<taskId> <version>'` in the same statement;
 *   `watch` holds one dedicated `LISTEN` connection (reconnecting if it drops), so waiters in other
 *   instances (`tasks/result`, input answers, cancellation) are woken without polling.
 * - Batching: the hot calls (`get`, `insert`, `replace`, `appendJournal`) made in one turn of the
 *   event loop go to PostgreSQL as one statement per kind (`= ANY($1)` for reads, `unnest(…)` arrays
 *   for writes; the `dataloader` library collects them, flushing on `setImmediate`). A lone call is
 *   sent as the plain statement. Each batch statement commits on its own (`synchronous_commit` as
 *   configured), and every call resolves only after that commit: acknowledged still means durable.
 *   Each call keeps its own outcome: a compare-and-swap that lost, a duplicate task id or journal
 *   key, or a value PostgreSQL refuses (the batch is then retried call by call) fails that call only.
 *
 * Import it from `mcp-tasks/store/postgres` (or let `openStore('postgres://…')` build it). The driver
 * `pg` is an optional peer dependency, loaded by the first constructor call, not by the import; the
 * constructor throws `Error` ("… needs 'pg' …: npm install pg") when it is not installed. The pool
 * connects lazily: nothing touches the network before the first query (`migrate`).
 */
export class PostgresBackend implements StoreBackend, OutboxBackend {
  readonly exclusive = false;
  private readonly pool: pg.Pool;
  private readonly schema: string;
  private readonly channel: string;
  private ready?: Promise<void>;
  private listener?: pg.Client;
  private readonly watchers = new Set<(taskId: string, version?: number) => void>();
  private readonly resyncs = new Set<() => void>();
  /** Whether the LISTEN connection was lost since it last listened (its notices may be missing). */
  private missedNotices = false;
  private listenerCheck?: NodeJS.Timeout;
  private closed = false;
  /** Ended tasks' records just read or written here (see `PostgresBackendOptions.endedCacheBytes`). */
  private readonly ended: EndedCache;

  /** Batches of the hot calls: each collects the calls of one event-loop turn (see the class doc). */
  private readonly reads: DataLoader<string, TaskRecord | undefined>;
  private readonly readsAt: DataLoader<string, { task: TaskRecord | undefined; nowMs: number }>;
  private readonly inserts: DataLoader<TaskRecord, true>;
  private readonly replaces: DataLoader<PendingReplace, boolean>;
  private readonly appends: DataLoader<PendingAppend, boolean>;

  constructor(private readonly options: PostgresBackendOptions) {
    this.schema = safeIdentifier(options.schema ?? 'mcp_tasks');
    this.channel = `mcp_tasks_${this.schema}`;
    this.ended = new EndedCache(options.endedCacheBytes ?? DEFAULT_ENDED_CACHE_BYTES);
    this.pool = new (driver().Pool)({ ...this.connectionConfig(), max: options.max ?? 10 });
    this.pool.on('error', () => undefined); // idle client errors surface on the next query
    const batch = { cache: false, maxBatchSize: Math.max(1, options.maxBatch ?? 500), batchScheduleFn: (run: () => void) => setImmediate(run) };
    const loader = <K, V>(one: (key: K) => Promise<V>, many: (keys: readonly K[]) => Promise<(V | Error)[]>) =>
      new DataLoader<K, V>((keys) => this.batched(keys, one, many), batch);
    this.reads = loader(
      (id: string) => this.getOne(id),
      (ids) => this.getMany(ids),
    );
    this.readsAt = loader(
      (id: string) => this.getAtOne(id),
      (ids) => this.getAtMany(ids),
    );
    this.inserts = loader(
      (task: TaskRecord) => this.insertOne(task),
      (tasks) => this.insertMany(tasks),
    );
    this.replaces = loader(
      (call: PendingReplace) => this.replaceOne(call),
      (calls) => this.replaceMany(calls),
    );
    this.appends = loader(
      (call: PendingAppend) => this.appendOne(call),
      (calls) => this.appendMany(calls),
    );
  }

  /** node-postgres settings of every connection: the URL, timeouts (see the options), TCP keep-alive. */
  private connectionConfig(): pg.ClientConfig {
    const queryTimeout = Math.max(1, Math.floor(this.options.queryTimeoutMs ?? 5000));
    return {
      connectionString: this.options.connectionString,
      connectionTimeoutMillis: Math.max(1, Math.floor(this.options.connectTimeoutMs ?? 3000)),
      query_timeout: queryTimeout,
      statement_timeout: queryTimeout,
      keepAlive: true,
    };
  }

  /**
   * Runs a batch: `one` for a single call (the plain statement), `many` for more. When PostgreSQL
   * refuses the batch statement (an error with a SQLSTATE: nothing of it was committed), each call
   * is retried on its own, so only the call at fault fails. Any other error (the connection was
   * lost) fails every call of the batch, as it would have failed each of them alone.
   */
  private async batched<K, V>(keys: readonly K[], one: (key: K) => Promise<V>, many: (keys: readonly K[]) => Promise<(V | Error)[]>): Promise<(V | Error)[]> {
    if (keys.length === 1) return [await one(keys[0]!)];
    try {
      return await many(keys);
    } catch (error) {
      if (typeof (error as { code?: unknown }).code !== 'string') throw error;
      return Promise.all(keys.map((key) => one(key).catch((e: unknown) => (e instanceof Error ? e : new Error(String(e))))));
    }
  }

  /** Runs pending migrations once (idempotent; safe when several instances start together). */
  migrate(): Promise<void> {
    this.ready ??= (async () => {
      const client = await this.pool.connect();
      try {
        await client.query('BEGIN');
        await client.query('SELECT pg_advisory_xact_lock(hashtext($1))', [`mcp-tasks:${this.schema}`]);
        await client.query(`CREATE SCHEMA IF NOT EXISTS ${this.schema}`);
        await client.query(
          `CREATE TABLE IF NOT EXISTS ${this.schema}.mcp_tasks_migrations (version INTEGER PRIMARY KEY, applied_at TIMESTAMPTZ NOT NULL DEFAULT now())`,
        );
        const { rows } = await client.query(`SELECT COALESCE(MAX(version), 0) AS v FROM ${this.schema}.mcp_tasks_migrations`);
        const current = Number(rows[0].v);
        if (current > MIGRATIONS.length) throw new Error(`store schema version ${current} is newer than this mcp-tasks (${MIGRATIONS.length})`);
        for (let version = current + 1; version <= MIGRATIONS.length; version++) {
          await client.query(MIGRATIONS[version - 1]!(this.schema));
          await client.query(`INSERT INTO ${this.schema}.mcp_tasks_migrations (version) VALUES ($1)`, [version]);
        }
        await client.query('COMMIT');
      } catch (error) {
        await client.query('ROLLBACK').catch(() => undefined);
        throw error;
      } finally {
        client.release();
      }
    })().catch((error: unknown) => {
      this.ready = undefined;
      throw error;
    });
    return this.ready;
  }

  /**
   * The store as logs and start-up errors name it: the URL without its password, and the schema
   * (`postgres://postgres:***@db:5432/app (schema mcp_tasks)`).
   */
  describe(): string {
    return `${redactUrl(this.options.connectionString)} (schema ${this.schema})`;
  }

  /**
   * One statement on a pooled connection. A failure without a SQLSTATE (the connection was lost or
   * timed out) drops the cache of ended tasks: notices may be missing too.
   */
  private async query<R extends pg.QueryResultRow>(text: string, values: unknown[]): Promise<pg.QueryResult<R>> {
    await this.migrate();
    try {
      return await this.pool.query<R>(text, values);
    } catch (error) {
      if (typeof (error as { code?: unknown }).code !== 'string') this.ended.lost(true);
      throw error;
    }
  }

  async insert(task: TaskRecord): Promise<TaskRecord | undefined> {
    if (task.idempotency) return this.insertKeyed(task, idempotencyScope(task.owner, task.idempotency.key));
    await this.inserts.load(task);
    return undefined;
  }

  /**
   * A task with an idempotency key, in its own statement (not batched): `ON CONFLICT` on the unique
   * `idem` index makes the insert and the check one atomic step, across instances (a concurrent
   * insert of the same key waits for the other's commit, then does nothing). When nothing was
   * inserted, the holder is read: retained, it is the answer; expired but not yet purged, it gives
   * the key up (only if it still holds it) and the insert is tried again.
   */
  private async insertKeyed(task: TaskRecord, scope: string): Promise<TaskRecord | undefined> {
    const nowMs = Date.parse(task.createdAt);
    for (let attempt = 0; attempt < 5; attempt++) {
      const { rows } = await this.query<{ task_id: string }>(
        `WITH ins AS (INSERT INTO ${this.schema}.tasks (task_id, owner, status, created_at, version, body, idem) VALUES ($1, $2, $3, $4, $5, $6, $8)
           ON CONFLICT (idem) WHERE idem IS NOT NULL DO NOTHING RETURNING task_id)
         SELECT task_id, pg_notify($7, task_id || ' ' || $5) FROM ins`,
        [task.taskId, task.owner, task.status, task.createdAt, task.version, JSON.stringify(task), this.channel, scope],
      );
      if (rows.length === 1) return undefined;
      const holder = await this.keyHolder(scope);
      if (holder && !isExpired(holder, nowMs)) return holder;
      if (holder) await this.query(`UPDATE ${this.schema}.tasks SET idem = NULL WHERE task_id = $1 AND idem = $2`, [holder.taskId, scope]);
    }
    throw new Error(`could not store task ${task.taskId}: its idempotency key kept changing hands`);
  }

  async findByIdempotency(scope: string, nowMs: number): Promise<TaskRecord | undefined> {
    const holder = await this.keyHolder(scope);
    return holder && !isExpired(holder, nowMs) ? holder : undefined;
  }

  /** The task holding idempotency index `scope`, expired or not. */
  private async keyHolder(scope: string): Promise<TaskRecord | undefined> {
    const { rows } = await this.query<{ body: TaskRecord }>(`SELECT body FROM ${this.schema}.tasks WHERE idem = $1`, [scope]);
    return rows[0]?.body;
  }

  private async insertOne(task: TaskRecord): Promise<true> {
    await this.query(
      `WITH ins AS (INSERT INTO ${this.schema}.tasks (task_id, owner, status, created_at, version, body) VALUES ($1, $2, $3, $4, $5, $6) RETURNING task_id)
       SELECT pg_notify($7, task_id || ' ' || $5) FROM ins`,
      [task.taskId, task.owner, task.status, task.createdAt, task.version, JSON.stringify(task), this.channel],
    );
    return true;
  }

  /** Several inserts in one statement; a task id already stored (or twice in the batch) fails alone. */
  private async insertMany(batch: readonly TaskRecord[]): Promise<(true | Error)[]> {
    const first = new Map<string, TaskRecord>();
    for (const t of batch) if (!first.has(t.taskId)) first.set(t.taskId, t);
    const tasks = [...first.values()];
    const { rows } = await this.query<{ task_id: string }>(
      `WITH ins AS (INSERT INTO ${this.schema}.tasks (task_id, owner, status, created_at, version, body)
         SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::int[], $6::jsonb[])
         ON CONFLICT (task_id) DO NOTHING RETURNING task_id, version)
       SELECT task_id, pg_notify($7, task_id || ' ' || version) FROM ins`,
      [
        tasks.map((t) => t.taskId),
        tasks.map((t) => t.owner),
        tasks.map((t) => t.status),
        tasks.map((t) => t.createdAt),
        tasks.map((t) => t.version),
        tasks.map((t) => JSON.stringify(t)),
        this.channel,
      ],
    );
    const inserted = new Set(rows.map((row) => row.task_id));
    return batch.map((t) => (first.get(t.taskId) === t && inserted.has(t.taskId) ? true : new Error(`duplicate taskId ${t.taskId}`)));
  }

  /**
   * The stored record: an ended task's from memory when this process read or wrote it last and no
   * newer write was heard of since (see `EndedCache`), else read (batched, see the class doc).
   */
  get(taskId: string): Promise<TaskRecord | undefined> {
    return this.ended.read(taskId, async () => ({ task: await this.reads.load(taskId) }));
  }

  private async getOne(taskId: string): Promise<TaskRecord | undefined> {
    const { rows } = await this.query<{ body: TaskRecord }>(`SELECT body FROM ${this.schema}.tasks WHERE task_id = $1`, [taskId]);
    return rows[0]?.body;
  }

  /** Several reads in one statement; a task asked for twice gets two copies. */
  private async getMany(taskIds: readonly string[]): Promise<(TaskRecord | undefined)[]> {
    const { rows } = await this.query<{ task_id: string; body: TaskRecord }>(`SELECT task_id, body FROM ${this.schema}.tasks WHERE task_id = ANY($1::text[])`, [
      [...new Set(taskIds)],
    ]);
    const found = new Map(rows.map((row) => [row.task_id, row.body]));
    const given = new Set<string>();
    return taskIds.map((id) => {
      const body = found.get(id);
      if (body === undefined) return undefined;
      if (given.has(id)) return copyJson(body);
      given.add(id);
      return body;
    });
  }

  /**
   * The record and `clock_timestamp()` of the same statement, never from an earlier read; the
   * `getAt` calls of one event-loop turn share one statement (`= ANY`), like `get`.
   */
  getAt(taskId: string): Promise<{ task: TaskRecord | undefined; nowMs: number }> {
    return this.readsAt.load(taskId);
  }

  private async getAtOne(taskId: string): Promise<{ task: TaskRecord | undefined; nowMs: number }> {
    return (await this.getAtMany([taskId]))[0]!;
  }

  /** Several fresh reads with the server's clock, in one statement; a task asked for twice gets two copies. */
  private async getAtMany(taskIds: readonly string[]): Promise<{ task: TaskRecord | undefined; nowMs: number }[]> {
    const { rows } = await this.query<{ now: number; task_id: string | null; body: TaskRecord | null }>(
      `WITH c AS (SELECT extract(epoch FROM clock_timestamp()) * 1000 AS now)
       SELECT c.now, t.task_id, t.body FROM c LEFT JOIN ${this.schema}.tasks t ON t.task_id = ANY($1::text[])`,
      [[...new Set(taskIds)]],
    );
    const nowMs = Number(rows[0]!.now);
    const found = new Map(rows.flatMap((row) => (row.task_id === null ? [] : [[row.task_id, row.body!] as const])));
    const given = new Set<string>();
    return taskIds.map((id) => {
      const body = found.get(id);
      if (body === undefined) return { task: undefined, nowMs };
      const task = given.has(id) ? copyJson(body) : body;
      given.add(id);
      return { task, nowMs };
    });
  }

  async clock(): Promise<number> {
    const { rows } = await this.pool.query<{ now: number }>(`SELECT extract(epoch FROM clock_timestamp()) * 1000 AS now`);
    return Number(rows[0]!.now);
  }

  /**
   * A compare-and-swap (batched, see the class doc). A write that ends the task leaves its record in
   * the cache of ended tasks; one that lost drops the task from it (what it was decided on was stale).
   */
  async replace(task: TaskRecord, expectedVersion: number, deliveries?: OutboxDelivery[]): Promise<boolean> {
    const ticket = this.ended.begin(task.taskId);
    const json = JSON.stringify(task);
    let replaced = false;
    try {
      replaced =
        deliveries && deliveries.length > 0
          ? await this.replaceWithOutbox({ task, expectedVersion, json }, deliveries)
          : await this.replaces.load({ task, expectedVersion, json });
      return replaced;
    } finally {
      this.ended.settleWrite(ticket, task, json, replaced);
    }
  }

  /**
   * A compare-and-swap and its event's outbox rows in one statement (not batched): the `INSERT`
   * reads the `UPDATE`'s `RETURNING`, so the rows exist exactly when the swap happened.
   */
  private async replaceWithOutbox({ task, expectedVersion, json }: PendingReplace, deliveries: OutboxDelivery[]): Promise<boolean> {
    const columns = deliveries.map(sql.rowValues);
    const { rowCount } = await this.query(
      `WITH upd AS (UPDATE ${this.schema}.tasks SET owner = $1, status = $2, version = $3, body = $4 WHERE task_id = $5 AND version = $6 RETURNING task_id),
            ins AS (INSERT INTO ${this.schema}.outbox (${sql.OUTBOX_COLUMNS})
                    SELECT * FROM unnest($8::text[], $9::text[], $10::text[], $11::text[], $12::jsonb[], $13::bigint[], $14::int[], $15::bigint[], $16::text[])
                    WHERE EXISTS (SELECT 1 FROM upd))
       SELECT pg_notify($7, task_id || ' ' || $3) FROM upd`,
      [
        task.owner,
        task.status,
        task.version,
        json,
        task.taskId,
        expectedVersion,
        this.channel,
        ...sql.OUTBOX_COLUMNS.split(', ').map((_, i) => columns.map((row) => row[i])),
      ],
    );
    return rowCount === 1;
  }

  async enqueueDeliveries(deliveries: OutboxDelivery[]): Promise<void> {
    const columns = deliveries.map(sql.rowValues);
    await this.query(
      `INSERT INTO ${this.schema}.outbox (${sql.OUTBOX_COLUMNS})
       SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::jsonb[], $6::bigint[], $7::int[], $8::bigint[], $9::text[])`,
      sql.OUTBOX_COLUMNS.split(', ').map((_, i) => columns.map((row) => row[i])),
    );
  }

  /**
   * One statement: due rows locked `FOR UPDATE SKIP LOCKED` (so instances claiming at once split
   * them instead of waiting), each given a claim, an attempt and the lease's expiry as `next_attempt_at`.
   */
  async claimDeliveries(holder: string, nowMs: number, leaseMs: number, limit: number): Promise<OutboxDelivery[]> {
    const { rows } = await this.query<sql.OutboxRow>(
      `WITH due AS (SELECT delivery_id FROM ${this.schema}.outbox WHERE state = 'pending' AND next_attempt_at <= $1
                    ORDER BY next_attempt_at LIMIT $2 FOR UPDATE SKIP LOCKED)
       UPDATE ${this.schema}.outbox o SET attempts = o.attempts + 1, next_attempt_at = $3, claim = $4 || '/' || md5(random()::text || o.delivery_id)
       FROM due WHERE o.delivery_id = due.delivery_id RETURNING o.*`,
      [nowMs, limit, nowMs + leaseMs, newClaim(holder)],
    );
    return rows.map(sql.deliveryOfRow);
  }

  async settleDelivery(deliveryId: string, claim: string, settlement: DeliverySettlement): Promise<boolean> {
    const { rowCount } = await this.query(
      `UPDATE ${this.schema}.outbox SET state = $1, next_attempt_at = COALESCE($2, next_attempt_at), last_error = COALESCE($3, last_error), claim = NULL
       WHERE delivery_id = $4 AND claim = $5`,
      [settlement.state, settlement.state === 'pending' ? settlement.nextAttemptAt : null, sql.settlementError(settlement), deliveryId, claim],
    );
    return rowCount === 1;
  }

  async listDeliveries(taskId: string): Promise<OutboxDelivery[]> {
    const { rows } = await this.query<sql.OutboxRow>(`SELECT * FROM ${this.schema}.outbox WHERE task_id = $1 ORDER BY created_at, delivery_id`, [taskId]);
    return rows.map(sql.deliveryOfRow);
  }

  async nextDeliveryAt(): Promise<number | undefined> {
    const { rows } = await this.query<{ at: string | null }>(`SELECT MIN(next_attempt_at) AS at FROM ${this.schema}.outbox WHERE state = 'pending'`, []);
    return rows[0]?.at == null ? undefined : Number(rows[0].at);
  }

  private async replaceOne({ task, expectedVersion, json }: PendingReplace): Promise<boolean> {
    const { rowCount } = await this.query(
      `WITH upd AS (UPDATE ${this.schema}.tasks SET owner = $1, status = $2, version = $3, body = $4 WHERE task_id = $5 AND version = $6 RETURNING task_id)
       SELECT pg_notify($7, task_id || ' ' || $3) FROM upd`,
      [task.owner, task.status, task.version, json, task.taskId, expectedVersion, this.channel],
    );
    return rowCount === 1;
  }

  /**
   * Several compare-and-swaps in one statement (`UPDATE … FROM unnest(…)`). Each row is written only
   * if its stored version is the expected one; when two calls of the batch race for one task, the
   * row is updated once and `RETURNING` names the call that won, so exactly one of them succeeds.
   */
  private async replaceMany(calls: readonly PendingReplace[]): Promise<boolean[]> {
    const { rows } = await this.query<{ ord: number }>(
      `WITH v AS (SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::int[], $5::jsonb[], $6::int[], $7::int[])
                    AS v(task_id, owner, status, version, body, expected, ord)),
            upd AS (UPDATE ${this.schema}.tasks t SET owner = v.owner, status = v.status, version = v.version, body = v.body
                    FROM v WHERE t.task_id = v.task_id AND t.version = v.expected RETURNING v.ord, t.task_id, t.version)
       SELECT ord, pg_notify($8, task_id || ' ' || version) FROM upd`,
      [
        calls.map((c) => c.task.taskId),
        calls.map((c) => c.task.owner),
        calls.map((c) => c.task.status),
        calls.map((c) => c.task.version),
        calls.map((c) => c.json),
        calls.map((c) => c.expectedVersion),
        calls.map((_, i) => i),
        this.channel,
      ],
    );
    const won = new Set(rows.map((row) => Number(row.ord)));
    return calls.map((_, i) => won.has(i));
  }

  async list(query: ListQuery): Promise<TaskRecord[]> {
    const { rows } = query.after
      ? await this.query<{ body: TaskRecord }>(
          `SELECT body FROM ${this.schema}.tasks WHERE owner IS NOT DISTINCT FROM $1 AND (created_at, task_id) > ($2, $3) ORDER BY created_at, task_id LIMIT $4`,
          [query.owner, query.after.createdAt, query.after.taskId, query.limit],
        )
      : await this.query<{ body: TaskRecord }>(
          `SELECT body FROM ${this.schema}.tasks WHERE owner IS NOT DISTINCT FROM $1 ORDER BY created_at, task_id LIMIT $2`,
          [query.owner, query.limit],
        );
    return rows.map((row) => row.body);
  }

  /**
   * One SQL query per page: the filters in `WHERE` (the tool as `body->'request'->>'tool'`), newest
   * first by the `(created_at, task_id)` index (or the per-owner one when `owner` is given).
   */
  async listAll(query: OperatorListQuery): Promise<OperatorListPage> {
    if (query.statuses?.length === 0) return { tasks: [] };
    const where: string[] = [];
    const params: unknown[] = [];
    const and = (condition: (...placeholders: string[]) => string, ...values: unknown[]) => {
      where.push(condition(...values.map((_, i) => `$${params.length + i + 1}`)));
      params.push(...values);
    };
    if (query.owner === null) where.push('owner IS NULL');
    else if (query.owner !== undefined) and((p) => `owner = ${p}`, query.owner);
    if (query.statuses !== undefined) and((p) => `${query.toolErrorsAsFailed ? SHOWN_STATUS : 'status'} = ANY(${p}::text[])`, query.statuses);
    if (query.tool !== undefined) and((p) => `body->'request'->>'tool' = ${p}`, query.tool);
    if (query.createdFrom !== undefined) and((p) => `created_at >= ${p}`, query.createdFrom);
    if (query.createdTo !== undefined) and((p) => `created_at < ${p}`, query.createdTo);
    if (query.before !== undefined) and((c, t) => `(created_at, task_id) < (${c}, ${t})`, query.before.createdAt, query.before.taskId);
    params.push(query.limit);
    const { rows } = await this.query<{ body: TaskRecord }>(
      `SELECT body FROM ${this.schema}.tasks ${where.length > 0 ? `WHERE ${where.join(' AND ')}` : ''}
       ORDER BY created_at DESC, task_id DESC LIMIT $${params.length}`,
      params,
    );
    return { tasks: rows.map((row) => row.body) };
  }

  /**
   * One `GROUP BY status` scan of the table; a terminal row counts until `createdAt + ttl` (read from
   * the JSONB body) passes, the complement of `purgeExpired`'s condition. An `input_required` task
   * waits since the first ask of its oldest outstanding question (its `asked:<key>` journal entry,
   * read by primary key per question; else its `lastUpdatedAt`).
   */
  async countByStatus(nowMs: number): Promise<StatusCounts> {
    const { rows } = await this.query<{ status: string; n: string; tool_errors: string; oldest: string | null }>(
      `SELECT status, COUNT(*) AS n,
         COUNT(*) FILTER (WHERE status = 'completed' AND body->'outcome'->'result'->'isError' = 'true'::jsonb) AS tool_errors,
         MIN(CASE WHEN status = 'input_required' THEN COALESCE(
           (SELECT MIN(COALESCE(j.value->>'at', t.body->>'lastUpdatedAt') COLLATE "C")
            FROM jsonb_object_keys(t.body->'inputRequests') AS q(key)
            LEFT JOIN ${this.schema}.journal AS j ON j.task_id = t.task_id AND j.key = $2 || q.key),
           t.body->>'lastUpdatedAt') END COLLATE "C") AS oldest
       FROM ${this.schema}.tasks AS t
       WHERE status IN ('working', 'input_required') OR body->>'ttl' IS NULL
          OR created_at::timestamptz + ((body->>'ttl')::bigint * interval '1 millisecond') > to_timestamp($1 / 1000.0)
       GROUP BY status`,
      [nowMs, askedKey('')],
    );
    const counts = zeroCounts();
    let toolErrors = 0;
    let oldestInputRequiredAt: string | undefined;
    for (const row of rows) {
      if (Object.hasOwn(counts, row.status)) counts[row.status as keyof typeof counts] = Number(row.n);
      if (row.status === 'completed') toolErrors = Number(row.tool_errors);
      if (row.status === 'input_required' && row.oldest !== null) oldestInputRequiredAt = row.oldest;
    }
    return {
      counts,
      ...(toolErrors > 0 && { completedWithToolError: toolErrors }),
      ...(oldestInputRequiredAt !== undefined && { oldestInputRequiredAt }),
    };
  }

  async listUnfinished(): Promise<TaskRecord[]> {
    const { rows } = await this.query<{ body: TaskRecord }>(
      `SELECT body FROM ${this.schema}.tasks WHERE status IN ('working', 'input_required') ORDER BY created_at, task_id`,
      [],
    );
    return rows.map((row) => row.body);
  }

  async purgeExpired(nowMs: number, limit: number): Promise<number> {
    const { rowCount } = await this.query(
      `WITH doomed AS (
         SELECT task_id FROM ${this.schema}.tasks
         WHERE status IN ('completed', 'failed', 'cancelled') AND body->>'ttl' IS NOT NULL
           AND created_at::timestamptz + ((body->>'ttl')::bigint * interval '1 millisecond') <= to_timestamp($1 / 1000.0)
         LIMIT $2),
       journal AS (DELETE FROM ${this.schema}.journal WHERE task_id IN (SELECT task_id FROM doomed)),
       outbox AS (DELETE FROM ${this.schema}.outbox WHERE task_id IN (SELECT task_id FROM doomed))
       DELETE FROM ${this.schema}.tasks WHERE task_id IN (SELECT task_id FROM doomed)`,
      [nowMs, limit],
    );
    return rowCount ?? 0;
  }

  async countUnfinished(owner: string | null): Promise<number> {
    const { rows } = await this.query<{ n: string }>(
      `SELECT COUNT(*) AS n FROM ${this.schema}.tasks WHERE owner IS NOT DISTINCT FROM $1 AND status IN ('working', 'input_required')`,
      [owner],
    );
    return Number(rows[0]!.n);
  }

  async versionsOf(taskIds: string[]): Promise<Map<string, number>> {
    const { rows } = await this.query<{ task_id: string; version: string | number }>(
      `SELECT task_id, version FROM ${this.schema}.tasks WHERE task_id = ANY($1::text[])`,
      [taskIds],
    );
    return new Map(rows.map((row) => [row.task_id, Number(row.version)]));
  }

  /**
   * Deletes the task's journal, outbox rows and record; the record's deletion sends a change notice
   * without a version (`<taskId>`), so other instances drop it from their cache of ended tasks.
   */
  async delete(taskId: string): Promise<boolean> {
    this.ended.drop(taskId);
    await this.query(`DELETE FROM ${this.schema}.journal WHERE task_id = $1`, [taskId]);
    await this.query(`DELETE FROM ${this.schema}.outbox WHERE task_id = $1`, [taskId]);
    const { rowCount } = await this.query(
      `WITH del AS (DELETE FROM ${this.schema}.tasks WHERE task_id = $1 RETURNING task_id) SELECT pg_notify($2, task_id) FROM del`,
      [taskId, this.channel],
    );
    this.ended.drop(taskId);
    return rowCount === 1;
  }

  async readJournal(taskId: string): Promise<Map<string, Json>> {
    const { rows } = await this.query<{ key: string; value: Json }>(`SELECT key, value FROM ${this.schema}.journal WHERE task_id = $1`, [taskId]);
    return new Map(rows.map((row) => [row.key, row.value]));
  }

  async deleteJournal(taskId: string, keys: string[]): Promise<number> {
    if (keys.length === 0) return 0;
    const { rowCount } = await this.query(`DELETE FROM ${this.schema}.journal WHERE task_id = $1 AND key = ANY($2::text[])`, [taskId, keys]);
    return rowCount ?? 0;
  }

  appendJournal(taskId: string, key: string, value: Json, fence?: Fence): Promise<boolean> {
    return this.appends.load({ taskId, key, value, ...(fence && { fence }) });
  }

  /**
   * A fenced append inserts only if the task's row holds the fence, checked under a share lock of
   * that row (see `FENCE_HOLDS`): a claim cannot commit between the check and the insert.
   */
  private async appendOne({ taskId, key, value, fence }: PendingAppend): Promise<boolean> {
    const { rowCount } = fence
      ? await this.query(
          `INSERT INTO ${this.schema}.journal (task_id, key, value)
           SELECT $1, $2, $3 WHERE EXISTS (SELECT 1 FROM ${this.schema}.tasks t WHERE t.task_id = $1 AND ${FENCE_HOLDS('$4', '$5')} FOR SHARE)
           ON CONFLICT DO NOTHING`,
          [taskId, key, JSON.stringify(value), fence.holder, fence.epoch],
        )
      : await this.query(`INSERT INTO ${this.schema}.journal (task_id, key, value) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING`, [
          taskId,
          key,
          JSON.stringify(value),
        ]);
    return rowCount === 1;
  }

  /**
   * Several appends in one statement (fenced ones checked row by row). Of several calls for one key
   * in the batch, the first goes in the statement and the others follow it one by one, in order:
   * the first that writes wins, as if each had been sent alone (a fenced first call may be refused).
   */
  private async appendMany(batch: readonly PendingAppend[]): Promise<boolean[]> {
    const slot = (taskId: string, key: string) => JSON.stringify([taskId, key]);
    const first = new Map<string, PendingAppend>();
    for (const c of batch) if (!first.has(slot(c.taskId, c.key))) first.set(slot(c.taskId, c.key), c);
    const calls = [...first.values()];
    const written = await this.appendFirsts(calls);
    const outcomes: boolean[] = [];
    for (const c of batch) outcomes.push(first.get(slot(c.taskId, c.key)) === c ? written.has(c) : await this.appendOne(c));
    return outcomes;
  }

  /** One statement appending `calls` (one per task and key); resolves with the calls that wrote. */
  private async appendFirsts(calls: readonly PendingAppend[]): Promise<Set<PendingAppend>> {
    const { rows } = await this.query<{ task_id: string; key: string }>(
      `INSERT INTO ${this.schema}.journal (task_id, key, value)
       SELECT v.task_id, v.key, v.value FROM unnest($1::text[], $2::text[], $3::jsonb[], $4::text[], $5::int[]) AS v(task_id, key, value, holder, epoch)
       WHERE v.holder IS NULL OR EXISTS (SELECT 1 FROM ${this.schema}.tasks t WHERE t.task_id = v.task_id AND ${FENCE_HOLDS('v.holder', 'v.epoch')} FOR SHARE)
       ON CONFLICT DO NOTHING RETURNING task_id, key`,
      [
        calls.map((c) => c.taskId),
        calls.map((c) => c.key),
        calls.map((c) => JSON.stringify(c.value)),
        calls.map((c) => c.fence?.holder ?? null),
        calls.map((c) => c.fence?.epoch ?? null),
      ],
    );
    const slot = (taskId: string, key: string) => JSON.stringify([taskId, key]);
    const written = new Set(rows.map((row) => slot(row.task_id, row.key)));
    return new Set(calls.filter((c) => written.has(slot(c.taskId, c.key))));
  }

  watch(listener: (taskId: string, version?: number) => void, resync?: () => void): () => void {
    this.watchers.add(listener);
    if (resync) this.resyncs.add(resync);
    void this.listen();
    return () => {
      this.watchers.delete(listener);
      if (resync) this.resyncs.delete(resync);
    };
  }

  /**
   * Keeps one LISTEN connection open while anyone watches; reconnects after errors, and after a
   * health check (`SELECT 1` every 5 s, bounded by the query timeout) finds it silent — a
   * connection to an unreachable server can look open for minutes. Once listening again after a
   * loss, calls the `resync` callbacks: notices sent meanwhile were missed.
   */
  private async listen(): Promise<void> {
    if (this.listener || this.closed) return;
    const client = new (driver().Client)(this.connectionConfig());
    this.listener = client;
    const retry = () => {
      if (this.listener !== client) return;
      this.listener = undefined;
      this.missedNotices = true;
      this.ended.lost(false);
      if (this.listenerCheck) clearInterval(this.listenerCheck);
      this.listenerCheck = undefined;
      client.end().catch(() => undefined);
      if (!this.closed && this.watchers.size > 0) setTimeout(() => void this.listen(), 500).unref();
    };
    client.on('error', retry);
    client.on('end', retry);
    client.on('notification', (message) => {
      if (message.channel !== this.channel || !message.payload) return;
      const { taskId, version } = parseChangeNotice(message.payload);
      this.ended.notice(taskId, version);
      for (const watcher of this.watchers) watcher(taskId, version);
    });
    try {
      await this.migrate();
      await client.connect();
      await client.query(`LISTEN ${this.channel}`);
    } catch {
      retry();
      return;
    }
    if (this.listener !== client) return;
    this.ended.listening();
    this.listenerCheck = setInterval(() => void client.query('SELECT 1').catch(retry), 5000);
    this.listenerCheck.unref();
    if (this.missedNotices) {
      this.missedNotices = false;
      for (const resync of this.resyncs) resync();
    }
  }

  /** Closes the pool and the LISTEN connection. Idempotent. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.ended.lost(false);
    if (this.listenerCheck) clearInterval(this.listenerCheck);
    const listener = this.listener;
    this.listener = undefined;
    await listener?.end().catch(() => undefined);
    await this.pool.end();
  }
}
