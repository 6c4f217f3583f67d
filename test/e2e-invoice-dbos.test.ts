/**
 * End to end on DBOS: the invoice demo (`examples/invoice/main.ts --executor dbos --store
 * postgres://…`) as child processes, driven over MCP. (1) SIGKILLed while invoices wait for approval
 * and again while an approved invoice waits for a line's payOn, restarted each time: every invoice
 * finishes, each approved line is paid once (one attempt at the ledger, not merely one payment),
 * none before its payOn. (2) Two instances on one PostgreSQL: the holder is SIGKILLed while its
 * invoices wait for approval and for a payOn; the other finishes them within the lease plus a few
 * seconds. Each test has its own store schema and its own DBOS system database.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, it } from 'node:test';
import Database from 'better-sqlite3';
import pg from 'pg';
import { ENGINE_ACCESS } from '../src/core/access.js';
import { openStore } from '../src/store/open-store.js';
import { startDemo, type DemoProcess } from './helpers/demo-process.js';
import { ModernRawClient } from './helpers/modern-client.js';
import { RawMcpClient } from './helpers/raw-client.js';
import { dropSchemas, PG_URL, withParam } from './helpers/services.js';
import { until } from './helpers/until.js';

const LEASE_MS = 2000;
const dir = mkdtempSync(join(tmpdir(), 'mcp-tasks-e2e-dbos-'));
const run = randomBytes(3).toString('hex');
const running: DemoProcess[] = [];
const databases: string[] = [];
const schemas: string[] = [];

after(async () => {
  for (const p of running) await p.kill();
  rmSync(dir, { recursive: true, force: true });
  await dropSchemas(...schemas);
  const admin = new pg.Client({ connectionString: PG_URL });
  await admin.connect();
  for (const db of databases) await admin.query(`DROP DATABASE IF EXISTS ${db} WITH (FORCE)`).catch(() => undefined);
  await admin.end();
});

const erpPath = join(dir, 'erp.json');
writeFileSync(
  erpPath,
  JSON.stringify({
    vendors: [{ vendorId: 'V1', name: 'Acme', currency: 'EUR', active: true }],
    purchaseOrders: [{ poNumber: 'PO1', vendorId: 'V1', currency: 'EUR', amount: 1000000 }],
  }),
);

/** A store schema and a DBOS system database of this test's own. */
function corner(name: string): { store: string; dbos: string; ledger: string } {
  const schema = `mcpt_dbos_e2e_${name}_${run}`;
  const database = `dbos_e2e_${name}_${run}`;
  schemas.push(schema);
  databases.push(database);
  return { store: withParam(PG_URL, 'schema', schema), dbos: PG_URL.replace(/\/[^/?]+(\?.*)?$/, `/${database}`), ledger: join(dir, `${name}-ledger.db`) };
}

async function boot(where: { store: string; dbos: string; ledger: string }, extra: string[] = []): Promise<DemoProcess> {
  const demo = await startDemo([
    '--executor',
    'dbos',
    '--store',
    where.store,
    '--dbos-database',
    where.dbos,
    '--ledger',
    where.ledger,
    '--erp',
    erpPath,
    '--lease-ms',
    String(LEASE_MS),
    '--poll-interval',
    '100',
    ...extra,
  ]);
  running.push(demo);
  return demo;
}

const invoice = (invoiceId: string, lines: object[]) => ({
  invoice: { invoiceId, vendorId: 'V1', poNumber: 'PO1', currency: 'EUR', issuedOn: '2026-11-01', lines },
});

/** Polls `tasks/get` (every 50 ms, up to `timeoutMs`) until `ok(task)`; resolves with the task. */
async function untilTask(
  request: (taskId: string) => Promise<any>,
  taskId: string,
  ok: (task: any) => boolean,
  what: string,
  timeoutMs = 30_000,
): Promise<any> {
  let task: any;
  return until(
    async () => {
      task = await request(taskId);
      return task && ok(task) && task;
    },
    { timeoutMs, intervalMs: 50, what: () => `${what}: task ${taskId} is ${JSON.stringify(task)}` },
  );
}

/** The ledger's payments and attempts (every `pay` call that reached it) of invoices `prefix*`. */
function ledgerRows(path: string, prefix: string) {
  const db = new Database(path, { readonly: true });
  try {
    const payments = db.prepare(`SELECT invoice_id, line_id, paid_at FROM payments WHERE invoice_id LIKE ? ORDER BY invoice_id, line_id`).all(`${prefix}%`) as {
      invoice_id: string;
      line_id: string;
      paid_at: string;
    }[];
    const attempts = db
      .prepare(
        `SELECT invoice_id, line_id, COUNT(*) AS n FROM payment_attempts WHERE invoice_id LIKE ? GROUP BY invoice_id, line_id ORDER BY invoice_id, line_id`,
      )
      .all(`${prefix}%`) as { invoice_id: string; line_id: string; n: number }[];
    return { payments, attempts };
  } finally {
    db.close();
  }
}

const approve = async () => ({ action: 'accept', content: { decision: 'approve', comment: 'ok' } });
const reject = async () => ({ action: 'accept', content: { decision: 'reject', comment: 'no' } });

it('DBOS: survives SIGKILL while waiting for approval and for a payOn; each approved line paid once, none early', { timeout: 180_000 }, async () => {
  const where = corner('crash');
  const payOn = new Date(Date.now() + 15_000).toISOString();
  const plan = {
    A: invoice('CR-A', [
      { lineId: '1', description: 'chairs', amount: 100.5 },
      { lineId: '2', description: 'desks', amount: 200 },
    ]),
    B: invoice('CR-B', [
      { lineId: 'now', description: 'setup', amount: 50 },
      { lineId: 'later', description: 'subscription', amount: 75.25, payOn },
    ]),
    C: invoice('CR-C', [{ lineId: '1', description: 'rejected', amount: 10 }]),
  };
  const connect = async (demo: DemoProcess) => {
    const client = new RawMcpClient(demo.url);
    await client.initialize();
    return { client, get: async (taskId: string) => (await client.request('tasks/get', { taskId })).result };
  };

  // Life 1: submit; every invoice reaches the approval question; SIGKILL.
  let demo = await boot(where);
  let { client, get } = await connect(demo);
  const ids: Record<string, string> = {};
  for (const [key, args] of Object.entries(plan)) {
    const res = await client.request('tools/call', { name: 'process_invoice', arguments: args, task: { ttl: 3_600_000 } });
    assert.ok(res.result?.task?.taskId, JSON.stringify(res));
    ids[key] = res.result.task.taskId;
  }
  for (const key of Object.keys(plan)) await untilTask(get, ids[key]!, (t) => t.status === 'input_required', `${key} awaits approval`);
  await demo.kill();

  // Life 2 (a new process, a new executor id: its tasks wait for the dead one's leases to expire):
  // approve B, which pays its first line then waits durably for the payOn of the second; SIGKILL.
  demo = await boot(where);
  ({ client, get } = await connect(demo));
  for (const key of Object.keys(plan)) assert.equal((await get(ids[key]!)).status, 'input_required');
  const bWaiting = client.request('tasks/result', { taskId: ids.B }, approve).catch(() => undefined); // dies with the server
  const restarted = Date.now();
  const waiting = await untilTask(get, ids.B!, (t) => t.status === 'working' && /waiting until/i.test(t.statusMessage ?? ''), 'B waits for payOn');
  const resumedAfter = Date.now() - restarted;
  assert.match(waiting.statusMessage, /line later/);
  const before = ledgerRows(where.ledger, 'CR-');
  assert.deepEqual(
    before.payments.map((p) => `${p.invoice_id}/${p.line_id}`),
    ['CR-B/now'],
    'the payOn line is not paid early',
  );
  await demo.kill();
  await bWaiting;

  // Life 3: approve A and reject C from yet another connection; B finishes after its payOn.
  demo = await boot(where);
  ({ client, get } = await connect(demo));
  const a = await client.request('tasks/result', { taskId: ids.A }, approve);
  assert.equal(a.result?.structuredContent?.status, 'paid', JSON.stringify(a));
  const c = await client.request('tasks/result', { taskId: ids.C }, reject);
  assert.equal(c.result?.structuredContent?.status, 'rejected', JSON.stringify(c));
  const b = await client.request('tasks/result', { taskId: ids.B });
  assert.equal(b.result?.structuredContent?.status, 'paid', JSON.stringify(b));
  for (const key of Object.keys(plan)) assert.equal((await get(ids[key]!)).status, 'completed', key);

  const after = ledgerRows(where.ledger, 'CR-');
  assert.deepEqual(
    after.payments.map((p) => `${p.invoice_id}/${p.line_id}`),
    ['CR-A/1', 'CR-A/2', 'CR-B/later', 'CR-B/now'],
    'each approved line paid exactly once; nothing for the rejected invoice',
  );
  assert.deepEqual(
    after.attempts.map((r) => `${r.invoice_id}/${r.line_id}:${r.n}`),
    ['CR-A/1:1', 'CR-A/2:1', 'CR-B/later:1', 'CR-B/now:1'],
    'one payment attempt per line: no recorded step ran again after a SIGKILL',
  );
  const later = after.payments.find((p) => p.line_id === 'later')!;
  assert.ok(Date.parse(later.paid_at) >= Date.parse(payOn), `paid at ${later.paid_at}, payOn ${payOn}`);
  assert.equal(after.payments.find((p) => p.line_id === 'now')!.paid_at, before.payments[0]!.paid_at, 'the line paid before the crash was not paid again');
  console.log(`# restart with a new executor id: B resumed and reached its payOn wait ${resumedAfter} ms after the restart (lease ${LEASE_MS} ms)`);
  await demo.kill();
});

it(
  'DBOS: two instances on one PostgreSQL; SIGKILL the holder, the other finishes its invoices within the lease plus a few seconds',
  { timeout: 120_000 },
  async () => {
    const where = corner('pair');
    const [x, y] = [await boot(where, ['--instance-id', `x-${run}`]), await boot(where, ['--instance-id', `y-${run}`])];
    const cx = new ModernRawClient(x.url);
    const cy = new ModernRawClient(y.url);
    const get = async (client: ModernRawClient, taskId: string) => (await client.request('tasks/get', { taskId })).result;
    const payOn = new Date(Date.now() + 10_000).toISOString();
    const plan = {
      P1: invoice('PR-P1', [{ lineId: 'a', description: 'x', amount: 10 }]),
      P2: invoice('PR-P2', [
        { lineId: 'a', description: 'x', amount: 20 },
        { lineId: 'b', description: 'y', amount: 21 },
      ]),
      P3: invoice('PR-P3', [{ lineId: 'a', description: 'x', amount: 30 }]),
      P4: invoice('PR-P4', [
        { lineId: 'now', description: 'x', amount: 40 },
        { lineId: 'later', description: 'y', amount: 41, payOn },
      ]),
    };
    const ids: Record<string, string> = {};
    const questions: Record<string, string> = {};
    for (const [key, args] of Object.entries(plan)) {
      const res = await cx.request('tools/call', { name: 'process_invoice', arguments: args });
      assert.equal(res.result?.resultType, 'task', JSON.stringify(res));
      ids[key] = res.result.taskId;
    }
    for (const key of Object.keys(plan)) {
      const task = await untilTask(
        (id) => get(cx, id),
        ids[key]!,
        (t) => t.status === 'input_required',
        `${key} awaits approval`,
      );
      questions[key] = Object.keys(task.inputRequests)[0]!;
    }
    const approval = { action: 'accept', content: { decision: 'approve' } };
    await cx.request('tasks/update', { taskId: ids.P4, inputResponses: { [questions.P4!]: approval } });
    await untilTask(
      (id) => get(cx, id),
      ids.P4!,
      (t) => t.status === 'working' && /waiting until/i.test(t.statusMessage ?? ''),
      'P4 waits for payOn',
    );

    const store = openStore(where.store);
    try {
      for (const id of Object.values(ids)) assert.equal((await store.get(id, ENGINE_ACCESS)).lease?.holder, `x-${run}`, 'x holds every task');
    } finally {
      await store.close();
    }
    await x.kill();
    const killed = Date.now();
    for (const key of ['P1', 'P2', 'P3']) await cy.request('tasks/update', { taskId: ids[key], inputResponses: { [questions[key]!]: approval } });
    for (const key of ['P1', 'P2', 'P3'])
      await untilTask(
        (id) => get(cy, id),
        ids[key]!,
        (t) => t.status === 'completed',
        `${key} completes on y`,
        LEASE_MS + 15_000,
      );
    const took = Date.now() - killed;
    await untilTask(
      (id) => get(cy, id),
      ids.P4!,
      (t) => t.status === 'completed',
      'P4 completes on y after its payOn',
      30_000,
    );
    for (const key of Object.keys(plan)) assert.equal((await get(cy, ids[key]!)).result.structuredContent.status, 'paid', key);

    const rows = ledgerRows(where.ledger, 'PR-');
    assert.deepEqual(
      rows.payments.map((p) => `${p.invoice_id}/${p.line_id}`),
      ['PR-P1/a', 'PR-P2/a', 'PR-P2/b', 'PR-P3/a', 'PR-P4/later', 'PR-P4/now'],
    );
    assert.ok(
      rows.attempts.every((r) => r.n === 1),
      `one payment attempt per line: ${JSON.stringify(rows.attempts)}`,
    );
    const later = rows.payments.find((p) => p.line_id === 'later')!;
    assert.ok(Date.parse(later.paid_at) >= Date.parse(payOn), `paid at ${later.paid_at}, payOn ${payOn}`);
    const db = new Database(where.ledger, { readonly: true });
    const byPid = db.prepare(`SELECT invoice_id || '/' || line_id AS line, pid FROM payment_attempts WHERE invoice_id LIKE 'PR-%' ORDER BY line`).all() as {
      line: string;
      pid: number;
    }[];
    db.close();
    assert.deepEqual(
      byPid.map((r) => `${r.line}@${r.pid === x.pid ? 'x' : r.pid === y.pid ? 'y' : r.pid}`),
      ['PR-P1/a@y', 'PR-P2/a@y', 'PR-P2/b@y', 'PR-P3/a@y', 'PR-P4/later@y', 'PR-P4/now@x'],
      'the killed holder paid only what it had paid before the SIGKILL; the other instance paid the rest',
    );
    console.log(`# takeover: 3 invoices of the killed holder completed on the other instance ${took} ms after the SIGKILL (lease ${LEASE_MS} ms)`);
    assert.ok(took < LEASE_MS + 5000, `took ${took} ms`);
    await y.kill();
  },
);
