/**
 * The fast path answers exactly as the SDK path does. Two servers share one store: one
 * with `leanPath` (the default), one without, so every request goes through the SDK. Each
 * probe is sent to both and the HTTP status and JSON-RPC message must be equal — results, errors
 * and their codes, throttling aside — while the fast server shows it did take its own path (JSON
 * instead of an SSE stream in 2025-11-25; no per-request `McpServer` built in 2026-07-28).
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { McpServer } from '@modelcontextprotocol/server';
import * as z from 'zod';
import { TaskRpcError } from '../src/core/errors.js';
import { silentLogger } from '../src/core/log.js';
import { staticTokenVerifier } from '../src/server/auth.js';
import { createTaskServer, type TaskServer } from '../src/server/task-server.js';
import { openStore } from '../src/store/open-store.js';
import type { TaskStore } from '../src/store/task-store.js';
import { sseMessages } from '../src/client/sse.js';
import type { RpcMessage } from './helpers/raw-client.js';
import { until } from './helpers/until.js';

const TOKENS = { 'tok-alice': 'alice', 'tok-bob': 'bob' };
const text = (t: string) => ({ content: [{ type: 'text' as const, text: t }] });
const ENVELOPE = (capabilities: Record<string, unknown>) => ({
  'io.modelcontextprotocol/protocolVersion': '2026-07-28',
  'io.modelcontextprotocol/clientInfo': { name: 'fast-test', version: '0' },
  'io.modelcontextprotocol/clientCapabilities': capabilities,
});
const TASKS = { extensions: { 'io.modelcontextprotocol/tasks': {} } };

interface Reply {
  status: number;
  type: string;
  message?: RpcMessage;
}

/** POSTs `body` and reads the one JSON-RPC response, from JSON or from an SSE stream. */
async function post(url: string, headers: Record<string, string>, body: unknown): Promise<Reply> {
  const response = await fetch(url, { method: 'POST', headers: { 'content-type': 'application/json', ...headers }, body: JSON.stringify(body) });
  const type = response.headers.get('content-type') ?? '';
  if (type.includes('application/json')) return { status: response.status, type: 'json', message: (await response.json()) as RpcMessage };
  if (type.includes('text/event-stream')) {
    for await (const message of sseMessages<RpcMessage>(response))
      if (message.id !== undefined && !message.method) return { status: response.status, type: 'sse', message };
  }
  await response.text();
  return { status: response.status, type: type || 'none' };
}

class Server {
  servers2026Built = 0;
  url = '';
  readonly server: TaskServer;
  constructor(store: TaskStore, fastPath: boolean) {
    this.server = createTaskServer({
      store,
      fastPath,
      logger: silentLogger,
      runtime: { onError: () => undefined, purgeIntervalMs: 0 },
      tasks: { onError: () => undefined },
      createMcpServer: ({ protocolVersion }) => {
        if (protocolVersion === '2026-07-28') this.servers2026Built++;
        return new McpServer({ name: 'fast-test', version: '1.2.3' });
      },
    });
    const s = this.server;
    s.registerTool('echo', { description: 'echo', inputSchema: z.object({ text: z.string() }), taskSupport: 'optional' }, async ({ text: t }) => text(t));
    s.registerTool('ask', { description: 'ask', inputSchema: z.object({}), taskSupport: 'optional' }, async (_a, ctx) => {
      const answer = await ctx.elicit('Approve?', { type: 'object', properties: { ok: { type: 'boolean' } }, required: ['ok'] });
      return text(JSON.stringify(answer));
    });
    s.registerTool('slow', { description: 'slow', inputSchema: z.object({ ms: z.number() }), taskSupport: 'optional' }, async ({ ms }, ctx) => {
      await ctx.sleep(ms);
      return text('slept');
    });
    s.registerTool('soft_fail', { description: 'isError', inputSchema: z.object({}), taskSupport: 'optional' }, async () => ({ ...text('no'), isError: true }));
    s.registerTool('must', { description: 'required', inputSchema: z.object({}), taskSupport: 'required' }, async () => text('done'));
    s.registerTool('rpc_fail', { description: 'rpc error', inputSchema: z.object({}), taskSupport: 'optional' }, async () => {
      throw new TaskRpcError(-32602, 'the order does not exist', { orderId: 7 });
    });
  }
  async start() {
    this.url = (await this.server.listen({ port: 0, auth: { verifier: staticTokenVerifier(TOKENS) } })).url;
  }
}

/** A 2025-11-25 session of `token` on `url`; `rpc` sends a request in it with `headers` overriding the defaults. */
async function session2025(url: string, token: string, capabilities: Record<string, unknown> = {}) {
  const base = { authorization: `Bearer ${token}`, accept: 'application/json, text/event-stream' };
  const init = await fetch(url, {
    method: 'POST',
    headers: { ...base, 'content-type': 'application/json' },
    body: JSON.stringify({
      jsonrpc: '2.0',
      id: 0,
      method: 'initialize',
      params: { protocolVersion: '2025-11-25', capabilities, clientInfo: { name: 'fast', version: '0' } },
    }),
  });
  const sessionId = init.headers.get('mcp-session-id')!;
  await init.text();
  const headers = { ...base, 'mcp-session-id': sessionId, 'mcp-protocol-version': '2025-11-25' };
  await post(url, headers, { jsonrpc: '2.0', method: 'notifications/initialized' });
  let id = 1;
  return {
    rpc: (method: string, params: unknown, extra: Record<string, string | undefined> = {}) =>
      post(url, Object.fromEntries(Object.entries({ ...headers, ...extra }).filter(([, v]) => v !== undefined)) as Record<string, string>, {
        jsonrpc: '2.0',
        id: id++,
        method,
        params,
      }),
    raw: (body: unknown) => post(url, headers, body),
  };
}

/** A 2026-07-28 request of `token` with the standard headers (`Mcp-Name` from taskId/name unless overridden). */
function modern(
  url: string,
  token: string,
  method: string,
  params: Record<string, unknown>,
  capabilities: Record<string, unknown> = TASKS,
  extra: Record<string, string | undefined> = {},
) {
  const name = (params.taskId ?? params.name) as string | undefined;
  const headers = Object.fromEntries(
    Object.entries({
      authorization: `Bearer ${token}`,
      accept: 'application/json, text/event-stream',
      'mcp-protocol-version': '2026-07-28',
      'mcp-method': method,
      ...(name !== undefined && { 'mcp-name': name }),
      ...extra,
    }).filter(([, v]) => v !== undefined),
  ) as Record<string, string>;
  return post(url, headers, { jsonrpc: '2.0', id: 7, method, params: { ...params, _meta: ENVELOPE(capabilities) } });
}

describe('fast path: the same answers as the SDK path', () => {
  const store = openStore('memory:', { policy: { pollIntervalMs: 40 } });
  const fast = new Server(store, true);
  const sdk = new Server(store, false);
  const ids: Record<string, string> = {};

  before(async () => {
    await fast.start();
    await sdk.start();
    // Tasks in every state, created (and run) by the fast server's runtime, read through both.
    const alice = await session2025(fast.url, 'tok-alice');
    const create = async (name: string, args: Record<string, unknown>) =>
      (await alice.rpc('tools/call', { name, arguments: args, task: {} })).message!.result.task.taskId as string;
    ids.done = await create('echo', { text: 'hi' });
    ids.soft = await create('soft_fail', {});
    ids.rpc = await create('rpc_fail', {});
    ids.ask = await create('ask', {});
    ids.parked = await create('slow', { ms: 3_600_000 });
    ids.cancelled = await create('slow', { ms: 3_600_000 });
    await alice.rpc('tasks/cancel', { taskId: ids.cancelled });
    const bob = await session2025(fast.url, 'tok-bob');
    ids.bobs = (await bob.rpc('tools/call', { name: 'echo', arguments: { text: 'bob' }, task: {} })).message!.result.task.taskId;
    await until(async () => (await store.get(ids.ask!, 'alice')).status === 'input_required', { timeoutMs: 10_000 });
    await until(async () => (await store.get(ids.rpc!, 'alice')).status === 'failed', { timeoutMs: 10_000 });
    await until(async () => (await store.get(ids.parked!, 'alice')).statusMessage?.startsWith('Waiting') === true, { timeoutMs: 10_000 });
  });

  after(async () => {
    await fast.server.close();
    await sdk.server.close().catch(() => undefined);
  });

  /** Sends the same probe to both servers; their status and message must be equal. Returns both replies. */
  const same = async (probe: (url: string) => Promise<Reply>, label: string) => {
    const a = await probe(fast.url);
    const b = await probe(sdk.url);
    assert.equal(a.status, b.status, `${label}: HTTP status`);
    assert.deepEqual(a.message, b.message, `${label}: JSON-RPC message`);
    return { fast: a, sdk: b };
  };

  it('2025-11-25 tasks/get and tasks/result: results, errors and refusals match; polls skip the SSE stream', { timeout: 60_000 }, async () => {
    const sessions = new Map<string, Awaited<ReturnType<typeof session2025>>>();
    const alice = async (url: string, capabilities: Record<string, unknown> = {}) => {
      const key = `${url} ${JSON.stringify(capabilities)}`;
      if (!sessions.has(key)) sessions.set(key, await session2025(url, 'tok-alice', capabilities));
      return sessions.get(key)!;
    };
    for (const [label, id] of Object.entries(ids)) {
      const { fast: l } = await same(async (url) => (await alice(url)).rpc('tasks/get', { taskId: id }), `tasks/get ${label}`);
      assert.equal(l.type, 'json', `tasks/get ${label} answered on the fast path`);
    }
    // A session that declared form elicitation: the question goes to it, and tasks/get still matches.
    await same(async (url) => (await alice(url, { elicitation: { form: {} } })).rpc('tasks/get', { taskId: ids.ask }), 'tasks/get input_required (can answer)');
    for (const label of ['done', 'soft', 'rpc', 'cancelled', 'bobs']) {
      const { fast: l } = await same(async (url) => (await alice(url)).rpc('tasks/result', { taskId: ids[label] }), `tasks/result ${label}`);
      assert.equal(l.type, 'json', `tasks/result ${label} answered on the fast path`);
    }
    // Task-augmented calls: the same refusals; a created task has the same shape and is readable from both.
    for (const [label, params] of [
      ['bad ttl', { name: 'echo', arguments: { text: 'x' }, task: { ttl: -1 } }],
      ['bad arguments', { name: 'echo', arguments: { text: 5 }, task: {} }],
      ['arguments not an object', { name: 'echo', arguments: [1], task: {} }],
      ['not a task tool', { name: 'nope', arguments: {}, task: {} }],
    ] as const) {
      const { fast: l } = await same(async (url) => (await alice(url)).rpc('tools/call', params), `tools/call ${label}`);
      assert.ok(l.message?.error, `tools/call ${label} is refused`);
    }
    const created = await Promise.all(
      [fast.url, sdk.url].map(async (url) => (await alice(url)).rpc('tools/call', { name: 'echo', arguments: { text: 'x' }, task: { ttl: 60_000 } })),
    );
    assert.deepEqual(
      created.map((r) => r.type),
      ['json', 'sse'],
      'the fast server created its task on the fast path',
    );
    assert.deepEqual(Object.keys(created[0]!.message!.result.task).sort(), Object.keys(created[1]!.message!.result.task).sort());
    assert.equal(created[0]!.message!.result.task.ttl, created[1]!.message!.result.task.ttl);
    for (const r of created) assert.equal((await store.get(r.message!.result.task.taskId, 'alice')).request.tool, 'echo');

    const unknown = await same(async (url) => (await alice(url)).rpc('tasks/get', { taskId: 'f'.repeat(32) }), 'unknown id');
    assert.equal(unknown.fast.message?.error?.code, -32602);
    assert.equal((await same(async (url) => (await alice(url)).rpc('tasks/get', { taskId: ids.bobs }), "bob's task")).fast.message?.error?.code, -32602);

    // What the fast path declines is the SDK's to answer, on both servers alike.
    const declined: [string, (url: string) => Promise<Reply>][] = [
      ['params of the wrong type', async (url) => (await alice(url)).rpc('tasks/get', { taskId: 42 })],
      ['missing params', async (url) => (await alice(url)).rpc('tasks/get', undefined)],
      [
        'a protocol version the SDK does not serve',
        async (url) => (await alice(url)).rpc('tasks/get', { taskId: ids.done }, { 'mcp-protocol-version': '1999-01-01' }),
      ],
      ['no text/event-stream in Accept', async (url) => (await alice(url)).rpc('tasks/get', { taskId: ids.done }, { accept: 'application/json' })],
      ['a batch', async (url) => (await alice(url)).raw([{ jsonrpc: '2.0', id: 99, method: 'tasks/get', params: { taskId: ids.done } }])],
    ];
    for (const [label, probe] of declined) await same(probe, label);
    const noBearer = await same(
      (url) => post(url, { accept: 'application/json, text/event-stream' }, { jsonrpc: '2.0', id: 1, method: 'tasks/get', params: { taskId: ids.done } }),
      'no token',
    );
    assert.equal(noBearer.fast.status, 401);

    // A tasks/result that has to wait is left to the SDK's stream, and ends with the same result.
    const waits = async (url: string) => {
      const s = await alice(url);
      const taskId = (await s.rpc('tools/call', { name: 'slow', arguments: { ms: 300 }, task: {} })).message!.result.task.taskId as string;
      const reply = await s.rpc('tasks/result', { taskId });
      assert.equal(reply.type, 'sse', 'a waiting tasks/result streams');
      return { ...reply, message: { ...reply.message!, result: { ...reply.message!.result, _meta: undefined } } };
    };
    await same(waits, 'tasks/result that waits');
  });

  it('2026-07-28 tasks/get: results, errors and header refusals match; no per-request McpServer is built', { timeout: 60_000 }, async () => {
    // The first 2026 request teaches the fast path the server's identity (io.modelcontextprotocol/serverInfo).
    await modern(fast.url, 'tok-alice', 'tools/list', {});
    const built = fast.servers2026Built;
    for (const [label, id] of Object.entries(ids)) {
      await same((url) => modern(url, 'tok-alice', 'tasks/get', { taskId: id }), `tasks/get ${label}`);
      await same((url) => modern(url, 'tok-alice', 'tasks/get', { taskId: id }, { ...TASKS, elicitation: {} }), `tasks/get ${label} (can answer)`);
    }
    const probes: [string, (url: string) => Promise<Reply>][] = [
      ['without the extension', (url) => modern(url, 'tok-alice', 'tasks/get', { taskId: ids.done }, {})],
      ['unknown id', (url) => modern(url, 'tok-alice', 'tasks/get', { taskId: 'f'.repeat(32) })],
    ];
    for (const [label, probe] of probes) await same(probe, label);
    assert.equal(fast.servers2026Built, built, 'the fast server built no McpServer for these polls');
    const refusal = await same((url) => modern(url, 'tok-alice', 'tasks/get', { taskId: ids.done }, {}), 'without the extension');
    assert.deepEqual([refusal.fast.status, refusal.fast.message?.error?.code], [400, -32021]);

    // Header cases the fast path leaves to the SDK: same answers, from the SDK on both.
    const declined: [string, (url: string) => Promise<Reply>][] = [
      ['Mcp-Name missing', (url) => modern(url, 'tok-alice', 'tasks/get', { taskId: ids.done }, TASKS, { 'mcp-name': undefined })],
      ['Mcp-Name of another task', (url) => modern(url, 'tok-alice', 'tasks/get', { taskId: ids.done }, TASKS, { 'mcp-name': ids.soft })],
      [
        'Mcp-Name base64-encoded',
        (url) => modern(url, 'tok-alice', 'tasks/get', { taskId: ids.done }, TASKS, { 'mcp-name': `=?base64?${Buffer.from(ids.done!).toString('base64')}?=` }),
      ],
      ['Mcp-Method missing', (url) => modern(url, 'tok-alice', 'tasks/get', { taskId: ids.done }, TASKS, { 'mcp-method': undefined })],
      ['Mcp-Method of another method', (url) => modern(url, 'tok-alice', 'tasks/get', { taskId: ids.done }, TASKS, { 'mcp-method': 'tools/list' })],
      ['MCP-Protocol-Version missing', (url) => modern(url, 'tok-alice', 'tasks/get', { taskId: ids.done }, TASKS, { 'mcp-protocol-version': undefined })],
      ['taskId not a string', (url) => modern(url, 'tok-alice', 'tasks/get', { taskId: 5 })],
      ["bob's task", (url) => modern(url, 'tok-bob', 'tasks/get', { taskId: ids.done })],
    ];
    for (const [label, probe] of declined) await same(probe, label);
    const mismatch = await same((url) => modern(url, 'tok-alice', 'tasks/get', { taskId: ids.done }, TASKS, { 'mcp-name': ids.soft }), 'Mcp-Name mismatch');
    assert.equal(mismatch.fast.message?.error?.code, -32020);
  });

  it('2026-07-28 task-creating tools/call: the same task, refusals and MRTR answers; no per-request McpServer is built', { timeout: 60_000 }, async () => {
    await modern(fast.url, 'tok-alice', 'tools/list', {});
    const built = fast.servers2026Built;
    /** A reply with the fresh task's id and times blanked, so two servers' new tasks compare equal. */
    const blank = (reply: Reply): Reply =>
      JSON.parse(
        JSON.stringify(reply)
          .replace(/"[0-9a-f]{32}"/g, '"<taskId>"')
          .replace(/"\d{4}-\d\d-\d\dT[\d:.]+Z"/g, '"<time>"'),
      ) as Reply;
    const alike = async (probe: (url: string) => Promise<Reply>, label: string) => {
      const [a, b] = [blank(await probe(fast.url)), blank(await probe(sdk.url))];
      assert.equal(a.status, b.status, `${label}: HTTP status`);
      assert.deepEqual(a.message, b.message, `${label}: JSON-RPC message`);
      return a;
    };
    const call =
      (params: Record<string, unknown>, capabilities: Record<string, unknown> = TASKS, extra: Record<string, string | undefined> = {}) =>
      (url: string) =>
        modern(url, 'tok-alice', 'tools/call', params, capabilities, extra);

    const created = await alike(call({ name: 'echo', arguments: { text: 'x' } }), 'a task');
    assert.equal(created.message?.result?.resultType, 'task');
    const taken: [string, (url: string) => Promise<Reply>][] = [
      ['bad arguments', call({ name: 'echo', arguments: { text: 5 } })],
      ['arguments not an object', call({ name: 'echo', arguments: [1] })],
      ['a required tool, client without the extension', call({ name: 'must', arguments: {} }, {})],
      ['a required tool', call({ name: 'must', arguments: {} })],
      ['a question the client cannot answer', call({ name: 'ask', arguments: {} })],
      ['a tampered requestState', call({ name: 'ask', arguments: {}, requestState: 'forged', inputResponses: {} }, { ...TASKS, elicitation: {} })],
    ];
    for (const [label, probe] of taken) await alike(probe, label);
    assert.equal(fast.servers2026Built, built, 'the fast server built no McpServer for these calls');
    const required = await alike(call({ name: 'must', arguments: {} }, {}), 'required, no extension');
    assert.deepEqual([required.status, required.message?.error?.code], [400, -32021]);

    // Declined: ordinary calls (progress may stream), other tools, headers the SDK must judge.
    const declined: [string, (url: string) => Promise<Reply>][] = [
      ['an ordinary call (no extension)', call({ name: 'echo', arguments: { text: 'plain' } }, {})],
      ['not a task tool', call({ name: 'nope', arguments: {} })],
      ['Mcp-Name missing', call({ name: 'echo', arguments: { text: 'x' } }, TASKS, { 'mcp-name': undefined })],
      ['Mcp-Name of another tool', call({ name: 'echo', arguments: { text: 'x' } }, TASKS, { 'mcp-name': 'ask' })],
      [
        'Mcp-Name base64-encoded',
        call({ name: 'echo', arguments: { text: 'x' } }, TASKS, { 'mcp-name': `=?base64?${Buffer.from('echo').toString('base64')}?=` }),
      ],
      ['Mcp-Method of another method', call({ name: 'echo', arguments: { text: 'x' } }, TASKS, { 'mcp-method': 'tools/list' })],
    ];
    for (const [label, probe] of declined) await alike(probe, label);
    const mismatch = await alike(call({ name: 'echo', arguments: { text: 'x' } }, TASKS, { 'mcp-name': 'ask' }), 'Mcp-Name mismatch');
    assert.equal(mismatch.message?.error?.code, -32020);
  });
});
