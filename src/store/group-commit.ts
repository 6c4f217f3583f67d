import type Database from 'better-sqlite3';

interface Pending {
  op: () => unknown;
  resolve: (value: unknown) => void;
  reject: (error: unknown) => void;
}

/**
 * Group commit for SQLite: write operations issued while the event loop is busy share one
 * transaction, so one commit — one fsync with `synchronous=FULL` — makes all of them durable.
 *
 * `run(op)` queues a synchronous write (one or more statements) and resolves with its value only
 * after the transaction holding it has committed: "acknowledged means durable" is unchanged. The
 * queue is flushed on the next `setImmediate` (at most `maxBatch` operations per transaction): the
 * writes of every request handled in the same turn of the event loop travel together. With
 * `maxBatch` 1, each write is committed on its own, as before group commit. Each
 * operation runs in its own savepoint inside the batch, so one that throws (a duplicate key) is
 * undone alone and rejects alone; the others commit. If the commit itself fails, every operation of
 * the batch rejects and none is durable.
 *
 * Reads are not queued: they see committed data only, which is all any caller has been told of
 * (a write's promise has not resolved before its commit).
 */
export class GroupCommit {
  private queue: Pending[] = [];
  private scheduled = false;
  private readonly batch: (items: Pending[]) => unknown[];

  constructor(
    db: Database.Database,
    private readonly maxBatch = 1000,
  ) {
    // One IMMEDIATE transaction per batch (the write lock up front: no upgrade deadlock with another
    // process); each operation in a nested transaction, which better-sqlite3 runs as a savepoint.
    const transaction = db.transaction((items: Pending[]) =>
      items.map((item) => {
        try {
          return { ok: true, value: db.transaction(item.op)() };
        } catch (error) {
          return { ok: false, error };
        }
      }),
    );
    this.batch = (items) => transaction.immediate(items);
  }

  /** Queues `op` (synchronous statements) and resolves with its result once its transaction is durable. */
  run<T>(op: () => T): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      this.queue.push({ op, resolve: resolve as (value: unknown) => void, reject });
      if (!this.scheduled) {
        this.scheduled = true;
        setImmediate(() => this.flush());
      }
    });
  }

  /** Commits everything queued now (used before closing the database). */
  flushAll(): void {
    while (this.queue.length > 0) this.flush();
  }

  private flush(): void {
    this.scheduled = false;
    const items = this.queue.splice(0, this.maxBatch);
    if (this.queue.length > 0) {
      this.scheduled = true;
      setImmediate(() => this.flush());
    }
    if (items.length === 0) return;
    let outcomes: { ok: boolean; value?: unknown; error?: unknown }[];
    try {
      outcomes = this.batch(items) as typeof outcomes;
    } catch (error) {
      for (const item of items) item.reject(error);
      return;
    }
    items.forEach((item, i) => {
      const outcome = outcomes[i]!;
      if (outcome.ok) item.resolve(outcome.value);
      else item.reject(outcome.error);
    });
  }
}
