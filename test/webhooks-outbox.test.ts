/**
 * The webhook outbox contract on every store (memory, SQLite, PostgreSQL, Redis): deliveries are
 * enqueued in the same atomic write as the status change that is their event (a lost
 * compare-and-swap enqueues nothing), claims are exclusive across two store instances on one data
 * set, an expired claim is claimed again (and the stale claim can no longer settle), retries and
 * outcomes are recorded. Clocks are injected: nothing here depends on wall-clock durations.
 */
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { MemoryBackend } from '../src/store/memory-backend.js';
import { SqliteBackend } from '../src/store/sqlite-backend.js';
import { TaskStore } from '../src/store/task-store.js';
import { openBackend } from '../src/store/open-store.js';
import type { StoreBackend } from '../src/store/backend.js';
import { newDeliveryId, type OutboxDelivery, type WebhookRoute } from '../src/store/outbox.js';
import { PG_URL, REDIS_URL, withParam } from './helpers/services.js';
import { testStores } from './helpers/test-stores.js';

const { dir, schema, prefix } = testStores('ob');
let counter = 0;
/** Per store: a fresh backend and, for stores several processes share, a second connection to the same data. */
const stores: { name: string; open(): { backend: StoreBackend; twin?: () => StoreBackend } }[] = [
  { name: 'memory', open: () => ({ backend: new MemoryBackend() }) },
  {
    name: 'sqlite',
    open: () => {
      const path = join(dir, `outbox-${++counter}.db`);
      return { backend: new SqliteBackend(path, { exclusive: false }), twin: () => new SqliteBackend(path, { exclusive: false }) };
    },
  },
  {
    name: 'postgres',
    open: () => {
      const url = withParam(PG_URL, 'schema', schema());
      return { backend: openBackend(url), twin: () => openBackend(url) };
    },
  },
  {
    name: 'redis',
    open: () => {
      const url = withParam(REDIS_URL, 'prefix', prefix());
      return { backend: openBackend(url), twin: () => openBackend(url) };
    },
  },
];

const request = { tool: 'demo', arguments: { secretArgument: 'do-not-send' } };
const ROUTES: WebhookRoute[] = [{ id: 'ops' }, { id: 'alice-done', principal: 'alice', events: ['task.completed'] }];

for (const factory of stores) {
  describe(`webhook outbox: ${factory.name}`, () => {
    const opened: TaskStore[] = [];
    after(() => Promise.all(opened.map((store) => store.close())));
    let clock = Math.floor(Date.now() / 1000) * 1000; // near the real time: Redis expires ended tasks by its own clock
    const now = () => clock;
    const open = (routes: WebhookRoute[] | null = ROUTES) => {
      const { backend, twin } = factory.open();
      const store = new TaskStore(backend, { now });
      opened.push(store);
      if (routes) store.routeWebhooks(routes);
      const second = twin
        ? () => {
            const other = new TaskStore(twin(), { now });
            opened.push(other);
            if (routes) other.routeWebhooks(routes);
            return other;
          }
        : undefined;
      return { store, backend, second };
    };

    it('enqueues an event in the write that is it, per route (event types, principal), with a payload free of arguments', async () => {
      const { store } = open();
      const alice = await store.create({ owner: 'alice', request, errorResultStatus: 'failed' });
      const bob = await store.create({ owner: 'bob', request, errorResultStatus: 'failed' });
      assert.deepEqual(await store.deliveries(alice.taskId), [], 'creating is no event');
      await store.report(alice.taskId, { statusMessage: 'busy' });
      assert.deepEqual(await store.deliveries(alice.taskId), [], 'progress is no event');
      const asked = await store.requestInput(
        alice.taskId,
        'ok',
        { kind: 'elicitation', message: 'Approve?', requestedSchema: { type: 'object', properties: {} } },
        'Waiting',
      );
      await store.requestInput(alice.taskId, 'ok2', { kind: 'elicitation', message: 'And?', requestedSchema: { type: 'object', properties: {} } }, 'Waiting');
      const waiting = await store.deliveries(alice.taskId);
      assert.deepEqual(
        waiting.map((d) => [d.endpointId, d.type, d.state, d.attempts]),
        [['ops', 'task.input_required', 'pending', 0]],
        'one event for entering input_required, none for a second question',
      );
      assert.deepEqual(waiting[0]!.payload, {
        type: 'task.input_required',
        timestamp: asked.lastUpdatedAt,
        data: { taskId: alice.taskId, status: 'input_required', statusMessage: 'Waiting', createdAt: alice.createdAt, lastUpdatedAt: asked.lastUpdatedAt },
      });
      await store.finish(alice.taskId, 'completed', { type: 'result', result: { content: [{ type: 'text', text: 'secret result' }] } });
      await store.cancel(bob.taskId, 'bob');
      const all = await store.deliveries(alice.taskId);
      assert.deepEqual(all.map((d) => `${d.endpointId} ${d.type}`).sort(), ['alice-done task.completed', 'ops task.completed', 'ops task.input_required']);
      assert.deepEqual(
        (await store.deliveries(bob.taskId)).map((d) => `${d.endpointId} ${d.type}`),
        ['ops task.cancelled'],
        "alice's endpoint hears nothing of bob's task",
      );
      const text = JSON.stringify([...all, ...(await store.deliveries(bob.taskId))].map((d) => d.payload));
      assert.doesNotMatch(text, /do-not-send|secret result|secretArgument/);
      assert.equal(new Set(all.map((d) => d.deliveryId)).size, 3, 'each delivery has its own id');
    });

    it('a write that loses its compare-and-swap enqueues nothing; without routes nothing is ever enqueued', async () => {
      const { store, backend } = open();
      const task = await store.create({ owner: null, request, errorResultStatus: 'failed' });
      await store.report(task.taskId, { statusMessage: 'moved on' });
      const stale = { ...task, status: 'completed' as const, version: task.version + 1 };
      const delivery: OutboxDelivery = {
        deliveryId: newDeliveryId(),
        endpointId: 'ops',
        taskId: task.taskId,
        type: 'task.completed',
        payload: {
          type: 'task.completed',
          timestamp: task.createdAt,
          data: { taskId: task.taskId, status: 'completed', createdAt: task.createdAt, lastUpdatedAt: task.createdAt },
        },
        createdAt: clock,
        attempts: 0,
        nextAttemptAt: clock,
        state: 'pending',
      };
      assert.equal(await backend.replace(stale, task.version, [delivery]), false, 'the version moved: the swap loses');
      assert.deepEqual(await store.deliveries(task.taskId), [], 'and its delivery was not stored');
      assert.equal(await store.nextDeliveryAt(), undefined);

      const plain = open(null).store;
      const quiet = await plain.create({ owner: null, request, errorResultStatus: 'failed' });
      await plain.finish(quiet.taskId, 'failed', { type: 'error', error: { code: -32603, message: 'x' } });
      assert.deepEqual(await plain.deliveries(quiet.taskId), []);
      assert.deepEqual(await plain.emitTaskEvent(quiet.taskId, 'task.stalled'), []);
    });

    it('emitTaskEvent enqueues other features’ events (task.stalled, task.question_overdue) with their detail', async () => {
      const { store } = open([{ id: 'ops', events: ['task.stalled'] }]);
      const task = await store.create({ owner: 'alice', request, errorResultStatus: 'failed' });
      const [stalled] = await store.emitTaskEvent(task.taskId, 'task.stalled', { silentForMs: 60000 });
      assert.deepEqual(await store.emitTaskEvent(task.taskId, 'task.question_overdue', { questionKey: 'ok' }), [], 'the route does not take it');
      assert.equal(stalled!.payload.type, 'task.stalled');
      assert.deepEqual(stalled!.payload.data.detail, { silentForMs: 60000 });
      assert.deepEqual(
        (await store.deliveries(task.taskId)).map((d) => d.deliveryId),
        [stalled!.deliveryId],
      );
    });

    it('claims are exclusive (across two instances on shared stores); an expired claim is claimed again and the stale one cannot settle', async () => {
      const { store, second } = open([{ id: 'ops' }]);
      const other = second?.() ?? store;
      const tasks = [];
      for (let i = 0; i < 6; i++) tasks.push(await store.create({ owner: null, request, errorResultStatus: 'failed' }));
      for (const task of tasks) await store.cancel(task.taskId, null);
      const [a, b] = await Promise.all([store.claimDeliveries('one', 1000, 4), other.claimDeliveries('two', 1000, 4)]);
      const claimed = [...a, ...b];
      assert.equal(claimed.length, 6, 'every due delivery claimed once');
      assert.equal(new Set(claimed.map((d) => d.deliveryId)).size, 6, 'none by both');
      assert.ok(claimed.every((d) => d.attempts === 1 && d.claim && d.nextAttemptAt === clock + 1000));
      assert.deepEqual(await other.claimDeliveries('two', 1000, 10), [], 'claimed ones are not due while the claim lasts');

      clock += 1001; // the claims expire (a sender that died holding them)
      const again = await other.claimDeliveries('two', 1000, 10);
      assert.equal(again.length, 6);
      assert.ok(again.every((d) => d.attempts === 2));
      const first = claimed[0]!;
      assert.equal(await store.settleDelivery(first.deliveryId, first.claim!, { state: 'delivered' }), false, 'the stale claim writes nothing');
      const current = again.find((d) => d.deliveryId === first.deliveryId)!;
      assert.equal(await other.settleDelivery(current.deliveryId, current.claim!, { state: 'delivered' }), true);
      assert.equal(await other.settleDelivery(current.deliveryId, current.claim!, { state: 'delivered' }), false, 'a claim settles once');
    });

    it('records retries (due later, last error kept), deliveries and failures', async () => {
      const { store } = open([{ id: 'ops' }]);
      const task = await store.create({ owner: null, request, errorResultStatus: 'failed' });
      await store.finish(task.taskId, 'completed', { type: 'result', result: { content: [] } });
      const [d] = await store.claimDeliveries('me', 5000, 10);
      assert.equal(await store.settleDelivery(d!.deliveryId, d!.claim!, { state: 'pending', nextAttemptAt: clock + 200, lastError: 'HTTP 500' }), true);
      assert.equal(await store.nextDeliveryAt(), clock + 200);
      assert.deepEqual(await store.claimDeliveries('me', 5000, 10), [], 'not due yet');
      clock += 200;
      const [retry] = await store.claimDeliveries('me', 5000, 10);
      assert.equal(retry!.deliveryId, d!.deliveryId, 'the same id on every attempt');
      assert.equal(retry!.attempts, 2);
      assert.equal(retry!.lastError, 'HTTP 500');
      await store.settleDelivery(retry!.deliveryId, retry!.claim!, { state: 'delivered' });
      assert.equal(await store.nextDeliveryAt(), undefined);
      const [shown] = await store.deliveries(task.taskId);
      assert.deepEqual([shown!.state, shown!.attempts, shown!.lastError, shown!.claim], ['delivered', 2, 'HTTP 500', undefined]);

      const failing = await store.create({ owner: null, request, errorResultStatus: 'failed' });
      await store.cancel(failing.taskId, null);
      const [f] = await store.claimDeliveries('me', 5000, 10);
      await store.settleDelivery(f!.deliveryId, f!.claim!, { state: 'failed', lastError: 'HTTP 410' });
      assert.deepEqual(
        (await store.deliveries(failing.taskId)).map((x) => [x.state, x.lastError]),
        [['failed', 'HTTP 410']],
      );
      assert.deepEqual(await store.claimDeliveries('me', 5000, 10), [], 'a failed delivery is never sent again');
    });
  });
}
