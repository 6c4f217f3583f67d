/**
 * Issue 23, fault 3: one instance's clock is two hours ahead (`faketime -f +2h`, Debian's
 * libfaketime) while it shares the store with a healthy instance. It must notice (an error in its
 * log naming the offset), take no lease — neither from the live instance nor for the tasks it
 * creates itself — and so never pay a line before its payOn by the real clock; the healthy instance
 * runs every invoice, including those created through the skewed one. When the healthy instance
 * dies, the skewed one still takes nothing over: the tasks wait, unpaid, until a healthy instance
 * exists again, which then finishes them. On PostgreSQL and on Redis.
 */
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { describe, it, type TestContext } from 'node:test';
import { ENGINE_ACCESS } from '../src/core/access.js';
import { openStore } from '../src/store/open-store.js';
import { startDemo } from './helpers/demo-process.js';
import { hasFaketime, SteppableClock } from './helpers/faketime.js';
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

const { dir, tag, erp, running, stores, beforeKill } = faultSuite('clock');
const monitors: (() => Promise<void>)[] = [];
beforeKill(async () => {
  for (const stop of monitors) await stop();
});
const LEASE_MS = 2000;
const SKEW_MS = 2 * 3600_000;

/** Kills, when the test ends, the demos it started (a failed test must leave nothing running into the next). */
function killAtEnd(t: TestContext): void {
  const from = running.length;
  t.after(async () => {
    for (const p of running.slice(from)) await p.kill();
  });
}

for (const { name, url: urlOf } of sharedStores(tag)) {
  describe(`an instance whose clock is two hours ahead (${name})`, () => {
    it('takes no lease and pays nothing early; the healthy instance runs every invoice; alone, it leaves them waiting', { timeout: 90_000 }, async (t) => {
      const url = urlOf('skew');
      killAtEnd(t);
      assert.ok(hasFaketime(), 'faketime is not installed (Debian package faketime; .ci/run installs it)');
      const ledgerPath = join(dir, `${name}-ledger.db`);
      const ledger = new LedgerReader(ledgerPath);
      const boot = async (id: string, prefix?: string[]) => {
        const demo = await startDemo(
          ['--store', url, '--ledger', ledgerPath, '--erp', erp, '--instance-id', `${name}-${id}`, '--lease-ms', String(LEASE_MS), '--poll-interval', '100'],
          { ...(prefix && { prefix }) },
        );
        running.push(demo);
        return demo;
      };
      const n = await boot('N');
      const f = await boot('F', ['faketime', '-f', '+2h']);
      const fId = `${name}-F`;

      // F says so, naming the offset, before anything is asked of it.
      const skewLine = await until(
        () =>
          f
            .log()
            .split('\n')
            .find((line) => /clock is \d+ ms ahead of the store's/.test(line)),
        { timeoutMs: 10_000, what: () => `F's log to report its clock offset:\n${f.log()}` },
      );
      const logged = JSON.parse(skewLine) as { level: number; offsetMs: number; msg: string };
      assert.ok(logged.level >= 50, `the skew is logged as an error: ${skewLine}`);
      assert.ok(Math.abs(logged.offsetMs + SKEW_MS) < 60_000, `F logged an offset of ${logged.offsetMs} ms, expected about -${SKEW_MS}`);
      t.diagnostic(`F (pid ${f.pid}): ${logged.msg}`);

      // Watch, by the real clock: every lease holder, and when each payment first shows in the ledger.
      const store = openStore(url);
      stores.push(store);
      const watched = new Set<string>();
      const heldByF: string[] = [];
      const firstSeen = new Map<string, number>();
      let watching = true;
      const watcher = (async () => {
        while (watching) {
          for (const taskId of watched) {
            const holder = (await store.get(taskId, ENGINE_ACCESS)).lease?.holder;
            if (holder === fId) heldByF.push(`${taskId} at ${new Date().toISOString()}`);
          }
          const seenAt = Date.now();
          for (const p of ledger.payments(`${name}-`))
            if (!firstSeen.has(`${p.invoice_id}/${p.line_id}`)) firstSeen.set(`${p.invoice_id}/${p.line_id}`, seenAt);
          await new Promise((resolve) => setTimeout(resolve, 25));
        }
      })();
      const stopWatching = async () => {
        watching = false;
        await watcher;
      };
      monitors.push(stopWatching);

      // Phase 1: four invoices, submitted round-robin to N and F, approved through the other one.
      const t0 = Date.now();
      const plan: Record<string, Line[]> = {};
      for (let i = 0; i < 4; i++)
        plan[`${name}-K${i}`] = [
          { lineId: 'now', amount: 10 + i },
          { lineId: 'a', amount: 20 + i, payOn: new Date(t0 + 5000 + i * 200).toISOString() },
          { lineId: 'b', amount: 30 + i, payOn: new Date(t0 + 8000 + i * 200).toISOString() },
        ];
      const ids: Record<string, string> = {};
      const via = (i: number) => (i % 2 === 0 ? n : f);
      for (const [i, [invoiceId, lines]] of Object.entries(plan).entries()) {
        const submittedAt = Date.now();
        ids[invoiceId] = await submitInvoice(via(i).url, invoiceArgs(invoiceId, lines));
        watched.add(ids[invoiceId]!);
        const created = (await store.get(ids[invoiceId]!, ENGINE_ACCESS)).createdAt;
        assert.ok(
          Math.abs(ms(created) - submittedAt) < 5000,
          `${invoiceId} created through ${i % 2 ? 'F' : 'N'} has createdAt ${created}, submitted at ${new Date(submittedAt).toISOString()}`,
        );
      }
      for (const [i, taskId] of Object.values(ids).entries()) await approve(via(i + 1).url, taskId);
      for (const taskId of Object.values(ids))
        await untilTask(
          () => n.url,
          taskId,
          (task) => task.status === 'completed',
          'completed',
          30_000,
        );
      for (const taskId of Object.values(ids))
        assert.equal(
          (
            await untilTask(
              () => f.url,
              taskId,
              () => true,
              'read through F',
            )
          ).result.structuredContent.status,
          'paid',
        );

      // Phase 2: N holds an approved invoice waiting for its payOn, and dies. F, alone, takes nothing.
      const lastPayOn = Date.now() + 3000;
      const lone = `${name}-L`;
      plan[lone] = [{ lineId: 'a', amount: 50, payOn: new Date(lastPayOn).toISOString() }];
      ids[lone] = await submitInvoice(f.url, invoiceArgs(lone, plan[lone]!));
      watched.add(ids[lone]!);
      await approve(f.url, ids[lone]!);
      await untilTask(
        () => f.url,
        ids[lone]!,
        (task) => task.status === 'working' && /waiting until/i.test(task.statusMessage ?? ''),
        'L waits for payOn',
      );
      assert.equal((await store.get(ids[lone]!, ENGINE_ACCESS)).lease?.holder, `${name}-N`, 'N runs L');
      await n.kill();
      const waitUntil = Math.max(lastPayOn, Date.now()) + 3 * LEASE_MS;
      await until(() => Date.now() >= waitUntil, { timeoutMs: 20_000, intervalMs: 100 });
      const waiting = await untilTask(
        () => f.url,
        ids[lone]!,
        () => true,
        'read through F',
      );
      assert.equal(waiting.status, 'working', `with only the skewed instance alive, L waits: ${JSON.stringify(waiting)}`);
      assert.deepEqual(
        ledger.payments(lone).map((p) => p.line_id),
        [],
        'L is not paid while only the skewed instance lives',
      );
      assert.equal(f.child.exitCode, null, 'F is still running');

      // A healthy instance again: it takes L over and pays it.
      const n2 = await boot('N2');
      await untilTask(
        () => f.url,
        ids[lone]!,
        (task) => task.status === 'completed',
        'L completes once a healthy instance exists',
        20_000,
      );
      await stopWatching();

      assert.deepEqual(heldByF, [], 'F held a lease');
      const payments = ledger.payments(`${name}-`);
      assert.deepEqual(
        payments.map((p) => `${p.invoice_id}/${p.line_id}`),
        Object.entries(plan).flatMap(([invoiceId, lines]) => lines.map((l) => `${invoiceId}/${l.lineId}`).sort()),
        'every line paid exactly once',
      );
      for (const [invoiceId, lines] of Object.entries(plan))
        for (const line of lines) {
          if (!line.payOn) continue;
          const seen = firstSeen.get(`${invoiceId}/${line.lineId}`);
          if (seen === undefined) continue; // paid after the last look at the ledger: not early
          assert.ok(seen >= ms(line.payOn), `${invoiceId}/${line.lineId} was in the ledger at ${new Date(seen).toISOString()}, before its payOn ${line.payOn}`);
        }
      const attempts = ledger.attempts(`${name}-`);
      t.diagnostic(`payment attempts:\n${describeAttempts(attempts)}`);
      assert.deepEqual(
        attempts.filter((r) => r.pid === f.pid),
        [],
        'F made payment attempts',
      );
      const payOn = new Map(
        Object.entries(plan).flatMap(([invoiceId, lines]) => lines.filter((l) => l.payOn).map((l) => [`${invoiceId}/${l.lineId}`, ms(l.payOn!)] as const)),
      );
      for (const r of attempts) {
        const due = payOn.get(`${r.invoice_id}/${r.line_id}`);
        if (due !== undefined) assert.ok(ms(r.attempted_at) >= due, `attempt before payOn: ${describeAttempts([r])}`);
      }
      assert.deepEqual(
        attempts.filter((r) => r.invoice_id === lone).map((r) => r.pid),
        [n2.pid],
        'L paid by the new healthy instance',
      );
    });

    it(
      'an instance whose clock jumps two hours ahead while it runs invoices: pays nothing early and gives them up to the healthy instance within a few leases',
      { timeout: 90_000 },
      async (t) => {
        const url = urlOf('jump');
        killAtEnd(t);
        const ledgerPath = join(dir, `${name}-jump-ledger.db`);
        const ledger = new LedgerReader(ledgerPath);
        const clock = new SteppableClock(join(dir, `${name}-jump-clock`));
        const boot = async (id: string, env?: Record<string, string>) => {
          const demo = await startDemo(
            ['--store', url, '--ledger', ledgerPath, '--erp', erp, '--instance-id', `${name}-${id}`, '--lease-ms', String(LEASE_MS), '--poll-interval', '100'],
            { ...(env && { env }) },
          );
          running.push(demo);
          return demo;
        };
        const j = await boot('J', clock.env());
        const n = await boot('N2');
        const store = openStore(url);
        stores.push(store);
        const holderOf = async (taskId: string) => (await store.get(taskId, ENGINE_ACCESS)).lease;

        // J runs two approved invoices waiting for payOns a few seconds ahead.
        const t0 = Date.now();
        const plan: Record<string, Line[]> = {};
        for (let i = 0; i < 2; i++)
          plan[`${name}-J${i}`] = [
            { lineId: 'now', amount: 10 + i },
            { lineId: 'a', amount: 20 + i, payOn: new Date(t0 + 6000 + i * 200).toISOString() },
            { lineId: 'b', amount: 30 + i, payOn: new Date(t0 + 9000 + i * 200).toISOString() },
          ];
        const ids: Record<string, string> = {};
        for (const [invoiceId, lines] of Object.entries(plan)) ids[invoiceId] = await submitInvoice(j.url, invoiceArgs(invoiceId, lines));
        for (const taskId of Object.values(ids)) await approve(n.url, taskId);
        for (const taskId of Object.values(ids))
          await untilTask(
            () => n.url,
            taskId,
            (task) => task.status === 'working' && /waiting until/i.test(task.statusMessage ?? ''),
            'waits for payOn',
          );
        for (const taskId of Object.values(ids)) assert.equal((await holderOf(taskId))?.holder, `${name}-J`, 'J runs the invoices');
        assert.ok(Date.now() < t0 + 4000, `the set-up took too long (${Date.now() - t0} ms)`);

        // J's clock steps two hours ahead.
        const jumpAt = Date.now();
        clock.set('+2h');
        await until(() => /clock is \d+ ms ahead of the store's/.test(j.log()), { timeoutMs: 10_000, what: () => `J's log to report the step:\n${j.log()}` });
        t.diagnostic(`J noticed the step within ${Date.now() - jumpAt} ms`);

        // Safety: past every payOn, J (its clock two hours ahead) paid nothing after the step, and nothing was paid early.
        const lastPayOn = Math.max(...Object.values(plan).flatMap((lines) => lines.filter((l) => l.payOn).map((l) => ms(l.payOn!))));
        await until(() => Date.now() >= lastPayOn + 1000, { timeoutMs: 15_000, intervalMs: 100 });
        const early = ledger.attempts(`${name}-J`);
        assert.deepEqual(
          early.filter((r) => r.pid === j.pid && ms(r.attempted_at) >= jumpAt),
          [],
          'J made payment attempts after its clock stepped',
        );
        for (const r of early) {
          const line = plan[r.invoice_id]!.find((l) => l.lineId === r.line_id)!;
          if (line.payOn) assert.ok(ms(r.attempted_at) >= ms(line.payOn), `attempt before payOn: ${describeAttempts([r])}`);
        }

        // Liveness: J's leases do not outlive the step by more than about a lease — N takes the invoices over and finishes them.
        const leases = new Map<string, unknown>();
        await until(
          async () => {
            for (const taskId of Object.values(ids)) leases.set(taskId, await holderOf(taskId));
            return [...leases.values()].every((lease) => (lease as { holder?: string } | undefined)?.holder !== `${name}-J`);
          },
          {
            timeoutMs: Math.max(0, jumpAt + 4 * LEASE_MS + 1000 - Date.now()) + 1000,
            what: () =>
              `N to take the invoices over within 4 leases of J's clock step; the leases in the store ${Date.now() - jumpAt} ms after the step: ${JSON.stringify(
                [...leases.values()].map((l) => ({ ...(l as object), expiresInMs: (l as { expiresAt?: number })?.expiresAt! - Date.now() })),
              )}`,
          },
        );
        for (const taskId of Object.values(ids))
          await untilTask(
            () => n.url,
            taskId,
            (task) => task.status === 'completed',
            'completed',
            20_000,
          );

        const attempts = ledger.attempts(`${name}-J`);
        t.diagnostic(`payment attempts:\n${describeAttempts(attempts)}`);
        assert.deepEqual(
          attempts.filter((r) => r.pid === j.pid && ms(r.attempted_at) >= jumpAt),
          [],
          'J made payment attempts after its clock stepped',
        );
        for (const r of attempts) {
          const line = plan[r.invoice_id]!.find((l) => l.lineId === r.line_id)!;
          if (line.payOn && r.pid !== j.pid) assert.ok(ms(r.attempted_at) >= ms(line.payOn), `attempt before payOn: ${describeAttempts([r])}`);
        }
        assert.deepEqual(
          ledger.payments(`${name}-J`).map((p) => `${p.invoice_id}/${p.line_id}`),
          Object.entries(plan).flatMap(([invoiceId, lines]) => lines.map((l) => `${invoiceId}/${l.lineId}`).sort()),
          'every line paid exactly once',
        );
      },
    );

    it('an instance started with its clock two hours ahead takes leases again once its clock is fixed', { timeout: 60_000 }, async (t) => {
      const url = urlOf('fixed');
      killAtEnd(t);
      const ledgerPath = join(dir, `${name}-fixed-ledger.db`);
      const ledger = new LedgerReader(ledgerPath);
      const clock = new SteppableClock(join(dir, `${name}-fixed-clock`), '+2h');
      const j = await startDemo(
        ['--store', url, '--ledger', ledgerPath, '--erp', erp, '--instance-id', `${name}-JF`, '--lease-ms', String(LEASE_MS), '--poll-interval', '100'],
        { env: clock.env() },
      );
      running.push(j);
      await until(() => /clock is \d+ ms ahead of the store's/.test(j.log()), { timeoutMs: 10_000, what: () => `J's log to report its clock:\n${j.log()}` });

      // While skewed, alone, J takes a task but runs nothing: it is stored unleased and waits.
      const early = `${name}-JS`;
      const earlyId = await submitInvoice(j.url, invoiceArgs(early, [{ lineId: 'a', amount: 41 }]));
      await new Promise((resolve) => setTimeout(resolve, 2 * LEASE_MS)); // fault parameter: two leases skewed
      const waiting = await untilTask(
        () => j.url,
        earlyId,
        () => true,
        'read',
      );
      assert.equal(waiting.status, 'working', `nobody runs it while J is skewed: ${JSON.stringify(waiting)}`);
      assert.equal(Object.keys(waiting.inputRequests ?? {}).length, 0, `not even validated and asked: ${JSON.stringify(waiting)}`);

      // J's clock is fixed: it says so, runs the waiting task, and new ones (alone: nobody else could).
      clock.set('+0');
      await until(() => /clock agrees with the store's again/.test(j.log()), {
        timeoutMs: 10_000,
        what: () => `J's log to report its clock is back:\n${j.log()}`,
      });
      await approve(j.url, earlyId);
      const back = `${name}-JB`;
      const backPayOn = new Date(Date.now() + 2000).toISOString();
      const backId = await submitInvoice(j.url, invoiceArgs(back, [{ lineId: 'a', amount: 40, payOn: backPayOn }]));
      await approve(j.url, backId);
      for (const taskId of [earlyId, backId])
        await untilTask(
          () => j.url,
          taskId,
          (task) => task.status === 'completed',
          'completed',
          20_000,
        );
      const attempts = ledger.attempts(`${name}-J`);
      assert.deepEqual(
        attempts.map((r) => `${r.invoice_id}/${r.line_id} by ${r.pid}`).sort(),
        [`${back}/a by ${j.pid}`, `${early}/a by ${j.pid}`],
        `J runs tasks again once its clock is back:\n${describeAttempts(attempts)}`,
      );
      assert.ok(ms(attempts.find((r) => r.invoice_id === back)!.attempted_at) >= ms(backPayOn), describeAttempts(attempts));
    });
  });
}
