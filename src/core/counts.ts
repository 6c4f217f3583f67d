/**
 * Counts per key that forget a key once its count is back to 0, so the map never keeps keys that
 * nothing is counted under any more (sessions per principal, streams per session, …).
 */
export class Counts<K> {
  private readonly counts = new Map<K, number>();

  /** The count of `key` (0 when none). */
  get(key: K): number {
    return this.counts.get(key) ?? 0;
  }

  /** Adds one to `key`'s count; returns the new count. */
  add(key: K): number {
    const count = this.get(key) + 1;
    this.counts.set(key, count);
    return count;
  }

  /** Takes one from `key`'s count (never below 0; the key is forgotten at 0); returns the new count. */
  remove(key: K): number {
    const count = this.get(key) - 1;
    if (count > 0) this.counts.set(key, count);
    else this.counts.delete(key);
    return Math.max(0, count);
  }

  /** Forgets every key. */
  clear(): void {
    this.counts.clear();
  }
}
