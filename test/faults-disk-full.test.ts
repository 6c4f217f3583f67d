/**
 * Issue 23, fault 5: the SQLite store's disk fills up (a small tmpfs, filled to the last byte) while
 * approved invoices wait for payOns that then fall due; later the space is freed. Without restarting
 * the process, no task may stay `working` with nobody running it: every invoice completes, each line
 * paid exactly once, none before its payOn. The ledger lives on another disk (the payment system is
 * not the thing that is full). Needs `mount -t tmpfs` (root): skipped with the reason where it is not
 * permitted, except in CI, where that is a failure.
 */
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { it } from 'node:test';
import { startDemo } from './helpers/demo-process.js';
import { approve, describeAttempts, faultSuite, invoiceArgs, LedgerReader, ms, submitInvoice, untilTask, type Line } from './helpers/invoice-faults.js';
import { ModernRawClient } from './helpers/modern-client.js';
import { mountTmpfs, type Tmpfs } from './helpers/tmpfs.js';
import { until } from './helpers/until.js';

const { dir, erp, running, afterKill } = faultSuite('disk');
const mounts: Tmpfs[] = [];
afterKill(() => {
  for (const m of mounts) m.unmount();
});

it(
  'a full disk under the SQLite store while timers fall due: once space is freed, every invoice completes without a restart, each line paid once',
  { timeout: 90_000 },
  async (t) => {
    const disk = mountTmpfs(t, '8m');
    if (!disk) return;
    mounts.push(disk);
    const ledgerPath = join(dir, 'ledger.db');
    const ledger = new LedgerReader(ledgerPath);
    const demo = await startDemo(['--store', `sqlite:${join(disk.dir, 'tasks.db')}`, '--ledger', ledgerPath, '--erp', erp, '--poll-interval', '100']);
    running.push(demo);

    // Approved invoices, each with a line paid at once and lines due a few seconds ahead.
    const t0 = Date.now();
    const plan: Record<string, Line[]> = {};
    for (let i = 0; i < 4; i++)
      plan[`D${i}`] = [
        { lineId: 'now', amount: 10 + i },
        { lineId: 'a', amount: 20 + i, payOn: new Date(t0 + 4000 + i * 200).toISOString() },
        { lineId: 'b', amount: 30 + i, payOn: new Date(t0 + 6000 + i * 200).toISOString() },
      ];
    const ids: Record<string, string> = {};
    for (const [invoiceId, lines] of Object.entries(plan)) ids[invoiceId] = await submitInvoice(demo.url, invoiceArgs(invoiceId, lines));
    for (const taskId of Object.values(ids)) await approve(demo.url, taskId);
    for (const taskId of Object.values(ids))
      await untilTask(
        () => demo.url,
        taskId,
        (task) => task.status === 'working' && /waiting until/i.test(task.statusMessage ?? ''),
        'waits for payOn',
      );

    // Fill the disk before the first payOn; keep it full until every payOn has fallen due (plus 2 s).
    const firstDue = Math.min(...Object.values(plan).flatMap((lines) => lines.filter((l) => l.payOn).map((l) => ms(l.payOn!))));
    const lastDue = Math.max(...Object.values(plan).flatMap((lines) => lines.filter((l) => l.payOn).map((l) => ms(l.payOn!))));
    assert.ok(Date.now() < firstDue - 500, `the set-up took too long (${Date.now() - t0} ms): the disk must be full before the first payOn`);
    const filled = disk.fill();
    t.diagnostic(`filled the tmpfs with ${filled} bytes; ${disk.free()} bytes left`);
    await until(() => Date.now() >= lastDue + 2000, { timeoutMs: 15_000, intervalMs: 100 });
    assert.match(demo.log(), /task store unavailable/, `the full disk was met by the store (SQLITE_FULL) while the timers fell due:\n${demo.log()}`);
    // Reads still work on a full disk: every task is still reported, none failed or ended for it.
    for (const taskId of Object.values(ids)) {
      const task = (await new ModernRawClient(demo.url).request('tasks/get', { taskId })).result;
      assert.ok(task && task.status === 'working', `during the full disk: ${JSON.stringify(task)}`);
    }
    const paidWhileFull = ledger.payments('D').length;
    // A write asked for now is refused as retryable (HTTP 503, -32010), not as an internal error.
    const refused = await new ModernRawClient(demo.url).send('tools/call', {
      name: 'process_invoice',
      arguments: invoiceArgs('D-full', [{ lineId: 'a', amount: 1 }]),
    });
    const refusedBody = (await refused.json()) as any;
    const shown = `HTTP ${refused.status}, Retry-After ${refused.headers.get('retry-after')}: ${JSON.stringify(refusedBody)}`;
    assert.equal(refusedBody.error?.code, -32010, shown);
    assert.equal(refused.status, 503, shown);
    assert.match(refused.headers.get('retry-after') ?? '', /^[1-9]\d*$/, shown);
    assert.match(demo.log(), /SQLITE_FULL|database or disk is full/, 'the outage log names the cause');

    // Space again: within a bound, every invoice completes — no restart.
    disk.release();
    const freedAt = Date.now();
    for (const taskId of Object.values(ids))
      await untilTask(
        () => demo.url,
        taskId,
        (task) => task.status === 'completed',
        'completes after the disk was freed',
        45_000,
      );
    t.diagnostic(
      `every invoice completed ${Date.now() - freedAt} ms after the space was freed; ${paidWhileFull} line(s) were in the ledger while the disk was full`,
    );
    assert.equal(demo.child.exitCode, null, 'the demo is still running');
    assert.match(demo.log(), /task store available again/);

    for (const [invoiceId, taskId] of Object.entries(ids)) {
      const task = (await new ModernRawClient(demo.url).request('tasks/get', { taskId })).result;
      assert.equal(task.result.structuredContent.status, 'paid', `${invoiceId}: ${JSON.stringify(task)}`);
    }
    const payments = ledger.payments('D');
    assert.deepEqual(
      payments.map((p) => `${p.invoice_id}/${p.line_id}`),
      Object.entries(plan).flatMap(([invoiceId, lines]) => lines.map((l) => `${invoiceId}/${l.lineId}`).sort()),
      'every line paid exactly once',
    );
    for (const p of payments) {
      const line = plan[p.invoice_id]!.find((l) => l.lineId === p.line_id)!;
      if (line.payOn) assert.ok(ms(p.paid_at) >= ms(line.payOn), `${p.invoice_id}/${p.line_id} paid at ${p.paid_at}, before its payOn ${line.payOn}`);
    }
    t.diagnostic(`attempts:\n${describeAttempts(ledger.attempts('D'))}`);
  },
);
