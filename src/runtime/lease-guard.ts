import { performance } from 'node:perf_hooks';
import { StoreUnavailableError } from '../core/errors.js';
import type { Fence } from '../core/task.js';
import type { TaskStore } from '../store/task-store.js';

/** What a `LeaseGuard` needs. Times in ms. */
export interface LeaseGuardOptions {
  store: TaskStore;
  taskId: string;
  /** The holder and lease epoch this run executes under. */
  fence: Fence;
  /** The run's signal: aborted on cancel, shutdown or a lost lease. */
  signal: AbortSignal;
  /** The runtime's lease length (a confirmation that finds less than `permitMs` left renews for this long). */
  leaseMs: number;
  /**
   * How long a confirmation from the store authorizes effects to begin, by this process's
   * monotonic clock (see `TaskRuntimeOptions.permitMs`); also the least lease a confirmation must
   * find left.
   */
  permitMs: number;
  /** True on an exclusive store (one process): every cancel happens in this process and aborts `signal` at once; the store is never asked. */
  exclusive: boolean;
  /** Monotonic time in ms (`performance.now`), since the run's claim or creation was sent. */
  since: number;
}

/** A monotonic clock in ms: it runs on through `SIGSTOP`, a VM pause or a wall-clock step, and never jumps back. */
export const monotonicNow = (): number => performance.now();

/**
 * Fencing for one run of one task: decides whether an effect — a step function, the continuation
 * after a durable timer, the use of an answer — may begin now.
 *
 * An effect may begin only under a **permit**: a confirmation from the store (`TaskStore.confirm`:
 * a fresh read finding the task live, not cancelled, held by this run's holder and lease epoch,
 * with at least `permitMs` of lease left), or a lease renewal, whose request was sent at most
 * `permitMs` ago by the monotonic clock, while the lease is known to last at least `permitMs`
 * more. Whatever happened to the process meanwhile — a GC pause, `SIGSTOP`, a VM migration — shows
 * on the monotonic clock, so a permit never outlives a pause: after one, the store is asked again,
 * and the answer (`LeaseLostError`: another instance took the task over, it was cancelled or it
 * ended) stops the run before the effect. A confirmation whose reply itself took longer than
 * `permitMs` proves nothing about now, and is asked again.
 *
 * What it guarantees, with the runtime's other rules (a takeover only after the lease expired on
 * the store's clock; a cancel acknowledged only `permitMs` after it was written when another
 * instance held the task): no effect begins after the task was taken over, cancelled (and the
 * cancel acknowledged) or ended — except when the process is paused in the instant between the
 * last check (`fresh()`, synchronous, right before the effect's first instruction) and the effect
 * itself. That window is closed only by the foreign system: `ctx.fencingToken` (the lease epoch)
 * lets it refuse a stale holder's request once it has seen a newer holder's.
 *
 * On an exclusive store only the signal is checked: no other process can take the task, and a
 * cancel in this process aborts the signal before it is acknowledged.
 */
export class LeaseGuard {
  /** Monotonic time the last confirmation (or renewal) was sent. */
  private confirmedAt: number;
  /** Monotonic time until which the lease surely lasts (send time of the last confirmation + the lease it found). */
  private validUntil: number;
  /** How many permits needed a store round trip (for tests and telemetry). */
  confirmations = 0;

  constructor(private readonly options: LeaseGuardOptions) {
    this.confirmedAt = options.since;
    this.validUntil = options.since + options.leaseMs;
  }

  /** The lease epoch this run executes under: the task's fencing token. */
  get epoch(): number {
    return this.options.fence.epoch;
  }

  /** The fence the run's writes carry. */
  get fence(): Fence {
    return this.options.fence;
  }

  /** Synchronous: true when an effect may begin right now without asking the store (see the class). */
  fresh(): boolean {
    if (this.options.signal.aborted) return false;
    if (this.options.exclusive) return true;
    const now = monotonicNow();
    return now - this.confirmedAt <= this.options.permitMs && now + this.options.permitMs <= this.validUntil;
  }

  /**
   * Resolves when an effect may begin (then call `fresh()` again synchronously right before it,
   * as `ExecutionContext` does). With `confirm`, asks the store even under a fresh permit and
   * resolves with the store's clock at that read (ms since the epoch; the read happened before this
   * resolves, so it is a lower bound of the store's time now) — how a timer continuation checks its
   * due time on the store's clock. Throws the signal's reason when aborted, `LeaseLostError` when
   * the task was taken over, cancelled or ended, `StoreUnavailableError` when the store cannot
   * confirm (unreachable, or its reply slower than `permitMs` 10 times in a row).
   */
  async permit(options: { confirm?: boolean } = {}): Promise<number | undefined> {
    const { store, taskId, fence, signal, leaseMs, permitMs, exclusive } = this.options;
    for (let slow = 0; ;) {
      signal.throwIfAborted();
      if (!options.confirm && this.fresh()) return undefined;
      if (exclusive && options.confirm) return store.now();
      if (slow >= 10) throw new StoreUnavailableError(`The task store answered too slowly 10 times to confirm the lease of task ${taskId}; retry later`);
      const sent = monotonicNow();
      const { nowMs, expiresAt } = await store.confirm(taskId, fence, leaseMs, permitMs);
      this.confirmations++;
      signal.throwIfAborted();
      this.confirmedAt = sent;
      this.validUntil = sent + (expiresAt - nowMs);
      if (monotonicNow() - sent > permitMs) {
        slow++; // the reply says nothing about now (a pause, an overloaded store): ask again
        continue;
      }
      if (options.confirm) return nowMs;
      // Without `confirm`, fresh() above decides (it also checks the lease left).
    }
  }

  /** A renewal of this run's lease succeeded: sent at `sentAt` (monotonic), found `leftMs` of lease (its length). */
  renewed(sentAt: number, leftMs: number): void {
    if (sentAt < this.confirmedAt) return;
    this.confirmedAt = sentAt;
    this.validUntil = sentAt + leftMs;
  }
}
