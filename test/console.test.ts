/**
 * The operator console (`/console/`) over plain HTTP, no browser: what an operator relies on (sign-in,
 * every principal's tasks, filters and counts, answering and cancelling with a confirmation, live
 * events) and what a security reviewer relies on (signed session cookie, MCP tokens are not operator
 * credentials, CSRF refusals, escaped task data, CSP and frame headers, loopback-only without tokens,
 * refusal to start an unprotected console beside authenticated MCP, no CDN).
 *
 * The server is the invoice demo built in-process (memory store) with bearer tokens for alice and bob
 * and operator tokens; tasks are created over MCP (2025-11-25 raw client) as alice and bob.
 */
import assert from 'node:assert/strict';
import { createHmac } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { connect } from 'node:net';
import { networkInterfaces, tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { Redis } from 'ioredis';
import * as z from 'zod';
import { startInvoiceServer } from '../examples/invoice/server.js';
import { createTaskServer, ENGINE_ACCESS, staticTokenVerifier, type TaskRecord } from '../src/index.js';
import { silentLogger } from '../src/core/log.js';
import { describeAnswer } from '../src/server/console/timeline.js';
import { listOverdue, overdueBadge } from '../src/server/console/overdue.js';
import { MemoryBackend } from '../src/store/memory-backend.js';
import { TaskStore } from '../src/store/task-store.js';
import { STATUSES } from '../src/server/console/views.js';
import {
  axisBreaks,
  ConsoleHttp,
  countsOf,
  parseSetCookie,
  questionKeys,
  rawHttp,
  rowIds,
  smallInvoice,
  startConsoleInvoiceServer,
  timelineBars,
  type ConsoleInvoiceServer,
  type TimelineBar,
} from './helpers/console-http.js';
import { ModernRawClient } from './helpers/modern-client.js';
import { RawMcpClient } from './helpers/raw-client.js';
import { dropSchemas, PG_URL, REDIS_URL, withParam } from './helpers/services.js';
import { until } from './helpers/until.js';

const CLIENT_TOKENS = { 'tok-alice-mcp': 'alice', 'tok-bob-mcp': 'bob' };
const OPERATOR_TOKENS = { 'ops-olivia-secret': 'olivia', 'ops-oscar-secret': 'oscar' };
const COOKIE_NAME = 'mcp_tasks_console';

let invoiceSeq = 0;
const nextInvoiceId = () => `CON-${process.pid}-${++invoiceSeq}`;

/** Starts `process_invoice` as a task over 2025-11-25; returns the task id. */
async function submitInvoice(client: RawMcpClient, invoice: Record<string, unknown>): Promise<string> {
  const res = await client.request('tools/call', { name: 'process_invoice', arguments: { invoice }, task: {} });
  assert.ok(res.result?.task?.taskId, `no task created: ${JSON.stringify(res)}`);
  return res.result.task.taskId as string;
}

/** The `<tr data-task-id="id">…</tr>` row of a list page. */
const rowOf = (page: string, taskId: string) => new RegExp(`<tr data-task-id="${taskId}">[\\s\\S]*?</tr>`).exec(page)?.[0];

/** Checks the console's security headers on an HTML response. */
function assertSecurityHeaders(headers: Headers, what: string): void {
  const csp = headers.get('content-security-policy') ?? '';
  assert.match(csp, /default-src 'self'/, `${what}: CSP default-src 'self'`);
  assert.match(csp, /frame-ancestors 'none'/, `${what}: CSP frame-ancestors 'none'`);
  assert.doesNotMatch(csp, /script-src[^;]*'unsafe-inline'/, `${what}: no inline scripts allowed`);
  assert.equal(headers.get('x-frame-options'), 'DENY', `${what}: x-frame-options`);
  assert.match(headers.get('content-type') ?? '', /^text\/html/, `${what}: content-type`);
}

/** Asserts a page loads nothing from another host (no CDN): no absolute or protocol-relative script/stylesheet/link URLs. */
function assertNoRemoteAssets(html: string, what: string): void {
  assert.doesNotMatch(html, /<script[^>]*\ssrc="(https?:)?\/\//i, `${what}: a remote script`);
  assert.doesNotMatch(html, /<link[^>]*\shref="(https?:)?\/\//i, `${what}: a remote stylesheet or link`);
  assert.doesNotMatch(html, /https?:\/\//i, `${what}: an absolute http(s) URL`);
}

describe('operator console, with operator tokens (MCP clients authenticated)', () => {
  let srv: ConsoleInvoiceServer;
  let ops: ConsoleHttp;
  let alice: RawMcpClient;
  let bob: RawMcpClient;
  const ids = { aliceApprove: '', aliceBad: '', bob: '', bobModern: '', export: '' };
  const bobModern = () => new ModernRawClient(srv.url);
  const asBob = { authorization: 'Bearer tok-bob-mcp' };

  const taskOf = (taskId: string): Promise<TaskRecord> => srv.server.runtime.get(taskId, ENGINE_ACCESS);
  const journalOf = (taskId: string) => srv.server.store.readJournal(taskId);
  const awaitStatus = (taskId: string, status: string) =>
    until(async () => ((await taskOf(taskId)).status === status ? taskOf(taskId) : undefined), {
      timeoutMs: 20_000,
      what: `task ${taskId} to be ${status}`,
    });

  before(async () => {
    srv = await startConsoleInvoiceServer({ tokens: CLIENT_TOKENS, operatorTokens: OPERATOR_TOKENS });
    ops = new ConsoleHttp(srv.origin);
    alice = new RawMcpClient(srv.url, { authorization: 'Bearer tok-alice-mcp' });
    bob = new RawMcpClient(srv.url, { authorization: 'Bearer tok-bob-mcp' });
    await alice.initialize();
    await bob.initialize();
    ids.aliceApprove = await submitInvoice(alice, smallInvoice(nextInvoiceId()));
    ids.aliceBad = await submitInvoice(alice, smallInvoice(nextInvoiceId()));
    ids.bob = await submitInvoice(bob, smallInvoice(nextInvoiceId()));
    const modern = await bobModern().request('tools/call', { name: 'process_invoice', arguments: { invoice: smallInvoice(nextInvoiceId()) } }, asBob);
    assert.equal(modern.result?.resultType, 'task', `2026-07-28 task: ${JSON.stringify(modern)}`);
    ids.bobModern = modern.result.taskId;
    const exported = await alice.request('tools/call', { name: 'export_payments_report', arguments: { format: 'csv' }, task: {} });
    ids.export = exported.result.task.taskId;
    for (const id of [ids.aliceApprove, ids.aliceBad, ids.bob, ids.bobModern]) await awaitStatus(id, 'input_required');
    await awaitStatus(ids.export, 'completed');
  });
  after(async () => {
    await srv?.close();
  });

  describe('1. sign-in', () => {
    it('sends a visitor without credentials to the sign-in page', async () => {
      const anonymous = new ConsoleHttp(srv.origin);
      const list = await anonymous.get('/console/');
      assert.equal(list.status, 303);
      assert.equal(list.location, '/console/login');
      const task = await anonymous.get(`/console/tasks/${ids.bob}`);
      assert.equal(task.status, 303, 'a task page too');
      assert.equal(task.location, '/console/login');
      assert.doesNotMatch(task.text, new RegExp(ids.bob), 'and shows nothing of it');
      const panel = await anonymous.get(`/console/tasks/${ids.bob}/panel`);
      assert.equal(panel.status, 401, 'a fragment is refused outright');
      assert.doesNotMatch(panel.text, new RegExp(ids.bob));
      const fragment = await anonymous.get('/console/list');
      assert.ok(fragment.status === 303 || fragment.status === 401, `list fragment: ${fragment.status}`);
      assert.doesNotMatch(fragment.text, new RegExp(ids.bob));
      const cancel = await anonymous.post(`/console/tasks/${ids.bob}/cancel`, { confirm: 'yes' });
      assert.equal(cancel.status, 401, 'a POST without credentials');
      assert.equal((await taskOf(ids.bob)).status, 'input_required');

      const login = await anonymous.get('/console/login');
      assert.equal(login.status, 200);
      assert.match(login.text, /<form method="post" action="\/console\/login">/);
      assert.match(login.text, /type="password" name="token"/);
      assertSecurityHeaders(login.headers, 'login page');
    });

    it('refuses a wrong token with 401 and no cookie', async () => {
      const visitor = new ConsoleHttp(srv.origin);
      for (const token of ['nope', '', 'ops-olivia-secre', 'ops-olivia-secret ', 'OPS-OLIVIA-SECRET']) {
        const page = await visitor.login(token);
        assert.equal(page.status, 401, `token ${JSON.stringify(token)}`);
        assert.equal(page.setCookie, undefined, `no cookie for ${JSON.stringify(token)}`);
        assert.match(page.text, /not an operator token/);
      }
      assert.equal(visitor.cookie, undefined);
    });

    it("does not take a client's MCP bearer token as an operator credential", async () => {
      const visitor = new ConsoleHttp(srv.origin);
      const login = await visitor.login('tok-alice-mcp');
      assert.equal(login.status, 401, "alice's MCP token does not sign in");
      assert.equal(login.setCookie, undefined);
      const bearer = await visitor.get('/console/', { authorization: 'Bearer tok-alice-mcp' });
      assert.equal(bearer.status, 303, "alice's MCP token as a bearer is sent to the sign-in page");
      assert.equal(bearer.location, '/console/login');
      const post = await visitor.post(`/console/tasks/${ids.bob}/cancel`, { confirm: 'yes' }, { authorization: 'Bearer tok-alice-mcp' });
      assert.equal(post.status, 401);
      assert.equal((await taskOf(ids.bob)).status, 'input_required');
    });

    it('signs in with the right token: 303 and a HttpOnly, SameSite=Strict session cookie that opens the console', async () => {
      const login = await ops.login('ops-olivia-secret');
      assert.equal(login.status, 303);
      assert.equal(login.location, '/console/');
      assert.ok(login.setCookie, 'a Set-Cookie');
      const cookie = parseSetCookie(login.setCookie);
      assert.equal(cookie.name, COOKIE_NAME);
      assert.ok('httponly' in cookie.attributes, 'HttpOnly');
      assert.equal(cookie.attributes.samesite?.toLowerCase(), 'strict', 'SameSite=Strict');
      assert.equal(cookie.attributes.path, '/console');
      assert.ok(Number(cookie.attributes['max-age']) > 0, 'a lifetime');
      assert.doesNotMatch(login.setCookie, /ops-olivia-secret/, 'the token itself is not in the cookie');

      const list = await ops.get('/console/');
      assert.equal(list.status, 200);
      assert.match(list.text, /signed in as <strong>olivia<\/strong>/);
      assertSecurityHeaders(list.headers, 'list page');
    });

    it('refuses a tampered cookie: flipped signature, another operator or a later expiry in the payload, an expired session', async () => {
      const value = ops.cookie!.slice(COOKIE_NAME.length + 1);
      const [payload, tag] = value.split('.') as [string, string];
      const claims = JSON.parse(Buffer.from(payload, 'base64url').toString('utf8'));
      assert.equal(claims.op, 'olivia');
      const flip = (s: string, at: number) => s.slice(0, at) + (s[at] === 'A' ? 'B' : 'A') + s.slice(at + 1);
      const encode = (c: unknown) => Buffer.from(JSON.stringify(c)).toString('base64url');
      const forged = {
        'signature with its first character flipped': `${payload}.${flip(tag, 0)}`,
        'signature with a middle character flipped': `${payload}.${flip(tag, 10)}`,
        'signature cut short': `${payload}.${tag.slice(0, 20)}`,
        'no signature': `${payload}.`,
        'payload only': payload,
        'payload naming another operator': `${encode({ ...claims, op: 'oscar' })}.${tag}`,
        'payload naming an unknown operator': `${encode({ ...claims, op: 'mallory' })}.${tag}`,
        'payload with a later expiry': `${encode({ ...claims, exp: claims.exp + 3600_000 })}.${tag}`,
        'payload flipped': `${flip(payload, 3)}.${tag}`,
        garbage: '%%%.%%%',
        // Signed with the right key (the derivation is documented in auth.ts) but expired: refused on its expiry.
        'a validly signed but expired session': (() => {
          const p = encode({ op: 'olivia', exp: Date.now() - 1000 });
          const key = createHmac('sha256', 'mcp-tasks operator console session').update('ops-olivia-secret').digest();
          return `${p}.${createHmac('sha256', key).update(p).digest('base64url')}`;
        })(),
      };
      for (const [what, cookieValue] of Object.entries(forged)) {
        const page = await fetch(`${srv.origin}/console/`, { redirect: 'manual', headers: { cookie: `${COOKIE_NAME}=${cookieValue}` } });
        await page.arrayBuffer();
        assert.equal(page.status, 303, what);
        assert.equal(page.headers.get('location'), '/console/login', what);
      }
      // The same derivation with a fresh expiry is accepted: the expired cookie above was refused for its expiry, not its signature.
      const p = encode({ op: 'olivia', exp: Date.now() + 60_000 });
      const key = createHmac('sha256', 'mcp-tasks operator console session').update('ops-olivia-secret').digest();
      const fresh = await fetch(`${srv.origin}/console/`, {
        redirect: 'manual',
        headers: { cookie: `${COOKIE_NAME}=${p}.${createHmac('sha256', key).update(p).digest('base64url')}` },
      });
      await fresh.arrayBuffer();
      assert.equal(fresh.status, 200);
      // The untampered cookie still works.
      assert.equal((await ops.get('/console/')).status, 200);
    });

    it('accepts Authorization: Bearer <operator token> (a script), as that operator', async () => {
      const script = new ConsoleHttp(srv.origin);
      const page = await script.get('/console/', { authorization: 'Bearer ops-oscar-secret' });
      assert.equal(page.status, 200);
      assert.match(page.text, /signed in as <strong>oscar<\/strong>/);
      const wrong = await script.get('/console/', { authorization: 'Bearer ops-oscar-secre' });
      assert.equal(wrong.status, 303, 'a wrong operator token');
      const wrongWithCookie = await ops.get('/console/', { authorization: 'Bearer wrong' });
      assert.equal(wrongWithCookie.status, 303, 'a wrong bearer is not rescued by a valid cookie');
    });

    it('signs out: the cookie is cleared', async () => {
      const session = new ConsoleHttp(srv.origin);
      await session.login('ops-oscar-secret');
      assert.equal((await session.get('/console/')).status, 200);
      const out = await session.post('/console/logout');
      assert.equal(out.status, 303);
      assert.equal(out.location, '/console/login');
      assert.ok(out.setCookie, 'a Set-Cookie clearing the session');
      const cleared = parseSetCookie(out.setCookie);
      assert.equal(cleared.name, COOKIE_NAME);
      assert.equal(cleared.value, '');
      assert.equal(cleared.attributes['max-age'], '0');
      assert.equal(cleared.attributes.path, '/console', 'the same path as the session cookie, so the browser drops it');
      session.cookie = undefined; // what the browser does with Max-Age=0
      const after = await session.get('/console/');
      assert.equal(after.status, 303);
      assert.equal(after.location, '/console/login');
    });
  });

  describe('2. every principal’s tasks', () => {
    it('lists alice’s and bob’s tasks, with their principal', async () => {
      const list = await ops.get('/console/');
      assert.equal(list.status, 200);
      const rows = rowIds(list.text);
      for (const id of Object.values(ids)) assert.ok(rows.includes(id), `row of ${id}`);
      assert.match(rowOf(list.text, ids.bob)!, /<td>bob<\/td>/);
      assert.match(rowOf(list.text, ids.aliceApprove)!, /<td>alice<\/td>/);
      assert.match(rowOf(list.text, ids.bob)!, /data-status="input_required"/);
      assert.match(rowOf(list.text, ids.export)!, /data-status="completed"/);
      const fragment = await ops.get('/console/list');
      assert.equal(fragment.status, 200);
      assert.deepEqual(rowIds(fragment.text).sort(), rows.sort(), 'the live fragment lists the same tasks');
    });

    it('filters by status, tool and principal (- = anonymous)', async () => {
      const waiting = rowIds((await ops.get('/console/?status=input_required')).text);
      assert.ok(waiting.includes(ids.bob) && waiting.includes(ids.aliceApprove));
      assert.ok(!waiting.includes(ids.export), 'a completed task is not input_required');
      for (const id of waiting) assert.equal((await taskOf(id)).status, 'input_required');

      const completed = rowIds((await ops.get('/console/?status=completed')).text);
      assert.ok(completed.includes(ids.export));
      assert.ok(!completed.includes(ids.bob));

      assert.deepEqual(rowIds((await ops.get('/console/?tool=export_payments_report')).text), [ids.export]);
      const invoices = rowIds((await ops.get('/console/?tool=process_invoice')).text);
      assert.ok(invoices.includes(ids.bob) && !invoices.includes(ids.export));

      assert.deepEqual(rowIds((await ops.get('/console/?principal=bob')).text).sort(), [ids.bob, ids.bobModern].sort(), 'both eras');
      const alices = rowIds((await ops.get('/console/?principal=alice')).text);
      assert.ok(alices.includes(ids.aliceApprove) && alices.includes(ids.export) && !alices.includes(ids.bob));
      const anonymous = await ops.get('/console/?principal=-');
      assert.deepEqual(rowIds(anonymous.text), [], 'every MCP client here is authenticated: no anonymous task');
      assert.match(anonymous.text, /No tasks match/);

      assert.deepEqual(rowIds((await ops.get('/console/?principal=bob&status=completed')).text), [], 'filters combine');
      assert.deepEqual(rowIds((await ops.get('/console/list?principal=bob')).text).sort(), [ids.bob, ids.bobModern].sort(), 'the fragment filters too');
      const unknownStatus = await ops.get('/console/?status=bogus');
      assert.equal(unknownStatus.status, 200, 'an unknown status is ignored');
      assert.ok(rowIds(unknownStatus.text).includes(ids.bob));
    });

    it('counts tasks per status (data-count), matching the store and the filtered lists', async () => {
      const page = await ops.get('/console/');
      const counts = countsOf(page.text);
      assert.deepEqual(Object.keys(counts).sort(), ['cancelled', 'completed', 'failed', 'input_required', 'working']);
      const all = await srv.server.store.listAll({ limit: 1000 }, ENGINE_ACCESS);
      const expected: Record<string, number> = { working: 0, input_required: 0, completed: 0, failed: 0, cancelled: 0 };
      for (const t of all.tasks) expected[t.status]!++;
      assert.deepEqual(counts, expected);
      assert.equal(counts.input_required, 4);
      assert.equal(counts.completed, 1);
      for (const status of Object.keys(expected)) {
        const rows = rowIds((await ops.get(`/console/?status=${status}`)).text);
        assert.equal(rows.length, counts[status], `rows listed under ${status}`);
      }
      assert.match(page.text, /data-oldest>oldest question waiting for <strong><time [^>]*data-since>/, 'the oldest waiting question is shown');
    });

    it('while alice, over MCP, still sees only her own tasks', async () => {
      const listed = await alice.request('tasks/list', {});
      const mine = listed.result.tasks.map((t: { taskId: string }) => t.taskId);
      assert.ok(mine.includes(ids.aliceApprove));
      assert.ok(!mine.includes(ids.bob), "bob's task is not in alice's tasks/list");
      const peek = await alice.request('tasks/get', { taskId: ids.bob });
      assert.equal(peek.error?.code, -32602, "alice cannot tasks/get bob's task");
    });
  });

  describe('3. answering a question from the console', () => {
    let key: string;

    it('shows the pending question as a form', async () => {
      const page = await ops.get(`/console/tasks/${ids.aliceApprove}`);
      assert.equal(page.status, 200);
      assertSecurityHeaders(page.headers, 'task page');
      const keys = questionKeys(page.text);
      assert.deepEqual(keys, Object.keys((await taskOf(ids.aliceApprove)).inputRequests));
      key = keys[0]!;
      assert.match(page.text, /<form method="post" action="\/console\/tasks\/[0-9a-f]+\/answer" class="answer"[^>]*>/);
      assert.match(page.text, /name="field\.decision" value="approve"/);
      assert.match(page.text, /name="field\.decision" value="reject"/);
      assert.match(page.text, /name="field\.comment"/);
      assert.match(page.text, /<dt>Principal<\/dt><dd>alice<\/dd>/);
      const panel = await ops.get(`/console/tasks/${ids.aliceApprove}/panel`);
      assert.equal(panel.status, 200);
      assert.deepEqual(questionKeys(panel.text), keys, 'the live panel shows the same question');
    });

    it('without confirm=yes shows a confirmation page and sends nothing', async () => {
      const before = await taskOf(ids.aliceApprove);
      const page = await ops.post(`/console/tasks/${ids.aliceApprove}/answer`, {
        key,
        action: 'accept',
        'field.decision': 'approve',
        'field.comment': 'ok from the console',
      });
      assert.equal(page.status, 200);
      assert.match(page.text, /data-action="confirm-answer"/);
      assert.match(page.text, /<strong data-confirm-action="accept">submit these values<\/strong>/);
      assert.match(page.text, /<dt>decision<\/dt><dd>approve<\/dd>/);
      assert.match(page.text, /<input type="hidden" name="confirm" value="yes">/);
      assert.match(page.text, new RegExp(`<input type="hidden" name="key" value="${key}">`));
      assert.match(page.text, /operator <strong>olivia<\/strong>/);
      const now = await taskOf(ids.aliceApprove);
      assert.equal(now.status, 'input_required');
      assert.deepEqual(Object.keys(now.inputRequests), [key]);
      assert.equal(now.lastUpdatedAt, before.lastUpdatedAt, 'the task was not touched');
      const journal = await journalOf(ids.aliceApprove);
      assert.equal(journal.has(`input:${key}`), false, 'no answer stored');
      assert.equal(journal.has(`answered:${key}`), false);
    });

    it('with confirm=yes answers (303), the task completes with the invoice paid, journaled as answered by the operator', async () => {
      const page = await ops.post(`/console/tasks/${ids.aliceApprove}/answer`, {
        key,
        action: 'accept',
        'field.decision': 'approve',
        'field.comment': 'ok from the console',
        confirm: 'yes',
      });
      assert.equal(page.status, 303);
      assert.equal(page.location, `/console/tasks/${ids.aliceApprove}`);
      const done = await awaitStatus(ids.aliceApprove, 'completed');
      assert.equal(done.outcome?.type, 'result');
      const structured = (done.outcome as unknown as { result: { structuredContent: any } }).result.structuredContent;
      assert.equal(structured.status, 'paid');
      assert.equal(structured.comment, 'ok from the console');
      assert.equal(structured.payments.length, 1);
      const journal = await journalOf(ids.aliceApprove);
      const answered = journal.get(`answered:${key}`) as { by: unknown; at: string } | undefined;
      assert.ok(answered, `answered:${key} in the journal`);
      assert.deepEqual(answered.by, { role: 'operator', name: 'olivia' });
      // What the client sees over MCP: the task is completed, and its result is the paid invoice.
      const viaMcp = await alice.request('tasks/get', { taskId: ids.aliceApprove });
      assert.equal(viaMcp.result.status, 'completed');
      const shown = await ops.get(`/console/tasks/${ids.aliceApprove}`);
      assert.match(shown.text, /by operator olivia/, 'the timeline names the operator');
      assert.deepEqual(questionKeys(shown.text), [], 'no question left');
    });

    it('refuses an answer that does not fit the schema: 422 listing the problem, the task unchanged', async () => {
      const task = await taskOf(ids.aliceBad);
      const [badKey] = Object.keys(task.inputRequests) as [string];
      const page = await ops.post(`/console/tasks/${ids.aliceBad}/answer`, { key: badKey, action: 'accept', 'field.decision': 'maybe', confirm: 'yes' });
      assert.equal(page.status, 422);
      assertSecurityHeaders(page.headers, '422 page');
      const refusal = /<article class="refusal" role="alert">([\s\S]*?)<\/article>/.exec(page.text)?.[1];
      assert.ok(refusal, 'a refusal is shown');
      assert.match(refusal, /<li>[^<]*decision[^<]*<\/li>/, `the problem names the field: ${refusal}`);
      assert.deepEqual(questionKeys(page.text), [badKey], 'the form is shown again');
      const after = await taskOf(ids.aliceBad);
      assert.equal(after.status, 'input_required');
      assert.deepEqual(after.inputRequests, task.inputRequests, 'the same question');
      const journal = await journalOf(ids.aliceBad);
      assert.equal(journal.has(`input:${badKey}`), false);
      assert.equal(journal.has(`answered:${badKey}`), false);

      const unknownAction = await ops.post(`/console/tasks/${ids.aliceBad}/answer`, { key: badKey, action: 'maybe', confirm: 'yes' });
      assert.equal(unknownAction.status, 400, 'an unknown action');
      assert.equal((await taskOf(ids.aliceBad)).status, 'input_required');
    });

    it('answers 409 for a question that is not outstanding', async () => {
      const again = await ops.post(`/console/tasks/${ids.aliceApprove}/answer`, { key, action: 'accept', 'field.decision': 'reject', confirm: 'yes' });
      assert.equal(again.status, 409, 'the question of a completed task');
      assert.match(again.text, /no longer waiting/);
      const unknownKey = await ops.post(`/console/tasks/${ids.aliceBad}/answer`, {
        key: 'no-such-question',
        action: 'accept',
        'field.decision': 'approve',
        confirm: 'yes',
      });
      assert.equal(unknownKey.status, 409, 'an unknown question of a live task');
      const noKey = await ops.post(`/console/tasks/${ids.aliceBad}/answer`, { action: 'accept', 'field.decision': 'approve', confirm: 'yes' });
      assert.equal(noKey.status, 409, 'no key at all');
      assert.equal((await taskOf(ids.aliceBad)).status, 'input_required');
      const completed = await taskOf(ids.aliceApprove);
      assert.equal((completed.outcome as unknown as { result: { structuredContent: any } }).result.structuredContent.status, 'paid', 'the first answer stands');
    });
  });

  describe('3b. a 2026-07-28 task, and two operators answering at once', () => {
    it('takes exactly one of two concurrent confirmed answers; the other gets 409; the client sees the outcome over 2026-07-28', async () => {
      const [key] = Object.keys((await taskOf(ids.bobModern)).inputRequests) as [string];
      const oscar = new ConsoleHttp(srv.origin);
      await oscar.login('ops-oscar-secret');
      const [a, b] = await Promise.all([
        ops.post(`/console/tasks/${ids.bobModern}/answer`, { key, action: 'accept', 'field.decision': 'approve', confirm: 'yes' }),
        oscar.post(`/console/tasks/${ids.bobModern}/answer`, { key, action: 'accept', 'field.decision': 'reject', 'field.comment': 'no', confirm: 'yes' }),
      ]);
      assert.deepEqual([a.status, b.status].sort(), [303, 409], `statuses ${a.status} and ${b.status}`);
      const winner = a.status === 303 ? { name: 'olivia', status: 'paid' } : { name: 'oscar', status: 'rejected' };
      const done = await awaitStatus(ids.bobModern, 'completed');
      assert.equal((done.outcome as unknown as { result: { structuredContent: any } }).result.structuredContent.status, winner.status);
      assert.deepEqual(((await journalOf(ids.bobModern)).get(`answered:${key}`) as { by: unknown }).by, { role: 'operator', name: winner.name });
      const seen = await bobModern().request('tasks/get', { taskId: ids.bobModern }, asBob);
      assert.equal(seen.result?.status, 'completed', `bob over 2026-07-28: ${JSON.stringify(seen)}`);
    });
  });

  describe('4. cancelling from the console', () => {
    it('without confirm=yes: 400, the task unchanged', async () => {
      const page = await ops.post(`/console/tasks/${ids.aliceBad}/cancel`, {});
      assert.equal(page.status, 400);
      assert.match(page.text, /needs a confirmation/);
      const wrong = await ops.post(`/console/tasks/${ids.aliceBad}/cancel`, { confirm: 'true' });
      assert.equal(wrong.status, 400, 'confirm must be exactly yes');
      assert.equal((await taskOf(ids.aliceBad)).status, 'input_required');
      assert.equal((await journalOf(ids.aliceBad)).has('cancelled'), false);
    });

    it('with confirm=yes: 303, the task cancelled, journaled as cancelled by the operator; again: 409', async () => {
      const page = await ops.post(`/console/tasks/${ids.aliceBad}/cancel`, { confirm: 'yes' });
      assert.equal(page.status, 303);
      assert.equal(page.location, `/console/tasks/${ids.aliceBad}`);
      assert.equal((await taskOf(ids.aliceBad)).status, 'cancelled');
      const entry = (await journalOf(ids.aliceBad)).get('cancelled') as { by: unknown } | undefined;
      assert.ok(entry, 'a cancelled journal entry');
      assert.deepEqual(entry.by, { role: 'operator', name: 'olivia' });
      assert.equal((await alice.request('tasks/get', { taskId: ids.aliceBad })).result.status, 'cancelled', 'alice sees it cancelled');
      const shown = await ops.get(`/console/tasks/${ids.aliceBad}`);
      assert.match(shown.text, /cancel requested[\s\S]*by operator olivia/);
      assert.doesNotMatch(shown.text, /data-action="confirm-cancel"/, 'no cancel button on an ended task');

      const again = await ops.post(`/console/tasks/${ids.aliceBad}/cancel`, { confirm: 'yes' });
      assert.equal(again.status, 409);
      assert.match(again.text, /already ended/);
      const completed = await ops.post(`/console/tasks/${ids.aliceApprove}/cancel`, { confirm: 'yes' });
      assert.equal(completed.status, 409, 'a completed task cannot be cancelled');
      assert.equal((await taskOf(ids.aliceApprove)).status, 'completed');
    });
  });

  describe('5. CSRF', () => {
    it('refuses a cross-origin POST carrying a valid session cookie (403), changing nothing', async () => {
      const before = await taskOf(ids.bob);
      const [key] = Object.keys(before.inputRequests) as [string];
      const answer = { key, action: 'accept', 'field.decision': 'approve', confirm: 'yes' };
      const attempts: [string, string, Record<string, string>][] = [
        ['answer, Origin evil', `/console/tasks/${ids.bob}/answer`, { origin: 'http://evil.example' }],
        ['cancel, Origin evil', `/console/tasks/${ids.bob}/cancel`, { origin: 'http://evil.example' }],
        ['answer, Sec-Fetch-Site cross-site', `/console/tasks/${ids.bob}/answer`, { 'sec-fetch-site': 'cross-site' }],
        ['cancel, Sec-Fetch-Site cross-site', `/console/tasks/${ids.bob}/cancel`, { 'sec-fetch-site': 'cross-site' }],
        ['cancel, Origin null (sandboxed frame)', `/console/tasks/${ids.bob}/cancel`, { origin: 'null' }],
        ['cancel, same host other port', `/console/tasks/${ids.bob}/cancel`, { origin: `http://127.0.0.1:1` }],
        ['cancel, Origin of a look-alike host', `/console/tasks/${ids.bob}/cancel`, { origin: `http://127.0.0.1.evil.example:${new URL(srv.origin).port}` }],
      ];
      for (const [what, path, headers] of attempts) {
        const page = await ops.post(path, answer, headers);
        assert.equal(page.status, 403, what);
        assertSecurityHeaders(page.headers, what);
      }
      // Neither Origin nor Referer (the cookie alone): refused, only a bearer script may omit them.
      const bare = await fetch(`${srv.origin}/console/tasks/${ids.bob}/cancel`, {
        method: 'POST',
        redirect: 'manual',
        headers: { cookie: ops.cookie!, 'content-type': 'application/x-www-form-urlencoded' },
        body: 'confirm=yes',
      });
      await bare.arrayBuffer();
      assert.equal(bare.status, 403, 'no Origin, no Referer, cookie only');
      const referer = await ops.post(`/console/tasks/${ids.bob}/cancel`, { confirm: 'yes' }, { origin: '', referer: 'http://evil.example/page' });
      assert.equal(referer.status, 403, 'a foreign Referer without Origin');
      const bearerEvil = await ops.post(
        `/console/tasks/${ids.bob}/cancel`,
        { confirm: 'yes' },
        { authorization: 'Bearer ops-olivia-secret', origin: 'http://evil.example' },
      );
      assert.equal(bearerEvil.status, 403, 'a bearer does not excuse a foreign Origin');

      const after = await taskOf(ids.bob);
      assert.equal(after.status, 'input_required');
      assert.deepEqual(after.inputRequests, before.inputRequests);
      assert.equal(after.lastUpdatedAt, before.lastUpdatedAt);
      const journal = await journalOf(ids.bob);
      assert.equal(journal.has('cancelled'), false);
      assert.equal(journal.has(`answered:${key}`), false);
    });

    it('refuses a cross-origin sign-in, and lets a bearer script (no Origin) through to the confirmation page', async () => {
      const visitor = new ConsoleHttp(srv.origin);
      const login = await visitor.post('/console/login', { token: 'ops-olivia-secret' }, { origin: 'http://evil.example' });
      assert.equal(login.status, 403);
      assert.equal(login.setCookie, undefined);
      const [key] = Object.keys((await taskOf(ids.bob)).inputRequests) as [string];
      const script = await fetch(`${srv.origin}/console/tasks/${ids.bob}/answer`, {
        method: 'POST',
        redirect: 'manual',
        headers: { authorization: 'Bearer ops-oscar-secret', 'content-type': 'application/x-www-form-urlencoded' },
        body: new URLSearchParams({ key, action: 'accept', 'field.decision': 'approve' }).toString(),
      });
      assert.equal(script.status, 200);
      assert.match(await script.text(), /operator <strong>oscar<\/strong>/);
      assert.equal((await taskOf(ids.bob)).status, 'input_required', 'unconfirmed: nothing sent');
    });
  });

  describe('6. hostile task data', () => {
    const SCRIPT = '<script>alert(1)</script>';
    const IMG = '"><img src=x onerror=alert(1)>';
    let hostile: string;

    before(async () => {
      hostile = await submitInvoice(
        alice,
        smallInvoice(`${SCRIPT}${invoiceSeq++}`, {
          lines: [
            { lineId: '1', description: SCRIPT, amount: 1 },
            { lineId: `2${IMG}`, description: IMG, amount: 2 },
          ],
        }),
      );
      await awaitStatus(hostile, 'input_required');
    });

    const assertInert = (page: string, what: string) => {
      assert.doesNotMatch(page, /<script>alert/i, `${what}: a raw <script>`);
      assert.doesNotMatch(page, /<img src=x/i, `${what}: a raw <img>`);
      assert.doesNotMatch(page, /<\/textarea><script/i, `${what}: a textarea break-out`);
      assert.doesNotMatch(page, /"><img/, `${what}: an attribute break-out`);
    };

    it('escapes invoice data on the task page, the list and the confirmation page', async () => {
      const page = await ops.get(`/console/tasks/${hostile}`);
      assert.equal(page.status, 200);
      assertInert(page.text, 'task page');
      assert.ok(page.text.includes('&#60;script&#62;alert(1)&#60;/script&#62;'), 'the text is shown, escaped');
      assert.ok(page.text.includes('&#60;img src=x onerror=alert(1)&#62;'), 'the img text is shown, escaped');
      assertSecurityHeaders(page.headers, 'hostile task page');

      const list = await ops.get('/console/');
      assert.ok(rowIds(list.text).includes(hostile));
      assertInert(list.text, 'list');

      const [key] = Object.keys((await taskOf(hostile)).inputRequests) as [string];
      const confirm = await ops.post(`/console/tasks/${hostile}/answer`, {
        key,
        action: 'accept',
        'field.decision': 'reject',
        'field.comment': `</textarea>${SCRIPT}${IMG}`,
        [`field.${IMG}`]: SCRIPT,
      });
      assert.equal(confirm.status, 200);
      assertInert(confirm.text, 'confirmation page');

      const refused = await ops.post(`/console/tasks/${hostile}/answer`, {
        key,
        action: 'accept',
        'field.decision': SCRIPT,
        'field.comment': `</textarea>${SCRIPT}`,
        confirm: 'yes',
      });
      assert.equal(refused.status, 422);
      assertInert(refused.text, '422 page with the refused values kept');

      const done = await ops.post(`/console/tasks/${hostile}/answer`, {
        key,
        action: 'accept',
        'field.decision': 'reject',
        'field.comment': `</textarea>${SCRIPT}${IMG}`,
        confirm: 'yes',
      });
      assert.equal(done.status, 303);
      await awaitStatus(hostile, 'completed');
      const result = await ops.get(`/console/tasks/${hostile}`);
      assert.match(result.text, /class="result-text"/, 'the result is shown');
      assertInert(result.text, 'task page with the result');
    });

    it('escapes filter values reflected from the query string', async () => {
      for (const query of [
        `?principal=${encodeURIComponent(IMG + SCRIPT)}`,
        `?tool=${encodeURIComponent(SCRIPT)}&status=${encodeURIComponent(IMG)}`,
        `?from=${encodeURIComponent(SCRIPT)}`,
        `?to=${encodeURIComponent(IMG)}`,
      ]) {
        for (const path of ['/console/', '/console/list']) {
          const page = await ops.get(path + query);
          assert.equal(page.status, 200, path + query);
          assertInert(page.text, path + query);
        }
      }
    });
  });

  describe('7. unknown and junk task ids', () => {
    it('answers 404 for an unknown id and for junk, and keeps serving', async () => {
      const unknown = await ops.get('/console/tasks/0123456789abcdef0123456789abcdef');
      assert.equal(unknown.status, 404);
      assert.match(unknown.text, /No such task/);
      assertSecurityHeaders(unknown.headers, '404 page');
      assert.equal((await ops.get('/console/tasks/0123456789abcdef0123456789abcdef/panel')).status, 404);
      for (const junk of [
        '/console/tasks/..%2F..',
        '/console/tasks/..%2F..%2Fpackage.json',
        '/console/tasks/%00',
        '/console/tasks/a%20b',
        '/console/tasks/%3Cscript%3E',
        `/console/tasks/${'a'.repeat(129)}`,
        `/console/tasks/${ids.bob}/panel/x`,
        `/console/tasks/${ids.bob}/nope`,
        '/console/tasks/',
        '/console/nope',
        '/console/assets/..%2F..%2Fpackage.json',
        '/console/assets/nope.js',
      ]) {
        const page = await ops.get(junk);
        assert.equal(page.status, 404, junk);
        assert.doesNotMatch(page.text, /<script>/i);
      }
      for (const [path, fields] of [
        ['/console/tasks/0123456789abcdef0123456789abcdef/answer', { key: 'elicit-1', action: 'accept', confirm: 'yes' }],
        ['/console/tasks/0123456789abcdef0123456789abcdef/cancel', { confirm: 'yes' }],
        ['/console/tasks/..%2F../cancel', { confirm: 'yes' }],
      ] as const) {
        const page = await ops.post(path, fields);
        assert.equal(page.status, 404, `POST ${path}`);
      }
      const getAnswer = await ops.get(`/console/tasks/${ids.bob}/answer`);
      assert.equal(getAnswer.status, 405, 'GET of an action');
      assert.equal((await taskOf(ids.bob)).status, 'input_required');
      assert.equal((await ops.get('/console/')).status, 200, 'still up');
      const root = await fetch(`${srv.origin}/`, { redirect: 'manual' });
      await root.arrayBuffer();
      assert.equal(root.status, 303);
      assert.equal(root.headers.get('location'), '/console/');
    });

    it('answers a junk list cursor with a notice, not a server error', async () => {
      for (const path of ['/console/?cursor=garbage', `/console/list?cursor=${encodeURIComponent('"><img src=x onerror=alert(1)>')}`]) {
        const page = await ops.get(path);
        assert.equal(page.status, 200, path);
        assert.match(page.text, /role="alert"/, `${path}: the refused cursor is named`);
        assert.doesNotMatch(page.text, /<img src=x/);
      }
    });

    it('answers 413 for an oversized form, and keeps serving', async () => {
      const body = new URLSearchParams({ key: 'elicit-1', action: 'accept', 'field.comment': 'x'.repeat(200 * 1024), confirm: 'yes' }).toString();
      const page = await rawHttp(srv.origin, {
        method: 'POST',
        path: `/console/tasks/${ids.bob}/answer`,
        headers: {
          cookie: ops.cookie!,
          origin: srv.origin,
          'content-type': 'application/x-www-form-urlencoded',
          'content-length': String(Buffer.byteLength(body)),
        },
        body,
      });
      assert.equal(page.status, 413);
      assert.equal((await taskOf(ids.bob)).status, 'input_required');
      assert.equal((await ops.get('/console/')).status, 200, 'still up');
    });

    it('answers the next request on a keep-alive connection after a 413', async () => {
      const port = Number(new URL(srv.origin).port);
      const body = `key=elicit-1&field.comment=${'x'.repeat(200 * 1024)}`;
      const socket = connect(port, '127.0.0.1');
      let received = '';
      let closed = false;
      socket.on('data', (chunk: Buffer) => void (received += chunk.toString('latin1')));
      socket.on('close', () => void (closed = true));
      socket.on('error', () => undefined);
      try {
        socket.write(
          `POST /console/tasks/${ids.bob}/answer HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\nOrigin: ${srv.origin}\r\nCookie: ${ops.cookie}\r\n` +
            `Content-Type: application/x-www-form-urlencoded\r\nContent-Length: ${body.length}\r\n\r\n${body}`,
        );
        await until(() => closed || /\r\n\r\n/.test(received), { what: 'the 413' });
        assert.match(received, /^HTTP\/1\.1 413/);
        const keepAlive = /\r\nconnection: keep-alive\r\n/i.test(received);
        if (!keepAlive) return; // the server closes the connection: nothing more to ask on it
        socket.write(`GET /console/ HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\nCookie: ${ops.cookie}\r\n\r\n`);
        await until(() => closed || (received.match(/HTTP\/1\.1 \d{3}/g) ?? []).length >= 2, {
          timeoutMs: 20_000,
          what: 'a second response or the connection to close',
        });
        assert.equal(
          (received.match(/HTTP\/1\.1 \d{3}/g) ?? []).length,
          2,
          `a response to the second request; the connection closed (${closed}) after:\n${received.slice(0, 300)}`,
        );
      } finally {
        socket.destroy();
      }
    });
  });

  describe('8. live updates (server-sent events)', () => {
    it('refuses the event stream without credentials', async () => {
      const page = await new ConsoleHttp(srv.origin).get('/console/events');
      assert.notEqual(page.status, 200);
      assert.doesNotMatch(page.headers.get('content-type') ?? '', /event-stream/);
    });

    it('pushes `tasks` and `task-<id>` events when a task is created', async () => {
      const controller = new AbortController();
      const response = await fetch(`${srv.origin}/console/events`, { headers: { cookie: ops.cookie! }, signal: controller.signal });
      try {
        assert.equal(response.status, 200);
        assert.match(response.headers.get('content-type') ?? '', /^text\/event-stream/);
        const reader = response.body!.getReader();
        const decoder = new TextDecoder();
        let received = '';
        const reading = (async () => {
          for (;;) {
            const { value, done } = await reader.read();
            if (done) return;
            received += decoder.decode(value, { stream: true });
          }
        })().catch(() => undefined);
        await until(() => received.includes(': connected'), { timeoutMs: 10_000, what: 'the stream to open' });
        const created = await submitInvoice(bob, smallInvoice(nextInvoiceId()));
        await until(() => received.includes('event: tasks\n') && received.includes(`event: task-${created}\n`), {
          timeoutMs: 15_000,
          what: () => `events for ${created}; received ${JSON.stringify(received)}`,
        });
        assert.match(received, /event: tasks\ndata: \d+\n\n/);
        assert.match(received, new RegExp(`event: task-${created}\\ndata: (working|input_required)\\n\\n`));
        controller.abort();
        await reading;
        await awaitStatus(created, 'input_required');
      } finally {
        controller.abort();
      }
    });
  });

  describe('10. assets', () => {
    it('serves htmx, its SSE extension, Pico CSS and the console CSS locally with their content types', async () => {
      const expected: Record<string, RegExp> = {
        'htmx.min.js': /^text\/javascript/,
        'sse.js': /^text\/javascript/,
        'pico.min.css': /^text\/css/,
        'console.css': /^text\/css/,
      };
      for (const [name, type] of Object.entries(expected)) {
        const page = await new ConsoleHttp(srv.origin).get(`/console/assets/${name}`); // no credentials needed
        assert.equal(page.status, 200, name);
        assert.match(page.headers.get('content-type') ?? '', type, name);
        assert.ok(page.text.length > 100, `${name} has content`);
      }
      assert.match((await ops.get('/console/assets/htmx.min.js')).text, /htmx/);
    });

    it('no page loads anything from another host (no CDN)', async () => {
      const [key] = Object.keys((await taskOf(ids.bob)).inputRequests) as [string];
      const pages: [string, string][] = [
        ['login', (await new ConsoleHttp(srv.origin).get('/console/login')).text],
        ['list', (await ops.get('/console/')).text],
        ['task', (await ops.get(`/console/tasks/${ids.bob}`)).text],
        ['completed task', (await ops.get(`/console/tasks/${ids.aliceApprove}`)).text],
        ['confirmation', (await ops.post(`/console/tasks/${ids.bob}/answer`, { key, action: 'accept', 'field.decision': 'approve' })).text],
        ['404', (await ops.get('/console/tasks/0123456789abcdef0123456789abcdef')).text],
      ];
      for (const [what, html] of pages) {
        assert.match(html, /<link rel="stylesheet" href="\/console\/assets\/pico\.min\.css">/, `${what} uses the local Pico CSS`);
        assertNoRemoteAssets(html, what);
      }
      assert.match(pages[1]![1], /<script src="\/console\/assets\/htmx\.min\.js"><\/script>/);
      assert.match(pages[1]![1], /<script src="\/console\/assets\/sse\.js"><\/script>/);
      assert.match(pages[1]![1], /sse-connect="\/console\/events"/);
    });
  });
});

describe('9. operator console without operator tokens', () => {
  let srv: ConsoleInvoiceServer;
  let local: ConsoleHttp;

  before(async () => {
    srv = await startConsoleInvoiceServer({});
    local = new ConsoleHttp(srv.origin);
  });
  after(async () => {
    await srv?.close();
  });

  it('serves loopback peers as operator `local`, with no sign-in', async () => {
    const list = await local.get('/console/');
    assert.equal(list.status, 200);
    assert.match(list.text, /signed in as <strong>local<\/strong>/);
    assert.doesNotMatch(list.text, /Sign out/, 'nothing to sign out of');
    const login = await local.get('/console/login');
    assert.equal(login.status, 303);
    assert.equal(login.location, '/console/');
  });

  it('lists anonymous MCP tasks under principal "-", and journals answers as operator local', async () => {
    const client = new RawMcpClient(srv.url);
    await client.initialize();
    const taskId = await submitInvoice(client, smallInvoice(nextInvoiceId()));
    await until(async () => (await srv.server.runtime.get(taskId, ENGINE_ACCESS)).status === 'input_required', { timeoutMs: 20_000, what: 'the question' });
    const anonymous = await local.get('/console/?principal=-');
    assert.deepEqual(rowIds(anonymous.text), [taskId]);
    assert.match(rowOf(anonymous.text, taskId)!, /<em>anonymous<\/em>/);
    assert.deepEqual(rowIds((await local.get('/console/?principal=alice')).text), []);

    const [key] = Object.keys((await srv.server.runtime.get(taskId, ENGINE_ACCESS)).inputRequests) as [string];
    const crossSite = await local.post(`/console/tasks/${taskId}/cancel`, { confirm: 'yes' }, { origin: 'http://evil.example' });
    assert.equal(crossSite.status, 403, 'a web page the operator visits cannot act on the loopback console');
    const noOrigin = await fetch(`${srv.origin}/console/tasks/${taskId}/cancel`, {
      method: 'POST',
      redirect: 'manual',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: 'confirm=yes',
    });
    await noOrigin.arrayBuffer();
    assert.equal(noOrigin.status, 403, 'nor a POST without Origin');
    assert.equal((await srv.server.runtime.get(taskId, ENGINE_ACCESS)).status, 'input_required');

    const answered = await local.post(`/console/tasks/${taskId}/answer`, { key, action: 'decline', confirm: 'yes' });
    assert.equal(answered.status, 303);
    await until(async () => (await srv.server.runtime.get(taskId, ENGINE_ACCESS)).status === 'completed', { timeoutMs: 20_000, what: 'the task to end' });
    const entry = (await srv.server.store.readJournal(taskId)).get(`answered:${key}`) as { by: unknown } | undefined;
    assert.deepEqual(entry?.by, { role: 'operator', name: 'local' });
  });

  it('refuses a Host other than localhost (DNS rebinding) on a loopback-bound console', async () => {
    const port = new URL(srv.origin).port;
    for (const host of ['evil.example', `evil.example:${port}`]) {
      const rebinding = await rawHttp(srv.origin, { path: '/console/', headers: { host } });
      assert.equal(rebinding.status, 403, host);
      assert.doesNotMatch(rebinding.text, /signed in/);
    }
    assert.equal((await rawHttp(srv.origin, { path: '/console/', headers: { host: `localhost:${port}` } })).status, 200, 'localhost is fine');
  });

  const external = Object.values(networkInterfaces())
    .flat()
    .find((i) => i && i.family === 'IPv4' && !i.internal)?.address;
  it('refuses a peer that is not on loopback (403)', { skip: !external && 'no non-loopback IPv4 interface' }, async () => {
    const wide = await startConsoleInvoiceServer({ host: '0.0.0.0' });
    try {
      const port = new URL(wide.url).port;
      const fromOutside = await fetch(`http://${external}:${port}/console/`, { redirect: 'manual' });
      const text = await fromOutside.text();
      assert.equal(fromOutside.status, 403);
      assert.match(text, /loopback/);
      const task = await fetch(`http://${external}:${port}/console/tasks/0123456789abcdef0123456789abcdef/cancel`, {
        method: 'POST',
        headers: { origin: `http://${external}:${port}`, 'content-type': 'application/x-www-form-urlencoded' },
        body: 'confirm=yes',
      });
      await task.arrayBuffer();
      assert.equal(task.status, 403);
      const fromLoopback = await fetch(`http://127.0.0.1:${port}/console/`, { redirect: 'manual' });
      await fromLoopback.arrayBuffer();
      assert.equal(fromLoopback.status, 200, 'the same server still serves loopback');
    } finally {
      await wide.close();
    }
  });

  it('refuses to serve the console beside authenticated MCP clients without operator tokens', async () => {
    await assert.rejects(
      startInvoiceServer({ store: 'memory:', port: 0, console: true, tokens: CLIENT_TOKENS, logger: silentLogger, policy: { pollIntervalMs: 50 } }),
      /operatorTokens/,
    );
    for (const console of [true, {}, { operatorTokens: {} }]) {
      const server = createTaskServer({ store: 'memory:', console, logger: silentLogger });
      try {
        await assert.rejects(server.listen({ port: 0, auth: { verifier: staticTokenVerifier(CLIENT_TOKENS) } }), /operatorTokens/, JSON.stringify(console));
      } finally {
        await server.close();
      }
    }
    // With operator tokens it starts.
    const ok = await startInvoiceServer({
      store: 'memory:',
      port: 0,
      console: true,
      tokens: CLIENT_TOKENS,
      operatorTokens: OPERATOR_TOKENS,
      logger: silentLogger,
      policy: { pollIntervalMs: 50 },
    });
    try {
      assert.ok(ok.consoleUrl);
      const page = await fetch(ok.consoleUrl, { redirect: 'manual' });
      await page.arrayBuffer();
      assert.equal(page.status, 303, 'and asks for a sign-in');
    } finally {
      await ok.close();
    }
  });
});

/** A question the tools below ask, as a form of one required choice. */
const GO_AHEAD = { type: 'object', properties: { decision: { type: 'string', title: 'Decision', enum: ['yes', 'no'] } }, required: ['decision'] };

/**
 * A task server with the console (no tokens: loopback, operator `local`) over `store`, its store on
 * the clock `now`, and four task tools: `fine` succeeds, `broken` fails validation (it throws, so
 * the task ends with a tool error: `failed` over 2025-11-25, `completed` with `isError` over
 * 2026-07-28), `ask` asks GO_AHEAD and then answers, `later` runs a 2 s step (on `advance`, the
 * test's clock), asks GO_AHEAD, runs a 3 s step and, when told `payOn`, waits for that date.
 */
async function startToolServer(store: string, now: () => number, advance: (ms: number) => void) {
  const server = createTaskServer({
    store,
    storeOptions: { now, policy: { pollIntervalMs: 50, defaultTtlMs: 30 * 86_400_000, maxTtlMs: 30 * 86_400_000 } },
    logger: silentLogger,
    console: true,
  });
  const tool = (description: string) => ({ description, inputSchema: z.object({ payOn: z.string().optional() }), taskSupport: 'optional' as const });
  server.tasks.registerTool('fine', tool('succeeds'), async () => ({ content: [{ type: 'text', text: 'all good' }] }));
  server.tasks.registerTool('broken', tool('fails validation'), async () => {
    throw new Error('Invoice INV-9 failed validation: vendor V-1004 is not active');
  });
  server.tasks.registerTool('ask', tool('asks first'), async (_args, ctx) => {
    const answer = await ctx.elicit('Go ahead?', GO_AHEAD);
    return { content: [{ type: 'text', text: `decided ${answer.action}` }] };
  });
  server.tasks.registerTool('later', tool('checks, asks, books, then waits'), async ({ payOn }, ctx) => {
    await ctx.step('check', () => {
      advance(2000);
      return { ok: true };
    });
    const answer = await ctx.elicit('Book it?', GO_AHEAD);
    await ctx.step('book', () => {
      advance(3000);
      return { booked: answer.content?.decision === 'yes' };
    });
    if (payOn) await ctx.sleepUntil(payOn, `waiting until ${payOn} to pay`);
    return { content: [{ type: 'text', text: 'booked' }] };
  });
  const http = await server.listen({ port: 0 });
  const origin = new URL(http.url).origin;
  return { server, url: http.url, origin, console: new ConsoleHttp(origin), close: () => server.close() };
}

const HOUR = 3_600_000;
const DAY = 24 * HOUR;
const run24 = `${process.pid}_${Date.now() % 100_000}`;
const storesDir = mkdtempSync(join(tmpdir(), 'mcp-tasks-console-stores-'));
const pgSchemas24: string[] = [];
const redisPrefixes24: string[] = [];
after(async () => {
  rmSync(storesDir, { recursive: true, force: true });
  if (pgSchemas24.length > 0) await dropSchemas(...pgSchemas24);
  if (redisPrefixes24.length > 0) {
    const redis = new Redis(REDIS_URL);
    for (const prefix of redisPrefixes24) {
      const keys = await redis.keys(`${prefix}:*`);
      if (keys.length > 0) await redis.del(...keys);
    }
    await redis.quit();
  }
});
const STORES: { name: string; url: () => string; restarts: boolean }[] = [
  { name: 'memory', url: () => 'memory:', restarts: false },
  { name: 'sqlite', url: () => `sqlite:${join(storesDir, `tasks-${pgSchemas24.length + redisPrefixes24.length}-${Math.random()}.db`)}`, restarts: true },
  {
    name: 'postgres',
    url: () => {
      pgSchemas24.push(`mcpt_console_${run24}_${pgSchemas24.length}`);
      return withParam(PG_URL, 'schema', pgSchemas24.at(-1)!);
    },
    restarts: true,
  },
  {
    name: 'redis',
    url: () => {
      redisPrefixes24.push(`mcpt-console-${run24}-${redisPrefixes24.length}`);
      return withParam(REDIS_URL, 'prefix', redisPrefixes24.at(-1)!);
    },
    restarts: true,
  },
];

for (const kind of STORES) {
  describe(`11. tool errors and waiting questions as an operator reads them (${kind.name} store)`, () => {
    // The store's clock starts 3 h in the past, so a question asked then has waited 3 h by the real clock the pages are rendered with.
    let clock = Date.now() - 3 * HOUR;
    const url = kind.url();
    let srv: Awaited<ReturnType<typeof startToolServer>>;
    const ids = { fine: '', broken2025: '', broken2026: '', ask: '' };
    const taskOf = (taskId: string) => srv.server.runtime.get(taskId, ENGINE_ACCESS);
    const settled = (taskId: string, status: string) =>
      until(async () => (await taskOf(taskId)).status === status, { timeoutMs: 20_000, what: `task ${taskId} to be ${status}` });

    before(async () => {
      srv = await startToolServer(
        url,
        () => clock,
        (ms) => void (clock += ms),
      );
      const legacy = new RawMcpClient(srv.url);
      await legacy.initialize();
      const call = async (name: string) => {
        const res = await legacy.request('tools/call', { name, arguments: {}, task: {} });
        assert.ok(res.result?.task?.taskId, `a 2025-11-25 task: ${JSON.stringify(res)}`);
        return res.result.task.taskId as string;
      };
      ids.fine = await call('fine');
      ids.broken2025 = await call('broken');
      ids.ask = await call('ask');
      const modern = await new ModernRawClient(srv.url).request('tools/call', { name: 'broken', arguments: {} });
      assert.equal(modern.result?.resultType, 'task', `a 2026-07-28 task: ${JSON.stringify(modern)}`);
      ids.broken2026 = modern.result.taskId;
      await Promise.all([
        settled(ids.fine, 'completed'),
        settled(ids.broken2025, 'failed'),
        settled(ids.broken2026, 'completed'),
        settled(ids.ask, 'input_required'),
      ]);
    });
    after(async () => {
      await srv?.close();
    });

    it('counts a tool error or failed validation as failed, in either era: the counts, the status filters and the badges agree', async () => {
      assert.equal((await taskOf(ids.broken2026)).status, 'completed', 'over 2026-07-28 the task itself is completed, with an isError result');
      const list = await srv.console.get('/console/');
      assert.deepEqual(countsOf(list.text), { working: 0, input_required: 1, completed: 1, failed: 2, cancelled: 0 });
      for (const id of [ids.broken2025, ids.broken2026]) {
        const row = rowOf(list.text, id)!;
        assert.match(row, /class="badge s-failed" data-status="failed" data-tool-error[^>]*>failed · tool error</, `the row of ${id}`);
        assert.match(row, /failed validation: vendor V-1004 is not active/, 'the row says why');
      }
      assert.match(rowOf(list.text, ids.broken2026)!, /title="The tool returned an error; clients see this task as completed with an error result\."/);
      assert.match(rowOf(list.text, ids.fine)!, /data-status="completed"/);
      assert.deepEqual(
        rowIds((await srv.console.get('/console/?status=failed')).text).sort(),
        [ids.broken2025, ids.broken2026].sort(),
        'the failed count’s list',
      );
      assert.deepEqual(rowIds((await srv.console.get('/console/?status=completed')).text), [ids.fine], 'the completed count’s list');
      assert.deepEqual(
        rowIds((await srv.console.get('/console/list?status=failed')).text).sort(),
        [ids.broken2025, ids.broken2026].sort(),
        'the live fragment',
      );
      const counted = countsOf(list.text);
      for (const status of STATUSES) assert.equal(rowIds((await srv.console.get(`/console/?status=${status}`)).text).length, counted[status], status);

      const page = await srv.console.get(`/console/tasks/${ids.broken2026}`);
      assert.match(page.text, /<h1>broken <span class="badge s-failed" data-status="failed" data-tool-error/);
      assert.match(page.text, /<dd data-outcome>the tool returned an error <small>\(clients see the task as completed, with an error result\)<\/small><\/dd>/);
      const ended = timelineBars(page.text).at(-1)!;
      assert.equal(ended.label, 'failed');
      assert.equal(ended.state, 'failed');
      assert.match(ended.text, /the tool returned an error: Invoice INV-9 failed validation/);
    });

    it(
      kind.restarts
        ? 'says how long the oldest question has waited since it was asked, before and after a restart'
        : 'says how long the oldest question has waited since it was asked',
      async () => {
        const [key] = Object.keys((await taskOf(ids.ask)).inputRequests) as [string];
        const asked = ((await srv.server.store.readJournal(ids.ask)).get(`asked:${key}`) as { at: string }).at;
        const oldest = (text: string) =>
          /data-oldest>oldest question waiting for <strong><time datetime="([^"]+)"[^>]*data-since>([^<]+)<\/time>/.exec(text)?.slice(1);
        assert.deepEqual(oldest((await srv.console.get('/console/')).text), [asked, '3 h']);
        if (!kind.restarts) return;
        await srv.close();
        clock = Date.now(); // the restart happens now, 3 h after the question was asked
        srv = await startToolServer(
          url,
          () => clock,
          (ms) => void (clock += ms),
        );
        // Recovery runs the tool again and it asks again: the record's lastUpdatedAt moves to now.
        const reasked = await until(
          async () => {
            const task = await taskOf(ids.ask);
            return task.status === 'input_required' && Date.parse(task.lastUpdatedAt) >= clock ? task : undefined;
          },
          { timeoutMs: 20_000, what: 'the question asked again after the restart' },
        );
        assert.ok(reasked.lastUpdatedAt > asked);
        const list = await srv.console.get('/console/');
        assert.deepEqual(oldest(list.text), [asked, '3 h'], 'still since the first ask, not since the restart');
        const page = await srv.console.get(`/console/tasks/${ids.ask}`);
        assert.match(page.text, new RegExp(`<header>Question · waiting for <time datetime="${asked}"[^>]*data-since>3 h</time>`), 'the task page agrees');
      },
    );
  });
}

describe('12. a task page as an operator reads it: its timeline, its questions and answers, how long it is kept', () => {
  let clock = Date.now() - 6 * DAY;
  let srv: Awaited<ReturnType<typeof startToolServer>>;
  const taskOf = (taskId: string) => srv.server.runtime.get(taskId, ENGINE_ACCESS);
  const settled = (taskId: string, done: (task: TaskRecord) => boolean, what: string) =>
    until(async () => done(await taskOf(taskId)), { timeoutMs: 20_000, what: `task ${taskId}: ${what}` });
  /** Starts `tool` over 2025-11-25 (as the anonymous principal) and returns its task id once it asks. */
  const started = async (tool: string, args: Record<string, unknown> = {}) => {
    const client = new RawMcpClient(srv.url);
    await client.initialize();
    const res = await client.request('tools/call', { name: tool, arguments: args, task: {} });
    const taskId = res.result.task.taskId as string;
    await settled(taskId, (t) => t.status === 'input_required', 'asks');
    return taskId;
  };
  /** Answers the task's one question from the console, confirmed. */
  const answer = async (taskId: string, fields: Record<string, string>) => {
    const [key] = Object.keys((await taskOf(taskId)).inputRequests) as [string];
    const sent = await srv.console.post(`/console/tasks/${taskId}/answer`, { key, ...fields, confirm: 'yes' });
    assert.equal(sent.status, 303, sent.text);
  };

  before(async () => {
    srv = await startToolServer(
      'memory:',
      () => clock,
      (ms) => void (clock += ms),
    );
  });
  after(async () => {
    await srv?.close();
  });

  it('draws a question answered 5 days later as a labelled break, so the steps around it keep their width', async () => {
    const taskId = await started('later');
    clock += 5 * DAY;
    await answer(taskId, { action: 'accept', 'field.decision': 'yes' });
    await settled(taskId, (t) => t.status === 'completed', 'completes');
    const page = await srv.console.get(`/console/tasks/${taskId}`);
    assert.deepEqual(axisBreaks(page.text), ['5 days'], 'one break, saying how long nothing happened');
    const bars = timelineBars(page.text);
    const [check, question, book, ended] = ['step check', 'question elicit-1', 'step book', 'completed'].map((label) => {
      const bar = bars.find((b) => b.label === label);
      assert.ok(bar, `a row ${label} in ${JSON.stringify(bars)}`);
      return bar;
    }) as [TimelineBar, TimelineBar, TimelineBar, TimelineBar];
    assert.ok(check.width >= 20 && book.width >= 20, `the 2 s and 3 s steps are no slivers beside 5 days: ${check.width}%, ${book.width}%`);
    assert.ok(check.left + check.width <= question.left + 0.01 && question.left + question.width <= book.left + 0.01, 'in order, without overlap');
    assert.ok(question.width <= 10, 'the 5-day wait is drawn narrow');
    assert.equal(ended.left, 100, 'the axis ends where the task ended');
    assert.match(page.text, /<span class="tick end" data-axis-end>ended<\/span>/);
    assert.match(question.text, /Book it\? → answered: decision = yes/);
  });

  it('ends the axis now and marks a payment due in 41 days beside it, instead of stretching the scale', async () => {
    clock = Date.now() - 60_000;
    const taskId = await started('later', { payOn: new Date(clock + 41 * DAY).toISOString() });
    await answer(taskId, { action: 'accept', 'field.decision': 'yes' });
    await settled(taskId, (t) => t.status === 'working' && /waiting until/.test(t.statusMessage ?? ''), 'waits for its pay date');
    const page = await srv.console.get(`/console/tasks/${taskId}`);
    assert.match(page.text, /<span class="tick end" data-axis-end>now<\/span>/);
    const bars = timelineBars(page.text);
    const timer = bars.find((b) => b.kind === 'timer')!;
    assert.equal(timer.state, 'waiting');
    assert.equal(timer.beyond, '→ 41 days', 'the due date, beyond the axis');
    assert.ok(timer.left + timer.width >= 99.9, 'the wait runs to the axis’s end, now');
    for (const step of bars.filter((b) => b.kind === 'step')) assert.ok(step.width >= 20, `${step.label} is no sliver: ${step.width}%`);
  });

  it('describes answers in an operator’s words: answered with the values, declined; the protocol’s actions never shown', async () => {
    const declined = await started('ask');
    await answer(declined, { action: 'decline' });
    await settled(declined, (t) => t.status === 'completed', 'completes');
    const page = await srv.console.get(`/console/tasks/${declined}`);
    const question = timelineBars(page.text).find((b) => b.kind === 'question')!;
    assert.match(question.text, /Go ahead\? → declined/);
    const answered = await srv.console.get(`/console/tasks/${(await srv.server.store.listAll({ tool: 'later' }, ENGINE_ACCESS)).tasks.at(-1)!.taskId}`);
    for (const text of [page.text, answered.text]) {
      const timeline = /<ol class="timeline"[\s\S]*?<\/ol>/.exec(text)![0];
      assert.doesNotMatch(timeline.replace(/<[^>]+>/g, ' '), /\b(accept|decline|cancel)\b/, 'no protocol action in the timeline');
    }
    assert.equal(describeAnswer({ action: 'cancel' }), 'cancelled (dismissed without an answer)');
    assert.equal(describeAnswer({ action: 'accept', content: { decision: 'reject', comment: 'wrong PO' } }), 'answered: decision = reject; comment = wrong PO');
    assert.equal(describeAnswer({ action: 'accept' }), 'agreed', 'a link opened (URL mode)');
    assert.equal(describeAnswer({ role: 'assistant', model: 'm-1', content: { type: 'text', text: 'Looks fine' } }), 'answered by model m-1: Looks fine');
    assert.equal(describeAnswer({ roots: [{ uri: 'file:///srv/a' }] }), 'shared a folder: file:///srv/a');
  });

  it('says until when an ended task is kept, as a date and how far off it is', async () => {
    const [task] = (await srv.server.store.listAll({ tool: 'ask', statuses: ['completed'] }, ENGINE_ACCESS)).tasks as [TaskRecord];
    const page = await srv.console.get(`/console/tasks/${task.taskId}`);
    const expiry = new Date(Date.parse(task.createdAt) + task.ttl!).toISOString();
    const kept = /<dt>Kept<\/dt><dd data-kept>([\s\S]*?)<\/dd>/.exec(page.text)?.[1];
    assert.match(
      kept ?? '',
      new RegExp(`^until ${expiry.slice(0, 10)} ${expiry.slice(11, 16)} UTC \\(<time datetime="${expiry}"[^>]*data-relative>in \\d+ days</time>\\)$`),
    );
  });
});

describe('13. question deadlines as an operator reads them: overdue and escalated first', () => {
  it('lists tasks whose question is overdue first, earliest deadline first, with an overdue or escalated badge', async () => {
    const store = new TaskStore(new MemoryBackend());
    try {
      const now = store.now();
      const ask = async (deadline: number, escalate: boolean) => {
        const task = await store.create({ owner: 'alice', request: { tool: 'approve', arguments: {} }, errorResultStatus: 'failed' });
        await store.requestInput(
          task.taskId,
          'approval',
          { kind: 'elicitation', message: 'Approve?', requestedSchema: { type: 'object' } },
          'Approve?',
          undefined,
          {
            deadline: new Date(deadline).toISOString(),
            onTimeout: 'escalate',
          },
        );
        if (escalate) await store.markQuestion(task.taskId, 'approval', { escalatedAt: new Date(now).toISOString() });
        return store.get(task.taskId, ENGINE_ACCESS);
      };
      const notYet = await ask(now + HOUR, false);
      const late = await ask(now - 2 * 60_000, false);
      const latest = await ask(now - 5 * 60_000, true);
      assert.deepEqual(
        (await listOverdue(store, {}, now)).map((t) => t.taskId),
        [latest.taskId, late.taskId],
        'the earliest deadline first; a question not yet due is not overdue',
      );
      assert.deepEqual(await listOverdue(store, { tool: 'other' }, now), [], 'the list filters apply');
      assert.match(String(overdueBadge(late, now)), /data-overdue="overdue"/);
      assert.match(String(overdueBadge(latest, now)), /data-overdue="escalated"/);
      assert.equal(overdueBadge(notYet, now), '');
    } finally {
      await store.close();
    }
  });

  it('the invoice approval, escalated at its deadline: at the top of the list, flagged on its row and page, its timeline says what the deadline did', async () => {
    const srv = await startConsoleInvoiceServer({ approvalDeadlineMs: 300 });
    try {
      const local = new ConsoleHttp(srv.origin);
      const client = new RawMcpClient(srv.url);
      await client.initialize();
      const escalated = await submitInvoice(client, smallInvoice(nextInvoiceId()));
      await until(async () => (await srv.server.runtime.get(escalated, ENGINE_ACCESS)).questionDeadlines?.['elicit-1']?.escalatedAt, {
        timeoutMs: 20_000,
        what: 'the escalation',
      });
      const newer = await submitInvoice(client, smallInvoice(nextInvoiceId()));
      await until(async () => (await srv.server.runtime.get(newer, ENGINE_ACCESS)).status === 'input_required', {
        timeoutMs: 20_000,
        what: 'the newer question',
      });

      const list = (await local.get('/console/')).text;
      const section = /<section class="overdue"[\s\S]*?<\/section>/.exec(list)?.[0] ?? '';
      assert.match(section, new RegExp(`data-task-id="${escalated}"`), 'the escalated task is listed in the overdue section');
      assert.match(section, /data-overdue="escalated"/);
      assert.ok(list.indexOf('data-overdue-list') < list.indexOf('<table'), 'overdue questions come before the task table');
      assert.deepEqual(rowIds(list).slice(0, 2), [newer, escalated], 'the table keeps its order, newest first');
      assert.match(rowOf(list, escalated)!, /data-overdue="escalated"/);

      const page = (await local.get(`/console/tasks/${escalated}`)).text;
      assert.match(page, /<h1>process_invoice[\s\S]*?data-overdue="escalated"/);
      assert.match(page, /data-deadline="escalated"/);
      const bars = timelineBars(page);
      assert.ok(
        bars.some((bar) => bar.label === 'deadline of question elicit-1'),
        JSON.stringify(bars.map((b) => b.label)),
      );
      assert.match(page, /question elicit-1 escalated<\/strong>[\s\S]*?by the deadline/);

      // An operator answers: the task leaves the overdue list.
      assert.equal((await local.post(`/console/tasks/${escalated}/answer`, { key: 'elicit-1', action: 'decline', confirm: 'yes' })).status, 303);
      await until(async () => (await srv.server.runtime.get(escalated, ENGINE_ACCESS)).status === 'completed', { timeoutMs: 20_000, what: 'the task to end' });
      assert.doesNotMatch((await local.get('/console/')).text, /data-overdue-list/);
    } finally {
      await srv.close();
    }
  });
});
