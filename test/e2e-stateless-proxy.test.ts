/** Two stateless instances on one PostgreSQL store behind a round-robin proxy serve one client. */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, it } from 'node:test';
import { connectTaskClient } from '../src/client/connect.js';
import { startDemo, type DemoProcess } from './helpers/demo-process.js';
import { RawMcpClient } from './helpers/raw-client.js';
import { startRoundRobinProxy } from './helpers/round-robin-proxy.js';
import { dropSchemas, PG_URL, withParam } from './helpers/services.js';

const dir = mkdtempSync(join(tmpdir(), 'mcp-tasks-proxy-'));
const schema = `mcpt_proxy_${randomBytes(3).toString('hex')}`;
const running: DemoProcess[] = [];
after(async () => {
  for (const p of running) await p.kill();
  rmSync(dir, { recursive: true, force: true });
  await dropSchemas(schema);
});

it('two stateless instances behind a round-robin proxy serve one client in both eras', { timeout: 90_000 }, async () => {
  const store = withParam(PG_URL, 'schema', schema);
  const ledger = join(dir, 'ledger.db');
  for (const id of ['S1', 'S2'])
    running.push(await startDemo(['--stateless', '--store', store, '--ledger', ledger, '--instance-id', id, '--poll-interval', '100']));
  const proxy = await startRoundRobinProxy(running.map((d) => d.url));
  try {
    // 2026-07-28 through the official ext-tasks requester: every request may land on either instance.
    const tc = await connectTaskClient(proxy.url, {
      protocolVersion: '2026-07-28',
      answer: async () => ({ action: 'accept', content: { decision: 'approve' } }),
    });
    const invoice = JSON.parse(readFileSync('examples/invoice/data/invoices/INV-2026-0001.json', 'utf8'));
    const execution = await tc.session.callTool('process_invoice', { invoice }, { task: { preference: 'prefer' } });
    assert.equal(execution.kind, 'task');
    const { outcome } = await execution.settle();
    assert.equal(outcome.status, 'completed');
    assert.equal((outcome as { result: any }).result.structuredContent.status, 'paid');
    await tc.close();

    // 2025-11-25 without sessions: create on one instance, read on the other.
    const legacy = new RawMcpClient(proxy.url);
    await legacy.initialize();
    assert.equal(legacy.sessionId, undefined, 'no session in stateless mode');
    const created = await legacy.request('tools/call', { name: 'export_payments_report', arguments: { format: 'csv' }, task: {} });
    const taskId = created.result.task.taskId;
    const result = await legacy.request('tasks/result', { taskId });
    assert.match(result.result.content[0].text, /^invoiceId,lineId,amount,currency,paidAt\nINV-2026-0001,1,4188.00,EUR/);
    assert.equal((await legacy.request('tasks/get', { taskId })).result.status, 'completed');
    assert.ok(
      proxy.served.every((n) => n > 3),
      `both instances served requests: ${proxy.served.join(', ')}`,
    );
  } finally {
    await proxy.close();
  }
});
