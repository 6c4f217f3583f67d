/**
 * Webhooks end to end, in process: a loopback receiver (allowed by `allowPrivateAddresses`) verifies
 * every delivery with `standardwebhooks`' `Webhook.verify`; events for input_required and the end
 * arrive, per-principal endpoints hear only their principal's tasks, payloads carry no arguments or
 * results; 500s are retried with the same `webhook-id` until a 2xx, 429's `Retry-After` is honored,
 * a delivery is given up after the configured bound; the SSRF guard refuses what it must; the
 * console lists a task's deliveries. Waits are for conditions (`until`), never for durations.
 */
import assert from 'node:assert/strict';
import { after, describe, it } from 'node:test';
import { createTaskServer, WebhookUrlRefusedError, type TaskServer, type WebhooksOptions } from '../src/index.js';
import { silentLogger } from '../src/core/log.js';
import { checkWebhookUrl, guardedLookup, refusedAddress } from '../src/server/webhooks/ssrf.js';
import { newSecret, startReceiver } from './helpers/webhook-receiver.js';
import { until } from './helpers/until.js';
import { ModernRawClient } from './helpers/modern-client.js';
import { startInvoiceServer } from '../examples/invoice/server.js';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';

const request = { tool: 'demo', arguments: { card: '4111-1111-1111-1111' } };
const question = { kind: 'elicitation' as const, message: 'Approve?', requestedSchema: { type: 'object' as const, properties: {} } };
const servers: TaskServer[] = [];
after(() => Promise.all(servers.map((s) => s.close())));

async function serve(webhooks: WebhooksOptions, extra: { console?: boolean } = {}): Promise<TaskServer> {
  const server = createTaskServer({ store: 'memory:', logger: silentLogger, webhooks: { allowPrivateAddresses: true, ...webhooks }, ...extra });
  servers.push(server);
  await server.start();
  return server;
}

describe('webhooks', () => {
  it('sends input_required and completion, signed, per principal, without arguments or results', async () => {
    const secrets = { '/ops': newSecret(), '/alice': newSecret() };
    const receiver = await startReceiver(secrets);
    after(() => receiver.close());
    const server = await serve({
      endpoints: [
        { id: 'ops', url: `${receiver.url}/ops`, secret: secrets['/ops'] },
        { id: 'alice', url: `${receiver.url}/alice`, secret: secrets['/alice'], principal: 'alice', events: ['task.input_required', 'task.completed'] },
      ],
    });
    const store = server.store;
    const mine = await store.create({ owner: 'alice', request, errorResultStatus: 'failed' });
    const theirs = await store.create({ owner: 'bob', request, errorResultStatus: 'failed' });
    await store.requestInput(mine.taskId, 'ok', question, 'Waiting for approval');
    await store.finish(mine.taskId, 'completed', { type: 'result', result: { content: [{ type: 'text', text: 'paid: 4111' }] } });
    await store.requestInput(theirs.taskId, 'ok', question, 'Waiting');
    await store.finish(theirs.taskId, 'failed', { type: 'error', error: { code: -32603, message: 'boom' } });

    await until(() => receiver.delivered().length === 6, {
      what: () => `6 deliveries, got ${JSON.stringify(receiver.received.map((r) => [r.path, r.payload?.type]))}`,
    });
    assert.ok(
      receiver.received.every((r) => r.payload !== undefined),
      'every delivery verifies with Webhook.verify',
    );
    const seen = receiver.received.map((r) => `${r.path} ${r.payload!.type} ${String(r.payload!.data.taskId === mine.taskId ? 'alice' : 'bob')}`).sort();
    assert.deepEqual(seen, [
      '/alice task.completed alice',
      '/alice task.input_required alice',
      '/ops task.completed alice',
      '/ops task.failed bob',
      '/ops task.input_required alice',
      '/ops task.input_required bob',
    ]);
    for (const r of receiver.received) {
      assert.match(r.id, /^msg_/);
      assert.match(String(r.headers['webhook-signature']), /^v1,/);
      assert.doesNotMatch(r.body, /4111|paid|card|boom/, 'no arguments, results or errors in a payload');
    }
    const waiting = receiver.received.find((r) => r.path === '/ops' && r.payload!.type === 'task.input_required' && r.payload!.data.taskId === mine.taskId)!;
    assert.deepEqual(Object.keys(waiting.payload!.data).sort(), ['createdAt', 'lastUpdatedAt', 'status', 'statusMessage', 'taskId']);
    assert.equal(waiting.payload!.data.statusMessage, 'Waiting for approval');
    await until(async () => (await store.deliveries(mine.taskId)).every((d) => d.state === 'delivered'));
  });

  it('sends task.stalled when a task is flagged stalled and task.question_overdue when a question escalates, in the same write', async () => {
    const secrets = { '/ops': newSecret() };
    const receiver = await startReceiver(secrets);
    after(() => receiver.close());
    const server = await serve({
      endpoints: [{ id: 'ops', url: `${receiver.url}/ops`, secret: secrets['/ops'], events: ['task.stalled', 'task.question_overdue'] }],
    });
    const store = server.store;
    const stuck = await store.create({ owner: null, request, errorResultStatus: 'failed' });
    const at = new Date().toISOString();
    assert.equal(await store.markStalled(stuck.taskId, { at, since: stuck.createdAt }, 100), true);
    const waiting = await store.create({ owner: null, request, errorResultStatus: 'failed' });
    await store.requestInput(waiting.taskId, 'approve', question, 'Waiting', undefined, { timeoutMs: 60_000, onTimeout: 'escalate' });
    await store.markQuestion(waiting.taskId, 'approve', { escalatedAt: new Date().toISOString() });
    await until(() => receiver.delivered().length === 2, { what: () => `2 deliveries, got ${JSON.stringify(receiver.received.map((r) => r.payload?.type))}` });
    const stalled = receiver.received.find((r) => r.payload!.type === 'task.stalled')!;
    assert.equal(stalled.payload!.data.taskId, stuck.taskId);
    assert.deepEqual(stalled.payload!.data.detail, { since: stuck.createdAt, at });
    const overdue = receiver.received.find((r) => r.payload!.type === 'task.question_overdue')!;
    assert.equal(overdue.payload!.data.taskId, waiting.taskId);
    assert.deepEqual(overdue.payload!.data.detail, { questions: ['approve'] });
  });

  it('the invoice demo sends its approval question to the webhook it is given', async () => {
    const secrets = { '/demo': newSecret() };
    const receiver = await startReceiver(secrets);
    after(() => receiver.close());
    const demo = await startInvoiceServer({
      store: 'memory:',
      port: 0,
      logger: silentLogger,
      webhook: { url: `${receiver.url}/demo`, secret: secrets['/demo'] },
    });
    after(() => demo.close());
    const invoice = JSON.parse(readFileSync(join('examples/invoice/data/invoices', 'INV-2026-0001.json'), 'utf8'));
    const created = (await new ModernRawClient(demo.url!).request('tools/call', { name: 'process_invoice', arguments: { invoice } })).result;
    await until(() => receiver.delivered().some((r) => r.payload!.type === 'task.input_required'), { what: 'the approval question by webhook' });
    const sent = receiver.received.find((r) => r.payload!.type === 'task.input_required')!;
    assert.equal(sent.payload!.data.taskId, created.taskId);
    assert.match(String(sent.payload!.data.statusMessage), /Approve invoice INV-2026-0001/);
  });

  it('retries 500s and a 429 (Retry-After) with one webhook-id, then succeeds; gives up after the bound', async () => {
    const secrets = { '/flaky': newSecret(), '/busy': newSecret(), '/down': newSecret() };
    const receiver = await startReceiver(secrets, (path, attempt) => {
      if (path === '/flaky') return { status: attempt <= 2 ? 500 : 204 };
      if (path === '/busy') return attempt === 1 ? { status: 429, headers: { 'retry-after': '0' } } : { status: 200 };
      return { status: 503 };
    });
    after(() => receiver.close());
    const server = await serve({
      endpoints: Object.entries(secrets).map(([path, secret]) => ({ id: path.slice(1), url: `${receiver.url}${path}`, secret })),
      retry: { initialDelayMs: 20, maxDelayMs: 40, giveUpAfterMs: 400 },
    });
    const task = await server.store.create({ owner: null, request, errorResultStatus: 'failed' });
    await server.store.cancel(task.taskId, null);
    const settled = await until(
      async () => {
        const deliveries = await server.store.deliveries(task.taskId);
        return deliveries.every((d) => d.state !== 'pending') && deliveries;
      },
      { what: 'every delivery settled' },
    );
    const by = Object.fromEntries(settled.map((d) => [d.endpointId, d]));
    assert.deepEqual([by.flaky!.state, by.flaky!.attempts, by.flaky!.lastError], ['delivered', 3, 'HTTP 500']);
    assert.deepEqual([by.busy!.state, by.busy!.attempts, by.busy!.lastError], ['delivered', 2, 'HTTP 429']);
    assert.equal(by.down!.state, 'failed');
    assert.match(by.down!.lastError!, /^gave up after \d+ attempts: HTTP 503$/);
    for (const path of ['/flaky', '/busy', '/down']) {
      const ids = new Set(receiver.received.filter((r) => r.path === path).map((r) => r.id));
      assert.deepEqual([...ids], [by[path.slice(1)]!.deliveryId], `${path}: every attempt carries the delivery's id`);
    }
    assert.equal(receiver.received.filter((r) => r.path === '/down').length, by.down!.attempts);
  });

  it('refuses non-https, private, loopback, link-local, metadata and mapped addresses (SSRF guard)', async () => {
    for (const address of ['127.0.0.1', '10.0.0.8', '172.16.3.4', '192.168.1.1', '169.254.169.254', '100.64.0.1', '0.0.0.0', '224.0.0.1', '255.255.255.255']) {
      assert.ok(refusedAddress(address, false), `${address} refused`);
    }
    for (const address of ['::1', 'fe80::1', 'fc00::1', '::ffff:127.0.0.1', '::ffff:169.254.169.254', '::', 'ff02::1', '64:ff9b::a9fe:a9fe']) {
      assert.ok(refusedAddress(address, false), `${address} refused`);
    }
    assert.equal(refusedAddress('93.184.216.34', false), undefined);
    assert.equal(refusedAddress('2606:2800:220:1::1', false), undefined);
    assert.equal(refusedAddress('10.0.0.8', true), undefined, 'private networks with allowPrivateAddresses');
    assert.ok(refusedAddress('169.254.169.254', true), 'metadata (link-local) even then');
    assert.ok(refusedAddress('::ffff:169.254.169.254', true));

    const refused = (url: string, allowPrivate = false) => assert.throws(() => checkWebhookUrl(url, allowPrivate), WebhookUrlRefusedError, url);
    refused('ftp://example.com/hook');
    refused('file:///etc/passwd');
    refused('http://example.com/hook', false);
    refused('http://10.0.0.1/hook', true); // http: only to loopback
    refused('https://169.254.169.254/latest/meta-data/');
    refused('https://[::ffff:127.0.0.1]/hook');
    refused('https://[fd00::1]/hook');
    refused('https://127.1/hook');
    refused('https://user:pw@example.com/hook');
    assert.equal(checkWebhookUrl('https://example.com/hook', false).hostname, 'example.com');

    const secret = newSecret();
    assert.throws(
      () => createTaskServer({ store: 'memory:', logger: silentLogger, webhooks: { endpoints: [{ id: 'x', url: 'https://10.1.2.3/', secret }] } }),
      {
        code: 'WEBHOOK_URL_REFUSED',
      },
    );
    const byName = createTaskServer({ store: 'memory:', logger: silentLogger, webhooks: { endpoints: [{ id: 'x', url: 'https://localhost:9/', secret }] } });
    servers.push(byName);
    await assert.rejects(byName.start(), WebhookUrlRefusedError, 'a name resolving to loopback is refused at start-up');
    const lookedUp = await new Promise<Error | null>((resolve) => guardedLookup(false, false)('localhost', {}, (error) => resolve(error)));
    assert.ok(lookedUp instanceof WebhookUrlRefusedError, 'and at connect time');
  });

  it('the console lists a task’s deliveries', async () => {
    const secrets = { '/ops': newSecret() };
    const receiver = await startReceiver(secrets, () => ({ status: 500 }));
    after(() => receiver.close());
    const server = await serve(
      { endpoints: [{ id: 'ops-pager', url: `${receiver.url}/ops`, secret: secrets['/ops'] }], retry: { initialDelayMs: 60_000 } },
      { console: true },
    );
    const http = await server.listen({ port: 0 });
    const task = await server.store.create({ owner: null, request, errorResultStatus: 'failed' });
    await server.store.cancel(task.taskId, null);
    await until(async () => (await server.store.deliveries(task.taskId))[0]?.lastError === 'HTTP 500');
    const page = await (await fetch(new URL(`/console/tasks/${task.taskId}`, http.url))).text();
    assert.match(page, /data-deliveries/);
    assert.match(page, /task\.cancelled/);
    assert.match(page, /ops-pager/);
    assert.match(page, /HTTP 500/);
    assert.match(page, /data-state="pending"/);
  });
});
