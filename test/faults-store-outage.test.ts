/**
 * Issue 23, fault 4: the shared store becomes unreachable — refusing connections, then silent (a
 * black hole: connections accepted, nothing answered) — behind a TCP proxy the test controls
 * (`helpers/tcp-proxy.ts`), in front of PostgreSQL and of Redis. While it is out, every request that
 * needs the store is answered, within the store's own timeouts, as retryable: HTTP 503 with
 * `Retry-After` and JSON-RPC error -32010 (never a hang, never -32603), and the process stays up.
 * Back to normal, everything works and nothing was lost or changed by the refused requests; a task
 * whose timer fell due during the outage finishes. And the CLI, following a task while the store
 * fails around the moment it answers the approval, finishes it: exit 0, each line paid once.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it, type TestContext } from 'node:test';
import { ENGINE_ACCESS } from '../src/core/access.js';
import { openStore } from '../src/store/open-store.js';
import type { TaskStore } from '../src/store/task-store.js';
import { startDemo, type DemoProcess } from './helpers/demo-process.js';
import { approve, describeAttempts, faultSuite, invoiceArgs, LedgerReader, ms, sharedStores, submitInvoice, untilTask } from './helpers/invoice-faults.js';
import { ModernRawClient } from './helpers/modern-client.js';
import { RawMcpClient } from './helpers/raw-client.js';
import { PG_URL, REDIS_URL } from './helpers/services.js';
import { startTcpProxy, type TcpProxy } from './helpers/tcp-proxy.js';
import { until } from './helpers/until.js';

const { dir, tag, erp, running, stores, beforeKill, afterKill } = faultSuite('outage');
const proxies: TcpProxy[] = [];
const children: { kill(): void }[] = [];
beforeKill(() => {
  for (const c of children) c.kill();
});
afterKill(async () => {
  for (const p of proxies) await p.close();
});
/** Bound of one request during an outage: far above the store timeouts (connect 3 s, query 5 s), far below the 20 s hangs of issue 23. */
const REQUEST_BOUND_MS = 15_000;

interface Answer {
  what: string;
  status: number;
  retryAfter: string | null;
  body: any;
  ms: number;
}

/** One 2026-07-28 request, answered or not within REQUEST_BOUND_MS (then it throws, naming the request). */
async function modern(url: string, what: string, method: string, params: Record<string, unknown>): Promise<Answer> {
  const started = Date.now();
  let response: Response;
  try {
    response = await new ModernRawClient(url, true, REQUEST_BOUND_MS).send(method, params);
  } catch (error) {
    throw new Error(`${what}: no answer within ${REQUEST_BOUND_MS} ms (${(error as Error).message})`);
  }
  const type = response.headers.get('content-type') ?? '';
  const text = await response.text();
  let body: any = text;
  if (type.includes('application/json')) body = JSON.parse(text);
  else if (type.includes('text/event-stream')) body = sseLast(text);
  return { what, status: response.status, retryAfter: response.headers.get('retry-after'), body, ms: Date.now() - started };
}

/** One 2025-11-25 request in `client`'s session, answered or not within REQUEST_BOUND_MS. */
async function legacy(client: RawMcpClient, what: string, method: string, params: Record<string, unknown>): Promise<Answer> {
  const started = Date.now();
  const response = await Promise.race([
    client.post({ jsonrpc: '2.0', id: 1000 + Math.floor(Math.random() * 1e6), method, params }),
    new Promise<never>((_, reject) => setTimeout(() => reject(new Error(`${what}: no answer within ${REQUEST_BOUND_MS} ms`)), REQUEST_BOUND_MS).unref()),
  ]);
  const type = response.headers.get('content-type') ?? '';
  const text = await Promise.race([
    response.text(),
    new Promise<never>((_, reject) =>
      setTimeout(() => reject(new Error(`${what}: its stream did not end within ${REQUEST_BOUND_MS} ms`)), REQUEST_BOUND_MS).unref(),
    ),
  ]);
  const body = type.includes('text/event-stream') ? sseLast(text) : JSON.parse(text);
  return { what, status: response.status, retryAfter: response.headers.get('retry-after'), body, ms: Date.now() - started };
}

/** The last JSON-RPC response in an SSE body. */
function sseLast(text: string): any {
  const messages = text
    .split('\n')
    .filter((line) => line.startsWith('data:'))
    .map((line) => {
      try {
        return JSON.parse(line.slice(5));
      } catch {
        return undefined;
      }
    })
    .filter((m) => m && m.id !== undefined && (m.result !== undefined || m.error !== undefined));
  return messages.at(-1) ?? text;
}

/** The answer to a store outage: HTTP 503, `Retry-After` (whole seconds ≥ 1), JSON-RPC -32010 marked retryable. */
function assertRetryable(answer: Answer): void {
  const show = `${answer.what} answered HTTP ${answer.status}, Retry-After ${answer.retryAfter}, after ${answer.ms} ms: ${JSON.stringify(answer.body)}`;
  assert.equal(answer.body?.error?.code, -32010, show);
  assert.equal(answer.body.error.data?.retryable, true, show);
  assert.equal(answer.status, 503, show);
  assert.match(answer.retryAfter ?? '', /^[1-9]\d*$/, show);
}

/**
 * 2025-11-25 requests in a session are answered on an SSE stream whose HTTP 200 is sent before the
 * answer exists: the -32010 error must be in it; a JSON answer must be the 503 with Retry-After.
 */
function assertRetryableLegacy(answer: Answer): void {
  const show = `${answer.what} answered HTTP ${answer.status}, Retry-After ${answer.retryAfter}, after ${answer.ms} ms: ${JSON.stringify(answer.body)}`;
  assert.equal(answer.body?.error?.code, -32010, show);
  assert.equal(answer.body.error.data?.retryable, true, show);
  if (answer.status !== 200) assertRetryable(answer);
}

/** Reports how each request was answered (status, Retry-After, time, JSON-RPC error code). */
const report = (t: TestContext, answers: Answer[]) =>
  t.diagnostic(
    answers
      .map(
        (a) =>
          `${a.what}: HTTP ${a.status}, Retry-After ${a.retryAfter}, ${a.ms} ms, ${a.body?.error ? `error ${a.body.error.code} ${a.body.error.message}` : 'result'}`,
      )
      .join('\n'),
  );

for (const { name, url: urlOf } of sharedStores(tag)) {
  const url = urlOf('outage');
  const target = new URL(name === 'postgres' ? PG_URL : REDIS_URL);
  describe(`the ${name} store behind a failing network`, () => {
    let proxy: TcpProxy;
    let demo: DemoProcess;
    let store: TaskStore;
    const ledgerPath = join(dir, `${name}-ledger.db`);
    const ledger = new LedgerReader(ledgerPath);
    const up = async () => {
      proxy = await startTcpProxy({ host: target.hostname, port: Number(target.port) });
      proxies.push(proxy);
      demo = await startDemo([
        '--store',
        proxy.url(url),
        '--ledger',
        ledgerPath,
        '--erp',
        erp,
        '--instance-id',
        `${name}-P`,
        '--lease-ms',
        '2000',
        '--poll-interval',
        '100',
      ]);
      running.push(demo);
      store = openStore(url); // the test's own view, not through the proxy
      stores.push(store);
    };

    it(
      'refused, then black-holed: every request is answered 503 + Retry-After, -32010; back, state intact and every task finishes',
      { timeout: 120_000 },
      async (t) => {
        await up();
        const x = `${name}-X`;
        const xLater = new Date(Date.now() + 5000).toISOString();
        const xId = await submitInvoice(
          demo.url,
          invoiceArgs(x, [
            { lineId: 'now', amount: 10 },
            { lineId: 'later', amount: 11, payOn: xLater },
          ]),
        );
        await approve(demo.url, xId);
        await untilTask(
          () => demo.url,
          xId,
          (task) => task.status === 'working' && /waiting until/i.test(task.statusMessage ?? ''),
          'X waits for payOn',
        );
        const yId = await submitInvoice(demo.url, invoiceArgs(`${name}-Y`, [{ lineId: 'a', amount: 20 }]));
        const wId = await submitInvoice(demo.url, invoiceArgs(`${name}-W`, [{ lineId: 'a', amount: 30 }]));
        const yTask = await untilTask(
          () => demo.url,
          yId,
          (task) => task.status === 'input_required',
          'Y awaits approval',
        );
        await untilTask(
          () => demo.url,
          wId,
          (task) => task.status === 'input_required',
          'W awaits approval',
        );
        const yKey = Object.keys(yTask.inputRequests)[0]!;
        const session = new RawMcpClient(demo.url);
        await session.initialize();
        const approveY = { taskId: yId, inputResponses: { [yKey]: { action: 'accept', content: { decision: 'approve' } } } };
        const newInvoice = (id: string) => ({ name: 'process_invoice', arguments: invoiceArgs(`${name}-${id}`, [{ lineId: 'a', amount: 40 }]) });

        // Silent, from healthy: the connections the demo holds stop answering (no close, no reset).
        await proxy.setMode('blackhole');
        const stalled = await Promise.all([
          modern(demo.url, 'black hole (open connections): tasks/get X', 'tasks/get', { taskId: xId }),
          modern(demo.url, 'black hole (open connections): tasks/get Y', 'tasks/get', { taskId: yId }),
          modern(demo.url, 'black hole (open connections): tools/call process_invoice', 'tools/call', newInvoice('Z0')),
          legacy(session, 'black hole (open connections): 2025 tasks/get', 'tasks/get', { taskId: xId }),
        ]);
        report(t, stalled);
        assert.equal(demo.child.exitCode, null, `the demo exited:\n${demo.log()}`);

        // Refused: the proxy resets every store connection and refuses new ones. X's payOn falls due meanwhile.
        await proxy.setMode('refuse');
        const refused: Answer[] = [];
        for (const [what, method, params] of [
          ['tasks/get', 'tasks/get', { taskId: xId }],
          ['tasks/update (approve Y)', 'tasks/update', approveY],
          ['tasks/cancel (W)', 'tasks/cancel', { taskId: wId }],
          ['tools/call process_invoice', 'tools/call', newInvoice('Z1')],
        ] as const)
          refused.push(await modern(demo.url, `refused: ${what}`, method, params));
        refused.push(await legacy(session, 'refused: 2025 tasks/get', 'tasks/get', { taskId: xId }));
        const listPayments = await modern(demo.url, 'refused: tools/call list_payments (no store needed)', 'tools/call', {
          name: 'list_payments',
          arguments: {},
        });
        report(t, [...refused, listPayments]);
        await until(() => Date.now() >= ms(xLater) + 500, { timeoutMs: 10_000, intervalMs: 50, what: "X's payOn during the outage" });
        assert.equal(demo.child.exitCode, null, `the demo exited:\n${demo.log()}`);

        // Silent, from refused: new connections accepted, never answered.
        await proxy.setMode('blackhole');
        const silent = await Promise.all([
          modern(demo.url, 'black hole (new connections): tasks/get X', 'tasks/get', { taskId: xId }),
          modern(demo.url, 'black hole (new connections): tasks/get Y', 'tasks/get', { taskId: yId }),
          modern(demo.url, 'black hole (new connections): tools/call process_invoice', 'tools/call', newInvoice('Z2')),
          legacy(session, 'black hole (new connections): 2025 tasks/get', 'tasks/get', { taskId: yId }),
        ]);
        report(t, silent);
        assert.equal(demo.child.exitCode, null, `the demo exited:\n${demo.log()}`);

        // Back: the refused requests changed nothing; everything works; X (its timer fell due in the outage) finishes.
        await proxy.setMode('forward');
        const back = await untilTask(
          () => demo.url,
          yId,
          () => true,
          'Y readable again',
          30_000,
        );
        assert.equal(back.status, 'input_required', 'the answer refused with 503 was not taken');
        assert.equal(
          (
            await untilTask(
              () => demo.url,
              wId,
              () => true,
              'W',
            )
          ).status,
          'input_required',
          'the cancel refused with 503 did nothing',
        );
        await approve(demo.url, yId);
        const wCancel = await new ModernRawClient(demo.url).request('tasks/cancel', { taskId: wId });
        assert.ok(!wCancel.error, JSON.stringify(wCancel));
        for (const id of [xId, yId])
          await untilTask(
            () => demo.url,
            id,
            (task) => task.status === 'completed',
            'completes after the outage',
            40_000,
          );
        assert.equal(
          (
            await untilTask(
              () => demo.url,
              wId,
              () => true,
              'W',
            )
          ).status,
          'cancelled',
        );
        assert.equal(
          (
            await untilTask(
              () => demo.url,
              xId,
              () => true,
              'X',
            )
          ).result.structuredContent.status,
          'paid',
        );

        for (const answer of [...stalled, ...refused, ...silent]) (answer.what.includes('2025') ? assertRetryableLegacy : assertRetryable)(answer);
        assert.ok(!listPayments.body?.error, `list_payments needs no task store: ${JSON.stringify(listPayments.body)}`);

        const payments = ledger.payments(`${name}-`);
        assert.deepEqual(
          payments.filter((p) => [x, `${name}-Y`].includes(p.invoice_id)).map((p) => `${p.invoice_id}/${p.line_id}`),
          [`${x}/later`, `${x}/now`, `${name}-Y/a`],
          'each line paid exactly once',
        );
        assert.ok(ms(payments.find((p) => p.line_id === 'later')!.paid_at) >= ms(xLater), 'not before payOn');
        assert.deepEqual(
          payments.filter((p) => p.invoice_id === `${name}-W`),
          [],
        );
        t.diagnostic(`attempts:\n${describeAttempts(ledger.attempts(`${name}-`))}`);
        const outages = demo.log().match(/task store unavailable/g)?.length ?? 0;
        assert.ok(outages >= 1, `the outage is logged:\n${demo.log()}`);
        assert.match(demo.log(), /task store available again/);
        t.diagnostic(`'task store unavailable' logged ${outages} time(s)`);
      },
    );

    it('the CLI follows a task through outages around its answer: exit 0, each line paid once', { timeout: 120_000 }, async (t) => {
      if (!demo) await up();
      await proxy.setMode('forward');
      const journal = join(dir, `${name}-journal`);
      const invoiceId = `${name}-CLI`;
      const payOn = new Date(Date.now() + 12_000).toISOString();
      const argsFile = join(dir, `${name}-cli-args.json`);
      writeFileSync(
        argsFile,
        JSON.stringify(
          invoiceArgs(invoiceId, [
            { lineId: 'a', amount: 50 },
            { lineId: 'b', amount: 51, payOn },
          ]),
        ),
      );
      const child = spawn(
        process.execPath,
        [
          '--import',
          'tsx',
          'src/cli/main.ts',
          'call',
          demo.url,
          'process_invoice',
          '--args-file',
          argsFile,
          '--answer',
          '{"decision":"approve"}',
          '--journal',
          journal,
          '--json',
        ],
        { stdio: ['ignore', 'pipe', 'pipe'] },
      );
      children.push({ kill: () => child.kill('SIGKILL') });
      const out = { stdout: '', stderr: '' };
      child.stdout.on('data', (chunk) => (out.stdout += String(chunk)));
      child.stderr.on('data', (chunk) => (out.stderr += String(chunk)));
      const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));

      // The CLI has seen the question and is sending its answer: the store is refused right then, then silent.
      await until(() => /input_required/.test(out.stderr), { timeoutMs: 30_000, what: () => `the CLI to see the question:\n${out.stderr}` });
      await proxy.setMode('refuse');
      const taskId = /\[([0-9a-f]{32})\]/.exec(out.stderr)?.[1];
      assert.ok(taskId, out.stderr);
      await new Promise((resolve) => setTimeout(resolve, 2000)); // fault parameter: 2 s refused
      await proxy.setMode('blackhole');
      await new Promise((resolve) => setTimeout(resolve, 3000)); // fault parameter: 3 s silent
      await proxy.setMode('forward');

      // The answer is in (sent again by the CLI if it was refused): the store fails again while line a is paid.
      await until(async () => (await store.get(taskId, ENGINE_ACCESS)).status !== 'input_required', {
        timeoutMs: 40_000,
        what: () => `the CLI's answer to be taken:\n${out.stderr}`,
      });
      await proxy.setMode('refuse');
      await new Promise((resolve) => setTimeout(resolve, 2000)); // fault parameter: 2 s refused
      await proxy.setMode('forward');

      const code = await Promise.race([exited, until(() => false, { timeoutMs: 60_000, what: () => `the CLI to exit:\n${out.stderr}` })]);
      t.diagnostic(`CLI stderr:\n${out.stderr}`);
      assert.equal(code, 0, `the CLI exited ${code}:\n${out.stderr}\n${out.stdout}`);
      const result = JSON.parse(out.stdout);
      assert.equal(result.status, 'completed', out.stdout);
      assert.equal(result.result.structuredContent.status, 'paid', out.stdout);
      const payments = ledger.payments(invoiceId);
      assert.deepEqual(
        payments.map((p) => p.line_id),
        ['a', 'b'],
        'each line paid exactly once',
      );
      assert.ok(ms(payments[1]!.paid_at) >= ms(payOn), `line b paid at ${payments[1]!.paid_at}, before its payOn ${payOn}`);
      t.diagnostic(`attempts:\n${describeAttempts(ledger.attempts(invoiceId))}`);
    });
  });
}
