/**
 * Every kind of question a task can ask (form elicitation, URL elicitation, sampling, roots) in both
 * protocol eras, end to end against a real child process (test/fixtures/input-kinds-server.ts) that
 * is SIGKILLed between a question and its answer and started again on the same SQLite file:
 *
 * - 2025-11-25: the question is a server request (`elicitation/create` form / url,
 *   `sampling/createMessage`, `roots/list`) on the `tasks/result` stream, sent only to clients that
 *   declared the capability; `notifications/elicitation/complete` when a URL flow completes.
 * - 2026-07-28 with the Tasks extension: `tasks/get` `inputRequests` (only the kinds the request's
 *   client capabilities cover) answered with `tasks/update`.
 * - 2026-07-28 without the extension: multi round-trip requests (`InputRequiredResult` +
 *   `requestState`, retried with `inputResponses`), surviving a restart between rounds; tampered or
 *   rebound `requestState` refused with -32602 without spoiling the real one.
 * - Progress of a task tool: exactly the values reported, in order, never after the task ended.
 */
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { after, afterEach, before, describe, it } from 'node:test';
import { sseMessages } from '../src/client/sse.js';
import { ModernRawClient, readSse, TASKS_EXT } from './helpers/modern-client.js';
import { postInSession, RawMcpClient, type RpcMessage } from './helpers/raw-client.js';
import { until } from './helpers/until.js';

const dir = mkdtempSync(join(tmpdir(), 'mcp-tasks-input-kinds-'));
const RELATED = 'io.modelcontextprotocol/related-task';
/** Capabilities of a 2025-11-25 client that can answer every kind of question. */
const ALL_CAPS = { elicitation: { form: {}, url: {} }, sampling: {}, roots: {} };
const COLOUR_SCHEMA = { type: 'object', properties: { colour: { type: 'string' } }, required: ['colour'] };
const NAME_SCHEMA = { type: 'object', properties: { name: { type: 'string' } }, required: ['name'] };
const TEST_TIMEOUT_MS = 90_000;

/** One kind of question: the fixture tool asking it, what goes on the wire, an answer, the result it yields. */
interface Kind {
  name: 'form' | 'url' | 'sampling' | 'roots';
  tool: string;
  args: Record<string, unknown>;
  /** The question's key (the tool names it). */
  key: string;
  method: string;
  /** The request's params in `era` (`flow`: the URL flow's id, read off the wire). */
  params(era: '2025' | '2026', flow?: string): Record<string, unknown>;
  answer: Record<string, unknown>;
  resultText(flow?: string): string;
}

const KINDS: Kind[] = [
  {
    name: 'form',
    tool: 'ask_form',
    args: { topic: 'bikeshed' },
    key: 'colour',
    method: 'elicitation/create',
    params: () => ({ mode: 'form', message: 'Which colour for the bikeshed?', requestedSchema: COLOUR_SCHEMA }),
    answer: { action: 'accept', content: { colour: 'teal' } },
    resultText: () => 'colour: teal',
  },
  {
    name: 'url',
    tool: 'ask_url',
    args: { amount: 42 },
    key: 'bank',
    method: 'elicitation/create',
    params: (era, flow) => ({
      mode: 'url',
      message: 'Approve the payment of 42 EUR at your bank',
      url: `https://bank.example/approve?flow=${flow}`,
      ...(era === '2025' && { elicitationId: flow }),
    }),
    answer: { action: 'accept' },
    resultText: (flow) => `payment: accept (flow ${flow})`,
  },
  {
    name: 'sampling',
    tool: 'ask_sample',
    args: {},
    key: 'prime',
    method: 'sampling/createMessage',
    params: () => ({ messages: [{ role: 'user', content: { type: 'text', text: 'Name a prime number' } }], maxTokens: 20 }),
    answer: { role: 'assistant', content: { type: 'text', text: '7' }, model: 'test-model', stopReason: 'endTurn' },
    resultText: () => 'sampled: 7 (test-model)',
  },
  {
    name: 'roots',
    tool: 'ask_roots',
    args: {},
    key: 'roots',
    method: 'roots/list',
    params: () => ({}),
    answer: { roots: [{ uri: 'file:///work/project', name: 'project' }] },
    resultText: () => 'roots: file:///work/project',
  },
];

after(async () => {
  for (const fixture of running) await fixture.kill();
  rmSync(dir, { recursive: true, force: true });
});

// ---------------------------------------------------------------------------------------------
// 1. Each kind of question in each era, with a SIGKILL between the question and the answer
// ---------------------------------------------------------------------------------------------

describe('2025-11-25: each kind of question survives a SIGKILL and is asked again with the server request it maps to', () => {
  afterEach(killAll);

  for (const kind of KINDS) {
    it(`${kind.name}: asked on tasks/result, SIGKILL, restart, asked again, answered, completed`, { timeout: TEST_TIMEOUT_MS }, async () => {
      const db = dbPath(`k25-${kind.name}`);
      let life = await startFixture(db);
      let client = await legacyClient(life.url, ALL_CAPS);
      const { taskId } = (await client.request('tools/call', { name: kind.tool, arguments: kind.args, task: {} })).result.task;

      // Life 1: the question reaches the client on the tasks/result stream; the server dies before the answer.
      const first = await askedThenKilled(client, taskId, life);
      const flow = kind.name === 'url' ? String(first.params.elicitationId) : undefined;
      assert.equal(first.method, kind.method);
      assert.deepEqual(withoutMeta(first.params), kind.params('2025', flow));

      // Life 2: same SQLite file, a new connection declaring the capabilities.
      life = await startFixture(db);
      assert.match(life.log(), /resumed 1 task\(s\)/);
      client = await legacyClient(life.url, ALL_CAPS);
      assert.equal((await client.request('tasks/get', { taskId })).result.status, 'input_required', 'the question survived the crash');
      const stream = kind.name === 'url' ? await openGetStream(life.url, client.sessionId!) : undefined;
      try {
        const asked: RpcMessage[] = [];
        let completion: Promise<RpcMessage> | undefined;
        const result = await client.request('tasks/result', { taskId }, async (request) => {
          asked.push(request);
          // URL mode: once the accept is stored the task waits (working) for the out-of-band step.
          if (kind.name === 'url') completion ??= completeWhenWaiting(client, taskId, String(request.params.elicitationId));
          return kind.answer;
        });
        assert.equal(asked.length, 1, `asked once after the restart: ${JSON.stringify(asked.map((a) => a.method))}`);
        assert.equal(asked[0]!.method, kind.method);
        assert.deepEqual(withoutMeta(asked[0]!.params), kind.params('2025', flow), 'the same question as before the crash');
        assert.deepEqual(asked[0]!.params._meta?.[RELATED], { taskId });
        assert.ok(!result.error, JSON.stringify(result.error));
        assert.deepEqual(result.result.content, [{ type: 'text', text: kind.resultText(flow) }]);
        assert.deepEqual(result.result._meta?.[RELATED], { taskId });
        assert.equal((await client.request('tasks/get', { taskId })).result.status, 'completed');
        if (kind.name === 'url') {
          assert.equal((await completion!).result?.content?.[0]?.text, 'completed: true');
          const done = await until(() => stream!.messages.find((m) => m.method === 'notifications/elicitation/complete'), {
            timeoutMs: 5000,
            what: () => `notifications/elicitation/complete on the GET stream (seen: ${stream!.methods()})`,
          });
          assert.equal(done.params.elicitationId, flow);
          assert.deepEqual(done.params._meta?.[RELATED], { taskId });
        }
      } finally {
        await stream?.close();
      }
    });
  }
});

describe('2026-07-28 (Tasks extension): each kind of question survives a SIGKILL and is answered with tasks/update', () => {
  afterEach(killAll);

  for (const kind of KINDS) {
    it(`${kind.name}: inputRequests, SIGKILL, restart, same inputRequests, tasks/update, completed`, { timeout: TEST_TIMEOUT_MS }, async () => {
      const db = dbPath(`k26-${kind.name}`);
      let life = await startFixture(db);
      let client = modernClient(life.url, { tasks: true, ...ALL_CAPS });
      const created = (await client.request('tools/call', { name: kind.tool, arguments: kind.args })).result;
      assert.equal(created.resultType, 'task', JSON.stringify(created));
      const taskId = created.taskId as string;
      const firstSeen = await untilTask26(client, taskId, (t) => t.status === 'input_required');
      const flow = kind.name === 'url' ? flowOf(firstSeen.inputRequests[kind.key]?.params?.url) : undefined;
      assert.deepEqual(firstSeen.inputRequests, { [kind.key]: { method: kind.method, params: kind.params('2026', flow) } });
      await life.kill();

      life = await startFixture(db);
      client = modernClient(life.url, { tasks: true, ...ALL_CAPS });
      const waiting = (await client.request('tasks/get', { taskId })).result;
      assert.equal(waiting.status, 'input_required', 'the question survived the crash');
      assert.deepEqual(waiting.inputRequests, { [kind.key]: { method: kind.method, params: kind.params('2026', flow) } });

      const ack = await client.request('tasks/update', { taskId, inputResponses: { [kind.key]: kind.answer } });
      assert.ok(!ack.error, JSON.stringify(ack.error));
      assert.equal(ack.result.resultType, 'complete');

      if (kind.name === 'url') {
        // Accepted: the task waits durably for the out-of-band step — across one more SIGKILL.
        const parked = await untilTask26(client, taskId, (t) => t.status === 'working' && /bank\.example/.test(t.statusMessage ?? ''));
        assert.equal(parked.inputRequests, undefined);
        await life.kill();
        life = await startFixture(db);
        client = modernClient(life.url, { tasks: true, ...ALL_CAPS });
        const still = (await client.request('tasks/get', { taskId })).result;
        assert.equal(still.status, 'working', `still waiting for the bank after the restart: ${JSON.stringify(still)}`);
        assert.equal(still.inputRequests, undefined, 'the accepted question is not asked again');
        const completed = await client.request('tools/call', { name: 'complete_url', arguments: { taskId, elicitationId: flow } });
        assert.equal(completed.result?.content?.[0]?.text, 'completed: true', JSON.stringify(completed));
      }
      const done = await untilTask26(client, taskId, (t) => t.status === 'completed');
      assert.deepEqual(done.result.content, [{ type: 'text', text: kind.resultText(flow) }]);
    });
  }
});

// ---------------------------------------------------------------------------------------------
// 2. Multi round-trip requests (2026-07-28 without the extension) across a restart
// ---------------------------------------------------------------------------------------------

describe('2026-07-28 MRTR (no Tasks extension): rounds survive a SIGKILL between them', () => {
  afterEach(killAll);

  it('round 1 InputRequiredResult; SIGKILL; restart; the retry with inputResponses + requestState completes', { timeout: TEST_TIMEOUT_MS }, async () => {
    const db = dbPath('mrtr-one');
    let life = await startFixture(db);
    let client = modernClient(life.url, { elicitation: {} });
    const call = { name: 'ask_form', arguments: { topic: 'shed' } };
    const round1 = (await client.request('tools/call', call)).result;
    assert.equal(round1.resultType, 'input_required', JSON.stringify(round1));
    assert.deepEqual(round1.inputRequests, {
      colour: { method: 'elicitation/create', params: { mode: 'form', message: 'Which colour for the shed?', requestedSchema: COLOUR_SCHEMA } },
    });
    assert.equal(typeof round1.requestState, 'string');
    assert.equal(round1.taskId, undefined, 'no task is handed out');
    await life.kill();

    life = await startFixture(db);
    client = modernClient(life.url, { elicitation: {} });
    const retry = await client.request('tools/call', {
      ...call,
      inputResponses: { colour: { action: 'accept', content: { colour: 'teal' } } },
      requestState: round1.requestState,
    });
    assert.ok(!retry.error, JSON.stringify(retry.error));
    assert.equal(retry.result.resultType, 'complete', JSON.stringify(retry.result));
    assert.deepEqual(retry.result.content, [{ type: 'text', text: 'colour: teal' }]);
  });

  it('two questions in sequence take two rounds with different requestState, with a SIGKILL between them', { timeout: TEST_TIMEOUT_MS }, async () => {
    const db = dbPath('mrtr-two');
    let life = await startFixture(db);
    let client = modernClient(life.url, { elicitation: {} });
    const call = { name: 'two_questions', arguments: {} };
    const round1 = (await client.request('tools/call', call)).result;
    assert.equal(round1.resultType, 'input_required', JSON.stringify(round1));
    assert.deepEqual(round1.inputRequests, {
      step1: { method: 'elicitation/create', params: { mode: 'form', message: 'Step 1: your name?', requestedSchema: NAME_SCHEMA } },
    });
    await life.kill();

    life = await startFixture(db);
    client = modernClient(life.url, { elicitation: {} });
    const round2 = (
      await client.request('tools/call', {
        ...call,
        inputResponses: { step1: { action: 'accept', content: { name: 'Ada' } } },
        requestState: round1.requestState,
      })
    ).result;
    assert.equal(round2.resultType, 'input_required', JSON.stringify(round2));
    assert.deepEqual(round2.inputRequests, {
      step2: { method: 'elicitation/create', params: { mode: 'form', message: 'Step 2: your favourite colour?', requestedSchema: COLOUR_SCHEMA } },
    });
    assert.equal(typeof round2.requestState, 'string');
    assert.notEqual(round2.requestState, round1.requestState, 'each round has its own requestState');

    const final = await client.request('tools/call', {
      ...call,
      inputResponses: { step2: { action: 'accept', content: { colour: 'green' } } },
      requestState: round2.requestState,
    });
    assert.ok(!final.error, JSON.stringify(final.error));
    assert.equal(final.result.resultType, 'complete', JSON.stringify(final.result));
    assert.deepEqual(final.result.content, [{ type: 'text', text: 'Ada likes green' }]);
  });
});

// ---------------------------------------------------------------------------------------------
// 3.–6. On one server: requestState integrity, clients that cannot answer, tasks/update junk, progress
// ---------------------------------------------------------------------------------------------

describe('on one server', () => {
  let life: Fixture;
  before(async () => {
    life = await startFixture(dbPath('shared'));
  });
  after(() => life.kill());

  describe('2026-07-28 MRTR: requestState integrity', () => {
    it('a tampered requestState is refused with -32602 and the real one still works afterwards', { timeout: TEST_TIMEOUT_MS }, async () => {
      const client = modernClient(life.url, { elicitation: {} });
      const call = { name: 'ask_form', arguments: { topic: 'fence' } };
      const round1 = (await client.request('tools/call', call)).result;
      assert.equal(round1.resultType, 'input_required', JSON.stringify(round1));
      const state = round1.requestState as string;
      const red = { colour: { action: 'accept', content: { colour: 'red' } } };
      for (const [what, tampered] of [
        ['one character of the signed body changed', tamperBody(state)],
        ['one character of the task id changed', tamperTaskId(state)],
      ] as const) {
        assert.notEqual(tampered, state);
        const refused = await client.request('tools/call', { ...call, inputResponses: red, requestState: tampered });
        assert.equal(refused.error?.code, -32602, `${what}: ${JSON.stringify(refused.error ?? refused.result)}`);
        assert.equal(refused.error!.message, 'Invalid or expired requestState');
      }
      const rebound = await client.request('tools/call', { name: 'ask_form', arguments: { topic: 'gate' }, inputResponses: red, requestState: state });
      assert.equal(rebound.error?.code, -32602, `presented with other arguments: ${JSON.stringify(rebound.error ?? rebound.result)}`);
      assert.equal(rebound.error!.message, 'Invalid or expired requestState');

      // Nothing was spoiled: the refused retries stored no answer ("red"), the real state still works.
      const ok = await client.request('tools/call', {
        ...call,
        inputResponses: { colour: { action: 'accept', content: { colour: 'teal' } } },
        requestState: state,
      });
      assert.ok(!ok.error, JSON.stringify(ok.error));
      assert.equal(ok.result.resultType, 'complete', JSON.stringify(ok.result));
      assert.deepEqual(ok.result.content, [{ type: 'text', text: 'colour: teal' }]);
    });
  });

  describe('a client that cannot answer is never asked', () => {
    it('2025-11-25: no elicitation/create on the GET or tasks/result stream; tasks/get says what client can answer', { timeout: TEST_TIMEOUT_MS }, async () => {
      const client = await legacyClient(life.url, { sampling: {}, roots: {} }); // everything but elicitation
      const get = await openGetStream(life.url, client.sessionId!);
      let resultStream: Awaited<ReturnType<typeof openRequestStream>> | undefined;
      try {
        const { taskId } = (await client.request('tools/call', { name: 'ask_form', arguments: { topic: 'door' }, task: {} })).result.task;
        await untilTask25(client, taskId, (t) => t.status === 'input_required');
        resultStream = await openRequestStream(life.url, client.sessionId!, 'tasks/result', { taskId });
        for (let poll = 0; poll < 10; poll++) {
          const task = (await client.request('tasks/get', { taskId })).result; // each poll would (re)deliver an answerable question
          assert.equal(task.status, 'input_required');
          assert.match(task.statusMessage, /"Which colour for the door\?" needs a client that declares elicitation/);
          await new Promise((resolve) => setTimeout(resolve, 50)); // deliberate: time passes between polls, and no question comes
        }
        // Control: a client that declares elicitation is asked at once, and its answer completes the task.
        const other = await legacyClient(life.url, { elicitation: {} });
        const answered = await other.request('tasks/result', { taskId }, async (request) => {
          assert.equal(request.method, 'elicitation/create');
          return { action: 'accept', content: { colour: 'blue' } };
        });
        assert.deepEqual(answered.result.content, [{ type: 'text', text: 'colour: blue' }]);
        // The first client's streams were live (they carry the task's end) yet never saw the question.
        await until(() => get.messages.some((m) => m.method === 'notifications/tasks/status' && m.params.status === 'completed'), {
          timeoutMs: 5000,
          what: () => `the completed status on the GET stream (seen: ${get.methods()})`,
        });
        const final = await until(() => resultStream!.messages.find((m) => m.id === resultStream!.id), { timeoutMs: 5000, what: 'the tasks/result response' });
        assert.deepEqual(final.result.content, [{ type: 'text', text: 'colour: blue' }]);
        const everything = [...get.messages, ...resultStream.messages];
        assert.deepEqual(
          everything.filter((m) => m.method === 'elicitation/create'),
          [],
          'never sent to a client that did not declare elicitation',
        );
      } finally {
        await resultStream?.close();
        await get.close();
      }
    });

    it('2026-07-28 with only the Tasks extension: tasks/get inputRequests is {} and statusMessage explains', { timeout: TEST_TIMEOUT_MS }, async () => {
      // The task is created by a client that can answer; the same task is then read by one that cannot.
      const able = modernClient(life.url, { tasks: true, elicitation: {} });
      const { taskId } = (await able.request('tools/call', { name: 'ask_form', arguments: { topic: 'window' } })).result;
      const asked = await untilTask26(able, taskId, (t) => t.status === 'input_required');
      assert.deepEqual(Object.keys(asked.inputRequests), ['colour'], 'control: a client that declares elicitation sees the question');
      const unable = modernClient(life.url, { tasks: true });
      const task = (await unable.request('tasks/get', { taskId })).result;
      assert.equal(task.status, 'input_required');
      assert.deepEqual(task.inputRequests, {});
      assert.match(task.statusMessage, /"Which colour for the window\?" needs a client that declares elicitation/);
      // Such a client calling the form tool itself is refused at once (answerModernCall: never a task
      // waiting for an answer this client can never give).
      const direct = await unable.request('tools/call', { name: 'ask_form', arguments: { topic: 'skylight' } });
      assert.equal(direct.error?.code, -32021, JSON.stringify(direct.error ?? direct.result));
      assert.deepEqual((direct.error?.data as any)?.requiredCapabilities, { elicitation: { form: {} } });
      await able.request('tasks/cancel', { taskId });
    });

    it('2026-07-28 without the extension and without elicitation: the form tool answers -32021', { timeout: TEST_TIMEOUT_MS }, async () => {
      const client = modernClient(life.url, {});
      const res = await client.request('tools/call', { name: 'ask_form', arguments: { topic: 'roof' } });
      assert.equal(res.error?.code, -32021, JSON.stringify(res.error ?? res.result));
      assert.deepEqual((res.error?.data as any)?.requiredCapabilities, { elicitation: { form: {} } });
    });
  });

  describe('2026-07-28 tasks/update', () => {
    it('takes the valid answer and ignores junk under keys that are not outstanding', { timeout: TEST_TIMEOUT_MS }, async () => {
      const client = modernClient(life.url, { tasks: true, elicitation: {} });
      const { taskId } = (await client.request('tools/call', { name: 'ask_form', arguments: { topic: 'porch' } })).result;
      await untilTask26(client, taskId, (t) => t.status === 'input_required' && t.inputRequests.colour);
      const ack = await client.request('tasks/update', {
        taskId,
        inputResponses: {
          colour: { action: 'accept', content: { colour: 'teal' } },
          'no-such-question': 'junk',
          'never-asked': { action: 'maybe', content: { colour: 7 } },
        },
      });
      assert.ok(!ack.error, JSON.stringify(ack.error));
      assert.equal(ack.result.resultType, 'complete');
      const done = await untilTask26(client, taskId, (t) => t.status === 'completed');
      assert.deepEqual(done.result.content, [{ type: 'text', text: 'colour: teal' }]);
    });
  });

  describe('progress of a task tool', () => {
    it('2025-11-25 task-augmented call: exactly [0, 50, 100], all before the completed status', { timeout: TEST_TIMEOUT_MS }, async () => {
      const client = await legacyClient(life.url, {});
      const get = await openGetStream(life.url, client.sessionId!);
      try {
        const { taskId } = (await client.request('tools/call', { name: 'progress', arguments: {}, task: {}, _meta: { progressToken: 'tok-25' } })).result.task;
        const completedAt = () => get.messages.findIndex((m) => m.method === 'notifications/tasks/status' && m.params.status === 'completed');
        await until(() => completedAt() >= 0, { timeoutMs: 10_000, what: () => `the completed status on the GET stream (seen: ${get.methods()})` });
        assert.deepEqual((await client.request('tasks/result', { taskId })).result.content, [{ type: 'text', text: 'progressed' }]);
        const progress = get.messages.map((m, index) => ({ m, index })).filter(({ m }) => m.method === 'notifications/progress');
        assert.deepEqual(
          progress.map(({ m }) => m.params.progress),
          [0, 50, 100],
          `progress seen: ${JSON.stringify(progress.map(({ m }) => m.params))}`,
        );
        assert.ok(
          progress.every(({ m }) => m.params.progressToken === 'tok-25'),
          'the token of the creating request',
        );
        assert.ok(
          progress.every(({ index }) => index < completedAt()),
          `none after the completed status: ${get.methods()}`,
        );
      } finally {
        await get.close();
      }
    });

    it('2025-11-25 ordinary call with a progressToken: exactly [0, 50, 100] on its stream before the result', { timeout: TEST_TIMEOUT_MS }, async () => {
      const client = await legacyClient(life.url, {});
      const res = await client.request('tools/call', { name: 'progress', arguments: {}, _meta: { progressToken: 'tok-sync-25' } });
      assert.deepEqual(res.result.content, [{ type: 'text', text: 'progressed' }]);
      const progress = client.notifications.filter((m) => m.method === 'notifications/progress');
      assert.deepEqual(
        progress.map((m) => m.params.progress),
        [0, 50, 100],
        `progress seen: ${JSON.stringify(progress.map((m) => m.params))}`,
      );
      assert.ok(progress.every((m) => m.params.progressToken === 'tok-sync-25'));
    });

    it(
      '2026-07-28 ordinary call (no extension) with a progressToken: exactly [0, 50, 100] on its stream before the result',
      { timeout: TEST_TIMEOUT_MS },
      async () => {
        const client = modernClient(life.url, {});
        client.extraMeta = { progressToken: 'tok-26' };
        const response = await client.send('tools/call', { name: 'progress', arguments: {} });
        const messages = (response.headers.get('content-type') ?? '').includes('application/json')
          ? [(await response.json()) as RpcMessage]
          : await readSse(response, (m) => m.id !== undefined && (m.result !== undefined || m.error !== undefined));
        const last = messages.at(-1)!;
        assert.equal(last.result?.resultType, 'complete', JSON.stringify(last));
        assert.deepEqual(last.result.content, [{ type: 'text', text: 'progressed' }]);
        const progress = messages.filter((m) => m.method === 'notifications/progress');
        assert.deepEqual(
          progress.map((m) => m.params.progress),
          [0, 50, 100],
          `progress seen: ${JSON.stringify(progress.map((m) => m.params))}`,
        );
        assert.ok(progress.every((m) => m.params.progressToken === 'tok-26'));
      },
    );
  });
});

// ---------------------------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------------------------

/** The fixture server as a child process. */
interface Fixture {
  url: string;
  child: ChildProcess;
  /** stdout + stderr so far. */
  log(): string;
  /** SIGKILL (no goodbye, no flush) and wait for the exit; a no-op when already gone. */
  kill(): Promise<void>;
}

const running = new Set<Fixture>();

async function killAll(): Promise<void> {
  for (const fixture of running) await fixture.kill();
}

function dbPath(name: string): string {
  return join(dir, `${name}.db`);
}

/** Starts test/fixtures/input-kinds-server.ts on `db` and resolves once it prints its URL. */
async function startFixture(db: string): Promise<Fixture> {
  const child = spawn(process.execPath, ['--import', 'tsx', 'test/fixtures/input-kinds-server.ts', db], { stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  child.stderr!.on('data', (chunk) => (output += String(chunk)));
  const fixture: Fixture = {
    url: '',
    child,
    log: () => output,
    kill: () =>
      new Promise<void>((resolve) => {
        running.delete(fixture);
        if (child.exitCode !== null || child.signalCode !== null) return resolve();
        child.once('exit', () => resolve());
        child.kill('SIGKILL');
      }),
  };
  running.add(fixture);
  try {
    fixture.url = await new Promise<string>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`fixture did not start in time:\n${output}`)), 30_000);
      createInterface({ input: child.stdout! }).once('line', (line) => {
        clearTimeout(timer);
        resolve(line.trim());
      });
      child.once('exit', (code) => {
        clearTimeout(timer);
        reject(new Error(`fixture exited with ${code}:\n${output}`));
      });
    });
  } catch (error) {
    await fixture.kill();
    throw error;
  }
  return fixture;
}

/** A 2025-11-25 client, initialized with `capabilities`. */
async function legacyClient(url: string, capabilities: Record<string, unknown>): Promise<RawMcpClient> {
  const client = new RawMcpClient(url);
  await client.initialize(capabilities);
  return client;
}

/** A 2026-07-28 client whose per-request `_meta` declares exactly `declared` (plus the Tasks extension when `tasks`) and `extraMeta`. */
class CapabilityClient extends ModernRawClient {
  extraMeta: Record<string, unknown> = {};
  constructor(
    url: string,
    readonly declared: Record<string, unknown>,
  ) {
    super(url, false);
  }
  override envelope(): Record<string, unknown> {
    return { ...super.envelope(), 'io.modelcontextprotocol/clientCapabilities': this.declared, ...this.extraMeta };
  }
}

function modernClient(url: string, options: { tasks?: boolean } & Record<string, unknown>): CapabilityClient {
  const { tasks, ...capabilities } = options;
  return new CapabilityClient(url, { ...capabilities, ...(tasks && { extensions: { [TASKS_EXT]: {} } }) });
}

/** Polls 2025-11-25 `tasks/get` until `ok(task)`; resolves with the task. */
async function untilTask25(client: RawMcpClient, taskId: string, ok: (task: any) => boolean): Promise<any> {
  let last: any;
  return until(
    async () => {
      last = (await client.request('tasks/get', { taskId })).result;
      return last && ok(last) && last;
    },
    { timeoutMs: 10_000, what: () => `task ${taskId} (last seen: ${JSON.stringify(last)})` },
  );
}

/** Polls 2026-07-28 `tasks/get` until `ok(task)`; resolves with the task. */
async function untilTask26(client: ModernRawClient, taskId: string, ok: (task: any) => boolean): Promise<any> {
  let last: any;
  return until(
    async () => {
      const res = await client.request('tasks/get', { taskId });
      if (res.error) throw new Error(`tasks/get failed: ${JSON.stringify(res.error)}`);
      last = res.result;
      return last && ok(last) && last;
    },
    { timeoutMs: 10_000, what: () => `task ${taskId} (last seen: ${JSON.stringify(last)})` },
  );
}

/**
 * Opens `tasks/result` for `taskId`, waits for the question on that stream, leaves it unanswered
 * and SIGKILLs the server. Resolves with the question.
 */
async function askedThenKilled(client: RawMcpClient, taskId: string, life: Fixture): Promise<RpcMessage> {
  let seen!: (request: RpcMessage) => void;
  let abandon!: (error: Error) => void;
  const question = new Promise<RpcMessage>((resolve) => (seen = resolve));
  const pending = client
    .request('tasks/result', { taskId }, (request) => {
      seen(request);
      return new Promise((_, reject) => (abandon = reject)); // never answered: the server dies first
    })
    .then(
      (response) => assert.fail(`tasks/result answered before the crash: ${JSON.stringify(response)}`),
      () => undefined,
    );
  let timer: NodeJS.Timeout | undefined;
  const asked = await Promise.race([
    question,
    new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Error(`no question on the tasks/result stream:\n${life.log()}`)), 10_000))),
  ]).finally(() => clearTimeout(timer));
  await life.kill();
  abandon(new Error('the server was killed'));
  await pending;
  return asked;
}

/**
 * URL mode: waits until the accepted task waits (`working`, statusMessage naming the site), then
 * reports the out-of-band step complete with the `complete_url` tool. Resolves with that call's response.
 */
async function completeWhenWaiting(client: RawMcpClient, taskId: string, elicitationId: string): Promise<RpcMessage> {
  await untilTask25(client, taskId, (t) => t.status === 'working' && /bank\.example/.test(t.statusMessage ?? ''));
  return client.request('tools/call', { name: 'complete_url', arguments: { taskId, elicitationId } });
}

/** A 2025-11-25 standalone GET stream, its messages collected as they arrive. */
async function openGetStream(url: string, sessionId: string) {
  const controller = new AbortController();
  const response = await fetch(url, {
    headers: { accept: 'text/event-stream', 'mcp-session-id': sessionId, 'mcp-protocol-version': '2025-11-25' },
    signal: controller.signal,
  });
  assert.equal(response.status, 200, 'GET stream');
  return collect(response, controller);
}

/** POSTs one 2025-11-25 request and collects its (SSE) stream in the background; `id` is the request's id. */
async function openRequestStream(url: string, sessionId: string, method: string, params: Record<string, unknown>) {
  const controller = new AbortController();
  const id = `stream-${method}`;
  const response = await postInSession(url, sessionId, { jsonrpc: '2.0', id, method, params }, { signal: controller.signal });
  assert.equal(response.status, 200, method);
  return { id, ...collect(response, controller) };
}

function collect(response: Response, controller: AbortController) {
  const messages: RpcMessage[] = [];
  const done = (async () => {
    try {
      for await (const message of sseMessages<RpcMessage>(response)) messages.push(message);
    } catch {
      /* aborted, or the server went away */
    }
  })();
  return {
    messages,
    methods: () => JSON.stringify(messages.map((m) => m.method ?? `response ${m.id}`)),
    close: async () => {
      controller.abort();
      await done;
    },
  };
}

/** Request params without `_meta`. */
function withoutMeta(params: Record<string, unknown>): Record<string, unknown> {
  const { _meta: _ignored, ...rest } = params;
  return rest;
}

/** The flow id in a fixture URL (`https://bank.example/approve?flow=<id>`). */
function flowOf(url: unknown): string {
  const flow = typeof url === 'string' ? new URL(url).searchParams.get('flow') : null;
  assert.ok(flow, `a flow id in ${String(url)}`);
  return flow;
}

/** `<taskId>.<codec value>` with one character in the middle of the codec's signed body replaced. */
function tamperBody(state: string): string {
  const [taskId, body] = state.split('.') as [string, string];
  const at = taskId.length + 1 + Math.floor(body.length / 2);
  return replaceAt(state, at);
}

/** The same state naming another task id (one character changed). */
function tamperTaskId(state: string): string {
  return replaceAt(state, 0);
}

function replaceAt(value: string, at: number): string {
  const next = value[at] === 'a' ? 'b' : 'a';
  return value.slice(0, at) + next + value.slice(at + 1);
}
