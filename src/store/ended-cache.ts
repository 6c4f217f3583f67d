import { isTerminal } from '../core/status.js';
import type { TaskRecord } from '../core/task.js';

/** Default `EndedCache` budget: 16 MiB of record JSON (UTF-16 code units counted as 2 bytes). */
export const DEFAULT_ENDED_CACHE_BYTES = 16 * 1024 * 1024;

/**
 * How long before its expiry (`createdAt + ttl`) a cached record is no longer served, in ms: the
 * store then decides (Redis drops the keys at that instant by its own clock, which may run ahead).
 */
const EXPIRY_MARGIN_MS = 60_000;

/** One read or write of a task under way (see `EndedCache.begin`). */
export interface EndedTicket {
  readonly taskId: string;
  /** The cache's epoch when it began: a loss of notices since then (`EndedCache.lost`) voids it. */
  readonly epoch: number;
  /** Whether notices were flowing when it began. */
  readonly live: boolean;
  /** The highest version a notice named for this task while it was under way (Infinity: a notice without one). */
  noticed: number;
}

interface Entry {
  version: number;
  json: string;
  /** ms since the epoch after which the entry is not served (Infinity without ttl). */
  until: number;
  bytes: number;
}

/**
 * The records of ended tasks (`completed`, `failed`, `cancelled`) a shared backend (PostgreSQL,
 * Redis) has just read or written, kept so that the reads that follow a task's end — a `tasks/get`
 * that finds it ended, `tasks/result`, a waiter woken by the write — need no round trip.
 *
 * Why it is safe: a terminal record is final (2025-11-25 "Task Status Lifecycle"); the writes that
 * may still follow are an operator's `retriedAs` mark, and deletion. Every write of a task sends a
 * change notice with its version (`parseChangeNotice`) and a deletion sends one without, so an
 * entry is dropped as soon as this process's notice connection hears of a newer version; an entry
 * is only made from a read or write during which no newer notice arrived, and only while notices
 * flow (`live`): when the notice connection is lost, or a query fails for want of a connection
 * (`lost`), every entry is dropped and reads and writes already under way make none. What it does
 * not give: a write by another instance is seen here once its notice arrives (about a millisecond
 * after its commit on loopback), not at its commit, as a read from the store would; and a record
 * read from here succeeds while an outage is not yet detected.
 *
 * Entries are the record's JSON (parsed anew on every hit, so callers get their own copy), at most
 * `maxBytes` in all, oldest dropped first; a record is not served within 60 s of its expiry
 * (`createdAt + ttl`). `maxBytes` 0 disables the cache.
 */
export class EndedCache {
  private readonly entries = new Map<string, Entry>();
  private readonly underWay = new Map<string, Set<EndedTicket>>();
  private bytes = 0;
  private epoch = 0;
  /** Whether change notices are flowing (the backend's notice connection listens). */
  private live = false;

  constructor(private readonly maxBytes = DEFAULT_ENDED_CACHE_BYTES) {}

  /** The cached record of `taskId` (a fresh copy), or undefined when there is none to serve. */
  get(taskId: string): TaskRecord | undefined {
    const entry = this.entries.get(taskId);
    if (entry === undefined) return undefined;
    if (Date.now() >= entry.until) {
      this.drop(taskId);
      return undefined;
    }
    return JSON.parse(entry.json) as TaskRecord;
  }

  /**
   * The record of `taskId`: a copy of the cached one, else what `load` reads from the store (`json`:
   * the record's JSON as stored, when the load has it), cached as `end` decides. A load that
   * rejects caches nothing and rejects alike.
   */
  async read(taskId: string, load: () => Promise<{ task: TaskRecord | undefined; json?: string }>): Promise<TaskRecord | undefined> {
    const cached = this.get(taskId);
    if (cached) return cached;
    const ticket = this.begin(taskId);
    try {
      const { task, json } = await load();
      this.end(ticket, task, json);
      return task;
    } catch (error) {
      this.abandon(ticket);
      throw error;
    }
  }

  /**
   * Starts a read or a write of `taskId`: notices arriving until `end` are noted on the ticket.
   * Call `end` (or `abandon`) exactly once after.
   */
  begin(taskId: string): EndedTicket {
    const ticket: EndedTicket = { taskId, epoch: this.epoch, live: this.live, noticed: 0 };
    if (this.maxBytes <= 0) return ticket;
    let set = this.underWay.get(taskId);
    if (!set) this.underWay.set(taskId, (set = new Set()));
    set.add(ticket);
    return ticket;
  }

  /**
   * Ends `ticket` with the record read or written (undefined: none, or a write that did not
   * happen). The record is cached when it is terminal, notices flowed throughout, and none named a
   * newer version meanwhile. `json`, when given, is the record's JSON as stored.
   */
  end(ticket: EndedTicket, task: TaskRecord | undefined, json?: string): void {
    this.abandon(ticket);
    if (task === undefined || !isTerminal(task.status)) return;
    if (!ticket.live || !this.live || ticket.epoch !== this.epoch || ticket.noticed > task.version) return;
    const current = this.entries.get(task.taskId);
    if (current && current.version >= task.version) return;
    const text = json ?? JSON.stringify(task);
    const bytes = text.length * 2;
    if (bytes > this.maxBytes / 4) return;
    this.drop(task.taskId);
    const until = task.ttl === null || task.ttl === undefined ? Infinity : Date.parse(task.createdAt) + task.ttl - EXPIRY_MARGIN_MS;
    if (!(Date.now() < until)) return;
    this.entries.set(task.taskId, { version: task.version, json: text, until, bytes });
    this.bytes += bytes;
    for (const [oldest, entry] of this.entries) {
      if (this.bytes <= this.maxBytes) break;
      this.entries.delete(oldest);
      this.bytes -= entry.bytes;
    }
  }

  /**
   * Ends the `ticket` of a compare-and-swap of `task`: caches it (see `end`) when it was `written`,
   * else forgets the task, so the caller's retry reads it fresh.
   */
  settleWrite(ticket: EndedTicket, task: TaskRecord, json: string | undefined, written: boolean): void {
    if (written) return this.end(ticket, task, json);
    this.abandon(ticket);
    this.drop(task.taskId);
  }

  /** Ends `ticket` caching nothing (the call failed). */
  abandon(ticket: EndedTicket): void {
    const set = this.underWay.get(ticket.taskId);
    if (!set?.delete(ticket)) return;
    if (set.size === 0) this.underWay.delete(ticket.taskId);
  }

  /**
   * A change notice: `version` is the record's version after the write, undefined for a notice
   * without one (a deletion, an older mcp-tasks). Drops the entry unless it is that version or newer.
   */
  notice(taskId: string, version: number | undefined): void {
    const seen = version ?? Infinity;
    const entry = this.entries.get(taskId);
    if (entry && entry.version < seen) this.drop(taskId);
    const set = this.underWay.get(taskId);
    if (set) for (const ticket of set) ticket.noticed = Math.max(ticket.noticed, seen);
  }

  /** Forgets `taskId` (deleted here, or a compare-and-swap on it lost). */
  drop(taskId: string): void {
    const entry = this.entries.get(taskId);
    if (!entry) return;
    this.entries.delete(taskId);
    this.bytes -= entry.bytes;
  }

  /** Notices flow again (the notice connection listens): reads and writes begun from now on may cache. */
  listening(): void {
    this.live = true;
  }

  /**
   * Notices may have been missed (the notice connection was lost: `listening` = false) or the store
   * could not be reached: every entry is dropped, and reads and writes under way cache nothing.
   */
  lost(listening: boolean): void {
    this.epoch++;
    if (!listening) this.live = false;
    this.entries.clear();
    this.bytes = 0;
  }

  /** How many records are cached, and their JSON's size (bytes, UTF-16). */
  stats(): { entries: number; bytes: number } {
    return { entries: this.entries.size, bytes: this.bytes };
  }
}
