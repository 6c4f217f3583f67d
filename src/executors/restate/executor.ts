import http2 from 'node:http2';
import type { AddressInfo } from 'node:net';
import * as restate from '@restatedev/restate-sdk';
import { ENGINE_ACCESS } from '../../core/access.js';
import { InvalidArgumentError, LeaseLostError, TaskRpcError } from '../../core/errors.js';
import { parseJournalKey } from '../../core/journal-keys.js';
import type { Json } from '../../core/json.js';
import type { Logger } from '../../core/log.js';
import { isTerminal } from '../../core/status.js';
import type { Fence, Lease, TaskRecord } from '../../core/task.js';
import { untilAborted } from '../../runtime/delay.js';
import { answerTopic, completionTopic, runOnEngine } from '../../runtime/engine-context.js';
import { ExecutorUnavailableError, type DurableRun, type ExecutorHost, type TaskExecutor } from '../../runtime/executor.js';
import { LeaseLostSignal, ShutdownSignal, TaskCancelledSignal } from '../../runtime/signals.js';
import type { TaskStore } from '../../store/task-store.js';

/** Retry policy of the task workflow's invocations (Restate's, see `RestateExecutorOptions.retryPolicy`). */
export interface RestateRetryPolicy {
  /** Wait before the first retry of a failed attempt, in ms (default 100). */
  initialIntervalMs?: number;
  /** Longest wait between two attempts, in ms (default 2000): how soon a restarted service process is found. */
  maxIntervalMs?: number;
  /** Attempts before Restate pauses the invocation (default: the server's, 70; the reconciler resumes paused ones). */
  maxAttempts?: number;
}

/** Options of `createRestateExecutor` / `new RestateExecutor`. */
export interface RestateExecutorOptions {
  /** restate-server's ingress, e.g. `http://127.0.0.1:8080`: where tasks are submitted and answers delivered. */
  ingressUrl: string;
  /** restate-server's admin API, e.g. `http://127.0.0.1:9070`: deployment registration, cancellation, lookups. */
  adminUrl: string;
  /**
   * Where this process serves the Restate service endpoint (HTTP/2 cleartext), started and
   * registered with the admin API (`POST /deployments`, `force: true`) by `recover()`. `host`
   * defaults to 127.0.0.1, `port` to 9080 (0: any free port); `url` is the URI registered when
   * restate-server must reach the endpoint under another name (default `http://host:port`).
   * Without it nothing is served or registered: serve `endpointHandler()` yourself and register it
   * (`restate deployments register URL`).
   */
  endpoint?: { host?: string; port?: number; url?: string };
  /** The Restate workflow's name (default `McpTask`): one workflow per task, keyed by its taskId. */
  serviceName?: string;
  /** Retries of failed attempts (a store outage, a dead service process); see `RestateRetryPolicy`. */
  retryPolicy?: RestateRetryPolicy;
  /**
   * How often the reconciler runs, in ms (default 30 000; 0: only in `recover`): it submits the
   * workflow of every unfinished task, re-delivers every stored answer and completion (idempotent),
   * resumes invocations Restate paused after too many attempts, and fails the live tasks whose
   * workflow Restate ended without them (killed in Restate; see `endOrphans`).
   */
  reconcileIntervalMs?: number;
  /** Timeout of each call to restate-server's ingress and admin API, in ms (default 10 000). */
  requestTimeoutMs?: number;
  /** How long `recover` keeps trying to register the deployment, in ms (default 30 000), before it rejects. */
  registerTimeoutMs?: number;
  /**
   * Restate's inactivity timeout of an attempt, in ms (default: the server's, 1 min): an attempt
   * silent that long (a step running long, a frozen process) is asked to suspend, and aborted
   * `abortTimeoutMs` later (default: the server's, 10 min) and retried — a step function still
   * running then runs again in the retry (at-least-once, as after a crash).
   */
  inactivityTimeoutMs?: number;
  /** See `inactivityTimeoutMs`. In ms. */
  abortTimeoutMs?: number;
  /** Headers sent with every ingress and admin call (e.g. `authorization`). */
  headers?: Record<string, string>;
}

/** Lease length written by each attempt's claim, in ms: Restate, not the lease, decides where a task runs. */
const ATTEMPT_LEASE_MS = 24 * 3_600_000;

/** One attempt of a task's workflow running in this process. */
interface Attempt {
  controller: AbortController;
}

/** Thrown by an attempt that must end without an outcome; Restate retries the invocation (or it was killed). */
class AttemptStopped extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'AttemptStopped';
  }
}

/**
 * The Restate executor (`mcp-tasks/executor/restate`): each task is a Restate workflow (`McpTask`,
 * keyed by the taskId) whose `run` handler runs the task's handler (`runOnEngine`); restate-server
 * owns the run's journal and retries it against whatever process serves the deployment, so a
 * crashed process's tasks resume when any process serves the endpoint again.
 *
 * Mapping of the durable primitives (`DurableRun`): a step is `ctx.run` (an error other than the
 * handler's own — a store outage — fails the attempt, which Restate retries; never the task's
 * outcome), a timer is `ctx.sleep`, the clock a `ctx.run` of the runtime's clock, and an answer a
 * durable promise of the workflow (`ctx.promise(topic)`), resolved by its shared `deliver` handler.
 * Answers and URL-elicitation completions are delivered through the ingress with an
 * `idempotency-key` of `taskId/topic`; a second resolve of the promise is refused by Restate and
 * ignored, so each reaches the handler exactly once whichever path delivers it.
 *
 * Fencing: every attempt starts by claiming the task in the store (`TaskStore.claim`, holder
 * `restate:<serviceName>`), whose new lease epoch is the attempt's `fencingToken` (it grows with
 * each attempt: a retry, a resume after a suspension, a restart). All of the attempt's store writes
 * carry that fence, so an attempt overtaken by a cancel or by a newer attempt (a paused process that
 * wakes up) can write nothing; each `ctx.step` function begins only after a read confirms the fence.
 *
 * Cancellation: `cancelled` aborts the signal of the attempt running here (waits end at once) and
 * cancels the workflow's invocation in Restate; an attempt that finds its task ended (cancelled,
 * finished by an earlier attempt, deleted) kills its own invocation, since Restate forbids a replay
 * that ends before its journal does. A Restate-side cancellation of a live task cancels it in the store;
 * a workflow killed in Restate (no code runs then) is found by the reconciler, which fails its task.
 */
export class RestateExecutor implements TaskExecutor {
  readonly name = 'restate';
  /** The Restate workflow definition (bind it to an endpoint of your own with `endpointHandler`). */
  readonly workflow;
  private host?: ExecutorHost;
  private readonly ingressUrl: string;
  private readonly adminUrl: string;
  private readonly serviceName: string;
  private readonly holder: string;
  private readonly requestTimeoutMs: number;
  private readonly headers: Record<string, string>;
  private readonly attempts = new Map<string, Set<Attempt>>();
  private readonly invocations = new Map<string, string>();
  private server?: http2.Http2Server;
  private readonly sessions = new Set<http2.ServerHttp2Session>();
  private reconciler?: NodeJS.Timeout;
  private reconciling?: Promise<void>;
  private closed = false;

  constructor(private readonly options: RestateExecutorOptions) {
    for (const [option, url] of [
      ['ingressUrl', options.ingressUrl],
      ['adminUrl', options.adminUrl],
    ] as const)
      if (!/^https?:\/\/[^/]/.test(url ?? ''))
        throw new InvalidArgumentError(
          `The Restate executor's ${option} must be an http(s) URL (e.g. http://127.0.0.1:${option === 'adminUrl' ? 9070 : 8080}), not ${JSON.stringify(url)}`,
        );
    this.ingressUrl = options.ingressUrl.replace(/\/+$/, '');
    this.adminUrl = options.adminUrl.replace(/\/+$/, '');
    this.serviceName = options.serviceName ?? 'McpTask';
    this.holder = `restate:${this.serviceName}`;
    this.requestTimeoutMs = options.requestTimeoutMs ?? 10_000;
    this.headers = options.headers ?? {};
    const retry = options.retryPolicy ?? {};
    this.workflow = restate.workflow({
      name: this.serviceName,
      handlers: {
        run: async (ctx: restate.WorkflowContext): Promise<null> => this.attempt(ctx),
        deliver: async (ctx: restate.WorkflowSharedContext, message: { topic: string; value: Json }): Promise<boolean> => {
          try {
            await ctx.promise<Json>(message.topic).resolve(message.value);
            return true;
          } catch (error) {
            if (error instanceof restate.TerminalError) return false; // already resolved: delivered before
            throw error;
          }
        },
      },
      options: {
        ...(options.inactivityTimeoutMs !== undefined && { inactivityTimeout: options.inactivityTimeoutMs }),
        ...(options.abortTimeoutMs !== undefined && { abortTimeout: options.abortTimeoutMs }),
        retryPolicy: {
          initialInterval: retry.initialIntervalMs ?? 100,
          maxInterval: retry.maxIntervalMs ?? 2000,
          exponentiationFactor: 2,
          ...(retry.maxAttempts !== undefined && { maxAttempts: retry.maxAttempts }),
          onMaxAttempts: 'pause',
        },
      },
    });
  }

  /** Called once by the runtime. */
  bind(host: ExecutorHost): void {
    if (this.host) throw new Error('RestateExecutor.bind: already bound to a runtime');
    this.host = host;
  }

  /** Undefined: Restate places runs; tasks are created without a lease. */
  leaseForNewTask(): undefined {
    return undefined;
  }

  /**
   * Submits the task's workflow (`POST {ingress}/{service}/{taskId}/run/send`, idempotent per
   * taskId). Never throws: a submit that fails is logged and retried by the reconciler.
   */
  async start(task: TaskRecord): Promise<void> {
    await this.submit(task.taskId).catch((error: unknown) =>
      this.log().warn({ taskId: task.taskId, err: error }, 'restate: submit failed; the reconciler retries it'),
    );
  }

  /**
   * Serves and registers the endpoint (when `options.endpoint` is set), submits the workflow of
   * every unfinished task (a start lost in a crash included), re-delivers stored answers and
   * completions, and starts the periodic reconciler. Resolves with the number of unfinished tasks.
   * Rejects when the deployment cannot be registered within `registerTimeoutMs`.
   */
  async recover(): Promise<number> {
    const host = this.requireHost();
    if (this.options.endpoint) {
      const url = await this.listen(this.options.endpoint);
      await this.register(url);
    }
    const unfinished = await host.store.listUnfinished();
    await this.reconcile(unfinished);
    const every = this.options.reconcileIntervalMs ?? 30_000;
    if (every > 0 && !this.closed) {
      this.reconciler = setInterval(() => {
        if (this.reconciling) return;
        this.reconciling = this.reconcile()
          .catch((error: unknown) => this.log().warn({ err: error }, 'restate: reconciliation failed'))
          .finally(() => (this.reconciling = undefined));
      }, every);
      this.reconciler.unref();
    }
    return unfinished.length;
  }

  /**
   * Stops the task's work: aborts the signal of its attempt here (sleeps and waits end at once; its
   * store writes are refused by the fence anyway) and asks Restate to cancel the workflow's
   * invocation (`PATCH {admin}/invocations/{id}/cancel`; failures are logged: the invocation's next
   * attempt finds the task cancelled and kills itself).
   */
  async cancelled(task: TaskRecord, _revoked: Lease | undefined): Promise<void> {
    this.abortAttempts(task.taskId, new TaskCancelledSignal(task.taskId));
    try {
      const id = this.invocations.get(task.taskId) ?? (await this.lookupInvocation(task.taskId));
      if (id) await this.admin('PATCH', `/invocations/${encodeURIComponent(id)}/cancel`);
    } catch (error) {
      this.log().warn({ taskId: task.taskId, err: error }, 'restate: cancelling the invocation failed');
    }
  }

  /**
   * Delivers each stored answer of `keys` to the task's workflow (its durable promise
   * `answer:<key>`), with idempotency key `taskId/answer:<key>`. Never throws: failed deliveries
   * are logged and redone by the reconciler.
   */
  async answered(taskId: string, keys: readonly string[]): Promise<void> {
    for (const key of keys) {
      try {
        await this.deliverAnswer(taskId, key);
      } catch (error) {
        this.log().warn({ taskId, key, err: error }, 'restate: delivering an answer failed; the reconciler retries it');
      }
    }
  }

  /** Delivers the completion of URL elicitation `elicitationId` (durable promise `completionTopic(id)`). Never throws. */
  async elicitationCompleted(taskId: string, elicitationId: string): Promise<void> {
    await this.deliver(taskId, completionTopic(elicitationId), true).catch((error: unknown) =>
      this.log().warn({ taskId, elicitationId, err: error }, 'restate: delivering a completion failed; the reconciler retries it'),
    );
  }

  /** True while an attempt of the task's workflow runs in this process. */
  isRunning(taskId: string): boolean {
    return (this.attempts.get(taskId)?.size ?? 0) > 0;
  }

  /**
   * Stops the reconciler, aborts every attempt running here (`ShutdownSignal`: each ends without an
   * outcome, and Restate retries it wherever the endpoint is served next) and closes the endpoint.
   */
  async close(): Promise<void> {
    this.closed = true;
    if (this.reconciler) clearInterval(this.reconciler);
    for (const taskId of [...this.attempts.keys()]) this.abortAttempts(taskId, new ShutdownSignal());
    await this.reconciling;
    const server = this.server;
    this.server = undefined;
    if (server) {
      const done = new Promise<void>((resolve) => server.close(() => resolve()));
      for (const session of this.sessions) session.destroy();
      await done;
    }
  }

  /**
   * The Node request handler of the Restate endpoint serving this executor's workflow (HTTP/2
   * cleartext or HTTP/1.1; `http2.createServer(executor.endpointHandler())`), for serving it beside
   * your own server instead of `options.endpoint`.
   */
  endpointHandler(): (request: http2.Http2ServerRequest, response: http2.Http2ServerResponse) => void {
    return restate.createEndpointHandler({
      services: [this.workflow],
      logger: (meta, message, ...rest) => {
        const log = this.host?.log;
        if (!log) return;
        const line = [message, ...rest].map((part) => (part instanceof Error ? (part.stack ?? part.message) : String(part))).join(' ');
        const fields = { invocationId: meta.context?.invocationId, replaying: meta.replaying };
        if (meta.level === 'error' || meta.level === 'warn') log.warn(fields, `restate sdk: ${line}`);
        else log.debug(fields, `restate sdk: ${line}`);
      },
    }) as never;
  }

  /** The URL the endpoint listens on (after `recover` with `options.endpoint`), else undefined. */
  get endpointUrl(): string | undefined {
    const address = this.server?.address() as AddressInfo | null | undefined;
    return address ? `http://${this.options.endpoint?.host ?? '127.0.0.1'}:${address.port}` : undefined;
  }

  // ---- the workflow's run handler -------------------------------------------------------------

  /** One attempt of a task's workflow: claim (fencing token), run the handler, end. */
  private async attempt(ctx: restate.WorkflowContext): Promise<null> {
    const host = this.requireHost();
    const taskId = ctx.key;
    const invocationId = ctx.request().id;
    this.invocations.set(taskId, invocationId);
    // Each attempt claims anew: the lease epoch is its fencing token. An outage rejects: Restate retries.
    const claimed = await host.store.claim(taskId, this.holder, ATTEMPT_LEASE_MS, true);
    if (!claimed?.lease) return this.endInvocation(taskId, invocationId);
    const fence: Fence = { holder: this.holder, epoch: claimed.lease.epoch ?? 1 };
    const controller = new AbortController();
    const attempt: Attempt = { controller };
    const abort = (reason: Error) => {
      if (!controller.signal.aborted) controller.abort(reason);
    };
    let running = this.attempts.get(taskId);
    if (!running) this.attempts.set(taskId, (running = new Set()));
    running.add(attempt);
    const unsubscribe = host.store.onTaskChange(taskId, (task) => {
      if (!task || task.status === 'cancelled') abort(new TaskCancelledSignal(taskId));
      else if (task.lease && (task.lease.holder !== fence.holder || task.lease.epoch !== fence.epoch)) abort(new LeaseLostSignal(taskId));
    });
    // Restate ends an attempt on its own too (a step function that threw for the engine's sake — a
    // cancel, a store outage —, a suspension, a lost connection): the SDK then settles none of the
    // handler's pending promises, so the attempt stops waiting for the handler at that point.
    let attemptOver!: () => void;
    const attemptEnded = new Promise<never>((_, reject) => {
      attemptOver = () => {
        abort(new ShutdownSignal());
        reject(new AttemptStopped(`attempt of task ${taskId} ended by Restate`));
      };
    });
    if (ctx.request().attemptCompletedSignal.aborted) attemptOver();
    else ctx.request().attemptCompletedSignal.addEventListener('abort', attemptOver, { once: true });
    const signal = controller.signal;
    const run: DurableRun = {
      step: <T extends Json | null>(name: string, fn: () => Promise<T>) =>
        ctx.run<T>(name, async () => {
          // A handler's step begins only while this attempt provably holds the task.
          if (parseJournalKey(name)?.kind === 'step') await this.confirm(host.store, taskId, fence, abort);
          return fn();
        }) as Promise<T>,
      sleep: (name, ms) => untilAborted(ctx.sleep(Math.max(0, Math.round(ms)), name), signal),
      now: (name) => ctx.run<number>(name, async () => host.now()) as Promise<number>,
      receive: <T extends Json>(topic: string, stop?: AbortSignal) =>
        untilAborted(ctx.promise<T>(topic).get(), stop ? AbortSignal.any([signal, stop]) : signal),
      // Restate resolves the waits of a replay in its own order: a settle step after each would land
      // elsewhere in the history. The settle write is idempotent, so it is simply done again.
      recordsSettles: false,
    };
    try {
      const ran = runOnEngine(host, taskId, run, {
        signal,
        onEnded: () => abort(new TaskCancelledSignal(taskId)),
        fencingToken: fence.epoch,
        fence,
        isEngineError: (error) => error instanceof restate.RestateError || error instanceof LeaseLostError,
      });
      const end = await Promise.race([ran, attemptEnded]);
      if (end.kind === 'ended') return null;
      if (signal.aborted && !(signal.reason instanceof TaskCancelledSignal))
        throw new AttemptStopped(`attempt of task ${taskId} stopped: ${String(signal.reason)}`);
      return await this.endInvocation(taskId, invocationId);
    } catch (error) {
      if (error instanceof restate.CancelledError) await this.cancelledInRestate(taskId);
      throw error;
    } finally {
      unsubscribe();
      ctx.request().attemptCompletedSignal.removeEventListener('abort', attemptOver);
      running.delete(attempt);
      if (running.size === 0 && this.attempts.get(taskId) === running) this.attempts.delete(taskId);
    }
  }

  /**
   * An attempt found its task ended (or gone): Restate cannot end a replay early, so the invocation
   * is killed (`PATCH {admin}/invocations/{id}/kill`) and the attempt throws. A task found live
   * after all is never orphaned: the attempt just fails and Restate retries it.
   */
  private async endInvocation(taskId: string, invocationId: string): Promise<never> {
    const task = await this.requireHost()
      .store.get(taskId, ENGINE_ACCESS)
      .catch(() => undefined);
    if (task && !isTerminal(task.status)) throw new AttemptStopped(`task ${taskId} is live; the attempt is retried`);
    await this.admin('PATCH', `/invocations/${encodeURIComponent(invocationId)}/kill`);
    throw new AttemptStopped(`task ${taskId} has ended; its invocation ${invocationId} was killed`);
  }

  /** Restate cancelled the workflow (its CLI or UI): the task is cancelled in the store too, if still live. */
  private async cancelledInRestate(taskId: string): Promise<void> {
    const store = this.requireHost().store;
    try {
      const task = await store.get(taskId, ENGINE_ACCESS);
      if (!isTerminal(task.status))
        await store.cancel(taskId, ENGINE_ACCESS, { statusMessage: 'The task was cancelled in Restate.', actor: { role: 'engine', name: null } });
    } catch (error) {
      this.log().debug({ taskId, err: error }, 'restate: cancelling a task Restate cancelled failed');
    }
  }

  /** Confirms `fence` from a fresh read before a step's function begins; a lost fence aborts the attempt. */
  private async confirm(store: TaskStore, taskId: string, fence: Fence, abort: (reason: Error) => void): Promise<void> {
    try {
      await store.confirm(taskId, fence, ATTEMPT_LEASE_MS, 0);
    } catch (error) {
      if (!(error instanceof LeaseLostError)) throw error;
      const reason = error.reason === 'taken' ? new LeaseLostSignal(taskId) : new TaskCancelledSignal(taskId);
      abort(reason);
      throw reason;
    }
  }

  // ---- reconciliation -----------------------------------------------------------------------

  /**
   * Submits the workflow of each unfinished task (idempotent), re-delivers its stored answers and
   * completions (idempotent), and resumes this service's paused invocations. Errors per task are
   * logged, not thrown.
   */
  private async reconcile(tasks?: TaskRecord[]): Promise<void> {
    const store = this.requireHost().store;
    const unfinished = tasks ?? (await store.listUnfinished());
    for (const task of unfinished) {
      if (this.closed) return;
      try {
        await this.submit(task.taskId);
        const journal = await store.readJournal(task.taskId);
        for (const key of journal.keys()) {
          const parsed = parseJournalKey(key);
          if (parsed?.kind === 'input') await this.deliverAnswer(task.taskId, parsed.question);
          else if (parsed?.kind === 'elicitation-complete') await this.deliver(task.taskId, completionTopic(parsed.elicitationId), true);
        }
      } catch (error) {
        this.log().warn({ taskId: task.taskId, err: error }, 'restate: reconciling a task failed; retried on the next round');
      }
    }
    await this.endOrphans(unfinished).catch((error: unknown) => this.log().warn({ err: error }, 'restate: looking for ended workflows failed'));
    try {
      const paused = await this.query(`SELECT id FROM sys_invocation WHERE target_service_name = ${sqlString(this.serviceName)} AND status = 'paused'`);
      for (const row of paused) await this.admin('PATCH', `/invocations/${encodeURIComponent(String(row.id))}/resume`);
    } catch (error) {
      this.log().debug({ err: error }, 'restate: listing paused invocations failed');
    }
  }

  /**
   * Ends the live tasks whose workflow Restate has ended (status `completed`) without the task
   * ending: an invocation killed in Restate (`restate invocations kill`, the UI) runs no more code,
   * so nothing else would ever end the task, and a new `run` for its key is refused while Restate
   * keeps the completion (its workflow retention, 1 day by default). Such a task is failed with a
   * JSON-RPC error (-32603) saying so; one whose workflow was cancelled in Restate (and whose own
   * attempt could not write that) is cancelled. Each is claimed first, so the write is fenced
   * against any attempt still running somewhere and skipped for a task that has just ended.
   */
  private async endOrphans(unfinished: TaskRecord[]): Promise<void> {
    const host = this.requireHost();
    for (let i = 0; i < unfinished.length && !this.closed; i += 200) {
      const keys = unfinished.slice(i, i + 200).map((task) => sqlString(task.taskId));
      const rows = await this.query(
        `SELECT id, target_service_key, completion_result, completion_failure FROM sys_invocation WHERE target_service_name = ${sqlString(this.serviceName)} AND target_handler_name = 'run' AND status = 'completed' AND target_service_key IN (${keys.join(', ')})`,
      );
      for (const row of rows) {
        const taskId = String(row.target_service_key);
        const failure = typeof row.completion_failure === 'string' ? row.completion_failure : String(row.completion_result ?? 'completed');
        try {
          if (this.isRunning(taskId)) continue;
          if (/cancel/i.test(failure)) {
            await this.cancelledInRestate(taskId);
            continue;
          }
          const claimed = await host.store.claim(taskId, this.holder, ATTEMPT_LEASE_MS, true);
          if (!claimed?.lease) continue; // ended meanwhile
          const fence: Fence = { holder: this.holder, epoch: claimed.lease.epoch ?? 1 };
          const message = `The task's Restate workflow ended without finishing it (invocation ${String(row.id)}: ${failure}); it cannot resume`;
          const end = await host.finish(claimed, { error: new TaskRpcError(-32603, message) }, fence);
          this.log().warn({ taskId, invocationId: row.id, failure, end: end.kind }, 'restate: the workflow of a live task had ended in Restate; task failed');
        } catch (error) {
          this.log().warn({ taskId, err: error }, 'restate: ending a task whose workflow had ended failed; retried on the next round');
        }
      }
    }
  }

  // ---- restate-server calls -----------------------------------------------------------------

  private async submit(taskId: string): Promise<void> {
    const body = (await this.call(`${this.ingressUrl}/${this.serviceName}/${encodeURIComponent(taskId)}/run/send`, { method: 'POST' })) as {
      invocationId?: string;
    };
    if (body?.invocationId) this.invocations.set(taskId, body.invocationId);
  }

  private async deliverAnswer(taskId: string, key: string): Promise<void> {
    const answer = await this.requireHost().store.inputAnswer(taskId, key);
    if (answer !== undefined) await this.deliver(taskId, answerTopic(key), answer as unknown as Json);
  }

  /** Sends `value` to the workflow's durable promise `topic`, once per (task, topic) by the ingress's idempotency key. */
  private async deliver(taskId: string, topic: string, value: Json): Promise<void> {
    await this.call(`${this.ingressUrl}/${this.serviceName}/${encodeURIComponent(taskId)}/deliver/send`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'idempotency-key': `${taskId}/${topic}` },
      body: JSON.stringify({ topic, value }),
    });
  }

  /** The id of the task's `run` invocation, from the admin API's SQL introspection (undefined when none). */
  private async lookupInvocation(taskId: string): Promise<string | undefined> {
    const rows = await this.query(
      `SELECT id FROM sys_invocation WHERE target_service_name = ${sqlString(this.serviceName)} AND target_service_key = ${sqlString(taskId)} AND target_handler_name = 'run'`,
    );
    return rows[0]?.id as string | undefined;
  }

  private async query(sql: string): Promise<Record<string, unknown>[]> {
    const body = (await this.call(`${this.adminUrl}/query`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', accept: 'application/json' },
      body: JSON.stringify({ query: sql }),
    })) as { rows?: Record<string, unknown>[] };
    return body?.rows ?? [];
  }

  private admin(method: string, path: string, body?: Json): Promise<unknown> {
    return this.call(`${this.adminUrl}${path}`, {
      method,
      ...(body !== undefined && { headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) }),
    });
  }

  /** One HTTP call to restate-server; rejects on a network error, a timeout or a status ≥ 400 (404 on a kill/cancel of a finished invocation excepted). */
  private async call(url: string, init: RequestInit & { headers?: Record<string, string> }): Promise<unknown> {
    const response = await fetch(url, { ...init, headers: { ...this.headers, ...init.headers }, signal: AbortSignal.timeout(this.requestTimeoutMs) });
    const text = await response.text();
    if (!response.ok) {
      if (response.status === 404 && /\/invocations\//.test(url)) return undefined; // already gone
      throw new Error(`restate-server answered ${response.status} to ${init.method ?? 'GET'} ${url}: ${text.slice(0, 500)}`);
    }
    return text ? (JSON.parse(text) as unknown) : undefined;
  }

  /** Starts the HTTP/2 endpoint; resolves with the URL to register. */
  private async listen(endpoint: NonNullable<RestateExecutorOptions['endpoint']>): Promise<string> {
    const server = http2.createServer(this.endpointHandler());
    server.on('session', (session) => {
      this.sessions.add(session);
      session.once('close', () => this.sessions.delete(session));
    });
    const host = endpoint.host ?? '127.0.0.1';
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(endpoint.port ?? 9080, host, () => {
        server.off('error', reject);
        resolve();
      });
    });
    this.server = server;
    return endpoint.url ?? this.endpointUrl!;
  }

  /** Registers the endpoint at `url` with the admin API (`force: true`: a restarted process replaces its old registration). */
  private async register(url: string): Promise<void> {
    const deadline = Date.now() + (this.options.registerTimeoutMs ?? 30_000);
    for (let wait = 100; ; wait = Math.min(wait * 2, 2000)) {
      try {
        await this.admin('POST', '/deployments', { uri: url, force: true });
        this.log().info({ endpoint: url, admin: this.adminUrl }, 'restate: deployment registered');
        return;
      } catch (error) {
        const reason = error instanceof Error ? error.message : String(error);
        if (Date.now() + wait > deadline)
          throw new ExecutorUnavailableError(
            'restate',
            `Could not register the Restate deployment ${url} with the admin API at ${this.adminUrl}: ${reason}`,
            /bad path|ingress/i.test(reason)
              ? `${this.adminUrl} looks like Restate's ingress, not its admin API (default port 9070): fix the admin URL (the demo: --restate-admin)`
              : 'start restate-server (README, "Executors") and check the admin URL (the demo: --restate-admin, default http://127.0.0.1:9070)',
            { cause: error },
          );
        if (wait === 100)
          this.log().warn(
            { admin: this.adminUrl, err: error },
            `restate: the admin API does not answer yet; retrying for ${Math.round((deadline - Date.now()) / 1000)} s (is restate-server running?)`,
          );
        await new Promise((resolve) => setTimeout(resolve, wait));
      }
    }
  }

  private abortAttempts(taskId: string, reason: Error): void {
    for (const attempt of this.attempts.get(taskId) ?? []) if (!attempt.controller.signal.aborted) attempt.controller.abort(reason);
  }

  private requireHost(): ExecutorHost {
    if (!this.host) throw new Error('RestateExecutor is not bound to a runtime (TaskRuntime calls bind)');
    return this.host;
  }

  private log(): Logger | Pick<Logger, 'warn' | 'info' | 'debug'> {
    return this.host?.log ?? { warn: () => undefined, info: () => undefined, debug: () => undefined };
  }
}

/** Creates a `RestateExecutor` (see `RestateExecutorOptions`); pass it as `executor` to `TaskRuntime` / `createTaskServer`. */
export function createRestateExecutor(options: RestateExecutorOptions): RestateExecutor {
  return new RestateExecutor(options);
}

/** A SQL string literal for the admin API's query engine. */
function sqlString(value: string): string {
  return `'${value.replace(/'/g, "''")}'`;
}
