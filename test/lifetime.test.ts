/**
 * Issue 15: a server that runs for months. Sessions have a lifetime and caps, a store write reaches
 * only its own task's watchers, waiting tasks hold no timer of their own, everything a burst of
 * lifecycles, disconnects and aborted waits leaves behind is released, and overload is answered
 * with 503 + Retry-After (which the CLI honours).
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { ENGINE_ACCESS } from '../src/core/access.js';
import { silentLogger } from '../src/core/log.js';
import { TaskRuntime, type TaskToolResult } from '../src/runtime/runtime.js';
import { TimerQueue } from '../src/runtime/timer-queue.js';
import { Sessions2025 } from '../src/server/sessions-2025.js';
import { openStore } from '../src/store/open-store.js';
import type { TaskStore } from '../src/store/task-store.js';
import { ModernRawClient } from './helpers/modern-client.js';
import { RawMcpClient, type RpcMessage } from './helpers/raw-client.js';
import { sseMessages } from '../src/client/sse.js';
import { startTestServer } from './helpers/test-server.js';
import { until } from './helpers/until.js';

const dir = mkdtempSync(join(tmpdir(), 'mcp-tasks-lifetime-'));
after(() => rmSync(dir, { recursive: true, force: true }));

/** Live `setTimeout`/`setInterval` handles of this process. */
const timeouts = () => process.getActiveResourcesInfo().filter((type) => type === 'Timeout').length;
/** Live timers of the process and the store's listeners: what must come back after a burst. */
const baseline = (store: TaskStore) => ({ timeouts: timeouts(), listeners: store.listenerCounts() });

/**
 * Waits until timers are at most, and listeners exactly, what `base` had — within 3 s, sooner than
 * any request's 5 s safety timer would expire by itself: released, not expired.
 */
async function backToBaseline(store: TaskStore, base: ReturnType<typeof baseline>, what: string): Promise<void> {
  let last = '';
  await until(
    () => {
      const now = baseline(store);
      last = JSON.stringify({ base, now });
      return now.timeouts <= base.timeouts && JSON.stringify(now.listeners) === JSON.stringify(base.listeners);
    },
    { what: () => `${what}: ${last}`, timeoutMs: 3_000 },
  );
}

const text = (t: string): TaskToolResult => ({ content: [{ type: 'text', text: t }] });
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

describe('2025-11-25 sessions have a lifetime', () => {
  it('an idle session is closed; its id then gets HTTP 404, and a new session reads the task it created', async () => {
    // 1 s idle: a client under load (other test files on the same cores) still makes its call in time.
    const server = await startTestServer('memory:', { listen: { sessions: { idleTimeoutMs: 1_000 } } });
    try {
      const first = new RawMcpClient(server.url);
      await first.initialize();
      const created = await first.request('tools/call', { name: 'echo', arguments: { text: 'kept' }, task: {} });
      const taskId = created.result.task.taskId as string;
      assert.equal(server.stats().sessions, 1);
      await until(() => server.stats().sessions === 0, { what: 'the idle session closed' });
      const stale = await first.post({ jsonrpc: '2.0', id: 9, method: 'tasks/get', params: { taskId } });
      assert.equal(stale.status, 404, 'a closed session is unknown (the client initializes again)');
      const second = new RawMcpClient(server.url);
      await second.initialize();
      const result = await second.request('tasks/result', { taskId });
      assert.match(JSON.stringify(result.result), /kept/, 'the task outlived the session');
    } finally {
      await server.close();
    }
  });

  it('a session with its GET stream open is not idle; it is closed once the stream ends', async () => {
    // 500 ms idle: a client under load still opens its stream in time.
    const server = await startTestServer('memory:', { listen: { sessions: { idleTimeoutMs: 500 } } });
    try {
      const client = new RawMcpClient(server.url);
      await client.initialize();
      const controller = new AbortController();
      const stream = await fetch(server.url, {
        headers: { accept: 'text/event-stream', 'mcp-session-id': client.sessionId!, 'mcp-protocol-version': '2025-11-25' },
        signal: controller.signal,
      });
      assert.equal(stream.status, 200);
      await sleep(2_000); // deliberate: four idle timeouts pass while the stream is open
      assert.equal(server.stats().sessions, 1, 'four idle timeouts passed while the stream was open');
      controller.abort();
      await until(() => server.stats().sessions === 0, { what: 'the session closed after its stream ended' });
    } finally {
      await server.close();
    }
  });

  it('caps sessions, closing the least recently used idle one; with all in use it answers 503 + Retry-After', async () => {
    const server = await startTestServer('memory:', { listen: { sessions: { idleTimeoutMs: 0, max: 2 } } });
    const streams: AbortController[] = [];
    try {
      const open = async () => {
        const client = new RawMcpClient(server.url);
        await client.initialize();
        return client;
      };
      const alive = async (client: RawMcpClient) => (await client.post({ jsonrpc: '2.0', id: 99, method: 'ping' })).status !== 404;
      const [s1, s2] = [await open(), await open()];
      const s3 = await open();
      assert.equal(server.stats().sessions, 2);
      assert.equal(await alive(s1), false, 'the oldest idle session made room');
      assert.equal(await alive(s2), true);
      // s2 was used last: the next session closes s3.
      const s4 = await open();
      assert.equal(await alive(s3), false, 'the least recently used one went');
      assert.equal(await alive(s2), true);
      // Both remaining sessions hold a GET stream: none can be closed, the new one is refused.
      for (const client of [s2, s4]) {
        const controller = new AbortController();
        streams.push(controller);
        const stream = await fetch(server.url, {
          headers: { accept: 'text/event-stream', 'mcp-session-id': client.sessionId!, 'mcp-protocol-version': '2025-11-25' },
          signal: controller.signal,
        });
        assert.equal(stream.status, 200);
      }
      const refused = await new RawMcpClient(server.url).post({
        jsonrpc: '2.0',
        id: 1,
        method: 'initialize',
        params: { protocolVersion: '2025-11-25', capabilities: {}, clientInfo: { name: 'late', version: '0' } },
      });
      assert.equal(refused.status, 503);
      assert.equal(refused.headers.get('retry-after'), '1');
      const body = (await refused.json()) as { error: { code: number; message: string }; id: unknown };
      assert.equal(body.error.code, -32000);
      assert.match(body.error.message, /busy/);
      assert.equal(body.id, 1);
      assert.equal(server.stats().sessions, 2);
      assert.equal(await alive(s4), true, 'the sessions in use are untouched');
    } finally {
      for (const controller of streams) controller.abort();
      await server.close();
    }
  });

  it('initializes under way count against the cap (no overshoot); one the transport refuses leaves nothing behind', async () => {
    const sessions = new Sessions2025(silentLogger, { idleTimeoutMs: 0, max: 3, maxPerPrincipal: 2 });
    const pending = [sessions.reserve(null), sessions.reserve(null), sessions.reserve(null)];
    assert.ok(pending.every(Boolean), 'three initializes under way');
    assert.equal(sessions.reserve(null), undefined, 'a fourth is refused although no session exists yet');
    pending[0]!();
    pending[0]!(); // releasing twice frees one place only
    const fourth = sessions.reserve(null);
    assert.ok(fourth);
    assert.equal(sessions.reserve(null), undefined);
    for (const release of [...pending, fourth]) release!();
    // The per-principal cap applies to authenticated principals; anonymous clients are everyone.
    assert.ok(sessions.reserve('alice') && sessions.reserve('alice'));
    assert.equal(sessions.reserve('alice'), undefined, 'alice holds her 2');
    assert.ok(sessions.reserve(null), 'the total (3) still has room');
    await sessions.closeAll();

    const server = await startTestServer('memory:');
    try {
      const base = server.store.listenerCounts();
      const refused = await fetch(server.url, {
        method: 'POST',
        headers: { 'content-type': 'application/json', accept: 'application/json' }, // no text/event-stream
        body: JSON.stringify({
          jsonrpc: '2.0',
          id: 1,
          method: 'initialize',
          params: { protocolVersion: '2025-11-25', capabilities: {}, clientInfo: { name: 'x', version: '0' } },
        }),
      });
      assert.equal(refused.status, 406);
      await refused.body?.cancel();
      assert.equal(server.stats().sessions, 0);
      assert.deepEqual(server.store.listenerCounts(), base);
    } finally {
      await server.close();
    }
  });

  it('a question is pushed only on an open GET stream: asked when the stream opens, not dropped before it', async () => {
    const server = await startTestServer('memory:');
    const controller = new AbortController();
    try {
      const client = new RawMcpClient(server.url);
      await client.initialize();
      const taskId = (await client.request('tools/call', { name: 'ask', arguments: { question: 'later?' }, task: {} })).result.task.taskId;
      await until(async () => (await client.request('tasks/get', { taskId })).result.status === 'input_required');
      // Polled while no stream was open: the question waits for one (it was not sent into the void).
      const stream = await fetch(server.url, {
        headers: { accept: 'text/event-stream', 'mcp-session-id': client.sessionId!, 'mcp-protocol-version': '2025-11-25' },
        signal: controller.signal,
      });
      assert.equal(stream.status, 200);
      for await (const message of sseMessages<RpcMessage>(stream)) {
        if (message.method !== 'elicitation/create') continue;
        assert.equal(message.params.message, 'later?');
        assert.equal(message.params._meta['io.modelcontextprotocol/related-task'].taskId, taskId);
        const answered = await client.post({ jsonrpc: '2.0', id: message.id, result: { action: 'accept', content: { reply: 'now' } } });
        assert.equal(answered.status, 202);
        break;
      }
      assert.match(JSON.stringify((await client.request('tasks/result', { taskId })).result), /reply: now/);
    } finally {
      controller.abort();
      await server.close();
    }
  });

  it("a task's write reaches only the sessions watching that task: no per-session store listener", async () => {
    const server = await startTestServer('memory:');
    try {
      const before = server.store.listenerCounts();
      const clients: RawMcpClient[] = [];
      for (let i = 0; i < 20; i++) {
        const client = new RawMcpClient(server.url);
        await client.initialize({});
        clients.push(client);
        await client.request('tools/call', { name: 'ask', arguments: { question: `q${i}` }, task: {} });
      }
      const during = server.store.listenerCounts();
      assert.equal(during.changeListeners, before.changeListeners, 'twenty sessions added no store-wide listener');
      // Each waiting task: the runtime following its run (cancellation, lease), its handler's wait,
      // and the one session that created (watches) it.
      assert.equal(during.tasks, 20);
      assert.equal(during.taskListeners, 60);
    } finally {
      await server.close();
    }
  });

  it('a quiet session goes dormant and wakes on its next request as it was: same id, same capabilities, questions delivered', async () => {
    // 50 ms: every pause below puts a quiet session to sleep (the sweep runs every 12 ms).
    const server = await startTestServer('memory:', { listen: { sessions: { dormantAfterMs: 50 } } });
    const controller = new AbortController();
    try {
      const base = server.store.listenerCounts();
      // Declares form elicitation: a woken session must still be asked its task's question.
      const client = new RawMcpClient(server.url);
      await client.initialize();
      const sessionId = client.sessionId;
      await until(() => server.stats().dormant === 1, { what: 'the quiet session went dormant' });
      assert.deepEqual(server.store.listenerCounts(), base, 'a dormant session holds no listener');

      // Woken by a task call (the fast path); the task it watches keeps it awake.
      const taskId = (await client.request('tools/call', { name: 'ask', arguments: { question: 'awake?' }, task: {} })).result.task.taskId;
      assert.equal(client.sessionId, sessionId);
      assert.equal(server.stats().dormant, 0);
      await until(async () => (await client.request('tasks/get', { taskId })).result.status === 'input_required');
      await sleep(300);
      assert.deepEqual([server.stats().sessions, server.stats().dormant], [1, 0], 'a session watching a task stays awake');
      const stream = await fetch(server.url, {
        headers: { accept: 'text/event-stream', 'mcp-session-id': sessionId!, 'mcp-protocol-version': '2025-11-25' },
        signal: controller.signal,
      });
      assert.equal(stream.status, 200);
      for await (const message of sseMessages<RpcMessage>(stream)) {
        if (message.method !== 'elicitation/create') continue;
        assert.equal(message.params.message, 'awake?');
        assert.equal((await client.post({ jsonrpc: '2.0', id: message.id, result: { action: 'accept', content: { reply: 'yes' } } })).status, 202);
        break;
      }
      assert.match(JSON.stringify((await client.request('tasks/result', { taskId })).result), /reply: yes/);
      controller.abort();

      // A session that only ever made the initialize exchange and fast-path calls sleeps again and
      // answers as before; one the SDK served anything else (tools/list here) stays awake.
      const other = new RawMcpClient(server.url);
      await other.initialize({});
      await until(() => server.stats().dormant === 1, { what: 'the new quiet session went dormant' });
      const echoed = await other.request('tools/call', { name: 'echo', arguments: { text: 'hi' }, task: {} });
      await until(async () => (await other.request('tasks/get', { taskId: echoed.result.task.taskId })).result.status === 'completed');
      await until(() => server.stats().dormant === 1, { what: 'the quiet session went dormant again' });
      const tools = await other.request('tools/list');
      assert.ok(tools.result.tools.some((tool: { name: string }) => tool.name === 'plain'));
      assert.equal((await other.post({ jsonrpc: '2.0', id: 99, method: 'ping' })).status, 200);
      await sleep(300);
      assert.equal(server.stats().sessions, 2);
      assert.equal(server.stats().dormant, 0, 'neither session is quiet: one held a GET stream, the other was served tools/list');

      // DELETE of a dormant session ends it.
      const third = new RawMcpClient(server.url);
      await third.initialize({});
      await until(() => server.stats().dormant === 1, { what: 'the third session went dormant' });
      const deleted = await fetch(server.url, { method: 'DELETE', headers: { 'mcp-session-id': third.sessionId!, 'mcp-protocol-version': '2025-11-25' } });
      assert.equal(deleted.status, 200);
      assert.equal(server.stats().sessions, 2);
      assert.equal((await third.post({ jsonrpc: '2.0', id: 1, method: 'ping' })).status, 404);
    } finally {
      controller.abort();
      await server.close();
    }
  });
});

describe('everything is released', () => {
  it('after a burst of lifecycles, disconnects and aborted waits in both eras, timers, listeners and sessions return to their baseline', async () => {
    // Idle sessions close after 2 s: long enough that a client under load (other test files on the
    // same cores) is not closed between its initialize and its next request.
    const server = await startTestServer('memory:', { listen: { sessions: { idleTimeoutMs: 2_000 } }, syncWaitMs: 5_000 });
    try {
      // Warm-up: one lifecycle per era, so lazily made process-wide timers exist in the baseline.
      const warm = new RawMcpClient(server.url);
      await warm.initialize();
      await warm.request('tools/call', { name: 'echo', arguments: { text: 'warm' }, task: {} });
      await new ModernRawClient(server.url).request('tools/call', { name: 'echo', arguments: { text: 'warm' } });
      await until(() => server.stats().sessions === 0, { what: 'the warm-up session closed' });
      const base = baseline(server.store);

      const waiting: string[] = [];
      await Promise.all(
        Array.from({ length: 12 }, async (_, i) => {
          // 2025: a whole lifecycle on a session that is never deleted.
          const client = new RawMcpClient(server.url);
          await client.initialize();
          const taskId = (await client.request('tools/call', { name: 'echo', arguments: { text: `e${i}` }, task: {} })).result.task.taskId;
          await client.request('tasks/get', { taskId });
          await client.request('tasks/result', { taskId });
          // 2025: a tasks/result the client walks away from while the task waits for input.
          const asking = new RawMcpClient(server.url);
          await asking.initialize({});
          const askId = (await asking.request('tools/call', { name: 'ask', arguments: { question: 'left?' }, task: {} })).result.task.taskId;
          waiting.push(askId);
          // The server has taken the request once its stream's headers arrive (before any answer exists): then the client goes away.
          const walkAway = new AbortController();
          const response = await fetch(server.url, {
            method: 'POST',
            headers: {
              'content-type': 'application/json',
              accept: 'application/json, text/event-stream',
              'mcp-protocol-version': '2025-11-25',
              'mcp-session-id': asking.sessionId!,
            },
            body: JSON.stringify({ jsonrpc: '2.0', id: 50, method: 'tasks/result', params: { taskId: askId } }),
            signal: walkAway.signal,
          });
          walkAway.abort();
          await response.body?.cancel().catch(() => undefined);
          // 2026: a lifecycle, and a call that waits for input which the client abandons.
          const modern = new ModernRawClient(server.url);
          await modern.request('tools/call', { name: 'echo', arguments: { text: `m${i}` } });
          // …and from a client that declared no elicitation (its calls first check for questions it could not answer).
          await new ModernRawClient(server.url, true, undefined, {}).request('tools/call', { name: 'echo', arguments: { text: `n${i}` } });
          await new ModernRawClient(server.url, true, 100).request('tools/call', { name: 'ask', arguments: { question: 'gone?' } }).catch(() => undefined);
        }),
      );
      // The abandoned 2026 asks are tasks too: end every waiting task, as an owner would.
      const unfinished = (await server.store.listUnfinished()).map((task) => task.taskId);
      assert.ok(unfinished.length >= waiting.length, 'the abandoned questions still wait: a walk-away is not an answer');
      for (const taskId of unfinished) await server.runtime.cancel(taskId, null);

      await until(() => server.stats().sessions === 0 && server.stats().requests === 0, { what: 'sessions and requests released', timeoutMs: 15_000 });
      await backToBaseline(server.store, base, 'timers and listeners back at baseline');
    } finally {
      await server.close();
    }
  });
});

describe('abandoned streams', () => {
  it('a 2026 subscriptions/listen the client walks away from releases its listeners and keep-alive timer', async () => {
    const server = await startTestServer('memory:');
    try {
      const created = await new ModernRawClient(server.url).request('tools/call', { name: 'ask', arguments: { question: 'watched?' } });
      const taskId = (created.result as { taskId?: string } | undefined)?.taskId ?? (await server.store.listUnfinished())[0]!.taskId;
      await until(async () => (await server.store.get(taskId, ENGINE_ACCESS)).status === 'input_required');
      // Settled: no request open; the runtime follows the task and its handler waits for the answer.
      await until(() => server.stats().requests === 0 && server.store.listenerCounts().taskListeners === 2, {
        what: () => `the question waiting, nothing else open: ${JSON.stringify({ ...server.stats(), ...server.store.listenerCounts() })}`,
      });
      const base = baseline(server.store);
      for (let i = 0; i < 5; i++) {
        const stream = await new ModernRawClient(server.url).send('subscriptions/listen', { notifications: { taskIds: [taskId] } });
        const reader = stream.body!.getReader();
        await reader.read(); // the acknowledgement: the subscription is live
        await reader.cancel(); // the client goes away
      }
      await backToBaseline(server.store, base, 'subscriptions released');
    } finally {
      await server.close();
    }
  });
});

describe('waiting costs nothing while nothing happens', () => {
  it('600 tasks asleep or waiting for input hold one timer between them; short sleeps wake in order, and again after a restart', async () => {
    const store = openStore('memory:', { logger: silentLogger });
    const register = (runtime: TaskRuntime, woke: string[]) => {
      runtime.register('nap', {
        parse: (args) => args,
        handler: async (args: { ms: number; name: string }, ctx) => {
          await ctx.sleep(args.ms);
          woke.push(args.name);
          return text('rested');
        },
      });
      runtime.register('ask', {
        parse: (args) => args,
        handler: async (_args, ctx) => {
          const answer = await ctx.elicit('ok?', { type: 'object', properties: {} });
          return text(answer.action);
        },
      });
    };
    const woke: string[] = [];
    const first = new TaskRuntime(store, { logger: silentLogger, purgeIntervalMs: 0 });
    register(first, woke);
    const base = timeouts();
    for (let i = 0; i < 300; i++) await first.submit({ owner: null, tool: 'nap', arguments: { ms: 3_600_000, name: `long${i}` }, errorResultStatus: 'failed' });
    for (let i = 0; i < 300; i++) await first.submit({ owner: null, tool: 'ask', arguments: {}, errorResultStatus: 'failed' });
    await until(async () => (await store.listUnfinished()).filter((task) => task.status === 'input_required').length === 300, {
      what: '300 questions asked',
      timeoutMs: 60_000,
    });
    await until(() => store.listenerCounts().taskListeners === 900, { what: 'the askers waiting', timeoutMs: 60_000 });
    await sleep(50); // deliberate: time for a stray timer to be armed, if waiting armed any
    assert.ok(timeouts() - base <= 1, `600 waiting tasks added ${timeouts() - base} timers (one expected)`);
    assert.equal(store.listenerCounts().tasks, 600);
    assert.equal(store.listenerCounts().taskListeners, 900, 'one listener per running task (the runtime follows it), one more per task waiting for input');

    // Short sleeps among the long ones wake in due order.
    for (const [name, ms] of [
      ['c', 240],
      ['a', 80],
      ['b', 160],
    ] as const)
      await first.submit({ owner: null, tool: 'nap', arguments: { ms, name }, errorResultStatus: 'failed' });
    await until(() => woke.length === 3, { what: 'three short sleepers woke' });
    assert.deepEqual(woke, ['a', 'b', 'c']);

    // A restart re-arms every timer from the journal, still on one timer, keeping the original deadlines.
    await first.submit({ owner: null, tool: 'nap', arguments: { ms: 300, name: 'across-restart' }, errorResultStatus: 'failed' });
    await first.close();
    assert.ok(timeouts() - base <= 0, 'a closed runtime holds no timer');
    assert.equal(store.listenerCounts().taskListeners, 0, 'nor any listener');
    const second = new TaskRuntime(store, { logger: silentLogger, purgeIntervalMs: 0 });
    register(second, woke);
    assert.equal(await second.recover(), 601);
    // 300 askers (two listeners each) and 301 sleepers — 300 once the short sleeper is due and woke
    // (its deadline kept from before the restart may already have passed on a loaded machine).
    await until(() => store.listenerCounts().taskListeners === (woke.includes('across-restart') ? 900 : 901), {
      what: 'the askers waiting again',
      timeoutMs: 60_000,
    });
    assert.ok(timeouts() - base <= 1, `601 resumed tasks hold ${timeouts() - base} timers`);
    await until(() => woke.includes('across-restart'), { what: 'the sleeper resumed after the restart woke' });
    await second.close();
    await store.close();
  });

  it('on a shared store a waiting task learns of an answer written by another process through the one periodic recheck', async () => {
    const file = join(dir, 'shared.db');
    const here = openStore(`sqlite:${file}?shared=true`, { logger: silentLogger, recheckMs: 100 });
    const elsewhere = openStore(`sqlite:${file}?shared=true`, { logger: silentLogger });
    const runtime = new TaskRuntime(here, { logger: silentLogger, purgeIntervalMs: 0 });
    runtime.register('ask', {
      parse: (args) => args,
      handler: async (_args, ctx) => text((await ctx.elicit('ok?', { type: 'object', properties: { yes: { type: 'boolean' } } })).action),
    });
    try {
      const task = await runtime.submit({ owner: 'olivia', tool: 'ask', arguments: {}, errorResultStatus: 'failed' });
      const asked = await until(async () => {
        const current = await elsewhere.get(task.taskId, ENGINE_ACCESS);
        return current.status === 'input_required' && current;
      });
      // The other process answers; SQLite has no notices between processes.
      await elsewhere.answerInputs(task.taskId, { [Object.keys(asked.inputRequests)[0]!]: { action: 'accept', content: { yes: true } } }, 'olivia');
      const done = await until(async () => {
        const current = await here.get(task.taskId, ENGINE_ACCESS);
        return current.status === 'completed' && current;
      });
      assert.equal(done.status, 'completed');
    } finally {
      await runtime.close();
      await here.close();
      await elsewhere.close();
    }
  });

  it('TimerQueue: one timer for many waits, in due order; an aborted wait rejects with its reason and is dropped', async () => {
    const queue = new TimerQueue();
    const base = timeouts();
    const order: number[] = [];
    const aborted = new AbortController();
    const waits = [60, 20, 40].map((ms) => queue.wait(Date.now() + ms, new AbortController().signal).then(() => order.push(ms)));
    const cancelled = Array.from({ length: 10 }, () => queue.wait(Date.now() + 3_600_000, aborted.signal));
    assert.equal(timeouts() - base, 1);
    assert.equal(queue.size, 13);
    aborted.abort(new Error('cancelled'));
    for (const wait of cancelled) await assert.rejects(wait, /cancelled/);
    assert.equal(queue.size, 3, 'aborted waits are dropped at once (compaction)');
    await Promise.all(waits);
    assert.deepEqual(order, [20, 40, 60]);
    assert.equal(queue.size, 0);
    assert.equal(timeouts() - base, 0, 'no timer left once nothing waits');
  });
});

describe('overload is answered, not queued', () => {
  it('a call holding the only slot gets the answer to its own question (no deadlock)', async () => {
    const server = await startTestServer('memory:', { listen: { maxConcurrentRequests: 1 }, syncWaitMs: 5_000 });
    try {
      const client = new RawMcpClient(server.url);
      await client.initialize();
      // Not a task: the call waits for its tool, which asks a question on the call's own stream.
      const result = await client.request('tools/call', { name: 'ask', arguments: { question: 'sure?' } }, async () => ({
        action: 'accept',
        content: { reply: 'yes' },
      }));
      assert.match(JSON.stringify(result.result), /reply: yes/, 'answered in the call, not handed off after the wait');
    } finally {
      await server.close();
    }
  });

  it('beyond maxConcurrentRequests: HTTP 503, Retry-After, JSON-RPC -32000, nothing done; the CLI waits and retries', async () => {
    const server = await startTestServer('memory:', { listen: { maxConcurrentRequests: 1 }, syncWaitMs: 5_000 });
    try {
      const holder = new RawMcpClient(server.url);
      await holder.initialize();
      const other = new RawMcpClient(server.url);
      await other.initialize();
      // A call without a task waits for its tool (a 1.5 s sleep): it holds the one slot.
      const holding = holder.request('tools/call', { name: 'slow', arguments: { ms: 1_500 } });
      await until(() => server.stats().requests === 1, { what: 'the slot taken' });
      const before = (await server.store.listAll({}, ENGINE_ACCESS)).tasks.length;
      const refused = await other.post({ jsonrpc: '2.0', id: 5, method: 'tools/call', params: { name: 'echo', arguments: { text: 'x' }, task: {} } });
      assert.equal(refused.status, 503);
      assert.equal(refused.headers.get('retry-after'), '1');
      const body = (await refused.json()) as { error: { code: number; message: string }; id: unknown };
      assert.deepEqual([body.error.code, body.id], [-32000, 5]);
      assert.equal((await server.store.listAll({}, ENGINE_ACCESS)).tasks.length, before, 'the refused call created nothing');
      // Answers to the server's questions and notifications are never refused: they lose nothing and deadlock nothing.
      const answer = await other.post({ jsonrpc: '2.0', id: 's-unknown', result: { action: 'accept', content: {} } });
      assert.equal(answer.status, 202, 'a JSON-RPC response is let through while the slot is taken');
      const notification = await other.post({ jsonrpc: '2.0', method: 'notifications/initialized' });
      assert.equal(notification.status, 202, 'a notification is let through too');

      // The CLI meets the same answer while the slot is taken, says so, and gets through afterwards.
      const journal = join(dir, 'cli-journal');
      const child = spawn(
        process.execPath,
        ['--import', 'tsx', 'src/cli/main.ts', 'call', server.url, 'echo', '--args', '{"text":"patient"}', '--journal', journal],
        {
          stdio: ['ignore', 'pipe', 'pipe'],
        },
      );
      let output = '';
      child.stdout.on('data', (chunk) => (output += chunk));
      child.stderr.on('data', (chunk) => (output += chunk));
      const keepBusy = (async () => {
        await holding;
        // Keep the slot taken until the CLI has been refused at least once.
        for (let i = 0; i < 20 && !/busy/.test(output); i++) await holder.request('tools/call', { name: 'slow', arguments: { ms: 800 } });
      })();
      const code = await new Promise<number | null>((resolve) => child.on('close', resolve));
      await keepBusy;
      assert.match(output, /the server is busy; retrying in 1 s/);
      assert.match(output, /patient/);
      assert.equal(code, 0, output);
    } finally {
      await server.close();
    }
  });
});
