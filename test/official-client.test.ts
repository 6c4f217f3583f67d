/** The invoice server driven by the official SDK v2 client and the official ext-tasks requester. */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { TaskExecutionEvent } from '@modelcontextprotocol/ext-tasks/client';
import { taskId as toTaskId } from '@modelcontextprotocol/ext-tasks/core';
import { startInvoiceServer, type RunningInvoiceServer } from '../examples/invoice/server.js';
import { connectTaskClient, type TaskClient } from '../src/client/connect.js';

const invoice = (id: string) => JSON.parse(readFileSync(join('examples/invoice/data/invoices', `${id}.json`), 'utf8'));

describe('official SDK v2 client + ext-tasks requester', () => {
  let server: RunningInvoiceServer;
  let answers: unknown[];
  let asked: string[];
  let tc: TaskClient;

  before(async () => {
    server = await startInvoiceServer({ store: 'memory:', port: 0, policy: { pollIntervalMs: 50 }, log: () => undefined });
    answers = [];
    asked = [];
    tc = await connectTaskClient(server.url!, {
      answer: async (q) => {
        asked.push(q.message);
        // No queued answer: leave the question pending, like a human who has not decided yet.
        return answers.length > 0 ? (answers.shift() as never) : new Promise<never>(() => undefined);
      },
    });
  });
  after(async () => {
    await tc.close();
    await server.close();
  });

  it('sees the tasks capability and the tools taskSupport', () => {
    assert.equal(tc.session.capabilities.execution, true);
    assert.equal(tc.session.capabilities.cancellation, true);
    assert.equal(tc.tools.get('process_invoice')?.taskSupport, 'optional');
    assert.equal(tc.tools.get('export_payments_report')?.taskSupport, 'required');
    assert.equal(tc.tools.get('list_payments')?.taskSupport, undefined);
  });

  it('approves an invoice and gets the payments as the task result', async () => {
    answers.push({ action: 'accept', content: { decision: 'approve', comment: 'ok' } });
    const execution = await tc.session.callTool('process_invoice', { invoice: invoice('INV-2026-0001') }, { task: { preference: 'prefer' } });
    assert.equal(execution.kind, 'task');
    const statuses: string[] = [];
    const { outcome } = await execution.settle({ onEvent: (e: TaskExecutionEvent<unknown>) => void (e.type === 'task' && statuses.push(e.task.status)) });
    assert.equal(outcome.status, 'completed');
    assert.ok(statuses.includes('input_required'), `saw ${statuses.join(',')}`);
    assert.match(asked.at(-1)!, /Approve invoice INV-2026-0001 from Acme Office Supplies GmbH/);
    const result = (outcome as { result: any }).result;
    assert.equal(result.structuredContent.status, 'paid');
    assert.deepEqual(
      result.structuredContent.payments.map((p: any) => p.lineId),
      ['1', '2', '3'],
    );
    const listed = await tc.client.callTool({ name: 'list_payments', arguments: { invoiceId: 'INV-2026-0001' } });
    assert.equal((listed.structuredContent as any).payments.length, 3);
  });

  it('rejects an invoice: completed with a rejection, nothing paid', async () => {
    answers.push({ action: 'accept', content: { decision: 'reject', comment: 'duplicate' } });
    const execution = await tc.session.callTool('process_invoice', { invoice: invoice('INV-2026-0003') }, { task: { preference: 'prefer' } });
    const { outcome } = await execution.settle();
    assert.equal(outcome.status, 'completed');
    assert.equal((outcome as { result: any }).result.structuredContent.status, 'rejected');
    const listed = await tc.client.callTool({ name: 'list_payments', arguments: { invoiceId: 'INV-2026-0003' } });
    assert.deepEqual((listed.structuredContent as any).payments, []);
  });

  it('fails an invoice that does not pass ERP validation, naming the reason', async () => {
    const execution = await tc.session.callTool('process_invoice', { invoice: invoice('INV-2026-0005') }, { task: { preference: 'prefer' } });
    const { outcome } = await execution.settle();
    assert.equal(outcome.status, 'failed');
    assert.match((outcome as { error: Error }).error.message, /exceeds the remaining amount/);
  });

  it('cancels a task waiting for approval', async () => {
    const execution = await tc.session.callTool('process_invoice', { invoice: invoice('INV-2026-0002') }, { task: { preference: 'prefer' } });
    assert.equal(execution.kind, 'task');
    if (execution.kind !== 'task') return;
    const controller = tc.session.task(execution.handle.taskId);
    for (let i = 0; i < 100 && (await controller.snapshot()).status !== 'input_required'; i++) await new Promise((r) => setTimeout(r, 20));
    await execution.cancel();
    const { outcome } = await execution.settle();
    assert.equal(outcome.status, 'cancelled');
    assert.equal((await controller.snapshot()).status, 'cancelled');
    assert.equal((await controller.result()).status, 'cancelled');
  });

  it('runs a required task tool as a task', async () => {
    const execution = await tc.session.callTool('export_payments_report', { format: 'csv' }, { task: { preference: 'prefer' } });
    assert.equal(execution.kind, 'task');
    const { outcome } = await execution.settle();
    assert.equal(outcome.status, 'completed');
    assert.match(((outcome as { result: any }).result.content[0].text as string).split('\n')[0]!, /^invoiceId,lineId,amount,currency,paidAt$/);
  });

  it('reports unknown task ids as errors', async () => {
    await assert.rejects(tc.session.task(toTaskId('does-not-exist')).snapshot(), /not found/i);
  });
});
