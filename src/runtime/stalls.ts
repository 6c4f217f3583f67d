import type { ActivityKind } from '../core/journal-keys.js';
import { monotonicNow } from './lease-guard.js';

export type { ActivityKind };

/**
 * What a running task's context reports to stall detection (`ExecutionContext`, `EngineContext`):
 * each activity, and each wait by design (a durable timer, a question) while it lasts.
 */
export interface ActivityMonitor {
  /** Something happened (see `ActivityKind`): the idle clock starts again, and a stall flag is cleared. */
  activity(kind: ActivityKind): void;
  /**
   * A wait by design begins (`ctx.sleep`/`sleepUntil`: `timer`; a question: `question`): no stall is
   * flagged until the returned function is called (when the wait ends, however), which counts as
   * activity (`endKind`, default `kind`: e.g. `answer`). Calling it twice is harmless.
   */
  waiting(kind: ActivityKind): (endKind?: ActivityKind) => void;
}

/** What a `StallWatch` needs. Times in ms. */
export interface StallWatchOptions {
  /** How long without activity (ms, by the monotonic clock) before the task is flagged; positive. */
  afterMs: number;
  /** The store's clock, ms since the epoch: the times flags and resumptions are recorded with. */
  now: () => number;
  /**
   * The stall mark the task already carries (`TaskRecord.stalled.since`, ISO 8601): set when an
   * earlier run flagged it. The run's start is activity, so this watch clears it at once (`run`).
   */
  flaggedSince?: string;
  /** The task was flagged: no activity since `since` (ISO 8601) for at least `afterMs`; `at` is now. */
  onStalled: (since: string, at: string) => Promise<void>;
  /** The stall episode `since` ended at `at` with `activity`. */
  onResumed: (since: string, at: string, activity: ActivityKind) => Promise<void>;
}

/**
 * Stall detection for one run of one task, in the process that runs it: no store reads, one timer.
 *
 * Every activity only notes the monotonic time (no timer is re-armed on the hot path); the one
 * timer, armed for `afterMs` after the activity it last saw, fires and either re-arms for the rest
 * (there was activity meanwhile) or flags the task (`onStalled`), then stays unarmed until the next
 * activity, which clears the flag (`onResumed`). While a wait by design is open (`waiting`) the
 * timer is not armed at all. A handler stuck in an await that never returns (a fetch without a
 * timeout) makes no activity: it is flagged `afterMs` after its last one, while the instance stays
 * alive and renews the lease. The flag and resume callbacks run one after the other, in order.
 */
export class StallWatch implements ActivityMonitor {
  private last = monotonicNow();
  private lastAt: string;
  private waits = 0;
  private timer?: NodeJS.Timeout;
  private flaggedSince?: string;
  private closed = false;
  private queue: Promise<void> = Promise.resolve();

  constructor(private readonly options: StallWatchOptions) {
    this.lastAt = new Date(options.now()).toISOString();
    this.flaggedSince = options.flaggedSince;
    this.activity('run');
  }

  /** Whether the task is flagged stalled now (by this watch, or carried over from an earlier run). */
  get stalled(): boolean {
    return this.flaggedSince !== undefined;
  }

  activity(kind: ActivityKind): void {
    if (this.closed) return;
    this.last = monotonicNow();
    this.lastAt = new Date(this.options.now()).toISOString();
    if (this.flaggedSince !== undefined) {
      const since = this.flaggedSince;
      const at = this.lastAt;
      this.flaggedSince = undefined;
      this.enqueue(() => this.options.onResumed(since, at, kind));
    }
    if (!this.timer && this.waits === 0) this.arm(this.options.afterMs);
  }

  waiting(kind: ActivityKind): (endKind?: ActivityKind) => void {
    this.activity(kind);
    this.waits++;
    let ended = false;
    return (endKind = kind) => {
      if (ended) return;
      ended = true;
      this.waits--;
      this.activity(endKind);
    };
  }

  /** Stops watching (the run ended or stopped): no timer is left, nothing more is flagged or cleared. */
  close(): void {
    this.closed = true;
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
  }

  /** Resolves once every flag and resume callback started so far has settled (tests, shutdown). */
  settled(): Promise<void> {
    return this.queue;
  }

  private arm(ms: number): void {
    this.timer = setTimeout(() => this.fire(), Math.max(1, Math.ceil(ms)));
    this.timer.unref();
  }

  private fire(): void {
    this.timer = undefined;
    if (this.closed || this.waits > 0 || this.flaggedSince !== undefined) return;
    const idle = monotonicNow() - this.last;
    if (idle < this.options.afterMs) return this.arm(this.options.afterMs - idle);
    const since = this.lastAt;
    this.flaggedSince = since;
    const at = new Date(this.options.now()).toISOString();
    this.enqueue(() => this.options.onStalled(since, at));
  }

  private enqueue(call: () => Promise<void>): void {
    this.queue = this.queue.then(call, call).catch(() => undefined);
  }
}
