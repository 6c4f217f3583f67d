/** The 2026-07-28 Tasks extension on the wire, beside 2025-11-25 on the same server and store (SDK-free clients). */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { startInvoiceServer } from '../examples/invoice/server.js';
import { ENGINE_ACCESS } from '../src/core/access.js';
import { silentLogger } from '../src/core/log.js';
import { ModernRawClient, readSse, TASKS_EXT } from './helpers/modern-client.js';
import { RawMcpClient, type RpcMessage } from './helpers/raw-client.js';
import { startTestServer } from './helpers/test-server.js';
import { until } from './helpers/until.js';

const dir = mkdtempSync(join(tmpdir(), 'mcp-tasks-wire26-'));
after(() => rmSync(dir, { recursive: true, force: true }));

/** Polls `tasks/get` (every 20 ms, up to 6 s) until `ok(task)`; resolves with the task. */
async function untilTask(client: ModernRawClient, taskId: string, ok: (t: any) => boolean): Promise<any> {
  let last: any;
  return until(
    async () => {
      last = (await client.request('tasks/get', { taskId })).result;
      return last && ok(last) && last;
    },
    { timeoutMs: 6000, what: () => `task ${taskId} to get there (last seen: ${JSON.stringify(last)})` },
  );
}

describe('wire 2026-07-28 (raw JSON-RPC)', () => {
  let server: Awaited<ReturnType<typeof startTestServer>>;
  let client: ModernRawClient;
  before(async () => {
    server = await startTestServer(`sqlite:${join(dir, 'w26.db')}`);
    client = new ModernRawClient(server.url);
  });
  after(() => server.close());

  it('advertises the extension in server/discover', async () => {
    const res = await client.request('server/discover');
    assert.deepEqual(res.result.capabilities.extensions[TASKS_EXT], {});
    assert.equal(res.result.capabilities.tasks, undefined, 'no legacy tasks capability in this era');
    assert.equal(res.result.supportedVersions[0], '2026-07-28', 'the modern revision first');
    assert.ok(res.result.supportedVersions.includes('2025-11-25'), 'the 2025-11-25 sessions this endpoint serves are listed too');
    const legacy = new RawMcpClient(server.url);
    assert.equal((await legacy.initialize()).protocolVersion, '2025-11-25', 'and really served');
  });

  it("the invoice server's instructions are true for the era asking", async () => {
    const invoiceServer = await startInvoiceServer({ store: 'memory:', port: 0, logger: silentLogger });
    try {
      const modern = (await new ModernRawClient(invoiceServer.url!).request('server/discover')).result.instructions as string;
      assert.match(modern, /tasks\/update/);
      assert.doesNotMatch(modern, /tasks\/result/, 'tasks/result does not exist in 2026-07-28');
      const legacy = (await new RawMcpClient(invoiceServer.url!).initialize()).instructions as string;
      assert.match(legacy, /tasks\/result/);
      assert.doesNotMatch(legacy, /tasks\/update/);
    } finally {
      await invoiceServer.close();
    }
  });

  it('answers a declaring client with a flat CreateTaskResult; tasks/get inlines the result', async () => {
    const created = (await client.request('tools/call', { name: 'echo', arguments: { text: 'hello' } })).result;
    assert.equal(created.resultType, 'task');
    assert.equal(created.status, 'working');
    assert.equal(typeof created.ttlMs, 'number');
    assert.equal(typeof created.pollIntervalMs, 'number');
    assert.equal(created.task, undefined, 'flat, not wrapped');
    const done = await untilTask(client, created.taskId, (t) => t.status === 'completed');
    assert.equal(done.resultType, 'complete');
    assert.deepEqual(done.result, { content: [{ type: 'text', text: 'hello' }], resultType: 'complete' }, 'the 2026 CallToolResult, discriminator included');
    const stored = await server.store.get(created.taskId, ENGINE_ACCESS);
    assert.equal(stored.status, 'completed', 'CreateTaskResult was only sent once the task was stored');
  });

  it('asks through inputRequests and takes answers through tasks/update (unknown keys ignored, durable before the ack)', async () => {
    const { taskId } = (await client.request('tools/call', { name: 'ask', arguments: { question: 'Name?' } })).result;
    const waiting = await untilTask(client, taskId, (t) => t.status === 'input_required');
    const keys = Object.keys(waiting.inputRequests);
    assert.equal(keys.length, 1);
    assert.deepEqual(waiting.inputRequests[keys[0]!], {
      method: 'elicitation/create',
      params: { mode: 'form', message: 'Name?', requestedSchema: { type: 'object', properties: { reply: { type: 'string' } }, required: ['reply'] } },
    });
    const again = (await client.request('tasks/get', { taskId })).result;
    assert.deepEqual(Object.keys(again.inputRequests), keys, 'the same key on every poll');
    const ignored = await client.request('tasks/update', { taskId, inputResponses: { 'never-issued': { action: 'accept', content: { reply: 'x' } } } });
    assert.equal(ignored.result.resultType, 'complete');
    assert.equal((await client.request('tasks/get', { taskId })).result.status, 'input_required', 'answers to unknown keys change nothing');
    const ack = await client.request('tasks/update', { taskId, inputResponses: { [keys[0]!]: { action: 'accept', content: { reply: 'Grace' } } } });
    assert.equal(ack.result.resultType, 'complete');
    assert.deepEqual(await server.store.inputAnswer(taskId, keys[0]!), { action: 'accept', content: { reply: 'Grace' } }, 'the answer is durable at the ack');
    const done = await untilTask(client, taskId, (t) => t.status === 'completed');
    assert.deepEqual(done.result.content, [{ type: 'text', text: 'reply: Grace' }]);
  });

  it('ends isError results and thrown errors completed, JSON-RPC errors failed', async () => {
    const soft = (await client.request('tools/call', { name: 'soft_fail', arguments: {} })).result;
    const softDone = await untilTask(client, soft.taskId, (t) => t.status !== 'working');
    assert.equal(softDone.status, 'completed');
    assert.equal(softDone.result.isError, true);
    const thrown = (await client.request('tools/call', { name: 'throws', arguments: {} })).result;
    const thrownDone = await untilTask(client, thrown.taskId, (t) => t.status !== 'working');
    assert.equal(thrownDone.status, 'completed');
    assert.deepEqual(thrownDone.result, { content: [{ type: 'text', text: 'kaput' }], isError: true, resultType: 'complete' });
    const rpc = (await client.request('tools/call', { name: 'rpc_fail', arguments: {} })).result;
    const rpcDone = await untilTask(client, rpc.taskId, (t) => t.status !== 'working');
    assert.equal(rpcDone.status, 'failed');
    assert.deepEqual(rpcDone.error, { code: -32602, message: 'the order does not exist', data: { orderId: 7 } });
    assert.equal(rpcDone.result, undefined);
  });

  it('acknowledges tasks/cancel and stops the work; cancelling an ended task is acknowledged too', async () => {
    const { taskId } = (await client.request('tools/call', { name: 'slow', arguments: { ms: 60_000 } })).result;
    const ack = await client.request('tasks/cancel', { taskId });
    assert.deepEqual(ack.result, { resultType: 'complete', _meta: ack.result._meta });
    assert.equal((await client.request('tasks/get', { taskId })).result.status, 'cancelled');
    assert.equal(server.runtime.isRunning(taskId), false);
    assert.equal((await client.request('tasks/cancel', { taskId })).result.resultType, 'complete');
  });

  it('decides per tool: { afterMs } answers fast work directly and slow work with a task', async () => {
    const fast = (await client.request('tools/call', { name: 'quick', arguments: { ms: 0 } })).result;
    assert.equal(fast.resultType, 'complete');
    assert.deepEqual(fast.content, [{ type: 'text', text: 'quick 0' }]);
    const slow = (await client.request('tools/call', { name: 'quick', arguments: { ms: 3000 } })).result;
    assert.equal(slow.resultType, 'task');
    assert.equal(slow.status, 'working');
  });

  it('ignores params.task (removed in this era)', async () => {
    const res = (await client.request('tools/call', { name: 'echo', arguments: { text: 'x' }, task: { ttl: 5 } })).result;
    assert.equal(res.resultType, 'task');
    assert.notEqual(res.ttlMs, 5);
  });

  it('answers errors as the extension says', async () => {
    const unknown = await client.request('tasks/get', { taskId: 'nope' });
    assert.equal(unknown.error?.code, -32602);
    assert.equal((await client.request('tasks/update', { taskId: 'nope', inputResponses: {} })).error?.code, -32602);
    assert.equal((await client.request('tasks/cancel', { taskId: 'nope' })).error?.code, -32602);
    assert.equal((await client.request('tasks/result', { taskId: 'nope' })).error?.code, -32601);
    assert.equal((await client.request('tasks/list', {})).error?.code, -32601);
    const { taskId } = (await client.request('tools/call', { name: 'ask', arguments: { question: 'q' } })).result;
    await untilTask(client, taskId, (t) => t.status === 'input_required');
    const bad = await client.request('tasks/update', { taskId, inputResponses: { 'elicit-1': { action: 'maybe' } } });
    assert.equal(bad.error?.code, -32602);
    assert.equal((await client.request('tasks/get', { taskId })).result.status, 'input_required', 'a malformed answer writes nothing');
    const mismatch = await client.request('tasks/get', { taskId }, { 'mcp-name': 'some-other-task' });
    assert.equal(mismatch.error?.code, -32020, 'Mcp-Name must match params.taskId');
    await client.request('tasks/cancel', { taskId });
  });

  it('refuses non-declaring clients with -32021 and never gives them a task', async () => {
    const plain = new ModernRawClient(server.url, false);
    const { taskId } = (await client.request('tools/call', { name: 'echo', arguments: { text: 'x' } })).result;
    for (const [method, params] of [
      ['tasks/get', { taskId }],
      ['tasks/update', { taskId, inputResponses: {} }],
      ['tasks/cancel', { taskId }],
      ['tools/call', { name: 'report', arguments: {} }],
    ] as const) {
      const res = await plain.request(method, params as Record<string, unknown>);
      assert.equal(res.error?.code, -32021, method);
      assert.deepEqual((res.error?.data as any)?.requiredCapabilities, { extensions: { [TASKS_EXT]: {} } });
    }
    const ordinary = await plain.request('tools/call', { name: 'echo', arguments: { text: 'sync' } });
    assert.equal(ordinary.result.resultType, 'complete');
    assert.deepEqual(ordinary.result.content, [{ type: 'text', text: 'sync' }]);
  });

  it('reads a task created over 2025-11-25 with the new tasks/get, and the other way round', async () => {
    const legacy = new RawMcpClient(server.url);
    await legacy.initialize();
    const old = (await legacy.request('tools/call', { name: 'echo', arguments: { text: 'old era' }, task: {} })).result.task;
    const seen = await untilTask(client, old.taskId, (t) => t.status === 'completed');
    assert.deepEqual(seen.result.content, [{ type: 'text', text: 'old era' }]);
    const failedOld = (await legacy.request('tools/call', { name: 'soft_fail', arguments: {}, task: {} })).result.task;
    const failedSeen = await untilTask(client, failedOld.taskId, (t) => t.status !== 'working');
    assert.equal(failedSeen.status, 'failed', 'a 2025 task keeps its status');
    assert.equal(failedSeen.error.data.result.isError, true, 'and carries its result in the error data');
    const fresh = (await client.request('tools/call', { name: 'echo', arguments: { text: 'new era' } })).result;
    await untilTask(client, fresh.taskId, (t) => t.status === 'completed');
    const viaLegacy = await legacy.request('tasks/result', { taskId: fresh.taskId });
    assert.deepEqual(viaLegacy.result.content, [{ type: 'text', text: 'new era' }]);
  });

  it('streams notifications/tasks on subscriptions/listen and ends when the tasks end', async () => {
    const { taskId } = (await client.request('tools/call', { name: 'ask', arguments: { question: 'Listen?' } })).result;
    await untilTask(client, taskId, (t) => t.status === 'input_required');
    const response = await client.send('subscriptions/listen', { notifications: { taskIds: [taskId, 'not-mine'] } });
    const seen: RpcMessage[] = [];
    const messages = readSse(response, (m) => (seen.push(m), m.id !== undefined));
    await until(() => seen.some((m) => m.method === 'notifications/tasks'), { what: "the subscription's first notifications/tasks" });
    await client.request('tasks/update', { taskId, inputResponses: { 'elicit-1': { action: 'accept', content: { reply: 'yes' } } } });
    const all = await messages;
    assert.equal(all[0]!.method, 'notifications/subscriptions/acknowledged');
    assert.deepEqual(all[0]!.params.notifications, { taskIds: [taskId] });
    const subscriptionId = all[0]!.params._meta['io.modelcontextprotocol/subscriptionId'];
    const updates = all.filter((m) => m.method === 'notifications/tasks');
    assert.equal(updates[0]!.params.status, 'input_required');
    assert.ok(updates[0]!.params.inputRequests['elicit-1']);
    const last = updates.at(-1)!.params;
    assert.equal(last.status, 'completed');
    assert.deepEqual(last.result.content, [{ type: 'text', text: 'reply: yes' }]);
    assert.ok(updates.every((u) => u.params._meta['io.modelcontextprotocol/subscriptionId'] === subscriptionId));
    assert.equal(all.at(-1)!.result.resultType, 'complete', 'graceful end');
    const plain = new ModernRawClient(server.url, false);
    const refused = await plain.request('subscriptions/listen', { notifications: { taskIds: [taskId] } });
    assert.equal(refused.error?.code, -32021);
  });

  it('a task left input_required is answered after a restart', async () => {
    const { taskId } = (await client.request('tools/call', { name: 'ask', arguments: { question: 'Still there?' } })).result;
    await untilTask(client, taskId, (t) => t.status === 'input_required');
    await server.close();
    server = await startTestServer(`sqlite:${join(dir, 'w26.db')}`);
    client = new ModernRawClient(server.url);
    const waiting = (await client.request('tasks/get', { taskId })).result;
    assert.equal(waiting.status, 'input_required');
    await client.request('tasks/update', {
      taskId,
      inputResponses: { [Object.keys(waiting.inputRequests)[0]!]: { action: 'accept', content: { reply: 'yes' } } },
    });
    const done = await untilTask(client, taskId, (t) => t.status === 'completed');
    assert.deepEqual(done.result.content, [{ type: 'text', text: 'reply: yes' }]);
  });
});
