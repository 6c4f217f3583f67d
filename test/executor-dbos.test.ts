/**
 * The DBOS executor (`src/executors/dbos`) behind the real `TaskRuntime`, on a real PostgreSQL, with real child processes that are
 * SIGKILLed and SIGSTOPped: steps are not re-run once DBOS recorded them (side-effect attempts
 * counted at the ledger), a durable timer survives a restart and never fires early, answers reach
 * the handler exactly once, cancel stops the workflow, and a second instance recovers the
 * workflows of a killed holder within the lease plus a few seconds.
 */
import assert from 'node:assert/strict';
import { after, afterEach, before, describe, it } from 'node:test';
import { ENGINE_ACCESS } from '../src/core/access.js';
import { startTcpProxy } from './helpers/tcp-proxy.js';
import { dbosTestEnv, startWorker, type DbosTestEnv, type DbosWorker } from './helpers/dbos-env.js';

const LEASE_MS = 3000;
const approve = { action: 'accept', content: { ok: true } };

describe('DBOS executor', { timeout: 300_000 }, () => {
  let env: DbosTestEnv;
  const workers: DbosWorker[] = [];
  const start = async (extra: Record<string, string> = {}): Promise<DbosWorker> => {
    const worker = await startWorker(env.workerEnv({ LEASE_MS: String(LEASE_MS), ...extra }));
    workers.push(worker);
    return worker;
  };
  const submit = async (worker: DbosWorker, tool: string, args: Record<string, unknown>, ttl?: number): Promise<string> =>
    (await worker.send({ op: 'submit', tool, args, ...(ttl && { ttl }) })).taskId as string;

  before(async () => {
    env = await dbosTestEnv();
  });
  // A failed test's workers must not run on into the next test (they share its store and DBOS schemas).
  afterEach(async () => {
    for (const worker of workers.splice(0)) await worker.kill().catch(() => undefined);
  });
  after(async () => {
    for (const worker of workers) await worker.kill().catch(() => undefined);
    await env?.dispose();
  });

  it('runs the invoice end to end: question, pay date, each line paid once', async () => {
    const worker = await start();
    const taskId = await submit(worker, 'invoice', { lines: 3, payDelayMs: 500 });
    await env.waitStatus(taskId, 'input_required', 20_000);
    await worker.send({ op: 'answer', taskId, key: 'approve', value: approve });
    const task = await env.waitTerminal(taskId, 20_000);
    assert.equal(task.status, 'completed', JSON.stringify(task));
    const paid = (await env.payments()).filter((row) => row.task_id === taskId);
    assert.deepEqual(
      paid.map((row) => row.line),
      [0, 1, 2],
    );
    for (const row of paid) assert.ok(row.paid_at.getTime() >= row.due_at.getTime(), `line ${row.line} paid early`);
    for (let i = 0; i < 3; i++) assert.equal(await env.attempts(taskId, `check-${i}`), 1);
    await worker.send({ op: 'close' });
    await worker.exited();
  });

  const paidOnce = async (taskIds: string[], lines: number): Promise<void> => {
    const rows = await env.payments();
    for (const taskId of taskIds) {
      const paid = rows.filter((row) => row.task_id === taskId);
      assert.deepEqual(
        paid.map((row) => row.line),
        Array.from({ length: lines }, (_, i) => i),
        `task ${taskId}: each line paid exactly once`,
      );
      for (const row of paid) assert.ok(row.paid_at.getTime() >= row.due_at.getTime(), `task ${taskId} line ${row.line} paid before its pay date`);
    }
  };

  for (const stable of [false, true]) {
    it(`SIGKILL while the approval question waits; restarted (${stable ? 'same' : 'new'} executor id): every invoice finishes, each line paid once`, async () => {
      const extra: Record<string, string> = stable ? { EXECUTOR_ID: `stable-${env.suffix}` } : {};
      const first = await start(extra);
      const taskIds = await Promise.all(Array.from({ length: 3 }, () => submit(first, 'invoice', { lines: 2, payDelayMs: 300 })));
      for (const taskId of taskIds) await env.waitStatus(taskId, 'input_required', 20_000);
      await first.kill();
      const second = await start(extra);
      const restarted = Date.now();
      for (const taskId of taskIds) await second.send({ op: 'answer', taskId, key: 'approve', value: approve });
      for (const taskId of taskIds) assert.equal((await env.waitTerminal(taskId, 30_000)).status, 'completed');
      const took = Date.now() - restarted;
      await paidOnce(taskIds, 2);
      for (const taskId of taskIds) for (let i = 0; i < 2; i++) assert.equal(await env.attempts(taskId, `check-${i}`), 1, 'a recorded step is not re-run');
      console.log(`# ${stable ? 'same' : 'new'} executor id: 3 invoices finished ${took} ms after the restart (lease ${LEASE_MS} ms)`);
      await second.kill();
    });
  }

  it('SIGKILL while the pay-date timer waits: the timer survives the restart, nothing paid early or twice', async () => {
    const first = await start();
    const taskIds = await Promise.all(Array.from({ length: 3 }, () => submit(first, 'invoice', { lines: 2, payDelayMs: 5000 })));
    for (const taskId of taskIds) await env.waitStatus(taskId, 'input_required', 20_000);
    for (const taskId of taskIds) await first.send({ op: 'answer', taskId, key: 'approve', value: approve });
    for (const taskId of taskIds) await untilMessage(taskId, 'Waiting for the pay date');
    await first.kill();
    assert.equal((await env.payments()).filter((row) => taskIds.includes(row.task_id)).length, 0);
    const second = await start();
    for (const taskId of taskIds) assert.equal((await env.waitTerminal(taskId, 30_000)).status, 'completed');
    await paidOnce(taskIds, 2);
    for (const taskId of taskIds) assert.equal(await env.attempts(taskId, 'check-0'), 1);
    await second.kill();
  });

  it('delivers an answer stored but never sent (a crash between the store write and DBOS.send) exactly once', async () => {
    const worker = await start();
    const taskId = await submit(worker, 'invoice', { lines: 1, payDelayMs: 0 });
    await env.waitStatus(taskId, 'input_required', 20_000);
    // Written to the store only, as if the process crashed before executor.answered.
    await env.store.answerInputs(taskId, { approve }, ENGINE_ACCESS);
    assert.equal((await env.waitTerminal(taskId, 20_000)).status, 'completed');
    await paidOnce([taskId], 1);
    // Sent again (a duplicate delivery): the handler has consumed it once, nothing changes.
    await worker.send({ op: 'answer', taskId, key: 'approve', value: approve }).catch(() => undefined);
    await paidOnce([taskId], 1);
    await worker.kill();
  });

  it('cancel stops the workflow: no step begins after the cancel is acknowledged', async () => {
    const worker = await start();
    const taskId = await submit(worker, 'ticker', { steps: 1000, sleepMs: 50 });
    await until(async () => (await env.attempts(taskId, 'tick-3')) === 1, 20_000);
    await worker.send({ op: 'cancel', taskId });
    const acknowledged = await ticks(taskId);
    await new Promise((resolve) => setTimeout(resolve, 1500));
    assert.equal(await ticks(taskId), acknowledged, 'no tick after the cancel');
    assert.equal((await env.store.get(taskId, ENGINE_ACCESS)).status, 'cancelled');
    const workflow = await env.pool.query(`SELECT status FROM ${env.dbosSchema}.workflow_status WHERE workflow_uuid = $1`, [taskId]);
    assert.equal(workflow.rows[0].status, 'CANCELLED');
    await worker.kill();
  });

  it('two instances: SIGKILL the holder, the other finishes its invoices within the lease plus a few seconds', async () => {
    const a = await start();
    const b = await start();
    const taskIds = await Promise.all(Array.from({ length: 4 }, () => submit(a, 'invoice', { lines: 2, payDelayMs: 1500 })));
    for (const taskId of taskIds) await env.waitStatus(taskId, 'input_required', 20_000);
    for (const taskId of taskIds.slice(0, 2)) await a.send({ op: 'answer', taskId, key: 'approve', value: approve });
    await a.kill();
    const killed = Date.now();
    for (const taskId of taskIds.slice(2)) await b.send({ op: 'answer', taskId, key: 'approve', value: approve });
    for (const taskId of taskIds) assert.equal((await env.waitTerminal(taskId, LEASE_MS + 10_000)).status, 'completed');
    const took = Date.now() - killed;
    await paidOnce(taskIds, 2);
    assert.ok(took < LEASE_MS + 5000, `took ${took} ms`);
    const pids = new Set((await env.payments()).filter((row) => taskIds.includes(row.task_id)).map((row) => row.pid));
    assert.deepEqual([...pids], [b.pid]);
    console.log(`# takeover: 4 invoices of the killed holder finished ${took} ms after the SIGKILL (lease ${LEASE_MS} ms)`);
    await b.kill();
  });

  it('a holder paused (SIGSTOP) past its lease begins no step after it is resumed (one in flight at the pause may land); the other instance finishes its tasks', async () => {
    const a = await start();
    const taskIds = await Promise.all(Array.from({ length: 3 }, () => submit(a, 'ticker', { steps: 30, sleepMs: 100 })));
    const b = await start();
    await until(async () => (await env.attempts(taskIds[0]!, 'tick-2')) === 1, 20_000);
    a.stop();
    const stopped = await env.pool.query('SELECT clock_timestamp() AS now');
    await new Promise((resolve) => setTimeout(resolve, LEASE_MS * 2));
    a.cont();
    for (const taskId of taskIds) assert.equal((await env.waitTerminal(taskId, 60_000)).status, 'completed');
    const late = await env.pool.query(
      // An attempt in flight at the SIGSTOP (its step function began before it) may land after the SIGCONT: no fencing
      // stops a write already on its way (the demo's ledger refuses it by its fencing token); none may begin afterwards.
      `SELECT task_id, step, began, at FROM ${env.ledger}_attempts WHERE pid = $1 AND began > $2::timestamptz`,
      [a.pid, stopped.rows[0].now],
    );
    assert.deepEqual(late.rows, [], 'the resumed instance began no step of the tasks it lost');
    for (const taskId of taskIds) for (let i = 0; i < 30; i++) assert.ok((await env.attempts(taskId, `tick-${i}`)) >= 1, `tick ${i} of ${taskId} ran`);
    await a.kill();
    await b.kill();
  });

  it('cancel while the holder is paused: after SIGCONT it begins no step of the cancelled task', async () => {
    const a = await start();
    const b = await start();
    const taskId = await submit(a, 'ticker', { steps: 1000, sleepMs: 100 });
    await until(async () => (await env.attempts(taskId, 'tick-2')) === 1, 20_000);
    a.stop();
    const sent = Date.now();
    await b.send({ op: 'cancel', taskId });
    const acknowledgedAfter = Date.now() - sent;
    const acknowledged = (await env.pool.query('SELECT clock_timestamp() AS now')).rows[0].now as Date;
    a.cont();
    await new Promise((resolve) => setTimeout(resolve, 2000));
    const late = await env.pool.query(`SELECT step, began, at FROM ${env.ledger}_attempts WHERE task_id = $1 AND began > $2`, [taskId, acknowledged]);
    assert.deepEqual(late.rows, [], 'no step begins after the acknowledged cancel');
    console.log(`# cancel during a SIGSTOP of the holder: acknowledged in ${acknowledgedAfter} ms`);
    assert.equal((await env.store.get(taskId, ENGINE_ACCESS)).status, 'cancelled');
    await a.kill();
    await b.kill();
  });

  it('a task-store outage longer than the lease is never a task outcome, and re-runs no step', async () => {
    const proxy = await startTcpProxy({ host: '127.0.0.1', port: 5432 });
    try {
      const storeUrl = proxy.url(env.storeUrl) + '&connectTimeoutMs=1000&queryTimeoutMs=2000';
      const worker = await start({ STORE_URL: storeUrl });
      const taskIds = await Promise.all(Array.from({ length: 3 }, () => submit(worker, 'ticker', { steps: 20, sleepMs: 100 })));
      await until(async () => (await env.attempts(taskIds[0]!, 'tick-2')) === 1, 20_000);
      await proxy.setMode('refuse');
      await new Promise((resolve) => setTimeout(resolve, LEASE_MS + 1500));
      await proxy.setMode('forward');
      for (const taskId of taskIds) assert.equal((await env.waitTerminal(taskId, 60_000)).status, 'completed');
      for (const taskId of taskIds) for (let i = 0; i < 20; i++) assert.equal(await env.attempts(taskId, `tick-${i}`), 1, `tick ${i} of ${taskId} ran once`);
      await worker.kill();
    } finally {
      await proxy.close();
    }
  });

  it("purge: the workflows of tasks the runtime purged are deleted from DBOS; others' stay", async () => {
    const worker = await start();
    const short = await submit(worker, 'ticker', { steps: 1, sleepMs: 0 }, 1000);
    const long = await submit(worker, 'ticker', { steps: 1, sleepMs: 0 });
    for (const taskId of [short, long]) assert.equal((await env.waitTerminal(taskId, 20_000)).status, 'completed');
    const workflows = async () =>
      (await env.pool.query(`SELECT workflow_uuid FROM ${env.dbosSchema}.workflow_status WHERE workflow_uuid = ANY($1)`, [[short, long]])).rows.map(
        (row) => row.workflow_uuid as string,
      );
    assert.deepEqual((await workflows()).sort(), [short, long].sort());
    await new Promise((resolve) => setTimeout(resolve, 1200)); // the short task's TTL passes
    const purged = await worker.send({ op: 'purge' });
    assert.ok((purged.tasks as number) >= 1 && (purged.workflows as number) >= 1, JSON.stringify(purged));
    assert.deepEqual(await workflows(), [long]);
    const steps = await env.pool.query(`SELECT count(*) FROM ${env.dbosSchema}.operation_outputs WHERE workflow_uuid = $1`, [short]);
    assert.equal(Number(steps.rows[0].count), 0, 'its step records went with it');
    await worker.kill();
  });

  async function ticks(taskId: string): Promise<number> {
    return Number((await env.pool.query(`SELECT count(*) FROM ${env.ledger}_attempts WHERE task_id = $1`, [taskId])).rows[0].count);
  }

  async function untilMessage(taskId: string, message: string): Promise<void> {
    await until(async () => (await env.store.get(taskId, ENGINE_ACCESS)).statusMessage === message, 20_000);
  }
});

async function until(check: () => Promise<boolean>, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (await check()) return;
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  throw new Error(`condition not met within ${timeoutMs} ms`);
}
