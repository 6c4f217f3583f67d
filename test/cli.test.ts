/** The mcp-tasks CLI against a running demo server, as a user runs it (child processes, real exit codes). */
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { createServer } from 'node:http';
import { mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { KnownTasks, defaultKnownTasksDir } from '../src/client/known-tasks.js';
import { until } from './helpers/until.js';
import { startDemo, type DemoProcess } from './helpers/demo-process.js';

const dir = mkdtempSync(join(tmpdir(), 'mcp-tasks-cli-'));
const journal = join(dir, 'journal');
const invoice = (id: string) => JSON.parse(readFileSync(join('examples/invoice/data/invoices', `${id}.json`), 'utf8'));

/** The environment of the CLI under test: a per-user state folder of its own (never the real home's). */
const cliEnv = { ...process.env, XDG_STATE_HOME: join(dir, 'xdg-state') };

function cli(args: string[], journalDir = journal) {
  const res = spawnSync(process.execPath, ['--import', 'tsx', 'src/cli/main.ts', ...args, '--journal', journalDir], {
    encoding: 'utf8',
    timeout: 60_000,
    env: cliEnv,
  });
  return { code: res.status, stdout: res.stdout, stderr: res.stderr };
}

/** The CLI as a running child process (so a test can act while it follows, and SIGKILL it); output collected as it comes. */
function cliChild(args: string[], journalDir = journal) {
  const child = spawn(process.execPath, ['--import', 'tsx', 'src/cli/main.ts', ...args, '--journal', journalDir], {
    stdio: ['ignore', 'pipe', 'pipe'],
    env: cliEnv,
  });
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

const MAIN = resolve('src/cli/main.ts');
const TSX = import.meta.resolve('tsx');

/**
 * The CLI exactly as given (no `--journal` added), in `cwd`, with a home and a state folder of its
 * own (`HOME`, `XDG_STATE_HOME` under `home`; `MCP_TASKS_JOURNAL` unset unless in `env`): never the
 * real home.
 */
function cliAt(args: string[], options: { cwd: string; home: string; env?: Record<string, string> }) {
  const env: NodeJS.ProcessEnv = { ...process.env, HOME: options.home, XDG_STATE_HOME: join(options.home, 'state'), ...options.env };
  if (!options.env?.MCP_TASKS_JOURNAL) delete env.MCP_TASKS_JOURNAL;
  const res = spawnSync(process.execPath, ['--import', TSX, MAIN, ...args], { cwd: options.cwd, env, encoding: 'utf8', timeout: 60_000 });
  return { code: res.status, stdout: res.stdout, stderr: res.stderr };
}

/** A new empty folder under the test's temporary folder. */
const folder = (name: string) => {
  const path = join(dir, name);
  mkdirSync(path, { recursive: true });
  return path;
};

describe('the task list lives in the per-user state folder', () => {
  it('XDG_STATE_HOME (absolute) or ~/.local/state on Linux, Application Support on macOS, LOCALAPPDATA on Windows; MCP_TASKS_JOURNAL first', () => {
    const home = '/home/ada';
    assert.equal(defaultKnownTasksDir({ platform: 'linux', env: { XDG_STATE_HOME: '/var/state/ada' }, home }), '/var/state/ada/mcp-tasks');
    assert.equal(defaultKnownTasksDir({ platform: 'linux', env: {}, home }), '/home/ada/.local/state/mcp-tasks');
    assert.equal(defaultKnownTasksDir({ platform: 'linux', env: { XDG_STATE_HOME: 'relative/state' }, home }), '/home/ada/.local/state/mcp-tasks');
    assert.equal(defaultKnownTasksDir({ platform: 'freebsd', env: {}, home }), '/home/ada/.local/state/mcp-tasks');
    assert.equal(
      defaultKnownTasksDir({ platform: 'darwin', env: { XDG_STATE_HOME: '/x' }, home: '/Users/ada' }),
      '/Users/ada/Library/Application Support/mcp-tasks',
    );
    assert.equal(
      defaultKnownTasksDir({ platform: 'win32', env: { LOCALAPPDATA: 'C:\\Users\\ada\\AppData\\Local' }, home: 'C:\\Users\\ada' }),
      'C:\\Users\\ada\\AppData\\Local\\mcp-tasks',
    );
    assert.equal(defaultKnownTasksDir({ platform: 'win32', env: {}, home: 'C:\\Users\\ada' }), 'C:\\Users\\ada\\AppData\\Local\\mcp-tasks');
    assert.equal(defaultKnownTasksDir({ platform: 'linux', env: { MCP_TASKS_JOURNAL: '/srv/tasks', XDG_STATE_HOME: '/x' }, home }), '/srv/tasks');
  });
});

describe('mcp-tasks CLI', () => {
  let demo: DemoProcess;
  before(async () => {
    demo = await startDemo(['--store', `sqlite:${join(dir, 'srv', 'invoice.db')}`, '--poll-interval', '100']);
  });
  after(async () => {
    await demo.kill();
    rmSync(dir, { recursive: true, force: true });
  });

  it('speaks 2025-11-25 when asked (--protocol 2025-11-25) and 2026-07-28 by default', () => {
    const legacy = cli(['call', demo.url, 'export_payments_report', '--args', '{"format":"json"}', '--protocol', '2025-11-25', '--json']);
    assert.equal(legacy.code, 0, legacy.stderr);
    const modern = cli(['call', demo.url, 'export_payments_report', '--args', '{"format":"json"}', '--json']);
    assert.equal(modern.code, 0, modern.stderr);
    const legacyTask = JSON.parse(legacy.stdout).taskId;
    const modernTask = JSON.parse(modern.stdout).taskId;
    const entries = JSON.parse(cli(['ls', '--json']).stdout) as any[];
    assert.equal(entries.find((e) => e.taskId === legacyTask)?.status, 'completed');
    const refs = new KnownTasks(journal);
    assert.equal(refs.get(legacyTask)?.reference.generation, 'v1');
    assert.equal(refs.get(modernTask)?.reference.generation, 'v2');
  });

  it('--idempotency-key: the same command run again follows the task the first run created; other arguments are refused', () => {
    for (const protocol of ['2025-11-25', '2026-07-28']) {
      const key = `report-${protocol}-${Date.now()}`;
      const args = ['call', demo.url, 'export_payments_report', '--args', '{"format":"json"}', '--protocol', protocol, '--json', '--idempotency-key', key];
      const first = cli(args);
      assert.equal(first.code, 0, first.stderr);
      const again = cli(args);
      assert.equal(again.code, 0, again.stderr);
      assert.equal(JSON.parse(again.stdout).taskId, JSON.parse(first.stdout).taskId, `${protocol}: one task for both runs`);
      assert.deepEqual(JSON.parse(again.stdout).result, JSON.parse(first.stdout).result);
      const other = cli(['call', demo.url, 'export_payments_report', '--args', '{"format":"csv"}', '--protocol', protocol, '--idempotency-key', key]);
      assert.notEqual(other.code, 0);
      assert.match(other.stderr, /already used for a different request/, other.stderr);
    }
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
    const again2025 = cli(['cancel', taskId, '--protocol', '2025-11-25']);
    assert.equal(again2025.code, 1, '2025-11-25: cancelling a terminal task is -32602');
    assert.match(again2025.stderr, /terminal/);
    const again2026 = cli(['cancel', taskId, '--protocol', '2026-07-28', '--json']);
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

  it('ls lists the same tasks from any folder: the task list is in the per-user state folder, not the working folder', () => {
    const home = folder('home-state');
    const here = folder('work-here');
    const elsewhere = folder('work-elsewhere');
    const made = cliAt(['call', demo.url, 'export_payments_report', '--args', '{"format":"json"}', '--json'], { cwd: here, home });
    assert.equal(made.code, 0, made.stderr);
    const taskId = JSON.parse(made.stdout).taskId as string;
    assert.ok(new KnownTasks(join(home, 'state', 'mcp-tasks')).get(taskId), 'kept under $XDG_STATE_HOME/mcp-tasks');
    assert.deepEqual(readdirSync(here), [], 'nothing written in the working folder');
    const listed = cliAt(['ls'], { cwd: elsewhere, home });
    assert.equal(listed.code, 0, listed.stderr);
    assert.match(listed.stdout, new RegExp(`^${taskId}\\s+completed\\s+export_payments_report`, 'm'));

    // MCP_TASKS_JOURNAL chooses another folder; an explicit --journal wins over it.
    const envDir = join(home, 'env-list');
    const viaEnv = cliAt(['ls', '--json'], { cwd: elsewhere, home, env: { MCP_TASKS_JOURNAL: envDir } });
    assert.equal(viaEnv.code, 0, viaEnv.stderr);
    assert.deepEqual(JSON.parse(viaEnv.stdout), [], 'the state folder is not read when MCP_TASKS_JOURNAL names another');
    const explicit = cliAt(['ls', '--json', '--journal', join(home, 'state', 'mcp-tasks')], { cwd: elsewhere, home, env: { MCP_TASKS_JOURNAL: envDir } });
    assert.ok(
      (JSON.parse(explicit.stdout) as { taskId: string }[]).some((e) => e.taskId === taskId),
      explicit.stdout,
    );
  });

  it('a task list an older version left in the working folder: told once how to move it, and the command printed moves it', () => {
    const home = folder('home-old');
    const work = folder('work-old');
    // What an older mcp-tasks left: its default was ./.mcp-tasks.
    const made = cliAt(['call', demo.url, 'export_payments_report', '--args', '{"format":"json"}', '--json', '--journal', '.mcp-tasks'], { cwd: work, home });
    assert.equal(made.code, 0, made.stderr);
    const taskId = JSON.parse(made.stdout).taskId as string;

    const first = cliAt(['ls'], { cwd: work, home });
    assert.equal(first.code, 0, first.stderr);
    assert.match(first.stdout, /^No tasks in the journal\.$/m);
    assert.match(first.stderr, /^note: \S+\/work-old\/\.mcp-tasks holds a task list of 1 task\(s\) from an older mcp-tasks/m);
    assert.ok(first.stderr.includes(`The task list now lives in ${join(home, 'state', 'mcp-tasks')}`), first.stderr);
    assert.match(first.stderr, /or keep using it as it is with --journal \.mcp-tasks/);
    const move = /^ {2}(mkdir -p .+)$/m.exec(first.stderr)?.[1];
    assert.ok(move, first.stderr);
    const second = cliAt(['ls'], { cwd: work, home });
    assert.equal(second.stderr, '', 'the note is shown once');
    const old = cliAt(['ls', '--journal', '.mcp-tasks'], { cwd: work, home });
    assert.match(old.stdout, new RegExp(`^${taskId}\\s+completed`, 'm'), 'the old list still works with --journal');

    const moved = spawnSync('sh', ['-c', move], { cwd: elsewhereThan(work), encoding: 'utf8' });
    assert.equal(moved.status, 0, moved.stderr);
    const after = cliAt(['ls'], { cwd: work, home });
    assert.match(after.stdout, new RegExp(`^${taskId}\\s+completed\\s+export_payments_report`, 'm'));
    assert.equal(after.stderr, '');
  });

  it('options work before the command as after it (--journal, --json, --url, --protocol, -H); one the command does not take is refused', () => {
    const home = folder('home-global');
    const cwd = folder('work-global');
    const own = join(dir, 'journal-global');
    const made = cliAt(['--journal', own, '--json', 'call', demo.url, 'export_payments_report', '--args', '{"format":"json"}'], { cwd, home });
    assert.equal(made.code, 0, made.stderr);
    const taskId = JSON.parse(made.stdout).taskId as string;
    const listed = cliAt(['--journal', own, '--json', 'ls'], { cwd, home });
    assert.equal(listed.code, 0, listed.stderr);
    assert.ok(
      (JSON.parse(listed.stdout) as { taskId: string }[]).some((e) => e.taskId === taskId),
      listed.stdout,
    );
    const mixed = cliAt(['--journal', own, 'ls', '--json'], { cwd, home });
    assert.deepEqual(JSON.parse(mixed.stdout), JSON.parse(listed.stdout));
    // Not in this home's task list: --url before the command says where; headers add up from both sides.
    const got = cliAt(['--url', demo.url, '--protocol', 'auto', '-H', 'X-Trace: a', '-H', 'X-Other: b', 'get', taskId, '-H', 'X-Last: c', '--json'], {
      cwd,
      home,
    });
    assert.equal(got.code, 0, got.stderr);
    assert.equal(JSON.parse(got.stdout).status, 'completed');
    const refused = cliAt(['--protocol', '2025-11-25', 'ls'], { cwd, home });
    assert.equal(refused.code, 1);
    assert.match(refused.stderr, /option '--protocol' is not an option of 'ls'/);
    const unknown = cliAt(['--nope', 'ls'], { cwd, home });
    assert.equal(unknown.code, 1);
    assert.match(unknown.stderr, /unknown option '--nope'/);
  });
});

/** A folder that is not `path` (to run a printed command from somewhere else: it must not depend on the working folder). */
function elsewhereThan(path: string): string {
  return resolve(path, '..');
}

describe('mcp-tasks CLI: never answers for a person, never mistakes transport for outcome', () => {
  let demo: DemoProcess;
  let port: number;
  const store = () => ['--store', `sqlite:${join(dir, 'srv2', 'invoice.db')}`, '--poll-interval', '100', '--console'];
  before(async () => {
    demo = await startDemo(store());
    port = Number(new URL(demo.url).port);
  });
  after(async () => {
    await demo.kill();
  });

  for (const version of ['2025-11-25', '2026-07-28'] as const) {
    it(`keeps following through a server SIGKILL and restart (${version}); the journal never records the outage as the task's fate`, async () => {
      const payOn = new Date(Date.now() + 6000).toISOString();
      const own = join(dir, `journal-kill-${version}`);
      const { out, exited } = cliChild(
        [
          'call',
          demo.url,
          'process_invoice',
          '--args',
          JSON.stringify({ invoice: smallInvoice(payOn) }),
          '--answer',
          '{"decision":"approve"}',
          '--protocol',
          version,
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
      const entry = new KnownTasks(own).get(taskId);
      assert.equal(entry?.status, 'working', 'an outage is not a status');
      assert.equal(entry?.outcome, undefined);
      demo = await startDemo([...store(), '--port', String(port)]);
      const code = await exited;
      assert.equal(code, 0, out.stderr + out.stdout);
      assert.match(out.stderr, /server reachable again/);
      assert.equal(JSON.parse(out.stdout).result.structuredContent.status, 'paid');
      assert.equal(new KnownTasks(own).get(taskId)?.outcome?.status, 'completed');
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
    const tools = cli(['tools', demo.url, '--protocol', '2025-11-25']);
    assert.equal(tools.code, 0, tools.stderr);
    assert.match(tools.stdout, /process_invoice\s+task: optional/);
    assert.match(tools.stdout, /export_payments_report\s+task: required/);
    const getAnswer = cli(['get', 'x', '--answer', '{}']);
    assert.equal(getAnswer.code, 1);
    assert.match(getAnswer.stderr, /unknown option '--answer'/);
  });

  it("the server's root (the operator console's redirect) or a console page: says it is the console and names the MCP endpoint", () => {
    const origin = new URL(demo.url).origin;
    for (const url of [`${origin}/`, `${origin}/console/`]) {
      const res = cli(['tools', url]);
      assert.equal(res.code, 1, res.stdout);
      assert.equal(res.stderr.trim(), `mcp-tasks: ${url} is the operator console (web pages for people), not an MCP endpoint; the MCP endpoint is ${demo.url}`);
      assert.doesNotMatch(res.stderr, /redirect|--token/i);
    }
    // A path that is neither: still the plain 404 advice.
    const nope = cli(['tools', `${origin}/nope`]);
    assert.match(nope.stderr, /answered HTTP 404: is this the MCP endpoint/);
  });

  for (const version of ['2025-11-25', '2026-07-28'] as const) {
    it(`answer on a task that asks nothing says so at once: exit 3 while it runs, 1 once it ended (${version})`, () => {
      const own = join(dir, `journal-not-asking-${version}`);
      const payOn = new Date(Date.now() + 120_000).toISOString();
      const made = cli(['call', demo.url, 'process_invoice', '--protocol', version, '--args', JSON.stringify({ invoice: smallInvoice(payOn) })], own);
      assert.equal(made.code, 3, made.stderr + made.stdout);
      const taskId = idOf(made.stdout)!;
      const approved = cli(['answer', taskId, '--answer', '{"decision":"approve"}'], own);
      assert.equal(approved.code, 0, approved.stderr + approved.stdout);

      // Working (paying on a date): nothing to answer now; it neither waits nor sends.
      const working = cli(['answer', taskId, '--answer', '{"decision":"approve"}'], own);
      assert.equal(working.code, 3, working.stderr + working.stdout);
      assert.match(working.stdout, new RegExp(`^task ${taskId} is not waiting for input \\(working: .+\\); nothing to answer$`, 'm'));
      assert.match(working.stdout, new RegExp(`^ {2}follow it: npx mcp-tasks watch ${taskId}$`, 'm'));
      assert.doesNotMatch(working.stderr, /answer sent/);
      const json = cli(['answer', taskId, '--json'], own);
      assert.equal(json.code, 3);
      assert.deepEqual((({ taskId: id, answered, status }) => ({ id, answered, status }))(JSON.parse(json.stdout.trim().split('\n').at(-1)!)), {
        id: taskId,
        answered: false,
        status: 'working',
      });

      // Ended: nothing to answer, ever; where the result is.
      assert.equal(cli(['cancel', taskId], own).code, 0);
      const cancelled = cli(['answer', taskId], own);
      assert.equal(cancelled.code, 1, cancelled.stderr + cancelled.stdout);
      assert.match(cancelled.stdout, new RegExp(`^task ${taskId} is cancelled; nothing to answer$`, 'm'));
      assert.match(cancelled.stdout, new RegExp(`^ {2}its result: npx mcp-tasks result ${taskId}$`, 'm'));
    });
  }

  it('answer on a completed task: "nothing to answer", exit 1, the result not printed; from another machine with --url too', () => {
    const own = join(dir, 'journal-not-asking-done');
    const made = cli(['call', demo.url, 'export_payments_report', '--args', '{"format":"json"}', '--json'], own);
    assert.equal(made.code, 0, made.stderr);
    const taskId = JSON.parse(made.stdout).taskId as string;
    const res = cli(['answer', taskId], own);
    assert.equal(res.code, 1, res.stderr + res.stdout);
    assert.equal(res.stdout, `task ${taskId} is completed; nothing to answer\n  its result: npx mcp-tasks result ${taskId}\n`);
    const elsewhere = cli(['answer', taskId, '--url', demo.url], join(dir, 'journal-not-asking-elsewhere'));
    assert.equal(elsewhere.code, 1);
    assert.match(elsewhere.stdout, new RegExp(`its result: npx mcp-tasks result ${taskId} --url ${demo.url.replace(/[.]/g, '\\.')}$`, 'm'));
  });

  for (const version of ['2025-11-25', '2026-07-28'] as const) {
    it(`without a terminal it detaches (exit 3), sends nothing, and says exactly how to answer (${version})`, () => {
      const own = join(dir, `journal-detach-${version}`);
      const invoiceArg = JSON.stringify({ invoice: smallInvoice() });
      const first = cli(['call', demo.url, 'process_invoice', '--args', invoiceArg, '--protocol', version], own);
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
      const elsewhere = join(dir, `journal-elsewhere-${version}`);
      const answered = cli(
        ['answer', taskId, '--url', demo.url, '--protocol', version, '--answer', '{"decision":"reject","comment":"not ours"}', '--json'],
        elsewhere,
      );
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
    const a = cli(['call', demo.url, 'process_invoice', '--args', JSON.stringify({ invoice: smallInvoice() }), '--protocol', '2025-11-25'], own);
    const b = cli(['call', demo.url, 'process_invoice', '--args', JSON.stringify({ invoice: smallInvoice() }), '--protocol', '2026-07-28'], own);
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

  for (const version of ['2025-11-25', '2026-07-28'] as const) {
    it(`answer stops once the question is answered; the task goes on (${version})`, () => {
      const own = join(dir, `journal-answer-${version}`);
      const payOn = new Date(Date.now() + 120_000).toISOString();
      const made = cli(['call', demo.url, 'process_invoice', '--protocol', version, '--args', JSON.stringify({ invoice: smallInvoice(payOn) })], own);
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
    new KnownTasks(own).update(taskId, { gone: 'the server does not know this task: Task not found (JSON-RPC -32602)' });
    assert.match(cli(['resume'], own).stderr, /skipping 1 task\(s\) the server said it does not know/);
    const refreshed = cli(['ls', '--refresh'], own);
    assert.equal(refreshed.code, 0, refreshed.stderr);
    assert.equal(new KnownTasks(own).get(taskId)?.gone, undefined);
    assert.equal(new KnownTasks(own).get(taskId)?.status, 'input_required');
    cli(['cancel', taskId], own);
  });

  it('says so clearly when the server no longer knows a journaled task (expired, purged)', () => {
    const own = join(dir, 'journal-gone');
    const made = cli(['call', demo.url, 'process_invoice', '--args', JSON.stringify({ invoice: smallInvoice() })], own);
    const taskId = idOf(made.stdout)!;
    const journalOf = new KnownTasks(own);
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
    assert.ok(new KnownTasks(own).get(taskId), 'the task the server created is journaled');
    const legacyRequired = cli(['call', demo.url, 'export_payments_report', '--no-task', '--protocol', '2025-11-25'], own);
    assert.equal(legacyRequired.code, 1);
    assert.match(legacyRequired.stderr, /export_payments_report must run as a task .* call it without --no-task/);
    const legacySync = cli(
      ['call', demo.url, 'process_invoice', '--no-task', '--protocol', '2025-11-25', '--args', JSON.stringify({ invoice: smallInvoice() })],
      own,
    );
    assert.equal(legacySync.code, 3, legacySync.stderr + legacySync.stdout);
    assert.match(legacySync.stdout, /this call is not a task: run it again in a terminal, or with --answer/);
    assert.doesNotMatch(legacySync.stdout, /<taskId>/);
  });
});
