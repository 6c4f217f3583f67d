/** The invoice server driven by the official SDK v2 client and the official ext-tasks requester. */
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { Client, StreamableHTTPClientTransport } from '@modelcontextprotocol/client';
import * as z from 'zod';
import type { TaskExecutionEvent } from '@modelcontextprotocol/ext-tasks/client';
import { taskId as toTaskId } from '@modelcontextprotocol/ext-tasks/core';
import { startInvoiceServer, type RunningInvoiceServer } from '../examples/invoice/server.js';
import { silentLogger } from '../src/core/log.js';
import { connectTaskClient, type TaskClient } from '../src/client/connect.js';
import { until } from './helpers/until.js';

const invoice = (id: string) => JSON.parse(readFileSync(join('examples/invoice/data/invoices', `${id}.json`), 'utf8'));

for (const version of ['2025-11-25', '2026-07-28'] as const)
  describe(`official SDK v2 client + ext-tasks requester (${version === '2025-11-25' ? '2025-11-25' : '2026-07-28'})`, () => {
    let server: RunningInvoiceServer;
    let answers: unknown[];
    let asked: string[];
    let tc: TaskClient;

    before(async () => {
      server = await startInvoiceServer({ store: 'memory:', port: 0, policy: { pollIntervalMs: 50 }, logger: silentLogger });
      answers = [];
      asked = [];
      tc = await connectTaskClient(server.url!, {
        protocolVersion: version,
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

    it('negotiates the version and sees the tasks capability', () => {
      assert.equal(tc.protocolVersion, version);
      assert.equal(tc.session.capabilities.execution, true);
      assert.equal(tc.session.capabilities.cancellation, true);
      if (version === '2025-11-25') {
        assert.equal(tc.tools.get('process_invoice')?.taskSupport, 'optional');
        assert.equal(tc.tools.get('export_payments_report')?.taskSupport, 'required');
        assert.equal(tc.tools.get('list_payments')?.taskSupport, undefined);
      } else {
        assert.equal(tc.session.capabilities.inputResponses, true, 'tasks/update');
      }
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

    it('ends an invoice that does not pass ERP validation naming the reason (failed in 2025, completed with isError in 2026)', async () => {
      const execution = await tc.session.callTool('process_invoice', { invoice: invoice('INV-2026-0005') }, { task: { preference: 'prefer' } });
      const { outcome } = await execution.settle();
      if (version === '2025-11-25') {
        assert.equal(outcome.status, 'failed');
        assert.match((outcome as { error: Error }).error.message, /exceeds the remaining amount/);
      } else {
        assert.equal(outcome.status, 'completed');
        const result = (outcome as { result: any }).result;
        assert.equal(result.isError, true);
        assert.match(result.content[0].text, /exceeds the remaining amount/);
      }
    });

    it('cancels a task waiting for approval', async () => {
      const execution = await tc.session.callTool('process_invoice', { invoice: invoice('INV-2026-0002') }, { task: { preference: 'prefer' } });
      assert.equal(execution.kind, 'task');
      if (execution.kind !== 'task') return;
      const controller = tc.session.task(execution.handle.taskId);
      assert.equal(execution.serializeReference().generation, version === '2025-11-25' ? 'v1' : 'v2');
      await until(async () => (await controller.snapshot()).status === 'input_required', { what: 'the invoice to await approval' });
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

for (const version of ['2025-11-25', '2026-07-28'] as const)
  it(`a server restart between input_required and the answer (${version}): the task is resumed from its reference`, async () => {
    const dir = mkdtempSync(join(tmpdir(), 'mcp-tasks-official-'));
    const store = `sqlite:${join(dir, 'invoice.db')}`;
    let server = await startInvoiceServer({ store, port: 0, policy: { pollIntervalMs: 50 }, logger: silentLogger });
    const port = Number(new URL(server.url!).port);
    const first = await connectTaskClient(server.url!, { protocolVersion: version, answer: () => new Promise<never>(() => undefined) });
    const execution = await first.session.callTool('process_invoice', { invoice: invoice('INV-2026-0001') }, { task: { preference: 'prefer' } });
    assert.equal(execution.kind, 'task');
    if (execution.kind !== 'task') return;
    const reference = execution.serializeReference();
    const controller = first.session.task(execution.handle.taskId);
    await until(async () => (await controller.snapshot()).status === 'input_required', { what: 'the invoice to await approval' });
    await execution.detach();
    await first.client.close();
    await server.close();
    // One process plays both lives here: wait until fetch's keep-alive pool has seen the old sockets
    // close before reconnecting to the same port (separate client processes, like the CLI, never share it).
    await until(() => !process.getActiveResourcesInfo().includes('TCPSocketWrap'), { what: 'the sockets of the first life closed' });

    server = await startInvoiceServer({ store, port, policy: { pollIntervalMs: 50 }, logger: silentLogger });
    try {
      const second = await connectTaskClient(server.url!, {
        protocolVersion: version,
        answer: async () => ({ action: 'accept', content: { decision: 'approve' } }),
      });
      const resumed = await second.session.resumeTask(reference);
      const { outcome } = await resumed.settle();
      assert.equal(outcome.status, 'completed');
      assert.equal((outcome as { result: any }).result.structuredContent.status, 'paid');
      await second.close();
    } finally {
      await server.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });

it('an SDK v2 client on 2026-07-28 without the extension answers the approval through multi round-trip requests (InputRequiredResult, auto-fulfilled)', async () => {
  const server = await startInvoiceServer({ store: 'memory:', port: 0, policy: { pollIntervalMs: 50 }, logger: silentLogger });
  const client = new Client(
    { name: 'mrtr', version: '0' },
    { versionNegotiation: { mode: { pin: '2026-07-28' } }, capabilities: { elicitation: { form: {} } } },
  );
  const asked: string[] = [];
  client.setRequestHandler('elicitation/create', async (request) => {
    asked.push(String(request.params.message));
    return { action: 'accept', content: { decision: 'approve', comment: 'ok by MRTR' } };
  });
  try {
    await client.connect(new StreamableHTTPClientTransport(new URL(server.url!)));
    const result = await client.callTool({ name: 'process_invoice', arguments: { invoice: invoice('INV-2026-0003') } });
    assert.equal(result.isError, undefined, JSON.stringify(result));
    assert.equal(asked.length, 1, 'asked once');
    assert.match(asked[0]!, /Approve invoice INV-2026-0003/);
    assert.match(JSON.stringify(result.content), /paid|scheduled|payment/i);
  } finally {
    await client.close();
    await server.close();
  }
});

it('an SDK v2 client on 2026-07-28 that declares neither the extension nor elicitation gets -32021 naming what it lacks', async () => {
  const server = await startInvoiceServer({ store: 'memory:', port: 0, policy: { pollIntervalMs: 50 }, logger: silentLogger });
  const client = new Client({ name: 'plain', version: '0' }, { versionNegotiation: { mode: { pin: '2026-07-28' } } });
  try {
    await client.connect(new StreamableHTTPClientTransport(new URL(server.url!)));
    const report = await client.callTool({ name: 'export_payments_report', arguments: { format: 'csv' } }).catch((e: unknown) => e);
    assert.equal((report as { code?: number }).code, -32021, 'a required task tool needs the extension');
    const refused = (await client.callTool({ name: 'process_invoice', arguments: { invoice: invoice('INV-2026-0003') } }).catch((e: unknown) => e)) as {
      code?: number;
      message?: string;
      data?: unknown;
    };
    assert.equal(refused.code, -32021, 'the approval cannot be asked of a client without elicitation');
    assert.match(refused.message ?? '', /needs a client that declares elicitation.*Approve invoice INV-2026-0003/);
    assert.deepEqual(refused.data, { requiredCapabilities: { elicitation: { form: {} } } });
    const got = await client.request({ method: 'tasks/get', params: { taskId: 'x' } } as never, z.looseObject({}) as never).catch((e: unknown) => e);
    assert.equal((got as { code?: number }).code, -32021);
  } finally {
    await client.close();
    await server.close();
  }
});
