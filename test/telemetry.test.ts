/**
 * OpenTelemetry through `@opentelemetry/api` (src/runtime/telemetry.ts): one trace per task from
 * the caller's `tools/call` (its `traceparent` in `_meta`) through every step and question, across
 * a restart and a takeover; poll events on the run span; metrics; and nothing at all without an
 * SDK (the rest of the suite runs that way).
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { context, metrics, propagation, trace } from '@opentelemetry/api';
import { AsyncLocalStorageContextManager } from '@opentelemetry/context-async-hooks';
import { W3CTraceContextPropagator } from '@opentelemetry/core';
import { MeterProvider, MetricReader, type DataPoint, type Histogram, type MetricData } from '@opentelemetry/sdk-metrics';
import { BasicTracerProvider, InMemorySpanExporter, SimpleSpanProcessor, type ReadableSpan } from '@opentelemetry/sdk-trace-base';
import * as z from 'zod';
import { ENGINE_ACCESS } from '../src/core/access.js';
import type { RunEntry } from '../src/core/journal-keys.js';
import type { JsonObject } from '../src/core/json.js';
import { silentLogger } from '../src/core/log.js';
import type { TaskContext } from '../src/runtime/context.js';
import { TaskRuntime, type TaskHandler } from '../src/runtime/runtime.js';
import { createTaskServer, TaskServer } from '../src/server/task-server.js';
import { openStore } from '../src/store/open-store.js';
import { ModernRawClient } from './helpers/modern-client.js';
import { RawMcpClient } from './helpers/raw-client.js';
import { until } from './helpers/until.js';

const dir = mkdtempSync(join(tmpdir(), 'mcp-tasks-otel-'));
after(() => rmSync(dir, { recursive: true, force: true }));

const text = (t: string) => ({ content: [{ type: 'text', text: t }] });
const APPROVAL = { type: 'object', properties: { ok: { type: 'boolean' } }, required: ['ok'] } as const;
const soon = { timeoutMs: 8000, intervalMs: 20 };

/** Two steps around a question: what every test runs. */
const approveFlow = (steps: string[]) => async (_args: unknown, ctx: TaskContext) => {
  const fetched = await ctx.step('fetch', () => {
    steps.push('fetch');
    return 'invoice';
  });
  const answer = await ctx.elicit('Approve?', APPROVAL as unknown as JsonObject, { key: 'approval' });
  const paid = await ctx.step('pay', () => {
    steps.push('pay');
    return 'paid';
  });
  return text(`${fetched} ${answer.action} ${paid}`);
};

/** A 2026-07-28 raw client whose requests carry the caller's W3C trace context in `_meta` (SEP-414). */
class TracedClient extends ModernRawClient {
  constructor(
    url: string,
    readonly traceparent: string,
  ) {
    super(url);
  }
  override envelope(): Record<string, unknown> {
    return { ...super.envelope(), traceparent: this.traceparent, tracestate: 'vendor=1' };
  }
}

const byName = (spans: ReadableSpan[], name: string) => spans.filter((span) => span.name === name);
const parentOf = (span: ReadableSpan) => span.parentSpanContext?.spanId;
const idOf = (span: ReadableSpan) => span.spanContext().spanId;

describe('telemetry without an SDK', () => {
  it('runs, restarts and polls as before, stores no trace context and ignores a caller traceparent', async () => {
    assert.equal(trace.getTracerProvider().getTracer('x').startSpan('probe').isRecording(), false, 'no SDK registered here');
    const url = `sqlite:${join(dir, 'plain.db')}`;
    const steps: string[] = [];
    const make = (store: ReturnType<typeof openStore>) => {
      const runtime = new TaskRuntime(store, { logger: silentLogger, onError: (e) => assert.fail(String(e)) });
      runtime.register('approve', { parse: (a) => a, handler: approveFlow(steps) });
      return runtime;
    };
    const store1 = openStore(url);
    const first = make(store1);
    const traceparent = `00-${randomBytes(16).toString('hex')}-${randomBytes(8).toString('hex')}-01`;
    const task = await first.submit({ owner: null, tool: 'approve', arguments: {}, errorResultStatus: 'completed', traceCarrier: { traceparent } });
    await until(async () => (await store1.get(task.taskId, ENGINE_ACCESS)).status === 'input_required', { ...soon, what: 'the question' });
    first.notePoll(task.taskId, 'tasks/get');
    assert.equal((await store1.get(task.taskId, ENGINE_ACCESS)).traceContext, undefined, 'nothing recorded, nothing stored');
    await first.close();
    await store1.close();

    const store2 = openStore(url);
    const second = make(store2);
    assert.equal(await second.recover(), 1);
    await until(async () => (await store2.get(task.taskId, ENGINE_ACCESS)).status === 'input_required', { ...soon, what: 'the question again' });
    assert.equal(await second.provideInput(task.taskId, 'approval', { action: 'accept', content: { ok: true } }, null), true);
    const done = await second.waitForTerminal(task.taskId, null);
    assert.deepEqual(done?.outcome, { type: 'result', result: text('invoice accept paid') });
    assert.deepEqual(steps, ['fetch', 'pay'], 'each step ran once');
    await second.close();
    await store2.close();
  });
});

describe('telemetry with an SDK', () => {
  const exporter = new InMemorySpanExporter();
  const provider = new BasicTracerProvider({ spanProcessors: [new SimpleSpanProcessor(exporter)] });
  const contextManager = new AsyncLocalStorageContextManager();

  before(() => {
    contextManager.enable();
    assert.ok(context.setGlobalContextManager(contextManager));
    assert.ok(trace.setGlobalTracerProvider(provider));
    assert.ok(propagation.setGlobalPropagator(new W3CTraceContextPropagator()));
  });
  after(async () => {
    trace.disable();
    context.disable();
    propagation.disable();
    await provider.shutdown();
  });

  it('one trace from the caller through create, two runs (a restart while waiting for input), steps and the question', async () => {
    exporter.reset();
    const file = join(dir, 'traced.db');
    const steps: string[] = [];
    const serve = async () => {
      const server: TaskServer = createTaskServer({
        store: `sqlite:${file}`,
        storeOptions: { policy: { pollIntervalMs: 50 } },
        logger: silentLogger,
        runtime: { onError: (e) => assert.fail(String(e)) },
      });
      server.registerTool('approve', { description: 'Fetches, asks, pays', inputSchema: z.object({}), taskSupport: 'optional' }, approveFlow(steps));
      const http = await server.listen({ port: 0 });
      return { server, url: http.url };
    };
    const callerTrace = randomBytes(16).toString('hex');
    const callerSpan = randomBytes(8).toString('hex');
    const traceparent = `00-${callerTrace}-${callerSpan}-01`;

    // First life: created through the real 2026-07-28 wire with the caller's traceparent in _meta.
    const one = await serve();
    let client = new TracedClient(one.url, traceparent);
    const created = (await client.request('tools/call', { name: 'approve', arguments: {} })).result;
    assert.equal(created.resultType, 'task');
    const taskId = created.taskId as string;
    await until(async () => (await client.request('tasks/get', { taskId })).result?.status === 'input_required', { ...soon, what: 'input_required' });
    await client.request('tasks/get', { taskId }); // more polls: events, never spans
    const stored = await one.server.store.get(taskId, ENGINE_ACCESS);
    assert.match(stored.traceContext?.traceparent ?? '', new RegExp(`^00-${callerTrace}-[0-9a-f]{16}-01$`), 'the creation context is stored with the task');
    assert.equal(stored.traceContext?.tracestate, 'vendor=1', 'tracestate travels along');
    await one.server.close(); // the restart, in the middle of the wait

    // Second life on the same store: recovery, the answer, the end.
    const two = await serve();
    client = new TracedClient(two.url, traceparent);
    await until(async () => (await client.request('tasks/get', { taskId })).result?.status === 'input_required', { ...soon, what: 'asked again' });
    const answered = await client.request('tasks/update', { taskId, inputResponses: { approval: { action: 'accept', content: { ok: true } } } });
    assert.equal(answered.result?.resultType, 'complete');
    await until(async () => (await client.request('tasks/get', { taskId })).result?.status === 'completed', { ...soon, what: 'completed' });
    const journal = await two.server.store.readJournal(taskId);
    await two.server.close();
    assert.deepEqual(steps, ['fetch', 'pay'], 'the first step was replayed, not redone');

    const spans = exporter.getFinishedSpans();
    const names = spans.map((span) => span.name).sort();
    assert.ok(
      spans.every((span) => span.spanContext().traceId === callerTrace),
      `every span is in the caller's trace: ${spans.map((s) => `${s.name} ${s.spanContext().traceId}`).join(', ')}`,
    );
    assert.ok(!names.some((name) => name.includes('tasks/get') || name.includes('poll')), `no span per poll: ${names.join(', ')}`);

    const [create, ...moreCreates] = byName(spans, 'task.create approve');
    assert.ok(create && moreCreates.length === 0, 'one creation span');
    assert.equal(parentOf(create), callerSpan, "the creation span is the caller's child");
    assert.equal(create.attributes['mcp.task.id'], taskId);
    assert.equal(create.attributes['gen_ai.tool.name'], 'approve');
    assert.equal(create.attributes['mcp.method.name'], 'tools/call');
    assert.equal(stored.traceContext?.traceparent.split('-')[2], idOf(create), 'the stored context is the creation span');

    const runs = byName(spans, 'task.run approve');
    assert.equal(runs.length, 2, 'two runs: before and after the restart');
    const [run1, run2] = [
      runs.find((r) => r.attributes['mcp_tasks.run.reason'] === 'start')!,
      runs.find((r) => r.attributes['mcp_tasks.run.reason'] === 'recovery')!,
    ];
    assert.ok(run1 && run2, `run reasons: ${runs.map((r) => r.attributes['mcp_tasks.run.reason'])}`);
    for (const run of runs) assert.equal(parentOf(run), idOf(create), 'each run continues from the creation span');
    assert.equal(run1.events.find((e) => e.name === 'task.run.interrupted')?.attributes?.['mcp_tasks.run.interruption'], 'shutdown');
    assert.equal(run2.attributes['mcp.task.status'], 'completed');
    const polls = run1.events.filter((e) => e.name === 'task.poll');
    assert.ok(polls.length >= 1, 'polls of a run in this process are events on its span');
    assert.equal(polls[0]!.attributes?.['mcp.method.name'], 'tasks/get');
    assert.ok((run1.attributes['mcp_tasks.polls'] as number) >= polls.length, 'the run counts every poll (events are coalesced)');

    const fetch = byName(spans, 'task.step fetch');
    assert.equal(fetch.length, 1, 'the replayed step made no second span');
    assert.equal(parentOf(fetch[0]!), idOf(run1));
    assert.equal(fetch[0]!.attributes['mcp_tasks.step.attempts'], 1);
    assert.ok(
      run2.events.some((e) => e.name === 'task.step.replayed' && e.attributes?.['mcp_tasks.step.name'] === 'fetch'),
      'the replay is an event',
    );
    const pay = byName(spans, 'task.step pay');
    assert.equal(pay.length, 1);
    assert.equal(parentOf(pay[0]!), idOf(run2));

    const inputs = byName(spans, 'task.input approval');
    const waited = inputs.find((span) => parentOf(span) === idOf(run2));
    assert.ok(waited, 'the wait for the answer is a span of the second run');
    assert.equal(waited.attributes['mcp_tasks.input.kind'], 'elicitation');
    assert.equal(waited.attributes['mcp_tasks.input.answered_by.role'], 'principal');
    assert.equal(waited.attributes['mcp_tasks.input.action'], 'accept');
    assert.equal(typeof waited.attributes['mcp_tasks.input.asked_at'], 'string', 'names the first ask, in the first run');
    const cut = inputs.find((span) => parentOf(span) === idOf(run1));
    assert.ok(
      cut?.events.some((e) => e.name === 'task.run.interrupted'),
      'the first wait ended with the shutdown',
    );

    // The journal's timeline: the recovery, step times.
    const runEntries = [...journal].filter(([key]) => key.startsWith('run:')).map(([, value]) => value as unknown as RunEntry);
    assert.equal(runEntries.length, 1, 'one restart journaled (not the first start)');
    assert.equal(runEntries[0]!.reason, 'recovery');
    const fetched = journal.get('step:fetch') as { startedAt?: string; endedAt?: string; value?: string };
    assert.equal(fetched.value, 'invoice');
    assert.ok(fetched.startedAt && fetched.endedAt && fetched.startedAt <= fetched.endedAt, 'steps carry startedAt/endedAt');
  });

  it('2025-11-25: task-augmented and ordinary calls honour the traceparent in _meta; tasks/result and tasks/list are poll events', async () => {
    exporter.reset();
    const server = createTaskServer({ store: 'memory:', logger: silentLogger, tasks: { list: true } });
    let release!: () => void;
    const gate = new Promise<void>((resolve) => (release = resolve));
    server.registerTool('hold', { description: 'Waits for the test', inputSchema: z.object({}), taskSupport: 'optional' }, async (_args, ctx) => {
      await ctx.step('held', () => gate);
      return text('released');
    });
    const http = await server.listen({ port: 0 });
    const callerTrace = randomBytes(16).toString('hex');
    const [taskCaller, syncCaller] = [randomBytes(8).toString('hex'), randomBytes(8).toString('hex')];
    try {
      const client = new RawMcpClient(http.url);
      await client.initialize();
      const created = await client.request('tools/call', {
        name: 'hold',
        arguments: {},
        task: {},
        _meta: { traceparent: `00-${callerTrace}-${taskCaller}-01` },
      });
      const taskId = created.result.task.taskId as string;
      await client.request('tasks/list', {});
      setTimeout(release, 50);
      const result = await client.request('tasks/result', { taskId });
      assert.equal(result.result.content[0].text, 'released');
      const sync = await client.request('tools/call', { name: 'hold', arguments: {}, _meta: { traceparent: `00-${callerTrace}-${syncCaller}-01` } });
      assert.equal(sync.result.content[0].text, 'released');
    } finally {
      await server.close();
    }
    const spans = exporter.getFinishedSpans();
    const creates = byName(spans, 'task.create hold');
    assert.deepEqual(creates.map(parentOf).sort(), [taskCaller, syncCaller].sort(), "each creation span is its caller's child");
    assert.ok(creates.every((span) => span.spanContext().traceId === callerTrace));
    const runs = byName(spans, 'task.run hold');
    const augmented = runs.find((run) => run.events.some((e) => e.name === 'task.poll'));
    assert.ok(augmented, 'the task-augmented run saw polls');
    const methods = augmented.events.filter((e) => e.name === 'task.poll').map((e) => e.attributes?.['mcp.method.name']);
    assert.equal(methods[0], 'tasks/list', 'first poll event: tasks/list (coalesced afterwards)');
    assert.ok((augmented.attributes['mcp_tasks.polls'] as number) >= 2, 'tasks/list and tasks/result counted');
  });

  it('a takeover on a shared store continues the trace; timers and failing attempts are spans and events', async () => {
    exporter.reset();
    const url = `sqlite:${join(dir, 'shared.db')}?shared=true`;
    let attempts = 0;
    const handler: TaskHandler<any> = async (_args, ctx) => {
      await ctx.step(
        'flaky',
        () => {
          if (++attempts < 2) throw new Error('database is locked');
          return 'ok';
        },
        { retries: 2, retryDelayMs: 5 },
      );
      await ctx.sleep(400);
      return text('woke');
    };
    const make = (instanceId: string) => {
      const store = openStore(url);
      const runtime = new TaskRuntime(store, { logger: silentLogger, instanceId, leaseMs: 300, onError: () => undefined });
      runtime.register('nap', { parse: (a) => a, handler });
      return { store, runtime };
    };
    const a = make('node-a');
    const task = await a.runtime.submit({ owner: null, tool: 'nap', arguments: {}, errorResultStatus: 'completed' });
    await until(async () => (await a.store.get(task.taskId, ENGINE_ACCESS)).statusMessage?.startsWith('Waiting until'), { ...soon, what: 'the timer' });
    await a.runtime.close(); // releases the lease: node-b takes the task over
    const b = make('node-b');
    assert.equal(await b.runtime.recover(), 1);
    const done = await b.runtime.waitForTerminal(task.taskId, null);
    assert.equal(done?.status, 'completed');
    const journal = await b.store.readJournal(task.taskId);
    await b.runtime.close();
    await Promise.all([a.store.close(), b.store.close()]);

    const spans = exporter.getFinishedSpans();
    const create = byName(spans, 'task.create nap')[0]!;
    assert.equal(parentOf(create), undefined, 'no caller context: the task starts its own trace');
    const runs = byName(spans, 'task.run nap');
    assert.equal(runs.length, 2);
    assert.ok(
      spans.every((span) => span.spanContext().traceId === create.spanContext().traceId),
      'one trace across instances',
    );
    const takeover = runs.find((r) => r.attributes['mcp_tasks.run.reason'] === 'takeover');
    assert.ok(takeover, 'the second run is a takeover');
    assert.equal(takeover.attributes['mcp_tasks.instance.id'], 'node-b');
    assert.equal(takeover.attributes['mcp_tasks.run.previous_holder'], 'node-a');
    assert.equal(parentOf(takeover), idOf(create));

    const flaky = byName(spans, 'task.step flaky');
    assert.equal(flaky.length, 1);
    assert.equal(flaky[0]!.attributes['mcp_tasks.step.attempts'], 2);
    assert.equal(flaky[0]!.attributes['mcp_tasks.step.max_retries'], 2);
    assert.equal(flaky[0]!.events.filter((e) => e.name === 'exception').length, 1, 'the failed attempt is an exception event');
    assert.notEqual(flaky[0]!.status.code, 2, 'a step that succeeded on retry is not an error');

    const timers = byName(spans, 'task.timer');
    assert.equal(timers.length, 2, 'the wait in each run');
    const resumed = timers.find((t) => parentOf(t) === idOf(takeover))!;
    assert.ok(resumed, 'the timer span of the second run');
    assert.equal(
      resumed.attributes['mcp_tasks.timer.due'],
      new Date((journal.get('timer:1') as { value: number }).value).toISOString(),
      'the original deadline',
    );

    const entry = [...journal].find(([key]) => key.startsWith('run:'))?.[1] as unknown as RunEntry;
    assert.deepEqual({ ...entry, at: undefined }, { at: undefined, holder: 'node-b', reason: 'takeover', previousHolder: 'node-a' });
  });
});

class TestReader extends MetricReader {
  protected override async onShutdown(): Promise<void> {}
  protected override async onForceFlush(): Promise<void> {}
}

describe('metrics', () => {
  const reader = new TestReader();
  const provider = new MeterProvider({ readers: [reader] });
  before(() => assert.ok(metrics.setGlobalMeterProvider(provider)));
  after(async () => {
    metrics.disable();
    await provider.shutdown();
  });

  const collect = async () => {
    const { resourceMetrics, errors } = await reader.collect();
    assert.deepEqual(errors, []);
    return new Map<string, MetricData>(resourceMetrics.scopeMetrics.flatMap((scope) => scope.metrics.map((metric) => [metric.descriptor.name, metric])));
  };
  const point = (metric: MetricData | undefined, attributes: Record<string, string>) =>
    (metric?.dataPoints as DataPoint<unknown>[] | undefined)?.find((p) => Object.entries(attributes).every(([key, value]) => p.attributes[key] === value));

  it('counts created and ended tasks, measures steps, input waits and task durations, gauges live tasks', async () => {
    const store = openStore('memory:');
    const runtime = new TaskRuntime(store, { logger: silentLogger, onError: (e) => assert.fail(String(e)) });
    const steps: string[] = [];
    runtime.register('approve', { parse: (a) => a, handler: approveFlow(steps) });
    const first = await runtime.submit({ owner: 'alice', tool: 'approve', arguments: {}, errorResultStatus: 'completed' });
    const second = await runtime.submit({ owner: 'alice', tool: 'approve', arguments: {}, errorResultStatus: 'completed' });
    for (const { taskId } of [first, second])
      await until(async () => (await store.get(taskId, ENGINE_ACCESS)).status === 'input_required', { ...soon, what: 'questions' });

    const waiting = await collect();
    assert.equal((point(waiting.get('mcp_tasks.tasks.live'), { 'mcp.task.status': 'input_required' }) as DataPoint<number>).value, 2);
    assert.equal((point(waiting.get('mcp_tasks.tasks.live'), { 'mcp.task.status': 'working' }) as DataPoint<number>).value, 0);

    await new Promise((resolve) => setTimeout(resolve, 30)); // deliberate: the input wait measured below lasts at least 20 ms
    assert.equal(await runtime.provideInput(first.taskId, 'approval', { action: 'accept', content: { ok: true } }, 'alice'), true);
    assert.equal((await runtime.waitForTerminal(first.taskId, 'alice'))?.status, 'completed');
    await runtime.cancel(second.taskId, 'alice');
    await until(() => !runtime.isRunning(second.taskId), { ...soon, what: 'the cancelled run to stop' });

    const ended = await collect();
    const tool = { 'gen_ai.tool.name': 'approve' };
    assert.equal((point(ended.get('mcp_tasks.tasks.created'), tool) as DataPoint<number>).value, 2);
    assert.equal((point(ended.get('mcp_tasks.tasks.ended'), { ...tool, 'mcp.task.status': 'completed' }) as DataPoint<number>).value, 1);
    assert.equal((point(ended.get('mcp_tasks.tasks.ended'), { ...tool, 'mcp.task.status': 'cancelled' }) as DataPoint<number>).value, 1);
    const pay = point(ended.get('mcp_tasks.step.duration'), { ...tool, 'mcp_tasks.step.name': 'pay' }) as DataPoint<Histogram>;
    assert.equal(pay.value.count, 1, 'one duration point for the step that ran');
    assert.equal(ended.get('mcp_tasks.step.duration')?.descriptor.unit, 's');
    const fetchPoints = point(ended.get('mcp_tasks.step.duration'), { ...tool, 'mcp_tasks.step.name': 'fetch' }) as DataPoint<Histogram>;
    assert.equal(fetchPoints.value.count, 2, 'fetch ran in both tasks');
    const wait = await until(
      async () => point((await collect()).get('mcp_tasks.input.wait'), { ...tool, 'mcp_tasks.input.kind': 'elicitation' }) as DataPoint<Histogram> | undefined,
      { ...soon, what: 'the input wait (measured in the background)' },
    );
    assert.equal(wait.value.count, 1);
    assert.ok((wait.value.sum ?? 0) >= 0.02, 'from the ask to the answer');
    const durations = point(ended.get('mcp_tasks.task.duration'), { ...tool, 'mcp.task.status': 'completed' }) as DataPoint<Histogram>;
    assert.equal(durations.value.count, 1);
    assert.equal((point(ended.get('mcp_tasks.tasks.live'), { 'mcp.task.status': 'input_required' }) as DataPoint<number>).value, 0);

    await runtime.close();
    await store.close();
  });
});
