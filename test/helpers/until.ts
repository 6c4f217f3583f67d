/** Polling for a condition in tests: the one helper every test uses instead of a hand-written loop. */

export interface UntilOptions {
  /** How long to keep polling, in milliseconds, counted from the call (default 10 000). */
  timeoutMs?: number;
  /** Pause between two probes, in milliseconds (default 20). */
  intervalMs?: number;
  /**
   * What is awaited, for the timeout message ("… waiting for <what>"). A function is called only on
   * timeout, so it can describe the state last seen (e.g. a task the probe kept in a variable).
   */
  what?: string | (() => string);
}

/**
 * Calls `probe` until it returns a truthy value and resolves with that value.
 *
 * `probe` may be synchronous or async. Any falsy result (`undefined`, `false`, `null`, `0`, `''`)
 * means "not yet": `until` waits `intervalMs` and probes again. The first probe runs at once; the
 * last one runs at or just after the deadline, so a condition met in time is never reported late.
 *
 * Errors: when the condition is still false `timeoutMs` after the call, rejects with
 * `Error('timed out after <timeoutMs> ms waiting for <what>')`. An error thrown (or a rejection) by
 * `probe` is not retried: it rejects `until` at once, unchanged, as it would in a hand-written loop.
 * A probe that never settles is not interrupted (the test's own timeout applies).
 */
export async function until<T>(probe: () => Promise<T | undefined | null | false> | T | undefined | null | false, options: UntilOptions = {}): Promise<T> {
  const { timeoutMs = 10_000, intervalMs = 20, what = 'the condition' } = options;
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe();
    if (value) return value;
    const left = deadline - Date.now();
    if (left <= 0) throw new Error(`timed out after ${timeoutMs} ms waiting for ${typeof what === 'function' ? what() : what}`);
    await new Promise((resolve) => setTimeout(resolve, Math.min(intervalMs, left)));
  }
}
