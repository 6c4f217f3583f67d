/**
 * Task deadlines (a tool's `deadlineMs`, lowered per call by `_meta["mcp-tasks/deadlineMs"]`): a
 * task past its deadline ends `failed` with -32011 in both protocol versions and its handler's
 * `ctx.signal` aborts; the deadline is stored with the task, so one that passed while no process
 * ran ends at recovery, once; and with two instances on PostgreSQL exactly one terminal write wins.
 */
import assert from 'node:assert/strict';
import type { ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import * as z from 'zod';
import { ENGINE_ACCESS } from '../src/core/access.js';
import { DEADLINE_EXCEEDED, IllegalTransitionError } from '../src/core/errors.js';
import { silentLogger } from '../src/core/log.js';
import type { JsonObject } from '../src/core/json.js';
import { DEADLINE_META_KEY } from '../src/core/task.js';
import { TaskRuntime, type TaskEvent } from '../src/runtime/runtime.js';
import { DeadlineExceededSignal } from '../src/runtime/signals.js';
import { createTaskServer, type TaskServer } from '../src/server/task-server.js';
import { openStore } from '../src/store/open-store.js';
import { startExample } from './helpers/example-process.js';
import { ModernRawClient } from './helpers/modern-client.js';
import { RawMcpClient } from './helpers/raw-client.js';
import { dropSchemas, PG_URL, withParam } from './helpers/services.js';
import { until } from './helpers/until.js';
import { capturedLogger } from './helpers/captured-logger.js';

const dir = mkdtempSync(join(tmpdir(), 'mcp-tasks-deadlines-'));
const run = randomBytes(3).toString('hex');
const schemas: string[] = [];
const children: ChildProcess[] = [];
after(async () => {
  for (const child of children) child.kill('SIGKILL');
  rmSync(dir, { recursive: true, force: true });
  await dropSchemas(...schemas);
});

const text = (t: string) => ({ content: [{ type: 'text', text: t }] });
const soon = { timeoutMs: 10_000, intervalMs: 20 };

/** `taskId` once `tasks/get` (either protocol version's client) reports it no longer working. */
const ended = (client: { request(method: string, params: Record<string, unknown>): Promise<{ result?: any }> }, taskId: string) =>
  until(
    async () => {
      const task = (await client.request('tasks/get', { taskId })).result;
      return task.status !== 'working' && task;
    },
    { ...soon, what: 'the task to end' },
  );
const FIXTURE = join(import.meta.dirname, 'fixtures', 'task-deadline-server.ts');

/** A 2026-07-28 raw client whose requests carry `_meta[DEADLINE_META_KEY]`. */
class DeadlineClient extends ModernRawClient {
  constructor(
    url: string,
    readonly deadlineMs: number,
  ) {
    super(url);
  }
  override envelope(): Record<string, unknown> {
    return { ...super.envelope(), [DEADLINE_META_KEY]: this.deadlineMs };
  }
}

const deadlineLines = (log: string) => log.split('\n').filter((line) => line.includes('"task deadline exceeded"'));

describe('task deadlines on the wire', () => {
  let server: TaskServer;
  let url: string;
  const aborted: unknown[] = [];
  before(async () => {
    server = createTaskServer({ store: `sqlite:${join(dir, 'wire.db')}`, logger: silentLogger, storeOptions: { policy: { pollIntervalMs: 50 } } });
    const stuck = async (_args: unknown, ctx: { signal: AbortSignal }) => {
      ctx.signal.addEventListener('abort', () => aborted.push(ctx.signal.reason));
      return new Promise<never>(() => undefined); // a fetch without a timeout
    };
    server.registerTool('stuck', { description: 'Never returns', inputSchema: z.object({}), taskSupport: 'optional', deadlineMs: 300 }, stuck);
    server.registerTool('roomy', { description: 'Never returns', inputSchema: z.object({}), taskSupport: 'optional', deadlineMs: 600_000 }, stuck);
    url = (await server.listen({ port: 0 })).url;
  });
  after(() => server.close());

  it('2025-11-25: tasks/get says failed and tasks/result returns the deadline error; ctx.signal aborted', async () => {
    const client = new RawMcpClient(url);
    await client.initialize();
    const { taskId } = (await client.request('tools/call', { name: 'stuck', arguments: {}, task: {} })).result.task;
    const failed = await ended(client, taskId);
    assert.equal(failed.status, 'failed');
    assert.match(failed.statusMessage, /deadline exceeded.*300 ms/);
    const result = await client.request('tasks/result', { taskId });
    assert.equal(result.error?.code, DEADLINE_EXCEEDED);
    assert.match(result.error!.message, /^Task deadline exceeded: its time budget of 300 ms from creation ended at /);
    const record = await server.store.get(taskId, ENGINE_ACCESS);
    assert.deepEqual(result.error!.data, { deadline: record.deadline, deadlineMs: 300 });
    assert.equal(Date.parse(record.deadline!) - Date.parse(record.createdAt), 300, 'stored with the task');
    await until(() => aborted.some((reason) => reason instanceof DeadlineExceededSignal), { ...soon, what: 'the handler signal to abort' });
  });

  it('2026-07-28: tasks/get carries the deadline error of a failed task', async () => {
    const client = new ModernRawClient(url);
    const { taskId } = (await client.request('tools/call', { name: 'stuck', arguments: {} })).result;
    const failed = await ended(client, taskId);
    assert.equal(failed.status, 'failed');
    assert.equal(failed.error.code, DEADLINE_EXCEEDED);
    assert.match(failed.error.message, /deadline exceeded/);
    assert.equal(failed.result, undefined);
  });

  it('a call lowers the deadline with _meta["mcp-tasks/deadlineMs"] in both versions, never raises it', async () => {
    const legacy = new RawMcpClient(url);
    await legacy.initialize();
    const lowered = (await legacy.request('tools/call', { name: 'roomy', arguments: {}, task: {}, _meta: { [DEADLINE_META_KEY]: 200 } })).result.task;
    const modern = (await new DeadlineClient(url, 250).request('tools/call', { name: 'roomy', arguments: {} })).result;
    const raised = (await new DeadlineClient(url, 900_000).request('tools/call', { name: 'stuck', arguments: {} })).result;
    const budget = async (taskId: string) => {
      const task = await server.store.get(taskId, ENGINE_ACCESS);
      return Date.parse(task.deadline!) - Date.parse(task.createdAt);
    };
    assert.equal(await budget(lowered.taskId), 200);
    assert.equal(await budget(modern.taskId), 250);
    assert.equal(await budget(raised.taskId), 300, 'the tool keeps its own, lower deadline');
    for (const taskId of [lowered.taskId, modern.taskId]) {
      const ended = await server.runtime.waitForTerminal(taskId, null);
      assert.equal(ended?.status, 'failed');
      assert.equal(ended?.outcome?.type === 'error' && ended.outcome.error.code, DEADLINE_EXCEEDED);
    }
    const refused = await legacy.request('tools/call', { name: 'roomy', arguments: {}, task: {}, _meta: { [DEADLINE_META_KEY]: 'soon' } });
    assert.equal(refused.error?.code, -32602);
  });
});

describe('task deadlines across restarts', () => {
  it('a deadline that passed while the server was SIGKILLed ends the task exactly once after the restart', { timeout: 60_000 }, async () => {
    const env = { STORE: `sqlite:${join(dir, 'killed.db')}`, DEADLINE_MS: '1500', MCP_TASKS_LOG_LEVEL: 'info' };
    const first = await startExample(FIXTURE, env, children);
    const client = new RawMcpClient(first.url);
    await client.initialize();
    const { taskId, createdAt } = (await client.request('tools/call', { name: 'stuck', arguments: {}, task: {} })).result.task;
    await until(() => first.log().includes('"task created"'), { ...soon, what: 'the task to start' });
    first.child.kill('SIGKILL');
    await new Promise((resolve) => first.child.once('exit', resolve));
    // Nothing runs while the deadline passes.
    await until(() => Date.now() > Date.parse(createdAt) + 1500, { ...soon, what: 'the deadline to pass' });

    const second = await startExample(FIXTURE, env, children);
    const again = new RawMcpClient(second.url);
    await again.initialize();
    const result = await again.request('tasks/result', { taskId });
    assert.equal(result.error?.code, DEADLINE_EXCEEDED);
    assert.equal((await again.request('tasks/get', { taskId })).result.status, 'failed');
    await until(() => deadlineLines(second.log()).length > 0, { ...soon, what: 'the log line' });
    assert.equal(deadlineLines(second.log()).length, 1, 'ended once');
    assert.equal(deadlineLines(first.log()).length, 0, 'not before the kill');
    second.child.kill('SIGKILL');
    await new Promise((resolve) => second.child.once('exit', resolve));
  });

  it('two instances on PostgreSQL: exactly one terminal write for a task whose deadline passed', { timeout: 30_000 }, async () => {
    const schema = `mcpt_deadline_${run}`;
    schemas.push(schema);
    const storeUrl = withParam(PG_URL, 'schema', schema);
    // A task whose holder died before its deadline: both instances find it at start-up.
    // (Its own change listener hears the other instances' write by LISTEN, or, should that notice come
    // before its LISTEN connection is up under load, by a recheck every 200 ms.)
    const seed = openStore(storeUrl, { recheckMs: 200 });
    const task = await seed.create({
      owner: null,
      request: { tool: 'stuck', arguments: {} },
      errorResultStatus: 'failed',
      deadlineMs: 1,
      lease: { holder: 'dead-instance', leaseMs: 1 },
    });
    const terminal: string[] = [];
    seed.onTaskChange(task.taskId, (t) => t && t.status !== 'working' && terminal.push(t.status));
    await until(async () => seed.now() > Date.parse(task.deadline!) + 5, { ...soon, what: 'the deadline to pass' });

    const instances = ['a', 'b'].map((name) => {
      const store = openStore(storeUrl);
      const { logger, lines } = capturedLogger();
      const runtime = new TaskRuntime(store, { logger, instanceId: `node-${name}`, leaseMs: 600, onError: (e) => assert.fail(String(e)) });
      const events: TaskEvent[] = [];
      runtime.onTaskEvent((event) => events.push(event));
      runtime.register('stuck', { parse: (a: JsonObject) => a, deadlineMs: 1, handler: () => new Promise(() => undefined) });
      return { store, runtime, lines, events };
    });
    await Promise.all(instances.map((i) => i.runtime.recover()));
    const ended = await instances[0]!.runtime.waitForTerminal(task.taskId, null);
    assert.equal(ended?.status, 'failed');
    assert.equal(ended?.outcome?.type === 'error' && ended.outcome.error.code, DEADLINE_EXCEEDED);
    // Let every instance's heartbeat and takeover pass over the ended task once more.
    await until(() => instances.every((i) => !i.runtime.isRunning(task.taskId)), { ...soon, what: 'both runs to end' });
    // A losing attempt (the dead holder's fence) is refused and writes nothing.
    await assert.rejects(
      seed.finish(task.taskId, 'failed', { type: 'result', result: text('late') }, 'late', { holder: 'dead-instance', epoch: 1 }),
      IllegalTransitionError,
    );
    const lines = instances.flatMap((i) => i.lines.filter((line) => line.msg === 'task deadline exceeded'));
    assert.equal(lines.length, 1, 'one terminal write');
    assert.equal(instances.flatMap((i) => i.events.filter((e) => e.type === 'deadline_exceeded')).length, 1, 'one event');
    const stored = await seed.get(task.taskId, ENGINE_ACCESS);
    assert.equal(stored.version, ended!.version, 'nothing written after the end');
    await until(() => terminal.length > 0, { ...soon, what: 'the seed store to hear of the end' });
    assert.deepEqual(terminal, ['failed']);
    for (const i of instances) {
      await i.runtime.close();
      await i.store.close();
    }
    await seed.close();
  });

  it('the handler result wins when it comes first: no deadline failure afterwards', async () => {
    const store = openStore('memory:');
    const runtime = new TaskRuntime(store, { logger: silentLogger, onError: (e) => assert.fail(String(e)) });
    runtime.register('quick', { parse: (a: JsonObject) => a, deadlineMs: 60_000, handler: async () => text('quick') });
    const task = await runtime.submit({ owner: null, tool: 'quick', arguments: {}, errorResultStatus: 'failed' });
    assert.equal((await runtime.waitForTerminal(task.taskId, null))?.status, 'completed');
    await runtime.close();
  });
});
