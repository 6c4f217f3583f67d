/**
 * The operator console in a real browser: Debian's Chromium driven by playwright-core (headless, no
 * browser download), against the invoice demo as a child process on SQLite with bearer tokens for
 * two principals and an operator token. Invoices are submitted from the CLI; the console must show
 * them live, draw their timeline, take an approval and a rejection (each confirmed), cancel with
 * confirmation, and after a SIGKILL and restart show the resumed task. The screenshots it takes are
 * the README's (docs/console/*.png).
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { chromium, type Browser, type Page } from 'playwright-core';
import { startDemo, type DemoProcess } from './helpers/demo-process.js';
import { freePort } from './helpers/peer-process.js';
import { until } from './helpers/until.js';

const CHROMIUM = process.env.MCP_TASKS_CHROMIUM ?? '/usr/bin/chromium';
const SHOTS = 'docs/console';
const dir = mkdtempSync(join(tmpdir(), 'mcp-tasks-console-'));
const journal = join(dir, 'journal');
const tokens = join(dir, 'tokens.json');
const operators = join(dir, 'operators.json');
writeFileSync(tokens, JSON.stringify({ 'alice-token': 'alice', 'bob-token': 'bob' }));
writeFileSync(operators, JSON.stringify({ 'ops-token': 'olivia' }));

let unique = 0;
/** Writes `{ invoice }` for the CLI: a small invoice against the demo ERP's PO (each approval uses up a little of it); `patch` replaces fields. */
const invoiceFile = (lines: { description: string; amount: number; payOn?: string }[], patch: Record<string, string> = {}) => {
  const invoice = {
    invoiceId: `INV-CONSOLE-${process.pid}-${++unique}`,
    vendorId: 'V-1001',
    poNumber: 'PO-2026-0417',
    currency: 'EUR',
    issuedOn: '2026-11-20',
    lines: lines.map((line, i) => ({ lineId: String(i + 1), ...line })),
    ...patch,
  };
  const file = join(dir, `${invoice.invoiceId}.json`);
  writeFileSync(file, JSON.stringify({ invoice }));
  return file;
};
const chairs = () =>
  invoiceFile([
    { description: 'Office chairs', amount: 120 },
    { description: 'Desk lamps', amount: 45.5 },
  ]);

/** Starts an invoice with the CLI as `token`'s principal; it detaches at the approval question (no terminal). Returns the task id. */
function submit(url: string, token: string, file: string): string {
  const res = spawnSync(
    process.execPath,
    ['--import', 'tsx', 'src/cli/main.ts', 'call', url, 'process_invoice', '--args-file', file, '--token', token, '--journal', journal],
    {
      encoding: 'utf8',
      timeout: 60_000,
    },
  );
  const id = /\[([0-9a-f]{32})\] detached/.exec(res.stdout)?.[1];
  assert.ok(id, `the CLI did not detach with a task id:\n${res.stdout}\n${res.stderr}`);
  return id;
}

/** Starts an invoice that fails validation with the CLI as `token`'s principal (it ends at once, with a tool error). Returns the task id. */
function submitFailing(url: string, token: string, file: string): string {
  const res = spawnSync(
    process.execPath,
    ['--import', 'tsx', 'src/cli/main.ts', 'call', url, 'process_invoice', '--args-file', file, '--token', token, '--journal', journal],
    { encoding: 'utf8', timeout: 60_000 },
  );
  const id = /\[([0-9a-f]{32})\] task created/.exec(res.stderr)?.[1];
  assert.ok(id && res.status === 1, `the CLI did not report a failed task:\n${res.stdout}\n${res.stderr}`);
  return id;
}

/** `mcp-tasks get <id>` as `token`'s principal: exit code and parsed JSON. */
function cliGet(url: string, token: string, taskId: string): { code: number | null; task?: any; stderr: string } {
  const res = spawnSync(
    process.execPath,
    ['--import', 'tsx', 'src/cli/main.ts', 'get', taskId, '--url', url, '--token', token, '--json', '--journal', journal],
    {
      encoding: 'utf8',
      timeout: 60_000,
    },
  );
  return { code: res.status, stderr: res.stderr, ...(res.status === 0 && { task: JSON.parse(res.stdout) }) };
}

describe('operator console in Chromium', { skip: !existsSync(CHROMIUM) && !process.env.CI && `no Chromium at ${CHROMIUM}` }, () => {
  let browser: Browser;
  let page: Page;
  let demo: DemoProcess;
  let port: number;
  let base: string;
  const ids: Record<string, string> = {};

  const boot = async () => {
    demo = await startDemo([
      '--port',
      String(port),
      '--store',
      `sqlite:${join(dir, 'invoice.db')}`,
      '--poll-interval',
      '100',
      '--tokens',
      tokens,
      '--console',
      '--operator-tokens',
      operators,
      '--log-level',
      'warn',
    ]);
  };
  const shot = (name: string) => page.screenshot({ path: join(SHOTS, `${name}.png`), fullPage: true });
  const rowStatus = (taskId: string) => page.locator(`tr[data-task-id="${taskId}"] [data-status]`).getAttribute('data-status');
  const panelStatus = () => page.locator('#task-panel h1 [data-status]').getAttribute('data-status');

  before(async () => {
    mkdirSync(SHOTS, { recursive: true });
    port = await freePort();
    await boot();
    base = new URL('/console/', demo.url).href;
    browser = await chromium.launch({
      executablePath: CHROMIUM,
      args: [
        '--headless',
        '--no-sandbox',
        '--disable-gpu',
        '--no-first-run',
        '--disable-background-networking',
        '--disable-component-update',
        '--disable-sync',
      ],
    });
    page = await browser.newPage({ viewport: { width: 1280, height: 860 } });
  });
  after(async () => {
    await browser?.close();
    await demo?.kill();
    rmSync(dir, { recursive: true, force: true });
  });

  it('asks for the operator token, and refuses a client token', async () => {
    await page.goto(base);
    assert.match(page.url(), /\/console\/login$/);
    await page.fill('input[name=token]', 'alice-token');
    await page.click('button[type=submit]');
    assert.match(await page.locator('[role=alert]').innerText(), /not an operator token/);
    await page.fill('input[name=token]', 'ops-token');
    await page.click('button[type=submit]');
    await page.waitForURL(base);
    assert.match(await page.locator('header .who').innerText(), /olivia/);
  });

  it('shows invoices submitted from the CLI as they arrive, every principal’s, without reloading', async () => {
    await page.goto(base);
    const marker = await page.evaluate(() => ((window as any).__loaded = Math.random()));
    ids.approve = submit(demo.url, 'alice-token', chairs());
    ids.reject = submit(demo.url, 'alice-token', invoiceFile([{ description: 'Espresso machine', amount: 899 }]));
    ids.bob = submit(demo.url, 'bob-token', invoiceFile([{ description: 'Whiteboard markers', amount: 12 }]));
    for (const id of Object.values(ids)) await page.locator(`tr[data-task-id="${id}"]`).waitFor({ timeout: 15_000 });
    assert.equal(await page.evaluate(() => (window as any).__loaded), marker, 'the rows came in live, the page was not reloaded');
    assert.equal(await rowStatus(ids.bob!), 'input_required');
    assert.match(await page.locator(`tr[data-task-id="${ids.bob}"]`).innerText(), /bob/);
    assert.equal(await page.locator('[data-count=input_required] strong').innerText(), '3');
    assert.match(await page.locator('[data-oldest]').innerText(), /oldest question waiting for \d+ (s|min)/);

    // An invoice that fails validation: the tool returns an error (over 2026-07-28 the task is
    // `completed` with isError) — counted, badged and listed as failed.
    ids.invalid = submitFailing(
      demo.url,
      'alice-token',
      invoiceFile([{ description: 'Audit workshop', amount: 50 }], { vendorId: 'V-1004', poNumber: 'PO-2026-0441', currency: 'USD' }),
    );
    assert.equal(cliGet(demo.url, 'alice-token', ids.invalid).task?.status, 'completed', 'the client sees a completed task with an error result');
    const invalidRow = page.locator(`tr[data-task-id="${ids.invalid}"]`);
    await invalidRow.waitFor({ timeout: 15_000 });
    assert.equal(await invalidRow.locator('.badge').innerText(), 'failed · tool error');
    assert.match(await invalidRow.innerText(), /failed validation: vendor V-1004 \(Initech Consulting LLC\) is not active/);
    await until(async () => (await page.locator('[data-count=failed] strong').innerText()) === '1', { what: 'the failed count to say 1' });
    assert.equal(await page.locator('[data-count=completed] strong').innerText(), '0', 'a tool error is not counted as completed');
    await shot('list');
    await page.click('[data-count=failed]');
    await page.waitForURL(/status=failed/);
    assert.deepEqual(await page.locator('tr[data-task-id]').evaluateAll((rows) => rows.map((r) => r.getAttribute('data-task-id'))), [ids.invalid]);
    // The whole row leads to the task: a click anywhere on it, and Enter on its link (tool name and id).
    // The status cell, not the link; asked again if a live refresh of the table replaced the row meanwhile.
    const cell = await until(() => invalidRow.locator('td').nth(2).boundingBox(), { what: 'the status cell of the row' });
    await page.mouse.click(cell.x + cell.width / 2, cell.y + cell.height / 2);
    await page.waitForURL(`${base}tasks/${ids.invalid}`);
    assert.equal(await panelStatus(), 'failed');
    assert.match(await page.locator('[data-outcome]').innerText(), /the tool returned an error \(clients see the task as completed, with an error result\)/);
    assert.match(
      await page.locator('.timeline li[data-kind=ended]').innerText(),
      /failed[\s\S]*the tool returned an error: Invoice INV-CONSOLE-\d+-\d+ failed validation/,
    );
    await shot('task-tool-error');
    await page.goto(base);
    const link = page.getByRole('link', { name: `process_invoice ${ids.reject!.slice(0, 12)}…` });
    await link.focus();
    await page.keyboard.press('Enter');
    await page.waitForURL(`${base}tasks/${ids.reject}`);
    await page.goto(base);
    // A phone-sized window: nothing wider than the screen.
    await page.setViewportSize({ width: 390, height: 844 });
    assert.ok((await page.evaluate(() => document.documentElement.scrollWidth)) <= 390, 'the list fits a 390 px screen');
    await page.setViewportSize({ width: 1280, height: 860 });

    // A principal sees only their own tasks; the operator sees both.
    assert.notEqual(cliGet(demo.url, 'alice-token', ids.bob!).code, 0, 'alice cannot read bob’s task');
    assert.equal(cliGet(demo.url, 'bob-token', ids.bob!).task?.status, 'input_required');
    await page.goto(`${base}?principal=bob`);
    assert.deepEqual(await page.locator('tr[data-task-id]').evaluateAll((rows) => rows.map((r) => r.getAttribute('data-task-id'))), [ids.bob]);
  });

  it('opens a task, draws its timeline, and approves it through the form with a confirmation; the invoice is paid', async () => {
    await page.goto(base);
    await page.click(`tr[data-task-id="${ids.approve}"] a`);
    await page.waitForURL(`${base}tasks/${ids.approve}`);
    assert.equal(await panelStatus(), 'input_required');
    assert.ok((await page.locator('.timeline li[data-kind=step]').count()) >= 1, 'the validation step is on the timeline');
    assert.equal(await page.locator('.timeline li[data-kind=question]').getAttribute('data-state'), 'waiting');
    await page.check('input[name="field.decision"][value=approve]');
    await page.fill('textarea[name="field.comment"]', 'approved from the console');
    await shot('task-waiting');
    await page.click('button[value=accept]');
    assert.equal(await page.locator('[data-confirm-action]').getAttribute('data-confirm-action'), 'accept');
    assert.match(await page.locator('.confirm').innerText(), /approve/);
    assert.equal(cliGet(demo.url, 'alice-token', ids.approve!).task?.status, 'input_required', 'nothing is sent before the confirmation');
    await shot('confirm');
    await page.click('[data-action=confirm-answer]');
    await page.waitForURL(`${base}tasks/${ids.approve}`);
    await until(async () => (await panelStatus()) === 'completed', { timeoutMs: 20_000, what: 'the approved invoice completes on the page (live)' });
    assert.match(await page.locator('#task-panel').innerText(), /paid/);
    const question = await page.locator('.timeline li[data-kind=question]').innerText();
    assert.match(question, /by operator olivia/);
    assert.match(question, /→ answered: decision = approve; comment = approved from the console/);
    assert.doesNotMatch(question, /accept/, 'no protocol word');
    assert.match(await page.locator('[data-kept]').innerText(), /^until \d{4}-\d\d-\d\d \d\d:\d\d UTC \(in 7 days\)$/);
    await shot('task-paid');
    const seen = cliGet(demo.url, 'alice-token', ids.approve!).task;
    assert.equal(seen?.status, 'completed', 'the client sees the outcome too');
  });

  it('rejects an invoice only after the confirmation, and cancels a task only after its confirmation', async () => {
    await page.goto(`${base}tasks/${ids.reject}`);
    await page.check('input[name="field.decision"][value=reject]');
    await page.click('button[value=accept]');
    assert.match(await page.locator('.confirm').innerText(), /reject/);
    await page.click('[data-action=confirm-answer]');
    await until(async () => (await panelStatus()) === 'completed', { timeoutMs: 20_000, what: 'the rejected invoice completes' });
    assert.match(await page.locator('#task-panel').innerText(), /rejected/);
    assert.match(await page.locator('.timeline li[data-kind=question]').innerText(), /→ answered: decision = reject/);

    await page.goto(`${base}tasks/${ids.bob}`);
    await page.click('details.danger summary');
    assert.equal(await panelStatus(), 'input_required', 'opening the cancel dialog changes nothing');
    await page.click('[data-action=confirm-cancel]');
    await until(async () => (await panelStatus()) === 'cancelled', { timeoutMs: 20_000, what: 'the task is cancelled' });
    assert.match(await page.locator('.timeline').innerText(), /cancel requested\s+by operator olivia/);
    assert.equal(cliGet(demo.url, 'bob-token', ids.bob!).task?.status, 'cancelled');
  });

  it('after the server is SIGKILLed and restarted, shows the resumed task; once approved it waits for its pay date', async () => {
    const payOn = new Date(Date.now() + 41 * 86_400_000).toISOString();
    ids.restart = submit(
      demo.url,
      'alice-token',
      invoiceFile([
        { description: 'Printer toner', amount: 60 },
        { description: 'Annual printer service', amount: 240, payOn },
      ]),
    );
    await page.goto(`${base}tasks/${ids.restart}`);
    assert.equal(await panelStatus(), 'input_required');
    await demo.kill();
    // The open page says it lost the server, then recovers by itself once it is back (same port),
    // re-fetching what it shows: the restart appears on the timeline without a reload.
    await page.locator('#connection').waitFor({ state: 'visible', timeout: 15_000 });
    await boot();
    await page.locator('#connection').waitFor({ state: 'hidden', timeout: 20_000 });
    await page.locator('.timeline li[data-kind=run]').waitFor({ timeout: 10_000 });
    assert.equal(await panelStatus(), 'input_required');
    assert.match(await page.locator('.timeline li[data-kind=run]').innerText(), /resumed after restart/);
    // Recovery asked the question again, rewriting the task's last update; the list still counts
    // the oldest question's wait from its first ask, as the task's page does.
    const askedAt = await page.locator('[data-question] header time').getAttribute('datetime');
    const updatedAt = await page.locator('.facts dt:text("Last update") + dd time').getAttribute('datetime');
    assert.ok(askedAt && updatedAt && updatedAt > askedAt, `asked ${askedAt}, last update ${updatedAt}`);
    await page.goto(base);
    assert.equal(await page.locator('[data-oldest] time').getAttribute('datetime'), askedAt);
    await page.goto(`${base}tasks/${ids.restart}`);
    await page.check('input[name="field.decision"][value=approve]');
    await page.click('button[value=accept]');
    await page.click('[data-action=confirm-answer]');
    // The first line is paid at once; the second waits on a durable timer for its pay date.
    const timer = page.locator('.timeline li[data-kind=timer][data-state=waiting]');
    await timer.waitFor({ timeout: 20_000 });
    assert.match(await timer.innerText(), /due in 41 days/);
    assert.equal(await panelStatus(), 'working');
    // The axis ends now, the payment date is a marker beside it; the bars of the past stay apart.
    assert.equal(await timer.locator('[data-beyond]').innerText(), '→ 41 days');
    assert.equal(await page.locator('[data-axis-end]').innerText(), 'now');
    const track = (await page.locator('.timeline li[data-kind=created] .track').boundingBox())!;
    const timerBar = (await timer.locator('.bar').boundingBox())!;
    assert.ok(Math.abs(timerBar.x + timerBar.width - (track.x + track.width)) <= 1, 'the wait runs to the axis’s end');
    // Measured once the page is laid out (a live update may be swapping the timeline in: its bars read 0 meanwhile).
    const apart = (xs: number[]) => xs.length >= 3 && xs.every((x, i) => i === 0 || x - xs[i - 1]! >= 4);
    let steps: number[] = [];
    for (let attempt = 0; attempt < 50; attempt++) {
      steps = await page.locator('.timeline li[data-kind=step] .bar').evaluateAll((bars) => bars.map((b) => b.getBoundingClientRect().x));
      if (apart(steps)) break;
      await page.waitForTimeout(100);
    }
    assert.ok(steps.length >= 3, 'validate, approve, pay:1');
    for (let i = 1; i < steps.length; i++) assert.ok(steps[i]! - steps[i - 1]! >= 4, `step ${i} has its own place on the axis: ${steps.join(', ')}`);
    assert.ok(steps.at(-1)! - track.x >= track.width / 4, `the last step is not squeezed against the start: ${steps.at(-1)! - track.x} px of ${track.width}`);
    await shot('task-timeline');
    await page.goto(base);
    assert.equal(await rowStatus(ids.restart!), 'working');
  });
});
