/**
 * The mcp-tasks CLI in a real terminal (tmux), with the real prompt library and real keystrokes,
 * against the invoice demo: what a person at the terminal relies on. The CLI never answers for them:
 * Ctrl-C, "Decide later", a "No" at a confirmation or a closed terminal send nothing (the task stays
 * `input_required` on the server and no payment is made); an answer goes to the task whose question
 * is on the screen; questions of several tasks come one at a time. Checked on the screen, by exit
 * code, and against the server (`get --json`, the `list_payments` ledger), in both protocol eras.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, afterEach, before, describe, it } from 'node:test';
import { startDemo, type DemoProcess } from './helpers/demo-process.js';
import { processAlive, sleep, Terminal } from './helpers/tmux.js';

const root = process.cwd();
const dir = mkdtempSync(join(tmpdir(), 'mcp-tasks-terminal-'));
const runTag = Date.now().toString(36).toUpperCase();
let seq = 0;

const ERAS = [
  { name: '2026-07-28', flags: [] as string[] },
  { name: '2025-11-25 (--protocol 2025-11-25)', flags: ['--protocol', '2025-11-25'] },
];

/** The live "Your decision" menu (an answered one reads `✔ Your decision …`). */
const MENU = /^\? Your decision\s*$/m;
const LIVE_MENU = /^\? Your decision\s*\n❯ Answer\s*\n {2}Decline…\s*\n {2}Cancel…\s*\n {2}Decide later\s*$/m;
const DECISION = /^\? Decision \(approve to pay the invoice, reject to refuse it\)\s*\n❯ approve\s*\n {2}reject\s*$/m;
const COMMENT = /^\? Comment \(optional note for the audit trail\)/m;
const HEADER = /^── Task ([0-9a-f]{32}) · process_invoice · invoiceId (\S+)/gm;

/** The prompts still open on the screen (`? Your decision` not yet turned into `✔ …`). */
const liveMenus = (screen: string) => screen.split('\n').filter((line) => MENU.test(line)).length;
/** The task ids of the question headers on the screen, in order. */
const headers = (screen: string) => [...screen.matchAll(HEADER)].map((m) => m[1]!);
/** The task whose header is the last one on the screen: the one the open prompt belongs to. */
const asking = (screen: string) => headers(screen).at(-1);
/** The screen from the last question header on: the question being asked now. */
const current = (screen: string) => screen.slice(screen.lastIndexOf('\n── Task ') + 1);
/** `pattern` holds for the question being asked now (not for an earlier block still on the screen). */
const now = (pattern: RegExp) => (screen: string) => pattern.test(current(screen));

/** A fresh journal directory for one test. */
function newJournal(): string {
  const journal = join(dir, `journal-${++seq}`);
  mkdirSync(journal, { recursive: true });
  return journal;
}

/** A small, valid invoice needing approval (EUR 1 against PO-2026-0417), written to a file. */
function newInvoice(): { invoiceId: string; file: string } {
  const invoiceId = `INV-TT-${runTag}-${++seq}`;
  const file = join(dir, `${invoiceId}.json`);
  const invoice = {
    invoiceId,
    vendorId: 'V-1001',
    poNumber: 'PO-2026-0417',
    currency: 'EUR',
    issuedOn: '2026-11-20',
    lines: [{ lineId: '1', description: 'terminal test', amount: 1 }],
  };
  writeFileSync(file, JSON.stringify({ invoice }));
  return { invoiceId, file };
}

/** The environment of the CLI under test: a per-user state folder of its own (never the real home's). */
const env = { XDG_STATE_HOME: join(dir, 'xdg-state') };

/** The CLI without a terminal (stdin /dev/null, output piped). */
function cli(args: string[]) {
  const res = spawnSync(process.execPath, ['--import', 'tsx', 'src/cli/main.ts', ...args], {
    cwd: root,
    encoding: 'utf8',
    stdio: ['ignore', 'pipe', 'pipe'],
    timeout: 30_000,
    env: { ...process.env, ...env },
  });
  return { code: res.status, stdout: res.stdout, stderr: res.stderr };
}

// Skipped on a developer machine without tmux; in CI (.ci/run installs it) a missing tmux fails the run.
const tmuxMissing = !process.env.CI && spawnSync('tmux', ['-V']).status !== 0 && 'tmux is not installed';

after(() => rmSync(dir, { recursive: true, force: true }));

describe('mcp-tasks CLI in a real terminal (tmux)', { skip: tmuxMissing }, () => {
  let demo: DemoProcess;
  let terminals: Terminal[] = [];
  const scratch = join(dir, 'scratch-journal');

  /** The CLI in a new 120×40 terminal. */
  const terminal = (args: string[]) => {
    const t = Terminal.start([process.execPath, '--import', 'tsx', 'src/cli/main.ts', ...args], { cwd: root, env });
    terminals.push(t);
    return t;
  };

  /** The server's status of `taskId` (`get --json`, with the journal that knows the task and its version). */
  const status = (taskId: string, journal: string): string => {
    const res = cli(['get', taskId, '--journal', journal, '--json']);
    assert.equal(res.code, 0, `get ${taskId}: ${res.stderr}${res.stdout}`);
    return JSON.parse(res.stdout).status;
  };

  /** The payments the ledger holds for `invoiceId` (`list_payments`, an ordinary tool). */
  const payments = (invoiceId: string): { invoiceId: string; amount: number }[] => {
    const res = cli(['call', demo.url, 'list_payments', '--args', JSON.stringify({ invoiceId }), '--json', '--journal', scratch]);
    assert.equal(res.code, 0, `list_payments: ${res.stderr}${res.stdout}`);
    return JSON.parse(res.stdout).result.structuredContent.payments;
  };

  /** A task already waiting for approval, created without a terminal (the CLI detaches with 3). */
  const waitingTask = (journal: string, flags: string[]) => {
    const { invoiceId, file } = newInvoice();
    const res = cli(['call', demo.url, 'process_invoice', '--args-file', file, '--journal', journal, ...flags]);
    assert.equal(res.code, 3, res.stderr + res.stdout);
    const taskId = /\[([0-9a-f]{32})\] detached: the task needs input/.exec(res.stdout)?.[1];
    assert.ok(taskId, res.stdout);
    return { taskId, invoiceId };
  };

  /** `call process_invoice` in a terminal, up to its (settled) "Your decision" menu. */
  const callUntilMenu = async (flags: string[]) => {
    const journal = newJournal();
    const { invoiceId, file } = newInvoice();
    const t = terminal(['call', demo.url, 'process_invoice', '--args-file', file, '--journal', journal, ...flags]);
    const screen = await t.settled(now(LIVE_MENU), 800, 40_000);
    const taskId = asking(screen);
    assert.ok(taskId, `no question header on the screen:\n${screen}`);
    assert.match(current(screen), new RegExp(`^\\? Approve invoice ${invoiceId} from Acme Office Supplies GmbH`, 'm'));
    // Strictly one question on the screen, in both eras.
    assert.equal(headers(screen).length, 1, `one question header:\n${screen}`);
    assert.equal(liveMenus(screen), 1, `one open prompt:\n${screen}`);
    return { t, journal, invoiceId, taskId, screen };
  };

  /** The server still waits for the question and nothing was paid. */
  const stillWaiting = (taskId: string, journal: string, invoiceId: string, screen: string) => {
    assert.equal(status(taskId, journal), 'input_required', `the task must still wait for its question; screen:\n${screen}`);
    assert.deepEqual(payments(invoiceId), [], `no payment may be made; screen:\n${screen}`);
    assert.doesNotMatch(screen, /answer sent/, 'nothing may be sent');
  };

  before(async () => {
    demo = await startDemo(['--store', `sqlite:${join(dir, 'srv', 'invoice.db')}`, '--poll-interval', '100']);
  });
  afterEach(() => {
    for (const t of terminals) t.kill();
    terminals = [];
  });
  after(async () => {
    await demo?.kill();
  });

  for (const version of ERAS) {
    describe(`speaking ${version.name}`, () => {
      it('Ctrl-C at "Your decision": exit 3, nothing sent, the question still waits, nothing paid', { timeout: 60_000 }, async () => {
        const { t, journal, invoiceId, taskId } = await callUntilMenu(version.flags);
        assert.equal(status(taskId, journal), 'input_required');
        t.keys('C-c');
        const code = await t.exitCode();
        const screen = t.screen();
        assert.equal(code, 3, screen);
        assert.match(screen, new RegExp(`^\\[${taskId}\\] detached: interrupted; nothing was sent, the question still waits$`, 'm'));
        stillWaiting(taskId, journal, invoiceId, screen);
      });

      it('Ctrl-C inside the form (at the Decision select, after choosing Answer): exit 3, nothing sent', { timeout: 60_000 }, async () => {
        const { t, journal, invoiceId, taskId } = await callUntilMenu(version.flags);
        t.keys('Enter'); // Answer
        await t.settled(now(DECISION));
        t.keys('C-c');
        const code = await t.exitCode();
        const screen = t.screen();
        assert.equal(code, 3, screen);
        assert.match(screen, /^✔ Your decision Answer\s*$/m);
        assert.match(screen, new RegExp(`^\\[${taskId}\\] detached: interrupted; nothing was sent, the question still waits$`, 'm'));
        stillWaiting(taskId, journal, invoiceId, screen);
      });

      it('Ctrl-C at the Comment after choosing approve: exit 3, the approval is not sent, nothing paid', { timeout: 60_000 }, async () => {
        const { t, journal, invoiceId, taskId } = await callUntilMenu(version.flags);
        t.keys('Enter'); // Answer
        await t.settled(now(DECISION));
        t.keys('Enter'); // approve
        await t.settled(now(COMMENT));
        t.type('half-typed');
        await t.waitFor(/^\? Comment .*half-typed/m);
        t.keys('C-c');
        const code = await t.exitCode();
        const screen = t.screen();
        assert.equal(code, 3, screen);
        assert.match(screen, /^✔ Decision \(approve to pay the invoice, reject to refuse it\) approve\s*$/m);
        assert.match(screen, new RegExp(`^\\[${taskId}\\] detached: interrupted; nothing was sent, the question still waits$`, 'm'));
        stillWaiting(taskId, journal, invoiceId, screen);
      });

      it(
        'Decline… then No, Cancel… then No: back at the menu each time, nothing sent; then Decide later: exit 3, still waiting',
        { timeout: 60_000 },
        async () => {
          const { t, journal, invoiceId, taskId } = await callUntilMenu(version.flags);
          // Decline… → the confirmation, answered "n".
          t.keys('Down');
          await t.waitFor(/^❯ Decline…\s*$/m);
          t.keys('Enter');
          let screen = await t.settled(now(/^\? Decline this request\? The task goes on knowing you said no\. \(y\/N\)\s*$/m));
          assert.equal(status(taskId, journal), 'input_required', screen);
          t.type('n');
          t.keys('Enter');
          screen = await t.settled(now(LIVE_MENU));
          assert.match(screen, /^✔ Decline this request\? The task goes on knowing you said no\. No\s*$/m);
          assert.equal(liveMenus(current(screen)), 1, `one menu open:\n${screen}`);
          assert.equal(status(taskId, journal), 'input_required', screen);
          // Cancel… → the confirmation, answered with plain Enter (the default is No).
          t.keys('Down', 'Down');
          await t.waitFor(/^❯ Cancel…\s*$/m);
          t.keys('Enter');
          screen = await t.settled(now(/^\? Cancel this request without answering\? The task goes on without your answer\. \(y\/N\)\s*$/m));
          t.keys('Enter');
          screen = await t.settled(now(LIVE_MENU));
          assert.match(screen, /^✔ Cancel this request without answering\? The task goes on without your answer\. No\s*$/m);
          assert.equal(liveMenus(current(screen)), 1, `one menu open:\n${screen}`);
          stillWaiting(taskId, journal, invoiceId, screen);
          // Decide later.
          t.keys('Down', 'Down', 'Down');
          await t.waitFor(/^❯ Decide later\s*$/m);
          t.keys('Enter');
          const code = await t.exitCode();
          screen = t.screen();
          assert.equal(code, 3, screen);
          assert.match(screen, new RegExp(`^\\[${taskId}\\] detached: left for later; nothing was sent, the question still waits$`, 'm'));
          stillWaiting(taskId, journal, invoiceId, screen);
        },
      );

      it('Answer → approve with a comment: exit 0, the result says paid, the ledger holds the payment', { timeout: 60_000 }, async () => {
        const { t, journal, invoiceId, taskId } = await callUntilMenu(version.flags);
        t.keys('Enter'); // Answer
        await t.settled(now(DECISION));
        t.keys('Enter'); // approve
        await t.settled(now(COMMENT));
        t.type('checked at the terminal');
        t.keys('Enter');
        const code = await t.exitCode();
        const screen = t.screen();
        assert.equal(code, 0, screen);
        assert.match(screen, new RegExp(`^\\[${taskId}\\] answer sent \\(accept\\)$`, 'm'));
        assert.match(screen, new RegExp(`^Invoice ${invoiceId} approved \\(checked at the terminal\\) and paid`, 'm'));
        assert.match(screen, /^ {2}"status": "paid",$/m);
        assert.equal(status(taskId, journal), 'completed');
        const paid = payments(invoiceId);
        assert.equal(paid.length, 1, JSON.stringify(paid));
        assert.equal(paid[0]!.amount, 1);
      });

      it(
        'resume with two waiting approvals: one question at a time, each answer goes to the task on screen (first approved, second rejected)',
        { timeout: 60_000 },
        async () => {
          const journal = newJournal();
          const a = waitingTask(journal, version.flags);
          const b = waitingTask(journal, version.flags);
          const invoiceOf = new Map([
            [a.taskId, a.invoiceId],
            [b.taskId, b.invoiceId],
          ]);
          const t = terminal(['resume', '--journal', journal]);

          let screen = await t.settled(now(LIVE_MENU), 800, 40_000);
          const first = asking(screen)!;
          assert.ok(invoiceOf.has(first), `the open question belongs to one of the two tasks:\n${screen}`);
          assert.match(screen, new RegExp(`^── Task ${first} · process_invoice · invoiceId ${invoiceOf.get(first)} `, 'm'));
          assert.deepEqual(headers(screen), [first], `exactly one question header:\n${screen}`);
          assert.equal(liveMenus(screen), 1, `exactly one open prompt:\n${screen}`);
          assert.equal(status(a.taskId, journal), 'input_required');
          assert.equal(status(b.taskId, journal), 'input_required');

          // Approve the first.
          t.keys('Enter');
          await t.settled(now(DECISION));
          t.keys('Enter');
          await t.settled(now(COMMENT));
          t.keys('Enter');

          // Then (only then) the second question.
          screen = await t.settled(now(LIVE_MENU), 800, 40_000);
          const second = asking(screen)!;
          assert.ok(invoiceOf.has(second) && second !== first, `the second question is the other task's:\n${screen}`);
          assert.deepEqual(headers(screen), [first, second], `one header per question, in turn:\n${screen}`);
          assert.equal(liveMenus(screen), 1, `exactly one open prompt:\n${screen}`);
          // One set of keystrokes answered one task: the second still waits.
          assert.equal(status(second, journal), 'input_required', screen);
          assert.deepEqual(payments(invoiceOf.get(second)!), [], screen);

          // Reject the second.
          t.keys('Enter');
          await t.settled(now(DECISION));
          t.keys('Down');
          await t.waitFor(/^ {2}approve\s*\n❯ reject\s*$/m);
          t.keys('Enter');
          await t.settled(now(COMMENT));
          t.type('duplicate');
          t.keys('Enter');

          const code = await t.exitCode(40_000);
          screen = t.screen();
          assert.equal(code, 0, screen);
          assert.match(screen, new RegExp(`^Invoice ${invoiceOf.get(first)} approved and paid`, 'm'));
          assert.match(screen, new RegExp(`^Invoice ${invoiceOf.get(second)} \\(EUR 1\\.00\\) was not paid: rejected by the approver \\(duplicate\\)`, 'm'));
          assert.equal(status(first, journal), 'completed');
          assert.equal(status(second, journal), 'completed');
          assert.equal(payments(invoiceOf.get(first)!).length, 1, 'the first (approved) invoice is paid');
          assert.deepEqual(payments(invoiceOf.get(second)!), [], 'the second (rejected) invoice is not paid');
        },
      );

      it('closing the terminal while the prompt is shown: the CLI ends, nothing sent, nothing paid', { timeout: 60_000 }, async () => {
        const { t, journal, invoiceId, taskId, screen } = await callUntilMenu(version.flags);
        const pids = t.processes();
        assert.ok(pids.length >= 2, `the shell and the CLI run in the pane: ${pids.join(', ')}`);
        t.closeWindow();
        const deadline = Date.now() + 15_000;
        while (pids.some(processAlive) && Date.now() < deadline) await sleep(100);
        const survivors = pids.filter(processAlive);
        for (const pid of survivors) process.kill(pid, 'SIGKILL');
        assert.deepEqual(survivors, [], 'the CLI must not outlive its terminal');
        assert.equal(t.alive(), false);
        stillWaiting(taskId, journal, invoiceId, screen);
      });
    });
  }

  // The screen shows a question once, and questions of several tasks one after the other, never
  // interleaved — also in 2025-11-25, where the server moves a question from the GET stream to the
  // tasks/result stream by withdrawing and re-sending it (the CLI keeps one prompt for both).

  it('2025-11-25: a question is drawn once (one header, one open prompt)', { timeout: 60_000 }, async () => {
    const { t, screen } = await callUntilMenu(['--protocol', '2025-11-25']);
    t.keys('C-c');
    await t.exitCode();
    assert.equal(headers(screen).length, 1, `one question header:\n${screen}`);
    assert.equal(liveMenus(screen), 1, `one open prompt:\n${screen}`);
  });

  // `pending` only reads: a question the server pushes to its connection (2025-11-25 delivers one on
  // every tasks/get of an input_required task) is not put to the person, whose answer nothing would
  // send. It lists the task and ends; the question still waits.
  it('2025-11-25: pending lists a waiting task without asking it, and ends', { timeout: 60_000 }, async () => {
    const journal = newJournal();
    const { taskId, invoiceId } = waitingTask(journal, ['--protocol', '2025-11-25']);
    const t = terminal(['pending', '--journal', journal]);
    assert.equal(await t.exitCode(), 0);
    const screen = t.screen();
    assert.match(screen, new RegExp(`${taskId}\\s+process_invoice`), `the task is listed:\n${screen}`);
    assert.equal(liveMenus(screen), 0, `no prompt:\n${screen}`);
    assert.doesNotMatch(screen, /Your decision/, `no question drawn:\n${screen}`);
    stillWaiting(taskId, journal, invoiceId, screen);
  });

  it('2025-11-25: resume asks two tasks one after the other (headers A, B; never A, B, A)', { timeout: 60_000 }, async () => {
    const journal = newJournal();
    waitingTask(journal, ['--protocol', '2025-11-25']);
    waitingTask(journal, ['--protocol', '2025-11-25']);
    const t = terminal(['resume', '--journal', journal]);
    const screen = await t.settled(now(LIVE_MENU), 800, 40_000);
    t.keys('C-c');
    await t.exitCode();
    assert.equal(headers(screen).length, 1, `one question header before the first is answered:\n${screen}`);
    assert.equal(liveMenus(screen), 1, `one open prompt:\n${screen}`);
  });
});

// An answer typed while the server is down is never claimed sent, never dropped, never asked again:
// the CLI says it is kept, sends it once the server is back (then says so), and says plainly that it
// was not sent when the person stops first. The server is SIGKILLed with the form on the screen and
// started again on the same port and store.
describe('mcp-tasks CLI in a real terminal: an answer typed while the server is down', { skip: tmuxMissing }, () => {
  let demo: DemoProcess | undefined;
  let port = 0;
  let terminals: Terminal[] = [];
  const scratch = join(dir, 'outage-scratch-journal');
  const store = () => ['--store', `sqlite:${join(dir, 'outage-srv', 'invoice.db')}`, '--poll-interval', '100'];
  const up = async () => {
    demo = await startDemo([...store(), ...(port ? ['--port', String(port)] : [])]);
    port = Number(new URL(demo.url).port);
  };
  const url = () => `http://127.0.0.1:${port}/mcp`;

  /** `call process_invoice` in a terminal, answered up to its (empty, optional) Comment field, not yet submitted. */
  const formUpToComment = async (flags: string[]) => {
    const journal = newJournal();
    const { invoiceId, file } = newInvoice();
    const t = Terminal.start(
      [process.execPath, '--import', 'tsx', 'src/cli/main.ts', 'call', url(), 'process_invoice', '--args-file', file, '--journal', journal, ...flags],
      { cwd: root, env },
    );
    terminals.push(t);
    const screen = await t.settled(now(LIVE_MENU), 800, 40_000);
    const taskId = asking(screen);
    assert.ok(taskId, `no question header on the screen:\n${screen}`);
    t.keys('Enter'); // Answer
    await t.settled(now(DECISION));
    t.keys('Enter'); // approve
    await t.settled(now(COMMENT));
    return { t, journal, invoiceId, taskId };
  };

  /** SIGKILLs the server, then submits the form: the answer is typed while nothing listens. Returns the screen once the CLI says it kept it. */
  const answerWhileDown = async (t: Terminal) => {
    await demo!.kill();
    t.keys('Enter'); // the (empty) comment: the form is complete
    return t.waitFor(/^\[[0-9a-f]{32}\] your answer \(accept\) is not sent yet: .+\. It is kept and will be sent when the server is back/m, 30_000);
  };
  /**
   * Why it was not sent, as the CLI says it: the server refused the connection (the answer was
   * typed after the CLI noticed), or the connection was lost under the open request (2025-11-25,
   * typed just before).
   */
  const NOT_SENT_BECAUSE = String.raw`(cannot reach http://127\.0\.0\.1:\d+/mcp: connection refused|the connection to http://127\.0\.0\.1:\d+/mcp was lost before the answer could be sent)`;

  const status = (taskId: string, journal: string): string => {
    const res = cli(['get', taskId, '--journal', journal, '--json']);
    assert.equal(res.code, 0, `get ${taskId}: ${res.stderr}${res.stdout}`);
    return JSON.parse(res.stdout).status;
  };
  const payments = (invoiceId: string): { invoiceId: string; amount: number }[] => {
    const res = cli(['call', url(), 'list_payments', '--args', JSON.stringify({ invoiceId }), '--json', '--journal', scratch]);
    assert.equal(res.code, 0, `list_payments: ${res.stderr}${res.stdout}`);
    return JSON.parse(res.stdout).result.structuredContent.payments;
  };

  before(up);
  afterEach(async () => {
    for (const t of terminals) t.kill();
    terminals = [];
    if (!demo || demo.child.exitCode !== null || demo.child.signalCode !== null) await up();
  });
  after(async () => {
    await demo?.kill();
  });

  for (const version of ERAS) {
    describe(`speaking ${version.name}`, () => {
      it('"not sent yet… kept", then sent once the server is back: exit 0, asked once, paid once', { timeout: 90_000 }, async () => {
        const { t, journal, invoiceId, taskId } = await formUpToComment(version.flags);
        await answerWhileDown(t);
        let screen = t.screen();
        assert.doesNotMatch(screen, /answer sent/, `nothing may be claimed sent while the server is down:\n${screen}`);
        assert.match(screen, new RegExp(`your answer \\(accept\\) is not sent yet: ${NOT_SENT_BECAUSE}`));

        await up();
        const code = await t.exitCode(60_000);
        screen = t.screen();
        assert.equal(code, 0, screen);
        const kept = screen.search(/your answer \(accept\) is not sent yet/);
        const resending = screen.indexOf(`[${taskId}] sending your kept answer (accept)`);
        const sent = screen.indexOf(`[${taskId}] answer sent (accept)`);
        assert.ok(kept >= 0 && resending > kept && sent > resending, `kept, then sending, then sent:\n${screen}`);
        assert.equal(screen.split('\n').filter((l) => /answer sent/.test(l)).length, 1, `'answer sent' once:\n${screen}`);
        assert.deepEqual(headers(screen), [taskId], `the question was asked once, never again:\n${screen}`);
        assert.match(screen, new RegExp(`^Invoice ${invoiceId} approved and paid`, 'm'));
        assert.equal(status(taskId, journal), 'completed');
        assert.equal(payments(invoiceId).length, 1, 'paid once');
      });

      it('Ctrl-C while the answer is kept: says plainly it was not sent (exit 3); the question still waits, nothing paid', { timeout: 90_000 }, async () => {
        const { t, journal, invoiceId, taskId } = await formUpToComment(version.flags);
        await answerWhileDown(t);
        t.keys('C-c');
        const code = await t.exitCode();
        const screen = t.screen();
        assert.equal(code, 3, screen);
        assert.match(
          screen,
          // (No prompt owns the terminal: it echoes the ^C before the line.)
          new RegExp(`^(\\^C)?\\[${taskId}\\] detached: interrupted; .*your answer \\(accept\\) was not sent \\(${NOT_SENT_BECAUSE}`, 'm'),
        );
        assert.doesNotMatch(screen, /answer sent/);
        await up();
        assert.equal(status(taskId, journal), 'input_required', `the question still waits:\n${screen}`);
        assert.deepEqual(payments(invoiceId), [], 'nothing paid');
      });
    });
  }
});
