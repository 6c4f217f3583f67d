/**
 * Interop: the mcp-tasks CLI (`--protocol 2025-11-25`, protocol 2025-11-25) against task servers nobody here
 * wrote, each asking one question while its task runs:
 * - A: a server on the official SDK 1.x experimental tasks API (test/fixtures/sdk-v1-task-server.mjs),
 * - B: @modelcontextprotocol/server-everything (`simulate-research-query`, `ambiguous: true`).
 *
 * Both queue their `elicitation/create` (with `_meta["io.modelcontextprotocol/related-task"]`) in the
 * task's message queue and deliver it ONLY on the SSE stream of a `tasks/result` request: spec
 * 2025-11-25 "Input Required Status" — on `input_required` the requestor SHOULD call `tasks/result`.
 * A client that only polls `tasks/get` never sees the question; the peers then give up after 60 s
 * (the SDK's request timeout): A fails the task, B goes on with a default interpretation.
 *
 * Every CLI run goes through a recording proxy (helpers/peer-wire.ts), so a failure says what the
 * CLI did on the wire. A control test per peer runs the same flow with the SDK 1.x `Client`
 * (helpers/peer-reference-client.ts), proving the peer works when the flow is followed.
 */
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { startEverythingPeer, startSdkV1Peer, type PeerProcess } from './helpers/peer-process.js';
import { runReferenceFlow } from './helpers/peer-reference-client.js';
import { startRecordingProxy, type RecordingProxy, type WireMessage } from './helpers/peer-wire.js';
import { postInSession } from './helpers/raw-client.js';
import { until } from './helpers/until.js';

const TEST_TIMEOUT_MS = 60_000;
/** The CLI is killed after this long: well below the peers' own 60 s give-up, so their default path is never taken. */
const CLI_LIMIT_MS = 40_000;
const RELATED_TASK = 'io.modelcontextprotocol/related-task';

const dir = mkdtempSync(join(tmpdir(), 'mcp-tasks-interop-'));
const children = new Set<ChildProcess>();
const proxies = new Set<RecordingProxy>();
let journals = 0;

interface CliRun {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
  elapsedMs: number;
  killedAtLimit: boolean;
}

/** Runs the CLI as a user does, without a terminal (stdin ignored), asynchronously so the in-process proxy keeps serving. */
function cli(args: string[]): Promise<CliRun> {
  const journal = join(dir, `journal-${++journals}`);
  const started = Date.now();
  const child = spawn(process.execPath, ['--import', 'tsx', 'src/cli/main.ts', ...args, '--journal', journal], { stdio: ['ignore', 'pipe', 'pipe'] });
  children.add(child);
  let stdout = '';
  let stderr = '';
  child.stdout!.on('data', (chunk) => (stdout += String(chunk)));
  child.stderr!.on('data', (chunk) => (stderr += String(chunk)));
  let killedAtLimit = false;
  const timer = setTimeout(() => {
    killedAtLimit = true;
    child.kill('SIGKILL');
  }, CLI_LIMIT_MS);
  return new Promise((resolve) => {
    child.once('close', (code, signal) => {
      clearTimeout(timer);
      children.delete(child);
      resolve({ code, signal, stdout, stderr, elapsedMs: Date.now() - started, killedAtLimit });
    });
  });
}

async function recordingProxy(peer: PeerProcess): Promise<RecordingProxy> {
  const proxy = await startRecordingProxy(peer.url);
  proxies.add(proxy);
  return proxy;
}

/** One line: what the CLI sent and where the question arrived. */
function wireLine(proxy: RecordingProxy): string {
  const sent = proxy.sent().map((s) => s.message.method);
  const count = (method: string) => sent.filter((m) => m === method).length;
  const question = proxy.received().find((r) => r.message.method === 'elicitation/create');
  const where = question
    ? `the question arrived on exchange #${question.exchange.n} (${question.exchange.httpMethod} ${question.exchange.sent.map((m) => m.method).join(',') || 'GET stream'})`
    : 'the question (elicitation/create) never reached the CLI';
  return `CLI sent: tools/call ×${count('tools/call')}, tasks/get ×${count('tasks/get')}, tasks/result ×${count('tasks/result')}; ${where}`;
}

/** What the CLI did on the wire, for assertion messages. */
function wireReport(proxy: RecordingProxy, run?: CliRun): string {
  return [
    run &&
      `CLI exit code ${run.code}${run.signal ? ` (${run.signal})` : ''} after ${run.elapsedMs} ms${run.killedAtLimit ? ` — killed at the ${CLI_LIMIT_MS} ms limit, still running` : ''}`,
    wireLine(proxy),
    run && `--- CLI stdout ---\n${run.stdout.slice(-2000)}\n--- CLI stderr ---\n${run.stderr.slice(-2000)}`,
    `--- wire (${proxy.exchanges.length} exchanges; runs of tasks/get elided) ---\n${elide(proxy.summary())}`,
  ]
    .filter(Boolean)
    .join('\n');
}

function elide(summary: string): string {
  const lines = summary.split('\n');
  const out: string[] = [];
  let run = 0;
  for (const line of lines) {
    const poll = /POST req tasks\/get#/.test(line);
    if (poll && ++run > 3) continue;
    if (!poll && run > 3) out.push(`  … ${run - 3} more tasks/get`);
    if (!poll) run = 0;
    out.push(line);
  }
  if (run > 3) out.push(`  … ${run - 3} more tasks/get`);
  return out.join('\n');
}

/** The task the CLI created: its tools/call carried `params.task` and got a CreateTaskResult back. */
function createdTask(proxy: RecordingProxy, tool: string, report: () => string): string {
  const call = proxy.sent().find((s) => s.message.method === 'tools/call' && s.message.params?.name === tool);
  assert.ok(call, `the CLI never called ${tool}\n${report()}`);
  assert.ok(call.message.params.task, `the CLI called ${tool} without params.task (not as a task)\n${report()}`);
  const reply = call.exchange.received.find((r) => r.message.id === call.message.id)?.message;
  const taskId = reply?.result?.task?.taskId;
  assert.ok(typeof taskId === 'string', `${tool} did not answer with a CreateTaskResult: ${JSON.stringify(reply)}\n${report()}`);
  return taskId;
}

/**
 * The question reached the CLI and was answered with `expected` (ElicitResult content):
 * `elicitation/create` with related-task meta for `taskId`, and a JSON-RPC response with its id.
 */
function assertAnsweredOnTheWire(proxy: RecordingProxy, taskId: string, expected: Record<string, unknown>, report: () => string): WireMessage {
  const question = proxy.received().find((r) => r.message.method === 'elicitation/create');
  assert.ok(
    question,
    `the question never reached the CLI: on input_required it must call tasks/result (2025-11-25 "Input Required Status"); ` +
      `this peer delivers its queued elicitation/create only on a tasks/result stream\n${report()}`,
  );
  assert.deepEqual(question.message.params?._meta?.[RELATED_TASK], { taskId }, 'the question names its task (related-task meta)');
  const answer = proxy.sent().find((s) => s.message.id === question.message.id && s.message.method === undefined);
  assert.ok(answer, `the CLI received the question but sent no response to it (id ${question.message.id})\n${report()}`);
  assert.equal(answer.message.error, undefined, `the CLI answered the question with an error\n${report()}`);
  assert.equal(answer.message.result?.action, 'accept', `the CLI did not accept with the given answer\n${report()}`);
  assert.deepEqual(answer.message.result?.content, expected, 'the answer sent is the --answer content');
  return question.message;
}

function parseJsonOut(run: CliRun, report: () => string): any {
  const text = run.stdout.trim();
  try {
    return JSON.parse(text.slice(text.indexOf('{')));
  } catch {
    assert.fail(`--json stdout is not one JSON document:\n${report()}`);
  }
}

async function peerState(peer: PeerProcess): Promise<any> {
  const response = await fetch(peer.url.replace(/\/mcp$/, '/peer/state'));
  return response.json();
}

/** tasks/get in an existing session, by hand (SDK 1.x tasks are bound to the session that created them). */
async function rawTasksGet(url: string, sessionId: string, taskId: string): Promise<any> {
  const response = await postInSession(url, sessionId, { jsonrpc: '2.0', id: 'interop-check', method: 'tasks/get', params: { taskId } });
  const text = await response.text();
  const data = text.includes('data:')
    ? text
        .split('\n')
        .filter((l) => l.startsWith('data:') && l.slice(5).trim())
        .map((l) => JSON.parse(l.slice(5)))
        .find((m) => m.id === 'interop-check')
    : JSON.parse(text);
  return data;
}

after(async () => {
  for (const child of children) child.kill('SIGKILL');
  for (const proxy of proxies) await proxy.close().catch(() => undefined);
  rmSync(dir, { recursive: true, force: true });
});

describe('interop A: SDK 1.x experimental tasks server (approve_payment)', { timeout: 4 * TEST_TIMEOUT_MS }, () => {
  let peer: PeerProcess;
  before(async () => {
    peer = await startSdkV1Peer();
  });
  after(async () => {
    await peer?.kill();
  });

  it(
    'control: the SDK 1.x Client following the spec flow gets the question on tasks/result and completes with its answer',
    { timeout: TEST_TIMEOUT_MS },
    async (t) => {
      const proxy = await recordingProxy(peer);
      const report = await runReferenceFlow({
        url: proxy.url,
        tool: 'approve_payment',
        args: { paymentId: 'PAY-CTRL', amount: 12 },
        answer: { action: 'accept', content: { decision: 'approve', comment: 'control' } },
      });
      t.diagnostic(report.steps.map((s) => `${s.at} ms ${s.what}`).join(' | '));
      assert.equal(report.finalStatus, 'completed', proxy.summary());
      assert.deepEqual(report.elicitations[0]?.relatedTask, { taskId: report.taskId });
      assert.equal(report.result.structuredContent.decision, 'approve');
      const question = proxy.received().find((r) => r.message.method === 'elicitation/create');
      assert.deepEqual(
        question?.exchange.sent.map((m) => m.method),
        ['tasks/result'],
        'the peer delivers its question on the tasks/result stream',
      );
    },
  );

  it('call --answer: answers the question delivered through tasks/result and completes with that decision', { timeout: TEST_TIMEOUT_MS }, async (t) => {
    const proxy = await recordingProxy(peer);
    const answer = { decision: 'reject', comment: 'wrong vendor' };
    const run = await cli([
      'call',
      proxy.url,
      'approve_payment',
      '--protocol',
      '2025-11-25',
      '--args',
      JSON.stringify({ paymentId: 'PAY-A1', amount: 42.5 }),
      '--answer',
      JSON.stringify(answer),
      '--json',
    ]);
    const report = () => wireReport(proxy, run);
    t.diagnostic(`CLI exit ${run.code} after ${run.elapsedMs} ms; ${wireLine(proxy)}`);
    assert.ok(
      proxy.sent().some((s) => s.message.method === 'tools/list'),
      `the CLI did not list the tools\n${report()}`,
    );
    const taskId = createdTask(proxy, 'approve_payment', report);
    assertAnsweredOnTheWire(proxy, taskId, answer, report);
    assert.equal(run.code, 0, report());
    const out = parseJsonOut(run, report);
    assert.equal(out.status, 'completed', report());
    assert.equal(out.taskId, taskId);
    assert.deepEqual(out.result.structuredContent, { paymentId: 'PAY-A1', decision: 'reject', comment: 'wrong vendor', answeredBy: 'elicitation' });
    assert.match(out.result.content[0].text, /PAY-A1 .*reject — wrong vendor/);
    const state = await peerState(peer);
    const events = state.tasks.find((x: any) => x.taskId === taskId)?.events.map((e: any) => e.event);
    assert.deepEqual(
      events?.filter((e: string) => e.startsWith('question') || e.startsWith('task-')),
      ['task-created', 'question-queued', 'question-delivered', 'question-answered', 'task-completed'],
      JSON.stringify(state),
    );
  });

  it('call without a terminal and without --answer: detaches (exit 3) and answers nothing on the user’s behalf', { timeout: TEST_TIMEOUT_MS }, async (t) => {
    const proxy = await recordingProxy(peer);
    const run = await cli([
      'call',
      proxy.url,
      'approve_payment',
      '--protocol',
      '2025-11-25',
      '--args',
      JSON.stringify({ paymentId: 'PAY-A2', amount: 99 }),
      '--json',
    ]);
    const report = () => wireReport(proxy, run);
    t.diagnostic(`CLI exit ${run.code} after ${run.elapsedMs} ms; ${wireLine(proxy)}`);
    const taskId = createdTask(proxy, 'approve_payment', report);
    assert.equal(run.killedAtLimit, false, `the CLI neither finished nor detached\n${report()}`);
    assert.equal(run.code, 3, `expected exit 3 (detached, the task needs input)\n${report()}`);
    assert.ok(run.stdout.includes(taskId), `the detach output names the task ${taskId}\n${report()}`);

    // Nothing was sent on the user's behalf: no response (result or error) to the question on the wire…
    const question = proxy.received().find((r) => r.message.method === 'elicitation/create');
    if (question) {
      const reply = proxy.sent().find((s) => s.message.id === question.message.id && s.message.method === undefined);
      assert.equal(reply, undefined, `the CLI replied to the question without an answer from the user: ${JSON.stringify(reply?.message)}`);
    }
    // …none reached the peer, and the task still waits for input.
    const entry = await until(async () => (await peerState(peer)).tasks.find((x: any) => x.taskId === taskId), {
      timeoutMs: 5000,
      what: `task ${taskId} in the peer's state`,
    });
    const events = entry.events.map((e: any) => e.event);
    assert.ok(!events.includes('question-answered'), `the peer received an answer: ${JSON.stringify(entry.events)}`);
    const failed = entry.events.find((e: any) => e.event === 'question-failed');
    assert.ok(!failed || failed.sessionClosed, `the question was failed by the client: ${JSON.stringify(failed)}`);
    assert.equal(entry.task.status, 'input_required', JSON.stringify(entry));
    if (entry.sessionOpen) {
      // The CLI left its session open: a raw tasks/get in it (SDK 1.x tasks are session-bound) shows the same.
      const got = await rawTasksGet(peer.url, entry.sessionId, taskId);
      assert.equal(got?.result?.status, 'input_required', JSON.stringify(got));
    }
    t.diagnostic(`peer after detach: status ${entry.task.status}, session ${entry.sessionOpen ? 'open' : 'closed'}, events ${events.join(' → ')}`);
  });
});

describe('interop B: @modelcontextprotocol/server-everything (simulate-research-query)', { timeout: 3 * TEST_TIMEOUT_MS }, () => {
  let peer: PeerProcess;
  const args = { topic: 'quantum computing', ambiguous: true };
  before(async () => {
    peer = await startEverythingPeer();
  });
  after(async () => {
    await peer?.kill();
  });

  it(
    'control: the SDK 1.x Client following the spec flow gets the question on tasks/result and the report uses its answer',
    { timeout: TEST_TIMEOUT_MS },
    async (t) => {
      const proxy = await recordingProxy(peer);
      const report = await runReferenceFlow({
        url: proxy.url,
        tool: 'simulate-research-query',
        args,
        answer: { action: 'accept', content: { interpretation: 'current' } },
      });
      t.diagnostic(report.steps.map((s) => `${s.at} ms ${s.what}`).join(' | '));
      assert.equal(report.finalStatus, 'completed', proxy.summary());
      assert.deepEqual(report.elicitations[0]?.relatedTask, { taskId: report.taskId });
      assert.match(report.result.content[0].text, /Clarification\*\*: current\n/);
      const question = proxy.received().find((r) => r.message.method === 'elicitation/create');
      assert.deepEqual(
        question?.exchange.sent.map((m) => m.method),
        ['tasks/result'],
      );
    },
  );

  it('call --answer: answers the clarification and the report reflects it (not the timeout default)', { timeout: TEST_TIMEOUT_MS }, async (t) => {
    const proxy = await recordingProxy(peer);
    const run = await cli([
      'call',
      proxy.url,
      'simulate-research-query',
      '--protocol',
      '2025-11-25',
      '--args',
      JSON.stringify(args),
      '--answer',
      JSON.stringify({ action: 'accept', content: { interpretation: 'historical' } }),
      '--json',
    ]);
    const report = () => wireReport(proxy, run);
    t.diagnostic(`CLI exit ${run.code} after ${run.elapsedMs} ms; ${wireLine(proxy)}`);
    assert.ok(
      proxy.sent().some((s) => s.message.method === 'tools/list'),
      `the CLI did not list the tools (server-everything registers simulate-research-query after initialization)\n${report()}`,
    );
    const taskId = createdTask(proxy, 'simulate-research-query', report);
    assertAnsweredOnTheWire(proxy, taskId, { interpretation: 'historical' }, report);
    assert.equal(run.code, 0, report());
    const out = parseJsonOut(run, report);
    assert.equal(out.status, 'completed', report());
    assert.equal(out.taskId, taskId);
    const text: string = out.result.content.map((c: any) => c.text ?? '').join('\n');
    assert.match(text, /# Research Report: quantum computing \(historical\)/, text);
    assert.match(text, /\*\*Clarification\*\*: historical\n/, text);
    assert.doesNotMatch(text, /elicitation unavailable/, 'the peer took its no-answer default path');
  });
});
