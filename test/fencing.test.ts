/**
 * Fencing, store outages, clocks and transient failures, in process (the same faults on real
 * processes — SIGSTOP, libfaketime, a TCP proxy, a full tmpfs — are in test/faults-*.test.ts):
 *
 * - a run whose task another instance claimed does not begin its next step, and records nothing;
 * - a cancel acknowledged by another instance stops the holder before its next step;
 * - a run interrupted by a store outage is retried in process until the store answers, and the
 *   task completes (never failed by the outage, never left `working`);
 * - transient step failures are retried by default, `NonRetryableError` is not;
 * - an instance whose clock is off takes no leases, and a timer continuation waits for its due
 *   time on the store's clock.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { ENGINE_ACCESS } from '../src/core/access.js';
import type { Json, JsonObject } from '../src/core/json.js';
import { createLogger, silentLogger, type Logger } from '../src/core/log.js';
import type { Fence, TaskRecord } from '../src/core/task.js';
import { NonRetryableError, TransientError } from '../src/core/transient.js';
import { StepFailedError, type StepOptions } from '../src/runtime/context.js';
import { TaskRuntime, type TaskHandler } from '../src/runtime/runtime.js';
import type { ListQuery, OperatorListPage, OperatorListQuery, StatusCounts, StoreBackend } from '../src/store/backend.js';
import { SqliteBackend } from '../src/store/sqlite-backend.js';
import { TaskStore } from '../src/store/task-store.js';
import { until } from './helpers/until.js';

const dir = mkdtempSync(join(tmpdir(), 'mcp-tasks-fencing-'));
after(() => rmSync(dir, { recursive: true, force: true }));
let n = 0;
const dbPath = () => join(dir, `f-${++n}.db`);
const text = (t: string) => ({ content: [{ type: 'text', text: t }] });
const anyArgs = { parse: (a: JsonObject) => a };
const soon = { timeoutMs: 10_000, intervalMs: 10 };

/** A latch a handler awaits and the test opens. */
function gate(): { wait: Promise<void>; open: () => void } {
  let open!: () => void;
  const wait = new Promise<void>((resolve) => (open = resolve));
  return { wait, open };
}

/**
 * A backend around a real one whose faults the test switches: writes failing as a full disk
 * (`SQLITE_FULL`), and a clock of its own (`clockOffsetMs` added to this host's), which makes it a
 * backend "with a clock", like PostgreSQL and Redis.
 */
class FaultyBackend implements StoreBackend {
  failWrites = false;
  clockOffsetMs?: number;
  /** How long each reading of the clock takes (ms). */
  clockDelayMs = 0;
  /** The next journal append whose key starts with this fails with `failAppendError` (once). */
  failAppendOf?: string;
  failAppendError?: Error;
  constructor(private readonly inner: StoreBackend) {}
  get exclusive(): boolean {
    return this.inner.exclusive;
  }
  private write<T>(call: () => Promise<T>): Promise<T> {
    if (this.failWrites) return Promise.reject(Object.assign(new Error('database or disk is full'), { code: 'SQLITE_FULL' }));
    return call();
  }
  insert(task: TaskRecord) {
    return this.write(() => this.inner.insert(task));
  }
  get(taskId: string) {
    return this.inner.get(taskId);
  }
  findByIdempotency(scope: string, nowMs: number) {
    return this.inner.findByIdempotency(scope, nowMs);
  }
  deleteJournal(taskId: string, keys: string[]) {
    return this.write(() => this.inner.deleteJournal(taskId, keys));
  }
  replace(task: TaskRecord, expectedVersion: number) {
    return this.write(() => this.inner.replace(task, expectedVersion));
  }
  list(query: ListQuery) {
    return this.inner.list(query);
  }
  listAll(query: OperatorListQuery): Promise<OperatorListPage> {
    return this.inner.listAll(query);
  }
  countByStatus(nowMs: number): Promise<StatusCounts> {
    return this.inner.countByStatus(nowMs);
  }
  listUnfinished() {
    return this.inner.listUnfinished();
  }
  purgeExpired(nowMs: number, limit: number) {
    return this.write(() => this.inner.purgeExpired(nowMs, limit));
  }
  delete(taskId: string) {
    return this.write(() => this.inner.delete(taskId));
  }
  readJournal(taskId: string) {
    return this.inner.readJournal(taskId);
  }
  appendJournal(taskId: string, key: string, value: Json, fence?: Fence) {
    if (this.failAppendOf !== undefined && key.startsWith(this.failAppendOf)) {
      this.failAppendOf = undefined;
      return Promise.reject(this.failAppendError ?? new Error(`append of ${key} failed`));
    }
    return this.write(() => this.inner.appendJournal(taskId, key, value, fence));
  }
  get clock(): (() => Promise<number>) | undefined {
    if (this.clockOffsetMs === undefined) return undefined;
    return async () => {
      const at = Date.now() + this.clockOffsetMs!;
      if (this.clockDelayMs > 0) await new Promise((resolve) => setTimeout(resolve, this.clockDelayMs));
      return at;
    };
  }
  get getAt(): ((taskId: string) => Promise<{ task: TaskRecord | undefined; nowMs: number }>) | undefined {
    return this.clockOffsetMs === undefined ? undefined : async (taskId) => ({ task: await this.inner.get(taskId), nowMs: Date.now() + this.clockOffsetMs! });
  }
  close() {
    return this.inner.close();
  }
}

/** A logger that keeps every line (JSON objects) for the test to read. */
function capturingLogger(): { logger: Logger; lines: Array<{ level: number; msg: string; [key: string]: unknown }> } {
  const lines: Array<{ level: number; msg: string }> = [];
  const logger = createLogger({ level: 'debug', destination: { write: (line: string) => void lines.push(JSON.parse(line)) } });
  return { logger, lines };
}

function runtimeOn(store: TaskStore, handlers: Record<string, TaskHandler<any>>, options: ConstructorParameters<typeof TaskRuntime>[1] = {}) {
  const runtime = new TaskRuntime(store, { logger: silentLogger, onError: (e) => assert.fail(String(e)), ...options });
  for (const [name, handler] of Object.entries(handlers)) runtime.register(name, { ...anyArgs, handler });
  return runtime;
}

describe('fencing between instances sharing a store', () => {
  it('a run whose task another instance claimed does not begin its next step, and journals nothing more', async () => {
    const path = dbPath();
    const storeA = new TaskStore(new SqliteBackend(path, { exclusive: false }));
    const storeB = new TaskStore(new SqliteBackend(path, { exclusive: false }), { recheckMs: 0 });
    const proceed = gate();
    const calls = { one: 0, two: 0 };
    const runtimeA = runtimeOn(
      storeA,
      {
        work: async (_args, ctx) => {
          await ctx.step('one', () => ++calls.one);
          await proceed.wait;
          await ctx.step('two', () => ++calls.two);
          return text('done');
        },
      },
      { instanceId: 'A', leaseMs: 60_000, permitMs: 50 },
    );
    const task = await runtimeA.submit({ owner: null, tool: 'work', arguments: {}, errorResultStatus: 'failed' });
    await until(() => calls.one === 1, soon);
    // Instance B takes the task over (by force here; in life once A's lease expired while A was paused).
    const claimed = await storeB.claim(task.taskId, 'B', 60_000, true);
    assert.equal(claimed?.lease?.epoch, 2);
    await new Promise((resolve) => setTimeout(resolve, 100)); // deliberate: A's last permit (50 ms) is over, as after any pause
    proceed.open();
    await until(() => !runtimeA.isRunning(task.taskId), { ...soon, what: "A's run to stop" });
    assert.equal(calls.two, 0, "A did not begin step 'two' for a task B holds");
    const journal = await storeB.readJournal(task.taskId);
    assert.equal(journal.has('step:two'), false);
    const now = await storeB.get(task.taskId, ENGINE_ACCESS);
    assert.deepEqual([now.status, now.lease?.holder, now.lease?.epoch], ['working', 'B', 2], 'A wrote nothing over B');
    await runtimeA.close();
    await storeA.close();
    await storeB.close();
  });

  it('a cancel acknowledged by another instance stops the holder before its next step', async () => {
    const path = dbPath();
    const storeA = new TaskStore(new SqliteBackend(path, { exclusive: false }), { recheckMs: 0 });
    const storeB = new TaskStore(new SqliteBackend(path, { exclusive: false }), { recheckMs: 0 });
    const proceed = gate();
    const calls = { one: 0, two: 0 };
    const permitMs = 1000;
    const runtimeA = runtimeOn(
      storeA,
      {
        work: async (_args, ctx) => {
          await ctx.step('one', () => ++calls.one);
          await proceed.wait;
          await ctx.step('two', () => ++calls.two);
          return text('done');
        },
      },
      { instanceId: 'A', leaseMs: 60_000, permitMs },
    );
    const runtimeB = runtimeOn(storeB, {}, { instanceId: 'B', leaseMs: 60_000, permitMs });
    const task = await runtimeA.submit({ owner: null, tool: 'work', arguments: {}, errorResultStatus: 'failed' });
    await until(() => calls.one === 1, soon);
    // A's permit from the task's creation is still fresh; a shared SQLite file sends A no notice of
    // the cancel. B acknowledges the cancel only once that permit can no longer be used.
    const cancelled = await runtimeB.cancel(task.taskId, null);
    assert.equal(cancelled.status, 'cancelled');
    proceed.open(); // right after the acknowledgement
    await until(() => !runtimeA.isRunning(task.taskId), { ...soon, what: "A's run to stop" });
    assert.equal(calls.two, 0, 'no step began after the cancel was acknowledged');
    assert.equal((await storeA.readJournal(task.taskId)).has('step:two'), false);
    await runtimeA.close();
    await runtimeB.close();
    await storeA.close();
    await storeB.close();
  });
});

describe('store outages', () => {
  it('a run interrupted by a failing store is retried until the store answers; the task completes, never failed by the outage', async () => {
    const backend = new FaultyBackend(new SqliteBackend(dbPath()));
    const { logger, lines } = capturingLogger();
    const store = new TaskStore(backend, { logger });
    const proceed = gate();
    const calls = { one: 0, two: 0 };
    const runtime = runtimeOn(
      store,
      {
        work: async (_args, ctx) => {
          await ctx.step('one', () => ++calls.one);
          await proceed.wait;
          await ctx.step('two', () => ++calls.two);
          await ctx.setStatusMessage('two done');
          return text(`done after ${calls.two} attempt(s) of two`);
        },
      },
      { logger },
    );
    const task = await runtime.submit({ owner: null, tool: 'work', arguments: {}, errorResultStatus: 'failed' });
    await until(async () => (await store.readJournal(task.taskId)).has('step:one'), soon);
    backend.failWrites = true; // the disk fills up
    proceed.open();
    await until(() => !store.health.available && !runtime.isRunning(task.taskId), { ...soon, what: 'the outage to stop the run' });
    assert.equal((await store.get(task.taskId, ENGINE_ACCESS)).status, 'working', 'an outage is not an outcome');
    backend.failWrites = false; // space freed
    const done = await runtime.waitForTerminal(task.taskId, null);
    assert.equal(done?.status, 'completed');
    assert.equal(calls.one, 1, 'the journaled step was replayed, not run again');
    assert.equal(calls.two, 2, 'the step whose record was lost ran again (at least once: its effect needs an idempotency key)');
    assert.deepEqual(done?.outcome, { type: 'result', result: text('done after 2 attempt(s) of two') });
    assert.equal(lines.filter((l) => l.msg.startsWith('task store unavailable')).length, 1, 'one line when the outage starts');
    assert.equal(lines.filter((l) => l.msg.startsWith('task store available again')).length, 1, 'one line when it ends');
    assert.equal(lines.filter((l) => l.level >= 50 && !l.msg.startsWith('task store unavailable')).length, 0, 'no other error lines');
    assert.ok(lines.some((l) => l.msg === 'task resumed after a store outage'));
    const runs = [...(await store.readJournal(task.taskId)).entries()].filter(([key]) => key.startsWith('run:'));
    assert.deepEqual(
      runs.map(([, v]) => (v as { reason: string }).reason),
      ['retry'],
    );
    await runtime.close();
    await store.close();
  });
});

describe('store errors that are not outages', () => {
  it("an unexpected store error writing a step's record stops the run and retries it: never the task's outcome", async () => {
    const backend = new FaultyBackend(new SqliteBackend(dbPath()));
    backend.failAppendOf = 'step:pay';
    backend.failAppendError = Object.assign(new Error('something the driver never said before'), { code: 'XX000' });
    const errors: unknown[] = [];
    const store = new TaskStore(backend);
    let effects = 0;
    const runtime = runtimeOn(
      store,
      {
        pay: async (_args, ctx) => {
          try {
            await ctx.step('pay', () => ++effects);
          } catch {
            return { ...text('the handler swallowed it'), isError: true }; // what a careless handler does
          }
          return text(`paid after ${effects} attempt(s)`);
        },
      },
      { onError: (error) => void errors.push(error) },
    );
    const task = await runtime.submit({ owner: null, tool: 'pay', arguments: {}, errorResultStatus: 'failed' });
    const done = await runtime.waitForTerminal(task.taskId, null);
    assert.equal(done?.status, 'completed');
    assert.deepEqual(done?.outcome, { type: 'result', result: text('paid after 2 attempt(s)') }, 'retried, not ended by the store error');
    assert.equal(errors.length, 1, 'the unexpected error is reported once');
    await runtime.close();
    await store.close();
  });
});

describe('configuration', () => {
  it('refuses a permit as long as half the lease or longer', () => {
    const store = new TaskStore(new SqliteBackend(dbPath()));
    assert.throws(() => new TaskRuntime(store, { leaseMs: 1000, permitMs: 600, logger: silentLogger }), /permitMs \(600\) must be at most half of leaseMs/);
    void store.close();
  });
});

describe('step retries', () => {
  it('retries transient failures by default, any failure with retries, never a NonRetryableError', async () => {
    const store = new TaskStore(new SqliteBackend(dbPath()));
    const attempts: Record<string, number> = {};
    const flaky = (name: string, failures: number, error: () => unknown) => () => {
      attempts[name] = (attempts[name] ?? 0) + 1;
      if (attempts[name]! <= failures) throw error();
      return attempts[name];
    };
    const reset = () => Object.assign(new Error('socket hang up'), { code: 'ECONNRESET' });
    const fast = { retryDelayMs: 1 };
    // Each step: how many times it fails, with what, and its options.
    const cases: [name: string, failures: number, error: () => unknown, options: StepOptions][] = [
      ['reset', 2, reset, fast],
      ['busy', 1, () => Object.assign(new Error('database is locked'), { code: 'SQLITE_BUSY' }), fast],
      ['http503', 1, () => Object.assign(new Error('unavailable'), { status: 503 }), fast],
      ['marked', 1, () => new TransientError('try later'), fast],
      ['final', 5, () => new NonRetryableError('card declined', { cause: reset() }), fast],
      ['plain', 1, () => new Error('bad data'), fast],
      ['plainRetried', 1, () => new Error('bad data'), { ...fast, retries: 1 }],
      ['budget', 10, reset, { ...fast, transientRetries: 2 }],
    ];
    const runtime = runtimeOn(store, {
      work: async (_args, ctx) => {
        const results: Record<string, unknown> = {};
        for (const [name, failures, error, options] of cases) {
          try {
            results[name] = await ctx.step(name, flaky(name, failures, error), options);
          } catch (failure) {
            results[name] = failure instanceof StepFailedError ? `failed: ${failure.message}` : 'unexpected';
          }
        }
        return { ...text('ok'), structuredContent: results };
      },
    });
    const task = await runtime.submit({ owner: null, tool: 'work', arguments: {}, errorResultStatus: 'failed' });
    const done = await runtime.waitForTerminal(task.taskId, null);
    const results = (done?.outcome as unknown as { result: { structuredContent: Record<string, unknown> } }).result.structuredContent;
    assert.deepEqual(results, {
      reset: 3,
      busy: 2,
      http503: 2,
      marked: 2,
      final: 'failed: card declined',
      plain: 'failed: bad data',
      plainRetried: 2,
      budget: 'failed: socket hang up',
    });
    assert.deepEqual(attempts, { reset: 3, busy: 2, http503: 2, marked: 2, final: 1, plain: 1, plainRetried: 2, budget: 3 });
    await runtime.close();
    await store.close();
  });
});

describe('clocks', () => {
  it('an instance whose clock is off takes no leases; the tasks it creates are run by another instance', async () => {
    const path = dbPath();
    const skewedBackend = new FaultyBackend(new SqliteBackend(path, { exclusive: false }));
    skewedBackend.clockOffsetMs = 2 * 3600_000; // the store is 2 h ahead of this instance: its clock is 2 h behind
    const { logger, lines } = capturingLogger();
    const skewedStore = new TaskStore(skewedBackend, { logger });
    const healthyStore = new TaskStore(new SqliteBackend(path, { exclusive: false }), { recheckMs: 100 });
    let ranBy = '';
    const handler: TaskHandler<any> = async (_args, ctx) => {
      await ctx.step('who', () => (ranBy = ctx.fencingToken > 0 ? 'someone' : ''));
      return text('ok');
    };
    const skewed = runtimeOn(skewedStore, { work: handler }, { instanceId: 'skewed', leaseMs: 300, logger });
    assert.equal(await skewed.recover(), 0);
    assert.equal(skewed.clockSkewed, true);
    assert.ok(
      lines.some((l) => l.level === 50 && /clock is \d+ ms behind the store's/.test(l.msg)),
      'the skew is logged as an error',
    );
    const task = await skewed.submit({ owner: null, tool: 'work', arguments: {}, errorResultStatus: 'failed' });
    assert.equal(task.lease, undefined, 'created unleased');
    assert.equal(skewed.isRunning(task.taskId), false);
    const healthy = runtimeOn(healthyStore, { work: handler }, { instanceId: 'healthy', leaseMs: 300 });
    await healthy.recover();
    const done = await healthy.waitForTerminal(task.taskId, null);
    assert.equal(done?.status, 'completed');
    assert.equal(ranBy, 'someone');
    const runs = [...(await healthyStore.readJournal(task.taskId)).values()].filter((v) => (v as { holder?: string }).holder);
    assert.deepEqual(
      runs.map((r) => (r as { holder: string }).holder),
      ['healthy'],
    );
    await skewed.close();
    await healthy.close();
    await skewedStore.close();
    await healthyStore.close();
  });

  it('a slow reading of the store clock decides nothing: no skew is declared, no run is stopped', async () => {
    const backend = new FaultyBackend(new SqliteBackend(dbPath(), { exclusive: false }));
    backend.clockOffsetMs = 0;
    backend.clockDelayMs = 400; // each reading takes 400 ms: its offset is uncertain by 200 ms
    const store = new TaskStore(backend);
    const runtime = runtimeOn(store, {}, { instanceId: 'A', leaseMs: 60_000, maxClockSkewMs: 150 });
    assert.equal(await runtime.checkClock(1), undefined, 'a reading slower than the tolerance is no verdict');
    assert.equal(runtime.clockSkewed, false);
    backend.clockDelayMs = 0;
    backend.clockOffsetMs = 5000;
    assert.ok(Math.abs((await runtime.checkClock(1))! - 5000) < 100);
    assert.equal(runtime.clockSkewed, true, 'a fast reading 5 s off is');
    await runtime.close();
    await store.close();
  });

  it('a lease ending implausibly late (a clock that jumped) is taken over only after staying unrenewed for its length', async () => {
    const path = dbPath();
    // Instance A's clock is 4 s ahead (not yet measured): it writes leases of 1 s that end 5 s from now.
    const jumped = new TaskStore(new SqliteBackend(path, { exclusive: false }), { now: () => Date.now() + 4000 });
    const healthyStore = new TaskStore(new SqliteBackend(path, { exclusive: false }));
    const runs: string[] = [];
    const healthy = runtimeOn(
      healthyStore,
      {
        work: async (_args, ctx) => {
          await ctx.step('run', () => runs.push('B'));
          return text('ok');
        },
      },
      { instanceId: 'B', leaseMs: 300 },
    );
    const created = await jumped.create({
      owner: null,
      request: { tool: 'work', arguments: {} },
      errorResultStatus: 'failed',
      lease: { holder: 'A', leaseMs: 1000 },
    });
    await healthy.recover();
    // While A renews (as a live holder does), B never takes the task, though each lease looks 3 s too long.
    for (let i = 0; i < 6; i++) {
      await new Promise((resolve) => setTimeout(resolve, 250)); // deliberate: 1.5 s pass in all, more than a lease, while A renews
      await jumped.renew(created.taskId, { holder: 'A', epoch: 1 }, 1000);
    }
    assert.deepEqual(runs, [], 'a renewed lease is not taken, plausible or not');
    assert.equal((await healthyStore.get(created.taskId, ENGINE_ACCESS)).lease?.holder, 'A');
    // A stops renewing (it died, or stopped on finding its clock off): B takes over after about 1 s, not 5.
    const done = await healthy.waitForTerminal(created.taskId, null);
    assert.equal(done?.status, 'completed');
    assert.deepEqual(runs, ['B']);
    await healthy.close();
    await jumped.close();
    await healthyStore.close();
  });

  it("a timer continues only once its due time has come on the store's clock, however early this instance's clock says so", async () => {
    const backend = new FaultyBackend(new SqliteBackend(dbPath(), { exclusive: false }));
    backend.clockOffsetMs = 0;
    const store = new TaskStore(backend);
    let continuedAt: number | undefined;
    let wakeAt: number | undefined;
    const runtime = runtimeOn(
      store,
      {
        nap: async (_args, ctx) => {
          await ctx.sleep(200);
          await ctx.step('after', () => (continuedAt = Date.now() + backend.clockOffsetMs!));
          return text('ok');
        },
      },
      { instanceId: 'A', leaseMs: 60_000 },
    );
    await runtime.recover(); // measures the clock: offset 0
    const task = await runtime.submit({ owner: null, tool: 'nap', arguments: {}, errorResultStatus: 'failed' });
    await until(async () => (wakeAt = ((await store.readJournal(task.taskId)).get('timer:1') as { value?: number } | undefined)?.value), soon);
    backend.clockOffsetMs = -1000; // this instance's clock jumps 1 s ahead of the store's
    const done = await runtime.waitForTerminal(task.taskId, null);
    assert.equal(done?.status, 'completed');
    assert.ok(continuedAt! >= wakeAt!, `continued at ${continuedAt} on the store's clock, due ${wakeAt}`);
    await runtime.close();
    await store.close();
  });
});
