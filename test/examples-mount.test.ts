/**
 * The mount examples (issue 26 #1), each run as a user runs it, as a child process on a real
 * framework: `examples/mount/express.ts` (an Express app with routes and bearer auth of its own),
 * `examples/mount/hono.ts` (Hono on Node, through the web-standard `fetch` handler) and
 * `examples/mount/fastify.ts`. On each, the app's own route answers beside the MCP endpoint, and a
 * durable task (a step, a timer, a question) runs to completion in both protocol eras through the
 * package's client (`connectTaskClient`): created, asked, answered, its result read.
 * On Express the principal comes from the app's authentication: a request without a token is
 * refused by the app (401), and another principal cannot read the task; the operator console
 * mounted at /ops shows the task to a signed-in operator.
 */
import assert from 'node:assert/strict';
import type { ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { connectTaskClient } from '../src/client/connect.js';
import { ModernRawClient } from './helpers/modern-client.js';
import { ConsoleHttp } from './helpers/console-http.js';
import { startExample } from './helpers/example-process.js';

const dir = mkdtempSync(join(tmpdir(), 'mcp-tasks-mount-'));
const children: ChildProcess[] = [];
after(() => {
  for (const child of children) child.kill('SIGKILL');
  rmSync(dir, { recursive: true, force: true });
});

/** Starts `examples/mount/<name>.ts` on a free port with its own SQLite store; resolves with its MCP URL. */
const start = (name: string) =>
  startExample(
    new URL(`../examples/mount/${name}.ts`, import.meta.url).pathname,
    { PORT: '0', STORE: `sqlite:${join(dir, `${name}.db`)}`, MCP_TASKS_LOG_LEVEL: 'warn' },
    children,
  );

/** Runs greet_later as a task in `version` and answers its question; resolves with the task id and its result text. */
async function greet(url: string, version: '2025-11-25' | '2026-07-28', headers: Record<string, string> = {}): Promise<{ taskId: string; text: string }> {
  const asked: string[] = [];
  const tc = await connectTaskClient(url, {
    protocolVersion: version,
    headers,
    answer: async (question) => {
      asked.push(question.message);
      return { action: 'accept', content: { send: true } };
    },
  });
  try {
    assert.equal(tc.protocolVersion, version);
    const execution = await tc.session.callTool('greet_later', { name: 'Ada' }, { task: { preference: 'require' } });
    const { outcome } = await execution.settle();
    assert.equal(outcome.status, 'completed', JSON.stringify(outcome));
    assert.deepEqual(asked, ['Send "Hello, Ada!"?'], 'the question was asked once');
    const result = (outcome as { result: { content: { text: string }[] } }).result;
    assert.equal(execution.kind, 'task');
    return { taskId: (execution.handle as { taskId: string }).taskId, text: result.content[0]!.text };
  } finally {
    await tc.close();
  }
}

for (const name of ['express', 'hono', 'fastify'] as const) {
  describe(`examples/mount/${name}.ts`, () => {
    const auth: Record<string, string> = name === 'express' ? { authorization: 'Bearer alice-token' } : {};
    let url: string;

    it("starts, and the app's own route answers beside /mcp", async () => {
      ({ url } = await start(name));
      const health = await fetch(new URL('/health', url));
      assert.equal(health.status, 200);
      assert.deepEqual(await health.json(), { ok: true });
    });

    for (const version of ['2025-11-25', '2026-07-28'] as const) {
      it(`runs a durable task to completion in ${version}: created, asked, answered, result read`, async () => {
        const { text } = await greet(url, version, auth);
        assert.equal(text, 'Hello, Ada!');
      });
    }

    if (name === 'express') {
      it("takes the principal from the app's authentication: no token is refused by the app, another principal cannot see the task; the console at /ops shows it", async () => {
        const refused = await fetch(url, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{}' });
        assert.equal(refused.status, 401);
        const { taskId } = await greet(url, '2026-07-28', auth);
        const own = await new ModernRawClient(url).request('tasks/get', { taskId }, auth);
        assert.equal((own.result as { status?: string } | undefined)?.status, 'completed', JSON.stringify(own));
        const foreign = await new ModernRawClient(url).request('tasks/get', { taskId }, { authorization: 'Bearer bob-token' });
        assert.ok(foreign.error, `bob must not read alice's task: ${JSON.stringify(foreign)}`);

        const operator = new ConsoleHttp(new URL(url).origin, { base: '/ops' });
        assert.equal((await operator.get('/ops/')).location, '/ops/login', 'the console asks operators to sign in');
        assert.equal((await operator.login('ops-token')).status, 303);
        const page = await operator.get(`/ops/tasks/${taskId}`);
        assert.equal(page.status, 200);
        assert.match(page.text, /greet_later/);
        assert.match(page.text, /href="\/ops\/"/, 'its links stay under /ops');
      });
    }
  });
}
