/**
 * Question deadlines (`AskOptions.timeoutMs` / `deadline`, `onTimeout`, `remindEveryMs`) on the
 * embedded runtime over every store (memory, SQLite, PostgreSQL, Redis): each `onTimeout` outcome,
 * a person answering at the deadline (exactly one wins), reminders sent once each across two
 * runtimes sharing PostgreSQL, a clock ahead of the store's, a restart that keeps the first ask's
 * deadline, option checks, and that nothing of it reaches the wire.
 */
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { ENGINE_ACCESS } from '../src/core/access.js';
import { InvalidArgumentError } from '../src/core/errors.js';
import type { AnsweredEntry, AskedEntry } from '../src/core/journal-keys.js';
import type { JsonObject } from '../src/core/json.js';
import { silentLogger, type Logger } from '../src/core/log.js';
import { overdueQuestions, resolveDeadline } from '../src/core/question-deadline.js';
import type { InputRequest, TaskRecord } from '../src/core/task.js';
import type { AskOptions, TaskContext } from '../src/runtime/context.js';
import { TaskRuntime, type TaskToolResult } from '../src/runtime/runtime.js';
import { openStore } from '../src/store/open-store.js';
import type { TaskStore } from '../src/store/task-store.js';
import { toDetailedTask } from '../src/wire/2026-07-28/task-object.js';
import { toTask2025 } from '../src/wire/2025-11-25/task-object.js';
import { PG_URL, withParam } from './helpers/services.js';
import { testStores } from './helpers/test-stores.js';
import { until } from './helpers/until.js';
import { capturedLogger } from './helpers/captured-logger.js';

const { stores, dir, schema: pgSchema } = testStores('dl');

const text = (t: string): TaskToolResult => ({ content: [{ type: 'text', text: t }] });
const resultText = (task: TaskRecord) => (task.outcome?.type === 'result' ? ((task.outcome.result.content as { text?: string }[])[0]?.text ?? '') : '');
const schema = { type: 'object', properties: { ok: { type: 'boolean' } }, required: ['ok'] };
const deadlineActor = { role: 'deadline', name: null };

/** A runtime over `url` with the test tools (`ask`: one form question with the deadline options in its arguments; `sample`, `roots`). */
async function open(url: string, options: { logger?: Logger; now?: () => number; instanceId?: string; store?: TaskStore } = {}) {
  const store = options.store ?? openStore(url, { logger: silentLogger });
  const runtime = new TaskRuntime(store, {
    logger: options.logger ?? silentLogger,
    purgeIntervalMs: 0,
    ...(options.now && { now: options.now }),
    ...(options.instanceId && { instanceId: options.instanceId }),
  });
  const used: string[] = [];
  const tool = (name: string, handler: (args: JsonObject, ctx: TaskContext) => Promise<TaskToolResult>) => runtime.register(name, { parse: (a) => a, handler });
  tool('ask', async (args, ctx) => {
    const answer = await ctx.elicit('Approve?', schema, { key: 'approval', ...(args.options as AskOptions) });
    used.push(answer.action);
    return text(`${answer.action} ok=${String(answer.content?.ok)}`);
  });
  tool('sample', async (args, ctx) => {
    const reply = await ctx.sample(
      { messages: [{ role: 'user', content: { type: 'text', text: 'Summarize' } }], maxTokens: 10 },
      { key: 's', ...(args.options as AskOptions) },
    );
    return text(`model=${reply.model}`);
  });
  tool('roots', async (args, ctx) => {
    const roots = await ctx.listRoots({ key: 'r', ...(args.options as AskOptions) });
    return text(`roots=${roots.roots.length}`);
  });
  await runtime.recover();
  const submit = (name: string, args: JsonObject) => runtime.submit({ owner: 'alice', tool: name, arguments: args, errorResultStatus: 'failed' });
  const get = (taskId: string) => store.get(taskId, ENGINE_ACCESS);
  const ended = (taskId: string) =>
    until(
      async () => {
        const task = await get(taskId);
        return ['completed', 'failed', 'cancelled'].includes(task.status) && task;
      },
      { timeoutMs: 20_000, what: `task ${taskId} to end` },
    );
  const close = async () => {
    await runtime.close();
    if (!options.store) await store.close();
  };
  return { store, runtime, used, submit, get, ended, close };
}

for (const { name, url } of stores) {
  describe(`question deadlines on ${name}`, () => {
    it('each onTimeout applies once at its deadline, as the deadline actor: default, decline, cancel, escalate', async () => {
      const t = await open(url());
      try {
        const [byDefault, declined, cancelled, escalated] = await Promise.all([
          t.submit('ask', { options: { timeoutMs: 200, onTimeout: { default: { action: 'accept', content: { ok: true } } } } }),
          t.submit('ask', { options: { deadline: new Date(t.store.now() + 200).toISOString(), onTimeout: 'decline' } }),
          t.submit('ask', { options: { timeoutMs: 200, onTimeout: 'cancel' } }),
          t.submit('ask', { options: { timeoutMs: 200, onTimeout: 'escalate' } }),
        ]);
        const a = await t.ended(byDefault.taskId);
        assert.equal(resultText(a), 'accept ok=true');
        const b = await t.ended(declined.taskId);
        assert.equal(resultText(b), 'decline ok=undefined');
        const c = await t.ended(cancelled.taskId);
        assert.equal(c.status, 'cancelled');
        for (const task of [a, b, c]) {
          const journal = await t.store.readJournal(task.taskId);
          const answered = journal.get('answered:approval') as unknown as AnsweredEntry;
          assert.deepEqual(answered.by, deadlineActor);
          assert.ok(
            Date.parse(answered.at) >= Date.parse((journal.get('deadline:approval') as { dueAt: string }).dueAt),
            'not before its time by the store clock',
          );
        }
        // The cancel's history entry follows the cancel's write.
        const cancelledBy = await until(async () => ((await t.store.readJournal(c.taskId)).get('cancelled') as { by: unknown } | undefined)?.by, {
          what: 'the cancel entry',
        });
        assert.deepEqual(cancelledBy, deadlineActor);
        const waiting = await until(
          async () => {
            const task = await t.get(escalated.taskId);
            return task.questionDeadlines?.approval?.escalatedAt !== undefined && task;
          },
          { what: 'the escalation' },
        );
        assert.equal(waiting.status, 'input_required', 'an escalated question keeps waiting');
        assert.deepEqual(
          overdueQuestions(waiting, t.store.now()).map((q) => [q.key, q.escalated]),
          [['approval', true]],
        );
        const journal = await t.store.readJournal(escalated.taskId);
        assert.ok(journal.has('escalated:approval'));
        assert.ok(!journal.has('input:approval'), 'nothing answered for the person');
        assert.deepEqual(await t.runtime.provideInputs(escalated.taskId, { approval: { action: 'accept', content: { ok: false } } }, 'alice'), ['approval']);
        assert.equal(resultText(await t.ended(escalated.taskId)), 'accept ok=false');
        assert.deepEqual(t.used.sort(), ['accept', 'accept', 'decline'], 'the cancelled handler used no answer');
        await until(() => t.runtime.deadlines.armed === 0, { what: 'every deadline disarmed' });
      } finally {
        await t.close();
      }
    });

    it("a 'cancel' deadline's claim is no answer: the handler never gets it, and nobody can answer after it", async () => {
      const t = await open(url());
      try {
        const task = await t.submit('ask', { options: { timeoutMs: 60_000, onTimeout: 'cancel' } });
        await until(async () => (await t.get(task.taskId)).status === 'input_required', { what: 'asked' });
        assert.equal(await t.store.claimQuestion(task.taskId, 'approval', deadlineActor as never), true);
        assert.equal(await t.store.claimQuestion(task.taskId, 'approval', deadlineActor as never), true, 'a second claim (another instance) may cancel too');
        assert.equal(await t.store.inputAnswer(task.taskId, 'approval'), undefined);
        assert.deepEqual(
          await t.runtime.provideInputs(task.taskId, { approval: { action: 'accept', content: { ok: true } } }, 'alice'),
          [],
          'no answer after the claim',
        );
        assert.equal((await t.get(task.taskId)).status, 'input_required', 'still waiting, for the cancel');
        await t.runtime.cancel(task.taskId, 'alice');
        assert.deepEqual(t.used, [], 'the handler never saw an answer');
      } finally {
        await t.close();
      }
    });

    it('a person answering at the deadline: exactly one answer is taken and used, whoever wins', async () => {
      const t = await open(url());
      try {
        const tasks = await Promise.all(Array.from({ length: 6 }, () => t.submit('ask', { options: { timeoutMs: 150, onTimeout: 'decline' } })));
        await Promise.all(
          tasks.map(async (task) => {
            const asked = await until(
              async () => {
                const current = await t.get(task.taskId);
                return current.questionDeadlines?.approval && current;
              },
              { what: 'asked' },
            );
            const dueAt = Date.parse(asked.questionDeadlines!.approval!.dueAt!);
            // The person answers as the deadline comes, by the store's clock.
            await until(() => t.store.now() >= dueAt - 2, { intervalMs: 1, what: 'the deadline' });
            await t.runtime.provideInputs(task.taskId, { approval: { action: 'accept', content: { ok: true } } }, 'alice');
          }),
        );
        for (const task of tasks) {
          const done = await t.ended(task.taskId);
          const journal = await t.store.readJournal(task.taskId);
          const by = (journal.get('answered:approval') as unknown as AnsweredEntry).by;
          assert.equal(resultText(done), by.role === 'deadline' ? 'decline ok=undefined' : 'accept ok=true', 'the handler used the answer the journal names');
        }
        assert.equal(t.used.length, tasks.length, 'one answer used per task');
      } finally {
        await t.close();
      }
    });
  });
}

describe('question deadlines (one store)', () => {
  it('sample and listRoots take a default answer, checked against their result shapes', async () => {
    const t = await open('memory:');
    try {
      const sample = await t.submit('sample', {
        options: { timeoutMs: 50, onTimeout: { default: { role: 'assistant', content: { type: 'text', text: 'n/a' }, model: 'none' } } },
      });
      const roots = await t.submit('roots', { options: { timeoutMs: 50, onTimeout: { default: { roots: [] } } } });
      assert.equal(resultText(await t.ended(sample.taskId)), 'model=none');
      assert.equal(resultText(await t.ended(roots.taskId)), 'roots=0');
    } finally {
      await t.close();
    }
  });

  it('bad options are refused with InvalidArgumentError, before anything is asked', async () => {
    const form: InputRequest = { kind: 'elicitation', message: 'm', requestedSchema: schema };
    const sampling: InputRequest = { kind: 'sampling', message: 'm', params: {} };
    const bad: [AskOptions, InputRequest][] = [
      [{ timeoutMs: -1, onTimeout: 'decline' }, form],
      [{ timeoutMs: Number.NaN, onTimeout: 'decline' }, form],
      [{ timeoutMs: 10 }, form],
      [{ onTimeout: 'decline' }, form],
      [{ timeoutMs: 10, deadline: new Date(), onTimeout: 'decline' }, form],
      [{ deadline: 'tomorrow', onTimeout: 'decline' }, form],
      [{ deadline: '2026-12-01', onTimeout: 'decline' }, form],
      [{ deadline: new Date(Number.NaN), onTimeout: 'decline' }, form],
      [{ timeoutMs: 10, onTimeout: 'ignore' as never }, form],
      [{ timeoutMs: 10, onTimeout: { default: { action: 'accept', content: { ok: 'yes' } } } }, form],
      [{ timeoutMs: 10, onTimeout: { default: { action: 'accept', content: { ok: true, extra: 1 } } } }, form],
      [{ timeoutMs: 10, onTimeout: 'decline' }, sampling],
      [{ timeoutMs: 10, onTimeout: { default: { action: 'accept' } } }, sampling],
      [{ remindEveryMs: 0 }, form],
      [{ remindEveryMs: Infinity }, form],
    ];
    for (const [options, request] of bad) assert.throws(() => resolveDeadline(options, request), InvalidArgumentError, JSON.stringify(options));
    assert.equal(resolveDeadline({ key: 'k' } as AskOptions, form), undefined);
    assert.deepEqual(resolveDeadline({ deadline: '2026-12-01T10:00:00+01:00', onTimeout: 'escalate', remindEveryMs: 5 }, form), {
      deadline: '2026-12-01T09:00:00.000Z',
      onTimeout: 'escalate',
      remindEveryMs: 5,
    });
    // Through a handler: the ask throws, the question is never asked, the task ends with the error.
    const t = await open('memory:');
    try {
      const task = await t.submit('ask', { options: { timeoutMs: 10, onTimeout: { default: { action: 'accept', content: { ok: 'no' } } } } });
      const done = await t.ended(task.taskId);
      assert.match(resultText(done), /default answer does not fit the question/);
      assert.ok(!(await t.store.readJournal(task.taskId)).has('asked:approval'));
    } finally {
      await t.close();
    }
  });

  it('a runtime clock ahead of the store clock does not fire a deadline early by the store clock', async () => {
    const url = `sqlite:${join(dir, 'skew.db')}`;
    const store = openStore(url, { logger: silentLogger });
    const t = await open(url, { store, now: () => store.now() + 5_000 }); // this process's timers think it is 5 s later
    try {
      const task = await t.submit('ask', { options: { timeoutMs: 300, onTimeout: 'decline' } });
      const done = await t.ended(task.taskId);
      const journal = await store.readJournal(task.taskId);
      const dueAt = Date.parse((journal.get('deadline:approval') as { dueAt: string }).dueAt);
      assert.equal(resultText(done), 'decline ok=undefined');
      assert.ok(Date.parse((journal.get('answered:approval') as unknown as AnsweredEntry).at) >= dueAt, 'answered at or after its due time by the store');
    } finally {
      await t.close();
      await store.close();
    }
  });

  it('a restart keeps the deadline of the first ask: the re-ask does not move it', async () => {
    const url = `sqlite:${join(dir, 'restart.db')}`;
    let t = await open(url, { instanceId: 'one' });
    const task = await t.submit('ask', { options: { timeoutMs: 1_500, onTimeout: 'decline', remindEveryMs: 60_000 } });
    const first = await until(
      async () => {
        const current = await t.get(task.taskId);
        return current.questionDeadlines?.approval && current;
      },
      { what: 'asked' },
    );
    await t.close();
    t = await open(url, { instanceId: 'one' });
    try {
      // The recovered run asks again (a run entry, a write of the question).
      await until(async () => [...(await t.store.readJournal(task.taskId)).keys()].some((key) => key.startsWith('run:')), {
        what: 'the run after the restart',
      });
      const again = await t.get(task.taskId);
      assert.ok(again.version > first.version, 'the question was written again');
      assert.deepEqual(again.questionDeadlines, first.questionDeadlines, 'same first ask, same due time');
      const asked = (await t.store.readJournal(task.taskId)).get('asked:approval') as unknown as AskedEntry;
      assert.equal(again.questionDeadlines!.approval!.askedAt, asked.at);
      assert.equal(resultText(await t.ended(task.taskId)), 'decline ok=undefined');
    } finally {
      await t.close();
    }
  });

  it('reminders: one per interval while pending, each sent once across two runtimes sharing PostgreSQL, none after the answer', async () => {
    const schemaName = pgSchema('rem');
    const url = withParam(PG_URL, 'schema', schemaName);
    const a = capturedLogger();
    const b = capturedLogger();
    const one = await open(url, { logger: a.logger, instanceId: 'one' });
    const two = await open(url, { logger: b.logger, instanceId: 'two' });
    try {
      const every = 250;
      const task = await one.submit('ask', { options: { remindEveryMs: every } });
      await until(async () => (await one.get(task.taskId)).status === 'input_required', { what: 'asked' });
      await two.runtime.recover(); // the second instance finds the pending question (as at its start-up)
      assert.equal(two.runtime.deadlines.armed, 1);
      const reminded = await until(
        async () => {
          const current = await one.get(task.taskId);
          return (current.questionDeadlines?.approval?.reminders ?? 0) >= 3 && current;
        },
        { what: 'three reminders' },
      );
      assert.ok(Date.parse(reminded.lastUpdatedAt) >= Date.parse(reminded.questionDeadlines!.approval!.remindedAt!), 'a reminder moves lastUpdatedAt');
      await one.runtime.provideInputs(task.taskId, { approval: { action: 'accept', content: { ok: true } } }, 'alice');
      await one.ended(task.taskId);
      await until(() => one.runtime.deadlines.armed === 0 && two.runtime.deadlines.armed === 0, { what: 'both disarmed' });
      const journal = await one.store.readJournal(task.taskId);
      const numbers = [...journal.keys()]
        .filter((key) => key.startsWith('reminded:approval:'))
        .map((key) => Number(key.split(':').at(-1)))
        .sort((x, y) => x - y);
      const askedAt = Date.parse((journal.get('asked:approval') as unknown as AskedEntry).at);
      const answeredAt = Date.parse((journal.get('answered:approval') as unknown as AnsweredEntry).at);
      const due = Math.floor((answeredAt - askedAt) / every); // reminders due before the answer, by the store's clock
      assert.deepEqual(
        numbers,
        Array.from({ length: numbers.length }, (_, i) => i + 1),
        'reminders 1, 2, 3 … in turn',
      );
      assert.ok(numbers.length === due || numbers.length === due - 1, `${numbers.length} reminders sent, ${due} were due before the answer`);
      const sent = [...a.lines, ...b.lines].filter((line) => line.msg === 'question reminder sent');
      assert.equal(sent.length, numbers.length, 'each reminder logged once, by one of the two');
      for (const line of sent) assert.equal(line.taskId, task.taskId);
    } finally {
      await one.close();
      await two.close();
    }
  });

  it('the wire never shows a question deadline', async () => {
    const t = await open('memory:');
    try {
      const task = await t.submit('ask', { options: { timeoutMs: 60_000, onTimeout: 'escalate', remindEveryMs: 30_000 } });
      const asked = await until(
        async () => {
          const current = await t.get(task.taskId);
          return current.questionDeadlines && current;
        },
        { what: 'asked' },
      );
      for (const view of [toDetailedTask(asked), toTask2025(asked)])
        assert.doesNotMatch(JSON.stringify(view), /questionDeadlines|remindEveryMs|onTimeout|dueAt/);
      await t.runtime.cancel(task.taskId, 'alice');
    } finally {
      await t.close();
    }
  });
});
