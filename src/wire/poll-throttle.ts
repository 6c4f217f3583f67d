import type { TaskRecord } from '../core/task.js';
import type { Principal } from '../core/access.js';
import type { TaskRuntime } from '../runtime/runtime.js';

/**
 * An `AbortSignal` (aborts when the HTTP request goes away), or a function making it on first need:
 * a signal costs an `AbortController` and a close listener, and a well-paced poll never waits.
 */
export type SignalSource = AbortSignal | (() => AbortSignal);

/** The signal of `source` (made now if it is a function). */
export function signalOf(source: SignalSource): AbortSignal {
  return typeof source === 'function' ? source() : source;
}

/**
 * A `tasks/get` read (either protocol version): the task as `principal` may see it, after `throttle` (if any)
 * admitted the poll. It is read again only when the throttle held the poll back, so a well-paced
 * poll costs one read. Noted on the task's run span (`TaskRuntime.notePoll`). Throws
 * `TaskNotFoundError` like `TaskRuntime.get`.
 */
export async function pollTask(
  runtime: TaskRuntime,
  taskId: string,
  principal: Principal,
  throttle?: PollThrottle,
  signal?: SignalSource,
): Promise<TaskRecord> {
  const task = await runtime.get(taskId, principal);
  runtime.notePoll(task.taskId, 'tasks/get');
  if (!throttle || (await throttle.admit(principal, task.taskId, task.pollInterval, signal)) === 0) return task;
  return runtime.get(taskId, principal);
}

/**
 * Slows down clients that poll `tasks/get` faster than the advertised `pollInterval` (2025-11-25:
 * requestors SHOULD respect it; 2026-07-28: servers MAY rate-limit faster polling). A poll of the
 * same task by the same principal sooner than half its interval after the previous one is answered
 * only once that half-interval has passed (the wait is capped at the interval), so a tight loop
 * degrades to the advertised pace instead of burning the server. Nothing is refused.
 */
export class PollThrottle {
  private readonly last = new Map<string, number>();

  constructor(private readonly options: { maxEntries?: number; now?: () => number; sleep?: (ms: number, signal?: AbortSignal) => Promise<void> } = {}) {}

  /**
   * Resolves when the poll may be answered, with the delay imposed in ms (0 for a well-paced poll).
   * `pollIntervalMs` is the task's advertised interval; `signal` (read only when the poll must wait)
   * ends a wait early.
   */
  async admit(principal: Principal, taskId: string, pollIntervalMs: number, signal?: SignalSource): Promise<number> {
    const key = `${principal ?? ''}\u0000${taskId}`;
    const now = (this.options.now ?? Date.now)();
    const previous = this.last.get(key);
    const minGap = Math.floor(pollIntervalMs / 2);
    const wait = previous === undefined ? 0 : Math.min(pollIntervalMs, Math.max(0, previous + minGap - now));
    if (this.last.size >= (this.options.maxEntries ?? 100_000)) this.last.clear();
    this.last.set(key, now + wait);
    if (wait > 0) await (this.options.sleep ?? sleep)(wait, signal && signalOf(signal));
    return wait;
  }
}

function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise<void>((resolve) => {
    const timer = setTimeout(resolve, ms);
    signal?.addEventListener('abort', () => (clearTimeout(timer), resolve()), { once: true });
  });
}
