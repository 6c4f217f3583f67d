/**
 * The invoice demo over stdio (`main.ts --stdio`, a real child process), in both protocol eras on
 * the same entry: the official SDK v2 client on 2025-11-25 (task-augmented call, question,
 * result) and pinned to 2026-07-28 (with and without the tasks extension, also through the
 * official ext-tasks requester), and a raw peer for what a client SDK would not send.
 */
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { describe, it } from 'node:test';
import { Client } from '@modelcontextprotocol/client';
import { StdioClientTransport } from '@modelcontextprotocol/client/stdio';
import { createTaskSessionFromClient } from '@modelcontextprotocol/ext-tasks/client';
import * as z from 'zod';
import { createStdioRawDispatch } from './helpers/stdio-dispatch.js';
import { until } from './helpers/until.js';

const DEMO_ARGS = ['--import', 'tsx', 'examples/invoice/main.ts', '--stdio', '--store', 'memory:', '--poll-interval', '50'];
const TASKS_EXT = 'io.modelcontextprotocol/tasks';
const invoiceFile = (id: string) => JSON.parse(readFileSync(join('examples/invoice/data/invoices', `${id}.json`), 'utf8'));
const demoTransport = () => new StdioClientTransport({ command: process.execPath, args: DEMO_ARGS, stderr: 'pipe' });

it('serves 2025-11-25 tasks over stdio', { timeout: 60_000 }, async () => {
  const client = new Client({ name: 'stdio-test', version: '0' }, { capabilities: { elicitation: { form: {} } } });
  const asked: unknown[] = [];
  client.setRequestHandler('elicitation/create', async (request) => {
    asked.push(request.params);
    return { action: 'accept', content: { decision: 'approve' } };
  });
  await client.connect(demoTransport());
  try {
    assert.equal(client.getProtocolEra(), 'legacy');
    assert.equal(client.getNegotiatedProtocolVersion(), '2025-11-25');
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

describe('2026-07-28 over stdio (SDK v2 client pinned to 2026-07-28)', () => {
  const clientInfo = { name: 'stdio-2026', version: '0' };

  it('with the tasks extension: the call answers with a task, tasks/get and tasks/update drive it to its result', { timeout: 60_000 }, async () => {
    const capabilities = { elicitation: { form: {} }, extensions: { [TASKS_EXT]: {} } };
    const client = new Client(clientInfo, { capabilities, versionNegotiation: { mode: { pin: '2026-07-28' } } });
    const transport = demoTransport();
    await client.connect(transport);
    try {
      assert.equal(client.getProtocolEra(), 'modern');
      assert.equal(client.getNegotiatedProtocolVersion(), '2026-07-28');
      const discovered = client.getDiscoverResult();
      assert.equal(discovered?.supportedVersions[0], '2026-07-28', 'the modern revision comes first');
      assert.ok(discovered?.supportedVersions.includes('2025-11-25'), 'the same entry accepts initialize');
      assert.deepEqual(client.getServerCapabilities()?.extensions?.[TASKS_EXT], {});
      assert.equal(client.getServerCapabilities()?.tasks, undefined, 'the 2025-11-25 tasks capability is not declared in 2026-07-28');

      // The SDK client cannot decode resultType "task": task traffic goes beside it on the same pipe.
      const raw = createStdioRawDispatch(transport);
      const envelope = {
        'io.modelcontextprotocol/protocolVersion': '2026-07-28',
        'io.modelcontextprotocol/clientInfo': clientInfo,
        'io.modelcontextprotocol/clientCapabilities': capabilities,
      };
      const invoice = invoiceFile('INV-2026-0001');
      const created = await raw.request('tools/call', { name: 'process_invoice', arguments: { invoice }, _meta: envelope });
      assert.equal(created.resultType, 'task');
      assert.equal(created.status, 'working');
      assert.equal(typeof created.taskId, 'string');
      assert.equal(created.pollIntervalMs, 50);
      assert.equal(created.task, undefined, 'the 2026-07-28 CreateTaskResult is flat');

      const get = () => raw.request('tasks/get', { taskId: created.taskId, _meta: envelope });
      const waiting = await until(
        async () => {
          const task = await get();
          return task.status === 'input_required' && task;
        },
        { what: 'the approval question' },
      );
      const questions = Object.entries(waiting.inputRequests as Record<string, any>);
      assert.equal(questions.length, 1, 'one question');
      const [[key, question]] = questions as [[string, any]];
      assert.equal(question.method, 'elicitation/create');
      assert.match(question.params.message, /Approve invoice INV-2026-0001 from Acme Office Supplies GmbH/);

      const ack = await raw.request('tasks/update', {
        taskId: created.taskId,
        inputResponses: { [key]: { action: 'accept', content: { decision: 'approve' } } },
        _meta: envelope,
      });
      assert.equal(ack.resultType, 'complete');
      const done = await until(
        async () => {
          const task = await get();
          return task.status !== 'working' && task.status !== 'input_required' && task;
        },
        { what: 'the task to end' },
      );
      assert.equal(done.status, 'completed');
      assert.equal(done.result.resultType, 'complete');
      assert.equal(done.result.structuredContent.status, 'paid');

      // The ordinary tool on the SDK client sees the payments the task made (one store, one ledger).
      const listed = await client.callTool({ name: 'list_payments', arguments: { invoiceId: 'INV-2026-0001' } });
      assert.deepEqual(
        (listed.structuredContent as any).payments.map((p: any) => p.lineId),
        ['1', '2', '3'],
      );
      await assert.rejects(raw.request('tasks/get', { taskId: 'does-not-exist', _meta: envelope }), (error: any) => error.code === -32602);
      await assert.rejects(raw.request('tasks/result', { taskId: created.taskId, _meta: envelope }), (error: any) => error.code === -32601);
    } finally {
      await client.close();
    }
  });

  it('with the tasks extension through the official ext-tasks requester: a required task tool runs as a task', { timeout: 60_000 }, async () => {
    const capabilities = { extensions: { [TASKS_EXT]: {} } };
    const client = new Client(clientInfo, { capabilities, versionNegotiation: { mode: { pin: '2026-07-28' } } });
    const transport = demoTransport();
    await client.connect(transport);
    const raw = createStdioRawDispatch(transport);
    const session = createTaskSessionFromClient(client, {
      endpointId: 'stdio:invoice-demo',
      rawDispatch: raw.dispatch,
      v2RequestFraming: { protocolVersion: '2026-07-28', clientInfo, clientCapabilities: capabilities },
    });
    try {
      const execution = await session.callTool('export_payments_report', { format: 'csv' }, { task: { preference: 'prefer' } });
      assert.equal(execution.kind, 'task');
      if (execution.kind !== 'task') return;
      assert.equal(execution.serializeReference().generation, 'v2');
      const { outcome } = await execution.settle();
      assert.equal(outcome.status, 'completed');
      assert.match(((outcome as { result: any }).result.content[0].text as string).split('\n')[0]!, /^invoiceId,lineId,amount,currency,paidAt$/);
    } finally {
      await session.close().catch(() => undefined);
      await client.close();
    }
  });

  it('without the tasks extension: ordinary tools work, task tools and tasks/* need the extension (-32021)', { timeout: 60_000 }, async () => {
    const client = new Client(clientInfo, { versionNegotiation: { mode: { pin: '2026-07-28' } } });
    await client.connect(demoTransport());
    try {
      assert.equal(client.getProtocolEra(), 'modern');
      const tools = (await client.listTools()).tools.map((t) => t.name);
      assert.ok(tools.includes('list_payments') && tools.includes('process_invoice'), tools.join(','));
      const listed = await client.callTool({ name: 'list_payments', arguments: { invoiceId: 'INV-2026-0001' } });
      assert.equal(listed.isError, undefined);
      assert.deepEqual((listed.structuredContent as any).payments, []);
      const report = await client.callTool({ name: 'export_payments_report', arguments: { format: 'csv' } }).catch((e: unknown) => e);
      assert.equal((report as { code?: number }).code, -32021, 'a required task tool needs the extension');
      const got = await client.request({ method: 'tasks/get', params: { taskId: 'x' } } as never, z.looseObject({}) as never).catch((e: unknown) => e);
      assert.equal((got as { code?: number }).code, -32021);
    } finally {
      await client.close();
    }
  });
});

/** The demo on a pipe, spoken to line by line (for what an SDK client would not send). */
class RawPeer {
  readonly child: ChildProcess;
  private readonly received: any[] = [];
  private readonly waiters = new Set<() => void>();
  private nextId = 1;

  constructor() {
    this.child = spawn(process.execPath, DEMO_ARGS, { stdio: ['pipe', 'pipe', 'ignore'] });
    createInterface({ input: this.child.stdout! }).on('line', (line) => {
      this.received.push(JSON.parse(line));
      for (const wake of this.waiters) wake();
    });
  }

  /** A 2026-07-28 `_meta` envelope; `tasks`: declaring the extension (and form elicitation, to be shown questions). */
  static envelope(tasks: boolean): Record<string, unknown> {
    return {
      'io.modelcontextprotocol/protocolVersion': '2026-07-28',
      'io.modelcontextprotocol/clientInfo': { name: 'raw', version: '0' },
      'io.modelcontextprotocol/clientCapabilities': tasks ? { elicitation: { form: {} }, extensions: { [TASKS_EXT]: {} } } : {},
    };
  }

  /** Writes one line as is. */
  write(line: string): void {
    this.child.stdin!.write(line.endsWith('\n') ? line : `${line}\n`);
  }

  /** Sends a request; returns its id. */
  send(method: string, params: Record<string, unknown>): number {
    const id = this.nextId++;
    this.write(JSON.stringify({ jsonrpc: '2.0', id, method, params }));
    return id;
  }

  /** Sends a request and waits for its response (the whole JSON-RPC message). */
  async request(method: string, params: Record<string, unknown>): Promise<any> {
    const id = this.send(method, params);
    return this.next((m) => m.id === id && (m.result !== undefined || m.error !== undefined));
  }

  /** Takes the first message received (earliest first, waiting if needed) that `match` accepts. */
  next(match: (message: any) => boolean): Promise<any> {
    return new Promise((resolve, reject) => {
      const look = () => {
        const index = this.received.findIndex(match);
        if (index !== -1) {
          this.waiters.delete(look);
          this.child.off('exit', gone);
          resolve(this.received.splice(index, 1)[0]);
        }
      };
      const gone = () => {
        this.waiters.delete(look);
        reject(new Error(`the server exited (${this.child.exitCode ?? this.child.signalCode}) while a message was awaited`));
      };
      this.waiters.add(look);
      this.child.once('exit', gone);
      look();
    });
  }

  /** The messages received and not taken yet that `match` accepts. */
  pending(match: (message: any) => boolean): any[] {
    return this.received.filter(match);
  }

  /** Closes stdin (the MCP stdio shutdown) and resolves with the exit code. */
  end(): Promise<number | null> {
    return new Promise((resolve) => {
      if (this.child.exitCode !== null) return resolve(this.child.exitCode);
      this.child.once('exit', (code) => resolve(code));
      this.child.stdin!.end();
    });
  }

  kill(): void {
    if (this.child.exitCode === null && this.child.signalCode === null) this.child.kill('SIGKILL');
  }
}

describe('stdio era negotiation and robustness (raw peer)', () => {
  it('stays up on malformed input, refuses bad envelopes, and exits when stdin closes', { timeout: 60_000 }, async () => {
    const peer = new RawPeer();
    try {
      peer.write('this is not JSON');
      peer.write('{"hello": "world"}');
      peer.write('[1, 2, 3]');
      peer.write('{"jsonrpc": "2.0", "id": 99, "method": 42}');
      const bad = await peer.request('tools/list', { _meta: { 'io.modelcontextprotocol/protocolVersion': 7 } });
      assert.equal(bad.error.code, -32602, 'a malformed envelope');
      const future = await peer.request('tools/list', { _meta: { ...RawPeer.envelope(false), 'io.modelcontextprotocol/protocolVersion': '2099-01-01' } });
      assert.equal(future.error.code, -32022);
      assert.deepEqual(future.error.data.supported, ['2026-07-28']);

      const discover = await peer.request('server/discover', { _meta: RawPeer.envelope(true) });
      assert.equal(discover.result.supportedVersions[0], '2026-07-28');
      assert.deepEqual(discover.result.capabilities.extensions[TASKS_EXT], {});
      // Pinned to 2026-07-28 now: malformed lines are still skipped, later requests are checked one by one.
      peer.write('{not json either');
      const stale = await peer.request('tools/list', { _meta: { ...RawPeer.envelope(true), 'io.modelcontextprotocol/protocolVersion': '2025-06-18' } });
      assert.equal(stale.error.code, -32022);
      const listed = await peer.request('tools/list', { _meta: RawPeer.envelope(false) });
      assert.ok(listed.result.tools.some((t: any) => t.name === 'process_invoice'));
      const initialize = await peer.request('initialize', { protocolVersion: '2025-11-25', capabilities: {}, clientInfo: { name: 'raw', version: '0' } });
      assert.equal(initialize.error.code, -32022, 'a 2026-07-28 connection does not fall back later');
      assert.equal(peer.child.exitCode, null);
      assert.equal(await peer.end(), 0, 'closing stdin ends the server cleanly');
    } finally {
      peer.kill();
    }
  });

  it('a client that probes with server/discover and then sends initialize gets 2025-11-25', { timeout: 60_000 }, async () => {
    const peer = new RawPeer();
    try {
      const discover = await peer.request('server/discover', { _meta: RawPeer.envelope(true) });
      assert.ok(discover.result.supportedVersions.includes('2025-11-25'));
      const initialize = await peer.request('initialize', { protocolVersion: '2025-11-25', capabilities: {}, clientInfo: { name: 'raw', version: '0' } });
      assert.equal(initialize.result.protocolVersion, '2025-11-25');
      assert.deepEqual(initialize.result.capabilities.tasks, { cancel: {}, requests: { tools: { call: {} } } });
      peer.write(JSON.stringify({ jsonrpc: '2.0', method: 'notifications/initialized' }));
      const created = await peer.request('tools/call', { name: 'export_payments_report', arguments: { format: 'json' }, task: {} });
      assert.equal(created.result.task.status, 'working');
      const result = await peer.request('tasks/result', { taskId: created.result.task.taskId });
      assert.equal(result.result.isError, undefined);
      assert.equal(result.result._meta['io.modelcontextprotocol/related-task'].taskId, created.result.task.taskId);
    } finally {
      peer.kill();
    }
  });

  it('subscriptions/listen for task ids: -32021 without the extension; with it, the task streamed to its end', { timeout: 60_000 }, async () => {
    const peer = new RawPeer();
    try {
      const refusedId = peer.send('subscriptions/listen', { notifications: { taskIds: ['x'] }, _meta: RawPeer.envelope(false) });
      // Whatever answers first: the response, or an acknowledgement that would open the stream.
      const refused = await peer.next((m) => m.id === refusedId || m.params?._meta?.['io.modelcontextprotocol/subscriptionId'] === refusedId);
      assert.equal(refused.error?.code, -32021, JSON.stringify(refused));
      assert.deepEqual(refused.error.data.requiredCapabilities, { extensions: { [TASKS_EXT]: {} } });

      const created = await peer.request('tools/call', {
        name: 'process_invoice',
        arguments: { invoice: invoiceFile('INV-2026-0003') },
        _meta: RawPeer.envelope(true),
      });
      assert.equal(created.result.resultType, 'task');
      const taskId = created.result.taskId as string;
      const listen = peer.send('subscriptions/listen', { notifications: { taskIds: [taskId, 'unknown-task'] }, _meta: RawPeer.envelope(true) });
      const ack = await peer.next((m) => m.method === 'notifications/subscriptions/acknowledged');
      assert.deepEqual(ack.params.notifications, { taskIds: [taskId] }, 'unknown ids are not acknowledged');
      assert.equal(ack.params._meta['io.modelcontextprotocol/subscriptionId'], listen);
      const ofTask = (m: any) => m.method === 'notifications/tasks' && m.params.taskId === taskId;
      const asking = await peer.next((m) => ofTask(m) && m.params.status === 'input_required');
      assert.equal(asking.params._meta['io.modelcontextprotocol/subscriptionId'], listen);
      const [key, ...more] = Object.keys(asking.params.inputRequests);
      assert.ok(key !== undefined && more.length === 0, 'one question');
      const ack2 = await peer.request('tasks/update', {
        taskId,
        inputResponses: { [key!]: { action: 'accept', content: { decision: 'reject', comment: 'duplicate' } } },
        _meta: RawPeer.envelope(true),
      });
      assert.equal(ack2.result.resultType, 'complete');
      const ended = await peer.next((m) => ofTask(m) && m.params.status === 'completed');
      assert.equal(ended.params.result.structuredContent.status, 'rejected');
      const closed = await peer.next((m) => m.id === listen);
      assert.equal(closed.result.resultType, 'complete', 'the subscription ends once every watched task has ended');
      assert.equal(closed.result._meta['io.modelcontextprotocol/subscriptionId'], listen);
    } finally {
      peer.kill();
    }
  });

  it('notifications/cancelled for a task subscription ends it: nothing more is sent for it', { timeout: 60_000 }, async () => {
    const peer = new RawPeer();
    try {
      const created = await peer.request('tools/call', {
        name: 'process_invoice',
        arguments: { invoice: invoiceFile('INV-2026-0002') },
        _meta: RawPeer.envelope(true),
      });
      const taskId = created.result.taskId as string;
      const listen = peer.send('subscriptions/listen', { notifications: { taskIds: [taskId] }, _meta: RawPeer.envelope(true) });
      const ofListen = (m: any) => m.params?._meta?.['io.modelcontextprotocol/subscriptionId'] === listen || m.id === listen;
      await peer.next((m) => m.method === 'notifications/subscriptions/acknowledged' && ofListen(m));
      const asking = await peer.next((m) => m.method === 'notifications/tasks' && ofListen(m) && m.params.status === 'input_required');
      peer.write(JSON.stringify({ jsonrpc: '2.0', method: 'notifications/cancelled', params: { requestId: listen, _meta: RawPeer.envelope(true) } }));
      const [key] = Object.keys(asking.params.inputRequests);
      assert.ok(key !== undefined);
      await peer.request('tasks/update', {
        taskId,
        inputResponses: { [key]: { action: 'accept', content: { decision: 'reject' } } },
        _meta: RawPeer.envelope(true),
      });
      await until(async () => (await peer.request('tasks/get', { taskId, _meta: RawPeer.envelope(true) })).result.status === 'completed', {
        what: 'the task to end',
      });
      // One more round trip on the same pipe: whatever the subscription would have sent came before it.
      await peer.request('tools/list', { _meta: RawPeer.envelope(true) });
      assert.equal(peer.pending(ofListen).length, 0, 'no notification and no final result after the cancellation');
    } finally {
      peer.kill();
    }
  });
});
