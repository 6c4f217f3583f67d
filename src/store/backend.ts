import type { Json } from '../core/json.js';
import type { TaskRecord } from '../core/task.js';

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
 * A storage backend: dumb persistence with one atomic primitive (compare-and-swap on `version`).
 * It enforces no task rules; `TaskStore` does, so every backend behaves the same.
 * Records passed in and returned are copies: mutating them never changes stored state.
 */
export interface StoreBackend {
  /** Stores a new record. Throws if `taskId` exists. */
  insert(task: TaskRecord): Promise<void>;
  /** The stored record, or undefined. */
  get(taskId: string): Promise<TaskRecord | undefined>;
  /**
   * Writes `task` only if the stored version equals `expectedVersion`, atomically.
   * Returns false (writing nothing) when another writer got there first or the task is gone.
   */
  replace(task: TaskRecord, expectedVersion: number): Promise<boolean>;
  /** One page of an owner's tasks, oldest first. */
  list(query: ListQuery): Promise<TaskRecord[]>;
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
  /** Removes a task and its journal. Returns whether it existed. */
  delete(taskId: string): Promise<boolean>;
  /** All journal entries of a task, by key. */
  readJournal(taskId: string): Promise<Map<string, Json>>;
  /** Adds one journal entry. First write wins: returns false and keeps the old value if `key` exists. */
  appendJournal(taskId: string, key: string, value: Json): Promise<boolean>;
  /**
   * For backends shared by several processes: calls `listener(taskId)` whenever any process wrote
   * that task (including this one). Returns the unsubscribe function. Absent on single-process
   * backends, where `TaskStore`'s in-process events suffice.
   */
  watch?(listener: (taskId: string) => void): () => void;
  /**
   * True when only one process uses the data (memory; SQLite by default), so a starting runtime may
   * take over every unfinished task at once instead of waiting for their leases to expire.
   */
  readonly exclusive: boolean;
  close(): Promise<void>;
}
