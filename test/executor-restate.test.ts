/**
 * The Restate executor on a real restate-server (from the npm package, started here on free ports
 * in a temp dir) with its service in a real child process, SIGKILLed and SIGSTOPped: a recorded step
 * is not re-run, a timer survives a restart, an answer arrives exactly once whichever paths deliver
 * it, a cancel stops waits and writes, and a paused process cannot write after its task moved on.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, afterEach, before, it } from 'node:test';
import { freePort, startRestateServer, type RestateServer } from './helpers/restate-server.js';
import { readEffects, startService, type ServiceProcess } from './helpers/restate-process.js';
import { until } from './helpers/until.js';

const dir = mkdtempSync(join(tmpdir(), 'mcp-tasks-restate-exec-'));
const effectsPath = join(dir, 'effects.jsonl');
let restate: RestateServer;
let endpointPort: number;
const running: ServiceProcess[] = [];

before(async () => {
  restate = await startRestateServer();
  endpointPort = await freePort();
});
afterEach(async () => {
  for (const p of running.splice(0)) await p.kill();
});
after(async () => {
  await restate?.stop();
  rmSync(dir, { recursive: true, force: true });
});

async function boot(): Promise<ServiceProcess> {
  const service = await startService({
    storePath: join(dir, 'tasks.db'),
    effectsPath,
    ingressUrl: restate.ingressUrl,
    adminUrl: restate.adminUrl,
    endpointPort,
  });
  running.push(service);
  return service;
}

const effects = (taskId: string, step?: string) => readEffects(effectsPath).filter((e) => e.taskId === taskId && (step === undefined || e.step === step));

async function untilStatus(service: ServiceProcess, taskId: string, ok: (task: any) => boolean, what: string, timeoutMs = 30_000): Promise<any> {
  let task: any;
  return until(
    async () => {
      task = await service.task(taskId).catch(() => undefined);
      return task && ok(task) && task;
    },
    { timeoutMs, intervalMs: 50, what: () => `${what}: ${JSON.stringify(task)}` },
  );
}

it('runs a recorded step once and keeps a timer across a SIGKILL of the service process', { timeout: 90_000 }, async () => {
  let service = await boot();
  const sleepMs = 4000;
  const task = await service.post('/submit', { tool: 'timed', arguments: { sleepMs } });
  await until(() => effects(task.taskId, 'one').length === 1, { timeoutMs: 20_000, what: 'step one' });
  const startedAt = effects(task.taskId, 'one')[0]!.at;
  await untilStatus(service, task.taskId, (t) => /waiting until/i.test(t.statusMessage ?? ''), 'the timer');
  await service.kill();
  service = await boot();
  const done = await untilStatus(service, task.taskId, (t) => t.status !== 'working', 'completion');
  assert.equal(done.status, 'completed', JSON.stringify(done));
  assert.equal(effects(task.taskId, 'one').length, 1, 'step one is not re-run after the restart');
  assert.equal(effects(task.taskId, 'two').length, 1);
  assert.ok(effects(task.taskId, 'two')[0]!.at >= startedAt + sleepMs, 'the timer did not fire early');
  // Each attempt has its own, growing fencing token.
  assert.ok(effects(task.taskId, 'two')[0]!.token > effects(task.taskId, 'one')[0]!.token);
});

it('delivers an answer exactly once, answered twice and re-delivered by the reconciler and a restart', { timeout: 90_000 }, async () => {
  let service = await boot();
  const task = await service.post('/submit', { tool: 'ask', arguments: {} });
  await untilStatus(service, task.taskId, (t) => t.status === 'input_required', 'the question');
  const first = await service.post('/answer', { taskId: task.taskId, key: 'approval', response: { action: 'accept', content: { decision: 'first' } } });
  assert.deepEqual(first.taken, ['approval']);
  const second = await service.post('/answer', { taskId: task.taskId, key: 'approval', response: { action: 'accept', content: { decision: 'second' } } });
  assert.deepEqual(second.taken, [], 'the store ignores a second answer');
  const done = await untilStatus(service, task.taskId, (t) => t.status !== 'working' && t.status !== 'input_required', 'completion');
  assert.equal(done.status, 'completed');
  assert.deepEqual(done.outcome.result.structuredContent.answer.content, { decision: 'first' });
  await new Promise((resolve) => setTimeout(resolve, 1500)); // the reconciler (every 1 s) re-delivers meanwhile
  await service.kill();
  service = await boot(); // recover() re-delivers every stored answer again
  await new Promise((resolve) => setTimeout(resolve, 1500));
  assert.equal(effects(task.taskId, 'after').length, 1, 'the step after the answer ran once');
  assert.equal((await service.task(task.taskId)).status, 'completed');
});

it('answers a question whose process was SIGKILLed while it waited, and the answer given to the new process arrives once', { timeout: 90_000 }, async () => {
  let service = await boot();
  const task = await service.post('/submit', { tool: 'ask', arguments: {} });
  await untilStatus(service, task.taskId, (t) => t.status === 'input_required', 'the question');
  await service.kill();
  service = await boot();
  assert.equal((await service.task(task.taskId)).status, 'input_required');
  await service.post('/answer', { taskId: task.taskId, key: 'approval', response: { action: 'accept', content: { decision: 'late' } } });
  const done = await untilStatus(service, task.taskId, (t) => t.status === 'completed', 'completion');
  assert.deepEqual(done.outcome.result.structuredContent.answer.content, { decision: 'late' });
  assert.equal(effects(task.taskId, 'after').length, 1);
});

it('cancels a task waiting on a timer: the wait ends, nothing runs or is written after the cancel', { timeout: 60_000 }, async () => {
  const service = await boot();
  const task = await service.post('/submit', { tool: 'timed', arguments: { sleepMs: 3000 } });
  await untilStatus(service, task.taskId, (t) => /waiting until/i.test(t.statusMessage ?? ''), 'the timer');
  const cancelled = await service.post('/cancel', { taskId: task.taskId });
  assert.equal(cancelled.status, 'cancelled');
  await new Promise((resolve) => setTimeout(resolve, 5000)); // past the timer
  const after = await service.task(task.taskId);
  assert.equal(after.status, 'cancelled');
  assert.equal(after.lastUpdatedAt, cancelled.lastUpdatedAt, 'nothing written after the cancel');
  assert.equal(effects(task.taskId, 'two').length, 0, 'no step after the cancel');
  // Restate's invocation is gone too (cancelled, or killed by its next attempt).
  const output = await fetch(`${restate.ingressUrl}/restate/workflow/McpTask/${task.taskId}/output`);
  assert.notEqual(output.status, 470, 'the workflow is not still running');
});

it('cancels a task while its step runs: the step function sees the signal, the next step never begins', { timeout: 60_000 }, async () => {
  const service = await boot();
  const task = await service.post('/submit', { tool: 'slow', arguments: { ms: 20_000 } });
  await until(() => effects(task.taskId, 'slow').length === 1, { timeoutMs: 20_000, what: 'the slow step' });
  const cancelled = await service.post('/cancel', { taskId: task.taskId });
  await new Promise((resolve) => setTimeout(resolve, 3000));
  const after = await service.task(task.taskId);
  assert.equal(after.status, 'cancelled');
  assert.equal(after.lastUpdatedAt, cancelled.lastUpdatedAt);
  assert.equal(effects(task.taskId, 'done').length, 0);
  assert.equal(effects(task.taskId, 'slow').length, 1, 'the cancelled step is not retried');
});

/** The id of the task's `run` invocation in restate-server (admin SQL introspection). */
async function runInvocation(taskId: string): Promise<string> {
  const response = await fetch(`${restate.adminUrl}/query`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', accept: 'application/json' },
    body: JSON.stringify({ query: `SELECT id FROM sys_invocation WHERE target_service_key = '${taskId}' AND target_handler_name = 'run'` }),
  });
  const { rows } = (await response.json()) as { rows: { id: string }[] };
  assert.ok(rows[0], `no run invocation for ${taskId}`);
  return rows[0].id;
}

it('a task whose workflow is killed in Restate is failed by the reconciler, with a message saying so; nothing runs after', { timeout: 60_000 }, async (t) => {
  const service = await boot();
  const task = await service.post('/submit', { tool: 'timed', arguments: { sleepMs: 3000 } });
  await untilStatus(service, task.taskId, (t) => /waiting until/i.test(t.statusMessage ?? ''), 'the timer');
  const killed = await fetch(`${restate.adminUrl}/invocations/${await runInvocation(task.taskId)}/kill`, { method: 'PATCH' });
  assert.equal(killed.status, 200);
  const since = Date.now();
  const failed = await untilStatus(service, task.taskId, (t) => t.status !== 'working', 'the reconciler to end the task', 10_000);
  const detectedMs = Date.now() - since;
  t.diagnostic(`killed workflow found and its task failed ${detectedMs} ms after the kill (reconciler every 1000 ms)`);
  assert.equal(failed.status, 'failed', JSON.stringify(failed));
  assert.match(failed.statusMessage, /Restate workflow ended without finishing it .*killed/);
  assert.equal(failed.outcome.type, 'error');
  assert.equal(failed.outcome.error.code, -32603);
  assert.ok(detectedMs < 5000, `found within a reconciler round or two (1 s here): ${detectedMs} ms`);
  await new Promise((resolve) => setTimeout(resolve, 4000)); // past the timer
  assert.equal(effects(task.taskId, 'two').length, 0, 'no step after the kill');
  assert.equal((await service.task(task.taskId)).lastUpdatedAt, failed.lastUpdatedAt);
});

it('a task whose workflow is cancelled in Restate is cancelled in the store; nothing runs after', { timeout: 60_000 }, async () => {
  const service = await boot();
  const task = await service.post('/submit', { tool: 'timed', arguments: { sleepMs: 3000 } });
  await untilStatus(service, task.taskId, (t) => /waiting until/i.test(t.statusMessage ?? ''), 'the timer');
  const cancelled = await fetch(`${restate.adminUrl}/invocations/${await runInvocation(task.taskId)}/cancel`, { method: 'PATCH' });
  assert.ok(cancelled.status < 300, String(cancelled.status));
  const ended = await untilStatus(service, task.taskId, (t) => t.status !== 'working', 'the task to end', 10_000);
  assert.equal(ended.status, 'cancelled', JSON.stringify(ended));
  assert.match(ended.statusMessage, /cancelled in Restate/);
  await new Promise((resolve) => setTimeout(resolve, 4000));
  assert.equal(effects(task.taskId, 'two').length, 0, 'no step after the cancel');
});
