/**
 * The change feed on its own (`src/store/change-feed.ts`), over a fake source whose notices, reads
 * and versions the test drives: what it announces, what it de-duplicates, how a notice of our own
 * write is set aside, the recheck and its timer, `nextChange`, and `close`. The four real backends
 * drive it through `TaskStore` in store-contract.test.ts.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { pino } from 'pino';
import { ChangeFeed, type ChangeSource } from '../src/store/change-feed.js';
import type { TaskRecord } from '../src/core/task.js';
import type { TaskStatus } from '../src/core/status.js';
import { until } from './helpers/until.js';

/** A task record of `taskId` at `version` (only what the feed reads matters). */
function record(taskId: string, version: number, status: TaskStatus = 'working', statusMessage?: string): TaskRecord {
  const at = new Date(0).toISOString();
  return {
    taskId,
    owner: null,
    status,
    ...(statusMessage !== undefined && { statusMessage }),
    createdAt: at,
    lastUpdatedAt: at,
    ttl: null,
    pollInterval: 1000,
    request: { tool: 'demo', arguments: {} },
    errorResultStatus: 'failed',
    inputRequests: {},
    version,
  };
}

/** A shared backend as far as the feed sees one: stored records, notices sent by the test, counted reads. */
class FakeSource implements ChangeSource {
  exclusive = false;
  readonly records = new Map<string, TaskRecord>();
  reads = 0;
  versionReads: string[][] = [];
  failing = false;
  unwatched = false;
  notice: (taskId: string, version?: number) => void = () => assert.fail('not watched');
  resync: () => void = () => assert.fail('not watched');
  versionsOf?: (taskIds: string[]) => Promise<Map<string, number>> = async (taskIds) => {
    this.versionReads.push(taskIds);
    if (this.failing) throw new Error('store down');
    return new Map(taskIds.flatMap((id) => (this.records.has(id) ? [[id, this.records.get(id)!.version] as const] : [])));
  };

  /** Stores `task` (as another process would), without a notice. */
  put(task: TaskRecord): TaskRecord {
    this.records.set(task.taskId, task);
    return task;
  }

  async get(taskId: string): Promise<TaskRecord | undefined> {
    this.reads++;
    if (this.failing) throw new Error('store down');
    const task = this.records.get(taskId);
    return task && structuredClone(task);
  }

  watch(listener: (taskId: string, version?: number) => void, resync?: () => void): () => void {
    this.notice = listener;
    this.resync = resync ?? (() => undefined);
    return () => {
      this.unwatched = true;
    };
  }
}

/** Lets pending reads (`get` → announce) settle. */
const settle = () => new Promise((resolve) => setImmediate(resolve));
/** Active `setTimeout`/`setInterval` timers of this process (the recheck timer is one). */
const timers = () => process.getActiveResourcesInfo().filter((type) => type === 'Timeout').length;
const versions = (seen: (TaskRecord | undefined)[]) => seen.map((task) => task?.version);

describe('change feed', () => {
  it('announces each higher version of a task once, to every-task listeners and that task’s own; never an older one', () => {
    const feed = new ChangeFeed(new FakeSource(), { recheckMs: 0 });
    const all: TaskRecord[] = [];
    const mine: (TaskRecord | undefined)[] = [];
    const other: (TaskRecord | undefined)[] = [];
    feed.onChange((task) => all.push(task));
    feed.onTaskChange('a', (task) => mine.push(task));
    feed.onTaskChange('b', (task) => other.push(task));
    for (const version of [1, 2, 1, 2, 4, 3]) feed.announce(record('a', version));
    assert.deepEqual(versions(all), [1, 2, 4]);
    assert.deepEqual(versions(mine), [1, 2, 4]);
    assert.deepEqual(other, [], 'a change wakes only its own task’s listeners');
    const leased = { ...record('a', 5, 'input_required'), lease: { holder: 'h', expiresAt: 9, epoch: 2 } };
    feed.announce(leased);
    assert.deepEqual(feed.lastSeen('a'), { version: 5, status: 'input_required', lease: { holder: 'h', expiresAt: 9, epoch: 2 } });
    assert.equal(feed.lastSeen('b'), undefined);
    feed.announceDeleted('a');
    assert.deepEqual(versions(mine), [1, 2, 4, 5, undefined], 'deletion: undefined to the task’s listeners');
    assert.equal(all.length, 4, 'every-task listeners are not told of deletions');
    feed.close();
  });

  it('reads a notice back only when someone listens and it is news', async () => {
    const source = new FakeSource();
    const feed = new ChangeFeed(source, { recheckMs: 0 });
    source.put(record('a', 3, 'working', 'elsewhere'));
    source.notice('a', 3);
    await settle();
    assert.equal(source.reads, 0, 'nobody listens here: nothing is read');

    const seen: TaskRecord[] = [];
    feed.onChange((task) => seen.push(task));
    source.notice('a', 3);
    await until(() => seen.length === 1, { what: 'the notice announced' });
    assert.equal(seen[0]!.statusMessage, 'elsewhere');
    source.notice('a', 3);
    source.notice('a', 2);
    await settle();
    assert.equal(source.reads, 1, 'a notice of a version announced already reads nothing');
    source.notice('a'); // an older build's notice, without a version: always read
    await settle();
    assert.equal(source.reads, 2);
    assert.equal(seen.length, 1, '…and announced only when its version is new');
    source.put(record('a', 5));
    source.notice('a', 4); // the record read is newer than the notice: the newest is announced, 4 is skipped
    await until(() => seen.length === 2, { what: 'the newest record announced' });
    assert.deepEqual(versions(seen), [3, 5]);
    source.failing = true;
    source.notice('a', 6);
    await settle();
    assert.equal(seen.length, 2, 'a notice whose read fails is dropped');
    feed.close();
  });

  it('sets aside the notice of our own write under way; reads it when that write did not happen', async () => {
    const source = new FakeSource();
    const feed = new ChangeFeed(source, { recheckMs: 0 });
    const seen: (TaskRecord | undefined)[] = [];
    feed.onTaskChange('a', (task) => seen.push(task));
    // Ours: the notice overtakes the write's reply, then comes again after it. Nothing is read.
    const ours = record('a', 2, 'working', 'ours');
    assert.equal(
      await feed.ownWrite(ours, async () => {
        source.put(ours);
        source.notice('a', 2);
        await settle();
        return true;
      }),
      true,
    );
    feed.announce(ours); // as TaskStore does once the write succeeded
    source.notice('a', 2);
    await settle();
    assert.equal(source.reads, 0);
    assert.deepEqual(
      seen.map((t) => t?.statusMessage),
      ['ours'],
    );
    // Another process wrote version 3 first; its notice came while our write of version 3 was under
    // way, and ours lost the compare-and-swap. Theirs is read and announced.
    const result = await feed.ownWrite(record('a', 3, 'working', 'ours again'), async () => {
      source.put(record('a', 3, 'working', 'theirs'));
      source.notice('a', 3);
      return false;
    });
    assert.equal(result, false);
    await until(() => seen.length === 2, { what: 'their write announced' });
    assert.equal(seen[1]!.statusMessage, 'theirs');
    // A write that throws passes its error on and sets nothing aside afterwards.
    await assert.rejects(
      feed.ownWrite(record('a', 4), () => Promise.reject(new Error('boom'))),
      /boom/,
    );
    source.put(record('a', 4, 'working', 'later'));
    source.notice('a', 4);
    await until(() => seen.length === 3, { what: 'the next notice read' });
    assert.equal(seen[2]!.statusMessage, 'later');
    feed.close();
  });

  it('nextChange resolves with the next record, or undefined on deletion, timeout or abort, and leaves nothing behind', async () => {
    const feed = new ChangeFeed(new FakeSource(), { recheckMs: 0 });
    const none = { tasks: 0, taskListeners: 0, changeListeners: 0 };
    const next = feed.nextChange('a');
    assert.deepEqual(feed.listenerCounts(), { tasks: 1, taskListeners: 1, changeListeners: 0 });
    feed.announce(record('a', 1));
    assert.equal((await next)?.version, 1);
    const gone = feed.nextChange('a');
    feed.announceDeleted('a');
    assert.equal(await gone, undefined);
    assert.equal(await feed.nextChange('a', { timeoutMs: 5 }), undefined);
    const controller = new AbortController();
    const aborted = feed.nextChange('a', { signal: controller.signal });
    controller.abort();
    assert.equal(await aborted, undefined);
    assert.equal(await feed.nextChange('a', { signal: AbortSignal.abort() }), undefined, 'an aborted signal resolves at once');
    assert.deepEqual(feed.listenerCounts(), none);
    const before = timers();
    const timed = feed.nextChange('a', { timeoutMs: 60_000 });
    assert.equal(timers(), before + 1);
    feed.announce(record('a', 2));
    await timed;
    assert.equal(timers(), before, 'its timeout is cleared once it resolved');
    const off = feed.onChange(() => undefined);
    assert.equal(feed.listenerCounts().changeListeners, 1);
    off();
    assert.deepEqual(feed.listenerCounts(), none);
    feed.close();
  });

  it('rechecks the tasks waited on every recheckMs, with one timer; none on an exclusive store or with recheckMs 0', async (t) => {
    t.mock.timers.enable({ apis: ['setInterval'] });
    const source = new FakeSource();
    const feed = new ChangeFeed(source, { recheckMs: 1000 });
    feed.onChange(() => undefined);
    t.mock.timers.tick(5000);
    assert.equal(source.versionReads.length, 0, 'every-task listeners alone arm no recheck');
    const offA = feed.onTaskChange('a', () => undefined);
    const offB = feed.onTaskChange('b', () => undefined);
    t.mock.timers.tick(999);
    assert.equal(source.versionReads.length, 0);
    t.mock.timers.tick(1);
    assert.deepEqual(source.versionReads, [['a', 'b']], 'one timer, one batched read, however many tasks are waited on');
    await settle(); // the recheck ends (one at a time: one due while another runs is skipped)
    offA();
    t.mock.timers.tick(1000);
    assert.deepEqual(source.versionReads.at(-1), ['b']);
    await settle();
    offB();
    const reads = source.versionReads.length;
    t.mock.timers.tick(5000);
    assert.equal(source.versionReads.length, reads, 'disarmed when nothing is waited on');
    feed.close();

    for (const [what, exclusive, recheckMs] of [
      ['exclusive store (every write is this process’s own)', true, 1000],
      ['recheckMs 0', false, 0],
    ] as const) {
      const quiet = new FakeSource();
      quiet.exclusive = exclusive;
      const other = new ChangeFeed(quiet, { recheckMs });
      other.onTaskChange('a', () => undefined);
      t.mock.timers.tick(60_000);
      assert.equal(quiet.versionReads.length, 0, what);
      other.close();
    }
  });

  it('the recheck announces the waited-on tasks that moved or disappeared, in one read of versions', async (t) => {
    t.mock.timers.enable({ apis: ['setInterval'] });
    const source = new FakeSource();
    const feed = new ChangeFeed(source, { recheckMs: 1000 });
    const a = source.put(record('a', 1));
    source.put(record('b', 1));
    source.put(record('c', 7));
    feed.announce(a);
    const seen: Record<string, (TaskRecord | undefined)[]> = { a: [], b: [], c: [] };
    for (const id of ['a', 'b', 'c']) feed.onTaskChange(id, (task) => seen[id]!.push(task));
    feed.onTaskChange('d', () => undefined); // never existed here nor there
    source.put(record('a', 2, 'working', 'moved without a notice'));
    source.records.delete('b');
    t.mock.timers.tick(1000);
    await until(() => seen.a!.length === 1 && seen.b!.length === 1 && seen.c!.length === 1, { what: 'the recheck' });
    assert.equal(seen.a![0]!.statusMessage, 'moved without a notice');
    assert.equal(seen.b![0], undefined, 'gone: undefined');
    assert.equal(seen.c![0]!.version, 7, 'a task never announced here is announced as it is');
    assert.deepEqual(source.versionReads[0]!.sort(), ['a', 'b', 'c', 'd'], 'one batched read of every waited-on task');
    assert.equal(source.reads, 2, 'only the moved tasks are read whole');
    t.mock.timers.tick(1000);
    await settle();
    assert.equal(source.versionReads.length, 2);
    assert.equal(seen.a!.length + seen.c!.length, 2, 'nothing new: nothing announced');
    assert.equal(source.reads, 2);
    feed.close();
  });

  it('rechecks at once when the backend’s notices were interrupted; reads records whole without versionsOf; logs a failed recheck', async () => {
    const source = new FakeSource();
    source.versionsOf = undefined;
    const lines: string[] = [];
    const logger = pino({ level: 'debug' }, { write: (line: string) => void lines.push(line) });
    const feed = new ChangeFeed(source, { recheckMs: 0, logger });
    feed.announce(source.put(record('a', 1)));
    const seen: (TaskRecord | undefined)[] = [];
    feed.onTaskChange('a', (task) => seen.push(task));
    source.put(record('a', 2));
    source.failing = true;
    source.resync();
    await until(() => lines.length === 1, { what: 'the failure logged' });
    assert.match(lines[0]!, /recheck of waited-on tasks failed/);
    assert.match(lines[0]!, /store down/);
    assert.equal(seen.length, 0);
    source.failing = false;
    source.resync();
    await until(() => seen.length === 1, { what: 'the resync recheck' });
    assert.equal(seen[0]!.version, 2);
    assert.equal(source.reads, 2, 'the failed and the good recheck, each one read of the record');
    feed.close();
  });

  it('close stops the notices, the recheck timer and every-task listeners', (t) => {
    t.mock.timers.enable({ apis: ['setInterval'] });
    const source = new FakeSource();
    const feed = new ChangeFeed(source, { recheckMs: 1000 });
    const all: TaskRecord[] = [];
    const mine: (TaskRecord | undefined)[] = [];
    feed.onChange((task) => all.push(task));
    feed.onTaskChange('a', (task) => mine.push(task));
    feed.close();
    assert.equal(source.unwatched, true);
    t.mock.timers.tick(5000);
    assert.equal(source.versionReads.length, 0, 'no recheck after close');
    feed.announce(record('a', 1));
    assert.deepEqual(all, []);
    assert.deepEqual(versions(mine), [1], 'a task’s own listeners stay (they are told of this store’s writes)');
  });
});
