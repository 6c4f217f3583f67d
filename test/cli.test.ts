/** The mcp-tasks CLI against a running demo server, as a user runs it (child processes, real exit codes). */
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { ClientJournal } from '../src/client/journal.js';
import { startDemo, type DemoProcess } from './helpers/demo-process.js';

const dir = mkdtempSync(join(tmpdir(), 'mcp-tasks-cli-'));
const journal = join(dir, 'journal');
const invoice = (id: string) => JSON.parse(readFileSync(join('examples/invoice/data/invoices', `${id}.json`), 'utf8'));

function cli(args: string[]) {
  const res = spawnSync(process.execPath, ['--import', 'tsx', 'src/cli/main.ts', ...args, '--journal', journal], { encoding: 'utf8', timeout: 60_000 });
  return { code: res.status, stdout: res.stdout, stderr: res.stderr };
}

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
    const payOn = new Date(Date.now() + 4000).toISOString();
    const inv = {
      invoiceId: 'INV-CLI-1',
      vendorId: 'V-1001',
      poNumber: 'PO-2026-0417',
      currency: 'EUR',
      issuedOn: '2026-11-20',
      lines: [{ lineId: '1', description: 'later', amount: 10, payOn }],
    };
    const child = spawn(
      process.execPath,
      [
        '--import',
        'tsx',
        'src/cli/main.ts',
        'call',
        demo.url,
        'process_invoice',
        '--args',
        JSON.stringify({ invoice: inv }),
        '--answer',
        '{"decision":"approve"}',
        '--journal',
        journal,
      ],
      { stdio: ['ignore', 'pipe', 'pipe'] },
    );
    let stderr = '';
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`no wait seen: ${stderr}`)), 30_000);
      child.stderr.on('data', (chunk) => {
        stderr += String(chunk);
        if (/waiting until/i.test(stderr)) {
          clearTimeout(timer);
          resolve();
        }
      });
    });
    child.kill('SIGKILL');
    await new Promise((r) => child.once('exit', r));
    const taskId = /\[([0-9a-f]{32})\] task created/.exec(stderr)?.[1];
    assert.ok(taskId);
    const entry = (JSON.parse(cli(['ls', '--json']).stdout) as any[]).find((e) => e.taskId === taskId);
    assert.equal(entry.status, 'working');
    assert.equal(entry.tool, 'process_invoice');
    const got = cli(['get', taskId, '--json']);
    assert.equal(JSON.parse(got.stdout).status, 'working');
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
