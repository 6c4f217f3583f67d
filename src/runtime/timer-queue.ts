import TinyQueue from 'tinyqueue';

/** Node's largest `setTimeout` delay (ms); longer waits are re-armed in chunks of it. */
const MAX_TIMEOUT_MS = 2_147_000_000;

interface Entry {
  /** Due time, ms since the epoch on the queue's clock. */
  at: number;
  resolve: () => void;
  /** Set when its signal aborted: skipped when it comes up, dropped when the queue compacts. */
  cancelled: boolean;
}

/**
 * Every durable timer of one process (`ctx.sleep`, `ctx.sleepUntil`) on one `setTimeout`: a min-heap
 * of due times (tinyqueue) and a single timer armed for the earliest. A task asleep for 90 days
 * costs one heap entry, not a timer; 10,000 sleeping tasks cost one timer. An aborted wait is
 * marked and its entry dropped when it comes up, or at once when more than half the heap is dead
 * (so churn of cancelled long sleeps cannot grow it). Durability is the journal's business
 * (`timer:<n>` holds the due time; recovery calls `wait` again); this only wakes.
 */
export class TimerQueue {
  private readonly heap = new TinyQueue<Entry>([], (a, b) => a.at - b.at);
  private timer?: NodeJS.Timeout;
  /** Due time the timer is armed for (Infinity when unarmed). */
  private armedFor = Infinity;
  private cancelled = 0;

  /** `now`: the clock due times are read on, ms since the epoch (the runtime's clock). */
  constructor(private readonly now: () => number = Date.now) {}

  /**
   * Resolves once `now() >= at` (`at` in ms since the epoch); rejects with `signal.reason` as soon
   * as `signal` aborts, and then holds nothing (no listener, no live entry).
   */
  wait(at: number, signal: AbortSignal): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      if (signal.aborted) return reject(signal.reason);
      if (at <= this.now()) return resolve();
      const entry: Entry = {
        at,
        cancelled: false,
        resolve: () => {
          signal.removeEventListener('abort', onAbort);
          resolve();
        },
      };
      const onAbort = () => {
        entry.cancelled = true;
        this.cancelled++;
        reject(signal.reason);
        this.compact();
      };
      signal.addEventListener('abort', onAbort, { once: true });
      this.heap.push(entry);
      if (at < this.armedFor) this.arm();
    });
  }

  /** Live (not cancelled) waits. */
  get size(): number {
    return this.heap.length - this.cancelled;
  }

  /** Stops the timer. Pending waits stay pending (their signals still reject them). */
  close(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    this.armedFor = Infinity;
  }

  private arm(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    this.armedFor = Infinity;
    const next = this.heap.peek();
    if (!next) return;
    this.armedFor = next.at;
    this.timer = setTimeout(() => this.fire(), Math.min(Math.max(0, next.at - this.now()), MAX_TIMEOUT_MS));
  }

  private fire(): void {
    this.timer = undefined;
    this.armedFor = Infinity;
    const now = this.now();
    for (let head = this.heap.peek(); head && (head.cancelled || head.at <= now); head = this.heap.peek()) {
      this.heap.pop();
      if (head.cancelled) this.cancelled--;
      else head.resolve();
    }
    this.arm();
  }

  /** Rebuilds the heap without cancelled entries once they are more than half of it. */
  private compact(): void {
    if (this.cancelled * 2 <= this.heap.length) return;
    const live = this.heap.data.filter((entry) => !entry.cancelled);
    this.heap.data = [];
    this.heap.length = 0;
    for (const entry of live) this.heap.push(entry);
    this.cancelled = 0;
    this.arm();
  }
}
