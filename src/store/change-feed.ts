import { EventEmitter } from 'node:events';
import { silentLogger, type Logger } from '../core/log.js';
import type { TaskStatus } from '../core/status.js';
import type { Lease, TaskRecord } from '../core/task.js';
import type { StoreBackend } from './backend.js';

/** Default `ChangeFeedOptions.recheckMs`: 30 s. */
export const DEFAULT_RECHECK_MS = 30_000;
/** Most task ids one recheck read covers (the limit of `StoreBackend.versionsOf`). */
const RECHECK_BATCH = 500;
/** Past this many tasks, the memory of announced versions is cleared (see `ChangeFeed`, "Not guaranteed"). */
const ANNOUNCED_LIMIT = 50_000;

/**
 * What a `ChangeFeed` needs of a backend: reads (`get`, and `versionsOf` when it has it), the
 * shared backends' change notices (`watch`), and whether one process owns the data (`exclusive`: no
 * recheck then). `TaskStore` passes its guarded backend, so the feed's reads count in its health.
 */
export type ChangeSource = Pick<StoreBackend, 'get' | 'versionsOf' | 'watch' | 'exclusive'>;

/** Options of a `ChangeFeed`. */
export interface ChangeFeedOptions {
  /**
   * Shared backends only: how often (ms, default 30000) the tasks with listeners here are checked
   * against the backend in one batched read (see `ChangeFeed`). 0 disables the periodic check (a
   * `resync` from the backend still triggers one).
   */
  recheckMs?: number;
  /** Where a failed recheck is reported (debug level). Default: silent. */
  logger?: Logger;
}

/** What the feed last announced of a task: its version, status and lease (see `ChangeFeed.lastSeen`). */
export interface AnnouncedVersion {
  version: number;
  status: TaskStatus;
  lease?: Lease;
}

/** A listener of one task: the record as it now is, or undefined once the task is gone. */
export type TaskChangeListener = (task: TaskRecord | undefined) => void;

/**
 * The change feed of one `TaskStore`: tells listeners in this process that a task changed, with the
 * record as it now is. It decides nothing about tasks (`TaskStore` does) and stores nothing durable:
 * it is in-process state, gone on restart, and the store's records stay the truth.
 *
 * Where announcements come from:
 * - This store's own writes: `TaskStore` calls `announce` after each successful write, before the
 *   write's own promise resolves (inside `ownWrite`, see below).
 * - Other processes' writes, on shared backends (`StoreBackend.watch`: PostgreSQL `LISTEN`, Redis
 *   pub/sub): a notice `(taskId, version)` is read back (`get`) and announced — only when someone
 *   here listens (`onChange`, or a listener of that task), and not when the notice is of a version
 *   already announced or of this store's write under way.
 * - The recheck, for tasks with listeners of their own (`onTaskChange`, `nextChange`): every
 *   `recheckMs` ms (default 30000) while there are such tasks, and at once when the backend reports
 *   that its notices were interrupted (`watch`'s `resync`), one batched read of their versions
 *   (`versionsOf`, 500 ids a call; whole records without it). Each task whose version passed the
 *   last one announced here (or that was never announced here) is read and announced; each found
 *   gone is announced as deleted. One interval timer per feed, running only while some task has
 *   listeners; none on exclusive backends (every write is this process's own) or with
 *   `recheckMs: 0`. A recheck that fails is logged (debug) and the next one comes at the next tick.
 *
 * Guarantees:
 * - Per task, versions only go up: a record is announced only when its version is higher than the
 *   highest announced for that task, so a listener never sees an older record after a newer one nor
 *   the same version twice (but see the bounded memory below).
 * - This store's successful writes are each announced, once. On shared backends the notice of our
 *   own write can arrive before the write's reply: while the write is under way (`ownWrite`) it is
 *   set aside, since the write announces its record itself; if the write did not happen after all
 *   (a compare-and-swap lost to another process, which wrote that version), that task is read and
 *   announced then, so the other process's write is not lost.
 * - A task with listeners of its own learns of another process's write by its notice, or at the
 *   latest by the next recheck (within `recheckMs` of the write, while the backend is reachable).
 *   Its listeners get undefined when the task was deleted here (`announceDeleted`) or a recheck
 *   found it gone.
 *
 * Not guaranteed:
 * - Every state: it is the latest state, not each transition. Versions may be skipped (a notice read
 *   back after later writes announces the newest record; the recheck announces where a task is).
 *   Whoever needs each step reads the record or the journal.
 * - Order across tasks, or exactly-once across processes: the memory of announced versions is
 *   bounded (cleared past 50000 tasks), after which a version may be announced once more. Listeners
 *   must tolerate a repeat.
 * - Other processes' writes for `onChange` listeners without notices: on a shared backend without
 *   `watch` (a shared SQLite file) they hear of this process's writes and of rechecked tasks only. A
 *   notice whose read fails is dropped (the recheck covers tasks with listeners of their own).
 *   `onChange` listeners are not told of deletions.
 * - Isolation from listeners: they run synchronously in the announcing call (a write of this store,
 *   a notice, a recheck) and must not throw; a throw reaches that caller.
 */
export class ChangeFeed {
  private readonly source: ChangeSource;
  private readonly log: Logger;
  private readonly recheckMs: number;
  /** Listeners of every task (`onChange`). */
  private readonly events = new EventEmitter();
  /** Listeners of one task (`onTaskChange`, `nextChange`), so a change wakes only its own task's listeners. */
  private readonly taskListeners = new Map<string, Set<TaskChangeListener>>();
  /** Highest version announced per task, with that record's status and lease (see `lastSeen`). */
  private readonly announced = new Map<string, AnnouncedVersion>();
  /** This store's writes under way, per task: the version being written, and whether its notice came meanwhile (see `ownWrite`). */
  private readonly writing = new Map<string, { version: number; noticed: boolean }>();
  private readonly unwatch?: () => void;
  private recheckTimer?: NodeJS.Timeout;
  private rechecking = false;

  /** Subscribes to `source`'s change notices at once (when it has any); `close` ends that. */
  constructor(source: ChangeSource, options: ChangeFeedOptions = {}) {
    this.source = source;
    this.log = options.logger ?? silentLogger;
    this.recheckMs = options.recheckMs ?? DEFAULT_RECHECK_MS;
    this.events.setMaxListeners(0);
    this.unwatch = source.watch?.(
      (taskId, version) => this.notice(taskId, version),
      // The backend's notices were interrupted: what waits here re-reads at once instead of at the next recheck.
      () => void this.recheck(),
    );
  }

  /**
   * Announces `task` (a record just written, or read back) to the listeners of every task and of
   * its own, unless a record of the same or a higher version was announced already.
   */
  announce(task: TaskRecord): void {
    if ((this.announced.get(task.taskId)?.version ?? 0) >= task.version) return;
    if (this.announced.size > ANNOUNCED_LIMIT) this.announced.clear();
    this.announced.set(task.taskId, { version: task.version, status: task.status, ...(task.lease && { lease: task.lease }) });
    this.events.emit('change', task);
    const listeners = this.taskListeners.get(task.taskId);
    if (listeners) for (const listener of [...listeners]) listener(task);
  }

  /** Tells the listeners of `taskId` that it is gone (they get undefined; re-reading meets `TaskNotFoundError`). */
  announceDeleted(taskId: string): void {
    for (const listener of [...(this.taskListeners.get(taskId) ?? [])]) listener(undefined);
  }

  /**
   * Runs `write`, this store's write of `task` (of version `task.version`), resolving with whether
   * it happened (what `write` resolved with; its rejection is passed on). A notice of that version
   * arriving meanwhile is set aside: the caller announces the record itself when the write
   * succeeded. If it did not happen and such a notice came, the task is read and announced.
   */
  async ownWrite(task: TaskRecord, write: () => Promise<boolean>): Promise<boolean> {
    const mark = { version: task.version, noticed: false };
    this.writing.set(task.taskId, mark);
    let written = false;
    try {
      written = await write();
      return written;
    } finally {
      if (this.writing.get(task.taskId) === mark) this.writing.delete(task.taskId);
      if (!written && mark.noticed) this.refresh(task.taskId);
    }
  }

  /**
   * The version, status and lease of the newest record of `taskId` announced here (this store's
   * writes, and on shared stores others' it heard of), or undefined. Synchronous.
   */
  lastSeen(taskId: string): AnnouncedVersion | undefined {
    return this.announced.get(taskId);
  }

  /** Subscribes to every task's announcements. Returns the unsubscribe function. */
  onChange(listener: (task: TaskRecord) => void): () => void {
    this.events.on('change', listener);
    return () => this.events.off('change', listener);
  }

  /**
   * Subscribes to the announcements of one task only: an announcement calls only its own task's
   * listeners, however many tasks are watched. The listener gets undefined once the task is gone.
   * Arms the recheck (see the class comment) while any task has listeners. Returns the unsubscribe
   * function.
   */
  onTaskChange(taskId: string, listener: TaskChangeListener): () => void {
    let set = this.taskListeners.get(taskId);
    if (!set) this.taskListeners.set(taskId, (set = new Set()));
    set.add(listener);
    this.armRecheck();
    return () => {
      set.delete(listener);
      if (set.size === 0 && this.taskListeners.get(taskId) === set) this.taskListeners.delete(taskId);
      if (this.taskListeners.size === 0) this.disarmRecheck();
    };
  }

  /**
   * Resolves with the task's next announced record (undefined when it is gone), or with undefined
   * when `timeoutMs` (ms; default: none) elapses or `signal` aborts first. Subscribe before
   * checking state to never miss a change. Holds no timer without `timeoutMs`, and nothing at all
   * once it resolved.
   */
  nextChange(taskId: string, options: { signal?: AbortSignal; timeoutMs?: number } = {}): Promise<TaskRecord | undefined> {
    return new Promise((resolve) => {
      let timer: NodeJS.Timeout | undefined;
      const done = (task: TaskRecord | undefined) => {
        off();
        if (timer) clearTimeout(timer);
        options.signal?.removeEventListener('abort', onAbort);
        resolve(task);
      };
      const onAbort = () => done(undefined);
      const off = this.onTaskChange(taskId, done);
      if (options.signal?.aborted) return done(undefined);
      options.signal?.addEventListener('abort', onAbort, { once: true });
      if (options.timeoutMs !== undefined) timer = setTimeout(() => done(undefined), options.timeoutMs);
    });
  }

  /** How many tasks have listeners of their own, how many such listeners there are, and how many `onChange` has. */
  listenerCounts(): { tasks: number; taskListeners: number; changeListeners: number } {
    let taskListeners = 0;
    for (const set of this.taskListeners.values()) taskListeners += set.size;
    return { tasks: this.taskListeners.size, taskListeners, changeListeners: this.events.listenerCount('change') };
  }

  /**
   * Stops the recheck timer and the backend's notices, and drops the `onChange` listeners. Listeners
   * of single tasks stay registered (they are told nothing more unless this store writes or deletes).
   */
  close(): void {
    this.disarmRecheck();
    this.unwatch?.();
    this.events.removeAllListeners();
  }

  /** A change notice from the backend: read and announce it, unless nobody listens or it is known. */
  private notice(taskId: string, version: number | undefined): void {
    if (this.events.listenerCount('change') === 0 && !this.taskListeners.has(taskId)) return; // nobody listens here
    if (version !== undefined) {
      if ((this.announced.get(taskId)?.version ?? 0) >= version) return; // already announced (our own write)
      const own = this.writing.get(taskId);
      if (own?.version === version) return void (own.noticed = true); // our write under way will announce it
    }
    this.refresh(taskId);
  }

  /** Reads a task another process wrote and announces it (if it still exists); a failed read is dropped. */
  private refresh(taskId: string): void {
    this.source.get(taskId).then(
      (task) => task && this.announce(task),
      () => undefined,
    );
  }

  private armRecheck(): void {
    if (this.recheckTimer || this.recheckMs <= 0 || this.source.exclusive) return;
    this.recheckTimer = setInterval(() => void this.recheck(), this.recheckMs);
    this.recheckTimer.unref();
  }

  private disarmRecheck(): void {
    if (this.recheckTimer) clearInterval(this.recheckTimer);
    this.recheckTimer = undefined;
  }

  /**
   * One batched read of the versions of every task with listeners of its own; each that moved past
   * what was last announced here (or was never announced here) is read and announced, each that
   * disappeared (deleted, purged) is announced as deleted. One at a time: a recheck due while one
   * runs is skipped.
   */
  private async recheck(): Promise<void> {
    if (this.rechecking) return;
    this.rechecking = true;
    try {
      const ids = [...this.taskListeners.keys()];
      for (let at = 0; at < ids.length; at += RECHECK_BATCH) {
        const batch = ids.slice(at, at + RECHECK_BATCH);
        // Without `versionsOf` the records are read whole, and those read are announced as they are.
        const records = this.source.versionsOf
          ? undefined
          : new Map((await Promise.all(batch.map((id) => this.source.get(id)))).flatMap((task) => (task ? [[task.taskId, task] as const] : [])));
        const versions = records ? new Map([...records].map(([id, task]) => [id, task.version])) : await this.source.versionsOf!(batch);
        for (const taskId of batch) {
          const version = versions.get(taskId);
          if (version !== undefined && (this.announced.get(taskId)?.version ?? 0) >= version) continue;
          const task = version === undefined ? undefined : (records?.get(taskId) ?? (await this.source.get(taskId)));
          if (task) this.announce(task);
          else this.announceDeleted(taskId);
        }
      }
    } catch (error) {
      this.log.debug({ err: error }, 'recheck of waited-on tasks failed; next one in recheckMs');
    } finally {
      this.rechecking = false;
    }
  }
}
