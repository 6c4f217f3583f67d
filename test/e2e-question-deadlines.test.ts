/**
 * A question's deadline fires exactly once across instances after a crash: an instance
 * (test/fixtures/deadline-server.ts, a child process on PostgreSQL) asks a question with a 1 s
 * deadline and is SIGKILLed while it waits; once the deadline has passed (by the store's clock), two
 * fresh instances start on the same schema. Both arm the overdue deadline at start-up and race to
 * apply it: the journal holds one outcome, and exactly one instance logs applying it — for `decline`
 * (an answer by the deadline; the task completes with it), `cancel` (the task is cancelled by the
 * deadline) and `escalate` (one escalation; the question keeps waiting, then a person answers).
 */
import assert from 'node:assert/strict';
import type { ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import { after, describe, it } from 'node:test';
import { ENGINE_ACCESS } from '../src/core/access.js';
import type { AnsweredEntry, CancelledEntry } from '../src/core/journal-keys.js';
import { silentLogger } from '../src/core/log.js';
import type { TaskRecord } from '../src/core/task.js';
import { openStore } from '../src/store/open-store.js';
import { startExample, type ExampleProcess } from './helpers/example-process.js';
import { ModernRawClient } from './helpers/modern-client.js';
import { dropSchemas, PG_URL, withParam } from './helpers/services.js';
import { until } from './helpers/until.js';

const fixture = fileURLToPath(new URL('./fixtures/deadline-server.ts', import.meta.url));
const run = randomBytes(3).toString('hex');
const schemas: string[] = [];
const children: ChildProcess[] = [];
after(async () => {
  for (const child of children) child.kill('SIGKILL');
  await dropSchemas(...schemas);
});

/** The log lines (JSON) of `instance` whose `msg` starts with `prefix`. */
const logged = (instance: ExampleProcess, prefix: string) =>
  instance
    .log()
    .split('\n')
    .filter((line) => line.startsWith('{'))
    .map((line) => JSON.parse(line) as { msg: string; taskId?: string })
    .filter((line) => line.msg.startsWith(prefix));

const killed = (child: ChildProcess) =>
  new Promise<void>((resolve) => {
    if (child.exitCode !== null || child.signalCode !== null) return resolve();
    child.once('exit', () => resolve());
    child.kill('SIGKILL');
  });

describe('question deadlines across a crash and two instances (PostgreSQL)', () => {
  for (const onTimeout of ['decline', 'cancel', 'escalate'] as const) {
    it(`${onTimeout}: applied exactly once after the asking instance was SIGKILLed`, { timeout: 90_000 }, async () => {
      const schema = `mcpt_dle2e_${run}_${onTimeout}`;
      schemas.push(schema);
      const url = withParam(PG_URL, 'schema', schema);
      const env = (instance: string) => ({ STORE: url, INSTANCE: instance, LEASE_MS: '1500', DEADLINE_MS: '1000', ON_TIMEOUT: onTimeout });
      const store = openStore(url, { logger: silentLogger });
      try {
        const a = await startExample(fixture, env('A'), children);
        const created = await new ModernRawClient(a.url).request('tools/call', { name: 'approve', arguments: { id: onTimeout } });
        assert.equal(created.result?.resultType, 'task', JSON.stringify(created));
        const taskId = created.result.taskId as string;
        const get = () => store.get(taskId, ENGINE_ACCESS);
        const asked = await until(async () => ((await get()).questionDeadlines?.approval ? get() : undefined), { what: 'the question with its deadline' });
        await killed(a.child);
        const dueAt = Date.parse(asked.questionDeadlines!.approval!.dueAt!);
        await until(() => store.now() > dueAt, { what: 'the deadline to pass while no instance runs' });
        assert.equal((await get()).status, 'input_required', 'nothing applied the deadline while no instance ran');

        const [b, c] = await Promise.all([startExample(fixture, env('B'), children), startExample(fixture, env('C'), children)]);
        const applied = () => [...logged(b, 'question deadline passed'), ...logged(c, 'question deadline passed')];
        let task: TaskRecord;
        if (onTimeout === 'escalate') {
          task = await until(async () => ((await get()).questionDeadlines?.approval?.escalatedAt ? get() : undefined), {
            timeoutMs: 20_000,
            what: 'the escalation',
          });
          assert.equal(task.status, 'input_required');
          // A person answers the escalated question through either instance.
          await until(
            async () =>
              (await new ModernRawClient(b.url).request('tasks/update', { taskId, inputResponses: { approval: { action: 'accept', content: { ok: true } } } }))
                .result,
            {
              what: 'the answer taken',
            },
          );
        }
        task = await until(async () => ((await get()).status !== 'input_required' && (await get()).status !== 'working' ? get() : undefined), {
          timeoutMs: 30_000,
          what: 'the task to end',
        });
        const journal = await store.readJournal(taskId);
        const answered = journal.get('answered:approval') as unknown as AnsweredEntry;
        if (onTimeout === 'decline') {
          assert.equal(task.status, 'completed');
          assert.equal((task.outcome as unknown as { result: { content: { text: string }[] } }).result.content[0]!.text, 'decline ok=undefined');
          assert.deepEqual(answered.by, { role: 'deadline', name: null });
        } else if (onTimeout === 'cancel') {
          assert.equal(task.status, 'cancelled');
          assert.deepEqual(answered.by, { role: 'deadline', name: null });
          const cancelled = await until(async () => (await store.readJournal(taskId)).get('cancelled') as unknown as CancelledEntry | undefined, {
            what: 'the cancel entry',
          });
          assert.deepEqual(cancelled.by, { role: 'deadline', name: null });
        } else {
          assert.equal(task.status, 'completed');
          assert.equal(answered.by.role, 'principal', 'an escalation answers nothing; the person did');
          assert.ok(journal.has('escalated:approval'));
        }
        assert.ok(
          Date.parse((journal.get(onTimeout === 'escalate' ? 'escalated:approval' : 'answered:approval') as { at: string }).at) >= dueAt,
          'not before its time',
        );
        // Each instance that found the task still waiting at start-up armed it (usually both: one may
        // start after the other already applied it); exactly one applied it (its log line follows the
        // write that decided it).
        const armed = [b, c].filter((instance) => logged(instance, 'question deadlines armed').length === 1).length;
        assert.ok(armed >= 1, 'armed at start-up');
        await until(() => applied().length > 0, { what: 'the log line of the instance that applied it' });
        assert.equal(applied().length, 1, `applied once across B and C: ${JSON.stringify(applied())}`);
        assert.equal(applied()[0]!.taskId, taskId);
      } finally {
        await store.close();
      }
    });
  }
});
