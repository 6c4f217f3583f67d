/**
 * The invoice demo driven by the official MCP Inspector (`@modelcontextprotocol/inspector` 2.12, CLI
 * mode: `mcp-inspector --cli <url> --method … --protocol-era legacy|modern`), as a real child process
 * per call, in both protocol eras.
 *
 * The Inspector CLI declares neither `elicitation` nor `sampling` (it cannot ask a person), so the
 * demo's approval question can never be answered through it. What these tests hold: every run ends by
 * itself within HANG_BOUND_MS (else it is killed and the test fails), tools are listed, a task tool
 * that needs no input completes through the Inspector's task path, and the approval question — or the
 * explanation of who can answer it — reaches the Inspector's output.
 *
 * Hermetic: the Inspector gets a private HOME (its catalog, client config, OAuth state and secrets
 * would live under ~/.mcp-inspector), no proxy variables (it would route even loopback traffic through
 * HTTP(S)_PROXY), `--stored-auth-only` (never an interactive OAuth login, so never a browser) and
 * MCP_AUTO_OPEN_ENABLED=false; it talks only to the demo on 127.0.0.1. The Inspector's engines field
 * asks for Node ≥ 22.19; its CLI runs here on the project's Node 20.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { startDemo, type DemoProcess } from './helpers/demo-process.js';

/** A run of the Inspector that has not exited by itself after this long is a hang: it is killed and the test fails. */
const HANG_BOUND_MS = 30_000;

const inspectorPackage = createRequire(import.meta.url).resolve('@modelcontextprotocol/inspector/package.json');
const inspectorBin = join(dirname(inspectorPackage), JSON.parse(readFileSync(inspectorPackage, 'utf8')).bin['mcp-inspector']);

const INVOICE_ID = 'INV-2026-0001';
const invoice = JSON.parse(readFileSync(join('examples/invoice/data/invoices', `${INVOICE_ID}.json`), 'utf8'));
/** The approval question `process_invoice` asks (`ctx.elicit`) for INV-2026-0001 against the shipped ERP data. */
const QUESTION = 'Approve invoice INV-2026-0001 from Acme Office Supplies GmbH (PO PO-2026-0417): 3 line(s), total EUR 8,202.50?';

interface InspectorRun {
  /** Exit code when the Inspector exited by itself; null when it was killed at HANG_BOUND_MS. */
  code: number | null;
  hung: boolean;
  stdout: string;
  stderr: string;
}

/** The Inspector's environment: the test's, without proxy settings or Inspector configuration, with a private HOME. */
function inspectorEnv(home: string): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [key, value] of Object.entries(process.env)) {
    if (/^(https?|all|no)_proxy$/i.test(key) || /^MCP_/.test(key)) continue;
    env[key] = value;
  }
  return { ...env, HOME: home, USERPROFILE: home, MCP_AUTO_OPEN_ENABLED: 'false', NO_COLOR: '1' };
}

/** Runs `mcp-inspector --cli <url> --protocol-era <era> --stored-auth-only <args>`; kills it if it is still running at HANG_BOUND_MS. */
async function runInspector(url: string, era: 'legacy' | 'modern', home: string, args: string[]): Promise<InspectorRun> {
  const child = spawn(process.execPath, [inspectorBin, '--cli', url, '--protocol-era', era, '--stored-auth-only', ...args], {
    env: inspectorEnv(home),
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (chunk) => (stdout += String(chunk)));
  child.stderr.on('data', (chunk) => (stderr += String(chunk)));
  let timer: NodeJS.Timeout | undefined;
  try {
    const exited = new Promise<number | null>((resolve, reject) => {
      child.once('error', reject);
      child.once('close', (code) => resolve(code));
    });
    const bound = new Promise<'hung'>((resolve) => (timer = setTimeout(() => resolve('hung'), HANG_BOUND_MS)));
    const outcome = await Promise.race([exited, bound]);
    return outcome === 'hung' ? { code: null, hung: true, stdout, stderr } : { code: outcome, hung: false, stdout, stderr };
  } finally {
    clearTimeout(timer);
    if (child.exitCode === null && child.signalCode === null) {
      const gone = new Promise((resolve) => child.once('close', resolve));
      child.kill('SIGKILL');
      await gone;
    }
  }
}

function describeRun(run: InspectorRun): string {
  return `${run.hung ? `still running after ${HANG_BOUND_MS} ms (killed)` : `exit ${run.code}`}\n--- stdout ---\n${run.stdout}\n--- stderr ---\n${run.stderr}`;
}

/** Asserts the run ended by itself with `code` and returns its stdout parsed (the CLI prints the result as JSON). */
function expectExit(run: InspectorRun, code: number): Record<string, any> {
  assert.equal(run.hung, false, `the Inspector hung:\n${describeRun(run)}`);
  assert.equal(run.code, code, describeRun(run));
  return JSON.parse(run.stdout);
}

for (const era of ['legacy', 'modern'] as const) {
  const version = era === 'legacy' ? '2025-11-25' : '2026-07-28';

  describe(`MCP Inspector 2.12 CLI against the invoice demo (--protocol-era ${era}, ${version})`, () => {
    let dir: string;
    let home: string;
    let demo: DemoProcess;
    const inspector = (...args: string[]) => runInspector(demo.url, era, home, args);

    before(async () => {
      dir = mkdtempSync(join(tmpdir(), 'mcp-tasks-inspector-'));
      home = join(dir, 'home');
      // --sync-wait-ms: a call the server holds before handing its task off ends well inside HANG_BOUND_MS.
      demo = await startDemo(['--store', `sqlite:${join(dir, 'invoice.db')}`, '--poll-interval', '200', '--sync-wait-ms', '2000']);
    });
    after(async () => {
      await demo?.kill();
      rmSync(dir, { recursive: true, force: true });
    });

    it(`negotiates ${version}`, async () => {
      const info = expectExit(await inspector('--method', 'initialize'), 0);
      assert.equal(info.protocolVersion, version);
      assert.equal(info.serverInfo.name, 'mcp-tasks-invoice');
      if (era === 'legacy') assert.ok(info.capabilities.tasks?.requests?.tools?.call, JSON.stringify(info.capabilities));
      else assert.ok(info.capabilities.extensions?.['io.modelcontextprotocol/tasks'], JSON.stringify(info.capabilities));
    });

    it('lists the tools', async () => {
      const { tools } = expectExit(await inspector('--method', 'tools/list'), 0);
      assert.deepEqual(tools.map((tool: { name: string }) => tool.name).sort(), ['export_payments_report', 'list_payments', 'process_invoice']);
      const taskSupport = Object.fromEntries(
        tools.map((tool: { name: string; execution?: { taskSupport?: string } }) => [tool.name, tool.execution?.taskSupport]),
      );
      // 2025-11-25 advertises task support per tool; 2026-07-28 has no execution.taskSupport (the server decides).
      if (era === 'legacy') assert.deepEqual(taskSupport, { list_payments: undefined, process_invoice: 'optional', export_payments_report: 'required' });
      else assert.deepEqual(taskSupport, { list_payments: undefined, process_invoice: undefined, export_payments_report: undefined });
    });

    it('runs a task that needs no input to its result (export_payments_report)', async () => {
      const result = expectExit(await inspector('--method', 'tools/call', '--tool-name', 'export_payments_report', '--tool-arg', 'format=csv'), 0);
      assert.notEqual(result.isError, true, JSON.stringify(result));
      assert.deepEqual(result.structuredContent, { format: 'csv', count: 0 });
      assert.equal(result.content[0].text, 'invoiceId,lineId,amount,currency,paidAt');
      // 2025-11-25: a task-augmented call (task: {}), tasks/get, tasks/result; the result names its task.
      if (era === 'legacy') assert.match(result._meta?.['io.modelcontextprotocol/related-task']?.taskId ?? '', /^[0-9a-f]{32}$/);
    });

    if (era === 'legacy')
      it('process_invoice: ends at once with a hand-off result naming the task and the approval question (no elicitation capability)', async () => {
        const run = await inspector('--method', 'tools/call', '--tool-name', 'process_invoice', '--tool-args-json', JSON.stringify({ invoice }));
        // Exit 5 = the tool returned isError; the CLI's error envelope goes to stderr.
        const result = expectExit(run, 5);
        assert.equal(JSON.parse(run.stderr).error.code, 'tool_is_error');
        assert.equal(result.isError, true);
        const { taskId, status, statusMessage, pendingInput } = result.structuredContent;
        assert.match(taskId, /^[0-9a-f]{32}$/);
        assert.equal(status, 'input_required');
        assert.ok(statusMessage.includes(QUESTION), statusMessage);
        assert.equal(pendingInput.length, 1);
        assert.equal(pendingInput[0].message, QUESTION);
        assert.deepEqual(pendingInput[0].requestedSchema.properties.decision.enum, ['approve', 'reject']);
        const text: string = result.content[0].text;
        assert.ok(text.includes(`task ${taskId}`), text);
        assert.match(text, /\belicitation\b/, text); // which capability the question needs
        assert.ok(text.includes(QUESTION), text);
      });
    else
      it('process_invoice: ends by itself and shows the approval question or who can answer it (no elicitation capability)', async () => {
        // 2026-07-28: the Inspector declares the tasks extension but not elicitation, and would poll a task
        // it cannot answer for ever (ext-tasks stops only at a terminal status, printing nothing meanwhile).
        // The server holds such a call for the task's first question and, as it is one this client cannot
        // answer, refuses it with -32021 (Missing Required Client Capability) quoting the question.
        const run = await inspector('--method', 'tools/call', '--tool-name', 'process_invoice', '--tool-args-json', JSON.stringify({ invoice }));
        assert.equal(
          run.hung,
          false,
          `the Inspector hung on a task it cannot answer:\n${describeRun(run)}\n--- demo log (tail) ---\n${demo.log().slice(-2000)}`,
        );
        const output = `${run.stdout}\n${run.stderr}`;
        assert.ok(output.includes(QUESTION), `the approval question is not in the Inspector's output:\n${describeRun(run)}`);
        assert.notEqual(run.code, 0, describeRun(run)); // an error (the Inspector prints its message, not its code)
        assert.match(output, /needs a client that declares elicitation/, describeRun(run));
      });
  });
}
