/**
 * Runs `work` with a signal that aborts when any of `signals` aborts or `ms` milliseconds pass,
 * and releases the timer and listeners when `work` settles. Resolves or rejects as `work` does.
 *
 * Why not `AbortSignal.any([signal, AbortSignal.timeout(ms)])`: on Node 20 the timeout signal is
 * held only weakly there, so a garbage collection before it fires loses the timeout and the wait
 * runs until something else ends it (seen as a 2 s probe that hung for 10 s in CI). Here the timer
 * and the source listeners hold the controller strongly, and nothing outlives the work.
 *
 * The abort reason is the first source's reason, or a `TimeoutError` `DOMException` for the timer.
 */
export async function withDeadline<T>(ms: number, signals: readonly AbortSignal[], work: (signal: AbortSignal) => Promise<T>): Promise<T> {
  const controller = new AbortController();
  const onAbort = (event: Event) => controller.abort((event.target as AbortSignal).reason);
  const timer = setTimeout(() => controller.abort(new DOMException('The operation timed out', 'TimeoutError')), Math.max(0, ms));
  for (const signal of signals) {
    if (signal.aborted) controller.abort(signal.reason);
    else signal.addEventListener('abort', onAbort, { once: true });
  }
  try {
    return await work(controller.signal);
  } finally {
    clearTimeout(timer);
    for (const signal of signals) signal.removeEventListener('abort', onAbort);
  }
}
