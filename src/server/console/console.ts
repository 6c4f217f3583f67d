import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { toNodeHandler } from '@modelcontextprotocol/node';
import { readRequestBody } from '@modelcontextprotocol/server';
import { ENGINE_ACCESS } from '../../core/access.js';
import { IllegalTransitionError, InvalidAnswerError, InvalidArgumentError, InvalidCursorError, TaskNotFoundError } from '../../core/errors.js';
import { askedKey, inputKey, type Actor, type RetryFrom } from '../../core/journal-keys.js';
import type { Json, JsonObject } from '../../core/json.js';
import type { Logger } from '../../core/log.js';
import { isTerminal, type TaskStatus } from '../../core/status.js';
import type { TaskRecord } from '../../core/task.js';
import type { TaskRuntime } from '../../runtime/runtime.js';
import { stepsOf } from '../../runtime/retry.js';
import { ConsoleAuth, sameOrigin } from './auth.js';
import { contentFromForm } from './form.js';
import { CONSOLE_CSS } from './styles.js';
import { consoleScript } from './script.js';
import { checkInputAnswer } from '../../core/input-answers.js';
import { listOverdue } from './overdue.js';
import { buildTimeline } from './timeline.js';
import {
  confirmAnswerPage,
  layout,
  listFragment,
  listPage,
  loginPage,
  STATUSES,
  taskPage,
  taskPanel,
  type ListFilters,
  type ListView,
  type TaskView,
} from './views.js';
import { html, type Html } from './html.js';
import { outageHeaders, storeUnavailableError, toErrorObject } from '../../wire/errors.js';

/** Options of the operator console (`TaskServerOptions.console`). */
export interface ConsoleOptions {
  /**
   * Operator tokens: each token → the operator name it signs in (answers and cancels are journaled
   * with that name). Required when the server authenticates its MCP clients; without tokens the
   * console answers loopback peers only, as operator `local`.
   */
  operatorTokens?: Record<string, string>;
  /** How long a console sign-in lasts, in ms. Default 12 h. */
  sessionMs?: number;
  /** Tasks per list page. Default 25. */
  pageSize?: number;
  /**
   * The path the console is served under, as the browser sees it (the whole path, with any mount
   * point of the hosting app): every route, link, form action, redirect and the session cookie's
   * `Path` start with it. Default `/console`. Normalized to a leading slash and no trailing one
   * (`ops/console/` → `/ops/console`; `/` or `''`: the host's root, cookie `Path=/`). Its segments
   * may hold letters, digits and `-._~!$&()*+=:@`; anything else — `?`, `#`, `%`, whitespace,
   * quotes, `;`, `,`, `\`, an empty segment (`//`), a `.` or `..` segment — is refused with an
   * `InvalidArgumentError` by the constructor.
   */
  basePath?: string;
}

/** What the console needs of the server: the runtime (and its store), task tool declarations, a logger. */
export interface ConsoleDeps {
  runtime: TaskRuntime;
  /** Top-level argument fields to redact on a task's page (`TaskToolConfig.sensitive`), by tool name. */
  sensitiveFields: (tool: string) => readonly string[] | undefined;
  /** Names of the registered task tools (the tool filter). */
  toolNames: () => string[];
  logger: Logger;
}

/** What the host knows of a request beyond the `Request` itself (see `OperatorConsole.fetch`). */
export interface ConsoleRequestContext {
  /**
   * The IP address of the peer that sent the request, as the host's socket reports it (Node
   * `req.socket.remoteAddress`, e.g. `127.0.0.1`, `::1`, `::ffff:127.0.0.1`; Deno
   * `info.remoteAddr.hostname`; Bun `server.requestIP(request)?.address`). Without operator tokens
   * only a loopback peer may use the console, so an absent address is taken as not loopback (403:
   * give the console operator tokens where the address is not known). It also keys the sign-in
   * rate limit: requests without it share one key (`unknown`).
   */
  remoteAddress?: string;
}

const ASSETS: Record<string, { type: string; file?: string; text?: (base: string) => string }> = {
  'htmx.min.js': { type: 'text/javascript; charset=utf-8', file: 'htmx.org/dist/htmx.min.js' },
  'sse.js': { type: 'text/javascript; charset=utf-8', file: 'htmx-ext-sse/dist/sse.min.js' },
  'pico.min.css': { type: 'text/css; charset=utf-8', file: '@picocss/pico/css/pico.min.css' },
  'console.css': { type: 'text/css; charset=utf-8', text: () => CONSOLE_CSS },
  'console.js': { type: 'text/javascript; charset=utf-8', text: consoleScript },
};

const MAX_FORM_BYTES = 64 * 1024;
const SSE_FLUSH_MS = 300;
const SSE_KEEPALIVE_MS = 15_000;
const SSE_TASKS_PER_FLUSH = 500;
/** Refused sign-ins allowed per peer address within `SIGN_IN_WINDOW_MS` before it must wait (HTTP 429). */
const SIGN_IN_FAILURES = 10;
const SIGN_IN_WINDOW_MS = 5 * 60_000;
/** A task's routes, below the base path. */
const TASK_ID = /^\/tasks\/([A-Za-z0-9_-]{1,128})(\/panel|\/answer|\/cancel|\/retry)?$/;
/** One segment of a base path (see `ConsoleOptions.basePath`). */
const BASE_SEGMENT = /^[A-Za-z0-9\-._~!$&()*+=:@]+$/;
const SSE_HEADERS = { 'content-type': 'text/event-stream', 'cache-control': 'no-cache', connection: 'keep-alive', 'x-accel-buffering': 'no' };
const HTML_HEADERS = {
  'content-type': 'text/html; charset=utf-8',
  'cache-control': 'no-store',
  'x-frame-options': 'DENY',
  'content-security-policy': "default-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; frame-ancestors 'none'",
  'referrer-policy': 'same-origin',
};
const encoder = new TextEncoder();

/**
 * The operator console: web pages that show every task in the store (every principal's: see
 * `ConsoleAuth` for who may open them) and let an operator answer pending form questions and
 * cancel tasks, through the same runtime path a client uses (`TaskRuntime.provideInputs` /
 * `cancel`, validated; journaled with the operator's name).
 *
 * It is a request handler to mount under a path prefix (`ConsoleOptions.basePath`, default
 * `/console`) in any host: `fetch(request, { remoteAddress })` for web-standard hosts (Hono, Bun,
 * Deno, workers), `node(req, res)` for Node ones (node:http, Express, Fastify's `reply.raw`). The
 * task server serves one itself beside its MCP endpoint (`TaskServerOptions.console`).
 *
 * Pages are HTML rendered here; live updates come from the store's change events, pushed to the
 * browser as server-sent events (`<basePath>/events`: `tasks` on any change, `task-<taskId>` for
 * one task, coalesced every 300 ms) on which htmx re-fetches the visible fragment — no polling. The
 * coalescing is here, not in the page: a page-side throttle drops the events after the first, and
 * with them the task's last state. Every
 * instance sharing a store serves the same view (shared backends deliver other instances' writes).
 * Assets (htmx, its SSE extension, Pico CSS) are served from the installed packages: no CDN.
 */
export class OperatorConsole {
  /** The normalized path prefix the console answers under (`/console` by default, `''` at the root; see `ConsoleOptions.basePath`). */
  readonly basePath: string;
  private readonly auth: ConsoleAuth;
  /** The open event streams, each with what stops listening to its request's abort signal. */
  private readonly streams = new Map<ReadableStreamDefaultController<Uint8Array>, () => void>();
  private readonly changed = new Map<string, TaskStatus>();
  private unsubscribe?: () => void;
  private flushTimer?: NodeJS.Timeout;
  private keepAlive?: NodeJS.Timeout;
  private readonly pageSize: number;
  private readonly assets = new Map<string, Uint8Array<ArrayBuffer>>();
  private readonly signInFailures = new FailureWindow(SIGN_IN_FAILURES, SIGN_IN_WINDOW_MS);

  /**
   * A console over `deps.runtime`'s store. Throws `InvalidArgumentError` for a bad
   * `options.basePath`. Opens nothing: the store is listened to while an event stream is open.
   * `fetch` and `node` are bound to the instance, so they can be passed around on their
   * own (`app.use('/ops', console.node)`, `Bun.serve({ fetch: console.fetch })`).
   */
  constructor(
    private readonly deps: ConsoleDeps,
    options: ConsoleOptions = {},
  ) {
    this.basePath = normalizeBasePath(options.basePath ?? '/console');
    this.auth = new ConsoleAuth(options.operatorTokens, options.sessionMs, this.basePath || '/');
    this.pageSize = options.pageSize ?? 25;
    const require = createRequire(import.meta.url);
    for (const [name, asset] of Object.entries(ASSETS))
      this.assets.set(name, new Uint8Array(asset.text !== undefined ? encoder.encode(asset.text(this.basePath)) : readFileSync(require.resolve(asset.file!))));
    this.fetch = this.fetch.bind(this);
    this.node = this.node.bind(this);
  }

  /** Whether operators sign in with tokens (else the console answers loopback peers only). */
  get usesTokens(): boolean {
    return this.auth.usesTokens;
  }

  /**
   * Answers one request as a web-standard handler (`(Request) => Response`: Hono
   * `app.all('/ops/*', (c) => console.fetch(c.req.raw, { remoteAddress }))`, `Bun.serve`,
   * `Deno.serve`, a worker's `fetch`). `request.url` must carry the whole path the browser asked
   * for, `basePath` included; a path outside `basePath` is answered 404, `GET <basePath>` 303 to
   * `<basePath>/`. `https:` in `request.url`, or `X-Forwarded-Proto: https`, makes the session
   * cookie `Secure`.
   *
   * `context.remoteAddress` is the peer's IP address. Without operator tokens only a loopback peer
   * is let in, and one whose address is not given is not (403): a host that cannot tell the
   * address must give the console operator tokens. Such a request must also name a loopback host
   * (`Host` `localhost`, `127.0.0.1` or `[::1]`, any port; without a `Host` header, the host of
   * `request.url`), against DNS rebinding. Behind a reverse proxy, pass the address it reports
   * only if you trust it.
   *
   * Statuses: 200 pages, fragments, assets and `<basePath>/events` (a `text/event-stream` body that
   * stays open until the client goes away — `request.signal` aborts or the body is cancelled — or
   * `close()`); 303 redirects (sign-in, sign-out, a sent answer or cancel); 400 a cancel without
   * confirmation or an unknown answer action; 401 no credentials for a fragment, the stream or a
   * POST (pages redirect to `<basePath>/login`), or a refused token; 403 a cross-site POST, or
   * without tokens a peer that is not on loopback, is unknown or names another host; 404 unknown
   * paths and tasks; 405 a wrong method; 409 a question no longer waiting or a task already ended;
   * 413 a form over 64 KiB (the rest of the body is left unread: `node` closes the connection
   * after the answer); 422 an answer that does not fit its question; 429 ten refused sign-ins from
   * one peer within 5 min (`Retry-After`, in s); 503 the task store unavailable
   * (`StoreUnavailableError`: a page with `Retry-After` in s, logged at debug only — the store logs
   * each outage once); 500 any other fault (a page; logged with the stack). Never rejects.
   */
  async fetch(request: Request, context: ConsoleRequestContext = {}): Promise<Response> {
    const url = new URL(request.url);
    try {
      return await this.route(request, url, context.remoteAddress);
    } catch (error) {
      const outage = storeUnavailableError(error);
      if (outage) {
        this.deps.logger.debug({ component: 'console', error: outage.message }, 'console request answered 503: the task store is unavailable');
        const read = request.method === 'GET';
        // Back to the same view; after a refused answer or cancel, the task's page (its form can be sent again).
        const again = read ? `${url.pathname}${url.search}` : url.pathname.replace(/\/(answer|cancel)$/, '');
        return message(
          this.basePath,
          503,
          'Task store unavailable',
          html`The task store cannot be reached right now, so tasks can be neither shown nor
            changed${read ? '' : html` (look at the task again once the store is back: what you sent may not have been taken)`}. The server keeps running and
            carries on when the store is back: <a href="${again}">try again</a> in a few seconds.`,
          undefined,
          { 'retry-after': outageHeaders(toErrorObject(outage))!.headers['retry-after'] },
        );
      }
      this.deps.logger.error({ err: error, component: 'console' }, 'console request failed');
      return message(this.basePath, 500, 'Something went wrong', html`The error is in the server log.`);
    }
  }

  /**
   * Answers one request as a Node handler (node:http, Express `app.use('/ops', console.node)`,
   * Fastify `reply.hijack(); return console.node(req.raw, reply.raw)`): the SDK's `toNodeHandler`
   * turns it into a `Request` for `fetch` (every status there) with the socket's
   * `remoteAddress`, and writes the `Response` back (event streams with backpressure, ended when
   * the client goes away). The path is Express's `req.originalUrl` when there is one (a mount path
   * stripped from `req.url` is kept there), else `req.url`; on a TLS socket the URL is `https:`.
   * The body must not have been read (mount the console before body parsers); at most 64 KiB of
   * it is read (a longer form is answered 413 and its connection closed). Resolves once the
   * response is written; never rejects (a request that cannot be converted, e.g. an invalid `Host`,
   * gets the adapter's JSON 500, logged at debug).
   */
  async node(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const remoteAddress = req.socket.remoteAddress;
    const https = (req.socket as { encrypted?: boolean }).encrypted === true;
    const serve = toNodeHandler(
      {
        fetch: (request) =>
          this.fetch(https ? new Request(request.url.replace(/^http:/, 'https:'), request) : request, { ...(remoteAddress && { remoteAddress }) }),
      },
      {
        maxRequestBodySize: Number.MAX_SAFE_INTEGER, // bounded by `bodyUpTo`, so a long form gets the console's 413 page
        onerror: (error) => this.deps.logger.debug({ component: 'console', error: error.message }, 'console request could not be read'),
      },
    );
    const url = (req as IncomingMessage & { originalUrl?: string }).originalUrl ?? req.url;
    // Past MAX_FORM_BYTES the rest of the body is left unread: the connection cannot carry another request.
    const body = () => bodyUpTo(req, MAX_FORM_BYTES, () => void (res.shouldKeepAlive = false));
    await serve({ ...(req.method && { method: req.method }), ...(url && { url }), headers: req.headers, [Symbol.asyncIterator]: body }, res);
  }

  /** Ends every open event stream (their responses end) and stops listening to the store. Requests keep being answered. */
  close(): void {
    for (const [stream, release] of this.streams) {
      release();
      stream.close();
    }
    this.streams.clear();
    this.stopListening();
  }

  private async route(request: Request, url: URL, peer: string | undefined): Promise<Response> {
    const base = this.basePath;
    if (url.pathname !== base && !url.pathname.startsWith(`${base}/`)) return message(base, 404, 'Not found');
    const path = url.pathname.slice(base.length); // '' or '/…'
    const method = request.method;
    if (path.startsWith('/assets/')) return this.asset(path.slice('/assets/'.length));
    if (path === '') return redirect(`${base}/`);
    if (path === '/login') return this.login(request, url, method, peer);
    if (path === '/logout' && method === 'POST') {
      if (!sameOriginOf(request, url)) return message(base, 403, 'Forbidden', html`Cross-site request refused.`);
      this.deps.logger.info(
        { component: 'console', operator: this.auth.operatorOf(request.headers, peer, hostOf(request, url)) },
        'operator signed out of the console',
      );
      return new Response(null, { status: 303, headers: { location: `${base}/login`, 'set-cookie': this.auth.clearCookie() } });
    }
    const match = TASK_ID.exec(path);
    const operator = this.auth.operatorOf(request.headers, peer, hostOf(request, url));
    if (!operator) {
      if (!this.auth.usesTokens) return message(base, 403, 'Forbidden', html`Without operator tokens, the console answers only on this machine (loopback).`);
      const page = path === '/' || (match !== null && match[2] === undefined);
      if (method === 'GET' && page) return redirect(`${base}/login`); // fragments and streams get 401
      return message(base, 401, 'Sign in required', html`<a href="${base}/login">Sign in</a>`);
    }
    if (method === 'POST' && !sameOriginOf(request, url)) return message(base, 403, 'Forbidden', html`Cross-site request refused.`);
    const actor: Actor = { role: 'operator', name: operator };
    if (path === '/' && method === 'GET') return send(200, listPage(await this.listView(url, operator)));
    if (path === '/list' && method === 'GET') return send(200, listFragment(await this.listView(url, operator)));
    if (path === '/events' && method === 'GET') return this.stream(request);
    if (!match) return message(base, 404, 'Not found', undefined, operator);
    const [, taskId, action] = match as unknown as [string, string, string | undefined];
    if (method === 'GET' && action === undefined) return this.showTask(taskId, operator, 200, false);
    if (method === 'GET' && action === '/panel') return this.showTask(taskId, operator, 200, true);
    if (method === 'POST' && action === '/answer') return this.answer(request, taskId, operator, actor);
    if (method === 'POST' && action === '/cancel') return this.cancel(request, taskId, operator, actor);
    if (method === 'POST' && action === '/retry') return this.retry(request, taskId, operator, actor);
    return message(base, 405, 'Method not allowed', undefined, operator);
  }

  private asset(name: string): Response {
    const body = this.assets.get(name);
    if (!body) return new Response(null, { status: 404 });
    return new Response(body, { status: 200, headers: { 'content-type': ASSETS[name]!.type, 'cache-control': 'public, max-age=3600' } });
  }

  private async login(request: Request, url: URL, method: string, peer: string | undefined): Promise<Response> {
    const base = this.basePath;
    if (!this.auth.usesTokens) return redirect(`${base}/`);
    if (method === 'GET') return send(200, loginPage(base));
    if (method !== 'POST') return send(405, loginPage(base));
    if (!sameOriginOf(request, url)) return send(403, loginPage(base, 'Cross-site request refused.'));
    const from = peer ?? 'unknown';
    const retryAfter = this.signInFailures.retryAfterSeconds(from);
    if (retryAfter > 0)
      return send(429, loginPage(base, `Too many refused sign-ins from your address; try again in ${retryAfter} s.`), { 'retry-after': String(retryAfter) });
    const form = await readForm(request);
    if (!form) return send(413, loginPage(base, 'Form too large.'));
    const operator = this.auth.operatorOfToken(form.token?.[0] ?? '');
    if (!operator) {
      this.signInFailures.add(from);
      this.deps.logger.info({ component: 'console', peer: from }, 'console sign-in refused');
      return send(401, loginPage(base, 'That is not an operator token.'));
    }
    this.deps.logger.info({ component: 'console', operator }, 'operator signed in to the console');
    return new Response(null, { status: 303, headers: { location: `${base}/`, 'set-cookie': this.auth.sessionCookie(operator, isHttps(request, url)) } });
  }

  private async listView(url: URL, operator: string): Promise<ListView> {
    const q = url.searchParams;
    const pick = (name: string) => q.get(name)?.trim() || undefined;
    const filters: ListFilters = {
      ...(STATUSES.includes(pick('status') as TaskStatus) && { status: pick('status') as TaskStatus }),
      ...(pick('tool') && { tool: pick('tool') }),
      ...(pick('principal') && { principal: pick('principal') }),
      ...(pick('from') && { from: isoOf(pick('from')!) }),
      ...(pick('to') && { to: isoOf(pick('to')!) }),
      ...(pick('stalled') === '1' && { stalled: '1' }),
      ...(pick('cursor') && { cursor: pick('cursor') }),
    };
    const unknownStatus = pick('status') !== undefined && filters.status === undefined;
    const store = this.deps.runtime.store;
    const counts = await store.statusCounts(ENGINE_ACCESS);
    const toolErrors = counts.completedWithToolError ?? 0;
    const base = {
      // As the console shows statuses (see `shownStatus`): tasks that completed with a tool error are failures.
      counts: { ...counts.counts, completed: counts.counts.completed - toolErrors, failed: counts.counts.failed + toolErrors },
      ...(counts.oldestInputRequiredAt && { oldestInputRequiredAt: counts.oldestInputRequiredAt }),
      filters,
      tools: this.deps.toolNames(),
      now: Date.now(),
      operator,
      base: this.basePath,
    };
    try {
      const page = await store.listAll(
        {
          // Tool errors listed under failed, not completed (see `shownStatus`); a live status needs no such reading.
          ...(filters.status && { statuses: [filters.status], ...(isTerminal(filters.status) && { toolErrorsAsFailed: true }) }),
          ...(filters.tool && { tool: filters.tool }),
          ...(filters.principal && { owner: filters.principal === '-' ? null : filters.principal }),
          ...(filters.from && { createdFrom: filters.from }),
          ...(filters.to && { createdTo: filters.to }),
          ...(filters.stalled && { stalled: true }),
          ...(filters.cursor && { cursor: filters.cursor }),
          limit: this.pageSize,
        },
        ENGINE_ACCESS,
      );
      const overdue =
        !filters.cursor && (!filters.status || filters.status === 'input_required')
          ? await listOverdue(
              store,
              { ...(filters.tool && { tool: filters.tool }), ...(filters.principal && { owner: filters.principal === '-' ? null : filters.principal }) },
              base.now,
            )
          : [];
      return {
        ...base,
        ...(overdue.length > 0 && { overdue }),
        tasks: page.tasks,
        ...(page.nextCursor && { nextCursor: page.nextCursor }),
        ...(unknownStatus && { notice: `Unknown status ${JSON.stringify(pick('status'))}: showing every status` }),
      };
    } catch (error) {
      if (!(error instanceof InvalidArgumentError) && !(error instanceof InvalidCursorError)) throw error;
      return { ...base, tasks: [], notice: error.message };
    }
  }

  private async taskView(taskId: string, operator: string): Promise<TaskView | undefined> {
    const store = this.deps.runtime.store;
    let task: TaskRecord;
    try {
      task = await store.get(taskId, ENGINE_ACCESS);
    } catch (error) {
      if (error instanceof TaskNotFoundError) return undefined;
      throw error;
    }
    const journal = await store.readJournal(taskId);
    const answerOf = (key: string) => {
      const value = journal.get(inputKey(key));
      try {
        return store.secrets ? store.secrets.open(value) : value;
      } catch {
        return undefined;
      }
    };
    const now = Date.now();
    const askedAt = Object.fromEntries(
      Object.keys(task.inputRequests).flatMap((key) => {
        const at = (journal.get(askedKey(key)) as { at?: unknown } | undefined)?.at;
        return typeof at === 'string' ? [[key, at]] : [];
      }),
    );
    const deliveries = await store.deliveries(taskId);
    return {
      task,
      args: this.redacted(task),
      timeline: buildTimeline(task, journal, answerOf, now),
      now,
      operator,
      base: this.basePath,
      askedAt,
      deliveries,
      ...(this.deps.runtime.canRetry(task) && { retrySteps: stepsOf(journal) }),
    };
  }

  private redacted(task: TaskRecord): JsonObject {
    const hidden = new Set(this.deps.sensitiveFields(task.request.tool) ?? []);
    return Object.fromEntries(
      Object.entries(task.request.arguments).map(([key, value]) => [key, hidden.has(key) || isSealed(value) ? '[redacted]' : value]),
    ) as JsonObject;
  }

  private async showTask(taskId: string, operator: string, status: number, panel: boolean, extra?: Partial<TaskView>): Promise<Response> {
    const view = await this.taskView(taskId, operator);
    if (!view) return message(this.basePath, 404, 'No such task', html`It never existed or has expired. <a href="${this.basePath}/">All tasks</a>`, operator);
    const full = { ...view, ...extra };
    return send(status, panel ? taskPanel(full) : taskPage(full));
  }

  private async answer(request: Request, taskId: string, operator: string, actor: Actor): Promise<Response> {
    const form = await readForm(request);
    if (!form) return message(this.basePath, 413, 'Form too large', undefined, operator);
    const key = form.key?.[0] ?? '';
    const action = form.action?.[0] ?? 'accept';
    const view = await this.taskView(taskId, operator);
    if (!view) return this.showTask(taskId, operator, 404, false);
    const question = view.task.inputRequests[key];
    if (!question || question.kind !== 'elicitation')
      return this.showTask(taskId, operator, 409, false, {
        refusal: { message: 'This question is no longer waiting for an answer (answered elsewhere, withdrawn, or the task ended).' },
      });
    if (action !== 'accept' && action !== 'decline')
      return this.showTask(taskId, operator, 400, false, { refusal: { key, message: `Unknown action ${JSON.stringify(action)}` } });
    const content = action === 'accept' ? contentFromForm(question.requestedSchema, form) : undefined;
    if (form.confirm?.[0] !== 'yes') {
      // Checked before the review too (the same rule the store applies), so nothing is confirmed that would be refused.
      const check = checkInputAnswer(question, { action, ...(content && { content }) });
      if (!check.valid)
        return this.showTask(taskId, operator, 422, false, {
          refusal: { key, message: 'The answer does not fit the question.', problems: check.problems },
          previous: form,
        });
      return send(200, confirmAnswerPage(this.basePath, view.task, key, action, content, form, operator));
    }
    try {
      const taken = await this.deps.runtime.provideInputs(taskId, { [key]: { action, ...(content && { content }) } }, ENGINE_ACCESS, actor);
      if (taken.length === 0)
        return await this.showTask(taskId, operator, 409, false, {
          refusal: { message: 'This question is no longer waiting for an answer (answered elsewhere meanwhile).' },
        });
    } catch (error) {
      if (error instanceof InvalidAnswerError)
        return this.showTask(taskId, operator, 422, false, {
          refusal: { key, message: 'The answer does not fit the question.', problems: Object.values(error.problems).flat() },
          previous: form,
        });
      if (error instanceof TaskNotFoundError || error instanceof IllegalTransitionError)
        return this.showTask(taskId, operator, 409, false, { refusal: { message: error.message } });
      throw error;
    }
    return redirect(`${this.basePath}/tasks/${taskId}`);
  }

  private async cancel(request: Request, taskId: string, operator: string, actor: Actor): Promise<Response> {
    const form = await readForm(request);
    if (!form) return message(this.basePath, 413, 'Form too large', undefined, operator);
    if (form.confirm?.[0] !== 'yes') return this.showTask(taskId, operator, 400, false, { refusal: { message: 'Cancelling needs a confirmation.' } });
    try {
      await this.deps.runtime.cancel(taskId, ENGINE_ACCESS, actor);
    } catch (error) {
      if (error instanceof IllegalTransitionError) return this.showTask(taskId, operator, 409, false, { refusal: { message: 'The task has already ended.' } });
      if (error instanceof TaskNotFoundError) return this.showTask(taskId, operator, 404, false);
      throw error;
    }
    return redirect(`${this.basePath}/tasks/${taskId}`);
  }

  /**
   * POST `<basePath>/tasks/<id>/retry` (form: `from` — `stopped` (default), `start` or
   * `step/<name>`; `clearAnswers=yes`; `confirm=yes`): `TaskRuntime.retry` on behalf of the operator, then a 303 to
   * the task that runs it again (a new one for a failed task). Refusals (an unknown step, a task
   * that may not be run again) show the task's page with the reason (400/404/409). A script asking
   * for `Accept: application/json` (the CLI's `mcp-tasks retry`) gets JSON instead: 200 `{ taskId,
   * inPlace }`, or the same status codes with `{ error }`.
   */
  private async retry(request: Request, taskId: string, operator: string, actor: Actor): Promise<Response> {
    const json = /application\/json/.test(request.headers.get('accept') ?? '');
    const refuse = async (status: number, reason: string) =>
      json ? Response.json({ error: reason }, { status }) : this.showTask(taskId, operator, status, false, { refusal: { message: reason } });
    const form = await readForm(request);
    if (!form) return json ? Response.json({ error: 'Form too large' }, { status: 413 }) : message(this.basePath, 413, 'Form too large', undefined, operator);
    if (form.confirm?.[0] !== 'yes') return refuse(400, 'Running a task again needs a confirmation (confirm=yes).');
    const given = form.from?.[0] ?? 'stopped';
    const from: RetryFrom = given.startsWith('step/') ? { step: given.slice('step/'.length) } : given === 'start' ? 'start' : 'stopped';
    if (!given.startsWith('step/') && given !== 'start' && given !== 'stopped') return refuse(400, `Unknown starting point ${JSON.stringify(given)}`);
    try {
      const again = await this.deps.runtime.retry(taskId, { from, clearAnswers: form.clearAnswers?.[0] === 'yes', by: actor });
      return json ? Response.json(again) : redirect(`${this.basePath}/tasks/${again.taskId}`);
    } catch (error) {
      if (error instanceof TaskNotFoundError)
        return json ? Response.json({ error: error.message }, { status: 404 }) : this.showTask(taskId, operator, 404, false);
      if (error instanceof IllegalTransitionError) return refuse(409, error.message);
      if (error instanceof InvalidArgumentError) return refuse(400, error.message);
      throw error;
    }
  }

  /**
   * `<basePath>/events`: server-sent events on store changes (see the class comment), until the
   * client goes away (`request.signal` aborts, or the body is cancelled) or `close()`.
   */
  private stream(request: Request): Response {
    const signal = request.signal;
    let stream!: ReadableStreamDefaultController<Uint8Array>;
    const release = () => signal.removeEventListener('abort', gone);
    const drop = () => {
      release();
      if (this.streams.delete(stream) && this.streams.size === 0) this.stopListening();
    };
    const gone = () => {
      drop();
      stream.close();
    };
    const body = new ReadableStream<Uint8Array>({
      start: (controller) => {
        stream = controller;
        controller.enqueue(encoder.encode(': connected\n\n'));
      },
      cancel: drop,
    });
    this.streams.set(stream, release);
    this.listen();
    if (signal.aborted) gone();
    else signal.addEventListener('abort', gone, { once: true });
    return new Response(body, { status: 200, headers: SSE_HEADERS });
  }

  private listen(): void {
    if (this.unsubscribe) return;
    this.unsubscribe = this.deps.runtime.store.onChange((task) => {
      this.changed.set(task.taskId, task.status);
      this.flushTimer ??= setTimeout(() => this.flush(), SSE_FLUSH_MS);
    });
    this.keepAlive = setInterval(() => this.broadcast(': keep-alive\n\n'), SSE_KEEPALIVE_MS);
    this.keepAlive.unref();
  }

  private stopListening(): void {
    this.unsubscribe?.();
    this.unsubscribe = undefined;
    if (this.flushTimer) clearTimeout(this.flushTimer);
    this.flushTimer = undefined;
    if (this.keepAlive) clearInterval(this.keepAlive);
    this.keepAlive = undefined;
    this.changed.clear();
  }

  private flush(): void {
    this.flushTimer = undefined;
    let message = `event: tasks\ndata: ${this.changed.size}\n\n`;
    for (const [taskId, status] of [...this.changed].slice(0, SSE_TASKS_PER_FLUSH)) {
      message += `event: task-${taskId}\ndata: ${status}\n\n`;
      this.changed.delete(taskId);
    }
    this.broadcast(message);
    if (this.changed.size > 0) this.flushTimer = setTimeout(() => this.flush(), SSE_FLUSH_MS); // the rest next time
  }

  /** Sends `text` on every open event stream. */
  private broadcast(text: string): void {
    const bytes = encoder.encode(text);
    for (const stream of this.streams.keys()) stream.enqueue(bytes);
  }
}

/**
 * `basePath` normalized (a leading slash, none trailing; `''` for the root), or
 * `InvalidArgumentError` (see `ConsoleOptions.basePath`).
 */
function normalizeBasePath(value: string): string {
  const trimmed = typeof value === 'string' ? value.replace(/\/+$/, '') : undefined;
  const path = trimmed === undefined || trimmed === '' || trimmed.startsWith('/') ? trimmed : `/${trimmed}`;
  if (
    path === undefined ||
    !path
      .split('/')
      .slice(1)
      .every((segment) => BASE_SEGMENT.test(segment) && segment !== '.' && segment !== '..')
  )
    throw new InvalidArgumentError(
      `Invalid console basePath ${JSON.stringify(value)}: a path such as /console or /ops/console, whose segments hold only letters, digits and -._~!$&()*+=:@ (no ., .. or empty segment)`,
    );
  return path;
}

/** A short page of the console under `base`: `title` as its heading and an optional line of `text`; `headers` added to the page's. */
function message(base: string, status: number, title: string, text?: Html, operator?: string, headers?: Record<string, string>): Response {
  return send(
    status,
    layout(
      base,
      title,
      html`<h1>${title}</h1>
        ${text ? html`<p>${text}</p>` : ''}`,
      operator,
    ),
    headers,
  );
}

/** A page: `body` with the console's HTML headers (no caching, no framing, CSP) and `extra`. */
function send(status: number, body: Html, extra?: Record<string, string>): Response {
  return new Response(body.value, { status, headers: { ...HTML_HEADERS, ...extra } });
}

function redirect(location: string): Response {
  return new Response(null, { status: 303, headers: { location } });
}

/** The host a request was sent to: its `Host` header, else its URL's host (a `Request` built by a host may carry none). */
function hostOf(request: Request, url: URL): string {
  return request.headers.get('host') ?? url.host;
}

/** `sameOrigin` for a request (see `hostOf`). */
function sameOriginOf(request: Request, url: URL): boolean {
  return sameOrigin(request.headers, hostOf(request, url));
}

/**
 * The fields of an `application/x-www-form-urlencoded` body (name → values), or undefined when over
 * 64 KiB — the rest of the body is then left unread (`node` closes the connection after the answer).
 */
async function readForm(request: Request): Promise<Record<string, string[]> | undefined> {
  const read = await readRequestBody(request, MAX_FORM_BYTES);
  if (read.tooLarge) {
    request.body?.cancel().catch(() => undefined);
    return undefined;
  }
  const form: Record<string, string[]> = {};
  for (const [name, value] of new URLSearchParams(read.text)) (form[name] ??= []).push(value);
  return form;
}

/**
 * A Node request body's chunks until more than `max` bytes have come (the chunk that passes `max`
 * included, so the reader sees the body is too long); then `cut` is called and the rest is left
 * unread.
 */
async function* bodyUpTo(body: AsyncIterable<unknown>, max: number, cut: () => void): AsyncGenerator<unknown> {
  let size = 0;
  for await (const chunk of body) {
    yield chunk;
    size += typeof chunk === 'string' ? Buffer.byteLength(chunk) : (chunk as Uint8Array).byteLength;
    if (size > max) return cut();
  }
}

/** A `datetime-local` value (no zone: taken as UTC) or an ISO 8601 string, as ISO 8601; anything else unchanged (the store refuses it). */
function isoOf(value: string): string {
  const normalized = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2})?$/.test(value) ? `${value}Z` : value;
  const ms = Date.parse(normalized);
  return Number.isNaN(ms) ? value : new Date(ms).toISOString();
}

function isSealed(value: Json | undefined): boolean {
  return typeof value === 'object' && value !== null && !Array.isArray(value) && '$sealed' in value;
}

/** Whether the browser reached us over HTTPS (an `https:` URL, or a proxy that says so): the session cookie is then `Secure`. */
function isHttps(request: Request, url: URL): boolean {
  return url.protocol === 'https:' || request.headers.get('x-forwarded-proto') === 'https';
}

/** Failures per key (a peer address) within a sliding window, bounded to 10,000 keys (the oldest dropped first). */
class FailureWindow {
  private readonly seen = new Map<string, number[]>();

  constructor(
    private readonly limit: number,
    private readonly windowMs: number,
  ) {}

  add(key: string): void {
    const now = Date.now();
    const times = (this.seen.get(key) ?? []).filter((t) => t > now - this.windowMs);
    times.push(now);
    this.seen.delete(key);
    this.seen.set(key, times);
    if (this.seen.size > 10_000) this.seen.delete(this.seen.keys().next().value!);
  }

  /** 0 when `key` may try again now, else how many seconds until its oldest failure leaves the window. */
  retryAfterSeconds(key: string): number {
    const now = Date.now();
    const times = (this.seen.get(key) ?? []).filter((t) => t > now - this.windowMs);
    if (times.length < this.limit) return 0;
    return Math.max(1, Math.ceil((times[0]! + this.windowMs - now) / 1000));
  }
}
