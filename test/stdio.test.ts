/** The demo over stdio with the official SDK v2 client: task-augmented call, question, result. */
import assert from 'node:assert/strict';
import { it } from 'node:test';
import { Client } from '@modelcontextprotocol/client';
import { StdioClientTransport } from '@modelcontextprotocol/client/stdio';
import * as z from 'zod';

it('serves 2025-11-25 tasks over stdio', { timeout: 60_000 }, async () => {
  const client = new Client({ name: 'stdio-test', version: '0' }, { capabilities: { elicitation: { form: {} } } });
  const asked: unknown[] = [];
  client.setRequestHandler('elicitation/create', async (request) => {
    asked.push(request.params);
    return { action: 'accept', content: { decision: 'approve' } };
  });
  await client.connect(
    new StdioClientTransport({
      command: process.execPath,
      args: ['--import', 'tsx', 'examples/invoice/main.ts', '--stdio', '--store', 'memory:', '--poll-interval', '50'],
    }),
  );
  try {
    assert.deepEqual(client.getServerCapabilities()?.tasks, { cancel: {}, requests: { tools: { call: {} } } });
    const invoice = {
      invoiceId: 'INV-STDIO',
      vendorId: 'V-1001',
      poNumber: 'PO-2026-0417',
      currency: 'EUR',
      issuedOn: '2026-11-20',
      lines: [{ lineId: '1', description: 'x', amount: 12.34 }],
    };
    const any = z.looseObject({});
    const created = (await client.request(
      { method: 'tools/call', params: { name: 'process_invoice', arguments: { invoice }, task: {} } } as never,
      any as never,
    )) as any;
    const taskId = created.task.taskId as string;
    assert.equal(created.task.status, 'working');
    const result = (await client.request({ method: 'tasks/result', params: { taskId } } as never, any as never)) as any;
    assert.equal(result.structuredContent.status, 'paid');
    assert.equal(asked.length, 1);
    assert.deepEqual((asked[0] as any)._meta['io.modelcontextprotocol/related-task'], { taskId });
    const task = (await client.request({ method: 'tasks/get', params: { taskId } } as never, any as never)) as any;
    assert.equal(task.status, 'completed');
  } finally {
    await client.close();
  }
});
