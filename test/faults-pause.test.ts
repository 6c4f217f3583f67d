/**
 * Issue 23, fault 1: an instance frozen (`SIGSTOP`) past its lease while it holds invoices
 * mid-flight. The other instance takes them over and finishes them; the frozen one is resumed
 * (`SIGCONT`) with every timer it had long due. Exactly once means: after the freeze, the resumed
 * instance makes no payment attempt at all for the tasks it lost (the ledger's attempt log, not only
 * its payments, is the witness), every line is paid exactly once, none before its payOn, and every
 * invoice completes. Twice: frozen while waiting for payOns, and frozen in the middle of a burst of
 * payments. On PostgreSQL and on Redis.
 */
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { describe, it, type TestContext } from 'node:test';
import { ENGINE_ACCESS } from '../src/core/access.js';
import { openStore } from '../src/store/open-store.js';
import { startDemo } from './helpers/demo-process.js';
import {
  approve,
  describeAttempts,
  faultSuite,
  invoiceArgs,
  LedgerReader,
  ms,
  sharedStores,
  submitInvoice,
  untilTask,
  type Line,
} from './helpers/invoice-faults.js';
import { until } from './helpers/until.js';

const { dir, tag, erp, running, stores } = faultSuite('pause');
const LEASE_MS = 2000;

interface Scenario {
  /** Invoice id prefix and instance id suffix of this scenario. */
  tag: string;
  /** The invoices, by id, planned from the start time `t0`. */
  plan(t0: number): Record<string, Line[]>;
  /** Resolves when A is to be frozen (A holds every invoice then). */
  freezeWhen(ledger: LedgerReader, t0: number): Promise<void>;
}

/**
 * Runs one freeze: two instances A and B on the store at `url`; the scenario's invoices created
 * and approved through A; A frozen when the scenario says, for at least 3 leases and until B holds
 * every unfinished invoice; A resumed; then every invoice must complete and the ledger must show
 * what the file comment says.
 */
async function freezeAndResume(t: TestContext, name: string, url: string, scenario: Scenario): Promise<void> {
  const tag = `${name}-${scenario.tag}`;
  const from = running.length;
  t.after(async () => {
    for (const p of running.slice(from)) await p.kill(); // a failed freeze leaves nothing running into the next test
  });
  const ledger = new LedgerReader(join(dir, `${tag}-ledger.db`));
  const boot = async (id: string) => {
    const demo = await startDemo([
      '--store',
      url,
      '--ledger',
      ledger.path,
      '--erp',
      erp,
      '--instance-id',
      `${tag}-${id}`,
      '--lease-ms',
      String(LEASE_MS),
      '--poll-interval',
      '100',
    ]);
    running.push(demo);
    return demo;
  };
  const a = await boot('A');
  const b = await boot('B');
  const store = openStore(url);
  stores.push(store);
  const holderOf = async (taskId: string) => (await store.get(taskId, ENGINE_ACCESS)).lease?.holder;
  const statusOf = async (taskId: string) => (await store.get(taskId, ENGINE_ACCESS)).status;

  const t0 = Date.now();
  const plan = scenario.plan(t0);
  const payOn = new Map<string, number>();
  for (const [invoiceId, lines] of Object.entries(plan)) for (const l of lines) if (l.payOn) payOn.set(`${invoiceId}/${l.lineId}`, ms(l.payOn));
  const ids: Record<string, string> = {};
  for (const [invoiceId, lines] of Object.entries(plan)) ids[invoiceId] = await submitInvoice(a.url, invoiceArgs(invoiceId, lines));
  for (const taskId of Object.values(ids)) await approve(a.url, taskId);
  await scenario.freezeWhen(ledger, t0);

  const stopAt = Date.now();
  a.stop();
  const heldByA = (await Promise.all(Object.values(ids).map(async (taskId) => ((await holderOf(taskId)) === `${tag}-A` ? taskId : undefined)))).filter(
    (id) => id !== undefined,
  );
  assert.equal(heldByA.length, Object.keys(ids).length, 'A held every invoice when it was frozen');
  const paidBefore = ledger.payments(tag).length;
  assert.ok(paidBefore < payOn.size + Object.keys(ids).length, 'A was frozen with lines left to pay');
  await until(
    async () =>
      (await Promise.all(Object.values(ids).map(async (id) => (await statusOf(id)) === 'completed' || (await holderOf(id)) !== `${tag}-A`))).every(Boolean),
    {
      timeoutMs: 20_000,
      what: 'B takes over every unfinished invoice A held',
    },
  );
  await until(() => Date.now() >= stopAt + 3 * LEASE_MS, { timeoutMs: 3 * LEASE_MS + 1000, intervalMs: 50 });
  const contAt = Date.now();
  a.cont();
  t.diagnostic(
    `A (pid ${a.pid}) frozen ${contAt - stopAt} ms with ${paidBefore} line(s) paid; payOns due during the freeze: ${[...payOn.values()].filter((due) => due > stopAt && due <= contAt).length}, after it: ${[...payOn.values()].filter((due) => due > contAt).length}`,
  );

  for (const taskId of Object.values(ids))
    await untilTask(
      () => b.url,
      taskId,
      (task) => task.status === 'completed',
      'completed',
      30_000,
    );
  // Give A's stale runs time to do whatever they would do once every timer they held is due.
  await until(() => Date.now() >= Math.max(contAt, ...payOn.values()) + 3000, { timeoutMs: 20_000, intervalMs: 100 });
  assert.equal(a.child.exitCode, null, 'A is still running');
  assert.equal(a.child.signalCode, null, 'A is still running');

  for (const [invoiceId, taskId] of Object.entries(ids)) {
    const task = (
      await untilTask(
        () => a.url,
        taskId,
        () => true,
        'A answers after the freeze',
      )
    ).result;
    assert.equal(task.structuredContent.status, 'paid', `${invoiceId}: ${JSON.stringify(task)}`);
  }
  const attempts = ledger.attempts(tag);
  t.diagnostic(`payment attempts:\n${describeAttempts(attempts)}`);
  const late = attempts.filter((r) => r.pid === a.pid && ms(r.attempted_at) >= stopAt);
  assert.deepEqual(late, [], `A made payment attempts after it was frozen (for tasks B had taken over):\n${describeAttempts(late)}`);

  const payments = ledger.payments(tag);
  assert.deepEqual(
    payments.map((p) => `${p.invoice_id}/${p.line_id}`),
    Object.entries(plan).flatMap(([invoiceId, lines]) => lines.map((l) => `${invoiceId}/${l.lineId}`).sort()),
    'every line paid exactly once',
  );
  for (const p of payments) {
    const due = payOn.get(`${p.invoice_id}/${p.line_id}`);
    if (due !== undefined)
      assert.ok(ms(p.paid_at) >= due, `${p.invoice_id}/${p.line_id} paid at ${p.paid_at}, before its payOn ${new Date(due).toISOString()}`);
  }
  for (const r of attempts) {
    const due = payOn.get(`${r.invoice_id}/${r.line_id}`);
    if (due !== undefined) assert.ok(ms(r.attempted_at) >= due, `attempt before payOn: ${describeAttempts([r])}`);
  }
  // Fencing tokens: B's attempts for a task carry a newer lease epoch than A's.
  for (const taskId of Object.values(ids)) {
    const mine = attempts.filter((r) => r.task_id === taskId);
    const ofA = mine.filter((r) => r.pid === a.pid).map((r) => r.fencing_token);
    const ofB = mine.filter((r) => r.pid === b.pid).map((r) => r.fencing_token);
    if (ofA.length > 0 && ofB.length > 0)
      assert.ok(Math.min(...ofB) > Math.max(...ofA), `fencing tokens of task ${taskId} do not increase on takeover:\n${describeAttempts(mine)}`);
  }
  assert.match(b.log(), /task taken over from an instance presumed dead/);
  await a.kill();
  await b.kill();
}

for (const { name, url } of sharedStores(tag)) {
  describe(`an instance paused past its lease (${name})`, () => {
    it(
      'frozen while waiting for payOns: no payment attempt after the freeze for the tasks taken over; each line paid once, none early, every invoice completed',
      { timeout: 90_000 },
      async (t) => {
        // Four invoices, four lines each: one paid at approval, one due during the freeze, one due
        // around the resume, one due long after it.
        await freezeAndResume(t, name, url('wait'), {
          tag: 'W',
          plan: (t0) => {
            const at = (offset: number) => new Date(t0 + offset).toISOString();
            const plan: Record<string, Line[]> = {};
            for (let i = 0; i < 4; i++)
              plan[`${name}-W-${i}`] = [
                { lineId: 'l0', amount: 10 + i },
                { lineId: 'l1', amount: 20 + i, payOn: at(4500 + i * 150) },
                { lineId: 'l2', amount: 30 + i, payOn: at(8500 + i * 150) },
                { lineId: 'l3', amount: 40 + i, payOn: at(15_000 + i * 150) },
              ];
            return plan;
          },
          freezeWhen: async (ledger, t0) => {
            await until(() => ledger.payments(`${name}-W-`).length === 4, { timeoutMs: 10_000, what: 'the four l0 lines paid' });
            assert.ok(Date.now() < t0 + 4300, `the set-up took too long (${Date.now() - t0} ms): the first payOn must fall due during the freeze`);
          },
        });
      },
    );

    it('frozen in the middle of a burst of payments: the same', { timeout: 90_000 }, async (t) => {
      // Three invoices of 15 lines due 40 ms apart in all: A is frozen once about a third are paid.
      await freezeAndResume(t, name, url('burst'), {
        tag: 'B',
        plan: (t0) => {
          const plan: Record<string, Line[]> = {};
          for (let i = 0; i < 3; i++)
            plan[`${name}-B-${i}`] = Array.from({ length: 15 }, (_, k) => ({
              lineId: `l${String(k).padStart(2, '0')}`,
              amount: 1 + k + i / 10,
              payOn: new Date(t0 + 4000 + k * 120 + i * 40).toISOString(),
            }));
          return plan;
        },
        freezeWhen: async (ledger) => {
          await until(() => ledger.payments(`${name}-B-`).length >= 15, { timeoutMs: 15_000, intervalMs: 5, what: 'a third of the lines paid' });
        },
      });
    });
  });
}
