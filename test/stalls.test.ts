/**
 * Stall detection (a tool's `stallAfterMs`) on every store that claims durability: a handler stuck in
 * an await that never returns is flagged stalled — record mark, journal entry, warn log line,
 * metric, `onTaskEvent` — and later activity clears the flag; a task waiting on a durable timer or a
 * question is not flagged.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { metrics } from '@opentelemetry/api';
import { MeterProvider, MetricReader, type DataPoint, type MetricData } from '@opentelemetry/sdk-metrics';
import { ENGINE_ACCESS } from '../src/core/access.js';
import { parseJournalKey, type ResumedEntry, type StalledEntry } from '../src/core/journal-keys.js';
import { createLogger } from '../src/core/log.js';
import type { JsonObject } from '../src/core/json.js';
import type { TaskContext } from '../src/runtime/context.js';
import { TaskRuntime, type TaskEvent } from '../src/runtime/runtime.js';
import { openStore } from '../src/store/open-store.js';
import { testStores } from './helpers/test-stores.js';
import { until } from './helpers/until.js';
import { capturedLogger } from './helpers/captured-logger.js';

const { stores } = testStores('stall');

const text = (t: string) => ({ content: [{ type: 'text', text: t }] });
const soon = { timeoutMs: 8000, intervalMs: 10 };
const STALL_MS = 150;

class TestReader extends MetricReader {
  protected override async onShutdown(): Promise<void> {}
  protected override async onForceFlush(): Promise<void> {}
}
const reader = new TestReader();
const provider = new MeterProvider({ readers: [reader] });
before(() => assert.ok(metrics.setGlobalMeterProvider(provider)));
after(async () => {
  metrics.disable();
  await provider.shutdown();
});
const collect = async () => {
  const { resourceMetrics } = await reader.collect();
  return new Map<string, MetricData>(resourceMetrics.scopeMetrics.flatMap((scope) => scope.metrics.map((metric) => [metric.descriptor.name, metric])));
};
const value = (metric: MetricData | undefined, attributes: Record<string, string> = {}) =>
  (metric?.dataPoints as DataPoint<number>[] | undefined)?.find((p) => Object.entries(attributes).every(([key, v]) => p.attributes[key] === v))?.value ?? 0;

/** A promise and the function that resolves it. */
function gate() {
  let open!: () => void;
  const opened = new Promise<void>((resolve) => (open = resolve));
  return { opened, open };
}

for (const { name, url } of stores) {
  describe(`stall detection on ${name}`, () => {
    it('flags a handler stuck in an await that never returns (record, journal, log, metric, event), and clears it on activity', async () => {
      const store = openStore(url());
      const { logger, lines } = capturedLogger();
      const runtime = new TaskRuntime(store, { logger, onError: (e) => assert.fail(String(e)), leaseMs: 600 });
      const stuck = gate();
      runtime.register('fetcher', {
        parse: (a: JsonObject) => a,
        stallAfterMs: STALL_MS,
        handler: async (_args, ctx: TaskContext) => {
          await ctx.step('prepare', () => 'ready');
          await stuck.opened; // a fetch without a timeout: no activity at all
          await ctx.progress(1, 2, 'fetched');
          return text('done');
        },
      });
      const events: TaskEvent[] = [];
      const unsubscribe = runtime.onTaskEvent((event) => events.push(event));
      await runtime.recover();
      const before = value((await collect()).get('mcp_tasks.stalls'), { 'gen_ai.tool.name': 'fetcher' });
      const task = await runtime.submit({ owner: 'alice', tool: 'fetcher', arguments: {}, errorResultStatus: 'failed' });

      const stalled = await until(() => events.find((e) => e.type === 'stalled' && e.taskId === task.taskId), { ...soon, what: 'the stalled event' });
      assert.equal(stalled.type === 'stalled' && stalled.stallAfterMs, STALL_MS);
      assert.deepEqual({ tool: stalled.tool, principal: stalled.principal }, { tool: 'fetcher', principal: 'alice' });
      const record = await store.get(task.taskId, ENGINE_ACCESS);
      assert.equal(record.status, 'working', 'a stall only flags');
      assert.deepEqual(record.stalled, { at: stalled.at, since: stalled.type === 'stalled' ? stalled.since : '' });
      const journal = await store.readJournal(task.taskId);
      const entries = [...journal].filter(([key]) => parseJournalKey(key)?.kind === 'stalled');
      assert.equal(entries.length, 1);
      assert.deepEqual(entries[0]![1] as unknown as StalledEntry, { at: stalled.at, since: record.stalled!.since, afterMs: STALL_MS });
      const warn = lines.find((line) => line.msg?.toString().startsWith('task stalled'));
      assert.ok(warn, 'a warn line');
      assert.deepEqual([warn.level, warn.taskId, warn.tool, warn.principal], [40, task.taskId, 'fetcher', 'alice']);
      const collected = await collect();
      assert.equal(value(collected.get('mcp_tasks.stalls'), { 'gen_ai.tool.name': 'fetcher' }), before + 1);
      assert.equal(value(collected.get('mcp_tasks.tasks.stalled')), 1);
      const listed = await store.listAll({ stalled: true }, ENGINE_ACCESS);
      assert.deepEqual(
        listed.tasks.map((t) => t.taskId),
        [task.taskId],
      );

      stuck.open();
      const done = await runtime.waitForTerminal(task.taskId, 'alice');
      assert.equal(done?.status, 'completed');
      // Emitted once the episode's end is written, which may come after the task's own end.
      const resumed = await until(() => events.find((e) => e.type === 'resumed'), { ...soon, what: 'the resumed event' });
      assert.ok(resumed.type === 'resumed');
      assert.equal(resumed.activity, 'progress');
      assert.equal(resumed.since, record.stalled!.since);
      const after = await store.readJournal(task.taskId);
      const resumedEntries = [...after].filter(([key]) => parseJournalKey(key)?.kind === 'resumed');
      assert.deepEqual(
        resumedEntries.map(([, v]) => (v as unknown as ResumedEntry).activity),
        ['progress'],
      );
      assert.equal((await store.get(task.taskId, ENGINE_ACCESS)).stalled, undefined, 'cleared');
      assert.equal(value((await collect()).get('mcp_tasks.tasks.stalled')), 0);
      assert.deepEqual((await store.listAll({ stalled: true }, ENGINE_ACCESS)).tasks, []);
      unsubscribe();
      await runtime.close();
      await store.close();
    });

    it('does not flag a task waiting on a durable timer or on a question', async () => {
      const store = openStore(url());
      const runtime = new TaskRuntime(store, { logger: createLogger({ level: 'silent' }), onError: (e) => assert.fail(String(e)), leaseMs: 600 });
      runtime.register('sleeper', {
        parse: (a: JsonObject) => a,
        stallAfterMs: STALL_MS,
        handler: async (_args, ctx: TaskContext) => {
          await ctx.sleep(STALL_MS * 4);
          return text('slept');
        },
      });
      runtime.register('asker', {
        parse: (a: JsonObject) => a,
        stallAfterMs: STALL_MS,
        handler: async (_args, ctx: TaskContext) => {
          const answer = await ctx.elicit('Go?', { type: 'object', properties: { ok: { type: 'boolean' } } }, { key: 'go' });
          return text(answer.action);
        },
      });
      const events: TaskEvent[] = [];
      runtime.onTaskEvent((event) => events.push(event));
      await runtime.recover();
      const sleeper = await runtime.submit({ owner: null, tool: 'sleeper', arguments: {}, errorResultStatus: 'failed' });
      const asker = await runtime.submit({ owner: null, tool: 'asker', arguments: {}, errorResultStatus: 'failed' });
      assert.equal((await runtime.waitForTerminal(sleeper.taskId, null))?.status, 'completed', 'the timer ran its course');
      // The question has waited for as long as the timer (several stallAfterMs) by now.
      assert.equal((await store.get(asker.taskId, ENGINE_ACCESS)).status, 'input_required');
      await runtime.provideInput(asker.taskId, 'go', { action: 'accept', content: { ok: true } }, null);
      assert.equal((await runtime.waitForTerminal(asker.taskId, null))?.status, 'completed');
      assert.deepEqual(events, [], 'no stall');
      for (const { taskId } of [sleeper, asker]) {
        assert.deepEqual(
          [...(await store.readJournal(taskId)).keys()].filter((key) => parseJournalKey(key)?.kind === 'stalled'),
          [],
        );
      }
      await runtime.close();
      await store.close();
    });
  });
}

describe('stall options', () => {
  it('refuses a stallAfterMs or deadlineMs that is not a positive number of ms', () => {
    const runtime = new TaskRuntime(openStore('memory:'), { logger: createLogger({ level: 'silent' }) });
    for (const bad of [0, -1, Number.NaN, Infinity]) {
      assert.throws(() => runtime.register(`s${String(bad)}`, { parse: (a) => a, handler: async () => text(''), stallAfterMs: bad }), /stallAfterMs/);
      assert.throws(() => runtime.register(`d${String(bad)}`, { parse: (a) => a, handler: async () => text(''), deadlineMs: bad }), /deadlineMs/);
    }
  });
});
