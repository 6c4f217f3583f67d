/**
 * `examples/hello-task/server.ts`, the smallest durable task server (issue 26 #5), run as a user
 * runs it: a task is created over 2026-07-28, the server is SIGKILLed while the task asks its
 * question, restarted on the same store, and the answer given through `tasks/update` finishes it.
 */
import assert from 'node:assert/strict';
import type { ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, it } from 'node:test';
import { ModernRawClient } from './helpers/modern-client.js';
import { startExample } from './helpers/example-process.js';

const dir = mkdtempSync(join(tmpdir(), 'mcp-tasks-hello-'));
const example = new URL('../examples/hello-task/server.ts', import.meta.url).pathname;
const children: ChildProcess[] = [];
after(() => {
  for (const child of children) child.kill('SIGKILL');
  rmSync(dir, { recursive: true, force: true });
});

/** Starts the example on a free port over the test's store; resolves with its MCP URL. */
const start = () => startExample(example, { PORT: '0', STORE: `sqlite:${join(dir, 'hello.db')}`, MCP_TASKS_LOG_LEVEL: 'warn' }, children);

async function until<T>(probe: () => Promise<T | undefined>, what: string, timeoutMs = 20_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const found = await probe();
    if (found !== undefined) return found;
    if (Date.now() > deadline) throw new Error(`not ${what} within ${timeoutMs} ms`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

it('is at most 30 lines', () => {
  assert.ok(readFileSync(example, 'utf8').trimEnd().split('\n').length <= 30);
});

it('runs a durable task: created, asked, survives a SIGKILL at the question, answered, completed', async () => {
  let server = await start();
  const created = await new ModernRawClient(server.url).request('tools/call', { name: 'greet_later', arguments: { name: 'Ada' } });
  const taskId = (created.result as { taskId?: string }).taskId;
  assert.ok(taskId, JSON.stringify(created));
  const asking = async (url: string) =>
    until(async () => {
      const task = (await new ModernRawClient(url).request('tasks/get', { taskId })).result as { status: string; inputRequests?: Record<string, unknown> };
      return task.status === 'input_required' ? task : undefined;
    }, 'asking');
  await asking(server.url);

  server.child.kill('SIGKILL');
  await new Promise((resolve) => server.child.once('exit', resolve));
  server = await start();
  const key = Object.keys((await asking(server.url)).inputRequests ?? {})[0]!;
  assert.ok(key, 'the question is still asked after the restart');

  const updated = await new ModernRawClient(server.url).request('tasks/update', {
    taskId,
    inputResponses: { [key]: { action: 'accept', content: { send: true } } },
  });
  assert.ok(!updated.error, JSON.stringify(updated));
  const done = await until(async () => {
    const task = (await new ModernRawClient(server.url).request('tasks/get', { taskId })).result as {
      status: string;
      result?: { content: { text: string }[] };
    };
    return task.status === 'completed' ? task : undefined;
  }, 'completed');
  assert.equal(done.result?.content[0]?.text, 'Hello, Ada!');
});
