import type { Json } from '../core/json.js';
import type { TaskStatus } from '../core/status.js';
import type { Fence, TaskRecord } from '../core/task.js';
import type { OutboxBackend, OutboxDelivery } from './outbox.js';

/** Position after which a page of `list` starts: the last record of the previous page. */
export interface ListPosition {
  createdAt: string;
  taskId: string;
}

/** One page request: tasks of `owner` (null matches null only), ordered by (createdAt, taskId). */
export interface ListQuery {
  owner: string | null;
  after?: ListPosition;
  limit: number;
}

/**
 * Filters of an operator listing (every principal's tasks), newest first: ordered by `createdAt`
 * descending, then `taskId` descending. Every given filter must hold (AND); an omitted one matches
 * every task. Times are compared as stored (`createdAt` is `Date.prototype.toISOString()` text, which
 * sorts chronologically), so `createdFrom` / `createdTo` must be in that same canonical form
 * (`TaskStore.listAll` normalizes what it is given). Expired records are not filtered out here:
 * backends return them until purged, and `TaskStore` skips them.
 */
export interface OperatorListQuery {
  /** Any of these statuses; undefined = all. An empty array matches nothing. */
  statuses?: TaskStatus[];
  /**
   * Match `statuses` as an operator reads them: a task that completed with a tool error (see
   * `completedWithToolError`) matches `failed`, not `completed`. Default false (the stored status).
   */
  toolErrorsAsFailed?: boolean;
  /** Only tasks whose `request.tool` equals this. */
  tool?: string;
  /** undefined = every principal; a string = that principal's tasks; null = the anonymous principal's only. */
  owner?: string | null;
  /** ISO 8601 (`toISOString` form), inclusive: `createdAt >= createdFrom`. */
  createdFrom?: string;
  /** ISO 8601 (`toISOString` form), exclusive: `createdAt < createdTo`. */
  createdTo?: string;
  /** Cursor: only tasks strictly older than this position, i.e. `(createdAt, taskId) < before`. */
  before?: ListPosition;
  /** Most tasks to return (a positive integer; `TaskStore` allows 1–1000). */
  limit: number;
}

/**
 * One page of `StoreBackend.listAll`: up to `limit` matching tasks, newest first.
 *
 * A page shorter than `limit` normally means the listing is exhausted. A backend that must filter
 * after fetching (Redis) bounds the work of one call instead: when it stops early it sets
 * `scannedTo`, the position of the last task it examined (matching or not), and the next page
 * continues strictly before it; `tasks` may then hold fewer than `limit` tasks, even none.
 */
export interface OperatorListPage {
  tasks: TaskRecord[];
  /** Where the scan stopped before finding `limit` matches; absent when it did not stop early. */
  scannedTo?: ListPosition;
}

/**
 * How many tasks there are per status (every principal), for an operator overview. Terminal tasks
 * already expired (`createdAt + ttl` passed) are not counted, like `listAll` does not show them.
 */
export interface StatusCounts {
  /** Tasks per status; every status is present (0 when none). */
  counts: Record<TaskStatus, number>;
  /**
   * How many of `counts.completed` completed with a tool error (see `completedWithToolError`), so an
   * operator view can count them as failures. Absent when none (or from a backend that does not
   * report it).
   */
  completedWithToolError?: number;
  /**
   * Since when (ISO 8601) the longest-waiting question has been waiting: the earliest first ask
   * (journal `asked:<key>`, see `AskedEntry`) among the questions still outstanding on
   * `input_required` tasks — durable, so a restart (whose re-ask rewrites `lastUpdatedAt`) does not
   * reset it. An outstanding question without that entry counts from its task's `lastUpdatedAt`.
   * Absent when no task is `input_required`.
   */
  oldestInputRequiredAt?: string;
}

/**
 * A storage backend: dumb persistence with one atomic primitive (compare-and-swap on `version`).
 * It enforces no task rules; `TaskStore` does, so every backend behaves the same.
 * Records passed in and returned are copies: mutating them never changes stored state.
 */
export interface StoreBackend extends Partial<OutboxBackend> {
  /**
   * Stores a new record. Throws if `taskId` exists. When `task.idempotency` is set, atomically with
   * a check of the key's index (`idempotencyScope(task.owner, task.idempotency.key)`, one per
   * principal and key): if another task holding that index is still retained — not expired at
   * `Date.parse(task.createdAt)` (see `isExpired`) — nothing is stored and that task is returned;
   * an expired holder gives the index up. Resolves undefined once `task` is stored.
   */
  insert(task: TaskRecord): Promise<TaskRecord | undefined>;
  /**
   * The retained (not expired at `nowMs`, ms since the epoch) task holding idempotency index
   * `scope` (see `idempotencyScope`), or undefined.
   */
  findByIdempotency(scope: string, nowMs: number): Promise<TaskRecord | undefined>;
  /** The stored record, or undefined. */
  get(taskId: string): Promise<TaskRecord | undefined>;
  /**
   * Writes `task` only if the stored version equals `expectedVersion`, atomically.
   * Returns false (writing nothing) when another writer got there first or the task is gone.
   * `deliveries` (webhooks: the transactional outbox, see `OutboxBackend`) are stored in the same
   * atomic write, and only if it succeeds; a backend without the outbox methods is never given any.
   */
  replace(task: TaskRecord, expectedVersion: number, deliveries?: OutboxDelivery[]): Promise<boolean>;
  /** One page of an owner's tasks, oldest first. */
  list(query: ListQuery): Promise<TaskRecord[]>;
  /**
   * One page of every principal's tasks matching `query`, newest first (`createdAt` descending, then
   * `taskId` descending), for operator tooling; see `OperatorListQuery` and `OperatorListPage`.
   * Expired records not yet purged may be included (`TaskStore` skips them).
   */
  listAll(query: OperatorListQuery): Promise<OperatorListPage>;
  /**
   * Task counts per status over every principal, leaving out terminal tasks expired at `nowMs` (ms
   * since the epoch; `createdAt + ttl <= nowMs`), how many completed with a tool error, and since
   * when the longest-waiting outstanding question waits. See `StatusCounts`.
   */
  countByStatus(nowMs: number): Promise<StatusCounts>;
  /** Every task whose status is `working` or `input_required` (used for recovery on start-up). */
  listUnfinished(): Promise<TaskRecord[]>;
  /**
   * Deletes up to `limit` terminal tasks (and their journals) whose lifetime (`createdAt + ttl`) ended
   * at or before `nowMs` (ms since the epoch). A terminal record's `ttl` already includes the
   * retention after its end (`TaskStore` fixes it in the write that ends the task, see `ttlAtEnd`),
   * so backends need no policy: `createdAt + ttl` is the expiry. Returns how many were deleted.
   * Backends whose keys expire by themselves at that instant (Redis) return 0.
   */
  purgeExpired(nowMs: number, limit: number): Promise<number>;
  /** How many `working`/`input_required` tasks `owner` has. Optional fast path; else the store counts `listUnfinished`. */
  countUnfinished?(owner: string | null): Promise<number>;
  /**
   * The stored `version` of each of `taskIds` that exists (at most 500 ids a call). Optional fast
   * path for `TaskStore`'s recheck of waited-on tasks on shared stores; else it reads each record.
   */
  versionsOf?(taskIds: string[]): Promise<Map<string, number>>;
  /** Removes a task and its journal. Returns whether it existed. */
  delete(taskId: string): Promise<boolean>;
  /** All journal entries of a task, by key. */
  readJournal(taskId: string): Promise<Map<string, Json>>;
  /**
   * Removes the journal entries `keys` of a task (keys it does not have are skipped), atomically.
   * Returns how many were removed. Only an operator retry does this (`TaskStore.retryInPlace`):
   * entries are otherwise append-only.
   */
  deleteJournal(taskId: string, keys: string[]): Promise<number>;
  /**
   * Adds one journal entry. First write wins: returns false and keeps the old value if `key` exists.
   * With `fence`, atomically with a check of the task record: the entry is written only while the
   * task is live (`working` / `input_required`) and its lease names `fence.holder` under
   * `fence.epoch` (a record without `epoch` counts as epoch 0); otherwise nothing is written and it
   * returns false as well (`TaskStore` tells the two apart by reading the record).
   */
  appendJournal(taskId: string, key: string, value: Json, fence?: Fence): Promise<boolean>;
  /**
   * The stored record (or undefined) read fresh — never from a cache or a batch older than the call —
   * with the store's own clock at the read (`nowMs`, ms since the epoch: PostgreSQL
   * `clock_timestamp()`, Redis `TIME`). Optional: backends on this host's clock (memory, SQLite)
   * omit it and `TaskStore` uses `get` and its own clock.
   */
  getAt?(taskId: string): Promise<{ task: TaskRecord | undefined; nowMs: number }>;
  /** The store's clock in ms since the epoch (see `getAt`); optional like it. */
  clock?(): Promise<number>;
  /**
   * For backends shared by several processes: calls `listener(taskId, version)` whenever any process
   * wrote that task (including this one); `version` is the record's version after that write, or
   * undefined when the notice does not carry it (a notice from an older mcp-tasks). Returns the
   * unsubscribe function. `resync`, when given, is called after the backend's change feed was
   * interrupted (a lost connection, now restored): notices sent meanwhile may be missing, so the
   * caller re-reads what it waits on. Absent on single-process backends, where `TaskStore`'s
   * in-process events suffice.
   */
  watch?(listener: (taskId: string, version?: number) => void, resync?: () => void): () => void;
  /**
   * True when only one process uses the data (memory; SQLite by default), so a starting runtime may
   * take over every unfinished task at once instead of waiting for their leases to expire.
   */
  readonly exclusive: boolean;
  /**
   * How logs and errors name this store: its kind and location, never a secret (e.g.
   * `postgres://postgres:***@db:5432/app (schema mcp_tasks)`, `sqlite file /srv/tasks.db`).
   * Optional; `TaskStore` falls back to the backend's class name.
   */
  describe?(): string;
  close(): Promise<void>;
}

/**
 * The payload of a shared backend's change notice: `<taskId> <version>` (task ids never hold a
 * space: see `isPlausibleTaskId`), so a process can tell a notice of its own write, which it has
 * already announced, from a newer one without reading the record. A bare `<taskId>` (no version,
 * as earlier builds sent it) is accepted too and is always treated as news.
 */
export function parseChangeNotice(payload: string): { taskId: string; version?: number } {
  const space = payload.lastIndexOf(' ');
  if (space < 0) return { taskId: payload };
  const version = Number(payload.slice(space + 1));
  return Number.isSafeInteger(version) ? { taskId: payload.slice(0, space), version } : { taskId: payload };
}

/**
 * Whether `task` is live and held under `fence` (its lease names `fence.holder` and `fence.epoch`,
 * a lease without `epoch` counting as epoch 0): the condition of a fenced journal append.
 */
export function holdsFence(task: TaskRecord | undefined, fence: Fence): boolean {
  return (
    task !== undefined &&
    (task.status === 'working' || task.status === 'input_required') &&
    task.lease?.holder === fence.holder &&
    (task.lease.epoch ?? 0) === fence.epoch
  );
}

/**
 * Whether `task` passes every filter of `query` except `limit` (for backends that filter in
 * process: memory, and Redis after fetching). Positions compare as strings, by UTF-16 code unit.
 */
export function matchesOperatorQuery(task: TaskRecord, query: OperatorListQuery): boolean {
  const status = query.toolErrorsAsFailed && completedWithToolError(task) ? 'failed' : task.status;
  if (query.statuses !== undefined && !query.statuses.includes(status)) return false;
  if (query.tool !== undefined && task.request?.tool !== query.tool) return false;
  if (query.owner !== undefined && task.owner !== query.owner) return false;
  if (query.createdFrom !== undefined && task.createdAt < query.createdFrom) return false;
  if (query.createdTo !== undefined && task.createdAt >= query.createdTo) return false;
  if (query.before !== undefined && comparePositions(task, query.before) >= 0) return false;
  return true;
}

/**
 * Whether `task` completed with a tool error: status `completed` with a tool result whose `isError`
 * is true — how a task created over 2026-07-28 ends when its tool fails (over 2025-11-25 it ends
 * `failed`, see `TaskRecord.errorResultStatus`).
 */
export function completedWithToolError(task: TaskRecord): boolean {
  return task.status === 'completed' && task.outcome?.type === 'result' && task.outcome.result.isError === true;
}

/**
 * The earliest of `askedAt` (the first-ask times of a task's outstanding questions, from its journal;
 * undefined where a question has none) with `fallback` (the task's `lastUpdatedAt`) standing in for
 * the missing ones: a task's part of `StatusCounts.oldestInputRequiredAt`.
 */
export function oldestAsked(askedAt: (string | undefined)[], fallback: string): string {
  const times = askedAt.map((at) => at ?? fallback);
  return times.length === 0 ? fallback : times.reduce((a, b) => (b < a ? b : a));
}

/** Orders positions oldest first: by `createdAt`, then `taskId` (negate it for newest first). */
export function comparePositions(a: ListPosition, b: ListPosition): number {
  return a.createdAt < b.createdAt ? -1 : a.createdAt > b.createdAt ? 1 : a.taskId < b.taskId ? -1 : a.taskId > b.taskId ? 1 : 0;
}

/** A `StatusCounts.counts` with every status at 0. */
export function zeroCounts(): Record<TaskStatus, number> {
  return { working: 0, input_required: 0, completed: 0, failed: 0, cancelled: 0 };
}

/** `url` with its password replaced by `***` (for logs and error messages). */
export function redactUrl(url: string): string {
  try {
    const parsed = new URL(url);
    if (parsed.password) parsed.password = '***';
    return parsed.toString();
  } catch {
    return url.replace(/\/\/([^:/@]*):[^@]*@/, '//$1:***@');
  }
}
