/** SQLite group commit: writes of one turn of the event loop share a transaction; each resolves only once it is committed. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import Database from 'better-sqlite3';
import { GroupCommit } from '../src/store/group-commit.js';

function table() {
  const db = new Database(':memory:');
  db.exec('CREATE TABLE t (k TEXT PRIMARY KEY, v TEXT NOT NULL)');
  const insert = db.prepare('INSERT INTO t (k, v) VALUES (?, ?)');
  const count = () => (db.prepare('SELECT COUNT(*) AS n FROM t').get() as { n: number }).n;
  return { db, insert, count, writes: new GroupCommit(db) };
}

describe('GroupCommit', () => {
  it('runs the writes of one turn in one transaction, and resolves them only after it committed', async () => {
    const { db, insert, count, writes } = table();
    const seenInside: number[] = [];
    const pending = ['a', 'b', 'c'].map((k) =>
      writes.run(() => {
        assert.ok(db.inTransaction, 'inside the batch transaction');
        insert.run(k, k);
        seenInside.push(count());
        return k;
      }),
    );
    assert.equal(count(), 0, 'nothing is written before the flush: a reader sees committed data only');
    assert.deepEqual(await Promise.all(pending), ['a', 'b', 'c']);
    assert.deepEqual(seenInside, [1, 2, 3], 'one transaction: each write sees the ones before it in the batch');
    assert.equal(db.inTransaction, false, 'committed');
    assert.equal(count(), 3);
  });

  it('undoes and rejects only the write that failed; the others of its batch commit', async () => {
    const { insert, count, writes, db } = table();
    insert.run('dup', 'x');
    const results = await Promise.allSettled([
      writes.run(() => insert.run('one', '1')),
      writes.run(() => {
        insert.run('two', '2'); // undone with its savepoint when the next statement fails
        insert.run('dup', 'y');
      }),
      writes.run(() => insert.run('three', '3')),
    ]);
    assert.deepEqual(
      results.map((r) => r.status),
      ['fulfilled', 'rejected', 'fulfilled'],
    );
    assert.match(String((results[1] as PromiseRejectedResult).reason), /UNIQUE/);
    assert.deepEqual(
      (db.prepare('SELECT k FROM t ORDER BY k').all() as { k: string }[]).map((r) => r.k),
      ['dup', 'one', 'three'],
    );
    assert.equal(count(), 3);
  });

  it('commits what is queued when the database is about to close', async () => {
    const { insert, count, writes } = table();
    const pending = writes.run(() => insert.run('late', '1'));
    writes.flushAll();
    assert.equal(count(), 1);
    await pending;
  });
});
