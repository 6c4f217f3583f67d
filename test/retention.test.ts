/**
 * Results outlive long waits: a task that ends after its ttl is kept at least
 * min(ttl, retainAfterEndMs) after its end (expiry = max(createdAt + ttl, endedAt + min(ttl,
 * retainAfterEndMs))), and both eras report the actual lifetime of a terminal task (2025-11-25 `ttl`,
 * 2026-07-28 `ttlMs` = expiry − createdAt). The backends' purge is checked in store-contract.test.ts.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { DEFAULT_LIFETIME_POLICY, ttlAtEnd } from '../src/core/policy.js';
import { InvalidArgumentError } from '../src/core/errors.js';
import { openStore } from '../src/store/open-store.js';
import { ModernRawClient } from './helpers/modern-client.js';
import { RawMcpClient } from './helpers/raw-client.js';
import { startTestServer } from './helpers/test-server.js';
import { until } from './helpers/until.js';

describe('ttlAtEnd', () => {
  const created = Date.parse('2026-01-01T00:00:00.000Z');
  it('keeps the ttl of a task that ends within it, extends one that ends after it', () => {
    assert.equal(ttlAtEnd(10_000, created, created + 1_000, 3_000), 10_000, 'ended early: createdAt + ttl is later');
    assert.equal(ttlAtEnd(10_000, created, created + 7_000, 3_000), 10_000, 'ended exactly ttl − retention in: unchanged');
    assert.equal(ttlAtEnd(10_000, created, created + 8_000, 3_000), 11_000, 'ended later: end + retainAfterEndMs');
    assert.equal(ttlAtEnd(10_000, created, created + 5_000, 60_000), 15_000, 'retainAfterEndMs above the ttl: end + ttl');
    assert.equal(ttlAtEnd(10_000, created, created + 50_000, 3_000), 53_000, 'retainAfterEndMs below the ttl: end + retainAfterEndMs');
    assert.equal(ttlAtEnd(10_000, created, created + 50_000, 0), 50_000, 'no retention: expires as it ends');
    assert.equal(ttlAtEnd(null, created, created + 50_000, 3_000), null, 'unlimited stays unlimited');
  });

  it('defaults to 24 h and refuses a negative or non-finite retainAfterEndMs', () => {
    assert.equal(DEFAULT_LIFETIME_POLICY.retainAfterEndMs, 24 * 3600_000);
    assert.throws(() => openStore('memory:', { policy: { retainAfterEndMs: -1 } }), InvalidArgumentError);
    assert.throws(() => openStore('memory:', { policy: { retainAfterEndMs: Number.POSITIVE_INFINITY } }), InvalidArgumentError);
    assert.equal(openStore('memory:', { policy: { retainAfterEndMs: undefined } }).policy.retainAfterEndMs, 24 * 3600_000, 'undefined takes the default');
  });
});

describe('the wire reports the actual ttl of a task that outlived its ttl', () => {
  // Tasks get a 600 ms ttl and run 900 ms; after the end they are kept min(600, 400) = 400 ms.
  const TTL = 600;
  const RETAIN = 400;
  let server: Awaited<ReturnType<typeof startTestServer>>;
  before(async () => {
    server = await startTestServer('memory:', { policy: { defaultTtlMs: TTL, retainAfterEndMs: RETAIN } });
  });
  after(() => server.close());

  it('2025-11-25: ttl = expiry − createdAt, the result is there after the end, then the task is gone', async () => {
    const client = new RawMcpClient(server.url);
    await client.initialize();
    const created = (await client.request('tools/call', { name: 'slow', arguments: { ms: 900 }, task: {} })).result.task;
    assert.equal(created.ttl, TTL, 'while it runs: the granted ttl');
    const done = await untilCompleted(client, created.taskId);
    const ended = Date.parse(done.lastUpdatedAt);
    assert.ok(ended > Date.parse(done.createdAt) + TTL, 'it ended after createdAt + ttl');
    assert.equal(done.ttl, ended - Date.parse(done.createdAt) + RETAIN, 'the actual lifetime: end + min(ttl, retainAfterEndMs)');
    const result = await client.request('tasks/result', { taskId: created.taskId });
    assert.deepEqual(result.result?.content, [{ type: 'text', text: 'slept' }], 'the result outlived the ttl');
    await until(async () => (await client.request('tasks/get', { taskId: created.taskId })).error?.code === -32602, { what: 'expiry' });
    assert.ok(Date.now() >= ended + RETAIN, 'not before its reported expiry');
  });

  it('2026-07-28: ttlMs = expiry − createdAt, with the result inline after the end', async () => {
    const client = new ModernRawClient(server.url);
    const created = (await client.request('tools/call', { name: 'slow', arguments: { ms: 900 } })).result;
    assert.equal(created.ttlMs, TTL);
    const done = await untilCompleted(client, created.taskId);
    const ended = Date.parse(done.lastUpdatedAt);
    assert.ok(ended > Date.parse(done.createdAt) + TTL);
    assert.equal(done.ttlMs, ended - Date.parse(done.createdAt) + RETAIN);
    assert.deepEqual(done.result.content, [{ type: 'text', text: 'slept' }]);
    await until(async () => (await client.request('tasks/get', { taskId: created.taskId })).error?.code === -32602, { what: 'expiry' });
  });
});

/** Polls `tasks/get` (either era's raw client) until the task is `completed`; resolves with that task. */
function untilCompleted(client: { request(method: string, params: Record<string, unknown>): Promise<{ result?: any }> }, taskId: string): Promise<any> {
  return until(
    async () => {
      const task = (await client.request('tasks/get', { taskId })).result;
      return task?.status === 'completed' && task;
    },
    { what: 'completion' },
  );
}
