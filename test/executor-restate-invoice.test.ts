/**
 * End to end on Restate: the invoice workflow (examples/invoice) run by the Restate executor in a
 * child process (test/helpers/restate-invoice-child.ts), on a real restate-server; the process is
 * SIGKILLed while invoices wait for approval and again while an approved invoice waits for a line's
 * payOn, and restarted each time. The ledger must show every approved line paid exactly once and
 * never before its payOn, and nothing paid for rejected, cancelled or invalid invoices.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, it } from 'node:test';
import Database from 'better-sqlite3';
import { startService, type ServiceProcess } from './helpers/restate-process.js';
import { freePort, startRestateServer, type RestateServer } from './helpers/restate-server.js';
import { until } from './helpers/until.js';

const dir = mkdtempSync(join(tmpdir(), 'mcp-tasks-restate-invoice-'));
const running: ServiceProcess[] = [];
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
const ledgerPath = join(dir, 'ledger.db');

async function boot(endpointPort: number): Promise<ServiceProcess> {
  const service = await startService({
    script: 'test/helpers/restate-invoice-child.ts',
    storePath: join(dir, 'invoice.db'),
    ingressUrl: restate!.ingressUrl,
    adminUrl: restate!.adminUrl,
    endpointPort,
    env: { LEDGER_PATH: ledgerPath, ERP_PATH: erpPath },
  });
  running.push(service);
  return service;
}

async function untilTask(service: ServiceProcess, taskId: string, ok: (task: any) => boolean, what: string): Promise<any> {
  let task: any;
  return until(
    async () => {
      task = await service.task(taskId).catch(() => undefined);
      return task && ok(task) && task;
    },
    { timeoutMs: 30_000, intervalMs: 100, what: () => `${what}: task ${taskId} is ${JSON.stringify(task)}` },
  );
}

/** Answers the task's one outstanding question. */
async function decide(service: ServiceProcess, taskId: string, decision: 'approve' | 'reject'): Promise<void> {
  const task = await service.task(taskId);
  const [key] = Object.keys(task.inputRequests);
  assert.ok(key, `task ${taskId} asks nothing: ${JSON.stringify(task)}`);
  const { taken } = await service.post('/answer', { taskId, key, response: { action: 'accept', content: { decision, comment: 'ok' } } });
  assert.deepEqual(taken, [key]);
}

it('survives SIGKILL while waiting for approval and for a payOn, paying each approved line exactly once', { timeout: 150_000 }, async () => {
  restate = await startRestateServer();
  const endpointPort = await freePort();
  const payOn = new Date(Date.now() + 12_000).toISOString();
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

  // Life 1: submit everything; let the invoices reach the approval question; SIGKILL.
  let service = await boot(endpointPort);
  const ids: Record<string, string> = {};
  for (const [key, args] of Object.entries(submissions)) ids[key] = (await service.post('/submit', { tool: 'process_invoice', arguments: args })).taskId;
  for (const key of ['A', 'B', 'C', 'D']) await untilTask(service, ids[key]!, (t) => t.status === 'input_required', `${key} awaits approval`);
  const invalid = await untilTask(service, ids.E!, (t) => t.status === 'failed', 'E fails validation');
  assert.match(invalid.statusMessage, /not active/);
  await service.kill();

  // Life 2: cancel D; approve B, which pays its first line and waits durably for the second's payOn; SIGKILL then.
  service = await boot(endpointPort);
  assert.match(service.log(), /resumed 4 task\(s\)/);
  for (const key of ['A', 'B', 'C', 'D']) assert.equal((await service.task(ids[key]!)).status, 'input_required');
  assert.equal((await service.post('/cancel', { taskId: ids.D })).status, 'cancelled');
  await decide(service, ids.B!, 'approve');
  const waiting = await untilTask(service, ids.B!, (t) => t.status === 'working' && /waiting until/i.test(t.statusMessage ?? ''), 'B waits for payOn');
  assert.match(waiting.statusMessage, /line later/);
  const ledger = () => new Database(ledgerPath, { readonly: true });
  const paidBefore = ledger().prepare(`SELECT line_id, paid_at FROM payments WHERE invoice_id = 'INV-B'`).all() as { line_id: string; paid_at: string }[];
  assert.deepEqual(
    paidBefore.map((p) => p.line_id),
    ['now'],
    'the payOn line is not paid early',
  );
  await service.kill();

  // Life 3: approve A, reject C; B finishes after its payOn.
  service = await boot(endpointPort);
  await decide(service, ids.A!, 'approve');
  await decide(service, ids.C!, 'reject');
  const a = await untilTask(service, ids.A!, (t) => t.status === 'completed', 'A paid');
  assert.equal(a.outcome.result.structuredContent.status, 'paid');
  const c = await untilTask(service, ids.C!, (t) => t.status === 'completed', 'C rejected');
  assert.equal(c.outcome.result.structuredContent.status, 'rejected');
  const b = await untilTask(service, ids.B!, (t) => t.status === 'completed', 'B paid after its payOn');
  assert.equal(b.outcome.result.structuredContent.status, 'paid', JSON.stringify(b));
  for (const [key, status] of Object.entries({ A: 'completed', B: 'completed', C: 'completed', D: 'cancelled', E: 'failed' }))
    assert.equal((await service.task(ids[key]!)).status, status, key);

  // The ledger: approved lines exactly once, none before payOn, nothing else.
  const rows = ledger().prepare(`SELECT invoice_id, line_id, paid_at FROM payments ORDER BY invoice_id, line_id`).all() as {
    invoice_id: string;
    line_id: string;
    paid_at: string;
  }[];
  assert.deepEqual(
    rows.map((r) => `${r.invoice_id}/${r.line_id}`),
    ['INV-A/1', 'INV-A/2', 'INV-B/later', 'INV-B/now'],
    'each approved line paid exactly once, nothing else',
  );
  const later = rows.find((r) => r.line_id === 'later')!;
  assert.ok(Date.parse(later.paid_at) >= Date.parse(payOn), `paid at ${later.paid_at}, payOn ${payOn}`);
  assert.equal(rows.find((r) => r.line_id === 'now')!.paid_at, paidBefore[0]!.paid_at, 'the line paid before the crash was not paid again');
  await service.kill();
});
