/** Task-unaware clients, principals, limits, TTL purge, secrets at rest. */
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { Client, StreamableHTTPClientTransport } from '@modelcontextprotocol/client';
import { startInvoiceServer } from '../examples/invoice/server.js';
import { silentLogger } from '../src/core/log.js';
import { ENGINE_ACCESS } from '../src/core/access.js';
import { LimitExceededError } from '../src/core/errors.js';
import type { JsonObject } from '../src/core/json.js';
import { TaskRuntime } from '../src/runtime/runtime.js';
import { openStore } from '../src/store/open-store.js';
import { PollThrottle, pollTask } from '../src/wire/poll-throttle.js';
import { ModernRawClient } from './helpers/modern-client.js';
import { RawMcpClient } from './helpers/raw-client.js';
import { until } from './helpers/until.js';

const dir = mkdtempSync(join(tmpdir(), 'mcp-tasks-sec-'));
after(() => rmSync(dir, { recursive: true, force: true }));
const invoice = (id: string) => JSON.parse(readFileSync(join('examples/invoice/data/invoices', `${id}.json`), 'utf8'));
const text = (result: any) => (result.content as { text: string }[]).map((c) => c.text).join('\n');

describe('fallback for clients without Tasks', () => {
  it('a plain client that never sends task gets a handle and approves the invoice through answer_task_input', async () => {
    const server = await startInvoiceServer({
      store: 'memory:',
      port: 0,
      fallbackTools: true,
      syncWaitMs: 2000,
      policy: { pollIntervalMs: 50 },
      logger: silentLogger,
    });
    const client = new Client({ name: 'plain-host', version: '0' }); // no elicitation, no tasks
    try {
      await client.connect(new StreamableHTTPClientTransport(new URL(server.url!)));
      const names = (await client.listTools()).tools.map((t) => t.name);
      for (const tool of ['get_task_status', 'get_task_result', 'answer_task_input', 'cancel_task']) assert.ok(names.includes(tool), tool);

      const handOff = await client.callTool({ name: 'process_invoice', arguments: { invoice: invoice('INV-2026-0001') } });
      assert.notEqual(handOff.isError, true, 'an ordinary result the model can act on');
      const status = handOff.structuredContent as any;
      assert.equal(status.status, 'input_required');
      assert.match(text(handOff), /answer_task_input/);
      assert.deepEqual(status.pendingInput[0].requestedSchema.required, ['decision']);

      const viaStatus = await client.callTool({ name: 'get_task_status', arguments: { taskId: status.taskId } });
      assert.equal((viaStatus.structuredContent as any).pendingInput[0].message, status.pendingInput[0].message);

      const wrong = await client.callTool({ name: 'answer_task_input', arguments: { taskId: status.taskId, answers: { decision: 'maybe' } } });
      assert.equal(wrong.isError, true);
      assert.match(text(wrong), /decision must be one of: approve, reject/);
      assert.equal(
        ((await client.callTool({ name: 'get_task_status', arguments: { taskId: status.taskId } })).structuredContent as any).status,
        'input_required',
        'a wrong answer changes nothing',
      );

      const answered = await client.callTool({
        name: 'answer_task_input',
        arguments: { taskId: status.taskId, answers: { decision: 'approve', comment: 'via fallback' } },
      });
      assert.notEqual(answered.isError, true, text(answered));
      const result = await client.callTool({ name: 'get_task_result', arguments: { taskId: status.taskId, waitSeconds: 10 } });
      assert.equal((result.structuredContent as any).status, 'paid', text(result));
      assert.match(text(result), /approved \(via fallback\) and paid/);
      const again = await client.callTool({ name: 'answer_task_input', arguments: { taskId: status.taskId, answers: { decision: 'reject' } } });
      assert.equal(again.isError, true, 'no second answer');
      const cancelDone = await client.callTool({ name: 'cancel_task', arguments: { taskId: status.taskId } });
      assert.equal(cancelDone.isError, true);
      assert.match(text(cancelDone), /terminal/);
      const unknown = await client.callTool({ name: 'get_task_status', arguments: { taskId: 'nope' } });
      assert.equal(unknown.isError, true);
      assert.match(text(unknown), /not found/i);
    } finally {
      await client.close();
      await server.close();
    }
  });
});

describe('principals', () => {
  const tokens = { 'tok-alice': 'alice', 'tok-bob': 'bob' };
  it('another principal learns nothing about a task and cannot touch it, on every method of both eras', async () => {
    const server = await startInvoiceServer({ store: 'memory:', port: 0, tokens, fallbackTools: true, policy: { pollIntervalMs: 50 }, logger: silentLogger });
    try {
      const unauthenticated = await fetch(server.url!, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{}' });
      assert.equal(unauthenticated.status, 401);
      assert.match(unauthenticated.headers.get('www-authenticate') ?? '', /Bearer/);

      const alice = new RawMcpClient(server.url!, { authorization: 'Bearer tok-alice' });
      const bob = new RawMcpClient(server.url!, { authorization: 'Bearer tok-bob' });
      const init = await alice.initialize();
      assert.deepEqual(init.capabilities.tasks.list, {}, 'tasks/list is declared when requestors are authenticated');
      await bob.initialize();
      const aliceTask = (await alice.request('tools/call', { name: 'process_invoice', arguments: { invoice: invoice('INV-2026-0003') }, task: {} })).result
        .task;
      await until(async () => (await alice.request('tasks/get', { taskId: aliceTask.taskId })).result.status === 'input_required', {
        what: "alice's invoice to await approval",
      });

      for (const [method, params] of [
        ['tasks/get', { taskId: aliceTask.taskId }],
        ['tasks/result', { taskId: aliceTask.taskId }],
        ['tasks/cancel', { taskId: aliceTask.taskId }],
      ] as const) {
        const res = await bob.request(method, params);
        assert.equal(res.error?.code, -32602, method);
        assert.match(res.error!.message, /not found/i, `${method} reveals nothing`);
      }
      const bobList = await bob.request('tasks/list', {});
      assert.deepEqual(bobList.result.tasks, [], "bob's list does not show alice's task");
      const aliceList = await alice.request('tasks/list', {});
      assert.deepEqual(
        aliceList.result.tasks.map((t: any) => t.taskId),
        [aliceTask.taskId],
      );
      for (const tool of ['get_task_status', 'get_task_result', 'cancel_task', 'answer_task_input']) {
        const res = await bob.request('tools/call', { name: tool, arguments: { taskId: aliceTask.taskId, answers: { decision: 'approve' } } });
        assert.equal(res.result.isError, true, tool);
        assert.match(res.result.content[0].text, /not found/i, tool);
      }

      const aliceModern = new ModernRawClientWithAuth(server.url!, 'tok-alice');
      const bobModern = new ModernRawClientWithAuth(server.url!, 'tok-bob');
      const modernTask = (await aliceModern.request('tools/call', { name: 'process_invoice', arguments: { invoice: invoice('INV-2026-0002') } })).result;
      assert.equal(modernTask.resultType, 'task');
      for (const [method, params] of [
        ['tasks/get', { taskId: modernTask.taskId }],
        ['tasks/update', { taskId: modernTask.taskId, inputResponses: { 'elicit-1': { action: 'accept', content: { decision: 'approve' } } } }],
        ['tasks/cancel', { taskId: modernTask.taskId }],
        ['tasks/get', { taskId: aliceTask.taskId }],
      ] as const) {
        const res = await bobModern.request(method, params as Record<string, unknown>);
        assert.equal(res.error?.code, -32602, `${method} by bob`);
      }
      const listen = await bobModern.send('subscriptions/listen', { notifications: { taskIds: [modernTask.taskId] } });
      const ack = (await listen.text()).split('\n').find((l) => l.includes('acknowledged'));
      assert.match(ack ?? '', /"taskIds":\[\]/, 'a foreign task is not acknowledged');

      assert.equal((await alice.request('tasks/get', { taskId: aliceTask.taskId })).result.status, 'input_required', "alice's task is untouched");
      const mine = (await aliceModern.request('tasks/get', { taskId: modernTask.taskId })).result;
      assert.notEqual(mine.status, 'cancelled');
    } finally {
      await server.close();
    }
  });
});

class ModernRawClientWithAuth extends ModernRawClient {
  constructor(
    url: string,
    private readonly token: string,
  ) {
    super(url);
  }
  override send(method: string, params: Record<string, unknown> = {}, headers: Record<string, string> = {}) {
    return super.send(method, params, { authorization: `Bearer ${this.token}`, ...headers });
  }
}

describe('limits', () => {
  it('caps live tasks per principal with -32000 and a clear message; ended tasks free the quota', async () => {
    const server = await startInvoiceServer({ store: 'memory:', port: 0, maxLiveTasks: 2, policy: { pollIntervalMs: 50 }, logger: silentLogger });
    try {
      const client = new RawMcpClient(server.url!);
      await client.initialize();
      // INV-2026-0003 copies fit their PO three times over, so every one stays live waiting for approval.
      const call = (id: string) =>
        client.request('tools/call', { name: 'process_invoice', arguments: { invoice: { ...invoice('INV-2026-0003'), invoiceId: id } }, task: {} });
      const first = (await call('Q-1')).result.task;
      await call('Q-2');
      const third = await call('Q-3');
      assert.equal(third.error?.code, -32000);
      assert.match(third.error!.message, /at most 2/);
      assert.deepEqual(third.error!.data, { limit: 'maxLiveTasksPerOwner', max: 2, current: 2 });
      await client.request('tasks/cancel', { taskId: first.taskId });
      assert.ok((await call('Q-4')).result.task.taskId, 'a cancelled task no longer counts');
    } finally {
      await server.close();
    }
  });

  it('clamps ttl to the maximum and reports the value actually used', async () => {
    const server = await startInvoiceServer({ store: 'memory:', port: 0, policy: { maxTtlMs: 60_000 }, logger: silentLogger });
    try {
      const client = new RawMcpClient(server.url!);
      await client.initialize();
      const task = (await client.request('tools/call', { name: 'export_payments_report', arguments: { format: 'csv' }, task: { ttl: 10 * 24 * 3600_000 } }))
        .result.task;
      assert.equal(task.ttl, 60_000);
    } finally {
      await server.close();
    }
  });

  it('fails a task whose result is too large to keep', async () => {
    const store = openStore('memory:');
    const runtime = new TaskRuntime(store, { maxResultBytes: 1000, logger: silentLogger });
    runtime.register('big', { parse: (a) => a, handler: async () => ({ content: [{ type: 'text', text: 'x'.repeat(5000) }] }) });
    const task = await runtime.submit({ owner: null, tool: 'big', arguments: {}, errorResultStatus: 'failed' });
    const done = await runtime.waitForTerminal(task.taskId, null);
    assert.equal(done?.status, 'failed');
    assert.match(done?.statusMessage ?? '', /too large to keep \(\d+ bytes; the limit is 1000\)/);
    await runtime.close();
  });

  it('slows down polls faster than half the poll interval', async () => {
    let clock = 1_000_000;
    const slept: number[] = [];
    const throttle = new PollThrottle({ now: () => clock, sleep: async (ms) => void slept.push(ms) });
    assert.equal(await throttle.admit('alice', 't1', 1000, undefined), 0, 'first poll: no wait');
    clock += 100;
    assert.equal(await throttle.admit('alice', 't1', 1000, undefined), 400, 'too soon: held until half the interval');
    clock += 2000;
    assert.equal(await throttle.admit('alice', 't1', 1000, undefined), 0, 'well paced: no wait');
    assert.equal(await throttle.admit('bob', 't1', 1000, undefined), 0, 'per principal');
    assert.deepEqual(slept, [400]);
  });

  it('a tasks/get poll reads once when well paced and again only after the throttle held it back', async () => {
    const store = openStore('memory:');
    const task = await store.create({ owner: 'a', request: { tool: 't', arguments: {} }, errorResultStatus: 'failed' });
    let reads = 0;
    const get = store.backend.get.bind(store.backend);
    store.backend.get = (id: string) => (reads++, get(id));
    let clock = 0;
    const throttle = new PollThrottle({ now: () => clock, sleep: async () => undefined });
    const runtime = new TaskRuntime(store, { logger: silentLogger });
    await pollTask(runtime, task.taskId, 'a', throttle);
    assert.equal(reads, 1, 'first poll: one read');
    await pollTask(runtime, task.taskId, 'a', throttle);
    assert.equal(reads, 3, 'too soon: held back, then read fresh');
    clock += 10 * task.pollInterval;
    await pollTask(runtime, task.taskId, 'a', throttle);
    assert.equal(reads, 4, 'well paced again: one read');
  });

  it('refuses a live task beyond the limit at the store, whatever the caller', async () => {
    const store = openStore('memory:', { maxLiveTasksPerOwner: 1 });
    await store.create({ owner: 'a', request: { tool: 't', arguments: {} }, errorResultStatus: 'failed' });
    await assert.rejects(store.create({ owner: 'a', request: { tool: 't', arguments: {} }, errorResultStatus: 'failed' }), LimitExceededError);
    await store.create({ owner: 'b', request: { tool: 't', arguments: {} }, errorResultStatus: 'failed' });
  });
});

describe('TTL purge', () => {
  for (const url of ['memory:', `sqlite:${join(dir, 'purge.db')}`]) {
    it(`deletes expired ended tasks and their journals in batches, never a live one (${url.split(':')[0]})`, async () => {
      let clock = Date.parse('2026-03-01T00:00:00.000Z');
      const store = openStore(url, { now: () => clock });
      const ended: string[] = [];
      for (let i = 0; i < 7; i++) {
        const task = await store.create({ owner: null, request: { tool: 't', arguments: {} }, ttl: 1000, errorResultStatus: 'failed' });
        await store.appendJournal(task.taskId, 'step:a', { ok: true });
        await store.finish(task.taskId, 'completed', { type: 'result', result: { content: [] } });
        ended.push(task.taskId);
      }
      const live = await store.create({ owner: null, request: { tool: 't', arguments: {} }, ttl: 1000, errorResultStatus: 'failed' });
      const young = await store.create({ owner: null, request: { tool: 't', arguments: {} }, ttl: 60_000, errorResultStatus: 'failed' });
      await store.finish(young.taskId, 'completed', { type: 'result', result: { content: [] } });
      clock += 5000;
      assert.equal(await store.purgeExpired(5), 5, 'a bounded batch');
      assert.equal(await store.purgeExpired(5), 2);
      assert.equal(await store.purgeExpired(5), 0);
      for (const id of ended) assert.equal(await store.backend.get(id), undefined);
      assert.equal((await store.backend.readJournal(ended[0]!)).size, 0, 'journals go too');
      assert.equal((await store.get(live.taskId, ENGINE_ACCESS)).status, 'working', 'a live task past its ttl is kept');
      assert.equal((await store.get(young.taskId, ENGINE_ACCESS)).status, 'completed', 'an ended task within its ttl is kept');
      await store.close();
    });
  }
});

describe('secrets at rest', () => {
  it('stores elicitation answers and sensitive argument fields sealed, hands them back in clear', async () => {
    const store = openStore(`sqlite:${join(dir, 'secrets.db')}`, { secretKey: 'correct horse battery staple' });
    const runtime = new TaskRuntime(store, { logger: silentLogger });
    let seen: JsonObject | undefined;
    runtime.register('pay', {
      parse: (a) => a,
      sensitive: ['cardNumber'],
      handler: async (args, ctx) => {
        seen = args;
        const answer = await ctx.elicit('PIN?', { type: 'object', properties: { pin: { type: 'string' } } });
        return { content: [{ type: 'text', text: `pin length ${String(answer.content?.pin).length}` }] };
      },
    });
    const task = await runtime.submit({ owner: null, tool: 'pay', arguments: { cardNumber: '4111111111111111', amount: 5 }, errorResultStatus: 'failed' });
    await until(async () => (await store.get(task.taskId, ENGINE_ACCESS)).status === 'input_required', { intervalMs: 10, what: 'the PIN question' });
    await runtime.provideInput(task.taskId, 'elicit-1', { action: 'accept', content: { pin: '9876' } }, ENGINE_ACCESS);
    const done = await runtime.waitForTerminal(task.taskId, null);
    assert.deepEqual(done?.outcome, { type: 'result', result: { content: [{ type: 'text', text: 'pin length 4' }] } });
    assert.equal(seen?.cardNumber, '4111111111111111', 'the handler gets the clear value');
    const raw = JSON.stringify(await store.backend.get(task.taskId)) + JSON.stringify([...(await store.backend.readJournal(task.taskId))]);
    assert.doesNotMatch(raw, /4111111111111111/, 'the card number is not stored in clear');
    assert.doesNotMatch(raw, /9876/, 'the answer is not stored in clear');
    assert.match(raw, /\$sealed/);
    assert.equal((await store.backend.get(task.taskId))?.request.arguments.amount, 5, 'other fields stay readable');
    await runtime.close();
    await store.close();
    const wrongKey = openStore(`sqlite:${join(dir, 'secrets.db')}`, { secretKey: 'another key' });
    await assert.rejects(wrongKey.inputAnswer(task.taskId, 'elicit-1'), /unable to authenticate|Unsupported state/i, 'tampering or a wrong key is detected');
    await wrongKey.close();
  });
});
