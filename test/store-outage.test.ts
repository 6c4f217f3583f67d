/**
 * Issue 23 item 3, in-process: a task store that refuses every call (or answers only after its
 * driver's timeout) is a transient, bounded and declared condition. The backend here is a
 * `MemoryBackend` behind a switch (`OutageBackend`). While it is out, every request that needs the
 * store is answered HTTP 503 + `Retry-After` + JSON-RPC -32010 with `data.retryable` where the answer
 * is JSON (the fast path in both versions, the SDK's 2026-07-28 path, subscriptions, the fallback
 * tools), and with the same -32010 error inside the stream where the SDK has already opened an SSE
 * response with 200 (2025-11-25 requests the SDK serves, sessions and the stateless fallback); stdio
 * answers -32010; the operator console a 503 page. The process stays up, the log says it once
 * (one line when the outage starts, one when it ends, no per-request error or stack), and once the
 * store is back the same requests succeed with the stored state as it was. The CLI keeps an answer
 * the server could not take and finishes the task; a task-creating call it does not send twice.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { after, before, describe, it } from 'node:test';
import { InMemoryTransport, type JSONRPCMessage } from '@modelcontextprotocol/server';
import * as z from 'zod';
import { ENGINE_ACCESS } from '../src/core/access.js';
import { createLogger } from '../src/core/log.js';
import type { Json } from '../src/core/json.js';
import type { Fence, TaskRecord } from '../src/core/task.js';
import { sseMessages } from '../src/client/sse.js';
import { KnownTasks } from '../src/client/known-tasks.js';
import { createTaskServer, type TaskServer } from '../src/server/task-server.js';
import type { ListQuery, OperatorListQuery, StoreBackend } from '../src/store/backend.js';
import { MemoryBackend } from '../src/store/memory-backend.js';
import { TaskStore } from '../src/store/task-store.js';
import { ModernRawClient } from './helpers/modern-client.js';
import { RawMcpClient, postInSession, type RpcMessage } from './helpers/raw-client.js';
import { until } from './helpers/until.js';

/** How a call of `OutageBackend` goes: through, refused at once, or answered by the driver's timeout after `HANG_MS`. */
type Mode = 'up' | 'refuse' | 'hang';
/** The stand-in for a driver's query timeout in `hang` mode, in ms (real backends: 3 s connect, 5 s query). */
const HANG_MS = 150;

/**
 * A `MemoryBackend` whose every call can be made to fail as a database outage: `refuse` throws
 * `ECONNREFUSED` at once (PostgreSQL refusing connections), `hang` fails with the driver's own
 * timeout error after `HANG_MS` (a black-holed connection). `beforeCall` sees each call first (a
 * test can start an outage at an exact moment); `refused` counts the calls that failed.
 */
class OutageBackend implements StoreBackend {
  readonly exclusive = true;
  mode: Mode = 'up';
  refused = 0;
  beforeCall?: (method: string, args: unknown[]) => void;
  constructor(private readonly inner = new MemoryBackend()) {}

  private async call<T>(method: string, args: unknown[], run: () => Promise<T>): Promise<T> {
    this.beforeCall?.(method, args);
    if (this.mode === 'refuse') {
      this.refused++;
      throw Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:5432'), { code: 'ECONNREFUSED', errno: -111, syscall: 'connect' });
    }
    if (this.mode === 'hang') {
      await new Promise((resolve) => setTimeout(resolve, HANG_MS));
      this.refused++;
      throw new Error('Query read timeout');
    }
    return run();
  }

  describe(): string {
    return 'outage-test';
  }
  insert(task: TaskRecord) {
    return this.call('insert', [task], () => this.inner.insert(task));
  }
  get(taskId: string) {
    return this.call('get', [taskId], () => this.inner.get(taskId));
  }
  findByIdempotency(scope: string, nowMs: number) {
    return this.call('findByIdempotency', [scope, nowMs], () => this.inner.findByIdempotency(scope, nowMs));
  }
  deleteJournal(taskId: string, keys: string[]) {
    return this.call('deleteJournal', [taskId, keys], () => this.inner.deleteJournal(taskId, keys));
  }
  replace(task: TaskRecord, expectedVersion: number) {
    return this.call('replace', [task, expectedVersion], () => this.inner.replace(task, expectedVersion));
  }
  list(query: ListQuery) {
    return this.call('list', [query], () => this.inner.list(query));
  }
  listAll(query: OperatorListQuery) {
    return this.call('listAll', [query], () => this.inner.listAll(query));
  }
  countByStatus(nowMs: number) {
    return this.call('countByStatus', [nowMs], () => this.inner.countByStatus(nowMs));
  }
  listUnfinished() {
    return this.call('listUnfinished', [], () => this.inner.listUnfinished());
  }
  purgeExpired(nowMs: number, limit: number) {
    return this.call('purgeExpired', [nowMs, limit], () => this.inner.purgeExpired(nowMs, limit));
  }
  delete(taskId: string) {
    return this.call('delete', [taskId], () => this.inner.delete(taskId));
  }
  readJournal(taskId: string) {
    return this.call('readJournal', [taskId], () => this.inner.readJournal(taskId));
  }
  appendJournal(taskId: string, key: string, value: Json, fence?: Fence) {
    return this.call('appendJournal', [taskId, key, value, fence], () => this.inner.appendJournal(taskId, key, value, fence));
  }
  close() {
    return this.inner.close();
  }
}

/** A logger at debug level whose lines are kept, parsed. */
function capturingLogger() {
  const lines: Record<string, any>[] = [];
  const destination = new Writable({
    write(chunk, _encoding, done) {
      for (const line of String(chunk).split('\n')) if (line.trim()) lines.push(JSON.parse(line));
      done();
    },
  });
  return { lines, logger: createLogger({ level: 'debug', destination }) };
}

const text = (t: string) => ({ content: [{ type: 'text' as const, text: t }] });
const TASKS_EXT = 'io.modelcontextprotocol/tasks';

/** A task server on `store` with the test tools (`echo`, `ask`, `slow`), the fallback tools and 2025 `tasks/list`. */
function taskServer(
  store: TaskStore,
  logger: ReturnType<typeof createLogger>,
  options: { fastPath?: boolean; console?: boolean; declareIdempotency?: boolean } = {},
): TaskServer {
  const server = createTaskServer({
    store,
    logger,
    fastPath: options.fastPath ?? true,
    ...(options.console && { console: true }),
    runtime: { purgeIntervalMs: 0 },
    tasks: { fallbackTools: true, list: true, ...(options.declareIdempotency === false && { declareIdempotency: false }) },
    subscriptions: { keepAliveMs: 1000 },
  });
  server.registerTool('echo', { description: 'echo', inputSchema: z.object({ text: z.string() }), taskSupport: 'optional' }, async ({ text: t }) => text(t));
  server.registerTool('ask', { description: 'asks', inputSchema: z.object({ question: z.string() }), taskSupport: 'optional' }, async ({ question }, ctx) => {
    const answer = await ctx.elicit(question, { type: 'object', properties: { reply: { type: 'string' } }, required: ['reply'] });
    return text(answer.action === 'accept' ? `reply: ${String(answer.content?.reply)}` : `no reply (${answer.action})`);
  });
  server.registerTool('slow', { description: 'sleeps', inputSchema: z.object({ ms: z.number() }), taskSupport: 'optional' }, async ({ ms }, ctx) => {
    await ctx.sleep(ms);
    return text('slept');
  });
  return server;
}

/** What one request got: the HTTP status, `Retry-After`, how the answer came (`json`/`sse`) and the JSON-RPC response. */
interface Reply {
  what: string;
  status: number;
  retryAfter: string | null;
  type: 'json' | 'sse' | 'other';
  message?: RpcMessage;
}

/** Reads the JSON-RPC response to request `id` from a JSON or SSE answer. */
async function replyOf(what: string, response: Response, id?: string | number): Promise<Reply> {
  const type = response.headers.get('content-type') ?? '';
  const base = { what, status: response.status, retryAfter: response.headers.get('retry-after') };
  if (type.includes('application/json')) return { ...base, type: 'json', message: (await response.json()) as RpcMessage };
  if (type.includes('text/event-stream')) {
    for await (const message of sseMessages<RpcMessage>(response))
      if ((id === undefined || message.id === id) && (message.result !== undefined || message.error !== undefined)) return { ...base, type: 'sse', message };
    return { ...base, type: 'sse' };
  }
  await response.text();
  return { ...base, type: 'other' };
}

/** The answer to a store outage as JSON: HTTP 503, `Retry-After` in whole seconds ≥ 1, -32010 marked retryable. */
function assertOutageJson(reply: Reply): void {
  const show = `${reply.what}: ${JSON.stringify(reply)}`;
  assert.equal(reply.type, 'json', show);
  assert.equal(reply.status, 503, show);
  assert.match(reply.retryAfter ?? '', /^[1-9][0-9]*$/, show);
  assert.equal(reply.message?.error?.code, -32010, show);
  assert.equal((reply.message?.error?.data as { retryable?: unknown })?.retryable, true, show);
  assert.equal(typeof (reply.message?.error?.data as { retryAfterMs?: unknown })?.retryAfterMs, 'number', show);
  assert.equal(reply.message?.error?.message, 'The task store is temporarily unavailable; retry later', show);
}

/** The answer to a store outage inside an SSE stream the SDK opened with 200 before it was known: the same -32010 error. */
function assertOutageInStream(reply: Reply): void {
  const show = `${reply.what}: ${JSON.stringify(reply)}`;
  assert.equal(reply.type, 'sse', show);
  assert.equal(reply.status, 200, show);
  assert.equal(reply.message?.error?.code, -32010, show);
  assert.equal((reply.message?.error?.data as { retryable?: unknown })?.retryable, true, show);
}

/** One 2025-11-25 session (opened while the store is up: `initialize` needs no store). */
async function session2025(url: string) {
  const client = new RawMcpClient(url);
  await client.initialize();
  let id = 1000;
  return {
    client,
    /** Sends a request in the session; resolves with what came back. */
    rpc: async (what: string, method: string, params: Record<string, unknown>): Promise<Reply> => {
      const requestId = id++;
      const response = await postInSession(url, client.sessionId, { jsonrpc: '2.0', id: requestId, method, params });
      return replyOf(what, response, requestId);
    },
  };
}

/** A 2025-11-25 request without a session (the stateless fallback). */
async function stateless2025(url: string, what: string, method: string, params: Record<string, unknown>): Promise<Reply> {
  const response = await postInSession(url, undefined, { jsonrpc: '2.0', id: 1, method, params });
  return replyOf(what, response, 1);
}

/** A 2026-07-28 request (tasks extension declared unless `declareTasks` is false). */
async function modern(url: string, what: string, method: string, params: Record<string, unknown>, declareTasks = true): Promise<Reply> {
  return replyOf(what, await new ModernRawClient(url, declareTasks).send(method, params));
}

/**
 * A stdio connection to `server` over an in-memory pipe: `request` sends one JSON-RPC request and
 * resolves with its response.
 */
async function stdioPeer(server: TaskServer) {
  const [client, serverSide] = InMemoryTransport.createLinkedPair();
  const pending = new Map<string | number, (message: RpcMessage) => void>();
  client.onmessage = (message: JSONRPCMessage) => {
    const m = message as RpcMessage;
    if (m.id !== undefined && !m.method) pending.get(m.id)?.(m);
  };
  await client.start();
  await server.serveStdio({ transport: serverSide });
  let id = 1;
  return {
    request: (method: string, params: Record<string, unknown>) =>
      new Promise<RpcMessage>((resolve) => {
        const requestId = id++;
        pending.set(requestId, resolve);
        void client.send({ jsonrpc: '2.0', id: requestId, method, params } as JSONRPCMessage);
      }),
    notify: (method: string) => client.send({ jsonrpc: '2.0', method } as JSONRPCMessage),
    close: () => client.close(),
  };
}

const ENVELOPE = {
  'io.modelcontextprotocol/protocolVersion': '2026-07-28',
  'io.modelcontextprotocol/clientInfo': { name: 'stdio-outage', version: '0' },
  'io.modelcontextprotocol/clientCapabilities': { elicitation: { form: {} }, extensions: { [TASKS_EXT]: {} } },
};

describe('store outage: every request answered as retryable, logged once, nothing lost', () => {
  const backend = new OutageBackend();
  const { lines, logger } = capturingLogger();
  const store = new TaskStore(backend, { policy: { pollIntervalMs: 50 }, logger, unavailableRetryAfterMs: 1500 });
  const fast = taskServer(store, logger, { console: true });
  const sdk = taskServer(store, logger, { fastPath: false });
  const statelessServer = taskServer(store, logger);
  const stdioLegacy = taskServer(store, logger);
  const stdioModern = taskServer(store, logger);
  const urls = { fast: '', sdk: '', stateless: '' };
  const ids = { done: '', ask: '', slow: '' };

  before(async () => {
    urls.fast = (await fast.listen({ port: 0 })).url;
    urls.sdk = (await sdk.listen({ port: 0 })).url;
    urls.stateless = (await statelessServer.listen({ port: 0, stateless: true })).url;
    const created = async (name: string, args: Record<string, unknown>) => {
      const reply = await modern(urls.fast, `create ${name}`, 'tools/call', { name, arguments: args });
      assert.equal(reply.message?.result?.resultType, 'task', JSON.stringify(reply));
      return reply.message!.result.taskId as string;
    };
    ids.done = await created('echo', { text: 'before the outage' });
    ids.ask = await created('ask', { question: 'Approve?' });
    ids.slow = await created('slow', { ms: 3_600_000 });
    await until(async () => (await store.get(ids.done, ENGINE_ACCESS)).status === 'completed', { what: 'the echo task completed' });
    await until(async () => (await store.get(ids.ask, ENGINE_ACCESS)).status === 'input_required', { what: 'the ask task waiting' });
    await until(async () => (await store.get(ids.slow, ENGINE_ACCESS)).statusMessage?.startsWith('Waiting') === true, { what: 'the slow task parked' });
  });

  after(async () => {
    backend.mode = 'up';
    for (const server of [stdioModern, stdioLegacy, statelessServer, sdk, fast]) await server.close().catch(() => undefined);
  });

  it(
    'refused connections: 503 + Retry-After + -32010 (data.retryable) on every path, in-stream where SSE is open; back: same requests succeed, state intact, one outage logged',
    { timeout: 120_000 },
    async () => {
      assert.equal(store.health.available, true);
      const before = await store.listAll({ limit: 100 }, ENGINE_ACCESS);
      const snapshot = new Map(before.tasks.map((t) => [t.taskId, { status: t.status, inputRequests: Object.keys(t.inputRequests), outcome: t.outcome }]));
      const fastSession = await session2025(urls.fast);
      const sdkSession = await session2025(urls.sdk);
      const legacyStdio = await stdioPeer(stdioLegacy);
      await legacyStdio.request('initialize', { protocolVersion: '2025-11-25', capabilities: {}, clientInfo: { name: 'stdio-outage', version: '0' } });
      await legacyStdio.notify('notifications/initialized');
      const modernStdio = await stdioPeer(stdioModern);
      const consoleUrl = new URL('/console/', urls.fast);
      const events = await fetch(new URL('/console/events', urls.fast));
      assert.equal(events.status, 200);
      const eventReader = events.body!.getReader();
      const firstEvent = new TextDecoder().decode((await eventReader.read()).value);
      assert.match(firstEvent, /connected/);
      const logStart = lines.length;

      backend.mode = 'refuse';
      const json: Reply[] = [
        // The fast path, both versions.
        await fastSession.rpc('fast 2025 tasks/get', 'tasks/get', { taskId: ids.done }),
        await fastSession.rpc('fast 2025 tasks/result', 'tasks/result', { taskId: ids.done }),
        await fastSession.rpc('fast 2025 task-augmented tools/call', 'tools/call', { name: 'echo', arguments: { text: 'x' }, task: {} }),
        await modern(urls.fast, 'fast 2026 tasks/get', 'tasks/get', { taskId: ids.done }),
        await modern(urls.fast, 'fast 2026 task-creating tools/call', 'tools/call', { name: 'echo', arguments: { text: 'x' } }),
        await modern(urls.stateless, 'stateless fast 2026 tasks/get', 'tasks/get', { taskId: ids.done }),
        // The SDK's 2026-07-28 path (JSON answers).
        await modern(urls.sdk, 'sdk 2026 tasks/get', 'tasks/get', { taskId: ids.done }),
        await modern(urls.sdk, 'sdk 2026 tasks/update', 'tasks/update', {
          taskId: ids.ask,
          inputResponses: { 'elicit-1': { action: 'accept', content: { reply: 'no' } } },
        }),
        await modern(urls.sdk, 'sdk 2026 tasks/cancel', 'tasks/cancel', { taskId: ids.slow }),
        await modern(urls.sdk, 'sdk 2026 task-creating tools/call', 'tools/call', { name: 'echo', arguments: { text: 'x' } }),
        await modern(urls.sdk, 'sdk 2026 ordinary call of a task tool', 'tools/call', { name: 'echo', arguments: { text: 'x' } }, false),
        await modern(urls.sdk, 'sdk 2026 fallback get_task_status', 'tools/call', { name: 'get_task_status', arguments: { taskId: ids.done } }),
        await modern(urls.sdk, 'sdk 2026 fallback answer_task_input', 'tools/call', {
          name: 'answer_task_input',
          arguments: { taskId: ids.ask, answers: { reply: 'no' } },
        }),
        await modern(urls.fast, 'subscriptions/listen for task ids', 'subscriptions/listen', { notifications: { taskIds: [ids.slow] } }),
      ];
      for (const reply of json) assertOutageJson(reply);

      // 2025-11-25 requests the SDK serves: it opens the SSE stream with 200 before the answer exists.
      const inStream: Reply[] = [
        await fastSession.rpc('2025 tasks/list', 'tasks/list', {}),
        await fastSession.rpc('2025 tasks/cancel', 'tasks/cancel', { taskId: ids.slow }),
        await fastSession.rpc('2025 ordinary call of a task tool', 'tools/call', { name: 'echo', arguments: { text: 'x' } }),
        await fastSession.rpc('2025 fallback get_task_status', 'tools/call', { name: 'get_task_status', arguments: { taskId: ids.done } }),
        await fastSession.rpc('2025 fallback cancel_task', 'tools/call', { name: 'cancel_task', arguments: { taskId: ids.slow } }),
        await sdkSession.rpc('sdk 2025 tasks/get', 'tasks/get', { taskId: ids.done }),
        await sdkSession.rpc('sdk 2025 task-augmented tools/call', 'tools/call', { name: 'echo', arguments: { text: 'x' }, task: {} }),
        await stateless2025(urls.stateless, 'stateless 2025 tasks/get', 'tasks/get', { taskId: ids.done }),
        await stateless2025(urls.stateless, 'stateless 2025 tasks/result', 'tasks/result', { taskId: ids.done }),
      ];
      for (const reply of inStream) assertOutageInStream(reply);

      // stdio, both versions: the same JSON-RPC error.
      for (const [what, response] of [
        ['stdio 2025 tasks/get', await legacyStdio.request('tasks/get', { taskId: ids.done })],
        ['stdio 2025 task-augmented tools/call', await legacyStdio.request('tools/call', { name: 'echo', arguments: { text: 'x' }, task: {} })],
        ['stdio 2026 tasks/get', await modernStdio.request('tasks/get', { taskId: ids.done, _meta: ENVELOPE })],
        ['stdio 2026 subscriptions/listen', await modernStdio.request('subscriptions/listen', { notifications: { taskIds: [ids.slow] }, _meta: ENVELOPE })],
      ] as const) {
        assert.equal(response.error?.code, -32010, `${what}: ${JSON.stringify(response)}`);
        assert.equal((response.error?.data as { retryable?: unknown })?.retryable, true, what);
      }

      // The operator console: a readable 503 page, not a 500; its event stream stays open.
      const page = await fetch(consoleUrl);
      const html = await page.text();
      assert.equal(page.status, 503, html.slice(0, 300));
      assert.match(page.headers.get('retry-after') ?? '', /^[1-9][0-9]*$/);
      assert.match(html, /Task store unavailable/);
      assert.doesNotMatch(html, /ECONNREFUSED|at .*\.ts:\d+/, 'no driver details or stack on the page');

      // Back: the same requests succeed, and nothing the refused requests asked for happened.
      backend.mode = 'up';
      const again = await fastSession.rpc('fast 2025 tasks/get', 'tasks/get', { taskId: ids.done });
      assert.equal(again.status, 200);
      assert.equal(again.message?.result?.status, 'completed');
      for (const [url, what] of [
        [urls.fast, 'fast'],
        [urls.sdk, 'sdk'],
        [urls.stateless, 'stateless'],
      ] as const) {
        const get = await modern(url, `${what} 2026 tasks/get`, 'tasks/get', { taskId: ids.ask });
        assert.equal(get.status, 200, JSON.stringify(get));
        assert.equal(get.message?.result?.status, 'input_required', 'the answer refused during the outage was not taken');
      }
      assert.equal(
        (await sdkSession.rpc('sdk 2025 tasks/get', 'tasks/get', { taskId: ids.slow })).message?.result?.status,
        'working',
        'the refused cancels did nothing',
      );
      assert.equal((await stateless2025(urls.stateless, 'stateless 2025 tasks/get', 'tasks/get', { taskId: ids.done })).message?.result?.status, 'completed');
      assert.equal((await legacyStdio.request('tasks/get', { taskId: ids.done })).result?.status, 'completed');
      assert.equal((await modernStdio.request('tasks/get', { taskId: ids.done, _meta: ENVELOPE })).result?.status, 'completed');
      assert.equal((await fastSession.rpc('2025 tasks/list', 'tasks/list', {})).message?.result?.tasks?.length, before.tasks.length);
      const pageBack = await fetch(consoleUrl);
      assert.equal(pageBack.status, 200);
      await pageBack.text();
      const afterOutage = await store.listAll({ limit: 100 }, ENGINE_ACCESS);
      assert.equal(afterOutage.tasks.length, before.tasks.length, 'no refused call created a task');
      for (const task of afterOutage.tasks) {
        const was = snapshot.get(task.taskId)!;
        assert.deepEqual({ status: task.status, inputRequests: Object.keys(task.inputRequests), outcome: task.outcome }, was, `task ${task.taskId} as it was`);
      }

      // The answer refused during the outage can be given now; the task finishes.
      const key = Object.keys((await store.get(ids.ask, ENGINE_ACCESS)).inputRequests)[0]!;
      const update = await modern(urls.sdk, 'tasks/update', 'tasks/update', {
        taskId: ids.ask,
        inputResponses: { [key]: { action: 'accept', content: { reply: 'yes' } } },
      });
      assert.equal(update.status, 200, JSON.stringify(update));
      await until(async () => (await store.get(ids.ask, ENGINE_ACCESS)).status === 'completed', { what: 'the answered task completed' });
      assert.match(JSON.stringify((await store.get(ids.ask, ENGINE_ACCESS)).outcome), /reply: yes/);
      // The console's live stream outlived the outage: it tells of this change.
      let streamed = '';
      while (!streamed.includes(`task-${ids.ask}`)) {
        const chunk = await eventReader.read();
        assert.equal(chunk.done, false, 'the console event stream is still open');
        streamed += new TextDecoder().decode(chunk.value);
      }

      // Logged once: one line when it started, one when it ended; no error-level line or stack per request.
      await until(() => lines.slice(logStart).some((l) => /available again/.test(l.msg)), { what: "the 'available again' line" });
      const outage = lines.slice(logStart);
      const started = outage.filter((l) => /^task store unavailable/.test(l.msg));
      const ended = outage.filter((l) => /^task store available again/.test(l.msg));
      assert.equal(started.length, 1, JSON.stringify(started));
      assert.equal(started[0].level, 50);
      assert.equal(started[0].code, 'ECONNREFUSED');
      assert.equal(ended.length, 1, JSON.stringify(ended));
      assert.equal(typeof ended[0].downMs, 'number');
      const loud = outage.filter((l) => l.level >= 40 && l !== started[0] && l !== ended[0]);
      assert.deepEqual(loud, [], 'no other warn/error line during the outage');
      assert.deepEqual(
        outage.filter((l) => l.err?.stack !== undefined),
        [],
        'no stack trace',
      );
      await eventReader.cancel();
      await legacyStdio.close();
      await modernStdio.close();
    },
  );

  it('an ordinary call whose task is stored before the store fails hands the task off instead of inviting a second call', { timeout: 60_000 }, async () => {
    const session = await session2025(urls.fast);
    for (const version of ['2026-07-28', '2025-11-25'] as const) {
      const marker = `hand-off ${version}`;
      const ms = version === '2026-07-28' ? 3_600_001 : 3_600_002; // tells this call's task apart
      let created = '';
      backend.beforeCall = (method, args) => {
        const task = args[0] as TaskRecord | undefined;
        if (method !== 'insert' || task?.request.arguments.ms !== ms || created) return;
        created = task.taskId;
        queueMicrotask(() => (backend.mode = 'refuse')); // the insert goes through, everything after it fails
      };
      try {
        const reply =
          version === '2026-07-28'
            ? await modern(urls.fast, marker, 'tools/call', { name: 'slow', arguments: { ms } }, false)
            : await session.rpc(marker, 'tools/call', { name: 'slow', arguments: { ms } });
        const show = `${marker}: ${JSON.stringify(reply)}`;
        assert.equal(reply.status, 200, show);
        assert.equal(reply.message?.error, undefined, `not -32010, whose retry would start the work again: ${show}`);
        assert.match(JSON.stringify(reply.message?.result?.content), new RegExp(`continues as task ${created}.*temporarily unavailable`), show);
      } finally {
        backend.beforeCall = undefined;
        backend.mode = 'up';
      }
      const tasks = (await store.listAll({ limit: 1000 }, ENGINE_ACCESS)).tasks.filter((t) => t.request.arguments.ms === ms);
      assert.deepEqual(
        tasks.map((t) => t.taskId),
        [created],
        'one task, the one the answer names',
      );
      await fast.runtime.cancel(created, ENGINE_ACCESS).catch(() => undefined);
    }
  });

  it('a store that stops answering: requests fail within its timeout as 503 + -32010, and the server recovers', { timeout: 60_000 }, async () => {
    await until(() => store.health.available, { what: 'the previous outage to be over' });
    const logStart = lines.length;
    const session = await session2025(urls.fast);
    backend.mode = 'hang';
    assertOutageJson(await modern(urls.fast, 'fast 2026 tasks/get (hang)', 'tasks/get', { taskId: ids.done }));
    assertOutageJson(await session.rpc('fast 2025 tasks/get (hang)', 'tasks/get', { taskId: ids.done }));
    assertOutageJson(await modern(urls.sdk, 'sdk 2026 tasks/cancel (hang)', 'tasks/cancel', { taskId: ids.slow }));
    backend.mode = 'up';
    const back = await modern(urls.fast, 'fast 2026 tasks/get', 'tasks/get', { taskId: ids.slow });
    assert.equal(back.status, 200);
    assert.equal(back.message?.result?.status, 'working');
    // Only reads failed, and a read succeeded: the outage is over.
    await until(() => lines.slice(logStart).some((l) => /available again/.test(l.msg)), { what: "the 'available again' line" });
    assert.equal(lines.slice(logStart).filter((l) => /^task store unavailable/.test(l.msg)).length, 1);
    assert.match(lines.slice(logStart).find((l) => /^task store unavailable/.test(l.msg))!.cause, /Query read timeout/);
  });
});

/** The CLI as a child process, its output collected as it comes. */
function cliChild(args: string[], journal: string) {
  const child = spawn(process.execPath, ['--import', 'tsx', 'src/cli/main.ts', ...args, '--journal', journal], { stdio: ['ignore', 'pipe', 'pipe'] });
  const out = { stdout: '', stderr: '' };
  child.stdout.on('data', (chunk) => (out.stdout += String(chunk)));
  child.stderr.on('data', (chunk) => (out.stderr += String(chunk)));
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  return { child, out, exited };
}

describe('store outage: the CLI', () => {
  const dir = mkdtempSync(join(tmpdir(), 'mcp-tasks-outage-cli-'));
  const backend = new OutageBackend();
  const { logger } = capturingLogger();
  const store = new TaskStore(backend, { policy: { pollIntervalMs: 50 }, logger, unavailableRetryAfterMs: 200 });
  const server = taskServer(store, logger);
  let url = '';
  before(async () => {
    url = (await server.listen({ port: 0 })).url;
  });
  after(async () => {
    backend.mode = 'up';
    await server.close();
    rmSync(dir, { recursive: true, force: true });
  });

  /**
   * `call … --answer` in `version` while the store goes down `when` (`asked`: as soon as the task waits
   * for its answer, before the CLI has seen the question; `answered`: at the moment the answer
   * reaches the store, which refuses it): the CLI says the server is temporarily unavailable, keeps
   * the answer, and once the store is back finishes the task — exit 0, the result printed and
   * journaled, the answer taken once.
   */
  const acrossOutage = async (version: '2025-11-25' | '2026-07-28', when: 'asked' | 'answered') => {
    const journal = join(dir, `${version}-${when}`);
    let tripped = false;
    backend.beforeCall = (method, args) => {
      if (tripped) return;
      const task = args[0] as TaskRecord | undefined;
      const trip =
        when === 'asked'
          ? method === 'replace' && task?.request?.tool === 'ask' && task.status === 'input_required'
          : method === 'appendJournal' && String(args[1]).startsWith('input:');
      if (!trip) return;
      tripped = true;
      // `asked`: the write that asks goes through, everything after it fails; `answered`: the answer's write fails.
      if (when === 'asked') queueMicrotask(() => (backend.mode = 'refuse'));
      else backend.mode = 'refuse';
    };
    const { out, exited } = cliChild(
      ['call', url, 'ask', '--args', JSON.stringify({ question: 'Ship it?' }), '--answer', '{"reply":"ship"}', '--protocol', version, '--json'],
      journal,
    );
    try {
      await until(() => tripped && backend.refused > 0, { timeoutMs: 30_000, what: () => `the outage to start (stderr: ${out.stderr})` });
      await until(() => /temporarily unavailable/.test(out.stderr), { timeoutMs: 30_000, what: () => `the CLI to notice the outage (stderr: ${out.stderr})` });
      backend.mode = 'up';
      const code = await exited;
      assert.equal(code, 0, `exit code; stderr:\n${out.stderr}\nstdout:\n${out.stdout}`);
      const printed = JSON.parse(out.stdout.trim().split('\n').at(-1)!);
      assert.equal(printed.status, 'completed', out.stdout);
      assert.match(JSON.stringify(printed.result), /reply: ship/);
      const taskId = printed.taskId as string;
      const entry = new KnownTasks(journal).get(taskId);
      assert.equal(entry?.outcome?.status, 'completed', 'the journal holds the real outcome, not the outage');
      const history = await store.readJournal(taskId);
      assert.equal([...history.keys()].filter((k) => k.startsWith('input:')).length, 1, 'one answer stored');
      if (version === '2026-07-28') {
        const sentLines = out.stderr.split('\n').filter((l) => /answer sent/.test(l));
        assert.equal(sentLines.length, 1, `'answer sent' only once it was acknowledged:\n${out.stderr}`);
      }
    } finally {
      backend.beforeCall = undefined;
      backend.mode = 'up';
      await exited;
    }
  };

  it('2026-07-28: the store goes down while the task waits, before the CLI sees the question', { timeout: 90_000 }, () => acrossOutage('2026-07-28', 'asked'));
  it('2026-07-28: the store refuses the answer itself; the CLI keeps it and sends it again', { timeout: 90_000 }, () => acrossOutage('2026-07-28', 'answered'));
  it('2025-11-25: the store refuses the answer itself; the server asks again and the CLI answers', { timeout: 90_000 }, () =>
    acrossOutage('2025-11-25', 'answered'),
  );

  it(
    'a task-creating call while the store is down is sent again with the same idempotency key once it is back: exit 0, one task',
    { timeout: 90_000 },
    async () => {
      for (const version of ['2026-07-28', '2025-11-25'] as const) {
        const journal = join(dir, `create-${version}`);
        const tasksBefore = (await store.listAll({ limit: 1000 }, ENGINE_ACCESS)).tasks.length;
        backend.mode = 'refuse';
        const { out, exited } = cliChild(['call', url, 'echo', '--args', '{"text":"hi"}', '--protocol', version, '--json'], journal);
        try {
          await until(() => /temporarily unavailable.*retrying in .* with the same idempotency key/.test(out.stderr), {
            timeoutMs: 30_000,
            what: () => `the CLI to say it retries (stderr: ${out.stderr})`,
          });
        } finally {
          backend.mode = 'up';
        }
        assert.equal(await exited, 0, out.stderr);
        assert.match(out.stdout, /hi/);
        assert.equal(new KnownTasks(journal).list().length, 1, 'the one task journaled');
        assert.equal((await store.listAll({ limit: 1000 }, ENGINE_ACCESS)).tasks.length - tasksBefore, 1, 'one task, however often the call was sent');
      }
    },
  );

  it(
    'a task-creating call to a server that does not declare idempotency is not sent twice while the store is down: a plain message, exit 1, nothing created',
    { timeout: 60_000 },
    async () => {
      const quiet = taskServer(store, logger, { declareIdempotency: false });
      const quietUrl = (await quiet.listen({ port: 0 })).url;
      try {
        for (const version of ['2026-07-28', '2025-11-25'] as const) {
          const journal = join(dir, `create-quiet-${version}`);
          const tasksBefore = (await store.listAll({ limit: 1000 }, ENGINE_ACCESS)).tasks.length;
          backend.mode = 'refuse';
          const { out, exited } = cliChild(['call', quietUrl, 'echo', '--args', '{"text":"hi"}', '--protocol', version], journal);
          const code = await exited;
          backend.mode = 'up';
          assert.equal(code, 1, out.stderr);
          assert.match(out.stderr, /temporarily unavailable/, out.stderr);
          assert.match(out.stderr, /not sent again/, out.stderr);
          assert.equal(new KnownTasks(journal).list().length, 0, 'nothing journaled');
          assert.equal((await store.listAll({ limit: 1000 }, ENGINE_ACCESS)).tasks.length, tasksBefore, 'nothing created');
        }
      } finally {
        backend.mode = 'up';
        await quiet.close();
      }
    },
  );
});
