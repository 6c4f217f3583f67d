/**
 * Operator retry (`TaskRuntime.retry`): a failed task runs again as a linked successor from a
 * chosen step — the steps before it and the answers kept, it and the later ones run again — and a
 * stuck `working` task runs again in place; on every store. The invoice ledger shows no payment
 * twice. The console's form and JSON route, the CLI's `mcp-tasks retry` and `tasks/get`'s
 * `_meta["mcp-tasks/retriedAs"]` in both protocol versions are driven too.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import * as z from 'zod';
import { Ledger } from '../examples/invoice/ledger.js';
import { ENGINE_ACCESS } from '../src/core/access.js';
import { IllegalTransitionError, InvalidArgumentError } from '../src/core/errors.js';
import { NonRetryableError } from '../src/core/transient.js';
import { RETRY_OF_KEY, parseJournalKey, stepKey, type RetriedEntry, type StepRecord } from '../src/core/journal-keys.js';
import type { JsonObject } from '../src/core/json.js';
import { silentLogger } from '../src/core/log.js';
import { RETRIED_AS_META_KEY } from '../src/core/task.js';
import type { TaskContext } from '../src/runtime/context.js';
import { TaskRuntime, type TaskHandler } from '../src/runtime/runtime.js';
import { createTaskServer } from '../src/server/task-server.js';
import { openStore } from '../src/store/open-store.js';
import type { TaskStore } from '../src/store/task-store.js';
import { ModernRawClient } from './helpers/modern-client.js';
import { RawMcpClient } from './helpers/raw-client.js';
import { testStores } from './helpers/test-stores.js';
import { until } from './helpers/until.js';

const { stores, dir } = testStores('retry');
let counter = 0;

const operator = { role: 'operator' as const, name: 'olivia' };
const anyArgs = { parse: (a: JsonObject) => a };
const text = (t: string) => ({ content: [{ type: 'text', text: t }] });
const APPROVAL = { type: 'object', properties: { decision: { type: 'string', enum: ['approve', 'reject'] } }, required: ['decision'] };

function runtimeWith(store: TaskStore, handlers: Record<string, TaskHandler<any>>): TaskRuntime {
  const runtime = new TaskRuntime(store, { logger: silentLogger, onError: () => undefined, leaseMs: 2000 });
  for (const [name, handler] of Object.entries(handlers)) runtime.register(name, { ...anyArgs, handler });
  return runtime;
}

/** Waits until `taskId` asks a question; answers it `approve` as a principal. */
async function approve(runtime: TaskRuntime, taskId: string): Promise<void> {
  const waiting = await until(
    async () => {
      const task = await runtime.store.get(taskId, ENGINE_ACCESS);
      return task.status === 'input_required' && task;
    },
    { timeoutMs: 10_000, what: 'the approval question' },
  );
  const [key] = Object.keys(waiting.inputRequests);
  await runtime.provideInput(taskId, key!, { action: 'accept', content: { decision: 'approve' } }, ENGINE_ACCESS);
}

/**
 * The invoice flow as a handler that lets a failed payment fail the task (as many real handlers
 * do): step 1 `validate`, the approval question, step 2 `approve`, then one payment step per line
 * through the invoice demo's real ledger (idempotent per invoice/line, fenced per task). `bankDetails`
 * says which lines the ERP can pay yet: the others fail with a non-retryable error.
 */
function invoiceHandler(ledger: Ledger, erp: { bankDetails: Set<string> }, calls: Record<string, number>): TaskHandler<any> {
  const count = (name: string) => (calls[name] = (calls[name] ?? 0) + 1);
  return async (args: JsonObject, ctx: TaskContext) => {
    const invoiceId = String(args.invoiceId);
    await ctx.step('validate', () => count('validate'));
    const answer = await ctx.elicit(`Approve ${invoiceId}?`, APPROVAL);
    if (answer.content?.decision !== 'approve') return text('rejected');
    await ctx.step('approve', () => count('approve'));
    for (const lineId of ['L1', 'L2']) {
      await ctx.step(`pay:${lineId}`, () => {
        count(`pay:${lineId}`);
        if (!erp.bankDetails.has(lineId)) throw new NonRetryableError(`ERP: no bank details for the vendor of line ${lineId}`);
        return ledger.pay({ invoiceId, lineId, amountCents: 100, currency: 'EUR', taskId: ctx.taskId, fencingToken: ctx.fencingToken });
      });
    }
    return text(`paid ${invoiceId}${ctx.retryOf ? ` (run again from task ${ctx.retryOf})` : ''}`);
  };
}

for (const { name, url } of stores) {
  describe(`operator retry: ${name}`, () => {
    it('a failed task runs again as a linked successor from step 3: steps 1-2 and the approval kept, the ledger pays each line once', async () => {
      const store = openStore(url());
      const ledger = new Ledger(join(dir, `ledger-${name}-${++counter}.db`));
      const erp = { bankDetails: new Set(['L2']) }; // line 1's vendor bank details are missing in the ERP
      const calls: Record<string, number> = {};
      const runtime = runtimeWith(store, { pay_invoice: invoiceHandler(ledger, erp, calls) });
      try {
        const first = await runtime.submit({ owner: 'alice', tool: 'pay_invoice', arguments: { invoiceId: 'INV-9' }, errorResultStatus: 'failed' });
        await approve(runtime, first.taskId);
        const failed = await runtime.waitForTerminal(first.taskId, 'alice');
        assert.equal(failed?.status, 'failed');
        assert.match(failed?.statusMessage ?? '', /no bank details/);
        assert.deepEqual(calls, { validate: 1, approve: 1, 'pay:L1': 1 });

        erp.bankDetails.add('L1'); // the ERP data is fixed
        const again = await runtime.retry(first.taskId, { from: { step: 'pay:L1' }, by: operator });
        assert.equal(again.inPlace, false);
        assert.notEqual(again.taskId, first.taskId);
        const done = await runtime.waitForTerminal(again.taskId, 'alice');
        assert.equal(done?.status, 'completed', JSON.stringify(done?.outcome));
        assert.deepEqual(done?.outcome, { type: 'result', result: text(`paid INV-9 (run again from task ${first.taskId})`) });
        assert.deepEqual(calls, { validate: 1, approve: 1, 'pay:L1': 2, 'pay:L2': 1 }, 'steps 1-2 replayed, not run; the approval was not asked again');
        assert.equal(done?.owner, 'alice', 'the same principal');
        assert.equal(done?.retryOf, first.taskId);

        const old = await store.get(first.taskId, ENGINE_ACCESS);
        assert.equal(old.status, 'failed', 'a terminal status is final');
        assert.deepEqual(old.outcome, failed?.outcome, 'and so is its result');
        assert.equal(old.retriedAs, again.taskId);
        const retried = [...(await store.readJournal(first.taskId))].find(([key]) => parseJournalKey(key)?.kind === 'retried')?.[1] as unknown as RetriedEntry;
        assert.deepEqual(retried.by, operator);
        assert.deepEqual(retried.from, { step: 'pay:L1' });
        assert.equal(retried.successor, again.taskId);
        assert.deepEqual(retried.dropped, [stepKey('pay:L1')]);
        const journal = await store.readJournal(again.taskId);
        assert.equal((journal.get(RETRY_OF_KEY) as { taskId?: string }).taskId, first.taskId);

        // The ledger: one payment per line, no attempt refused as a duplicate (nothing was paid twice).
        assert.deepEqual(
          ledger.payments('INV-9').map((p) => p.lineId),
          ['L1', 'L2'],
        );
        assert.deepEqual(
          ledger.attempts({ invoiceId: 'INV-9' }).map((a) => `${a.lineId}:${a.outcome}`),
          ['L1:paid', 'L2:paid'],
        );

        await assert.rejects(runtime.retry(first.taskId, { by: operator }), InvalidArgumentError, 'run again already: retry its successor');
        await assert.rejects(runtime.retry(again.taskId, { by: operator }), IllegalTransitionError, 'a task that completed is not run again');
      } finally {
        await runtime.close();
        await store.close();
        ledger.close();
      }
    });

    it('run again from an earlier step: the step that paid runs again and the ledger refuses to pay twice; answers after the step are cleared on request', async () => {
      const store = openStore(url());
      const ledger = new Ledger(join(dir, `ledger-${name}-${++counter}.db`));
      const erp = { bankDetails: new Set(['L1']) }; // line 1 pays, line 2 fails
      const calls: Record<string, number> = {};
      const runtime = runtimeWith(store, { pay_invoice: invoiceHandler(ledger, erp, calls) });
      try {
        const first = await runtime.submit({ owner: null, tool: 'pay_invoice', arguments: { invoiceId: 'INV-10' }, errorResultStatus: 'failed' });
        await approve(runtime, first.taskId);
        assert.equal((await runtime.waitForTerminal(first.taskId, null))?.status, 'failed');
        erp.bankDetails.add('L2');
        await assert.rejects(runtime.retry(first.taskId, { from: { step: 'no-such-step' }, by: operator }), /has no recorded step 'no-such-step'/);

        // From the start with the answers cleared: every step runs again and the approval is asked again.
        const again = await runtime.retry(first.taskId, { from: 'start', clearAnswers: true, by: operator });
        await approve(runtime, again.taskId);
        assert.equal((await runtime.waitForTerminal(again.taskId, null))?.status, 'completed');
        assert.deepEqual(calls, { validate: 2, approve: 2, 'pay:L1': 2, 'pay:L2': 2 });
        assert.deepEqual(
          ledger.payments('INV-10').map((p) => p.lineId),
          ['L1', 'L2'],
          'one payment per line',
        );
        assert.deepEqual(
          ledger
            .attempts({ invoiceId: 'INV-10' })
            .map((a) => `${a.lineId}:${a.outcome}`)
            .sort(),
          ['L1:duplicate', 'L1:paid', 'L2:paid'],
          'the second payment of line 1 was refused as a duplicate',
        );
      } finally {
        await runtime.close();
        await store.close();
        ledger.close();
      }
    });

    it('a stuck working task runs again in place: same task id, the stuck run fenced out, the later steps run again', async () => {
      const store = openStore(url());
      let release: (() => void) | undefined;
      const stuckOnce = { first: true };
      const attempts: string[] = [];
      const runtime = runtimeWith(store, {
        stuck: async (_args, ctx) => {
          await ctx.step('prepare', () => attempts.push('prepare'));
          const value = await ctx.step('call-partner', async () => {
            attempts.push('call-partner');
            if (stuckOnce.first) {
              stuckOnce.first = false;
              await new Promise<void>((resolve) => (release = resolve)); // a call that never answers
              return 'late answer of the stuck call';
            }
            return 'fresh answer';
          });
          return text(String(value));
        },
      });
      try {
        const task = await runtime.submit({ owner: null, tool: 'stuck', arguments: {}, errorResultStatus: 'failed' });
        await until(() => release !== undefined, { timeoutMs: 10_000, what: 'the stuck call' });
        const again = await runtime.retry(task.taskId, { by: operator });
        assert.deepEqual(again, { taskId: task.taskId, inPlace: true });
        const done = await runtime.waitForTerminal(task.taskId, null);
        assert.deepEqual(done?.outcome, { type: 'result', result: text('fresh answer') });
        assert.deepEqual(attempts, ['prepare', 'call-partner', 'call-partner'], 'prepare kept, the stuck step run again');
        release!(); // the stuck call answers late: its run was fenced out and records nothing
        await new Promise((resolve) => setTimeout(resolve, 100));
        const record = (await store.readJournal(task.taskId)).get(stepKey('call-partner')) as StepRecord;
        assert.deepEqual(record.ok && record.value, 'fresh answer');
        const retried = [...(await store.readJournal(task.taskId))].find(([key]) => parseJournalKey(key)?.kind === 'retried')?.[1] as unknown as RetriedEntry;
        assert.equal(retried.successor, undefined);
        assert.ok((done?.lease ?? { epoch: 0 }).epoch !== 1, 'the new run holds a newer lease epoch');
      } finally {
        release?.();
        await runtime.close();
        await store.close();
      }
    });
  });
}

describe('operator retry from the console, the CLI and the wire', () => {
  const token = 'operator-secret';
  const server = createTaskServer({
    store: `sqlite:${join(dir, 'served.db')}`,
    logger: silentLogger,
    console: { operatorTokens: { [token]: 'olivia' } },
  });
  const fixed = { L: false };
  server.registerTool('flaky', { description: 'fails until fixed', inputSchema: z.object({}), taskSupport: 'optional' }, async (_args, ctx) => {
    await ctx.step('one', () => 1);
    await ctx.step('two', () => {
      if (!fixed.L) throw new NonRetryableError('not fixed yet');
      return 2;
    });
    return text('fixed');
  });
  let url = '';
  let consoleUrl = '';
  after(() => server.close());

  it('the task page offers "Run again…" on a failed task; a POST with an operator token runs it again; tasks/get names the successor in both versions', async () => {
    url = (await server.listen({ port: 0 })).url;
    consoleUrl = new URL('/console', url).toString();
    const created = (await new ModernRawClient(url).request('tools/call', { name: 'flaky', arguments: {} })).result;
    const failed = await server.runtime.waitForTerminal(created.taskId, null);
    assert.equal(failed?.status, 'completed', '2026-07-28: a failing tool ends completed with isError');
    const auth = { authorization: `Bearer ${token}` };
    const page = await (await fetch(`${consoleUrl}/tasks/${created.taskId}`, { headers: auth })).text();
    assert.match(page, /Run again…/);
    assert.match(page, /<option value="step\/two">step two<\/option>/);
    assert.match(page, /<option value="stopped" selected>where it stopped/);

    fixed.L = true;
    const posted = await fetch(`${consoleUrl}/tasks/${created.taskId}/retry`, {
      method: 'POST',
      headers: { ...auth, 'content-type': 'application/x-www-form-urlencoded' },
      body: 'from=step%2Ftwo&confirm=yes',
      redirect: 'manual',
    });
    assert.equal(posted.status, 303);
    const successor = (await server.store.get(created.taskId, ENGINE_ACCESS)).retriedAs!;
    assert.equal(posted.headers.get('location'), `/console/tasks/${successor}`);
    assert.equal((await server.runtime.waitForTerminal(successor, null))?.status, 'completed');
    const successorPage = await (await fetch(`${consoleUrl}/tasks/${successor}`, { headers: auth })).text();
    assert.match(successorPage, /Runs again/);
    assert.match(successorPage, /runs a failed task again/);

    const modern = (await new ModernRawClient(url).request('tasks/get', { taskId: created.taskId })).result;
    assert.deepEqual(modern._meta?.[RETRIED_AS_META_KEY], { taskId: successor });
    const legacy = new RawMcpClient(url);
    await legacy.initialize();
    const got = (await legacy.request('tasks/get', { taskId: created.taskId })).result;
    assert.deepEqual(got._meta?.[RETRIED_AS_META_KEY], { taskId: successor });
    const result = (await legacy.request('tasks/result', { taskId: created.taskId })).result;
    assert.deepEqual(result._meta?.[RETRIED_AS_META_KEY], { taskId: successor }, 'the old result says so, otherwise unchanged');
    assert.equal(result.isError, true);

    const refused = await fetch(`${consoleUrl}/tasks/${created.taskId}/retry`, {
      method: 'POST',
      headers: { ...auth, accept: 'application/json', 'content-type': 'application/x-www-form-urlencoded' },
      body: 'confirm=yes',
    });
    assert.equal(refused.status, 400);
    assert.match(((await refused.json()) as { error: string }).error, /already run again/);
  });

  it('mcp-tasks retry runs a failed task again through the console; without a token it is refused', async () => {
    fixed.L = false;
    const created = (await new ModernRawClient(url).request('tools/call', { name: 'flaky', arguments: {} })).result;
    await server.runtime.waitForTerminal(created.taskId, null);
    fixed.L = true;
    // The server runs in this process: the CLI is a child awaited asynchronously (spawnSync would block the server).
    const cli = (args: string[]) =>
      new Promise<{ status: number | null; stdout: string; stderr: string }>((resolve) => {
        const child = spawn(process.execPath, ['--import', 'tsx', 'src/cli/main.ts', ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
        let stdout = '';
        let stderr = '';
        child.stdout.on('data', (d) => (stdout += String(d)));
        child.stderr.on('data', (d) => (stderr += String(d)));
        child.on('exit', (status) => resolve({ status, stdout, stderr }));
      });
    const anonymous = await cli(['retry', consoleUrl, created.taskId, '--from-step', 'two']);
    assert.equal(anonymous.status, 1);
    assert.match(anonymous.stderr, /an operator token is needed/);
    const res = await cli(['retry', consoleUrl, created.taskId, '--from-step', 'two', '--token', token, '--json']);
    assert.equal(res.status, 0, res.stderr);
    const out = JSON.parse(res.stdout) as { taskId: string; inPlace: boolean };
    assert.equal(out.inPlace, false);
    assert.equal((await server.runtime.waitForTerminal(out.taskId, null))?.status, 'completed');
    const unknown = await cli(['retry', consoleUrl, out.taskId, '--token', token]);
    // (a completed task is not run again)
    assert.equal(unknown.status, 1);
    assert.match(unknown.stderr, /not run again: .*completed/);
  });
});
