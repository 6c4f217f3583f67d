import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { ENGINE_ACCESS } from '../../core/access.js';
import { IllegalTransitionError, InvalidAnswerError, InvalidArgumentError, InvalidCursorError, TaskNotFoundError } from '../../core/errors.js';
import { askedKey, inputKey, type Actor } from '../../core/journal-keys.js';
import type { Json, JsonObject } from '../../core/json.js';
import type { Logger } from '../../core/log.js';
import { isTerminal, type TaskStatus } from '../../core/status.js';
import type { TaskRecord } from '../../core/task.js';
import type { TaskRuntime } from '../../runtime/runtime.js';
import { ConsoleAuth, sameOrigin } from './auth.js';
import { contentFromForm } from './form.js';
import { CONSOLE_CSS } from './styles.js';
import { CONSOLE_JS } from './script.js';
import { checkInputAnswer } from '../../core/input-answers.js';
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

const ASSETS: Record<string, { type: string; file?: string; text?: string }> = {
  'htmx.min.js': { type: 'text/javascript; charset=utf-8', file: 'htmx.org/dist/htmx.min.js' },
  'sse.js': { type: 'text/javascript; charset=utf-8', file: 'htmx-ext-sse/dist/sse.min.js' },
  'pico.min.css': { type: 'text/css; charset=utf-8', file: '@picocss/pico/css/pico.min.css' },
  'console.css': { type: 'text/css; charset=utf-8', text: CONSOLE_CSS },
  'console.js': { type: 'text/javascript; charset=utf-8', text: CONSOLE_JS },
};

const MAX_FORM_BYTES = 64 * 1024;
const SSE_FLUSH_MS = 300;
const SSE_KEEPALIVE_MS = 15_000;
const SSE_TASKS_PER_FLUSH = 500;
/** Refused sign-ins allowed per peer address within `SIGN_IN_WINDOW_MS` before it must wait (HTTP 429). */
const SIGN_IN_FAILURES = 10;
const SIGN_IN_WINDOW_MS = 5 * 60_000;
const TASK_ID = /^\/console\/tasks\/([A-Za-z0-9_-]{1,128})(\/panel|\/answer|\/cancel)?$/;

/**
 * The operator console: a web page served by the task server itself under `/console/` that shows
 * every task in the store (every principal's: see `ConsoleAuth` for who may open it) and lets an
 * operator answer pending form questions and cancel tasks, through the same runtime path a client
 * uses (`TaskRuntime.provideInputs` / `cancel`, validated; journaled with the operator's name).
 *
 * Pages are HTML rendered here; live updates come from the store's change events, pushed to the
 * browser as server-sent events (`/console/events`: `tasks` on any change, `task-<taskId>` for one
 * task, coalesced every 300 ms) on which htmx re-fetches the visible fragment — no polling. The
 * coalescing is here, not in the page: a page-side throttle drops the events after the first, and
 * with them the task's last state. Every
 * instance sharing a store serves the same view (shared backends deliver other instances' writes).
 * Assets (htmx, its SSE extension, Pico CSS) are served from the installed packages: no CDN.
 */
export class OperatorConsole {
  private readonly auth: ConsoleAuth;
  private readonly streams = new Set<ServerResponse>();
  private readonly changed = new Map<string, TaskStatus>();
  private unsubscribe?: () => void;
  private flushTimer?: NodeJS.Timeout;
  private keepAlive?: NodeJS.Timeout;
  private readonly pageSize: number;
  private readonly assets = new Map<string, Buffer>();
  private readonly signInFailures = new FailureWindow(SIGN_IN_FAILURES, SIGN_IN_WINDOW_MS);

  constructor(
    private readonly deps: ConsoleDeps,
    options: ConsoleOptions = {},
  ) {
    this.auth = new ConsoleAuth(options.operatorTokens, options.sessionMs);
    this.pageSize = options.pageSize ?? 25;
    const require = createRequire(import.meta.url);
    for (const [name, asset] of Object.entries(ASSETS))
      this.assets.set(name, asset.text !== undefined ? Buffer.from(asset.text) : readFileSync(require.resolve(asset.file!)));
  }

  /** Whether operators sign in with tokens (else the console answers loopback peers only). */
  get usesTokens(): boolean {
    return this.auth.usesTokens;
  }

  /**
   * Answers one request under `/console`. Never throws: errors become pages or status codes — the
   * task store unavailable (`StoreUnavailableError`) a 503 page with `Retry-After` saying so, logged
   * at debug only (the store logs each outage once); other faults a 500 page, logged with the stack.
   */
  async handle(req: IncomingMessage, res: ServerResponse, url: URL): Promise<void> {
    try {
      await this.route(req, res, url);
    } catch (error) {
      const outage = storeUnavailableError(error);
      if (outage) {
        this.deps.logger.debug({ component: 'console', error: outage.message }, 'console request answered 503: the task store is unavailable');
        if (res.headersSent) return void res.end();
        res.setHeader('retry-after', outageHeaders(toErrorObject(outage))!.headers['retry-after']);
        const read = req.method === 'GET';
        // Back to the same view; after a refused answer or cancel, the task's page (its form can be sent again).
        const again = read ? `${url.pathname}${url.search}` : url.pathname.replace(/\/(answer|cancel)$/, '');
        return message(
          res,
          503,
          'Task store unavailable',
          html`The task store cannot be reached right now, so tasks can be neither shown nor
            changed${read ? '' : html` (look at the task again once the store is back: what you sent may not have been taken)`}. The server keeps running and
            carries on when the store is back: <a href="${again}">try again</a> in a few seconds.`,
        );
      }
      this.deps.logger.error({ err: error, component: 'console' }, 'console request failed');
      if (!res.headersSent) message(res, 500, 'Something went wrong', html`The error is in the server log.`);
      else res.end();
    }
  }

  /** Ends every live stream and stops listening to the store. */
  close(): void {
    for (const res of this.streams) res.end();
    this.streams.clear();
    this.stopListening();
  }

  private async route(req: IncomingMessage, res: ServerResponse, url: URL): Promise<void> {
    const path = url.pathname;
    const method = req.method ?? 'GET';
    if (path.startsWith('/console/assets/')) return this.asset(res, path.slice('/console/assets/'.length));
    if (path === '/console') return redirect(res, '/console/');
    if (path === '/console/login') return this.login(req, res, method);
    if (path === '/console/logout' && method === 'POST') {
      if (!sameOrigin(req)) return message(res, 403, 'Forbidden', html`Cross-site request refused.`);
      this.deps.logger.info({ component: 'console', operator: this.auth.operatorOf(req) }, 'operator signed out of the console');
      res.writeHead(303, { location: '/console/login', 'set-cookie': ConsoleAuth.clearCookie() }).end();
      return;
    }
    const match = TASK_ID.exec(path);
    const operator = this.auth.operatorOf(req);
    if (!operator) {
      if (!this.auth.usesTokens) return message(res, 403, 'Forbidden', html`Without operator tokens, the console answers only on this machine (loopback).`);
      const page = path === '/console/' || (match !== null && match[2] === undefined);
      if (method === 'GET' && page) return redirect(res, '/console/login'); // fragments and streams get 401
      return message(res, 401, 'Sign in required', html`<a href="/console/login">Sign in</a>`);
    }
    if (method === 'POST' && !sameOrigin(req)) return message(res, 403, 'Forbidden', html`Cross-site request refused.`);
    const actor: Actor = { role: 'operator', name: operator };
    if (path === '/console/' && method === 'GET') return send(res, 200, listPage(await this.listView(url, operator)));
    if (path === '/console/list' && method === 'GET') return send(res, 200, listFragment(await this.listView(url, operator)));
    if (path === '/console/events' && method === 'GET') return this.stream(req, res);
    if (!match) return message(res, 404, 'Not found', undefined, operator);
    const [, taskId, action] = match as unknown as [string, string, string | undefined];
    if (method === 'GET' && action === undefined) return this.showTask(res, taskId, operator, 200, false);
    if (method === 'GET' && action === '/panel') return this.showTask(res, taskId, operator, 200, true);
    if (method === 'POST' && action === '/answer') return this.answer(req, res, taskId, operator, actor);
    if (method === 'POST' && action === '/cancel') return this.cancel(req, res, taskId, operator, actor);
    return message(res, 405, 'Method not allowed', undefined, operator);
  }

  private asset(res: ServerResponse, name: string): void {
    const body = this.assets.get(name);
    if (!body) return void res.writeHead(404).end();
    res.writeHead(200, { 'content-type': ASSETS[name]!.type, 'cache-control': 'public, max-age=3600' }).end(body);
  }

  private async login(req: IncomingMessage, res: ServerResponse, method: string): Promise<void> {
    if (!this.auth.usesTokens) return redirect(res, '/console/');
    if (method === 'GET') return send(res, 200, loginPage());
    if (method !== 'POST') return send(res, 405, loginPage());
    if (!sameOrigin(req)) return send(res, 403, loginPage('Cross-site request refused.'));
    const peer = req.socket.remoteAddress ?? 'unknown';
    const retryAfter = this.signInFailures.retryAfterSeconds(peer);
    if (retryAfter > 0) {
      res.setHeader('retry-after', String(retryAfter));
      return send(res, 429, loginPage(`Too many refused sign-ins from your address; try again in ${retryAfter} s.`));
    }
    const form = await readForm(req, res);
    if (!form) return send(res, 413, loginPage('Form too large.'));
    const operator = this.auth.operatorOfToken(form.token?.[0] ?? '');
    if (!operator) {
      this.signInFailures.add(peer);
      this.deps.logger.info({ component: 'console', peer }, 'console sign-in refused');
      return send(res, 401, loginPage('That is not an operator token.'));
    }
    this.deps.logger.info({ component: 'console', operator }, 'operator signed in to the console');
    res.writeHead(303, { location: '/console/', 'set-cookie': this.auth.sessionCookie(operator, isHttps(req)) }).end();
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
          ...(filters.cursor && { cursor: filters.cursor }),
          limit: this.pageSize,
        },
        ENGINE_ACCESS,
      );
      return {
        ...base,
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
    return { task, args: this.redacted(task), timeline: buildTimeline(task, journal, answerOf, now), now, operator, askedAt };
  }

  private redacted(task: TaskRecord): JsonObject {
    const hidden = new Set(this.deps.sensitiveFields(task.request.tool) ?? []);
    return Object.fromEntries(
      Object.entries(task.request.arguments).map(([key, value]) => [key, hidden.has(key) || isSealed(value) ? '[redacted]' : value]),
    ) as JsonObject;
  }

  private async showTask(res: ServerResponse, taskId: string, operator: string, status: number, panel: boolean, extra?: Partial<TaskView>): Promise<void> {
    const view = await this.taskView(taskId, operator);
    if (!view) return message(res, 404, 'No such task', html`It never existed or has expired. <a href="/console/">All tasks</a>`, operator);
    const full = { ...view, ...extra };
    send(res, status, panel ? taskPanel(full) : taskPage(full));
  }

  private async answer(req: IncomingMessage, res: ServerResponse, taskId: string, operator: string, actor: Actor): Promise<void> {
    const form = await readForm(req, res);
    if (!form) return message(res, 413, 'Form too large', undefined, operator);
    const key = form.key?.[0] ?? '';
    const action = form.action?.[0] ?? 'accept';
    const view = await this.taskView(taskId, operator);
    if (!view) return this.showTask(res, taskId, operator, 404, false);
    const question = view.task.inputRequests[key];
    if (!question || question.kind !== 'elicitation')
      return this.showTask(res, taskId, operator, 409, false, {
        refusal: { message: 'This question is no longer waiting for an answer (answered elsewhere, withdrawn, or the task ended).' },
      });
    if (action !== 'accept' && action !== 'decline')
      return this.showTask(res, taskId, operator, 400, false, { refusal: { key, message: `Unknown action ${JSON.stringify(action)}` } });
    const content = action === 'accept' ? contentFromForm(question.requestedSchema, form) : undefined;
    if (form.confirm?.[0] !== 'yes') {
      // Checked before the review too (the same rule the store applies), so nothing is confirmed that would be refused.
      const check = checkInputAnswer(question, { action, ...(content && { content }) });
      if (!check.valid)
        return this.showTask(res, taskId, operator, 422, false, {
          refusal: { key, message: 'The answer does not fit the question.', problems: check.problems },
          previous: form,
        });
      return send(res, 200, confirmAnswerPage(view.task, key, action, content, form, operator));
    }
    try {
      const taken = await this.deps.runtime.provideInputs(taskId, { [key]: { action, ...(content && { content }) } }, ENGINE_ACCESS, actor);
      if (taken.length === 0)
        return await this.showTask(res, taskId, operator, 409, false, {
          refusal: { message: 'This question is no longer waiting for an answer (answered elsewhere meanwhile).' },
        });
    } catch (error) {
      if (error instanceof InvalidAnswerError)
        return this.showTask(res, taskId, operator, 422, false, {
          refusal: { key, message: 'The answer does not fit the question.', problems: Object.values(error.problems).flat() },
          previous: form,
        });
      if (error instanceof TaskNotFoundError || error instanceof IllegalTransitionError)
        return this.showTask(res, taskId, operator, 409, false, { refusal: { message: error.message } });
      throw error;
    }
    redirect(res, `/console/tasks/${taskId}`);
  }

  private async cancel(req: IncomingMessage, res: ServerResponse, taskId: string, operator: string, actor: Actor): Promise<void> {
    const form = await readForm(req, res);
    if (!form) return message(res, 413, 'Form too large', undefined, operator);
    if (form.confirm?.[0] !== 'yes') return this.showTask(res, taskId, operator, 400, false, { refusal: { message: 'Cancelling needs a confirmation.' } });
    try {
      await this.deps.runtime.cancel(taskId, ENGINE_ACCESS, actor);
    } catch (error) {
      if (error instanceof IllegalTransitionError)
        return this.showTask(res, taskId, operator, 409, false, { refusal: { message: 'The task has already ended.' } });
      if (error instanceof TaskNotFoundError) return this.showTask(res, taskId, operator, 404, false);
      throw error;
    }
    redirect(res, `/console/tasks/${taskId}`);
  }

  /** `/console/events`: server-sent events on store changes (see the class comment). */
  private stream(req: IncomingMessage, res: ServerResponse): void {
    res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache', connection: 'keep-alive', 'x-accel-buffering': 'no' });
    res.write(': connected\n\n');
    this.streams.add(res);
    this.listen();
    const drop = () => {
      this.streams.delete(res);
      if (this.streams.size === 0) this.stopListening();
    };
    req.on('close', drop);
    res.on('close', drop);
  }

  private listen(): void {
    if (this.unsubscribe) return;
    this.unsubscribe = this.deps.runtime.store.onChange((task) => {
      this.changed.set(task.taskId, task.status);
      this.flushTimer ??= setTimeout(() => this.flush(), SSE_FLUSH_MS);
    });
    this.keepAlive = setInterval(() => {
      for (const res of this.streams) res.write(': keep-alive\n\n');
    }, SSE_KEEPALIVE_MS);
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
    for (const res of this.streams) res.write(message);
    if (this.changed.size > 0) this.flushTimer = setTimeout(() => this.flush(), SSE_FLUSH_MS); // the rest next time
  }
}

/** A short page: `title` as its heading and an optional line of `text`. */
function message(res: ServerResponse, status: number, title: string, text?: Html, operator?: string): void {
  send(
    res,
    status,
    layout(
      title,
      html`<h1>${title}</h1>
        ${text ? html`<p>${text}</p>` : ''}`,
      operator,
    ),
  );
}

function send(res: ServerResponse, status: number, body: Html): void {
  res
    .writeHead(status, {
      'content-type': 'text/html; charset=utf-8',
      'cache-control': 'no-store',
      'x-frame-options': 'DENY',
      'content-security-policy': "default-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; frame-ancestors 'none'",
      'referrer-policy': 'same-origin',
    })
    .end(body.value);
}

function redirect(res: ServerResponse, location: string): void {
  res.writeHead(303, { location }).end();
}

/**
 * The fields of an `application/x-www-form-urlencoded` body (name → values), or undefined when over
 * 64 KiB — the rest of the body is then left unread, so the connection is closed after the answer.
 */
async function readForm(req: IncomingMessage, res: ServerResponse): Promise<Record<string, string[]> | undefined> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req) {
    size += (chunk as Buffer).length;
    if (size > MAX_FORM_BYTES) {
      res.shouldKeepAlive = false;
      return undefined;
    }
    chunks.push(chunk as Buffer);
  }
  const form: Record<string, string[]> = {};
  for (const [name, value] of new URLSearchParams(Buffer.concat(chunks).toString('utf8'))) (form[name] ??= []).push(value);
  return form;
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

/** Whether the browser reached us over HTTPS (directly, or through a proxy that says so): the session cookie is then `Secure`. */
function isHttps(req: IncomingMessage): boolean {
  return (req.socket as { encrypted?: boolean }).encrypted === true || req.headers['x-forwarded-proto'] === 'https';
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
