import { InvalidArgumentError } from 'commander';
import type { TaskOutcome, TaskView } from '@modelcontextprotocol/ext-tasks/client';
import { taskId as toTaskId } from '@modelcontextprotocol/ext-tasks/core';
import { Endpoint } from '../client/endpoint.js';
import { SdkError } from '@modelcontextprotocol/client';
import { isTerminal } from '../core/status.js';
import { busyRetryMs, describeError, isTransient, jsonRpcCode, unavailableRetryMs } from '../client/errors.js';
import { TaskFollower, type FollowResult } from '../client/follower.js';
import { KnownTasks } from '../client/known-tasks.js';
import { statusLine, terminalAsker, type QuestionContext } from '../client/prompt.js';
import { parseAnswer } from '../client/questions.js';
import { statusKey, statusText } from './render.js';
import type { ProtocolVersion } from '../core/protocol-version.js';

/** Exit codes: 0 completed, 1 failed or error, 2 cancelled, 3 detached (task goes on / needs input / interrupted). */
export const EXIT = { completed: 0, failed: 1, cancelled: 2, detached: 3 } as const;

/** The options every command that talks to a server shares. */
export interface RunOptions {
  /** `--journal`: the folder of the client's task list (see `KnownTasks`). */
  journal: string;
  /** `--protocol`; undefined: a known task's own protocol version, else auto. */
  protocol?: 'auto' | ProtocolVersion;
  json?: boolean;
  answer?: string;
  header?: string[];
  token?: string;
}

/** A task waiting for input, as `pending` lists it. */
export interface PendingTask {
  taskId: string;
  url: string;
  tool?: string;
  summary?: string;
  question?: string;
  statusMessage?: string;
  /** `journal`, `server` (tasks/list) or both. */
  source: string;
}

/**
 * One CLI command's run: the journal, one endpoint per (URL, protocol version), the follower with its asker, and
 * Ctrl-C handling (detach: stop following and send nothing). `Run.with` prints every result and sets
 * the exit code (`EXIT`).
 */
export class Run {
  /** The tasks this client started (`--journal`). */
  readonly known: KnownTasks;
  readonly log = statusLine;
  private readonly stop = new AbortController();
  private readonly endpoints = new Map<string, Endpoint>();
  /** The endpoint each followed task lives on (for commands printed for the person). */
  private readonly urls = new Map<string, string>();
  private readonly follower: TaskFollower;
  private readonly headers: Record<string, string>;

  private constructor(private readonly opts: RunOptions) {
    this.known = new KnownTasks(opts.journal);
    this.headers = headersOf(opts);
    let fixed;
    if (opts.answer !== undefined) {
      try {
        fixed = parseAnswer(opts.answer);
      } catch (error) {
        throw new InvalidArgumentError((error as Error).message);
      }
    }
    const asker = terminalAsker({ ...(fixed && { fixed }), interactive: Boolean(process.stdin.isTTY && process.stderr.isTTY), log: this.log });
    this.follower = new TaskFollower(asker, (reason) => this.stop.abort(new Error(reason)));
  }

  /** Runs `work` with Ctrl-C detaching, then prints each result and sets the exit code; closes every connection. */
  static async with(opts: RunOptions, work: (run: Run) => Promise<FollowResult[]>): Promise<void> {
    const run = new Run(opts);
    const onSigint = () => run.stop.abort(new Error('interrupted; nothing was sent, the task goes on on the server'));
    process.on('SIGINT', onSigint);
    try {
      for (const result of await work(run)) run.report(result);
    } finally {
      process.off('SIGINT', onSigint);
      await Promise.all([...run.endpoints.values()].map((e) => e.close()));
    }
  }

  get signal(): AbortSignal {
    return this.stop.signal;
  }

  stopReason(): string {
    const reason = this.stop.signal.reason;
    return reason instanceof Error ? reason.message : 'stopped';
  }

  /** `promise`, or `undefined` once the run is stopped (Ctrl-C, a question left unanswered). */
  untilStopped<T>(promise: Promise<T>): Promise<T | undefined> {
    const signal = this.stop.signal;
    if (signal.aborted) return Promise.resolve(undefined);
    return new Promise<T | undefined>((resolve, reject) => {
      const onAbort = () => resolve(undefined);
      signal.addEventListener('abort', onAbort, { once: true });
      promise.then(resolve, reject).finally(() => signal.removeEventListener('abort', onAbort));
    });
  }

  /**
   * `attempt()`, tried again while the server answers busy (HTTP 503/429, see `busyRetryMs`: it did
   * nothing with the request, so sending it again creates nothing twice), after the delay it asks
   * for (at least 1 s, at most 30 s), up to 10 tries; other errors and the last busy answer are
   * thrown. Resolves undefined when the run is stopped (Ctrl-C) while waiting.
   *
   * The server's "temporarily unavailable" answer (its task store is down: JSON-RPC -32010, HTTP
   * 503; see `unavailableRetryMs`) depends on `resend`: `'safe'` (a request that may be sent again
   * as it is: a read, a cancellation) retries it too, waiting at least what the server asks for and
   * backing off to 30 s, up to 10 tries; `'creates'` (default: a request that creates a task) throws
   * an `Error` saying that nothing was sent again and why — the server may have stored the task
   * before it failed, and a second call could start the work twice. `'idempotent'` (a request that
   * creates a task, carrying an idempotency key the server declared it honors: SEP-3182) retries
   * like `'safe'`, and also a request whose reply was lost (`isTransient`: a cut connection, a
   * timeout), after 1 s, since a retry with the same key gets the task the first one created. `url`
   * names the server in messages.
   */
  async whileBusy<T>(
    what: string,
    attempt: () => Promise<T>,
    options: { url?: string; resend?: 'safe' | 'creates' | 'idempotent' } = {},
  ): Promise<T | undefined> {
    const url = options.url ?? 'the server';
    for (let tries = 1; ; tries++) {
      try {
        return await attempt();
      } catch (error) {
        if (this.stop.signal.aborted) throw error;
        const unavailableMs = unavailableRetryMs(error);
        if (unavailableMs !== undefined && options.resend !== 'safe' && options.resend !== 'idempotent')
          throw new Error(
            `${what}: ${describeError(error, url)}. The call was not sent again: the server may have stored a task before it failed, and a second call could start the work twice. Try again once the server is back.`,
            { cause: error },
          );
        const lost = options.resend === 'idempotent' && unavailableMs === undefined && busyRetryMs(error) === undefined && isTransient(error);
        const retryMs = unavailableMs ?? busyRetryMs(error) ?? (lost ? 1000 : undefined);
        if (retryMs === undefined) throw error;
        const busy = unavailableMs === undefined;
        if (tries >= 10)
          throw new Error(
            busy
              ? `${what}: the server stayed busy through ${tries} tries (HTTP 503); nothing was created, try again later`
              : `${what}: the server stayed unavailable through ${tries} tries (${describeError(error, url)}); try again later${options.resend === 'idempotent' ? ' (the same --idempotency-key gets the task if one was created)' : ''}`,
            { cause: error },
          );
        const waitMs = Math.min(30_000, Math.max(1000, retryMs, busy ? 0 : 250 * 2 ** tries));
        const retry = `retrying in ${Math.round(waitMs / 100) / 10} s`;
        this.log(
          busy
            ? `${what}: the server is busy; ${retry} (Ctrl-C to stop; nothing was created)`
            : `${what}: ${describeError(error, url)}; ${retry}${options.resend === 'idempotent' ? ' with the same idempotency key' : ''} (Ctrl-C to stop)`,
        );
        const stopped = await this.untilStopped(new Promise((resolve) => setTimeout(resolve, waitMs, true)));
        if (!stopped) return undefined;
      }
    }
  }

  /** The shared endpoint for (`url`, `protocolVersion`). */
  endpoint(url: string, protocolVersion: 'auto' | ProtocolVersion): Endpoint {
    const key = `${protocolVersion}\0${url}`;
    let endpoint = this.endpoints.get(key);
    if (!endpoint) {
      endpoint = new Endpoint(url, {
        answer: this.follower.answer,
        onAnswerSent: this.follower.answerSent,
        headers: this.headers,
        protocolVersion,
        onError: () => undefined,
        callRetries: 0, // `whileBusy` sends a lost call again itself, saying so (resend: 'idempotent')
      });
      this.endpoints.set(key, endpoint);
    }
    return endpoint;
  }

  /** Follows `taskId` (see `TaskFollower`), printing progress and mirroring server-reported statuses into the journal. */
  follow(endpoint: Endpoint, taskId: string, context: QuestionContext, until: 'end' | 'answered' = 'end'): Promise<FollowResult> {
    this.urls.set(taskId, endpoint.url);
    let last = '';
    return this.follower.follow(endpoint, taskId, {
      signal: this.stop.signal,
      until,
      context: { ...context, flags: this.authFlags() },
      onEvent: (event) => {
        if (event.type === 'status') {
          this.recordStatus(taskId, event.view);
          const key = statusKey(event.view);
          if (key !== last) this.log(`[${taskId}] ${statusText(event.view)}`);
          last = key;
        } else if (event.type === 'unreachable' && event.busy) {
          this.log(`[${taskId}] the server is busy; retrying in ${Math.round(event.retryInMs / 100) / 10} s (Ctrl-C to detach; the task is not affected)`);
        } else if (event.type === 'unreachable' && event.unavailable) {
          this.log(`[${taskId}] ${event.message}; retrying in ${Math.round(event.retryInMs / 100) / 10} s (Ctrl-C to detach; the task is not affected)`);
        } else if (event.type === 'unreachable') {
          this.log(
            `[${taskId}] server unreachable: ${event.message}; retrying in ${Math.round(event.retryInMs / 100) / 10} s (Ctrl-C to detach; the task is not affected)`,
          );
        } else if (event.type === 'reachable') {
          this.log(`[${taskId}] server reachable again`);
        } else if (event.type === 'answered') {
          this.log(`[${taskId}] answer sent (${event.action})`);
        } else if (event.type === 'kept') {
          this.log(
            `[${taskId}] your answer (${event.action}) is not sent yet: ${event.message}. It is kept and will be sent when the server is back (Ctrl-C: it is not sent, the question keeps waiting)`,
          );
        } else if (event.type === 'resending') {
          this.log(`[${taskId}] sending your kept answer (${event.action})`);
        } else if (event.type === 'dropped') {
          this.log(
            `[${taskId}] the question is no longer open (the server may have taken your answer before the failure, or it was answered elsewhere, or the task moved on); your kept answer (${event.action}) was not sent again`,
          );
        } else if (event.type === 'refused') {
          this.log(`[${taskId}] the server refused the answer: ${event.message}`);
        }
      },
    });
  }

  /** Mirrors a status the server reported into the journal entry (if the task is journaled); a terminal one is recorded as its outcome. */
  recordStatus(taskId: string, view: TaskView): void {
    const entry = this.known.get(taskId);
    if (!entry) return;
    if (
      !entry.gone &&
      entry.status === view.status &&
      entry.statusMessage === view.statusMessage &&
      entry.seenAt &&
      Date.now() - Date.parse(entry.seenAt) < 5000
    )
      return;
    // The server reported it: whatever made us think it was gone (a wrong token, another store) is
    // over. A terminal status is the task's outcome (the full result, when fetched, replaces it).
    this.known.update(taskId, {
      status: view.status,
      statusMessage: view.statusMessage,
      seenAt: new Date().toISOString(),
      gone: undefined,
      ...(!entry.outcome && isTerminal(view.status) && { outcome: { status: view.status as 'completed' | 'failed' | 'cancelled' } }),
    });
  }

  /**
   * `ls --refresh`: asks each server for the status of the journal's unfinished tasks (also those
   * once reported unknown: a wrong token or a server on another store says so too). Returns false
   * when some server could not be asked.
   */
  async refresh(): Promise<boolean> {
    let complete = true;
    for (const entry of this.known.list().filter((e) => !e.outcome)) {
      try {
        const tc = await this.endpoint(entry.url, entry.reference.generation === 'v1' ? '2025-11-25' : '2026-07-28').connection();
        const view = await tc.session.task(toTaskId(entry.taskId)).snapshot(this.signal);
        this.recordStatus(entry.taskId, view);
      } catch (error) {
        const message = describeError(error, entry.url);
        if (jsonRpcCode(error) === -32602 && !(error instanceof SdkError))
          this.known.update(entry.taskId, { gone: `the server does not know this task: ${message}` });
        else {
          complete = false;
          this.log(`[${entry.taskId}] could not refresh: ${message}`);
        }
      }
    }
    return complete;
  }

  /** The tasks waiting for input: the journal's (refreshed), plus each server's `tasks/list` where offered. */
  async pending(onlyUrl?: string): Promise<{ tasks: PendingTask[]; complete: boolean }> {
    let complete = await this.refresh();
    const found = new Map<string, PendingTask>();
    const entries = this.known.list().filter((e) => !onlyUrl || e.url === onlyUrl);
    for (const e of entries.filter((e) => !e.outcome && !e.gone && e.status === 'input_required')) {
      found.set(e.taskId, {
        taskId: e.taskId,
        url: e.url,
        tool: e.tool,
        ...(e.summary && { summary: e.summary }),
        ...(e.statusMessage && { statusMessage: e.statusMessage }),
        source: 'journal',
      });
    }
    const urls = new Set(onlyUrl ? [onlyUrl] : entries.map((e) => e.url));
    for (const url of urls) {
      try {
        const tc = await this.endpoint(url, this.opts.protocol ?? 'auto').connection();
        if (tc.session.capabilities.inventory !== 'server-list') {
          this.log(
            `note: ${url} offers no task listing (${tc.protocolVersion === '2026-07-28' ? '2026-07-28 has no tasks/list' : 'tasks/list not declared; servers offer it to authenticated principals'}); only journaled tasks are shown`,
          );
          continue;
        }
        let cursor: string | undefined;
        for (let page = 0; page < 50; page++) {
          const listed = await tc.session.listTasks(cursor, this.signal);
          for (const view of listed.tasks) {
            if (view.status !== 'input_required') continue;
            const known = found.get(view.taskId);
            found.set(
              view.taskId,
              known
                ? { ...known, source: 'journal, server' }
                : { taskId: view.taskId, url, ...(view.statusMessage && { statusMessage: view.statusMessage }), source: 'server' },
            );
          }
          cursor = listed.nextCursor;
          if (!cursor) break;
        }
      } catch (error) {
        complete = false;
        this.log(`could not list the tasks of ${url}: ${describeError(error, url)}`);
      }
    }
    return { tasks: [...found.values()], complete };
  }

  /** ` --token <token>` when this run authenticates, for commands printed for the person to run (the secret itself is never printed). */
  authFlags(): string {
    if (this.opts.token) return ' --token <token>';
    return this.opts.header?.length ? ' -H <your headers>' : '';
  }

  /** Prints one result (text, or JSON with `--json`) and raises the exit code accordingly. */
  private report(r: FollowResult): void {
    const exit = (code: number) => (process.exitCode = Math.max(Number(process.exitCode ?? 0), code));
    const id = r.taskId || '-';
    switch (r.kind) {
      case 'left':
        emit(
          this.opts,
          { taskId: r.taskId, detached: r.reason },
          `[${id}] detached: ${r.reason}${id !== '-' && !r.reason.includes('npx mcp-tasks') ? `\n  continue with: npx mcp-tasks watch ${id}${this.known.get(id) ? '' : ' --url <MCP endpoint>'}${this.authFlags()}` : ''}`,
        );
        return void exit(r.error ? EXIT.failed : EXIT.detached);
      case 'gone':
        this.known.update(r.taskId, { gone: r.reason });
        emit(
          this.opts,
          { taskId: r.taskId, error: r.reason },
          `[${id}] the server does not know this task (expired, purged, or never created there): ${r.reason}`,
        );
        return void exit(EXIT.failed);
      case 'error':
        emit(this.opts, { taskId: r.taskId, error: r.reason }, `[${id}] ${r.reason}`);
        return void exit(EXIT.failed);
      case 'answered':
        emit(this.opts, { taskId: r.taskId, answered: true, status: r.view.status }, `[${id}] answered; the task is ${statusText(r.view)}`);
        return;
      case 'not-asking': {
        // `answer` on a task that asks nothing: say so instead of waiting. Ended: 1 (there will never
        // be anything to answer); still running: 3, like a detach (nothing sent, the task goes on).
        const ended = isTerminal(r.view.status);
        const target = `${id}${this.known.get(id) ? '' : ` --url ${this.urls.get(id) ?? '<MCP endpoint>'}`}${this.authFlags()}`;
        emit(
          this.opts,
          { taskId: r.taskId, answered: false, status: r.view.status, ...(r.view.statusMessage && { statusMessage: r.view.statusMessage }) },
          ended
            ? `task ${id} is ${r.view.status}; nothing to answer\n  its result: npx mcp-tasks result ${target}`
            : `task ${id} is not waiting for input (${statusText(r.view)}); nothing to answer\n  follow it: npx mcp-tasks watch ${target}`,
        );
        return void exit(ended ? EXIT.failed : EXIT.detached);
      }
      case 'outcome':
        this.recordOutcome(r.taskId, r.outcome);
        return void exit(this.printOutcome(id, r.outcome));
    }
  }

  private recordOutcome(taskId: string, outcome: TaskOutcome<unknown>): void {
    if (!taskId || !this.known.get(taskId)) return;
    this.known.update(taskId, {
      status: outcome.status,
      statusMessage: outcome.status === 'failed' ? outcome.error.message : undefined,
      seenAt: new Date().toISOString(),
      outcome:
        outcome.status === 'completed'
          ? { status: 'completed', result: outcome.result }
          : outcome.status === 'failed'
            ? { status: 'failed', error: outcome.error.message }
            : { status: 'cancelled' },
    });
  }

  private printOutcome(id: string, outcome: TaskOutcome<unknown>): number {
    if (outcome.status === 'completed') {
      const result = outcome.result as Record<string, unknown>;
      const text = Array.isArray(result.content)
        ? (result.content as { type: string; text?: string }[])
            .filter((c) => c.type === 'text')
            .map((c) => c.text)
            .join('\n')
        : '';
      const structured = result.structuredContent ? `\n${JSON.stringify(result.structuredContent, null, 2)}` : '';
      emit(this.opts, { taskId: id === '-' ? undefined : id, status: 'completed', result }, `${text}${structured}`);
      return result.isError === true ? EXIT.failed : EXIT.completed;
    }
    if (outcome.status === 'failed') {
      emit(
        this.opts,
        { taskId: id, status: 'failed', error: outcome.error.message, ...(outcome.error.code !== undefined && { code: outcome.error.code }) },
        `[${id}] failed: ${outcome.error.message}`,
      );
      return EXIT.failed;
    }
    emit(this.opts, { taskId: id, status: 'cancelled' }, `[${id}] cancelled`);
    return EXIT.cancelled;
  }
}

/** Prints `json` (with `--json`, one line) or `text` on stdout. */
export function emit(opts: { json?: boolean }, json: unknown, text: string): void {
  process.stdout.write(opts.json ? `${JSON.stringify(json)}\n` : `${text}\n`);
}

/** The HTTP headers of `-H` / `--header` ("Name: value" each) and `--token` (`Authorization: Bearer …`). */
export function headersOf(opts: Pick<RunOptions, 'header' | 'token'>): Record<string, string> {
  const headers: Record<string, string> = {};
  for (const h of opts.header ?? []) {
    const at = h.indexOf(':');
    if (at <= 0) throw new InvalidArgumentError(`--header must be "Name: value", got ${h}`);
    headers[h.slice(0, at).trim()] = h.slice(at + 1).trim();
  }
  if (opts.token) headers.Authorization = `Bearer ${opts.token}`;
  return headers;
}
