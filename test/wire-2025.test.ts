/** MCP Tasks 2025-11-25 on the wire, checked with an SDK-free JSON-RPC client. */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { RawMcpClient, type RpcMessage } from './helpers/raw-client.js';
import { startTestServer } from './helpers/test-server.js';
import { until } from './helpers/until.js';

const dir = mkdtempSync(join(tmpdir(), 'mcp-tasks-wire-'));
after(() => rmSync(dir, { recursive: true, force: true }));
const RELATED = 'io.modelcontextprotocol/related-task';

/** Polls `tasks/get` (every 20 ms, up to 4 s) until the task has `status`. */
const untilStatus = (client: RawMcpClient, taskId: string, status: string) =>
  until(async () => (await client.request('tasks/get', { taskId })).result?.status === status, { timeoutMs: 4000, what: `task ${taskId} to reach ${status}` });

describe('wire 2025-11-25 (raw JSON-RPC)', () => {
  let server: Awaited<ReturnType<typeof startTestServer>>;
  let client: RawMcpClient;
  let init: any;

  before(async () => {
    server = await startTestServer(`sqlite:${join(dir, 'wire.db')}`);
    client = new RawMcpClient(server.url);
    init = await client.initialize();
  });
  after(() => server.close());

  it('declares tasks capabilities and per-tool taskSupport', async () => {
    assert.equal(init.protocolVersion, '2025-11-25');
    assert.deepEqual(init.capabilities.tasks, { cancel: {}, requests: { tools: { call: {} } } }, 'no tasks.list without authentication');
    const tools = (await client.request('tools/list', {})).result.tools as any[];
    const byName = new Map(tools.map((t) => [t.name, t]));
    assert.deepEqual(byName.get('echo').execution, { taskSupport: 'optional' });
    assert.deepEqual(byName.get('report').execution, { taskSupport: 'required' });
    assert.equal(byName.get('plain').execution, undefined);
  });

  it('returns CreateTaskResult at once, then tasks/result returns the tool result with related-task _meta', async () => {
    const created = await client.request('tools/call', { name: 'echo', arguments: { text: 'hi' }, task: { ttl: 60_000 } });
    const task = created.result.task;
    assert.equal(task.status, 'working');
    assert.equal(task.ttl, 60_000);
    assert.equal(typeof task.pollInterval, 'number');
    assert.ok(!Number.isNaN(Date.parse(task.createdAt)) && !Number.isNaN(Date.parse(task.lastUpdatedAt)));
    assert.equal(created.result.content, undefined, 'a CreateTaskResult, not a CallToolResult');
    const result = await client.request('tasks/result', { taskId: task.taskId });
    assert.deepEqual(result.result.content, [{ type: 'text', text: 'hi' }]);
    assert.deepEqual(result.result._meta[RELATED], { taskId: task.taskId });
    const got = await client.request('tasks/get', { taskId: task.taskId });
    assert.equal(got.result.status, 'completed');
    assert.equal(got.result[RELATED], undefined);
    assert.equal(got.result._meta, undefined, 'tasks/get carries no related-task metadata');
  });

  it('blocks tasks/result until the task ends, asking its question on that stream', async () => {
    const created = await client.request('tools/call', { name: 'ask', arguments: { question: 'Your name?' }, task: {} });
    const taskId = created.result.task.taskId;
    await untilStatus(client, taskId, 'input_required');
    const asked: RpcMessage[] = [];
    const result = await client.request('tasks/result', { taskId }, async (req) => {
      asked.push(req);
      return { action: 'accept', content: { reply: 'Ada' } };
    });
    assert.equal(asked.length, 1);
    assert.equal(asked[0]!.method, 'elicitation/create');
    assert.equal(asked[0]!.params.message, 'Your name?');
    assert.deepEqual(asked[0]!.params._meta[RELATED], { taskId });
    assert.deepEqual(result.result.content, [{ type: 'text', text: 'reply: Ada' }]);
  });

  it('fails tasks whose tool result isError, and returns exactly that result from tasks/result', async () => {
    const { taskId } = (await client.request('tools/call', { name: 'soft_fail', arguments: {}, task: {} })).result.task;
    const result = await client.request('tasks/result', { taskId });
    assert.deepEqual(result.result.content, [{ type: 'text', text: 'soft failure' }]);
    assert.equal(result.result.isError, true);
    const got = (await client.request('tasks/get', { taskId })).result;
    assert.equal(got.status, 'failed');
    assert.equal(got.statusMessage, 'soft failure');
  });

  it('returns the same JSON-RPC error from tasks/result that the call produced', async () => {
    const { taskId } = (await client.request('tools/call', { name: 'rpc_fail', arguments: {}, task: {} })).result.task;
    const result = await client.request('tasks/result', { taskId });
    assert.deepEqual(result.error, { code: -32602, message: 'the order does not exist', data: { orderId: 7 } });
    assert.equal((await client.request('tasks/get', { taskId })).result.status, 'failed');
  });

  it('cancels: the task is cancelled before the response, stays cancelled, and has no result', async () => {
    const { taskId } = (await client.request('tools/call', { name: 'slow', arguments: { ms: 60_000 }, task: {} })).result.task;
    const cancelled = await client.request('tasks/cancel', { taskId });
    assert.equal(cancelled.result.status, 'cancelled');
    assert.equal(cancelled.result.taskId, taskId);
    assert.equal((await client.request('tasks/get', { taskId })).result.status, 'cancelled');
    const again = await client.request('tasks/cancel', { taskId });
    assert.equal(again.error?.code, -32602);
    assert.match(again.error!.message, /terminal/);
    const result = await client.request('tasks/result', { taskId });
    assert.equal(result.error?.code, -32602);
    assert.equal(server.runtime.isRunning(taskId), false, 'the work really stopped');
  });

  it('runs an optional task tool synchronously when called without task', async () => {
    const res = await client.request('tools/call', { name: 'echo', arguments: { text: 'now' } });
    assert.deepEqual(res.result.content, [{ type: 'text', text: 'now' }]);
    assert.equal(res.result.task, undefined);
  });

  it('answers bad input with the spec error codes and stores nothing', async () => {
    const before = (await server.store.list(null, undefined, 1000)).tasks.length;
    const cases: [string, unknown, number, RegExp?][] = [
      ['tasks/get', { taskId: 'no-such-task' }, -32602, /not found/i],
      ['tasks/result', { taskId: 'no-such-task' }, -32602],
      ['tasks/cancel', { taskId: 'no-such-task' }, -32602],
      ['tasks/get', { taskId: 42 }, -32602],
      ['tasks/get', {}, -32602],
      ['tasks/list', {}, -32601],
      ['tools/call', { name: 'plain', arguments: {}, task: {} }, -32601, /does not support task/],
      ['tools/call', { name: 'no_such_tool', arguments: {}, task: {} }, -32601],
      ['tools/call', { name: 'report', arguments: {} }, -32601, /must be called as a task/],
      ['tools/call', { name: 'echo', arguments: { text: 5 }, task: {} }, -32602, /Invalid arguments for tool echo/],
      ['tools/call', { name: 'echo', arguments: 'text', task: {} }, -32602],
      ['tools/call', { name: 'echo', arguments: { text: 'x'.repeat(70_000) }, task: {} }, -32602, /exceed/],
      ['tools/call', { name: 'echo', arguments: { text: 'x' }, task: { ttl: 'soon' } }, -32602, /params.task/],
      ['tools/call', { name: 'echo', arguments: { text: 'x' }, task: 'yes' }, -32602],
    ];
    for (const [method, params, code, message] of cases) {
      const res = await client.request(method, params);
      assert.equal(res.error?.code, code, `${method} ${JSON.stringify(params).slice(0, 80)} → ${JSON.stringify(res.error ?? res.result).slice(0, 200)}`);
      if (message) assert.match(res.error!.message, message);
    }
    assert.equal((await server.store.list(null, undefined, 1000)).tasks.length, before, 'no task was created by bad input');
    assert.equal((await client.request('tools/call', { name: 'echo', arguments: { text: 'still up' } })).result.content[0].text, 'still up');
  });

  it('a task created before a restart is answered and finished from a new connection', async () => {
    const { taskId } = (await client.request('tools/call', { name: 'ask', arguments: { question: 'Proceed?' }, task: {} })).result.task;
    await untilStatus(client, taskId, 'input_required');
    await server.close();
    server = await startTestServer(`sqlite:${join(dir, 'wire.db')}`);
    const stale = await client.request('tasks/get', { taskId }).catch((e) => e);
    assert.ok(stale instanceof Error || stale.error, 'the old session is gone');
    client = new RawMcpClient(server.url);
    await client.initialize();
    assert.equal((await client.request('tasks/get', { taskId })).result.status, 'input_required');
    const result = await client.request('tasks/result', { taskId }, async () => ({ action: 'accept', content: { reply: 'yes' } }));
    assert.deepEqual(result.result.content, [{ type: 'text', text: 'reply: yes' }]);
  });
});

describe('wire 2025-11-25: tasks/list', () => {
  it('pages with opaque cursors when enabled and rejects invalid cursors', async () => {
    const server = await startTestServer('memory:', { list: true });
    try {
      const client = new RawMcpClient(server.url);
      const init = await client.initialize();
      assert.deepEqual(init.capabilities.tasks.list, {});
      const ids = new Set<string>();
      for (let i = 0; i < 3; i++) ids.add((await client.request('tools/call', { name: 'echo', arguments: { text: String(i) }, task: {} })).result.task.taskId);
      const listed = await client.request('tasks/list', {});
      assert.deepEqual(new Set(listed.result.tasks.map((t: any) => t.taskId)), ids);
      const bad = await client.request('tasks/list', { cursor: 'garbage' });
      assert.equal(bad.error?.code, -32602);
    } finally {
      await server.close();
    }
  });
});

describe('wire 2025-11-25: synchronous calls of task tools', () => {
  it('ends the call with an isError result naming the task when the client cannot be asked; the task waits', async () => {
    const server = await startTestServer('memory:');
    try {
      const client = new RawMcpClient(server.url);
      await client.initialize({}); // declares no elicitation support
      const res = await client.request('tools/call', { name: 'ask', arguments: { question: 'Which account?' } });
      assert.equal(res.result.isError, true);
      const taskId = /task ([0-9a-f]{32})/.exec(res.result.content[0].text)?.[1];
      assert.ok(taskId, res.result.content[0].text);
      assert.match(res.result.content[0].text, /Which account\?/);
      const task = (await client.request('tasks/get', { taskId })).result;
      assert.equal(task.status, 'input_required', 'the work is kept for a task-aware client');
    } finally {
      await server.close();
    }
  });
});
