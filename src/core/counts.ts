/**
 * Counts per key that forget a key once its count is back to 0, so the map never keeps keys that
 * nothing is counted under any more (sessions per principal, streams per session, …).
 */
export class Counts<K> {
  private readonly counts = new Map<K, number>();
  private sum = 0;

  /** The counts of every key added up. */
  get total(): number {
    return this.sum;
  }

  /** The count of `key` (0 when none). */
  get(key: K): number {
    return this.counts.get(key) ?? 0;
  }

  /** Adds one to `key`'s count; returns the new count. */
  add(key: K): number {
    const count = this.get(key) + 1;
    this.counts.set(key, count);
    this.sum++;
    return count;
  }

  /** Takes one from `key`'s count (never below 0; the key is forgotten at 0); returns the new count. */
  remove(key: K): number {
    const count = this.get(key) - 1;
    if (count >= 0) this.sum--;
    if (count > 0) this.counts.set(key, count);
    else this.counts.delete(key);
    return Math.max(0, count);
  }

  /** Forgets every key. */
  clear(): void {
    this.counts.clear();
    this.sum = 0;
  }
}
