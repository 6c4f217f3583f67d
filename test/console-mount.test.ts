/**
 * The operator console mounted by a host of its own, under a path prefix of its choice
 * (`ConsoleOptions.basePath`): as a web-standard handler (`OperatorConsole.fetch`, driven here with
 * `Request` objects, no HTTP server in between) and as a Node handler in an Express app
 * (`app.use('/ops', console.node)`, beside a route of the app's own). Every link, form action,
 * redirect and the session cookie's `Path` carry the prefix; the live event stream is a
 * `ReadableStream` that releases its store listener when the client goes away; without operator
 * tokens an unknown peer is refused.
 *
 * Tasks are created over MCP on the invoice demo (memory store) built in-process; the consoles under
 * test are built over the same `TaskServer`'s runtime.
 */
import assert from 'node:assert/strict';
import type { AddressInfo } from 'node:net';
import { after, before, describe, it } from 'node:test';
import express from 'express';
import { ENGINE_ACCESS, InvalidArgumentError, type TaskServer } from '../src/index.js';
import { silentLogger } from '../src/core/log.js';
import { OperatorConsole, type ConsoleDeps, type ConsoleOptions } from '../src/server/console/console.js';
import {
  ConsoleHttp,
  parseSetCookie,
  questionKeys,
  rowIds,
  smallInvoice,
  startConsoleInvoiceServer,
  type ConsoleInvoiceServer,
} from './helpers/console-http.js';
import { RawMcpClient } from './helpers/raw-client.js';
import { until } from './helpers/until.js';

const CLIENT_TOKENS = { 'tok-alice-mcp': 'alice' };
const OPERATOR_TOKENS = { 'ops-olivia-secret': 'olivia' };
/** The origin of the `Request`s given to `fetch` (no server listens there). */
const ORIGIN = 'http://console.example';

let invoiceSeq = 0;

/** What a console over `server`'s runtime needs (as `TaskServer` builds it). */
const depsOf = (server: TaskServer): ConsoleDeps => ({
  runtime: server.runtime,
  sensitiveFields: (tool) => server.tasks.toolConfig(tool)?.sensitive,
  toolNames: () => server.tasks.toolNames(),
  logger: silentLogger,
});

/** A client of `target` through its `fetch`, as a peer at `remoteAddress`, its requests sent to `origin`. */
const viaFetch = (target: OperatorConsole, remoteAddress?: string, origin = ORIGIN) =>
  new ConsoleHttp(origin, {
    base: target.basePath,
    send: (url, init) => target.fetch(new Request(url, init), { ...(remoteAddress && { remoteAddress }) }),
  });

/** Every site-relative URL a page links to, loads or posts to (`href`, `src`, `action`, `hx-get`, `sse-connect`). */
const localUrls = (html: string) => [...html.matchAll(/\s(?:href|src|action|hx-get|sse-connect)="(\/[^"]*)"/g)].map((m) => m[1]!);

/** Asserts every site-relative URL of `html` is under `base`, and that there are some. */
function assertUnder(html: string, base: string, what: string): void {
  const urls = localUrls(html);
  assert.ok(urls.length > 0, `${what}: no links at all`);
  for (const url of urls) assert.ok(url.startsWith(`${base}/`), `${what}: ${url} is not under ${base}/`);
}

/** Reads `reader` until `done(received)`, returning what came. */
async function readUntil(reader: ReadableStreamDefaultReader<Uint8Array>, done: (received: string) => boolean, what: string): Promise<string> {
  const decoder = new TextDecoder();
  let received = '';
  const deadline = Date.now() + 15_000;
  while (!done(received)) {
    assert.ok(Date.now() < deadline, `${what}; received ${JSON.stringify(received)}`);
    const chunk = await reader.read();
    assert.equal(chunk.done, false, `${what}: the stream ended; received ${JSON.stringify(received)}`);
    received += decoder.decode(chunk.value, { stream: true });
  }
  return received;
}

describe('operator console mounted by its host', () => {
  let srv: ConsoleInvoiceServer;
  let alice: RawMcpClient;
  const consoles: OperatorConsole[] = [];
  const build = (options: ConsoleOptions) => {
    const built = new OperatorConsole(depsOf(srv.server), options);
    consoles.push(built);
    return built;
  };
  const taskOf = (taskId: string) => srv.server.runtime.get(taskId, ENGINE_ACCESS);
  /** Starts an invoice as alice; returns its task id once it asks for approval. */
  const waitingInvoice = async () => {
    const res = await alice.request('tools/call', {
      name: 'process_invoice',
      arguments: { invoice: smallInvoice(`MNT-${process.pid}-${++invoiceSeq}`) },
      task: {},
    });
    const taskId = res.result?.task?.taskId as string;
    assert.ok(taskId, `no task created: ${JSON.stringify(res)}`);
    await until(async () => (await taskOf(taskId)).status === 'input_required', { timeoutMs: 20_000, what: `task ${taskId} to ask` });
    return taskId;
  };
  const changeListeners = () => srv.server.store.listenerCounts().changeListeners;

  before(async () => {
    srv = await startConsoleInvoiceServer({ tokens: CLIENT_TOKENS, operatorTokens: OPERATOR_TOKENS });
    alice = new RawMcpClient(srv.url, { authorization: 'Bearer tok-alice-mcp' });
    await alice.initialize();
  });
  after(async () => {
    for (const built of consoles) built.close();
    await srv?.close();
  });

  describe('basePath', () => {
    it('is normalized to a leading slash and no trailing one; /console by default; / is the root', () => {
      assert.equal(build({}).basePath, '/console');
      assert.equal(build({ basePath: 'ops/console/' }).basePath, '/ops/console');
      assert.equal(build({ basePath: '/ops//' }).basePath, '/ops');
      assert.equal(build({ basePath: '/' }).basePath, '');
      assert.equal(build({ basePath: '' }).basePath, '');
      assert.equal(build({ basePath: '/a-b_c.d~e/@ops:1' }).basePath, '/a-b_c.d~e/@ops:1');
    });

    it('refuses a path that is not one (InvalidArgumentError)', () => {
      for (const basePath of [
        '/ops?x=1',
        '/ops#top',
        '/ops/../admin',
        '/ops/./x',
        '..',
        '/ops console',
        ' /ops',
        '/ops\n',
        '/a//b',
        "/it's",
        '/a"b',
        '/a;b',
        '/a,b',
        '/a\\b',
        '/a%2Fb',
        '/a<b',
      ]) {
        assert.throws(() => new OperatorConsole(depsOf(srv.server), { basePath }), InvalidArgumentError, JSON.stringify(basePath));
      }
    });
  });

  describe('(a) under /ops/console, served by fetch (no HTTP server)', () => {
    const base = '/ops/console';
    let ops: OperatorConsole;
    let olivia: ConsoleHttp;
    let answered: string;
    let cancelled: string;

    before(async () => {
      ops = build({ operatorTokens: OPERATOR_TOKENS, basePath: base });
      olivia = viaFetch(ops, '192.0.2.10');
      answered = await waitingInvoice();
      cancelled = await waitingInvoice();
    });

    it('redirects, asks for a sign-in and signs in under the prefix: Location and cookie Path carry it', async () => {
      const visitor = viaFetch(ops, '192.0.2.10');
      const bare = await visitor.get(base);
      assert.equal(bare.status, 303);
      assert.equal(bare.location, `${base}/`);
      const list = await visitor.get(`${base}/`);
      assert.equal(list.status, 303);
      assert.equal(list.location, `${base}/login`);
      const fragment = await visitor.get(`${base}/list`);
      assert.equal(fragment.status, 401);
      assert.match(fragment.text, new RegExp(`<a href="${base}/login">Sign in</a>`));
      const login = await visitor.get(`${base}/login`);
      assert.equal(login.status, 200);
      assert.match(login.text, new RegExp(`<form method="post" action="${base}/login">`));
      assertUnder(login.text, base, 'sign-in page');

      const signedIn = await olivia.login('ops-olivia-secret');
      assert.equal(signedIn.status, 303);
      assert.equal(signedIn.location, `${base}/`);
      const cookie = parseSetCookie(signedIn.setCookie!);
      assert.equal(cookie.attributes.path, base);
      assert.ok('httponly' in cookie.attributes);
      assert.equal(cookie.attributes.samesite, 'Strict');
      assert.equal(cookie.attributes.secure, undefined, 'http: no Secure');
      const secure = await new ConsoleHttp('https://console.example', { base, send: (url, init) => ops.fetch(new Request(url, init)) }).login(
        'ops-olivia-secret',
      );
      assert.equal(parseSetCookie(secure.setCookie!).attributes.secure, '', 'an https: request URL makes the cookie Secure');
    });

    it('answers 404 outside its prefix (the old /console among them)', async () => {
      for (const path of ['/console/', '/console', '/ops/consoles/', '/ops/', '/', `${base}x`]) {
        const page = await olivia.get(path);
        assert.equal(page.status, 404, path);
      }
    });

    it('lists the tasks with every link, asset, fragment and stream URL under the prefix', async () => {
      const list = await olivia.get(`${base}/`);
      assert.equal(list.status, 200);
      assert.match(list.text, /signed in as <strong>olivia<\/strong>/);
      assert.ok(rowIds(list.text).includes(answered));
      assertUnder(list.text, base, 'list page');
      assert.match(list.text, new RegExp(`<a href="${base}/tasks/${answered}" class="row-link">`));
      assert.match(list.text, new RegExp(`sse-connect="${base}/events"`));
      assert.match(list.text, new RegExp(`hx-get="${base}/list"`));
      assert.match(list.text, new RegExp(`<form method="post" action="${base}/logout" class="inline">`));
      assert.match(list.text, new RegExp(`<a href="${base}/\\?status=input_required" class="count s-input_required"`));
      const fragment = await olivia.get(`${base}/list?status=input_required`);
      assert.equal(fragment.status, 200);
      assert.ok(rowIds(fragment.text).includes(answered));
      assertUnder(fragment.text, base, 'list fragment');
      const script = await olivia.get(`${base}/assets/console.js`);
      assert.equal(script.status, 200);
      assert.match(script.headers.get('content-type') ?? '', /^text\/javascript/);
      assert.ok(script.text.includes(`window.location.href = '${base}/login'`), 'the script sends a signed-out page to this sign-in');
      assert.equal((await olivia.get(`${base}/assets/pico.min.css`)).status, 200);
    });

    it('answers a question: task page, confirmation, answer, all under the prefix', async () => {
      const page = await olivia.get(`${base}/tasks/${answered}`);
      assert.equal(page.status, 200);
      assertUnder(page.text, base, 'task page');
      const [key] = questionKeys(page.text) as [string];
      assert.ok(key, 'a question');
      assert.match(page.text, new RegExp(`<form method="post" action="${base}/tasks/${answered}/answer" class="answer"`));
      assert.match(page.text, new RegExp(`hx-get="${base}/tasks/${answered}/panel"`));
      assert.match(page.text, new RegExp(`<form method="post" action="${base}/tasks/${answered}/cancel">`));
      const panel = await olivia.get(`${base}/tasks/${answered}/panel`);
      assert.equal(panel.status, 200);
      assert.deepEqual(questionKeys(panel.text), [key]);

      const fields = { key, action: 'accept', 'field.decision': 'approve', 'field.comment': 'from /ops' };
      const review = await olivia.post(`${base}/tasks/${answered}/answer`, fields);
      assert.equal(review.status, 200);
      assertUnder(review.text, base, 'confirmation page');
      assert.match(review.text, new RegExp(`<form method="post" action="${base}/tasks/${answered}/answer">`));
      assert.match(review.text, new RegExp(`<a href="${base}/tasks/${answered}" role="button"`));

      const crossSite = await olivia.post(`${base}/tasks/${answered}/answer`, { ...fields, confirm: 'yes' }, { origin: 'http://evil.example' });
      assert.equal(crossSite.status, 403, 'a cross-site POST');
      assert.equal((await taskOf(answered)).status, 'input_required');

      const sent = await olivia.post(`${base}/tasks/${answered}/answer`, { ...fields, confirm: 'yes' });
      assert.equal(sent.status, 303);
      assert.equal(sent.location, `${base}/tasks/${answered}`);
      const done = await until(async () => ((await taskOf(answered)).status === 'completed' ? taskOf(answered) : undefined), {
        timeoutMs: 20_000,
        what: 'the answered task to complete',
      });
      assert.equal((done.outcome as unknown as { result: { structuredContent: { comment: string } } }).result.structuredContent.comment, 'from /ops');
      const journal = await srv.server.store.readJournal(answered);
      assert.deepEqual((journal.get(`answered:${key}`) as { by: unknown }).by, { role: 'operator', name: 'olivia' });
    });

    it('cancels a task, and a bearer script may too; sign-out clears the cookie on the prefix', async () => {
      const unconfirmed = await olivia.post(`${base}/tasks/${cancelled}/cancel`, {});
      assert.equal(unconfirmed.status, 400);
      const sent = await olivia.post(`${base}/tasks/${cancelled}/cancel`, { confirm: 'yes' });
      assert.equal(sent.status, 303);
      assert.equal(sent.location, `${base}/tasks/${cancelled}`);
      assert.equal((await taskOf(cancelled)).status, 'cancelled');
      assert.deepEqual(((await srv.server.store.readJournal(cancelled)).get('cancelled') as { by: unknown }).by, { role: 'operator', name: 'olivia' });
      const again = await viaFetch(ops).post(
        `${base}/tasks/${cancelled}/cancel`,
        { confirm: 'yes' },
        { authorization: 'Bearer ops-olivia-secret', origin: '' },
      );
      assert.equal(again.status, 409, 'a bearer script, no Origin: let through, and told the task has ended');

      const out = await olivia.post(`${base}/logout`);
      assert.equal(out.status, 303);
      assert.equal(out.location, `${base}/login`);
      const cleared = parseSetCookie(out.setCookie!);
      assert.equal(cleared.value, '');
      assert.equal(cleared.attributes.path, base);
      assert.equal(cleared.attributes['max-age'], '0');
    });

    it('limits refused sign-ins per peer address (429 with Retry-After), not across peers', async () => {
      const guesser = viaFetch(ops, '203.0.113.7');
      for (let i = 0; i < 10; i++) assert.equal((await guesser.login(`guess-${i}`)).status, 401);
      const limited = await guesser.login('ops-olivia-secret');
      assert.equal(limited.status, 429);
      assert.ok(Number(limited.headers.get('retry-after')) >= 1, 'Retry-After in seconds');
      assert.equal((await viaFetch(ops, '203.0.113.8').login('ops-olivia-secret')).status, 303, 'another peer signs in');
    });

    it('serves a console at the root (basePath /): links from /, cookie Path=/', async () => {
      const root = build({ operatorTokens: OPERATOR_TOKENS, basePath: '/' });
      const client = viaFetch(root, '192.0.2.11');
      const login = await client.login('ops-olivia-secret');
      assert.equal(login.location, '/');
      assert.equal(parseSetCookie(login.setCookie!).attributes.path, '/');
      const list = await client.get('/');
      assert.equal(list.status, 200);
      assert.match(list.text, new RegExp(`<a href="/tasks/${answered}" class="row-link">`));
      assert.match(list.text, /sse-connect="\/events"/);
      assert.match(list.text, /<link rel="stylesheet" href="\/assets\/pico\.min\.css">/);
      assert.equal((await client.get(`/tasks/${answered}`)).status, 200);
    });
  });

  describe('(b) the live event stream through fetch', () => {
    const base = '/ops/console';
    let ops: OperatorConsole;
    let olivia: ConsoleHttp;
    const open = async (signal?: AbortSignal) => {
      const response = await ops.fetch(new Request(`${ORIGIN}${base}/events`, { headers: { cookie: olivia.cookie! }, ...(signal && { signal }) }));
      assert.equal(response.status, 200);
      return response;
    };

    before(async () => {
      ops = build({ operatorTokens: OPERATOR_TOKENS, basePath: base });
      olivia = viaFetch(ops);
      await olivia.login('ops-olivia-secret');
    });

    it('pushes the same events with the same headers, and releases its store listener when the reader cancels', async () => {
      const idle = changeListeners();
      const response = await open();
      assert.equal(response.headers.get('content-type'), 'text/event-stream');
      assert.equal(response.headers.get('cache-control'), 'no-cache');
      assert.equal(response.headers.get('x-accel-buffering'), 'no');
      const reader = response.body!.getReader();
      assert.equal(await readUntil(reader, (r) => r.length > 0, 'the first chunk'), ': connected\n\n');
      assert.equal(changeListeners(), idle + 1, 'one listener while a stream is open');
      const second = (await open()).body!.getReader();
      await readUntil(second, (r) => r.includes(': connected'), 'the second stream');
      assert.equal(changeListeners(), idle + 1, 'one listener for every stream');

      const created = await waitingInvoice();
      const received = await readUntil(reader, (r) => r.includes('event: tasks\n') && r.includes(`event: task-${created}\n`), `events for ${created}`);
      assert.match(received, /event: tasks\ndata: \d+\n\n/);
      assert.match(received, new RegExp(`event: task-${created}\\ndata: (working|input_required)\\n\\n`));

      await reader.cancel();
      assert.equal(changeListeners(), idle + 1, 'the other stream still listens');
      await second.cancel();
      assert.equal(changeListeners(), idle, 'no stream, no listener');
    });

    it('releases it when the request is aborted, and refuses the stream without credentials', async () => {
      const idle = changeListeners();
      const controller = new AbortController();
      const reader = (await open(controller.signal)).body!.getReader();
      await readUntil(reader, (r) => r.includes(': connected'), 'the stream');
      assert.equal(changeListeners(), idle + 1);
      controller.abort();
      assert.equal(changeListeners(), idle, 'released on abort');
      assert.equal((await reader.read()).done, true, 'and the body ends');

      const refused = await ops.fetch(new Request(`${ORIGIN}${base}/events`));
      assert.equal(refused.status, 401);
      assert.doesNotMatch(refused.headers.get('content-type') ?? '', /event-stream/);
      assert.equal(changeListeners(), idle);
    });

    it('close() ends every open stream and releases the listener', async () => {
      const idle = changeListeners();
      const readers = [(await open()).body!.getReader(), (await open(new AbortController().signal)).body!.getReader()];
      for (const reader of readers) await readUntil(reader, (r) => r.includes(': connected'), 'a stream');
      assert.equal(changeListeners(), idle + 1);
      ops.close();
      for (const reader of readers) assert.equal((await reader.read()).done, true, 'the stream ended');
      assert.equal(changeListeners(), idle);
    });
  });

  describe('(c) node, in an Express app: app.use("/ops", console.node)', () => {
    let app: ReturnType<typeof express>;
    let http: ReturnType<ReturnType<typeof express>['listen']>;
    let origin: string;
    let ops: OperatorConsole;
    let local: OperatorConsole;

    before(async () => {
      ops = build({ operatorTokens: OPERATOR_TOKENS, basePath: '/ops/console' });
      local = build({ basePath: '/local' });
      app = express();
      app.get('/health', (_req, res) => void res.json({ ok: true }));
      app.use('/ops', ops.node);
      app.use('/local', local.node);
      await new Promise<void>((resolve) => (http = app.listen(0, '127.0.0.1', () => resolve())));
      origin = `http://127.0.0.1:${(http.address() as AddressInfo).port}`;
    });
    after(async () => {
      http.closeAllConnections();
      await new Promise((resolve) => http.close(resolve));
    });

    it("leaves the app's own routes alone", async () => {
      const health = await fetch(`${origin}/health`);
      assert.equal(health.status, 200);
      assert.deepEqual(await health.json(), { ok: true });
    });

    it('routes on the path Express stripped (req.originalUrl): redirects, sign-in, cookie, links', async () => {
      const olivia = new ConsoleHttp(origin, { base: '/ops/console' });
      const bare = await olivia.get('/ops/console');
      assert.equal(bare.status, 303);
      assert.equal(bare.location, '/ops/console/');
      assert.equal((await olivia.get('/ops/console/')).location, '/ops/console/login');
      assert.equal((await olivia.get('/ops/other')).status, 404, 'under the mount point but outside the console');
      const login = await olivia.login('ops-olivia-secret');
      assert.equal(login.status, 303);
      assert.equal(login.location, '/ops/console/');
      assert.equal(parseSetCookie(login.setCookie!).attributes.path, '/ops/console');
      const list = await olivia.get('/ops/console/');
      assert.equal(list.status, 200);
      assertUnder(list.text, '/ops/console', 'list page over Express');
      assert.equal((await olivia.get('/ops/console/assets/htmx.min.js')).status, 200);

      const taskId = await waitingInvoice();
      const [key] = questionKeys((await olivia.get(`/ops/console/tasks/${taskId}`)).text) as [string];
      const crossSite = await olivia.post(`/ops/console/tasks/${taskId}/cancel`, { confirm: 'yes' }, { origin: 'http://evil.example' });
      assert.equal(crossSite.status, 403);
      const sent = await olivia.post(`/ops/console/tasks/${taskId}/answer`, { key, action: 'decline', confirm: 'yes' });
      assert.equal(sent.status, 303);
      assert.equal(sent.location, `/ops/console/tasks/${taskId}`);
      await until(async () => (await taskOf(taskId)).status === 'completed', { timeoutMs: 20_000, what: 'the declined task to end' });
    });

    it('answers a form over 64 KiB with 413 and closes that connection', async () => {
      const olivia = new ConsoleHttp(origin, { base: '/ops/console' });
      await olivia.login('ops-olivia-secret');
      const page = await olivia.post('/ops/console/tasks/0123456789abcdef0123456789abcdef/answer', { key: 'k', 'field.comment': 'x'.repeat(200 * 1024) });
      assert.equal(page.status, 413);
      assert.match(page.text, /Form too large/);
      assert.equal(page.headers.get('connection'), 'close');
      assert.equal((await olivia.get('/ops/console/')).status, 200, 'still serving');
    });

    it('passes the socket peer: a console without tokens serves this loopback client', async () => {
      const page = await new ConsoleHttp(origin).get('/local/');
      assert.equal(page.status, 200);
      assert.match(page.text, /signed in as <strong>local<\/strong>/);
      assertUnder(page.text, '/local', 'loopback console over Express');
    });

    it('streams events and lets go of the store when the client goes away', async () => {
      const olivia = new ConsoleHttp(origin, { base: '/ops/console' });
      await olivia.login('ops-olivia-secret');
      const idle = changeListeners();
      const controller = new AbortController();
      const response = await fetch(`${origin}/ops/console/events`, { headers: { cookie: olivia.cookie! }, signal: controller.signal });
      assert.equal(response.status, 200);
      assert.equal(response.headers.get('content-type'), 'text/event-stream');
      assert.equal(response.headers.get('x-accel-buffering'), 'no');
      const reader = response.body!.getReader();
      await readUntil(reader, (r) => r.includes(': connected\n\n'), 'the stream to open');
      assert.equal(changeListeners(), idle + 1);
      const created = await waitingInvoice();
      await readUntil(reader, (r) => r.includes(`event: task-${created}\n`), `events for ${created}`);
      controller.abort();
      await until(() => changeListeners() === idle, { timeoutMs: 10_000, what: 'the listener to be released after the client left' });
    });
  });

  describe('(d) without operator tokens', () => {
    it('refuses (403) a peer fetch was given no address for, or one off loopback: never grants operator access to an unknown peer', async () => {
      const open = build({ basePath: '/ops/console' });
      const taskId = await waitingInvoice();
      for (const remoteAddress of [undefined, '192.0.2.1', '10.0.0.5', '::ffff:10.0.0.5']) {
        const client = viaFetch(open, remoteAddress, 'http://localhost:8080');
        for (const path of ['/ops/console/', '/ops/console/list', '/ops/console/events', `/ops/console/tasks/${taskId}`]) {
          const page = await client.get(path);
          assert.equal(page.status, 403, `${path} from ${remoteAddress}`);
          assert.match(page.text, /loopback/);
          assert.doesNotMatch(page.text, new RegExp(taskId));
        }
        const cancel = await client.post(`/ops/console/tasks/${taskId}/cancel`, { confirm: 'yes' });
        assert.equal(cancel.status, 403, `a cancel from ${remoteAddress}`);
      }
      assert.equal((await taskOf(taskId)).status, 'input_required', 'nothing changed');
      const login = await viaFetch(open).get('/ops/console/login');
      assert.equal(login.status, 303, 'no sign-in without tokens');
      assert.equal(login.location, '/ops/console/');
    });

    it('serves a loopback peer that names a loopback host, as operator local; not one sent to another name (DNS rebinding)', async () => {
      const open = build({ basePath: '/ops/console' });
      for (const [remoteAddress, origin] of [
        ['127.0.0.1', 'http://localhost:8080'],
        ['::1', 'http://[::1]:8080'],
        ['::ffff:127.0.0.1', 'http://127.0.0.1'],
      ] as const) {
        const page = await viaFetch(open, remoteAddress, origin).get('/ops/console/');
        assert.equal(page.status, 200, `${remoteAddress} to ${origin}`);
        assert.match(page.text, /signed in as <strong>local<\/strong>/);
      }
      for (const origin of ['http://console.example', 'http://127.0.0.1.evil.example:8080']) {
        const page = await viaFetch(open, '127.0.0.1', origin).get('/ops/console/');
        assert.equal(page.status, 403, origin);
        assert.doesNotMatch(page.text, /signed in/);
      }
      const rebound = await open.fetch(new Request('http://localhost:8080/ops/console/', { headers: { host: 'evil.example:8080' } }), {
        remoteAddress: '127.0.0.1',
      });
      assert.equal(rebound.status, 403, 'the Host header counts, not the URL');
    });
  });
});
