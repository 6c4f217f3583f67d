/**
 * The MCP endpoint as a mountable handler (`TaskServer.httpHandler`, `createMcpHttpHandler`),
 * driven without any HTTP server: web-standard `Request`s straight into `fetch`, as a Worker,
 * Deno or Bun host calls it. What a host relies on: both eras answer; the handler's own bearer
 * auth; bad bodies get their JSON-RPC errors; SSE answers are `ReadableStream`s whose end or
 * cancellation releases what the request held (the request count, a session's standalone stream,
 * a subscription's listeners); a handler used before `start()` starts the server itself (resuming
 * stored tasks), and one whose store cannot be reached answers 503/500 and tries again later.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import * as z from 'zod';
import { createTaskServer, silentLogger, staticTokenVerifier, type TaskServer } from '../src/index.js';
import { ModernRawClient } from './helpers/modern-client.js';
import { until } from './helpers/until.js';

const dir = mkdtempSync(join(tmpdir(), 'mcp-tasks-handler-'));
const servers: TaskServer[] = [];
after(async () => {
  for (const server of servers) await server.close();
  rmSync(dir, { recursive: true, force: true });
});

/** A task server with one tool that asks a question; not started. */
function taskServer(store = 'memory:'): TaskServer {
  const server = createTaskServer({ store, logger: silentLogger });
  servers.push(server);
  return server.registerTool(
    'ask',
    { description: 'Asks, then echoes the reply', inputSchema: z.object({ question: z.string() }), taskSupport: 'optional' },
    async ({ question }, ctx) => {
      const answer = await ctx.elicit(question, { type: 'object', properties: { reply: { type: 'string' } }, required: ['reply'] });
      return { content: [{ type: 'text', text: `reply: ${String(answer.content?.reply)}` }] };
    },
  );
}

const URL_ = 'http://mounted.example/mcp';
type Handler = ReturnType<TaskServer['httpHandler']>;
const clientOf = (handler: Handler, declareTasks = true) =>
  new ModernRawClient(URL_, declareTasks, undefined, undefined, (url, init) => handler.fetch(new Request(url, init)));

/** A 2025-11-25 request as `fetch` gets it. */
function legacyPost(body: unknown, headers: Record<string, string> = {}): Request {
  return new Request(URL_, {
    method: 'POST',
    headers: { 'content-type': 'application/json', accept: 'application/json, text/event-stream', ...headers },
    body: JSON.stringify(body),
  });
}

describe('httpHandler().fetch, web-standard, no HTTP server', () => {
  it('runs a 2026-07-28 task: created, asked, answered, completed; the request count returns to 0', async () => {
    const handler = taskServer().httpHandler();
    const client = clientOf(handler);
    const { taskId } = (await client.request('tools/call', { name: 'ask', arguments: { question: 'Mounted?' } })).result as { taskId: string };
    const asking = await until(async () => {
      const task = (await client.request('tasks/get', { taskId })).result as { status: string; inputRequests?: Record<string, unknown> };
      return task.status === 'input_required' ? task : undefined;
    });
    const key = Object.keys(asking.inputRequests!)[0]!;
    await client.request('tasks/update', { taskId, inputResponses: { [key]: { action: 'accept', content: { reply: 'yes' } } } });
    const done = await until(async () => {
      const task = (await client.request('tasks/get', { taskId })).result as { status: string; result?: { content: { text: string }[] } };
      return task.status === 'completed' ? task : undefined;
    });
    assert.equal(done.result!.content[0]!.text, 'reply: yes');
    assert.equal(handler.stats().requests, 0);
  });

  it('serves 2025-11-25 sessions: initialize, a task call, the standalone GET stream (released when cancelled), DELETE', async () => {
    const handler = taskServer().httpHandler();
    const init = await handler.fetch(
      legacyPost({
        jsonrpc: '2.0',
        id: 1,
        method: 'initialize',
        params: { protocolVersion: '2025-11-25', capabilities: { elicitation: {} }, clientInfo: { name: 't', version: '0' } },
      }),
    );
    assert.equal(init.status, 200);
    const sessionId = init.headers.get('mcp-session-id')!;
    assert.ok(sessionId);
    await init.body?.cancel();
    const session = { 'mcp-session-id': sessionId, 'mcp-protocol-version': '2025-11-25' };
    await handler.fetch(legacyPost({ jsonrpc: '2.0', method: 'notifications/initialized' }, session));
    const call = await handler.fetch(
      legacyPost({ jsonrpc: '2.0', id: 2, method: 'tools/call', params: { name: 'ask', arguments: { question: '2025?' }, task: {} } }, session),
    );
    const created = (await call.json()) as { result: { task: { taskId: string; status: string } } };
    assert.equal(created.result.task.status, 'working');
    assert.equal(handler.stats().sessions, 1);

    const stream = await handler.fetch(new Request(URL_, { method: 'GET', headers: { accept: 'text/event-stream', ...session } }));
    assert.equal(stream.status, 200);
    assert.equal(stream.headers.get('content-type'), 'text/event-stream');
    const reader = stream.body!.getReader();
    // The question is pushed on the standalone stream as elicitation/create with the related task.
    let text = '';
    while (!text.includes('elicitation/create')) text += new TextDecoder().decode((await reader.read()).value);
    assert.match(text, new RegExp(created.result.task.taskId));
    await reader.cancel();

    const deleted = await handler.fetch(new Request(URL_, { method: 'DELETE', headers: session }));
    assert.equal(deleted.status, 200);
    assert.equal(handler.stats().sessions, 0);
    assert.equal(handler.stats().requests, 0);
  });

  it('streams subscriptions/listen as a ReadableStream; cancelling it releases the listeners', async () => {
    const server = taskServer();
    const handler = server.httpHandler();
    const client = clientOf(handler);
    const { taskId } = (await client.request('tools/call', { name: 'ask', arguments: { question: 'Listen?' } })).result as { taskId: string };
    await until(async () => ((await client.request('tasks/get', { taskId })).result as { status: string }).status === 'input_required');
    const before = server.store.listenerCounts();
    const response = await client.send('subscriptions/listen', { notifications: { taskIds: [taskId] } });
    assert.equal(response.headers.get('content-type'), 'text/event-stream');
    const reader = response.body!.getReader();
    let text = '';
    while (!text.includes('notifications/tasks')) text += new TextDecoder().decode((await reader.read()).value);
    assert.match(text, /notifications\/subscriptions\/acknowledged/);
    assert.equal(server.store.listenerCounts().taskListeners, before.taskListeners + 1, 'the subscription listens to its task');
    await reader.cancel();
    await until(() => JSON.stringify(server.store.listenerCounts()) === JSON.stringify(before), { what: 'the listeners released' });
  });

  it('answers bad bodies with their JSON-RPC errors and loses nothing', async () => {
    const handler = taskServer().httpHandler({ maxBodyBytes: 1024 });
    const notJson = await handler.fetch(new Request(URL_, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{nope' }));
    assert.equal(notJson.status, 400);
    assert.equal(((await notJson.json()) as { error: { code: number } }).error.code, -32700);
    const big = 'x'.repeat(2048);
    const declared = await handler.fetch(legacyPost({ jsonrpc: '2.0', id: 1, method: 'ping', params: { big } }));
    assert.equal(declared.status, 413);
    // No Content-Length: refused while reading.
    const streamed = await handler.fetch(
      new Request(URL_, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: new ReadableStream({
          start(controller) {
            controller.enqueue(new TextEncoder().encode(JSON.stringify({ big })));
            controller.close();
          },
        }),
        duplex: 'half',
      } as RequestInit),
    );
    assert.equal(streamed.status, 413);
    const deep = await handler.fetch(legacyPost(JSON.parse('['.repeat(100) + ']'.repeat(100))));
    assert.equal(deep.status, 400);
    assert.equal(handler.stats().requests, 0);
  });

  it('verifies bearer tokens itself with { auth }, the verified principal owning the task', async () => {
    const handler = taskServer().httpHandler({ auth: { verifier: staticTokenVerifier({ 'a-token': 'alice', 'b-token': 'bob' }) } });
    const client = clientOf(handler);
    const refused = await client.send('tools/call', { name: 'ask', arguments: { question: 'Who?' } });
    assert.equal(refused.status, 401);
    assert.match(refused.headers.get('www-authenticate') ?? '', /^Bearer/);
    const { taskId } = (await client.request('tools/call', { name: 'ask', arguments: { question: 'Who?' } }, { authorization: 'Bearer a-token' })).result as {
      taskId: string;
    };
    assert.ok((await client.request('tasks/get', { taskId }, { authorization: 'Bearer a-token' })).result);
    assert.ok((await client.request('tasks/get', { taskId }, { authorization: 'Bearer b-token' })).error, 'bob cannot read it');
  });

  it('a handler used before start() starts the server: the first request resumes stored tasks', async () => {
    const store = `sqlite:${join(dir, 'lazy.db')}`;
    const first = taskServer(store);
    const client1 = clientOf(first.httpHandler());
    const { taskId } = (await client1.request('tools/call', { name: 'ask', arguments: { question: 'Resume?' } })).result as { taskId: string };
    await until(async () => ((await client1.request('tasks/get', { taskId })).result as { status: string }).status === 'input_required');
    await first.close();

    const second = taskServer(store);
    const client2 = clientOf(second.httpHandler());
    const key = Object.keys(((await client2.request('tasks/get', { taskId })).result as { inputRequests: Record<string, unknown> }).inputRequests)[0]!;
    await client2.request('tasks/update', { taskId, inputResponses: { [key]: { action: 'accept', content: { reply: 'resumed' } } } });
    const done = await until(async () => {
      const task = (await client2.request('tasks/get', { taskId })).result as { status: string; result?: { content: { text: string }[] } };
      return task.status === 'completed' ? task : undefined;
    });
    assert.equal(done.result!.content[0]!.text, 'reply: resumed');
    assert.equal(await second.start(), 1, 'start() again resolves with the same count, nothing resumed twice');
  });

  it('a store that cannot be reached: each request is refused with 503, Retry-After and -32010 (retryable), the next one tries to start again', async () => {
    const server = taskServer('postgres://postgres@127.0.0.1:1/test?connectTimeoutMs=500');
    const handler = server.httpHandler();
    for (let i = 0; i < 2; i++) {
      const response = await clientOf(handler).send('tools/call', { name: 'ask', arguments: { question: 'Down?' } });
      assert.equal(response.status, 503);
      assert.equal(response.headers.get('retry-after'), '1');
      const body = (await response.json()) as { error?: { code: number; data?: { retryable?: boolean } } };
      assert.equal(body.error?.code, -32010, JSON.stringify(body));
      assert.equal(body.error?.data?.retryable, true);
    }
  });
});
