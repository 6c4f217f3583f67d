/**
 * Three demo instances on one shared store (PostgreSQL, then Redis), invoices submitted round-robin
 * over 2026-07-28 (stateless: any instance answers any request). The instance holding an invoice
 * that waits on a payOn timer — and others waiting for approval — is SIGKILLed; the survivors take
 * its tasks over when the leases expire and finish every task. The shared ledger must show each
 * approved line paid exactly once, none before its payOn, nothing for rejected or cancelled ones.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import Database from 'better-sqlite3';
import { Redis } from 'ioredis';
import { ENGINE_ACCESS } from '../src/core/access.js';
import { openStore } from '../src/store/open-store.js';
import { startDemo, type DemoProcess } from './helpers/demo-process.js';
import { ModernRawClient } from './helpers/modern-client.js';
import { dropSchemas, PG_URL, REDIS_URL, withParam } from './helpers/services.js';
import { until } from './helpers/until.js';

const dir = mkdtempSync(join(tmpdir(), 'mcp-tasks-multi-'));
const run = randomBytes(3).toString('hex');
const running: DemoProcess[] = [];
after(async () => {
  for (const p of running) await p.kill();
  rmSync(dir, { recursive: true, force: true });
  await dropSchemas(`mcpt_multi_${run}`);
  const redis = new Redis(REDIS_URL);
  const keys = await redis.keys(`mcpt-multi-${run}*`);
  if (keys.length > 0) await redis.del(...keys);
  await redis.quit();
});

const erpPath = join(dir, 'erp.json');
writeFileSync(
  erpPath,
  JSON.stringify({
    vendors: [{ vendorId: 'V1', name: 'Acme', currency: 'EUR', active: true }],
    purchaseOrders: [{ poNumber: 'PO1', vendorId: 'V1', currency: 'EUR', amount: 1000000 }],
  }),
);

const stores = [
  { name: 'postgres', url: withParam(PG_URL, 'schema', `mcpt_multi_${run}`) },
  { name: 'redis', url: withParam(REDIS_URL, 'prefix', `mcpt-multi-${run}`) },
];

for (const { name, url } of stores) {
  describe(`three instances on ${name}`, () => {
    it('survive the SIGKILL of one instance: every task ends, every approved line paid exactly once', { timeout: 120_000 }, async () => {
      const ledger = join(dir, `${name}-ledger.db`);
      const instances: DemoProcess[] = [];
      for (const id of ['A', 'B', 'C']) {
        const demo = await startDemo([
          '--store',
          url,
          '--ledger',
          ledger,
          '--erp',
          erpPath,
          '--instance-id',
          `${name}-${id}`,
          '--lease-ms',
          '1500',
          '--poll-interval',
          '100',
        ]);
        running.push(demo);
        instances.push(demo);
      }
      let next = 0;
      const clients = () => instances.filter((d) => d.child.exitCode === null && d.child.signalCode === null).map((d) => new ModernRawClient(d.url));
      const anyClient = () => {
        const alive = clients();
        return alive[next++ % alive.length]!;
      };
      /** Polls `tasks/get` on any live instance (every 50 ms, up to 30 s) until `ok(task)`; resolves with the task. */
      const untilTask = (taskId: string, ok: (t: any) => boolean, what: string) => {
        let task: any;
        return until(
          async () => {
            task = (await anyClient().request('tasks/get', { taskId })).result;
            return task && ok(task) && task;
          },
          { timeoutMs: 30_000, intervalMs: 50, what: () => `${what}: task ${taskId} is ${JSON.stringify(task)}` },
        );
      };

      const payOn = new Date(Date.now() + 9000).toISOString();
      const invoice = (id: string, lines: object[]) => ({
        invoice: { invoiceId: `${name}-${id}`, vendorId: 'V1', poNumber: 'PO1', currency: 'EUR', issuedOn: '2026-11-20', lines },
      });
      const plan = {
        I1: invoice('I1', [{ lineId: 'a', description: 'x', amount: 10 }]),
        I2: invoice('I2', [
          { lineId: 'a', description: 'x', amount: 20 },
          { lineId: 'b', description: 'y', amount: 21 },
        ]),
        I3: invoice('I3', [{ lineId: 'a', description: 'x', amount: 30 }]),
        I4: invoice('I4', [
          { lineId: 'now', description: 'x', amount: 40 },
          { lineId: 'later', description: 'y', amount: 41, payOn },
        ]),
        I5: invoice('I5', [{ lineId: 'a', description: 'rejected', amount: 50 }]),
        I6: invoice('I6', [{ lineId: 'a', description: 'cancelled', amount: 60 }]),
      };
      const ids: Record<string, string> = {};
      for (const [key, args] of Object.entries(plan)) {
        const res = await anyClient().request('tools/call', { name: 'process_invoice', arguments: args });
        assert.equal(res.result?.resultType, 'task', JSON.stringify(res));
        ids[key] = res.result.taskId;
      }
      const questions: Record<string, string> = {};
      for (const key of Object.keys(plan)) {
        const task = await untilTask(ids[key]!, (t) => t.status === 'input_required', `${key} awaits approval`);
        questions[key] = Object.keys(task.inputRequests)[0]!;
      }
      const approve = { action: 'accept', content: { decision: 'approve' } };
      await anyClient().request('tasks/update', { taskId: ids.I4, inputResponses: { [questions.I4!]: approve } });
      await untilTask(ids.I4!, (t) => t.status === 'working' && /waiting until/i.test(t.statusMessage ?? ''), 'I4 waits for payOn');

      // Kill whoever executes I4 (its timer) — it holds approval waits too, as tasks are spread.
      const store = openStore(url);
      const holder = (await store.get(ids.I4!, ENGINE_ACCESS)).lease?.holder;
      const victim = instances.find((d) => holder === `${name}-${['A', 'B', 'C'][instances.indexOf(d)]}`);
      assert.ok(victim, `lease holder ${holder}`);
      const victimTasks = (await Promise.all(Object.values(ids).map((id) => store.get(id, ENGINE_ACCESS)))).filter((t) => t.lease?.holder === holder).length;
      const paidBefore = new Database(ledger, { readonly: true }).prepare(`SELECT line_id, paid_at FROM payments WHERE invoice_id = ?`).all(`${name}-I4`) as {
        line_id: string;
        paid_at: string;
      }[];
      assert.deepEqual(
        paidBefore.map((p) => p.line_id),
        ['now'],
      );
      await victim.kill();

      for (const key of ['I1', 'I2', 'I3']) await anyClient().request('tasks/update', { taskId: ids[key], inputResponses: { [questions[key]!]: approve } });
      await anyClient().request('tasks/update', { taskId: ids.I5, inputResponses: { [questions.I5!]: { action: 'accept', content: { decision: 'reject' } } } });
      await anyClient().request('tasks/cancel', { taskId: ids.I6 });

      const expected: Record<string, string> = { I1: 'completed', I2: 'completed', I3: 'completed', I4: 'completed', I5: 'completed', I6: 'cancelled' };
      for (const [key, status] of Object.entries(expected)) await untilTask(ids[key]!, (t) => t.status === status, `${key} → ${status}`);
      for (const key of ['I1', 'I2', 'I3', 'I4']) {
        const task = (await anyClient().request('tasks/get', { taskId: ids[key] })).result;
        assert.equal(task.result.structuredContent.status, 'paid', key);
      }
      assert.equal((await anyClient().request('tasks/get', { taskId: ids.I5 })).result.result.structuredContent.status, 'rejected');
      assert.ok(victimTasks >= 1);

      const rows = new Database(ledger, { readonly: true })
        .prepare(`SELECT invoice_id, line_id, paid_at FROM payments WHERE invoice_id LIKE ? ORDER BY invoice_id, line_id`)
        .all(`${name}-%`) as {
        invoice_id: string;
        line_id: string;
        paid_at: string;
      }[];
      assert.deepEqual(
        rows.map((r) => `${r.invoice_id.slice(name.length + 1)}/${r.line_id}`),
        ['I1/a', 'I2/a', 'I2/b', 'I3/a', 'I4/later', 'I4/now'],
        'each approved line exactly once; nothing for I5 and I6',
      );
      const later = rows.find((r) => r.line_id === 'later')!;
      assert.ok(Date.parse(later.paid_at) >= Date.parse(payOn), `paid ${later.paid_at} before payOn ${payOn}`);
      assert.equal(rows.find((r) => r.line_id === 'now')!.paid_at, paidBefore[0]!.paid_at, 'the line paid before the crash was not paid again');
      await store.close();
      for (const demo of instances) await demo.kill();
    });
  });
}
