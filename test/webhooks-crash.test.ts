/**
 * A webhook survives SIGKILL between its enqueueing and its delivery: a server child writes the
 * event (a task completes) with dispatching off and is SIGKILLed; a second child, whose receiver
 * answers 503, tries it and is SIGKILLed too; a third, with the receiver back, delivers it. The
 * receiver verifies every request with `Webhook.verify`, sees one `webhook-id` across every attempt
 * and every process, and exactly one accepted delivery of it.
 */
import assert from 'node:assert/strict';
import type { ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, it } from 'node:test';
import { SqliteBackend } from '../src/store/sqlite-backend.js';
import { startExample } from './helpers/example-process.js';
import { newSecret, startReceiver } from './helpers/webhook-receiver.js';
import { until } from './helpers/until.js';

const dir = mkdtempSync(join(tmpdir(), 'mcp-tasks-webhook-crash-'));
const children: ChildProcess[] = [];
after(() => {
  for (const child of children) child.kill('SIGKILL');
  rmSync(dir, { recursive: true, force: true });
});

const kill = (child: ChildProcess) =>
  new Promise<void>((resolve) => (child.exitCode !== null ? resolve() : (child.once('exit', () => resolve()), child.kill('SIGKILL'))));

it('a delivery enqueued before a SIGKILL arrives after the restart, with the same webhook-id, accepted once', { timeout: 60_000 }, async () => {
  const secret = newSecret();
  let down = true;
  const receiver = await startReceiver({ '/hook': secret }, () => ({ status: down ? 503 : 200 }));
  after(() => receiver.close());
  const env = { WEBHOOK_STORE: join(dir, 'tasks.db'), WEBHOOK_URL: `${receiver.url}/hook`, WEBHOOK_SECRET: secret };
  const fixture = 'test/fixtures/webhook-server.ts';

  const writer = await startExample(fixture, { ...env, WEBHOOK_CREATE: '1', WEBHOOK_DISPATCH: '0' }, children);
  const taskId = writer.url; // the first line: the task id, printed once its completion (the event) is written
  await kill(writer.child);
  assert.equal(receiver.received.length, 0, 'killed before anything was sent');

  const trying = await startExample(fixture, { ...env, WEBHOOK_DISPATCH: '1' }, children);
  await until(() => receiver.received.length >= 2, { what: 'two refused attempts' });
  await kill(trying.child);

  down = false;
  const third = await startExample(fixture, { ...env, WEBHOOK_DISPATCH: '1' }, children);
  await until(() => receiver.delivered().length >= 1, { timeoutMs: 30_000, what: 'the delivery after the restart' });
  // The receiver's 200 reaches the server before the server records it: killing the third process
  // in between would leave the delivery pending (to be sent again, at least once, by design).
  await until(async () => (await deliveryOf(env.WEBHOOK_STORE, taskId))?.state === 'delivered', {
    timeoutMs: 30_000,
    intervalMs: 200,
    what: 'the store recording the accepted delivery',
  });
  await kill(third.child);

  assert.ok(
    receiver.received.every((r) => r.payload !== undefined),
    'every request verifies',
  );
  assert.equal(new Set(receiver.received.map((r) => r.id)).size, 1, 'one webhook-id across every attempt and process');
  assert.equal(receiver.delivered().length, 1, 'accepted once');
  const payload = receiver.delivered()[0]!.payload!;
  assert.deepEqual([payload.type, payload.data.taskId, payload.data.status], ['task.completed', taskId, 'completed']);

  const delivery = await deliveryOf(env.WEBHOOK_STORE, taskId);
  assert.equal(delivery!.deliveryId, receiver.received[0]!.id);
  assert.equal(delivery!.state, 'delivered');
  assert.ok(delivery!.attempts >= receiver.received.length, 'every request was a counted attempt');
});

/** The task's one delivery as the store holds it (a fresh connection, closed again). */
async function deliveryOf(file: string, taskId: string) {
  const backend = new SqliteBackend(file);
  try {
    return (await backend.listDeliveries(taskId))[0];
  } finally {
    await backend.close();
  }
}
