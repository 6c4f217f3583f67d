/**
 * Answers are checked against the question's `requestedSchema` on the server (MCP "Elicitation":
 * accepted content must match the requested schema). The validator's own cases, then end to end over
 * HTTP in both eras: a non-conforming answer is refused and nothing is stored — 2026-07-28
 * `tasks/update` answers -32602 and `tasks/get` keeps showing the same `inputRequests`; 2025-11-25
 * asks the same question again (a new `elicitation/create`) until a conforming answer arrives — and a
 * task handler's `ctx.elicit` only ever sees conforming content.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { after, before, describe, it } from 'node:test';
import * as z from 'zod';
import { startInvoiceServer } from '../examples/invoice/server.js';
import { sseMessages } from '../src/client/sse.js';
import { ANSWER_SCHEMA_CACHE_SIZE, answerProblems, checkAnswer } from '../src/core/answer-schema.js';
import { InvalidAnswerError, InvalidArgumentError } from '../src/core/errors.js';
import { createLogger, silentLogger } from '../src/core/log.js';
import type { InputResponse } from '../src/core/task.js';
import { toProtocolError } from '../src/wire/errors.js';
import { createTaskServer } from '../src/server/task-server.js';
import { ModernRawClient } from './helpers/modern-client.js';
import { RawMcpClient, type RpcMessage } from './helpers/raw-client.js';
import { until } from './helpers/until.js';

const APPROVAL = {
  type: 'object',
  properties: {
    decision: { type: 'string', title: 'Decision', enum: ['approve', 'reject'] },
    comment: { type: 'string', title: 'Comment', maxLength: 40 },
  },
  required: ['decision'],
};
const accept = (content: InputResponse['content']): InputResponse => ({ action: 'accept', content });
const problemsOf = (schema: object, response: InputResponse) => {
  const check = checkAnswer(schema, response);
  return check.valid ? [] : check.problems;
};

describe('checkAnswer: the one validator', () => {
  it('names the field and the allowed values of an enum', () => {
    assert.deepEqual(checkAnswer(APPROVAL, accept({ decision: 'yes' })), { valid: false, problems: ['decision must be one of: approve, reject'] });
    assert.deepEqual(checkAnswer(APPROVAL, accept({ decision: 'approve', comment: 'fine' })), { valid: true });
  });

  it('refuses missing required fields and unknown fields (forms are closed), reporting every problem', () => {
    assert.deepEqual(problemsOf(APPROVAL, accept({})), ['decision is required']);
    assert.deepEqual(problemsOf(APPROVAL, { action: 'accept' }), ['decision is required'], 'no content counts as {}');
    assert.deepEqual(problemsOf(APPROVAL, accept({ decison: 'approve', comment: 'x'.repeat(41) })), [
      'decision is required',
      "unknown field 'decison' (the form has: decision, comment)",
      'comment must be at most 40 characters long',
    ]);
  });

  it('checks the types, bounds, formats and enums of the restricted form schema', () => {
    const schema = {
      type: 'object',
      properties: {
        count: { type: 'integer', minimum: 1, maximum: 10 },
        ratio: { type: 'number', exclusiveMinimum: 0 },
        name: { type: 'string', minLength: 2 },
        email: { type: 'string', format: 'email' },
        day: { type: 'string', format: 'date' },
        ok: { type: 'boolean' },
        color: {
          type: 'string',
          oneOf: [
            { const: 'r', title: 'Red' },
            { const: 'g', title: 'Green' },
          ],
        },
        legacy: { type: 'string', enum: ['a', 'b'], enumNames: ['A', 'B'] },
        tags: { type: 'array', items: { type: 'string', enum: ['x', 'y'] }, minItems: 1, maxItems: 2 },
        picks: {
          type: 'array',
          items: {
            anyOf: [
              { const: 'p', title: 'P' },
              { const: 'q', title: 'Q' },
            ],
          },
        },
      },
    };
    assert.deepEqual(
      problemsOf(
        schema,
        accept({ count: 1.5, ratio: 0, name: 'A', email: 'nope', day: '2026-13-45', ok: 'true', color: 'b', legacy: 'c', tags: ['z'], picks: ['p', 'zz'] }),
      ),
      [
        'count must be an integer',
        'ratio must be > 0',
        'name must be at least 2 characters long',
        'email must be a valid email',
        'day must be a valid date',
        'ok must be true or false',
        'color must be one of: r, g',
        'legacy must be one of: a, b',
        'tags[0] must be one of: x, y',
        'picks[1] must be one of: p, q',
      ],
    );
    assert.deepEqual(problemsOf(schema, accept({ count: 11, tags: [] })), ['count must be <= 10', 'tags must have at least 1 item']);
    assert.deepEqual(problemsOf(schema, accept({ tags: ['x', 'y', 'x'] })), ['tags must have at most 2 items']);
    assert.deepEqual(
      checkAnswer(
        schema,
        accept({
          count: 5,
          ratio: 0.5,
          name: 'Ada',
          email: 'ada@example.com',
          day: '2026-11-21',
          ok: false,
          color: 'g',
          legacy: 'a',
          tags: ['x'],
          picks: ['q'],
        }),
      ),
      { valid: true },
    );
  });

  it('needs no content for decline and cancel, and refuses an unknown action', () => {
    assert.deepEqual(checkAnswer(APPROVAL, { action: 'decline' }), { valid: true });
    assert.deepEqual(checkAnswer(APPROVAL, { action: 'cancel' }), { valid: true });
    assert.deepEqual(checkAnswer(APPROVAL, { action: 'maybe' } as unknown as InputResponse), {
      valid: false,
      problems: ['action must be one of: accept, decline, cancel'],
    });
    assert.deepEqual(checkAnswer(APPROVAL, { action: 'accept', content: 'approve' } as unknown as InputResponse), {
      valid: false,
      problems: ['content must be an object'],
    });
  });

  it('never puts the given value in a message (answers may be secrets; messages are logged)', () => {
    const schema = { type: 'object', properties: { pin: { type: 'string', pattern: '^[0-9]{4}$' }, code: { type: 'string', enum: ['a'] } } };
    const problems = problemsOf(schema, accept({ pin: 'hunter2-secret', code: 'other-secret' }));
    assert.equal(problems.length, 2);
    assert.doesNotMatch(problems.join(' '), /secret/);
  });

  it('accepts (unchecked, with the reason) what a schema that does not compile cannot check, without throwing', () => {
    const broken = checkAnswer({ type: 'object', properties: { x: { type: 'strng' } } }, accept({ x: 1 }));
    assert.equal(broken.valid, true);
    assert.match((broken as { unchecked?: string }).unchecked ?? '', /does not compile/);
    assert.equal(checkAnswer({ $ref: '#/definitions/nowhere' }, accept({ x: 1 })).valid, true);
    assert.deepEqual(answerProblems({ type: 'object', properties: { x: { type: 'strng' } } }, { x: 1 }), []);
  });

  it('constrains only what a schema says: no properties, an explicit additionalProperties, a $schema of another draft', () => {
    assert.deepEqual(checkAnswer({}, accept({ anything: 1 })), { valid: true });
    assert.deepEqual(checkAnswer({ type: 'object', properties: { a: { type: 'string' } }, additionalProperties: true }, accept({ b: 1 })), { valid: true });
    const draft2020 = { $schema: 'https://json-schema.org/draft/2020-12/schema', type: 'object', properties: { a: { type: 'string' } } };
    assert.deepEqual(problemsOf(draft2020, accept({ a: 1 })), ['a must be a string'], 'checked, not skipped');
  });

  it('caches compiled schemas in a bounded cache and keeps answering correctly past its size', () => {
    for (let i = 0; i < ANSWER_SCHEMA_CACHE_SIZE + 50; i++) {
      const schema = { type: 'object', properties: { [`f${i}`]: { type: 'integer' } }, required: [`f${i}`] };
      assert.deepEqual(problemsOf(schema, accept({ [`f${i}`]: 'x' })), [`f${i} must be an integer`]);
    }
    assert.deepEqual(problemsOf(APPROVAL, accept({ decision: 'yes' })), ['decision must be one of: approve, reject'], 'an evicted schema compiles again');
  });

  it('InvalidAnswerError is an InvalidArgumentError that the wire maps to -32602 with the problems', () => {
    const error = new InvalidAnswerError('t1', { 'elicit-1': ['decision must be one of: approve, reject'] });
    assert.ok(error instanceof InvalidArgumentError);
    assert.equal(error.message, "The answer to question 'elicit-1' does not match its requestedSchema: decision must be one of: approve, reject.");
    const rpc = toProtocolError(error);
    assert.equal(rpc.code, -32602);
    assert.equal(rpc.message, error.message);
    assert.deepEqual(rpc.data, { problems: { 'elicit-1': ['decision must be one of: approve, reject'] } });
  });
});

/** A logger at debug level whose lines are kept (parsed). */
function capturingLogger() {
  const lines: any[] = [];
  const destination = new Writable({
    write(chunk, _encoding, done) {
      for (const line of String(chunk).split('\n')) if (line.trim()) lines.push(JSON.parse(line));
      done();
    },
  });
  return { lines, logger: createLogger({ level: 'debug', destination }) };
}

/**
 * A server with `approve` (one enum question, like the invoice approval) and `pair` (two questions
 * at once). Every answer its handlers get from `ctx.elicit` is kept in `seen`.
 */
async function startApprovalServer() {
  const { lines, logger } = capturingLogger();
  const seen: InputResponse[] = [];
  const server = createTaskServer({
    store: 'memory:',
    storeOptions: { policy: { pollIntervalMs: 50 } },
    tasks: { fallbackTools: true },
    logger,
  });
  server.registerTool('approve', { description: 'Asks for approval', inputSchema: z.object({}), taskSupport: 'optional' }, async (_args, ctx) => {
    const answer = await ctx.elicit('Approve the payment?', APPROVAL);
    seen.push(answer);
    return {
      content: [{ type: 'text', text: answer.action === 'accept' ? `decision: ${String(answer.content?.decision)}` : `no decision (${answer.action})` }],
    };
  });
  server.registerTool('pair', { description: 'Asks two questions at once', inputSchema: z.object({}), taskSupport: 'optional' }, async (_args, ctx) => {
    const [first, second] = await Promise.all([ctx.elicit('First approval?', APPROVAL), ctx.elicit('Second approval?', APPROVAL)]);
    seen.push(first, second);
    return { content: [{ type: 'text', text: `${String(first.content?.decision)} + ${String(second.content?.decision)}` }] };
  });
  const http = await server.listen({ port: 0 });
  return { url: http.url, server, seen, lines, close: () => server.close() };
}

/** Every answer a handler got matches the approval schema. */
function assertOnlyValidSeen(seen: InputResponse[]): void {
  assert.ok(seen.length > 0);
  for (const answer of seen) assert.deepEqual(checkAnswer(APPROVAL, answer), { valid: true }, `ctx.elicit returned ${JSON.stringify(answer)}`);
}

/** The refusal was logged at info with its problems, without the answer's content. */
function assertRefusalLogged(lines: any[], taskId: string, secret: string): void {
  const refusal = lines.find((l) => l.msg === 'task input refused' && l.taskId === taskId);
  assert.ok(refusal, 'the refusal is logged');
  assert.equal(refusal.level, 30, 'at info');
  assert.match(JSON.stringify(refusal.problems), /decision must be one of: approve, reject/);
  assert.doesNotMatch(JSON.stringify(lines), new RegExp(secret), 'the answer content is never logged');
}

describe('answers checked end to end: 2026-07-28', () => {
  let app: Awaited<ReturnType<typeof startApprovalServer>>;
  let client: ModernRawClient;
  before(async () => {
    app = await startApprovalServer();
    client = new ModernRawClient(app.url);
  });
  after(() => app.close());

  const waitingTask = async (taskId: string) =>
    until(
      async () => {
        const task = (await client.request('tasks/get', { taskId })).result;
        return task?.status === 'input_required' && task;
      },
      { what: `task ${taskId} to wait for input` },
    );

  it('tasks/update with a non-conforming answer → -32602 naming the problem; nothing stored, same inputRequests', async () => {
    const created = (await client.request('tools/call', { name: 'approve', arguments: {} })).result;
    assert.equal(created.resultType, 'task');
    const waiting = await waitingTask(created.taskId);
    const [key] = Object.keys(waiting.inputRequests);
    const bad = await client.request('tasks/update', {
      taskId: created.taskId,
      inputResponses: { [key!]: { action: 'accept', content: { decision: 'yes', comment: 'private-note-77' } } },
    });
    assert.equal(bad.error?.code, -32602);
    assert.match(bad.error!.message, /decision must be one of: approve, reject/);
    assert.deepEqual(bad.error!.data, { problems: { [key!]: ['decision must be one of: approve, reject'] } });
    const missing = await client.request('tasks/update', { taskId: created.taskId, inputResponses: { [key!]: { action: 'accept', content: {} } } });
    assert.equal(missing.error?.code, -32602);
    assert.match(missing.error!.message, /decision is required/);
    const still = (await client.request('tasks/get', { taskId: created.taskId })).result;
    assert.equal(still.status, 'input_required');
    assert.deepEqual(still.inputRequests, waiting.inputRequests, 'the same question, under the same key');
    assert.equal(await app.server.store.inputAnswer(created.taskId, key!), undefined, 'nothing was journaled');
    assertRefusalLogged(app.lines, created.taskId, 'private-note-77');

    const ack = await client.request('tasks/update', {
      taskId: created.taskId,
      inputResponses: { [key!]: { action: 'accept', content: { decision: 'approve' } } },
    });
    assert.equal(ack.result?.resultType, 'complete');
    const done = await until(
      async () => {
        const task = (await client.request('tasks/get', { taskId: created.taskId })).result;
        return task?.status === 'completed' && task;
      },
      { what: 'completion' },
    );
    assert.deepEqual(done.result.content, [{ type: 'text', text: 'decision: approve' }]);
    assertOnlyValidSeen(app.seen);
  });

  it('is all or nothing across keys: one bad answer stores none; keys never asked stay ignored', async () => {
    const { taskId } = (await client.request('tools/call', { name: 'pair', arguments: {} })).result;
    const waiting = await until(
      async () => {
        const task = (await client.request('tasks/get', { taskId })).result;
        return task?.status === 'input_required' && Object.keys(task.inputRequests).length === 2 && task;
      },
      { what: 'both questions' },
    );
    const [first, second] = Object.keys(waiting.inputRequests);
    const mixed = await client.request('tasks/update', {
      taskId,
      inputResponses: { [first!]: { action: 'accept', content: { decision: 'approve' } }, [second!]: { action: 'accept', content: { decision: 'maybe' } } },
    });
    assert.equal(mixed.error?.code, -32602);
    assert.deepEqual(Object.keys((mixed.error!.data as any).problems), [second]);
    const still = (await client.request('tasks/get', { taskId })).result;
    assert.deepEqual(still.inputRequests, waiting.inputRequests, 'the good answer of the refused update was not stored either');
    assert.equal(await app.server.store.inputAnswer(taskId, first!), undefined);

    const ack = await client.request('tasks/update', {
      taskId,
      inputResponses: {
        [first!]: { action: 'accept', content: { decision: 'approve' } },
        [second!]: { action: 'accept', content: { decision: 'reject' } },
        'never-asked': { action: 'accept', content: { whatever: 'ignored' } },
      },
    });
    assert.equal(ack.result?.resultType, 'complete', 'answers under keys never asked are ignored, not refused');
    const done = await until(
      async () => {
        const task = (await client.request('tasks/get', { taskId })).result;
        return task?.status === 'completed' && task;
      },
      { what: 'completion' },
    );
    assert.deepEqual(done.result.content, [{ type: 'text', text: 'approve + reject' }]);
    assertOnlyValidSeen(app.seen);
  });

  it('the invoice approval no longer takes {"decision":"yes"} (as a rejection)', async () => {
    const invoiceServer = await startInvoiceServer({ store: 'memory:', port: 0, policy: { pollIntervalMs: 50 }, logger: silentLogger });
    try {
      const modern = new ModernRawClient(invoiceServer.url!);
      const invoice = JSON.parse(readFileSync(join('examples/invoice/data/invoices', 'INV-2026-0001.json'), 'utf8'));
      const { taskId } = (await modern.request('tools/call', { name: 'process_invoice', arguments: { invoice } })).result;
      const waiting = await until(
        async () => {
          const task = (await modern.request('tasks/get', { taskId })).result;
          return task?.status === 'input_required' && task;
        },
        { what: 'the approval question' },
      );
      const [key] = Object.keys(waiting.inputRequests);
      const bad = await modern.request('tasks/update', { taskId, inputResponses: { [key!]: { action: 'accept', content: { decision: 'yes' } } } });
      assert.equal(bad.error?.code, -32602);
      assert.match(bad.error!.message, /decision must be one of: approve, reject/);
      assert.equal((await modern.request('tasks/get', { taskId })).result.status, 'input_required', 'not rejected: still waiting');
      await modern.request('tasks/update', { taskId, inputResponses: { [key!]: { action: 'accept', content: { decision: 'approve' } } } });
      const done = await until(
        async () => {
          const task = (await modern.request('tasks/get', { taskId })).result;
          return task?.status === 'completed' && task;
        },
        { what: 'the payment' },
      );
      assert.equal(done.result.structuredContent.status, 'paid');
    } finally {
      await invoiceServer.close();
    }
  });
});

describe('answers checked end to end: 2025-11-25', () => {
  let app: Awaited<ReturnType<typeof startApprovalServer>>;
  before(async () => {
    app = await startApprovalServer();
  });
  after(() => app.close());

  it('asks the same question again on the tasks/result stream after a non-conforming answer; a good one completes the task', async () => {
    const client = new RawMcpClient(app.url);
    await client.initialize();
    const { taskId } = (await client.request('tools/call', { name: 'approve', arguments: {}, task: {} })).result.task;
    const asked: RpcMessage[] = [];
    const result = await client.request('tasks/result', { taskId }, async (request) => {
      asked.push(request);
      return asked.length === 1
        ? { action: 'accept', content: { decision: 'yes', comment: 'private-note-78' } }
        : { action: 'accept', content: { decision: 'approve' } };
    });
    assert.deepEqual(result.result.content, [{ type: 'text', text: 'decision: approve' }]);
    assert.equal(asked.length, 2, 'asked twice');
    for (const request of asked) {
      assert.equal(request.method, 'elicitation/create');
      assert.equal(request.params.message, 'Approve the payment?');
      assert.deepEqual(request.params.requestedSchema, APPROVAL);
      assert.deepEqual(request.params._meta['io.modelcontextprotocol/related-task'], { taskId });
    }
    assert.notEqual(asked[0]!.id, asked[1]!.id, 'a new elicitation/create request');
    assertRefusalLogged(app.lines, taskId, 'private-note-78');
    assertOnlyValidSeen(app.seen);
  });

  it('asks again at once on the standalone GET stream (no timeout to wait for), and the task still waits meanwhile', async () => {
    const client = new RawMcpClient(app.url);
    await client.initialize();
    const stream = await fetch(app.url, {
      headers: { accept: 'text/event-stream', 'mcp-session-id': client.sessionId!, 'mcp-protocol-version': '2025-11-25' },
    });
    assert.equal(stream.status, 200);
    const messages = sseMessages<RpcMessage>(stream)[Symbol.asyncIterator]();
    const nextQuestion = async () => {
      for (;;) {
        const { value, done } = await messages.next();
        if (done) throw new Error('the GET stream ended');
        if (value.method === 'elicitation/create') return value;
      }
    };
    try {
      const { taskId } = (await client.request('tools/call', { name: 'approve', arguments: {}, task: {} })).result.task;
      const first = await nextQuestion();
      assert.equal((await client.post({ jsonrpc: '2.0', id: first.id, result: { action: 'accept', content: { decision: 'approve', extra: 1 } } })).status, 202);
      const second = await nextQuestion();
      assert.notEqual(second.id, first.id);
      assert.equal(second.params.message, first.params.message);
      assert.deepEqual(second.params.requestedSchema, first.params.requestedSchema);
      assert.deepEqual(second.params._meta['io.modelcontextprotocol/related-task'], { taskId });
      assert.equal((await client.request('tasks/get', { taskId })).result.status, 'input_required', 'the refused answer changed nothing');
      assert.equal(await app.server.store.inputAnswer(taskId, 'elicit-1'), undefined);
      assert.equal((await client.post({ jsonrpc: '2.0', id: second.id, result: { action: 'accept', content: { decision: 'reject' } } })).status, 202);
      const result = await client.request('tasks/result', { taskId });
      assert.deepEqual(result.result.content, [{ type: 'text', text: 'decision: reject' }]);
    } finally {
      await messages.return?.(undefined);
    }
    assertOnlyValidSeen(app.seen);
  });

  it('asks again on the call stream of a synchronous call of a task tool', async () => {
    const client = new RawMcpClient(app.url);
    await client.initialize();
    let asked = 0;
    const result = await client.request('tools/call', { name: 'approve', arguments: {} }, async () =>
      ++asked === 1 ? { action: 'accept', content: {} } : { action: 'accept', content: { decision: 'approve' } },
    );
    assert.equal(asked, 2);
    assert.deepEqual(result.result.content, [{ type: 'text', text: 'decision: approve' }]);
  });

  it('the fallback tool answer_task_input refuses a non-conforming answer with an isError result naming the problem', async () => {
    const client = new RawMcpClient(app.url);
    await client.initialize({}); // no elicitation: the fallback tools are the way to answer
    const { taskId } = (await client.request('tools/call', { name: 'approve', arguments: {}, task: {} })).result.task;
    await until(async () => (await client.request('tasks/get', { taskId })).result?.status === 'input_required', { what: 'the question' });
    const call = (answers: Record<string, unknown>) => client.request('tools/call', { name: 'answer_task_input', arguments: { taskId, answers } });
    const refused = (await call({ decision: 'yes' })).result;
    assert.equal(refused.isError, true);
    assert.match(refused.content[0].text, /decision must be one of: approve, reject/);
    assert.match(refused.content[0].text, /Nothing was recorded/);
    const unknown = (await call({ decision: 'approve', note: 'x' })).result;
    assert.equal(unknown.isError, true);
    assert.match(unknown.content[0].text, /unknown field 'note'/);
    assert.equal((await client.request('tasks/get', { taskId })).result.status, 'input_required');
    const ok = (await call({ decision: 'approve', comment: 'fine' })).result;
    assert.equal(ok.isError, undefined);
    assert.match(ok.content[0].text, /Answer recorded/);
    const result = await client.request('tasks/result', { taskId });
    assert.deepEqual(result.result.content, [{ type: 'text', text: 'decision: approve' }]);
    assertOnlyValidSeen(app.seen);
  });
});
