/**
 * Runs `work` with a signal that aborts when any of `signals` aborts or `ms` milliseconds pass.
 * When `work` settles, the signal is aborted too (so whatever `work` left waiting on it — a store
 * change waiter, a listener — is released at once), and the timer and the source listeners are
 * removed. Resolves or rejects as `work` does.
 *
 * Why not `AbortSignal.any([signal, AbortSignal.timeout(ms)])`: on Node 20 the timeout signal is
 * held only weakly there, so a garbage collection before it fires loses the timeout and the wait
 * runs until something else ends it (seen as a 2 s probe that hung for 10 s in CI). Here the timer
 * and the source listeners hold the controller strongly, and nothing outlives the work.
 *
 * The abort reason is the first source's reason, or a `TimeoutError` `DOMException` for the timer.
 */
export function withDeadline<T>(ms: number, signals: readonly AbortSignal[], work: (signal: AbortSignal) => Promise<T>): Promise<T> {
  return linked(signals, ms, work);
}

/**
 * `withDeadline` without the deadline: runs `work` with a signal that aborts when any of `signals`
 * aborts, and aborts it when `work` settles, releasing everything `work` left waiting on it.
 */
export function withSignals<T>(signals: readonly (AbortSignal | undefined)[], work: (signal: AbortSignal) => Promise<T>): Promise<T> {
  return linked(
    signals.filter((signal): signal is AbortSignal => signal !== undefined),
    undefined,
    work,
  );
}

/**
 * The reason a linked signal is aborted with when its work settles: one shared `AbortError` (a
 * `DOMException` captures a stack when made, which cost 4 % of a 2026-07-28 lifecycle made per call).
 */
const WORK_ENDED = new DOMException('The work ended', 'AbortError');

async function linked<T>(signals: readonly AbortSignal[], ms: number | undefined, work: (signal: AbortSignal) => Promise<T>): Promise<T> {
  const controller = new AbortController();
  const onAbort = (event: Event) => controller.abort((event.target as AbortSignal).reason);
  const timer = ms === undefined ? undefined : setTimeout(() => controller.abort(new DOMException('The operation timed out', 'TimeoutError')), Math.max(0, ms));
  for (const signal of signals) {
    if (signal.aborted) controller.abort(signal.reason);
    else signal.addEventListener('abort', onAbort, { once: true });
  }
  try {
    return await work(controller.signal);
  } finally {
    clearTimeout(timer);
    for (const signal of signals) signal.removeEventListener('abort', onAbort);
    controller.abort(WORK_ENDED);
  }
}
