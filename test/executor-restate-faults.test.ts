/**
 * Faults under the Restate executor, on a real restate-server and a service child process over a
 * shared PostgreSQL store: the service process paused (SIGSTOP) past a timer and resumed (SIGCONT);
 * a task cancelled (from another process) while its service process is paused; the store out
 * (connections refused, then a black hole) while a timer falls due.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, afterEach, before, it } from 'node:test';
import { ENGINE_ACCESS } from '../src/core/access.js';
import { silentLogger } from '../src/core/log.js';
import { createRestateExecutor } from '../src/executors/restate/index.js';
import { TaskRuntime } from '../src/runtime/runtime.js';
import { openStore } from '../src/store/open-store.js';
import { readEffects, startService, type ServiceProcess } from './helpers/restate-process.js';
import { freePort, startRestateServer, type RestateServer } from './helpers/restate-server.js';
import { dropSchemas, PG_URL, withParam } from './helpers/services.js';
import { startTcpProxy, type TcpProxy } from './helpers/tcp-proxy.js';
import { until } from './helpers/until.js';

const dir = mkdtempSync(join(tmpdir(), 'mcp-tasks-restate-faults-'));
const effectsPath = join(dir, 'effects.jsonl');
const schema = `restate_faults_${randomBytes(4).toString('hex')}`;
const storeUrl = withParam(withParam(withParam(PG_URL, 'schema', schema), 'connectTimeoutMs', '2000'), 'queryTimeoutMs', '3000');
let restate: RestateServer;
let endpointPort: number;
const running: ServiceProcess[] = [];
const proxies: TcpProxy[] = [];

before(async () => {
  restate = await startRestateServer();
  endpointPort = await freePort();
});
afterEach(async () => {
  for (const p of running.splice(0)) {
    p.cont();
    await p.kill();
  }
  for (const p of proxies.splice(0)) await p.close();
});
after(async () => {
  await restate?.stop();
  await dropSchemas(schema);
  rmSync(dir, { recursive: true, force: true });
});

async function boot(url = storeUrl): Promise<ServiceProcess> {
  const service = await startService({ storeUrl: url, effectsPath, ingressUrl: restate.ingressUrl, adminUrl: restate.adminUrl, endpointPort });
  running.push(service);
  return service;
}

const effects = (taskId: string, step?: string) => readEffects(effectsPath).filter((e) => e.taskId === taskId && (step === undefined || e.step === step));
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

async function untilStatus(service: ServiceProcess, taskId: string, ok: (task: any) => boolean, what: string, timeoutMs = 30_000): Promise<any> {
  let task: any;
  return until(
    async () => {
      task = await service.task(taskId).catch(() => undefined);
      return task && ok(task) && task;
    },
    { timeoutMs, intervalMs: 100, what: () => `${what}: ${JSON.stringify(task)}` },
  );
}

it('a service process paused past a timer finishes the task after SIGCONT, each step once, none early', { timeout: 90_000 }, async () => {
  const service = await boot();
  const sleepMs = 2000;
  const task = await service.post('/submit', { tool: 'timed', arguments: { sleepMs } });
  await untilStatus(service, task.taskId, (t) => /waiting until/i.test(t.statusMessage ?? ''), 'the timer');
  const startedAt = effects(task.taskId, 'one')[0]!.at;
  service.stop();
  await sleep(sleepMs + 4000); // the timer falls due while the process is frozen
  assert.equal(effects(task.taskId, 'two').length, 0);
  service.cont();
  const done = await untilStatus(service, task.taskId, (t) => t.status === 'completed', 'completion');
  assert.ok(done);
  assert.equal(effects(task.taskId, 'one').length, 1);
  assert.equal(effects(task.taskId, 'two').length, 1);
  assert.ok(effects(task.taskId, 'two')[0]!.at >= startedAt + sleepMs);
});

it('a task cancelled while its service process is paused stays cancelled: after SIGCONT nothing runs or is written', { timeout: 90_000 }, async () => {
  const service = await boot();
  const task = await service.post('/submit', { tool: 'timed', arguments: { sleepMs: 2000 } });
  await untilStatus(service, task.taskId, (t) => /waiting until/i.test(t.statusMessage ?? ''), 'the timer');
  service.stop();
  // Another instance cancels: the store first, then Restate (as TaskRuntime.cancel does with this executor).
  const store = openStore(storeUrl);
  const other = new TaskRuntime(store, {
    executor: createRestateExecutor({ ingressUrl: restate.ingressUrl, adminUrl: restate.adminUrl }),
    logger: silentLogger,
  });
  try {
    const cancelled = await other.cancel(task.taskId, ENGINE_ACCESS);
    assert.equal(cancelled.status, 'cancelled');
    await sleep(4000); // past the timer, frozen
    service.cont();
    await sleep(4000);
    const after = await other.get(task.taskId, ENGINE_ACCESS);
    assert.equal(after.status, 'cancelled');
    assert.equal(after.lastUpdatedAt, cancelled.lastUpdatedAt, 'nothing written after the cancel');
    assert.equal(effects(task.taskId, 'two').length, 0, 'no step after the cancel');
    const output = await fetch(`${restate.ingressUrl}/restate/workflow/McpTask/${task.taskId}/output`);
    assert.notEqual(output.status, 470, 'the workflow does not run on');
  } finally {
    await other.close();
    await store.close();
  }
});

it('the store out while a timer falls due: the task finishes once it is back, each step once, none early', { timeout: 120_000 }, async () => {
  const pg = new URL(PG_URL);
  const proxy = await startTcpProxy({ host: pg.hostname, port: Number(pg.port || 5432) });
  proxies.push(proxy);
  const proxied = new URL(storeUrl);
  proxied.port = String(proxy.port);
  const service = await boot(proxied.toString());
  const sleepMs = 2000;
  const task = await service.post('/submit', { tool: 'timed', arguments: { sleepMs } });
  await untilStatus(service, task.taskId, (t) => /waiting until/i.test(t.statusMessage ?? ''), 'the timer');
  const startedAt = effects(task.taskId, 'one')[0]!.at;
  await proxy.setMode('refuse');
  await sleep(sleepMs + 2000); // due during the outage: attempts fail on the store and Restate retries them
  await proxy.setMode('blackhole');
  await sleep(4000);
  assert.equal(effects(task.taskId, 'two').length, 0, 'no step runs without the store');
  await proxy.setMode('forward');
  const done = await untilStatus(service, task.taskId, (t) => t.status === 'completed', 'completion', 60_000);
  assert.ok(done);
  assert.equal(effects(task.taskId, 'one').length, 1);
  assert.equal(effects(task.taskId, 'two').length, 1);
  assert.ok(effects(task.taskId, 'two')[0]!.at >= startedAt + sleepMs);
  assert.ok(service.child.exitCode === null, 'the service process stayed up');
});
