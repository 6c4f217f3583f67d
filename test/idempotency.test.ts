/**
 * Idempotent task creation on the wire (SEP-3182 "Request Idempotency"): `params.idempotencyKey`
 * (or the same key in `_meta`) on `tools/call`, in both protocol versions, on the fast path and the
 * SDK's; the `tools.idempotency` capability; and the client library sending a create again, with
 * the same key, after a proxy cut its reply — one task, one question. (Every store's part of the
 * contract, racing creates and expiry included, is in test/store-contract.test.ts.)
 */
import assert from 'node:assert/strict';
import { request as httpRequest, createServer, type IncomingMessage, type Server } from 'node:http';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { ENGINE_ACCESS } from '../src/core/access.js';
import { IDEMPOTENCY_META_KEY } from '../src/core/idempotency.js';
import { connectTaskClient } from '../src/client/connect.js';
import { ModernRawClient } from './helpers/modern-client.js';
import { RawMcpClient } from './helpers/raw-client.js';
import { startTestServer } from './helpers/test-server.js';
import { until } from './helpers/until.js';

const dir = mkdtempSync(join(tmpdir(), 'mcp-tasks-idem-'));
after(() => rmSync(dir, { recursive: true, force: true }));

type TestServer = Awaited<ReturnType<typeof startTestServer>>;

/** How many tasks `tool` has in the server's store. */
async function tasksOf(server: TestServer, tool: string): Promise<number> {
  return (await server.store.listAll({ tool }, ENGINE_ACCESS)).tasks.length;
}

describe('idempotency keys on the wire', () => {
  let server: TestServer;
  before(async () => {
    server = await startTestServer(`sqlite:${join(dir, 'wire.db')}`);
  });
  after(() => server.close());

  it('2026-07-28: declares tools.idempotency; a retried create returns the first task, from the key in params or in _meta', async () => {
    const client = new ModernRawClient(server.url);
    const discover = await client.request('server/discover');
    assert.deepEqual(discover.result.capabilities.tools.idempotency, {});
    const call = (args: Record<string, unknown>, key: Record<string, unknown>) => client.request('tools/call', { name: 'ask', arguments: args, ...key });
    const first = (await call({ question: 'Approve 2026?' }, { idempotencyKey: 'k-2026' })).result;
    assert.equal(first.resultType, 'task');
    await until(async () => (await client.request('tasks/get', { taskId: first.taskId })).result.status === 'input_required', { what: 'the question' });
    const again = (await call({ question: 'Approve 2026?' }, { idempotencyKey: 'k-2026' })).result;
    assert.equal(again.taskId, first.taskId);
    assert.equal(again.status, 'input_required', 'the task as it is now');
    const viaMeta = (await call({ question: 'Approve 2026?' }, { _meta: { [IDEMPOTENCY_META_KEY]: 'k-2026' } })).result;
    assert.equal(viaMeta.taskId, first.taskId, 'the same key in _meta');
    assert.equal(await tasksOf(server, 'ask'), 1, 'one task, one question');

    const conflict = await call({ question: 'Something else?' }, { idempotencyKey: 'k-2026' });
    assert.equal(conflict.error?.code, -32602);
    assert.deepEqual(conflict.error?.data, { reason: 'idempotencyKeyConflict', idempotencyKey: 'k-2026', taskId: first.taskId });
    assert.match(conflict.error?.message ?? '', /already used for a different request/);
    const malformed = await call({ question: 'x' }, { idempotencyKey: 42 });
    assert.equal(malformed.error?.code, -32602);
    const differing = await call({ question: 'x' }, { idempotencyKey: 'a', _meta: { [IDEMPOTENCY_META_KEY]: 'b' } });
    assert.equal(differing.error?.code, -32602);
    assert.match(differing.error?.message ?? '', /differ/);
    assert.equal(await tasksOf(server, 'ask'), 1, 'refused calls store nothing');
  });

  it('2025-11-25: declares tools.idempotency; task-augmented and ordinary calls with a key create once', async () => {
    const client = new RawMcpClient(server.url);
    const init = await client.initialize();
    assert.deepEqual(init.capabilities.tools.idempotency, {});
    const augmented = (key: unknown, text = 'once') =>
      client.request('tools/call', { name: 'echo', arguments: { text }, task: { ttl: 60_000 }, idempotencyKey: key });
    const first = (await augmented('k-2025')).result.task;
    const again = (await augmented('k-2025')).result.task;
    assert.equal(again.taskId, first.taskId);
    assert.equal((await augmented('k-2025', 'other')).error?.code, -32602);
    assert.equal((await augmented('')).error?.code, -32602);

    // An ordinary call (no params.task) goes through the SDK, which drops unknown params: the key still counts.
    const before = await tasksOf(server, 'slow');
    const ordinary = (key: Record<string, unknown>) => client.request('tools/call', { name: 'slow', arguments: { ms: 1 }, ...key });
    const one = await ordinary({ idempotencyKey: 'k-ordinary' });
    const two = await ordinary({ _meta: { [IDEMPOTENCY_META_KEY]: 'k-ordinary' } });
    assert.deepEqual(one.result?.content, [{ type: 'text', text: 'slept' }]);
    assert.deepEqual(two.result?.content, one.result?.content, 'the retry gets the first call’s result');
    assert.equal((await tasksOf(server, 'slow')) - before, 1, 'one task for both calls');
    const conflicting = await client.request('tools/call', { name: 'slow', arguments: { ms: 1 }, idempotencyKey: 'x', _meta: { [IDEMPOTENCY_META_KEY]: 'y' } });
    assert.equal(conflicting.error?.code, -32602, 'params and _meta disagreeing are refused, not one silently chosen');
  });

  it('2026-07-28: an ordinary call (a client that does not declare the tasks extension) with a key runs once', async () => {
    const plain = new ModernRawClient(server.url, false);
    const before = await tasksOf(server, 'echo');
    const one = (await plain.request('tools/call', { name: 'echo', arguments: { text: 'ordinary' }, idempotencyKey: 'k-ordinary-2026' })).result;
    const two = (await plain.request('tools/call', { name: 'echo', arguments: { text: 'ordinary' }, idempotencyKey: 'k-ordinary-2026' })).result;
    assert.equal(one.resultType, 'complete');
    assert.deepEqual(two.content, one.content);
    assert.equal((await tasksOf(server, 'echo')) - before, 1);
  });

  it('a server told not to declare it still honors keys on task tools', async () => {
    const quiet = await startTestServer('memory:', { declareIdempotency: false });
    try {
      const client = new ModernRawClient(quiet.url);
      assert.equal((await client.request('server/discover')).result.capabilities.tools?.idempotency, undefined);
      const a = (await client.request('tools/call', { name: 'echo', arguments: { text: 'q' }, idempotencyKey: 'q' })).result;
      const b = (await client.request('tools/call', { name: 'echo', arguments: { text: 'q' }, idempotencyKey: 'q' })).result;
      assert.equal(a.taskId, b.taskId);
    } finally {
      await quiet.close();
    }
  });
});

/**
 * An HTTP proxy that forwards every request to `target` but, for the first `cut` `tools/call`
 * requests, cuts the connection once the server has answered — the reply is lost on the way back,
 * after the server acted. Records each `tools/call` body it forwarded.
 */
async function startCuttingProxy(target: string, cut: number): Promise<{ url: string; calls: unknown[]; close(): Promise<void> }> {
  const upstream = new URL(target);
  const calls: unknown[] = [];
  let toCut = cut;
  const server: Server = createServer((req: IncomingMessage, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const body = Buffer.concat(chunks);
      let message: { method?: string; params?: unknown } | undefined;
      try {
        message = JSON.parse(body.toString('utf8')) as typeof message;
      } catch {
        /* not JSON: forwarded as is */
      }
      const isCall = message?.method === 'tools/call';
      if (isCall) calls.push(message!.params);
      const cutThis = isCall && toCut > 0;
      if (cutThis) toCut--;
      const forward = httpRequest(
        { host: upstream.hostname, port: upstream.port, path: req.url, method: req.method, headers: { ...req.headers, host: upstream.host } },
        (answer) => {
          if (cutThis) {
            answer.resume();
            answer.on('end', () => req.socket.destroy()); // the server answered; the client never hears it
            return;
          }
          res.writeHead(answer.statusCode ?? 502, answer.headers);
          answer.pipe(res);
        },
      );
      forward.on('error', () => res.destroy());
      forward.end(body);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as { port: number };
  return {
    url: `http://127.0.0.1:${port}${upstream.pathname}`,
    calls,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

describe('the client library sends a create again after its reply was cut', () => {
  for (const protocolVersion of ['2025-11-25', '2026-07-28'] as const) {
    it(`${protocolVersion}: one task and one approval question, the retry carrying the same key`, async () => {
      const server = await startTestServer(`sqlite:${join(dir, `cut-${protocolVersion}.db`)}`);
      const proxy = await startCuttingProxy(server.url, 1);
      const tc = await connectTaskClient(proxy.url, { protocolVersion, answer: async () => undefined });
      try {
        assert.equal(tc.idempotency, true);
        const execution = await tc.session.callTool('ask', { question: 'Approve invoice 7?' }, { task: { preference: 'prefer' } });
        assert.equal(execution.kind, 'task');
        const taskId = (execution as { handle: { taskId: string } }).handle.taskId;
        assert.equal(proxy.calls.length, 2, 'the call was sent twice: the first reply was cut');
        const keys = proxy.calls.map((p) => (p as { _meta?: Record<string, unknown> })._meta?.[IDEMPOTENCY_META_KEY]);
        assert.equal(typeof keys[0], 'string');
        assert.equal(keys[1], keys[0], 'with the same idempotency key');
        const task = await until(
          async () => {
            const t = await server.store.get(taskId, ENGINE_ACCESS);
            return t.status === 'input_required' && t;
          },
          { what: 'the approval question' },
        );
        assert.equal(Object.keys(task.inputRequests).length, 1, 'one approval question');
        assert.equal(await tasksOf(server, 'ask'), 1, 'one task');
      } finally {
        await tc.close();
        await proxy.close();
        await server.close();
      }
    });
  }

  it('a server that does not declare idempotency never gets a call twice', async () => {
    const server = await startTestServer('memory:', { declareIdempotency: false });
    const proxy = await startCuttingProxy(server.url, 1);
    const tc = await connectTaskClient(proxy.url, { protocolVersion: '2026-07-28', answer: async () => undefined });
    try {
      assert.equal(tc.idempotency, false);
      await assert.rejects(tc.session.callTool('ask', { question: 'Approve?' }, { task: { preference: 'prefer' } }));
      assert.equal(proxy.calls.length, 1, 'not sent again');
      assert.equal(await tasksOf(server, 'ask'), 1, 'the first call did create its task: a blind retry would have made two');
    } finally {
      await tc.close();
      await proxy.close();
      await server.close();
    }
  });
});
