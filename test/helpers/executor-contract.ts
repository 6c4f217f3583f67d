/**
 * The executor contract: what every `TaskExecutor` (embedded, DBOS, Restate) must do, asserted
 * through the real `TaskRuntime` over a real store. `executorContract(name, setup)` registers one
 * `describe` block; `setup` gives a store URL and a factory for a fresh executor (a "restart" closes
 * the runtime, its executor and its store, and opens new ones on the same store and engine).
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { setTimeout as delay } from 'node:timers/promises';
import { ENGINE_ACCESS } from '../../src/core/access.js';
import { TaskRpcError } from '../../src/core/errors.js';
import type { JsonObject } from '../../src/core/json.js';
import type { TaskRecord } from '../../src/core/task.js';
import type { AnsweredEntry, CancelledEntry } from '../../src/core/journal-keys.js';
import type { TaskContext } from '../../src/runtime/context.js';
import type { TaskExecutor } from '../../src/runtime/executor.js';
import { TaskRuntime, type TaskToolResult } from '../../src/runtime/runtime.js';
import { openStore } from '../../src/store/open-store.js';
import type { TaskStore } from '../../src/store/task-store.js';
import { silentLogger } from '../../src/core/log.js';

/** What a contract run needs from an executor's test set-up. */
export interface ContractSetup {
  /** The task store every runtime of the run opens (the same data across restarts). */
  storeUrl: string;
  /** A new executor (after a restart, the same engine and identity). */
  executor(): TaskExecutor;
  /** Stops what `setup` started (engine servers, schemas). */
  teardown(): Promise<void>;
}

const text = (t: string): TaskToolResult => ({ content: [{ type: 'text', text: t }] });

/** Side effects seen by the handlers, per test: attempts of each step, answers used, wake times. */
class Effects {
  readonly attempts = new Map<string, number>();
  readonly events: string[] = [];
  attempt(name: string): void {
    this.attempts.set(name, (this.attempts.get(name) ?? 0) + 1);
    this.events.push(name);
  }
  count(name: string): number {
    return this.attempts.get(name) ?? 0;
  }
}

export function executorContract(name: string, setup: () => Promise<ContractSetup>): void {
  describe(`executor contract: ${name}`, { timeout: 180_000 }, () => {
    let env: ContractSetup;
    let store: TaskStore;
    let runtime: TaskRuntime;
    const effects = new Effects();

    /** The tools every test uses, registered on every runtime (before `recover`, as servers do). */
    const register = (target: TaskRuntime) => {
      const tool = (tool: string, handler: (args: JsonObject, ctx: TaskContext) => Promise<TaskToolResult>) =>
        target.register(tool, { parse: (args) => args, handler });
      tool('flow', async (args, ctx) => {
        const id = String(args.id);
        const a = await ctx.step('a', () => {
          effects.attempt(`${id}:a`);
          return 41;
        });
        await ctx.progress(1, 2, 'step a done');
        const answer = await ctx.elicit('Go on?', { type: 'object', properties: { ok: { type: 'boolean' } }, required: ['ok'] }, { key: 'go' });
        await ctx.step('b', () => effects.attempt(`${id}:b:${answer.action}`));
        return text(`a=${a} ${answer.action} ok=${String(answer.content?.ok)}`);
      });
      tool('timer', async (args, ctx) => {
        const id = String(args.id);
        await ctx.step('before', () => effects.attempt(`${id}:before`));
        await ctx.sleep(Number(args.ms));
        const woke = await ctx.step('after', () => {
          effects.attempt(`${id}:after`);
          return Date.now();
        });
        return text(String(woke));
      });
      tool('loop', async (args, ctx) => {
        const id = String(args.id);
        for (let i = 0; i < 100; i++) {
          await ctx.step(`s${i}`, async (signal) => {
            effects.attempt(`${id}:s`);
            await delay(100, undefined, { signal });
          });
        }
        return text('never cancelled');
      });
      tool('together', async (_args, ctx) => {
        const ask = (key: string) => ctx.elicit(`${key}?`, { type: 'object', properties: { [key]: { type: 'string' } }, required: [key] }, { key });
        const [a, b, c] = await Promise.all([ask('qa'), ask('qb'), ask('qc')]);
        return text(`qa=${String(a.content?.qa)} qb=${String(b.content?.qb)} qc=${String(c.content?.qc)}`);
      });
      tool('deadline', async (args, ctx) => {
        const options = args.options as JsonObject;
        const answer = await ctx.elicit(
          'Approve?',
          { type: 'object', properties: { ok: { type: 'boolean' } }, required: ['ok'] },
          { key: 'approval', ...options },
        );
        await ctx.step('after', () => effects.attempt(`${String(args.id)}:after:${answer.action}`));
        return text(`${answer.action} ok=${String(answer.content?.ok)}`);
      });
      tool('throws', async () => {
        throw new Error('boom');
      });
      tool('rpc-error', async () => {
        throw new TaskRpcError(-32042, 'refused by the tool', { why: 'test' });
      });
      tool('is-error', async () => ({ ...text('bad input'), isError: true }));
      tool('step-fails', async (args, ctx) => {
        const id = String(args.id);
        try {
          await ctx.step('flaky', () => {
            effects.attempt(`${id}:flaky`);
            throw new Error('always fails');
          });
        } catch (error) {
          return text(`caught ${(error as Error).message}`);
        }
        return text('no error');
      });
    };

    const open = async () => {
      store = openStore(env.storeUrl, { logger: silentLogger });
      runtime = new TaskRuntime(store, { executor: env.executor(), logger: silentLogger, purgeIntervalMs: 0 });
      register(runtime);
      await runtime.recover();
    };
    const restart = async () => {
      await runtime.close();
      await store.close();
      await open();
    };
    const submit = (tool: string, args: JsonObject) => runtime.submit({ owner: 'contract', tool, arguments: args, errorResultStatus: 'failed' });
    const until = async (taskId: string, done: (task: TaskRecord) => boolean, what: string, timeoutMs = 30_000): Promise<TaskRecord> => {
      const deadline = Date.now() + timeoutMs;
      let task = await store.get(taskId, ENGINE_ACCESS);
      while (!done(task)) {
        if (Date.now() > deadline) throw new Error(`task ${taskId} not ${what} within ${timeoutMs} ms: ${JSON.stringify(task)}`);
        await delay(25);
        task = await store.get(taskId, ENGINE_ACCESS);
      }
      return task;
    };
    const ended = (taskId: string, timeoutMs?: number) =>
      until(taskId, (task) => ['completed', 'failed', 'cancelled'].includes(task.status), 'ended', timeoutMs);
    const resultText = (task: TaskRecord) =>
      task.outcome?.type === 'result' ? ((task.outcome.result.content as Array<{ text?: string }>)[0]?.text ?? '') : JSON.stringify(task.outcome);

    before(async () => {
      env = await setup();
      await open();
    });
    after(async () => {
      await runtime?.close();
      await store?.close();
      await env?.teardown();
    });

    it('runs a task to its result; progress shows while it works; a recorded step is not re-run after a restart; an answer given twice arrives once', async () => {
      const task = await submit('flow', { id: 'f1' });
      const asking = await until(task.taskId, (t) => t.status === 'input_required', 'input_required');
      assert.deepEqual(asking.progress, { progress: 1, total: 2 });
      assert.ok(asking.inputRequests.go, 'the question is in inputRequests');
      await restart();
      assert.equal((await store.get(task.taskId, ENGINE_ACCESS)).status, 'input_required', 'the question still waits after the restart');
      const answer = { action: 'accept', content: { ok: true } };
      // Two paths answer at once; the executor is told once more by hand (a re-delivery).
      const taken = await Promise.all([
        runtime.provideInputs(task.taskId, { go: answer }, 'contract'),
        runtime.provideInputs(task.taskId, { go: answer }, 'contract'),
      ]);
      assert.equal(taken.flat().length, 1, 'the store takes the answer once');
      await runtime.executor.answered(task.taskId, ['go']);
      const done = await ended(task.taskId);
      assert.equal(done.status, 'completed');
      assert.equal(resultText(done), 'a=41 accept ok=true');
      assert.equal(effects.count('f1:a'), 1, 'step a ran once, across the restart');
      assert.equal(effects.count('f1:b:accept'), 1, 'the answer was used once');
      assert.deepEqual(done.inputRequests, {});
    });

    it('questions asked together are each answered by their own answer, across replays and a restart, answered out of order', async () => {
      for (let round = 0; round < 3; round++) {
        const task = await submit('together', {});
        await until(task.taskId, (t) => Object.keys(t.inputRequests).length === 3, 'asking three questions');
        const answer = (key: string) => runtime.provideInputs(task.taskId, { [key]: { action: 'accept', content: { [key]: `${key}-${round}` } } }, 'contract');
        await answer('qc');
        await until(task.taskId, (t) => !('qc' in t.inputRequests), 'qc settled');
        if (round === 1) await restart();
        await answer('qa');
        await until(task.taskId, (t) => !('qa' in t.inputRequests), 'qa settled');
        await answer('qb');
        const done = await ended(task.taskId);
        assert.equal(done.status, 'completed', JSON.stringify(done));
        assert.equal(resultText(done), `qa=qa-${round} qb=qb-${round} qc=qc-${round}`);
      }
    });

    it('a timer fires after a restart, and not before its time', async () => {
      const ms = 2_000;
      const started = Date.now();
      const task = await submit('timer', { id: 't1', ms });
      // Restarted while its timer waits: the first step done and recorded (an engine records a step
      // after its function returned; a restart between the two runs it again, at least once by design).
      await until(task.taskId, (t) => effects.count('t1:before') === 1 && (t.statusMessage ?? '').startsWith('Waiting until'), 'waiting for its timer');
      await restart();
      const done = await ended(task.taskId, 60_000);
      assert.equal(done.status, 'completed', resultText(done));
      const woke = Number(resultText(done));
      assert.ok(woke >= started + ms, `woke ${woke - started} ms after the submit, before its ${ms} ms`);
      assert.equal(effects.count('t1:before'), 1);
      assert.equal(effects.count('t1:after'), 1);
    });

    it('cancel stops the work: no step begins after the cancel is acknowledged', async () => {
      const task = await submit('loop', { id: 'c1' });
      await until(task.taskId, () => effects.count('c1:s') >= 2, 'two steps in');
      const cancelled = await runtime.cancel(task.taskId, 'contract');
      assert.equal(cancelled.status, 'cancelled');
      const atAck = effects.count('c1:s');
      await delay(1_500);
      assert.equal(effects.count('c1:s'), atAck, 'no step began after the acknowledgement');
      const stored = await store.get(task.taskId, ENGINE_ACCESS);
      assert.equal(stored.status, 'cancelled', 'nothing the run wrote afterwards changed the status');
      // The run itself ends too (an engine may need a moment to unwind its attempt).
      const deadline = Date.now() + 10_000;
      while (runtime.isRunning(task.taskId) && Date.now() < deadline) await delay(50);
      assert.equal(runtime.isRunning(task.taskId), false, 'the cancelled run ended');
    });

    /** The journal of `taskId` (history entries by key). */
    const journalOf = (taskId: string) => store.readJournal(taskId);
    const deadlineActor = { role: 'deadline', name: null };

    it('question deadlines: a default answer, a decline and a cancel each apply once, by the deadline; the handler sees them as usual', async () => {
      const [byDefault, declined, cancelled] = await Promise.all([
        submit('deadline', { id: 'd1', options: { timeoutMs: 300, onTimeout: { default: { action: 'accept', content: { ok: false } } } } }),
        submit('deadline', { id: 'd2', options: { timeoutMs: 300, onTimeout: 'decline' } }),
        submit('deadline', { id: 'd3', options: { timeoutMs: 300, onTimeout: 'cancel' } }),
      ]);
      const a = await ended(byDefault.taskId);
      assert.equal(a.status, 'completed', resultText(a));
      assert.equal(resultText(a), 'accept ok=false');
      const b = await ended(declined.taskId);
      assert.equal(resultText(b), 'decline ok=undefined');
      const c = await ended(cancelled.taskId);
      assert.equal(c.status, 'cancelled');
      for (const task of [a, b, c]) {
        const journal = await journalOf(task.taskId);
        assert.deepEqual((journal.get('answered:approval') as unknown as AnsweredEntry).by, deadlineActor);
        const deadline = journal.get('deadline:approval') as { at: string; dueAt: string };
        assert.equal(Date.parse(deadline.dueAt) - Date.parse(deadline.at), 300, 'due 300 ms after the first ask');
        assert.ok(Date.parse((journal.get('answered:approval') as unknown as AnsweredEntry).at) >= Date.parse(deadline.dueAt), 'not before its time');
        assert.equal(task.questionDeadlines, undefined, 'nothing of the deadline is kept once the task ended');
      }
      // The cancel's history entry follows the cancel's write.
      let cancelledBy: unknown;
      for (let i = 0; i < 200 && cancelledBy === undefined; i++) {
        cancelledBy = ((await journalOf(c.taskId)).get('cancelled') as unknown as CancelledEntry | undefined)?.by;
        if (cancelledBy === undefined) await delay(25);
      }
      assert.deepEqual(cancelledBy, deadlineActor);
      assert.equal(effects.count('d1:after:accept'), 1);
      assert.equal(effects.count('d2:after:decline'), 1);
      assert.equal(effects.count('d3:after:cancel'), 0, 'a cancelled task goes no further');
    });

    it('question deadlines: escalate marks the question and keeps waiting; reminders come while it waits; a person answers after', async () => {
      const task = await submit('deadline', { id: 'd4', options: { timeoutMs: 200, onTimeout: 'escalate', remindEveryMs: 150 } });
      const marked = await until(
        task.taskId,
        (t) => t.questionDeadlines?.approval?.escalatedAt !== undefined && (t.questionDeadlines.approval.reminders ?? 0) >= 2,
        'escalated and reminded twice',
      );
      assert.equal(marked.status, 'input_required', 'an escalated question still waits');
      const taken = await runtime.provideInputs(task.taskId, { approval: { action: 'accept', content: { ok: true } } }, 'contract');
      assert.deepEqual(taken, ['approval']);
      const done = await ended(task.taskId);
      assert.equal(resultText(done), 'accept ok=true');
      const journal = await journalOf(task.taskId);
      assert.ok(journal.has('escalated:approval'));
      assert.equal((journal.get('answered:approval') as unknown as AnsweredEntry).by.role, 'principal');
      const reminders = [...journal.keys()].filter((key) => key.startsWith('reminded:approval:')).map((key) => Number(key.split(':').at(-1)));
      assert.ok(reminders.length >= 2, `reminded ${reminders.length} times`);
    });

    it('question deadlines: a deadline that passed while no runtime ran fires once at the restart', async () => {
      const task = await submit('deadline', { id: 'd5', options: { timeoutMs: 400, onTimeout: 'decline' } });
      const asking = await until(task.taskId, (t) => t.status === 'input_required', 'asking');
      await runtime.close();
      await store.close();
      const dueAt = Date.parse(asking.questionDeadlines!.approval!.dueAt!);
      while (Date.now() <= dueAt + 50) await delay(50); // down until well past the deadline
      await open();
      const done = await ended(task.taskId);
      assert.equal(resultText(done), 'decline ok=undefined');
      assert.deepEqual(((await journalOf(task.taskId)).get('answered:approval') as unknown as AnsweredEntry).by, deadlineActor);
      assert.equal(effects.count('d5:after:decline'), 1);
    });

    it('results and errors land in the store as the spec says', async () => {
      const [thrown, rpc, isError, stepFails] = await Promise.all([
        submit('throws', {}),
        submit('rpc-error', {}),
        submit('is-error', {}),
        submit('step-fails', { id: 'e1' }),
      ]);
      const a = await ended(thrown.taskId);
      assert.equal(a.status, 'failed', 'a throwing handler ends its task in errorResultStatus');
      assert.equal(a.outcome?.type, 'result');
      assert.equal(resultText(a), 'boom');
      assert.equal((a.outcome as { result: JsonObject }).result.isError, true);
      const b = await ended(rpc.taskId);
      assert.equal(b.status, 'failed');
      assert.deepEqual(b.outcome, { type: 'error', error: { code: -32042, message: 'refused by the tool', data: { why: 'test' } } });
      const c = await ended(isError.taskId);
      assert.equal(c.status, 'failed', 'an isError result ends its task in errorResultStatus');
      assert.equal(resultText(c), 'bad input');
      const d = await ended(stepFails.taskId);
      assert.equal(d.status, 'completed');
      assert.equal(resultText(d), 'caught always fails', 'a failed step throws its error into the handler');
      assert.equal(effects.count('e1:flaky'), 1, 'a non-transient failure is not retried');
    });
  });
}
