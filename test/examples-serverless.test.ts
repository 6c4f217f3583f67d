/**
 * `examples/serverless` run as a serverless host runs it (issue 26 #2): a gateway in this test
 * serves every HTTP request by a fresh process (`test/helpers/serverless-invoke.ts`) that imports
 * `handler.ts`, calls its `fetch` once and exits — no process serves two requests, none keeps
 * anything — while one long-lived `worker.ts` runs the tasks on the same PostgreSQL store. A
 * durable task with a step, a timer and a question completes in both protocol eras: in 2026-07-28
 * the question is read from `tasks/get` and answered with `tasks/update`; in 2025-11-25 (the SDK's
 * stateless fallback) it is read with `tasks/get` and answered with the `answer_task_input` fallback
 * tool, and the result is read with `tasks/result`. The worker is SIGKILLed once a task waits for
 * its answer and a second worker finishes it (the function instances never run anything).
 */
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { text } from 'node:stream/consumers';
import { after, before, describe, it } from 'node:test';
import { dropSchemas, PG_URL, withParam } from './helpers/services.js';
import { ModernRawClient } from './helpers/modern-client.js';
import { RawMcpClient } from './helpers/raw-client.js';
import { until } from './helpers/until.js';

const schema = `mcpt_serverless_${process.pid}`;
const STORE = withParam(PG_URL, 'schema', schema);
const handlerModule = new URL('../examples/serverless/handler.ts', import.meta.url).pathname;
const workerModule = new URL('../examples/serverless/worker.ts', import.meta.url).pathname;
const invoker = new URL('./helpers/serverless-invoke.ts', import.meta.url).pathname;
const env = { ...process.env, STORE, MCP_TASKS_LOG_LEVEL: 'warn' };

/** The pids of the function processes, one per request served. */
const invocations: number[] = [];
let gateway: Server;
let url: string;
const workers: ChildProcess[] = [];

/** One request, served by a fresh function process. */
async function invoke(method: string, requestUrl: string, headers: Record<string, string>, body: string | undefined) {
  const child = spawn(process.execPath, ['--import', 'tsx', invoker, handlerModule], { env, stdio: ['pipe', 'pipe', 'pipe'] });
  invocations.push(child.pid!);
  let stderr = '';
  child.stderr.on('data', (d) => (stderr += String(d)));
  child.stdin.end(JSON.stringify({ method, url: requestUrl, headers, ...(body !== undefined && { body }) }));
  const [out, code] = await Promise.all([text(child.stdout), new Promise<number | null>((resolve) => child.once('exit', resolve))]);
  if (code !== 0) throw new Error(`the function exited ${code}: ${stderr}`);
  return JSON.parse(out) as { status: number; headers: Record<string, string>; body: string };
}

function startWorker(): ChildProcess {
  const child = spawn(process.execPath, ['--import', 'tsx', workerModule], { env, stdio: ['ignore', 'pipe', 'inherit'] });
  workers.push(child);
  return child;
}

before(async () => {
  gateway = createServer((req, res) => {
    void (async () => {
      const body = req.method === 'GET' || req.method === 'HEAD' ? undefined : await text(req);
      const headers = Object.fromEntries(Object.entries(req.headers).map(([k, v]) => [k, Array.isArray(v) ? v.join(', ') : (v ?? '')]));
      const answer = await invoke(req.method ?? 'GET', `http://${req.headers.host}${req.url}`, headers, body);
      res.writeHead(answer.status, answer.headers).end(answer.body);
    })().catch((error: unknown) => res.writeHead(502).end(String(error)));
  });
  await new Promise<void>((resolve) => gateway.listen(0, '127.0.0.1', resolve));
  url = `http://127.0.0.1:${(gateway.address() as AddressInfo).port}/mcp`;
  startWorker();
});

after(async () => {
  for (const worker of workers) worker.kill('SIGKILL');
  await new Promise((resolve) => gateway.close(resolve));
  await dropSchemas(schema);
});

describe('examples/serverless: a fresh function process per request, a worker beside it', () => {
  it('2026-07-28: created, asked (tasks/get), answered (tasks/update), completed — across a worker SIGKILL', async () => {
    const client = new ModernRawClient(url);
    const created = await client.request('tools/call', { name: 'greet_later', arguments: { name: 'Ada' } });
    const taskId = (created.result as { taskId?: string } | undefined)?.taskId;
    assert.ok(taskId, JSON.stringify(created));
    const asking = await until(
      async () => {
        const task = (await client.request('tasks/get', { taskId })).result as { status: string; inputRequests?: Record<string, unknown> };
        return task.status === 'input_required' ? task : undefined;
      },
      { timeoutMs: 60_000, intervalMs: 200, what: 'the question' },
    );
    const key = Object.keys(asking.inputRequests ?? {})[0]!;

    // The worker dies while the task waits; another one takes it over after the lease.
    const first = workers[0]!;
    first.kill('SIGKILL');
    await new Promise((resolve) => first.once('exit', resolve));
    startWorker();

    const updated = await client.request('tasks/update', { taskId, inputResponses: { [key]: { action: 'accept', content: { send: true } } } });
    assert.ok(!updated.error, JSON.stringify(updated));
    const done = await until(
      async () => {
        const task = (await client.request('tasks/get', { taskId })).result as { status: string; result?: { content: { text: string }[] } };
        return task.status === 'completed' ? task : undefined;
      },
      { timeoutMs: 60_000, intervalMs: 200, what: 'completion' },
    );
    assert.equal(done.result?.content[0]?.text, 'Hello, Ada!');
  });

  it('2025-11-25 (stateless fallback): created, asked (tasks/get), answered (answer_task_input), result read (tasks/result)', async () => {
    const legacy = new RawMcpClient(url);
    await legacy.initialize();
    assert.equal(legacy.sessionId, undefined, 'no session on a serverless host');
    const created = await legacy.request('tools/call', { name: 'greet_later', arguments: { name: 'Grace' }, task: {} });
    const taskId = created.result.task.taskId as string;
    await until(async () => (await legacy.request('tasks/get', { taskId })).result.status === 'input_required', {
      timeoutMs: 60_000,
      intervalMs: 200,
      what: 'the question',
    });
    const answered = await legacy.request('tools/call', { name: 'answer_task_input', arguments: { taskId, answers: { send: true } } });
    assert.ok(!answered.result.isError, JSON.stringify(answered));
    await until(async () => (await legacy.request('tasks/get', { taskId })).result.status === 'completed', {
      timeoutMs: 60_000,
      intervalMs: 200,
      what: 'completion',
    });
    const result = await legacy.request('tasks/result', { taskId });
    assert.equal(result.result.content[0].text, 'Hello, Grace!');
  });

  it('runs nothing in the function: without a worker a task waits, and a worker started later picks it up', async () => {
    for (const worker of workers) worker.kill('SIGKILL');
    for (const worker of workers) if (worker.exitCode === null && worker.signalCode === null) await new Promise((resolve) => worker.once('exit', resolve));
    const client = new ModernRawClient(url);
    const created = await client.request('tools/call', { name: 'greet_later', arguments: { name: 'Lin' } });
    const taskId = (created.result as { taskId: string }).taskId;
    const status = async () => ((await client.request('tasks/get', { taskId })).result as { status: string }).status;
    for (let i = 0; i < 3; i++) assert.equal(await status(), 'working', 'no function process ran the task');
    startWorker();
    await until(async () => (await status()) === 'input_required', { timeoutMs: 60_000, intervalMs: 200, what: 'the worker to ask the question' });
  });

  it('served every request by a process of its own', () => {
    assert.ok(invocations.length >= 8, `${invocations.length} requests`);
    assert.equal(new Set(invocations).size, invocations.length);
  });
});
