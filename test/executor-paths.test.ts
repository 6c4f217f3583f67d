/**
 * Every path an answer or a cancel can take reaches the executor — embedded (SQLite), DBOS
 * (PostgreSQL), Restate (restate-server, SQLite store) — exactly once, against a real
 * `createTaskServer(...).listen()` with the console and the fallback tools on.
 *
 * Answer paths (one task each): 2025-11-25 `tasks/result` (the `elicitation/create` on its stream),
 * 2026-07-28 `tasks/update` `inputResponses`, 2026-07-28 MRTR (a `tools/call` retried with
 * `inputResponses` + `requestState`), the fallback tool `answer_task_input`, the operator console's
 * answer form. Each task completes with that answer, its `after` step ran once, the executor was
 * told once (`TaskExecutor.answered`), and answers sent afterwards through every other path change
 * nothing.
 *
 * Cancel paths (one task each, cancelled while it waits for its answer): 2025-11-25 `tasks/cancel`,
 * 2026-07-28 `tasks/cancel`, the fallback tool `cancel_task`, the console's cancel form. Each task
 * is `cancelled`, the executor was told once (`TaskExecutor.cancelled`), its run ends
 * (`isRunning` false), no `after` step runs, and a later answer is refused.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { setTimeout as delay } from 'node:timers/promises';
import * as z from 'zod';
import { ENGINE_ACCESS } from '../src/core/access.js';
import { silentLogger } from '../src/core/log.js';
import type { TaskRecord } from '../src/core/task.js';
import { createDbosExecutor } from '../src/executors/dbos/index.js';
import { createRestateExecutor } from '../src/executors/restate/index.js';
import { EmbeddedExecutor } from '../src/runtime/embedded-executor.js';
import type { TaskExecutor } from '../src/runtime/executor.js';
import { createTaskServer, type TaskServer } from '../src/server/task-server.js';
import { ConsoleHttp } from './helpers/console-http.js';
import { ModernRawClient } from './helpers/modern-client.js';
import { RawMcpClient, type RpcMessage } from './helpers/raw-client.js';
import { freePort, startRestateServer } from './helpers/restate-server.js';
import { dropSchemas, PG_URL, withParam } from './helpers/services.js';
import { until } from './helpers/until.js';

const TOOL = 'approve';
const KEY = 'approve';
const QUESTION = 'Approve the change?';
const SCHEMA = { type: 'object', properties: { ok: { type: 'boolean' } }, required: ['ok'] };
const YES = { action: 'accept', content: { ok: true } };
const NO = { action: 'accept', content: { ok: false } };
const RESULT_YES = 'accept ok=true';

/** Attempts of each step of each task (`<taskId>` → step → count), across every executor. */
const attempts = new Map<string, { before: number; after: number }>();
const attemptsOf = (taskId: string) => attempts.get(taskId) ?? { before: 0, after: 0 };

/** What the executor was told, per task: `answered` keys (one entry per call) and `cancelled` calls. */
interface Told {
  answered: string[][];
  cancelled: number;
}

/** What a suite needs from an executor's set-up. */
interface PathsSetup {
  storeUrl: string;
  executor(): TaskExecutor;
  teardown(): Promise<void>;
}

/** `executor` with its `answered` and `cancelled` notifications counted into `told` (then passed on). */
function counted(executor: TaskExecutor, told: Map<string, Told>): TaskExecutor {
  const of = (taskId: string) => told.get(taskId) ?? (told.set(taskId, { answered: [], cancelled: 0 }), told.get(taskId)!);
  const answered = executor.answered.bind(executor);
  const cancelled = executor.cancelled.bind(executor);
  executor.answered = (taskId, keys) => {
    of(taskId).answered.push([...keys]);
    return answered(taskId, keys);
  };
  executor.cancelled = (task, revoked) => {
    of(task.taskId).cancelled++;
    return cancelled(task, revoked);
  };
  return executor;
}

function pathsSuite(name: string, setup: () => Promise<PathsSetup>): void {
  describe(`answer and cancel paths reach the executor once: ${name}`, { timeout: 120_000 }, () => {
    let env: PathsSetup | undefined;
    let server: TaskServer;
    let url: string;
    let console_: ConsoleHttp;
    const told = new Map<string, Told>();
    const toldOf = (taskId: string): Told => told.get(taskId) ?? { answered: [], cancelled: 0 };

    before(async () => {
      env = await setup();
      server = createTaskServer({
        store: env.storeUrl,
        storeOptions: { policy: { pollIntervalMs: 50 } },
        executor: counted(env.executor(), told),
        runtime: { onError: () => undefined },
        console: true,
        tasks: { fallbackTools: true },
        logger: silentLogger,
      });
      server.registerTool(
        TOOL,
        { description: 'Asks for an approval between two steps', inputSchema: z.object({}), taskSupport: 'optional' },
        async (_args, ctx) => {
          const count = () => attempts.get(ctx.taskId) ?? (attempts.set(ctx.taskId, { before: 0, after: 0 }), attempts.get(ctx.taskId)!);
          await ctx.step('before', () => void count().before++);
          const answer = await ctx.elicit(QUESTION, SCHEMA, { key: KEY });
          await ctx.step('after', () => void count().after++);
          return { content: [{ type: 'text', text: `${answer.action} ok=${String(answer.content?.ok)}` }] };
        },
      );
      const http = await server.listen({ port: 0 });
      url = http.url;
      console_ = new ConsoleHttp(new URL(url).origin);
    });
    after(async () => {
      await server?.close();
      await env?.teardown();
    });

    // --- clients --------------------------------------------------------------------------------

    /** A 2025-11-25 session that can answer form elicitations. */
    const legacy = async () => {
      const client = new RawMcpClient(url);
      await client.initialize({ elicitation: { form: {} } });
      return client;
    };
    /** A 2025-11-25 session of a host that speaks neither Tasks nor elicitation: it uses the fallback tools. */
    const plainHost = async () => {
      const client = new RawMcpClient(url);
      await client.initialize({});
      return client;
    };
    /** A 2026-07-28 client declaring the Tasks extension. */
    const modern = () => new ModernRawClient(url);

    const taskOf = (taskId: string) => server.runtime.get(taskId, ENGINE_ACCESS);
    const untilTask = (taskId: string, ok: (task: TaskRecord) => boolean, what: string) => {
      let last: TaskRecord | undefined;
      return until(
        async () => {
          last = await taskOf(taskId);
          return ok(last) && last;
        },
        { timeoutMs: 20_000, what: () => `task ${taskId} ${what} (last seen: ${JSON.stringify(last)})` },
      );
    };
    const asking = (taskId: string) => untilTask(taskId, (t) => t.status === 'input_required' && Object.hasOwn(t.inputRequests, KEY), 'to ask');
    const resultText = (task: TaskRecord) =>
      task.outcome?.type === 'result' ? ((task.outcome.result.content as Array<{ text?: string }>)[0]?.text ?? '') : JSON.stringify(task.outcome);

    /** A task created over 2025-11-25 with `params.task`, once it asks. */
    const create2025 = async (client?: RawMcpClient) => {
      const res = await (client ?? (await legacy())).request('tools/call', { name: TOOL, arguments: {}, task: {} });
      const taskId = res.result?.task?.taskId as string;
      assert.ok(taskId, `a CreateTaskResult: ${JSON.stringify(res)}`);
      await asking(taskId);
      return taskId;
    };
    /** A task created over 2026-07-28 with the extension, once it asks. */
    const create2026 = async () => {
      const res = await modern().request('tools/call', { name: TOOL, arguments: {} });
      assert.equal(res.result?.resultType, 'task', JSON.stringify(res));
      await asking(res.result.taskId as string);
      return res.result.taskId as string;
    };
    /** A task started by an ordinary call of a host that cannot answer: the call hands it off at once. */
    const createHandedOff = async (host: RawMcpClient) => {
      const res = await host.request('tools/call', { name: TOOL, arguments: {} });
      assert.ok(!res.error && !res.result.isError, JSON.stringify(res));
      const taskId = res.result.structuredContent?.taskId as string;
      assert.ok(taskId, `a hand-off naming the task: ${JSON.stringify(res.result)}`);
      assert.match(res.result.content[0].text, /answer_task_input/);
      await asking(taskId);
      return taskId;
    };
    const callTool = async (client: RawMcpClient, tool: string, args: Record<string, unknown>) => {
      const res = await client.request('tools/call', { name: tool, arguments: args });
      assert.ok(!res.error, JSON.stringify(res.error));
      return res.result as { isError?: boolean; content: Array<{ text: string }>; structuredContent?: Record<string, unknown> };
    };

    // --- answer paths ---------------------------------------------------------------------------

    type AnswerPath = '2025 tasks/result' | '2026 tasks/update' | '2026 MRTR' | 'fallback answer_task_input' | 'console';

    /**
     * Answers `taskId` (completed, first answered through `first`) again with `NO` through every
     * other path that can carry an answer for it; each must be refused or ignored.
     */
    const answerAgainEverywhere = async (taskId: string, first: AnswerPath, mrtr?: { requestState: string }) => {
      if (first !== '2025 tasks/result') {
        const asked: RpcMessage[] = [];
        const res = await (await legacy()).request('tasks/result', { taskId }, async (req) => (asked.push(req), NO));
        assert.deepEqual(asked, [], '2025 tasks/result of an answered task asks nothing');
        assert.deepEqual(res.result?.content, [{ type: 'text', text: RESULT_YES }], `2025 tasks/result: ${JSON.stringify(res)}`);
      }
      if (first !== '2026 tasks/update') {
        const res = await modern().request('tasks/update', { taskId, inputResponses: { [KEY]: NO } });
        assert.equal(res.result?.resultType, 'complete', `2026 tasks/update acknowledges (a key not outstanding is ignored): ${JSON.stringify(res)}`);
      }
      if (first === '2026 MRTR' && mrtr) {
        // The MRTR path itself, retried with another answer: the ended call's result, unchanged.
        const res = await new ModernRawClient(url, false).request('tools/call', {
          name: TOOL,
          arguments: {},
          inputResponses: { [KEY]: NO },
          requestState: mrtr.requestState,
        });
        assert.deepEqual(res.result?.content, [{ type: 'text', text: RESULT_YES }], `MRTR retry: ${JSON.stringify(res)}`);
      }
      if (first !== 'fallback answer_task_input') {
        const res = await callTool(await plainHost(), 'answer_task_input', { taskId, answers: { ok: false } });
        assert.equal(res.isError, true, `answer_task_input: ${JSON.stringify(res)}`);
        assert.match(res.content[0]!.text, /not waiting for input/);
      }
      if (first !== 'console') {
        const page = await console_.post(`/console/tasks/${taskId}/answer`, { key: KEY, action: 'accept', confirm: 'yes' });
        assert.equal(page.status, 409, `console answer: ${page.status}`);
      }
    };

    /** The task ended with `YES`, `after` ran once, the executor was told once; nothing changes afterwards. */
    const assertAnsweredOnce = async (taskId: string, first: AnswerPath, mrtr?: { requestState: string }) => {
      const done = await untilTask(taskId, (t) => t.status === 'completed', 'to complete');
      assert.equal(resultText(done), RESULT_YES);
      assert.deepEqual(await server.store.inputAnswer(taskId, KEY), YES);
      await answerAgainEverywhere(taskId, first, mrtr);
      await until(() => !server.runtime.isRunning(taskId), { timeoutMs: 10_000, what: `the run of ${taskId} to end` });
      await delay(200); // room for anything a stray second answer would have caused
      const now = await taskOf(taskId);
      assert.equal(now.status, 'completed');
      assert.equal(resultText(now), RESULT_YES, 'the first answer stands');
      assert.equal(now.lastUpdatedAt, done.lastUpdatedAt, 'the task was not touched by the later answers');
      assert.deepEqual(await server.store.inputAnswer(taskId, KEY), YES, 'the stored answer is the first one');
      assert.deepEqual(attemptsOf(taskId), { before: 1, after: 1 }, 'each step ran once');
      assert.deepEqual(toldOf(taskId), { answered: [[KEY]], cancelled: 0 }, 'the executor was told of the answer once');
    };

    it('2025-11-25: the answer to the elicitation/create on the tasks/result stream', async () => {
      const client = await legacy();
      const taskId = await create2025(client);
      const asked: RpcMessage[] = [];
      const res = await client.request('tasks/result', { taskId }, async (req) => (asked.push(req), YES));
      assert.equal(asked.length, 1, 'asked once');
      assert.equal(asked[0]!.method, 'elicitation/create');
      assert.equal(asked[0]!.params.message, QUESTION);
      assert.deepEqual(asked[0]!.params.requestedSchema, SCHEMA);
      assert.deepEqual(res.result?.content, [{ type: 'text', text: RESULT_YES }], JSON.stringify(res));
      await assertAnsweredOnce(taskId, '2025 tasks/result');
    });

    it('2026-07-28: tasks/update with inputResponses', async () => {
      const taskId = await create2026();
      const client = modern();
      const seen = (await client.request('tasks/get', { taskId })).result;
      assert.deepEqual(seen.inputRequests[KEY], { method: 'elicitation/create', params: { mode: 'form', message: QUESTION, requestedSchema: SCHEMA } });
      const ack = await client.request('tasks/update', { taskId, inputResponses: { [KEY]: YES } });
      assert.equal(ack.result?.resultType, 'complete', JSON.stringify(ack));
      await assertAnsweredOnce(taskId, '2026 tasks/update');
    });

    it('2026-07-28 MRTR: the tools/call retried with inputResponses and requestState', async () => {
      const client = new ModernRawClient(url, false); // no Tasks extension: multi round-trip requests
      const round1 = (await client.request('tools/call', { name: TOOL, arguments: {} })).result;
      assert.equal(round1?.resultType, 'input_required', JSON.stringify(round1));
      assert.deepEqual(Object.keys(round1.inputRequests), [KEY]);
      const requestState = round1.requestState as string;
      const taskId = requestState.slice(0, requestState.indexOf('.')); // the state names its task
      assert.equal((await taskOf(taskId)).status, 'input_required');
      const retry = await client.request('tools/call', { name: TOOL, arguments: {}, inputResponses: { [KEY]: YES }, requestState });
      assert.equal(retry.result?.resultType, 'complete', JSON.stringify(retry));
      assert.deepEqual(retry.result.content, [{ type: 'text', text: RESULT_YES }]);
      await assertAnsweredOnce(taskId, '2026 MRTR', { requestState });
    });

    it('the fallback tool answer_task_input', async () => {
      const host = await plainHost();
      const taskId = await createHandedOff(host);
      const status = await callTool(host, 'get_task_status', { taskId });
      assert.deepEqual((status.structuredContent?.pendingInput as unknown[])[0], {
        questionKey: KEY,
        kind: 'form',
        message: QUESTION,
        requestedSchema: SCHEMA,
      });
      const answered = await callTool(host, 'answer_task_input', { taskId, answers: { ok: true } });
      assert.ok(!answered.isError, JSON.stringify(answered));
      const result = await callTool(host, 'get_task_result', { taskId, waitSeconds: 20 });
      assert.deepEqual(result.content, [{ type: 'text', text: RESULT_YES }], JSON.stringify(result));
      await assertAnsweredOnce(taskId, 'fallback answer_task_input');
    });

    it("the operator console's answer form", async () => {
      const taskId = await create2026();
      const page = await console_.post(`/console/tasks/${taskId}/answer`, { key: KEY, action: 'accept', 'field.ok': 'true', confirm: 'yes' });
      assert.equal(page.status, 303, page.text);
      await assertAnsweredOnce(taskId, 'console');
    });

    it('five answers racing through every path at once: exactly one is taken, the executor is told once', async (t) => {
      const mrtr = new ModernRawClient(url, false);
      const round1 = (await mrtr.request('tools/call', { name: TOOL, arguments: {} })).result;
      assert.equal(round1?.resultType, 'input_required', JSON.stringify(round1));
      const requestState = round1.requestState as string;
      const taskId = requestState.slice(0, requestState.indexOf('.'));
      const [stream, host] = await Promise.all([legacy(), plainHost()]);
      // Each path its own answer where it can (accept/true, accept/false, decline, cancel), to tell the taker.
      const [viaStream, viaMrtr, viaUpdate, viaFallback, viaConsole] = await Promise.all([
        stream.request('tasks/result', { taskId }, async () => YES),
        mrtr.request('tools/call', { name: TOOL, arguments: {}, inputResponses: { [KEY]: YES }, requestState }),
        modern().request('tasks/update', { taskId, inputResponses: { [KEY]: NO } }),
        callTool(host, 'answer_task_input', { taskId, action: 'decline' }),
        console_.post(`/console/tasks/${taskId}/answer`, { key: KEY, action: 'cancel', confirm: 'yes' }),
      ]);
      const done = await untilTask(taskId, (t) => t.status === 'completed', 'to complete');
      const taken = (await server.store.inputAnswer(taskId, KEY)) as { action: string; content?: { ok?: boolean } };
      const expected = `${taken.action} ok=${String(taken.content?.ok)}`;
      t.diagnostic(`taken: ${expected}`);
      assert.equal(resultText(done), expected, 'the result used the answer stored');
      assert.deepEqual(viaStream.result?.content, [{ type: 'text', text: expected }], `2025 tasks/result: ${JSON.stringify(viaStream)}`);
      assert.deepEqual(viaMrtr.result?.content, [{ type: 'text', text: expected }], `MRTR retry: ${JSON.stringify(viaMrtr)}`);
      assert.equal(viaUpdate.result?.resultType, 'complete', `tasks/update: ${JSON.stringify(viaUpdate)}`);
      assert.equal(!viaFallback.isError, taken.action === 'decline', `answer_task_input took it iff its decline is stored: ${JSON.stringify(viaFallback)}`);
      assert.equal(viaConsole.status === 303, taken.action === 'cancel', `the console took it iff its cancel is stored: ${viaConsole.status}`);
      await until(() => !server.runtime.isRunning(taskId), { timeoutMs: 10_000, what: `the run of ${taskId} to end` });
      await delay(200);
      assert.equal(resultText(await taskOf(taskId)), expected);
      assert.deepEqual(attemptsOf(taskId), { before: 1, after: 1 }, 'each step ran once');
      assert.deepEqual(toldOf(taskId), { answered: [[KEY]], cancelled: 0 }, 'the executor was told of one answer, once');
    });

    // --- cancel paths ---------------------------------------------------------------------------

    /** The task is cancelled, its run ended, no `after` ran, the executor was told once; a later answer changes nothing. */
    const assertCancelledOnce = async (taskId: string) => {
      assert.equal((await taskOf(taskId)).status, 'cancelled', 'cancelled at the acknowledgement');
      await until(() => !server.runtime.isRunning(taskId), { timeoutMs: 5_000, what: `the run of ${taskId} to end` });
      const late = await modern().request('tasks/update', { taskId, inputResponses: { [KEY]: YES } });
      assert.equal(late.result?.resultType, 'complete', `acknowledged, the key no longer outstanding: ${JSON.stringify(late)}`);
      const refused = await callTool(await plainHost(), 'answer_task_input', { taskId, answers: { ok: true } });
      assert.equal(refused.isError, true, JSON.stringify(refused));
      await delay(300); // room for a step that should not run
      const now = await taskOf(taskId);
      assert.equal(now.status, 'cancelled');
      assert.equal(await server.store.inputAnswer(taskId, KEY), undefined, 'no answer was taken after the cancel');
      assert.deepEqual(attemptsOf(taskId), { before: 1, after: 0 }, 'no after step');
      assert.equal(server.runtime.isRunning(taskId), false, 'the executor no longer runs it');
      assert.deepEqual(toldOf(taskId), { answered: [], cancelled: 1 }, 'the executor was told of the cancel once');
    };

    it('2025-11-25 tasks/cancel', async () => {
      const client = await legacy();
      const taskId = await create2025(client);
      const res = await client.request('tasks/cancel', { taskId });
      assert.equal(res.result?.status, 'cancelled', JSON.stringify(res));
      await assertCancelledOnce(taskId);
    });

    it('2026-07-28 tasks/cancel', async () => {
      const taskId = await create2026();
      const res = await modern().request('tasks/cancel', { taskId });
      assert.equal(res.result?.resultType, 'complete', JSON.stringify(res));
      await assertCancelledOnce(taskId);
    });

    it('the fallback tool cancel_task', async () => {
      const host = await plainHost();
      const taskId = await createHandedOff(host);
      const res = await callTool(host, 'cancel_task', { taskId });
      assert.ok(!res.isError, JSON.stringify(res));
      assert.equal(res.structuredContent?.status, 'cancelled');
      await assertCancelledOnce(taskId);
    });

    it("the operator console's cancel form", async () => {
      const taskId = await create2025();
      const page = await console_.post(`/console/tasks/${taskId}/cancel`, { confirm: 'yes' });
      assert.equal(page.status, 303, page.text);
      await assertCancelledOnce(taskId);
    });
  });
}

pathsSuite('embedded (SQLite)', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'mcp-tasks-paths-'));
  return {
    storeUrl: `sqlite:${join(dir, 'tasks.db')}`,
    executor: () => new EmbeddedExecutor({ instanceId: 'paths' }),
    teardown: async () => rmSync(dir, { recursive: true, force: true }),
  };
});

pathsSuite('DBOS (PostgreSQL)', async () => {
  const suffix = randomBytes(4).toString('hex');
  const storeSchema = `paths_tasks_${suffix}`;
  const dbosSchema = `paths_dbos_${suffix}`;
  return {
    storeUrl: withParam(PG_URL, 'schema', storeSchema),
    executor: () => createDbosExecutor({ systemDatabaseUrl: PG_URL, systemDatabaseSchemaName: dbosSchema, executorId: `paths-${suffix}`, leaseMs: 3000 }),
    teardown: () => dropSchemas(storeSchema, dbosSchema),
  };
});

pathsSuite('Restate (restate-server, SQLite store)', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'mcp-tasks-paths-'));
  const restate = await startRestateServer();
  const port = await freePort();
  return {
    storeUrl: `sqlite:${join(dir, 'tasks.db')}`,
    executor: () => createRestateExecutor({ ingressUrl: restate.ingressUrl, adminUrl: restate.adminUrl, endpoint: { port } }),
    teardown: async () => {
      await restate.stop();
      rmSync(dir, { recursive: true, force: true });
    },
  };
});
