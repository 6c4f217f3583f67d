/**
 * The shared backends' cache of ended tasks (`EndedCache`): what it caches and when it must not,
 * deterministically on the class, then across two instances on PostgreSQL and Redis (a later
 * write or a deletion by one instance reaches the other's reads by its change notice; a
 * compare-and-swap decided on a stale entry is redone on a fresh read).
 */
import assert from 'node:assert/strict';
import { after, describe, it } from 'node:test';
import { ENGINE_ACCESS } from '../src/core/access.js';
import { InvalidArgumentError, TaskNotFoundError } from '../src/core/errors.js';
import type { TaskRecord } from '../src/core/task.js';
import { EndedCache } from '../src/store/ended-cache.js';
import { openStore } from '../src/store/open-store.js';
import type { TaskStore } from '../src/store/task-store.js';
import { testStores } from './helpers/test-stores.js';
import { until } from './helpers/until.js';

const record = (over: Partial<TaskRecord> = {}): TaskRecord =>
  ({
    taskId: 't1',
    owner: null,
    status: 'completed',
    version: 3,
    createdAt: new Date().toISOString(),
    lastUpdatedAt: new Date().toISOString(),
    ttl: 3_600_000,
    pollInterval: 10,
    inputRequests: {},
    request: { tool: 'x', arguments: {} },
    errorResultStatus: 'failed',
    outcome: { type: 'result', result: { content: [] } },
    ...over,
  }) as TaskRecord;

/** A cache whose notices flow, with `task` read into it. */
function cacheWith(task: TaskRecord): EndedCache {
  const cache = new EndedCache();
  cache.listening();
  cache.end(cache.begin(task.taskId), task);
  return cache;
}

describe('EndedCache', () => {
  it('caches an ended record read or written while notices flow, and serves a fresh copy each time', () => {
    const cache = cacheWith(record());
    const a = cache.get('t1')!;
    assert.equal(a.version, 3);
    a.status = 'failed';
    assert.equal(cache.get('t1')!.status, 'completed');
  });

  it('caches no live record, and nothing before notices flow', () => {
    const cache = new EndedCache();
    cache.end(cache.begin('t1'), record());
    assert.equal(cache.get('t1'), undefined, 'not listening yet');
    cache.listening();
    cache.end(cache.begin('t1'), record({ status: 'working' }));
    assert.equal(cache.get('t1'), undefined, 'live');
  });

  it('a notice of a newer version (or of none: a deletion) drops the entry; its own version does not', () => {
    const cache = cacheWith(record());
    cache.notice('t1', 3);
    assert.ok(cache.get('t1'));
    cache.notice('t1', 4);
    assert.equal(cache.get('t1'), undefined);
    const deleted = cacheWith(record());
    deleted.notice('t1', undefined);
    assert.equal(deleted.get('t1'), undefined);
  });

  it('a read during which a newer notice arrived caches nothing (the notice may have overtaken the reply)', () => {
    const cache = new EndedCache();
    cache.listening();
    const ticket = cache.begin('t1');
    cache.notice('t1', 4);
    cache.end(ticket, record({ version: 3 }));
    assert.equal(cache.get('t1'), undefined);
    const same = cache.begin('t1');
    cache.notice('t1', 3);
    cache.end(same, record({ version: 3 }));
    assert.ok(cache.get('t1'), 'the notice of the version read is no news');
  });

  it('when notices may have been missed, every entry goes and reads under way cache nothing', () => {
    const cache = cacheWith(record());
    const ticket = cache.begin('t2');
    cache.lost(true);
    assert.equal(cache.get('t1'), undefined);
    cache.end(ticket, record({ taskId: 't2' }));
    assert.equal(cache.get('t2'), undefined, 'begun before the loss');
    cache.lost(false);
    cache.end(cache.begin('t2'), record({ taskId: 't2' }));
    assert.equal(cache.get('t2'), undefined, 'notice connection down');
    cache.listening();
    cache.end(cache.begin('t2'), record({ taskId: 't2' }));
    assert.ok(cache.get('t2'));
  });

  it('serves nothing within a minute of expiry, keeps its byte budget, and is off at 0 bytes', () => {
    const old = new Date(Date.now() - 3_570_000).toISOString();
    assert.equal(cacheWith(record({ createdAt: old })).get('t1'), undefined);
    const small = new EndedCache(40_000);
    small.listening();
    for (let i = 0; i < 100; i++) small.end(small.begin(`t${i}`), record({ taskId: `t${i}` }));
    assert.ok(small.stats().bytes <= 40_000);
    assert.ok(small.get('t99'));
    assert.equal(small.get('t0'), undefined, 'oldest dropped first');
    const off = new EndedCache(0);
    off.listening();
    off.end(off.begin('t1'), record());
    assert.equal(off.get('t1'), undefined);
  });
});

const { stores } = testStores('ended');
const request = { tool: 'x', arguments: {} };

for (const { name, url } of stores.filter((s) => s.name === 'postgres' || s.name === 'redis')) {
  describe(`ended tasks across two instances: ${name}`, () => {
    const shared = url();
    let a: TaskStore;
    let b: TaskStore;
    after(async () => {
      await a?.close();
      await b?.close();
    });

    it("another instance's later write and deletion reach reads here by their notices; a stale entry never wins a compare-and-swap", async () => {
      a = openStore(shared);
      b = openStore(shared);
      const task = await a.create({ owner: null, request, errorResultStatus: 'failed' });
      await until(async () => (await b.get(task.taskId, ENGINE_ACCESS)).status === 'working' || undefined, { what: 'b sees the task' });
      await a.finish(task.taskId, 'failed', { type: 'error', error: { code: -32603, message: 'boom' } });
      await until(async () => (await b.get(task.taskId, ENGINE_ACCESS)).status === 'failed' || undefined, { what: 'b sees it failed' });
      // Both now hold the ended record; b marks it retried, a hears of it.
      await b.markRetried(task.taskId, 'successor-1');
      await until(async () => (await a.get(task.taskId, ENGINE_ACCESS)).retriedAs === 'successor-1' || undefined, { what: "a sees b's mark" });
      // a's compare-and-swap from its own (now stale) knowledge is redone on a fresh read: b's mark stands.
      await assert.rejects(a.markRetried(task.taskId, 'successor-2'), InvalidArgumentError);
      assert.equal((await b.get(task.taskId, ENGINE_ACCESS)).retriedAs, 'successor-1');
      assert.equal(await b.delete(task.taskId), true);
      await until(
        async () =>
          a.get(task.taskId, ENGINE_ACCESS).then(
            () => undefined,
            (error: unknown) => error instanceof TaskNotFoundError,
          ),
        { what: "a sees b's deletion" },
      );
    });
  });
}
