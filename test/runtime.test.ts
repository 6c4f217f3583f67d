import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { ENGINE_ACCESS } from '../src/core/access.js';
import { TaskRpcError } from '../src/core/errors.js';
import { silentLogger } from '../src/core/log.js';
import type { JsonObject } from '../src/core/json.js';
import { TaskRuntime, type TaskHandler } from '../src/runtime/runtime.js';
import { openStore } from '../src/store/open-store.js';
import type { TaskStore } from '../src/store/task-store.js';
import { until } from './helpers/until.js';

const dir = mkdtempSync(join(tmpdir(), 'mcp-tasks-runtime-'));
after(() => rmSync(dir, { recursive: true, force: true }));
let n = 0;
const dbUrl = () => `sqlite:${join(dir, `rt-${++n}.db`)}`;

const text = (t: string) => ({ content: [{ type: 'text', text: t }] });
const anyArgs = { parse: (a: JsonObject) => a };

function runtimeWith(store: TaskStore, handlers: Record<string, TaskHandler<any>>) {
  const runtime = new TaskRuntime(store, { logger: silentLogger, onError: (e) => assert.fail(String(e)) });
  for (const [name, handler] of Object.entries(handlers)) runtime.register(name, { ...anyArgs, handler });
  return runtime;
}

/** Polls every 10 ms for up to 5 s. */
const soon = { timeoutMs: 5000, intervalMs: 10 };

describe('runtime', () => {
  it('completes a task with the handler result', async () => {
    const store = openStore('memory:');
    const runtime = runtimeWith(store, { echo: async (args) => text(`hello ${args.who}`) });
    const task = await runtime.submit({ owner: null, tool: 'echo', arguments: { who: 'you' }, errorResultStatus: 'failed' });
    const done = await runtime.waitForTerminal(task.taskId, null);
    assert.equal(done?.status, 'completed');
    assert.deepEqual(done?.outcome, { type: 'result', result: text('hello you') });
    await runtime.close();
  });

  it('fails a task whose handler throws, with the message, and with a TaskRpcError verbatim', async () => {
    const store = openStore('memory:');
    const runtime = runtimeWith(store, {
      boom: async () => {
        throw new Error('ERP unreachable');
      },
      rpc: async () => {
        throw new TaskRpcError(-32602, 'bad invoice', { field: 'poNumber' });
      },
      soft: async () => ({ ...text('soft failure'), isError: true }),
    });
    const boom = await runtime.waitForTerminal((await runtime.submit({ owner: null, tool: 'boom', arguments: {}, errorResultStatus: 'failed' })).taskId, null);
    assert.equal(boom?.status, 'failed');
    assert.equal(boom?.statusMessage, 'ERP unreachable');
    assert.deepEqual(boom?.outcome, { type: 'result', result: { content: [{ type: 'text', text: 'ERP unreachable' }], isError: true } });
    const rpc = await runtime.waitForTerminal((await runtime.submit({ owner: null, tool: 'rpc', arguments: {}, errorResultStatus: 'failed' })).taskId, null);
    assert.deepEqual(rpc?.outcome, { type: 'error', error: { code: -32602, message: 'bad invoice', data: { field: 'poNumber' } } });
    const soft2025 = await runtime.waitForTerminal(
      (await runtime.submit({ owner: null, tool: 'soft', arguments: {}, errorResultStatus: 'failed' })).taskId,
      null,
    );
    assert.equal(soft2025?.status, 'failed', 'isError results fail tasks created over 2025-11-25');
    const soft2026 = await runtime.waitForTerminal(
      (await runtime.submit({ owner: null, tool: 'soft', arguments: {}, errorResultStatus: 'completed' })).taskId,
      null,
    );
    assert.equal(soft2026?.status, 'completed', 'isError results complete tasks of the 2026-07-28 extension');
    await runtime.close();
  });

  it('refuses unknown tools and arguments the parser rejects, storing nothing', async () => {
    const store = openStore('memory:');
    const runtime = new TaskRuntime(store, { logger: silentLogger });
    runtime.register('strict', {
      parse: (a) => {
        if (typeof a.x !== 'number') throw new Error('x must be a number');
        return a;
      },
      handler: async () => text('ok'),
    });
    await assert.rejects(runtime.submit({ owner: null, tool: 'nope', arguments: {}, errorResultStatus: 'failed' }), /Unknown task tool/);
    await assert.rejects(runtime.submit({ owner: null, tool: 'strict', arguments: { x: 'one' }, errorResultStatus: 'failed' }), /x must be a number/);
    assert.equal((await store.list(null)).tasks.length, 0);
    await runtime.close();
  });

  it('replays journaled steps, timers and answers after a restart instead of redoing them', async () => {
    const url = dbUrl();
    const calls = { a: 0, b: 0 };
    const handler: TaskHandler<any> = async (_args, ctx) => {
      const a = await ctx.step('a', () => ++calls.a);
      await ctx.sleep(300);
      const answer = await ctx.elicit('Approve?', { type: 'object', properties: { ok: { type: 'boolean' } } });
      const b = await ctx.step('b', () => ++calls.b);
      return text(`a=${a} b=${b} answer=${answer.action}`);
    };

    const store1 = openStore(url);
    const first = runtimeWith(store1, { flow: handler });
    const task = await first.submit({ owner: 'alice', tool: 'flow', arguments: {}, errorResultStatus: 'failed' });
    await until(async () => (await store1.get(task.taskId, ENGINE_ACCESS)).statusMessage?.startsWith('Waiting until'), { ...soon, what: 'the timer' });
    const timerJournal = (await store1.readJournal(task.taskId)).get('timer:1') as { value: number };
    await first.close();
    await store1.close();

    // Second life: the step is not re-run, the timer keeps its original deadline.
    const store2 = openStore(url);
    const second = runtimeWith(store2, { flow: handler });
    assert.equal(await second.recover(), 1);
    const waiting = await until(
      async () => {
        const t = await store2.get(task.taskId, ENGINE_ACCESS);
        return t.status === 'input_required' && t;
      },
      { ...soon, what: 'input_required' },
    );
    assert.ok(Date.now() >= timerJournal.value, 'did not wake before the journaled deadline');
    assert.deepEqual(Object.keys(waiting.inputRequests), ['elicit-2']);
    await second.close();
    await store2.close();

    // Third life: answered while nothing runs (e.g. from a new connection), then recovered.
    const store3 = openStore(url);
    assert.equal(await store3.answerInput(task.taskId, 'elicit-2', { action: 'accept', content: { ok: true } }, 'alice'), true);
    const third = runtimeWith(store3, { flow: handler });
    await third.recover();
    const done = await third.waitForTerminal(task.taskId, 'alice');
    assert.equal(done?.status, 'completed');
    assert.deepEqual(done?.outcome, { type: 'result', result: text('a=1 b=1 answer=accept') });
    assert.deepEqual(calls, { a: 1, b: 1 }, 'each step ran exactly once across three runs');
    await third.close();
    await store3.close();
  });

  it('retries a step on transient errors when asked, journaling only the final outcome', async () => {
    const store = openStore('memory:');
    let attempts = 0;
    const runtime = runtimeWith(store, {
      transient: async (_a, ctx) => {
        const value = await ctx.step(
          'flaky',
          () => {
            if (++attempts < 3) throw new Error('database is locked');
            return 'ok';
          },
          { retries: 3, retryDelayMs: 5 },
        );
        return text(value);
      },
    });
    const task = await runtime.submit({ owner: null, tool: 'transient', arguments: {}, errorResultStatus: 'failed' });
    const done = await runtime.waitForTerminal(task.taskId, null);
    assert.deepEqual(done?.outcome, { type: 'result', result: text('ok') });
    assert.equal(attempts, 3);
    const { startedAt, endedAt, seq, ...flaky } = (await store.readJournal(task.taskId)).get('step:flaky') as Record<string, string>;
    assert.deepEqual(flaky, { ok: true, value: 'ok' });
    assert.equal(seq, 1, 'the first journaled call of the run');
    assert.ok(Date.parse(startedAt!) <= Date.parse(endedAt!), 'the step records when it started and ended (the console’s timeline)');
    await runtime.close();
  });

  it('replays a failed step as the same error', async () => {
    const store = openStore('memory:');
    let runs = 0;
    const runtime = runtimeWith(store, {
      flaky: async (_a, ctx) => {
        try {
          await ctx.step('charge', () => {
            runs++;
            throw new Error('card declined');
          });
        } catch (e) {
          return text(`caught: ${(e as Error).message}`);
        }
        return text('unreachable');
      },
    });
    const task = await runtime.submit({ owner: null, tool: 'flaky', arguments: {}, errorResultStatus: 'failed' });
    const done = await runtime.waitForTerminal(task.taskId, null);
    assert.deepEqual(done?.outcome, { type: 'result', result: text('caught: card declined') });
    const { startedAt, endedAt, seq, ...charge } = (await store.readJournal(task.taskId)).get('step:charge') as Record<string, unknown>;
    assert.deepEqual(charge, { ok: false, error: { name: 'Error', message: 'card declined' } });
    assert.ok(typeof startedAt === 'string' && typeof endedAt === 'string');
    assert.equal(typeof seq, 'number');
    assert.equal(runs, 1);
    await runtime.close();
  });

  it('cancellation fires ctx.signal, stops the work, and the late result cannot change the status', async () => {
    const store = openStore('memory:');
    let sawAbort = false;
    let afterSleep = false;
    const runtime = runtimeWith(store, {
      slow: async (_a, ctx) => {
        ctx.signal.addEventListener('abort', () => (sawAbort = true));
        try {
          await ctx.sleep(60_000);
          afterSleep = true;
        } catch {
          /* a careless handler that swallows the abort and returns a result anyway */
        }
        return text('finished anyway');
      },
    });
    const task = await runtime.submit({ owner: 'alice', tool: 'slow', arguments: {}, errorResultStatus: 'failed' });
    await until(async () => (await store.get(task.taskId, ENGINE_ACCESS)).statusMessage, { ...soon, what: 'sleeping' });
    await assert.rejects(runtime.cancel(task.taskId, 'mallory'), /not found/);
    const cancelled = await runtime.cancel(task.taskId, 'alice');
    assert.equal(cancelled.status, 'cancelled');
    await until(() => !runtime.isRunning(task.taskId), { ...soon, what: 'handler to stop' });
    assert.equal(sawAbort, true);
    assert.equal(afterSleep, false, 'the sleep was interrupted, not waited out');
    const final = await store.get(task.taskId, ENGINE_ACCESS);
    assert.equal(final.status, 'cancelled');
    assert.equal(final.outcome, undefined);
    await assert.rejects(runtime.cancel(task.taskId, 'alice'), /terminal/);
    await runtime.close();
  });

  it('a cancel written to the store by someone else aborts the running handler', async () => {
    const store = openStore('memory:');
    let aborted = false;
    const runtime = runtimeWith(store, {
      wait: async (_a, ctx) => {
        await ctx.elicit('?', { type: 'object', properties: {} }).catch(() => (aborted = true));
        return text('x');
      },
    });
    const task = await runtime.submit({ owner: null, tool: 'wait', arguments: {}, errorResultStatus: 'failed' });
    await until(async () => (await store.get(task.taskId, ENGINE_ACCESS)).status === 'input_required', { ...soon, what: 'input_required' });
    await store.cancel(task.taskId, ENGINE_ACCESS);
    await until(() => aborted, { ...soon, what: 'abort' });
    assert.equal((await store.get(task.taskId, ENGINE_ACCESS)).status, 'cancelled');
    await runtime.close();
  });

  it('fails a recovered task whose tool is no longer registered, so nothing stays working forever', async () => {
    const url = dbUrl();
    const store1 = openStore(url);
    const task = await store1.create({ owner: null, request: { tool: 'gone', arguments: {} }, errorResultStatus: 'failed' });
    await store1.close();
    const store2 = openStore(url);
    const runtime = new TaskRuntime(store2, { logger: silentLogger });
    await runtime.recover();
    const done = await runtime.waitForTerminal(task.taskId, null);
    assert.equal(done?.status, 'failed');
    assert.match(done?.statusMessage ?? '', /No handler is registered for tool 'gone'/);
    await runtime.close();
    await store2.close();
  });

  it('renews leases only where other processes could take a task over', async () => {
    for (const [url, shared] of [
      ['memory:', false],
      [`${dbUrl()}?shared=true`, true],
    ] as const) {
      const store = openStore(url);
      const runtime = new TaskRuntime(store, { leaseMs: 60, logger: silentLogger, onError: (e) => assert.fail(String(e)) });
      runtime.register('wait', { ...anyArgs, handler: async (_a, ctx) => (await ctx.sleep(60_000), text('x')) });
      const task = await runtime.submit({ owner: null, tool: 'wait', arguments: {}, errorResultStatus: 'failed' });
      const settled = await until(
        async () => ((await store.get(task.taskId, ENGINE_ACCESS)).statusMessage?.startsWith('Waiting') ? store.get(task.taskId, ENGINE_ACCESS) : undefined),
        { ...soon, what: 'sleeping' },
      );
      await new Promise((r) => setTimeout(r, 300)); // deliberate: ~15 lease periods pass, in which renewals would show as new versions
      const later = await store.get(task.taskId, ENGINE_ACCESS);
      if (shared) assert.ok(later.version > settled.version, 'a shared store keeps the lease alive');
      else assert.equal(later.version, settled.version, 'an exclusive store writes no renewals');
      await runtime.close();
      await store.close();
    }
  });

  it('writes every journal key as existing databases spell it', async () => {
    const url = dbUrl();
    const handler: TaskHandler<any> = async (_args, ctx) => {
      await ctx.step('charge', () => 'ok');
      await ctx.sleep(1);
      const due = await ctx.step('due', () => new Date(Date.now() + 50).toISOString());
      await ctx.sleepUntil(due);
      const { elicitationId } = await ctx.elicitUrl('Pay at the bank', 'https://bank.example/pay', { key: 'pay' });
      return text(elicitationId);
    };
    const start = (store: TaskStore, instanceId: string) => {
      const runtime = new TaskRuntime(store, { logger: silentLogger, instanceId, onError: (e) => assert.fail(String(e)) });
      runtime.register('keys', { ...anyArgs, handler });
      return runtime;
    };
    const asking = async (store: TaskStore, taskId: string) =>
      until(
        async () => {
          const task = await store.get(taskId, ENGINE_ACCESS);
          return task.status === 'input_required' && task;
        },
        { ...soon, what: 'the URL question' },
      );

    const store1 = openStore(url);
    const first = start(store1, 'first');
    const { taskId } = await first.submit({ owner: null, tool: 'keys', arguments: {}, errorResultStatus: 'failed' });
    await asking(store1, taskId);
    await first.close();
    await store1.close();

    // A restart (run:), the answer (input:, answered:), the flow's completion (elicitation-complete:).
    const store2 = openStore(url);
    const second = start(store2, 'second');
    assert.equal(await second.recover(), 1);
    const waiting = await asking(store2, taskId);
    const request = waiting.inputRequests.pay as { elicitationId: string };
    assert.equal(await second.provideInput(taskId, 'pay', { action: 'accept' }, null), true);
    await until(async () => (await store2.get(taskId, ENGINE_ACCESS)).statusMessage?.includes('bank.example'), { ...soon, what: 'the wait for the flow' });
    assert.equal(await second.completeElicitation(taskId, request.elicitationId, ENGINE_ACCESS), true);
    assert.equal((await second.waitForTerminal(taskId, null))?.status, 'completed');
    const cancelled = await store2.create({ owner: null, request: { tool: 'keys', arguments: {} }, errorResultStatus: 'failed' });
    await store2.cancel(cancelled.taskId, ENGINE_ACCESS);

    const journal = await store2.readJournal(taskId);
    const due = (journal.get('step:due') as { value: string }).value;
    const keys = [...journal.keys()].map((key) => (/^run:\d{4}-\d\d-\d\dT[\d:.]+Z:second$/.test(key) ? 'run:<at>:second' : key));
    assert.deepEqual(
      keys.sort(),
      [
        'step:charge',
        'timer:1',
        'step:due',
        `until:${due}`,
        'elicitation-id:pay',
        'asked:pay',
        'run:<at>:second',
        'input:pay',
        'answered:pay',
        `elicitation-complete:${request.elicitationId}`,
      ].sort(),
    );
    assert.deepEqual([...(await store2.readJournal(cancelled.taskId)).keys()], ['cancelled']);
    await second.close();
    await store2.close();
  });

  it('rejects a step name used twice in one run', async () => {
    const store = openStore('memory:');
    const runtime = runtimeWith(store, {
      dup: async (_a, ctx) => {
        await ctx.step('x', () => 1);
        await ctx.step('x', () => 2);
        return text('no');
      },
    });
    const done = await runtime.waitForTerminal((await runtime.submit({ owner: null, tool: 'dup', arguments: {}, errorResultStatus: 'failed' })).taskId, null);
    assert.equal(done?.status, 'failed');
    assert.match(done?.statusMessage ?? '', /used twice/);
    await runtime.close();
  });
});
