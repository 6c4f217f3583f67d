import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { withDeadline } from '../src/core/deadline.js';

setFlagsFromString('--expose-gc');
const gc = runInNewContext('gc') as () => void;

/** Resolves with the signal's abort reason once it aborts. */
const untilAborted = (signal: AbortSignal) => new Promise<unknown>((resolve) => signal.addEventListener('abort', () => resolve(signal.reason)));

describe('withDeadline', () => {
  it('aborts after its time even when a garbage collection runs while it waits', async () => {
    const caller = new AbortController();
    const waiting = withDeadline(150, [caller.signal], untilAborted);
    await new Promise((resolve) => setTimeout(resolve, 20)); // deliberate: the collection runs while the deadline's timer is pending
    gc();
    const reason = await waiting;
    assert.ok(reason instanceof DOMException);
    assert.equal(reason.name, 'TimeoutError');
  });

  it('aborts with the reason of the source signal that aborted first', async () => {
    const caller = new AbortController();
    const waiting = withDeadline(60_000, [new AbortController().signal, caller.signal], untilAborted);
    caller.abort('client went away');
    assert.equal(await waiting, 'client went away');
  });

  it('starts aborted when a source already is, and leaves no listener behind once the work settles', async () => {
    const done = new AbortController();
    done.abort('already');
    assert.equal(await withDeadline(60_000, [done.signal], async (signal) => signal.reason), 'already');

    const live = new AbortController();
    let added = 0;
    let removed = 0;
    const add = live.signal.addEventListener.bind(live.signal);
    const remove = live.signal.removeEventListener.bind(live.signal);
    live.signal.addEventListener = (...args: Parameters<AbortSignal['addEventListener']>) => (added++, add(...args));
    live.signal.removeEventListener = (...args: Parameters<AbortSignal['removeEventListener']>) => (removed++, remove(...args));
    await assert.rejects(
      withDeadline(60_000, [live.signal], async () => {
        throw new Error('work failed');
      }),
      /work failed/,
    );
    assert.equal(added, 1);
    assert.equal(removed, 1);
    // The 60 s timer is cleared too: this test file would otherwise keep the process alive for a minute.
  });
});
