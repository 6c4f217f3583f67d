/** The mcp-tasks CLI against a running demo server, as a user runs it (child processes, real exit codes). */
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { createServer } from 'node:http';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { ClientJournal } from '../src/client/journal.js';
import { until } from './helpers/until.js';
import { startDemo, type DemoProcess } from './helpers/demo-process.js';

const dir = mkdtempSync(join(tmpdir(), 'mcp-tasks-cli-'));
const journal = join(dir, 'journal');
const invoice = (id: string) => JSON.parse(readFileSync(join('examples/invoice/data/invoices', `${id}.json`), 'utf8'));

function cli(args: string[], journalDir = journal) {
  const res = spawnSync(process.execPath, ['--import', 'tsx', 'src/cli/main.ts', ...args, '--journal', journalDir], { encoding: 'utf8', timeout: 60_000 });
  return { code: res.status, stdout: res.stdout, stderr: res.stderr };
}

/** The CLI as a running child process (so a test can act while it follows, and SIGKILL it); output collected as it comes. */
function cliChild(args: string[], journalDir = journal) {
  const child = spawn(process.execPath, ['--import', 'tsx', 'src/cli/main.ts', ...args, '--journal', journalDir], { stdio: ['ignore', 'pipe', 'pipe'] });
  const out = { stdout: '', stderr: '' };
  child.stdout.on('data', (chunk) => (out.stdout += String(chunk)));
  child.stderr.on('data', (chunk) => (out.stderr += String(chunk)));
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  return { child, out, exited };
}

let unique = 0;
/** A one-line invoice that passes validation (tiny amount against the demo PO), optionally paid at `payOn`. */
function smallInvoice(payOn?: string) {
  return {
    invoiceId: `INV-CLI-${process.pid}-${++unique}`,
    vendorId: 'V-1001',
    poNumber: 'PO-2026-0417',
    currency: 'EUR',
    issuedOn: '2026-11-20',
    lines: [{ lineId: '1', description: 'cli test', amount: 1, ...(payOn && { payOn }) }],
  };
}

const idOf = (text: string) => /\[([0-9a-f]{32})\]/.exec(text)?.[1];

describe('mcp-tasks CLI', () => {
  let demo: DemoProcess;
  before(async () => {
    demo = await startDemo(['--store', `sqlite:${join(dir, 'srv', 'invoice.db')}`, '--poll-interval', '100']);
  });
  after(async () => {
    await demo.kill();
    rmSync(dir, { recursive: true, force: true });
  });

  it('speaks 2025-11-25 when asked (--era legacy) and 2026-07-28 by default', () => {
    const legacy = cli(['call', demo.url, 'export_payments_report', '--args', '{"format":"json"}', '--era', 'legacy', '--json']);
    assert.equal(legacy.code, 0, legacy.stderr);
    const modern = cli(['call', demo.url, 'export_payments_report', '--args', '{"format":"json"}', '--json']);
    assert.equal(modern.code, 0, modern.stderr);
    const legacyTask = JSON.parse(legacy.stdout).taskId;
    const modernTask = JSON.parse(modern.stdout).taskId;
    const entries = JSON.parse(cli(['ls', '--json']).stdout) as any[];
    assert.equal(entries.find((e) => e.taskId === legacyTask)?.status, 'completed');
    const refs = new ClientJournal(journal);
    assert.equal(refs.get(legacyTask)?.reference.generation, 'v1');
    assert.equal(refs.get(modernTask)?.reference.generation, 'v2');
  });

  it('calls a tool as a task, answers with --answer, prints the result (--json)', () => {
    const res = cli([
      'call',
      demo.url,
      'process_invoice',
      '--args',
      JSON.stringify({ invoice: invoice('INV-2026-0001') }),
      '--answer',
      '{"decision":"approve"}',
      '--json',
    ]);
    assert.equal(res.code, 0, res.stderr);
    const out = JSON.parse(res.stdout);
    assert.equal(out.status, 'completed');
    assert.equal(out.result.structuredContent.status, 'paid');
    assert.match(res.stderr, /input_required: Approve invoice INV-2026-0001/);
  });

  it('detaches with exit code 3 when nobody can answer, and resume --answer finishes it', () => {
    const first = cli(['call', demo.url, 'process_invoice', '--args', JSON.stringify({ invoice: invoice('INV-2026-0003') })]);
    assert.equal(first.code, 3, first.stderr + first.stdout);
    assert.match(first.stdout, /needs input: Approve invoice INV-2026-0003/);
    const taskId = /\[([0-9a-f]{32})\] detached/.exec(first.stdout)?.[1];
    assert.ok(taskId, first.stdout);
    const listed = JSON.parse(cli(['ls', '--json']).stdout) as any[];
    assert.equal(listed.find((e) => e.taskId === taskId)?.status, 'input_required');
    const resumed = cli(['resume', taskId, '--answer', '{"action":"accept","content":{"decision":"reject","comment":"not ours"}}', '--json']);
    assert.equal(resumed.code, 0, resumed.stderr);
    assert.equal(JSON.parse(resumed.stdout).result.structuredContent.status, 'rejected');
  });

  it('after the client is SIGKILLed, ls shows the task and resume picks it up', async () => {
    const payOn = new Date(Date.now() + 6000).toISOString();
    const inv = {
      invoiceId: 'INV-CLI-1',
      vendorId: 'V-1001',
      poNumber: 'PO-2026-0417',
      currency: 'EUR',
      issuedOn: '2026-11-20',
      lines: [{ lineId: '1', description: 'later', amount: 10, payOn }],
    };
    const { child, out, exited } = cliChild([
      'call',
      demo.url,
      'process_invoice',
      '--args',
      JSON.stringify({ invoice: inv }),
      '--answer',
      '{"decision":"approve"}',
    ]);
    await until(() => /waiting until/i.test(out.stderr), { timeoutMs: 30_000, what: () => `the timer wait:\n${out.stderr}` });
    const stderr = out.stderr;
    child.kill('SIGKILL');
    await exited;
    const taskId = /\[([0-9a-f]{32})\] task created/.exec(stderr)?.[1];
    assert.ok(taskId);
    const entry = (JSON.parse(cli(['ls', '--json']).stdout) as any[]).find((e) => e.taskId === taskId);
    assert.equal(entry.status, 'working');
    assert.equal(entry.tool, 'process_invoice');
    // The server still has it (working, or completed if the pay date passed meanwhile: the CLI is slow to start).
    const got = cli(['get', taskId, '--json']);
    assert.equal(got.code, 0, got.stderr);
    assert.equal(JSON.parse(got.stdout).taskId, taskId);
    const resumed = cli(['watch', taskId, '--json']);
    assert.equal(resumed.code, 0, resumed.stderr);
    const result = JSON.parse(resumed.stdout).result;
    assert.equal(result.structuredContent.status, 'paid');
    assert.ok(Date.parse(result.structuredContent.payments[0].paidAt) >= Date.parse(payOn));
    assert.equal((JSON.parse(cli(['ls', '--json']).stdout) as any[]).find((e) => e.taskId === taskId).status, 'completed');
  });

  it('cancels a task and reports bad input clearly', () => {
    const inv = { ...invoice('INV-2026-0002') };
    const started = cli(['call', demo.url, 'process_invoice', '--args', JSON.stringify({ invoice: inv })]);
    assert.equal(started.code, 3);
    const taskId = /\[([0-9a-f]{32})\] detached/.exec(started.stdout)![1]!;
    const cancelled = cli(['cancel', taskId, '--json']);
    assert.equal(cancelled.code, 0, cancelled.stderr);
    assert.equal(JSON.parse(cancelled.stdout).status, 'cancelled');
    const again2025 = cli(['cancel', taskId, '--era', 'legacy']);
    assert.equal(again2025.code, 1, '2025-11-25: cancelling a terminal task is -32602');
    assert.match(again2025.stderr, /terminal/);
    const again2026 = cli(['cancel', taskId, '--era', 'modern', '--json']);
    assert.equal(again2026.code, 0, '2026-07-28: tasks/cancel is an acknowledgement');
    assert.equal(JSON.parse(again2026.stdout).status, 'cancelled');
    const badArgs = cli(['call', demo.url, 'process_invoice', '--args', '{not json']);
    assert.equal(badArgs.code, 1);
    assert.match(badArgs.stderr, /not valid JSON/);
    const badTool = cli(['call', demo.url, 'no_such_tool']);
    assert.equal(badTool.code, 1);
    assert.match(badTool.stderr, /no tool named 'no_such_tool'/);
  });

  it('the built bin runs (npm install builds it)', () => {
    const res = spawnSync(process.execPath, ['dist/src/cli/main.js', '--version'], { encoding: 'utf8' });
    assert.equal(res.status, 0, res.stderr);
    assert.equal(res.stdout.trim(), '0.1.0');
  });
});

describe('mcp-tasks CLI: never answers for a person, never mistakes transport for outcome', () => {
  let demo: DemoProcess;
  let port: number;
  const store = () => ['--store', `sqlite:${join(dir, 'srv2', 'invoice.db')}`, '--poll-interval', '100'];
  before(async () => {
    demo = await startDemo(store());
    port = Number(new URL(demo.url).port);
  });
  after(async () => {
    await demo.kill();
  });

  for (const era of ['legacy', 'modern'] as const) {
    it(`keeps following through a server SIGKILL and restart (${era}); the journal never records the outage as the task's fate`, async () => {
      const payOn = new Date(Date.now() + 6000).toISOString();
      const own = join(dir, `journal-kill-${era}`);
      const { out, exited } = cliChild(
        [
          'call',
          demo.url,
          'process_invoice',
          '--args',
          JSON.stringify({ invoice: smallInvoice(payOn) }),
          '--answer',
          '{"decision":"approve"}',
          '--era',
          era,
          '--json',
        ],
        own,
      );
      await until(() => /waiting until/.test(out.stderr), { timeoutMs: 30_000, what: () => `the timer wait:\n${out.stderr}` });
      await demo.kill();
      await until(() => /server unreachable: cannot reach http:\/\/127\.0\.0\.1:\d+\/mcp: connection refused/.test(out.stderr), {
        timeoutMs: 20_000,
        what: () => `a retry:\n${out.stderr}`,
      });
      // A proxy answering 404 pages while the server is away (a redeploy) is an outage too, not "task gone".
      const proxy = createServer((_req, res) => res.writeHead(404, { 'content-type': 'text/plain' }).end('Not Found'));
      await new Promise<void>((resolve) => proxy.listen(port, '127.0.0.1', resolve));
      const before404 = out.stderr.length;
      await until(() => /server unreachable: .*(HTTP 404|did not offer)/.test(out.stderr.slice(before404)), {
        timeoutMs: 30_000,
        what: () => `a retry on the 404 page:\n${out.stderr}`,
      });
      proxy.closeAllConnections();
      await new Promise<void>((resolve) => proxy.close(() => resolve()));
      const taskId = idOf(out.stderr)!;
      const entry = new ClientJournal(own).get(taskId);
      assert.equal(entry?.status, 'working', 'an outage is not a status');
      assert.equal(entry?.outcome, undefined);
      demo = await startDemo([...store(), '--port', String(port)]);
      const code = await exited;
      assert.equal(code, 0, out.stderr + out.stdout);
      assert.match(out.stderr, /server reachable again/);
      assert.equal(JSON.parse(out.stdout).result.structuredContent.status, 'paid');
      assert.equal(new ClientJournal(own).get(taskId)?.outcome?.status, 'completed');
    });
  }

  it('names the URL and the cause when it cannot talk to a server', async () => {
    const down = cli(['tools', `http://127.0.0.1:${port + 1}/mcp`]);
    assert.equal(down.code, 1);
    assert.match(down.stderr, /cannot reach http:\/\/127\.0\.0\.1:\d+\/mcp: connection refused/);
    const noScheme = cli(['tools', `127.0.0.1:${port}/mcp`]);
    assert.equal(noScheme.code, 1);
    assert.match(noScheme.stderr, /not an http\(s\) URL.*did you mean http:\/\/127\.0\.0\.1/);
    const wrongPath = cli(['tools', `http://127.0.0.1:${port}/nope`]);
    assert.equal(wrongPath.code, 1);
    assert.match(wrongPath.stderr, /http:\/\/127\.0\.0\.1:\d+\/nope answered HTTP 404: is this the MCP endpoint/);
    const tools = cli(['tools', demo.url, '--era', 'legacy']);
    assert.equal(tools.code, 0, tools.stderr);
    assert.match(tools.stdout, /process_invoice\s+task: optional/);
    assert.match(tools.stdout, /export_payments_report\s+task: required/);
    const getAnswer = cli(['get', 'x', '--answer', '{}']);
    assert.equal(getAnswer.code, 1);
    assert.match(getAnswer.stderr, /unknown option '--answer'/);
  });

  for (const era of ['legacy', 'modern'] as const) {
    it(`without a terminal it detaches (exit 3), sends nothing, and says exactly how to answer (${era})`, () => {
      const own = join(dir, `journal-detach-${era}`);
      const invoiceArg = JSON.stringify({ invoice: smallInvoice() });
      const first = cli(['call', demo.url, 'process_invoice', '--args', invoiceArg, '--era', era], own);
      assert.equal(first.code, 3, first.stderr + first.stdout);
      const taskId = idOf(first.stdout)!;
      assert.match(first.stdout, /decision: one of approve, reject/);
      assert.match(first.stdout, /comment \(optional\): string/);
      assert.ok(first.stdout.includes(`answer with: npx mcp-tasks answer ${taskId} --url ${demo.url} --answer '{"decision":"approve"}'`), first.stdout);
      const got = cli(['get', taskId, '--json'], own);
      assert.equal(JSON.parse(got.stdout).status, 'input_required', 'nothing was answered for the person');
      const result = cli(['result', taskId], own);
      assert.equal(result.code, 3, 'result on a waiting task detaches instead of hanging');

      // A non-conforming --answer is refused by the client: nothing sent, the task still waits.
      const wrong = cli(['answer', taskId, '--answer', '{"decision":"yes"}'], own);
      assert.equal(wrong.code, 1, wrong.stdout + wrong.stderr);
      assert.match(wrong.stdout, /decision must be one of: approve, reject.*nothing was sent/);
      assert.equal(JSON.parse(cli(['get', taskId, '--json'], own).stdout).status, 'input_required');

      // pending lists it; another machine (no journal) answers it with --url.
      const pending = cli(['pending', '--json'], own);
      assert.equal(pending.code, 0, pending.stderr);
      assert.ok((JSON.parse(pending.stdout) as { taskId: string }[]).some((p) => p.taskId === taskId));
      const elsewhere = join(dir, `journal-elsewhere-${era}`);
      const answered = cli(['answer', taskId, '--url', demo.url, '--era', era, '--answer', '{"decision":"reject","comment":"not ours"}', '--json'], elsewhere);
      assert.equal(answered.code, 0, answered.stderr + answered.stdout);
      const last = JSON.parse(answered.stdout.trim().split('\n').at(-1)!);
      assert.ok(last.answered === true || last.result?.structuredContent?.status === 'rejected', answered.stdout);

      // The first machine's journal still says input_required until it asks the server.
      const stale = (JSON.parse(cli(['ls', '--json'], own).stdout) as { taskId: string; status: string }[]).find((e) => e.taskId === taskId);
      assert.equal(stale?.status, 'input_required');
      assert.match(cli(['ls'], own).stdout, /LAST KNOWN[\s\S]*--refresh asks the servers/);
      cli(['ls', '--refresh'], own);
      const fresh = (JSON.parse(cli(['ls', '--json'], own).stdout) as { taskId: string; status: string }[]).find((e) => e.taskId === taskId);
      assert.equal(fresh?.status, 'completed');
    });
  }

  it('resumes a journal that mixes eras, and follows every task the server has not reported ended', () => {
    const own = join(dir, 'journal-mixed');
    const a = cli(['call', demo.url, 'process_invoice', '--args', JSON.stringify({ invoice: smallInvoice() }), '--era', 'legacy'], own);
    const b = cli(['call', demo.url, 'process_invoice', '--args', JSON.stringify({ invoice: smallInvoice() }), '--era', 'modern'], own);
    assert.equal(a.code, 3);
    assert.equal(b.code, 3);
    const resumed = cli(['resume', '--answer', '{"decision":"approve"}', '--json'], own);
    assert.equal(resumed.code, 0, resumed.stderr + resumed.stdout);
    const outcomes = resumed.stdout
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l));
    assert.equal(outcomes.length, 2);
    for (const o of outcomes) assert.equal(o.result.structuredContent.status, 'paid');
    const again = cli(['resume'], own);
    assert.match(again.stdout, /No unfinished tasks/);
  });

  for (const era of ['legacy', 'modern'] as const) {
    it(`answer stops once the question is answered; the task goes on (${era})`, () => {
      const own = join(dir, `journal-answer-${era}`);
      const payOn = new Date(Date.now() + 120_000).toISOString();
      const made = cli(['call', demo.url, 'process_invoice', '--era', era, '--args', JSON.stringify({ invoice: smallInvoice(payOn) })], own);
      const taskId = idOf(made.stdout)!;
      const answered = cli(['answer', taskId, '--answer', '{"decision":"approve"}', '--json'], own);
      assert.equal(answered.code, 0, answered.stderr + answered.stdout);
      const out = JSON.parse(answered.stdout.trim().split('\n').at(-1)!);
      assert.equal(out.answered, true);
      assert.equal(out.status, 'working');
      assert.match(answered.stderr, /answer sent \(accept\)/);
      cli(['cancel', taskId], own);
    });
  }

  it('a "gone" label is cleared as soon as the server reports the task again (e.g. after a wrong token)', () => {
    const own = join(dir, 'journal-regone');
    const made = cli(['call', demo.url, 'process_invoice', '--args', JSON.stringify({ invoice: smallInvoice() })], own);
    const taskId = idOf(made.stdout)!;
    new ClientJournal(own).update(taskId, { gone: 'the server does not know this task: Task not found (JSON-RPC -32602)' });
    assert.match(cli(['resume'], own).stderr, /skipping 1 task\(s\) the server said it does not know/);
    const refreshed = cli(['ls', '--refresh'], own);
    assert.equal(refreshed.code, 0, refreshed.stderr);
    assert.equal(new ClientJournal(own).get(taskId)?.gone, undefined);
    assert.equal(new ClientJournal(own).get(taskId)?.status, 'input_required');
    cli(['cancel', taskId], own);
  });

  it('says so clearly when the server no longer knows a journaled task (expired, purged)', () => {
    const own = join(dir, 'journal-gone');
    const made = cli(['call', demo.url, 'process_invoice', '--args', JSON.stringify({ invoice: smallInvoice() })], own);
    const taskId = idOf(made.stdout)!;
    const journalOf = new ClientJournal(own);
    const entry = journalOf.get(taskId)!;
    const ghost = 'f'.repeat(32);
    journalOf.put({ ...entry, taskId: ghost, reference: { ...entry.reference, taskId: ghost as never } });
    const resumed = cli(['resume', ghost], own);
    assert.equal(resumed.code, 1, resumed.stdout + resumed.stderr);
    assert.match(resumed.stdout, /the server does not know this task \(expired, purged, or never created there\)/);
    assert.match(journalOf.get(ghost)?.gone ?? '', /Task not found/);
    const listed = cli(['ls'], own);
    assert.match(listed.stdout, new RegExp(`${ghost}\\s+gone`));
    assert.doesNotMatch(cli(['resume'], own).stdout, new RegExp(ghost), 'resume skips tasks the server no longer knows');
  });

  it('--no-task and --ttl say what the server decides (2026-07-28) instead of failing or ignoring silently', () => {
    const own = join(dir, 'journal-notask');
    const modern = cli(['call', demo.url, 'export_payments_report', '--no-task', '--ttl', '5000', '--args', '{"format":"json"}', '--json'], own);
    assert.equal(modern.code, 0, modern.stderr);
    assert.match(modern.stderr, /the server decides how long a task is kept; --ttl is not sent/);
    assert.match(modern.stderr, /the server chose to run it as a task/);
    const taskId = JSON.parse(modern.stdout).taskId;
    assert.ok(new ClientJournal(own).get(taskId), 'the task the server created is journaled');
    const legacyRequired = cli(['call', demo.url, 'export_payments_report', '--no-task', '--era', 'legacy'], own);
    assert.equal(legacyRequired.code, 1);
    assert.match(legacyRequired.stderr, /export_payments_report must run as a task .* call it without --no-task/);
    const legacySync = cli(['call', demo.url, 'process_invoice', '--no-task', '--era', 'legacy', '--args', JSON.stringify({ invoice: smallInvoice() })], own);
    assert.equal(legacySync.code, 3, legacySync.stderr + legacySync.stdout);
    assert.match(legacySync.stdout, /this call is not a task: run it again in a terminal, or with --answer/);
    assert.doesNotMatch(legacySync.stdout, /<taskId>/);
  });
});
