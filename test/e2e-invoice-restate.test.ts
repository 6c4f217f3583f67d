/**
 * End to end on Restate: the invoice demo (`examples/invoice/main.ts --executor restate`) as a child
 * process on a real restate-server (from the npm package, free ports, temp dir), driven by an MCP
 * client as e2e-invoice-crash.test.ts does. The demo is SIGKILLed while invoices wait for approval
 * and again while an approved invoice waits for a line's payOn, and restarted each time on the same
 * endpoint port; approvals come from new connections. Every invoice must finish; the ledger must
 * show every approved line paid exactly once — one payment row and one payment attempt
 * (`payment_attempts`) per line — never before its payOn, and nothing for rejected, cancelled or
 * invalid invoices.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, it } from 'node:test';
import Database from 'better-sqlite3';
import { startDemo, type DemoProcess } from './helpers/demo-process.js';
import { RawMcpClient } from './helpers/raw-client.js';
import { freePort, startRestateServer, type RestateServer } from './helpers/restate-server.js';
import { until } from './helpers/until.js';

const dir = mkdtempSync(join(tmpdir(), 'mcp-tasks-e2e-restate-'));
const running: DemoProcess[] = [];
let restate: RestateServer | undefined;
after(async () => {
  for (const p of running) await p.kill();
  await restate?.stop();
  rmSync(dir, { recursive: true, force: true });
});

const erpPath = join(dir, 'erp.json');
writeFileSync(
  erpPath,
  JSON.stringify({
    vendors: [
      { vendorId: 'V1', name: 'Acme', currency: 'EUR', active: true },
      { vendorId: 'V2', name: 'Dormant', currency: 'EUR', active: false },
    ],
    purchaseOrders: [
      { poNumber: 'PO1', vendorId: 'V1', currency: 'EUR', amount: 100000 },
      { poNumber: 'PO2', vendorId: 'V2', currency: 'EUR', amount: 100000 },
    ],
  }),
);

async function boot(endpointPort: number): Promise<{ demo: DemoProcess; client: RawMcpClient }> {
  const demo = await startDemo([
    '--store',
    `sqlite:${join(dir, 'invoice.db')}`,
    '--erp',
    erpPath,
    '--poll-interval',
    '100',
    '--executor',
    'restate',
    '--restate-ingress',
    restate!.ingressUrl,
    '--restate-admin',
    restate!.adminUrl,
    '--restate-endpoint-port',
    String(endpointPort),
  ]);
  running.push(demo);
  const client = new RawMcpClient(demo.url);
  await client.initialize();
  return { demo, client };
}

/** Polls `tasks/get` (every 50 ms, up to 30 s) until `ok(task)`; resolves with the task. */
async function untilTask(client: RawMcpClient, taskId: string, ok: (task: any) => boolean, what: string): Promise<any> {
  let task: any;
  return until(
    async () => {
      task = (await client.request('tasks/get', { taskId })).result;
      return task && ok(task) && task;
    },
    { timeoutMs: 30_000, intervalMs: 50, what: () => `${what}: task ${taskId} is ${JSON.stringify(task)}` },
  );
}

const approve = async () => ({ action: 'accept', content: { decision: 'approve', comment: 'ok' } });
const reject = async () => ({ action: 'accept', content: { decision: 'reject', comment: 'no' } });

it('survives SIGKILL while waiting for approval and for a payOn on Restate, paying each approved line exactly once', { timeout: 180_000 }, async (t) => {
  restate = await startRestateServer();
  const endpointPort = await freePort();
  // Far enough ahead for two server lives and a Restate start on a loaded machine (15 s was not, once).
  const payOn = new Date(Date.now() + 30_000).toISOString();
  const invoice = (invoiceId: string, lines: object[], vendorId = 'V1', poNumber = 'PO1') => ({
    invoice: { invoiceId, vendorId, poNumber, currency: 'EUR', issuedOn: '2026-11-01', lines },
  });
  const submissions = {
    A: invoice('INV-A', [
      { lineId: '1', description: 'chairs', amount: 100.5 },
      { lineId: '2', description: 'desks', amount: 200 },
    ]),
    B: invoice('INV-B', [
      { lineId: 'now', description: 'setup', amount: 50 },
      { lineId: 'later', description: 'subscription', amount: 75.25, payOn },
    ]),
    C: invoice('INV-C', [{ lineId: '1', description: 'rejected', amount: 10 }]),
    D: invoice('INV-D', [{ lineId: '1', description: 'cancelled', amount: 20 }]),
    E: invoice('INV-E', [{ lineId: '1', description: 'inactive vendor', amount: 30 }], 'V2', 'PO2'),
  };

  // Life 1: submit everything as tasks; let them reach the approval question; SIGKILL.
  let { demo, client } = await boot(endpointPort);
  const ids: Record<string, string> = {};
  for (const [key, args] of Object.entries(submissions)) {
    const res = await client.request('tools/call', { name: 'process_invoice', arguments: args, task: { ttl: 3_600_000 } });
    assert.ok(res.result?.task?.taskId, JSON.stringify(res));
    ids[key] = res.result.task.taskId;
  }
  for (const key of ['A', 'B', 'C', 'D']) await untilTask(client, ids[key]!, (t) => t.status === 'input_required', `${key} awaits approval`);
  const invalid = await untilTask(client, ids.E!, (t) => t.status === 'failed', 'E fails validation');
  assert.match(invalid.statusMessage, /not active/);
  await demo.kill();

  // Life 2: a new process and connection on the same endpoint port; cancel D; approve B, which pays
  // its first line and then waits durably (a Restate timer) for the payOn of the second; SIGKILL then.
  ({ demo, client } = await boot(endpointPort));
  assert.match(demo.log(), /resumed 4 task\(s\)/);
  for (const key of ['A', 'B', 'C', 'D']) assert.equal((await client.request('tasks/get', { taskId: ids[key] })).result.status, 'input_required');
  assert.equal((await client.request('tasks/cancel', { taskId: ids.D })).result.status, 'cancelled');
  const bWaiting = client.request('tasks/result', { taskId: ids.B }, approve).catch(() => undefined); // dies with the server
  const waiting = await untilTask(client, ids.B!, (t) => t.status === 'working' && /waiting until/i.test(t.statusMessage ?? ''), 'B waits for payOn');
  assert.match(waiting.statusMessage, /line later/);
  const ledger = () => new Database(join(dir, 'ledger.db'), { readonly: true });
  const paidBefore = ledger().prepare(`SELECT line_id, paid_at FROM payments WHERE invoice_id = 'INV-B'`).all() as { line_id: string; paid_at: string }[];
  assert.deepEqual(
    paidBefore.map((p) => p.line_id),
    ['now'],
    'the payOn line is not paid early',
  );
  await demo.kill();
  await bWaiting;

  // Life 3: approve A and reject C from yet another connection; B finishes after its payOn.
  const booting = Date.now();
  ({ demo, client } = await boot(endpointPort));
  const bootMs = Date.now() - booting;
  const answering = Date.now();
  const a = await client.request('tasks/result', { taskId: ids.A }, approve);
  const approvalToPaidMs = Date.now() - answering;
  assert.equal(a.result?.structuredContent?.status, 'paid', JSON.stringify(a));
  assert.deepEqual(a.result._meta['io.modelcontextprotocol/related-task'], { taskId: ids.A });
  const c = await client.request('tasks/result', { taskId: ids.C }, reject);
  assert.equal(c.result?.structuredContent?.status, 'rejected', JSON.stringify(c));
  const b = await client.request('tasks/result', { taskId: ids.B });
  assert.equal(b.result?.structuredContent?.status, 'paid', JSON.stringify(b));
  const d = await client.request('tasks/result', { taskId: ids.D });
  assert.equal(d.error?.code, -32602, 'a cancelled task has no result');
  for (const [key, status] of Object.entries({ A: 'completed', B: 'completed', C: 'completed', D: 'cancelled', E: 'failed' })) {
    assert.equal((await client.request('tasks/get', { taskId: ids[key] })).result.status, status, key);
  }

  // The ledger: approved lines exactly once, none before payOn, nothing else.
  const listed = (await client.request('tools/call', { name: 'list_payments', arguments: {} })).result.structuredContent.payments as any[];
  const keys = listed.map((p) => `${p.invoiceId}/${p.lineId}`).sort();
  assert.deepEqual(keys, ['INV-A/1', 'INV-A/2', 'INV-B/later', 'INV-B/now']);
  const later = listed.find((p) => p.lineId === 'later');
  assert.ok(Date.parse(later.paidAt) >= Date.parse(payOn), `paid at ${later.paidAt}, payOn ${payOn}`);
  t.diagnostic(
    `restart to MCP-ready (store, endpoint, registration, recover): ${bootMs} ms; A approved to paid (2 lines): ${approvalToPaidMs} ms; ` +
      `B's payOn line paid ${Date.parse(later.paidAt) - Date.parse(payOn)} ms after its payOn (process killed during the wait)`,
  );
  const now = listed.find((p) => p.lineId === 'now');
  assert.equal(now.paidAt, paidBefore[0]!.paid_at, 'the line paid before the crash was not paid again');
  const db = ledger();
  const rows = db.prepare(`SELECT invoice_id, line_id, COUNT(*) AS n FROM payments GROUP BY invoice_id, line_id`).all() as { n: number }[];
  assert.ok(
    rows.every((r) => r.n === 1),
    JSON.stringify(rows),
  );
  // Side-effect attempts that reached the ledger: one per paid line, none refused, none for C, D, E.
  const attempts = db.prepare(`SELECT invoice_id, line_id, outcome, fencing_token FROM payment_attempts ORDER BY invoice_id, line_id`).all() as {
    invoice_id: string;
    line_id: string;
    outcome: string;
  }[];
  assert.deepEqual(
    attempts.map((r) => `${r.invoice_id}/${r.line_id}`),
    ['INV-A/1', 'INV-A/2', 'INV-B/later', 'INV-B/now'],
    `one payment attempt per approved line: ${JSON.stringify(attempts)}`,
  );
  db.close();
  await demo.kill();
});
