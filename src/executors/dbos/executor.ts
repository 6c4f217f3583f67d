import { randomBytes } from 'node:crypto';
import { hostname } from 'node:os';
import { DBOS, DBOSWorkflowConflictError, Error as DBOSErrors } from '@dbos-inc/dbos-sdk';
import { DBOSExecutor } from '@dbos-inc/dbos-sdk/internal/dbos-executor';
import { ConflictError, InvalidArgumentError, LeaseLostError, StoreUnavailableError, TaskNotFoundError } from '../../core/errors.js';
import { ENGINE_ACCESS } from '../../core/access.js';
import type { Json } from '../../core/json.js';
import { isTerminal } from '../../core/status.js';
import type { Fence, Lease, TaskRecord } from '../../core/task.js';
import { parseJournalKey } from '../../core/journal-keys.js';
import type { TaskStore } from '../../store/task-store.js';
import { untilAborted } from '../../runtime/delay.js';
import { answerTopic, completionTopic, runOnEngine, settleStepName } from '../../runtime/engine-context.js';
import { ExecutorUnavailableError, type DurableRun, type ExecutorHost, type RunEnd, type TaskExecutor } from '../../runtime/executor.js';
import { LeaseGuard, monotonicNow } from '../../runtime/lease-guard.js';
import { LeaseLostSignal, ShutdownSignal, TaskCancelledSignal } from '../../runtime/signals.js';

/** Options of a `DbosExecutor` (see `createDbosExecutor`). Times in ms unless said otherwise. */
export interface DbosExecutorOptions {
  /**
   * PostgreSQL URL of DBOS's system database (`postgres://user:pass@host:5432/dbname`): where DBOS
   * records workflows, step outputs, durable sleeps and messages. Created (with its schema) on the
   * first launch when missing. May be the task store's own database: DBOS keeps its tables in the
   * schema `systemDatabaseSchemaName`.
   */
  systemDatabaseUrl: string;
  /** Schema of DBOS's tables in that database. Default `dbos`. */
  systemDatabaseSchemaName?: string;
  /** DBOS application name (recorded with every workflow; instances of one deployment must agree). Default `mcp-tasks`. */
  appName?: string;
  /**
   * DBOS application version: DBOS recovers and dequeues only workflows of its own version, so
   * every instance of a deployment must use the same one. Default `mcp-tasks-dbos-1` (the
   * workflow function is ours, the same in every release; handlers' determinism is yours).
   */
  applicationVersion?: string;
  /**
   * This instance's identity: its DBOS executor ID and the holder name in our task leases. Must be
   * unique per live process. A stable ID (e.g. the pod name) makes a restarted process resume its own
   * workflows at once at launch; a fresh one (the default, `<hostname>-<pid>-<random>`) leaves them
   * to the lease expiry (any instance, this restarted one included, then recovers them).
   */
  executorId?: string;
  /**
   * Lease length in ms (default 5000): how long after an instance dies (stops renewing) another
   * instance recovers its workflows. Leases are renewed every third of it.
   */
  leaseMs?: number;
  /**
   * How long a confirmation from the store that this instance still holds a task authorizes a step
   * to begin, in ms of the monotonic clock (see `LeaseGuard`). Default `min(500, leaseMs / 5)`; at
   * most `leaseMs / 2`.
   */
  permitMs?: number;
  /**
   * How often (ms, default 10000) answers and URL-elicitation completions stored for this
   * instance's tasks but not yet delivered as DBOS messages are delivered again (a crash between the
   * store's write and `DBOS.send`), followed by a `purgeWorkflows` pass (the DBOS workflows of tasks
   * no longer in the store are deleted). 0 disables both periodic passes (`recover` still
   * reconciles once).
   *
   * `purgeWorkflows` assumes the DBOS schema serves one deployment (one task store): give each
   * deployment sharing a database its own `systemDatabaseSchemaName`, or it deletes the ended
   * workflows of the other's tasks (their history in DBOS, never their tasks or outcomes).
   */
  reconcileMs?: number;
  /** DBOS's own log level (`debug`, `info`, `warn`, `error`). Default `warn`. */
  logLevel?: string;
  /** How long one `DBOS.recv` waits before it is renewed (seconds; default 300). Each renewal records one DBOS step. */
  receiveTimeoutSeconds?: number;
}

/** The name of the one DBOS workflow every task runs as (its workflow ID is the task id). */
export const DBOS_TASK_WORKFLOW = 'mcp-tasks.task';

/** The executor this process's DBOS workflow function runs tasks for (DBOS is a process-wide singleton). */
let active: DbosExecutor | undefined;
/** The registered workflow function (registered once per DBOS launch). */
let registered: ((taskId: string) => Promise<string>) | undefined;

/** One run of a task's handler in this process. */
interface LocalRun {
  controller: AbortController;
  guard: LeaseGuard;
  fence: Fence;
}

/** Waits between attempts of a store call that met an outage: 0.25 s doubling to 10 s. */
const backoff = (attempt: number): number => Math.min(10_000, 250 * 2 ** Math.min(attempt, 6));

const delay = (ms: number, signal?: AbortSignal): Promise<void> =>
  new Promise((resolve) => {
    if (signal?.aborted) return resolve();
    const timer = setTimeout(done, ms);
    signal?.addEventListener('abort', done, { once: true });
    function done(): void {
      clearTimeout(timer);
      signal?.removeEventListener('abort', done);
      resolve();
    }
  });

/** DBOS's own errors (cancellation, lost ownership, …): never a task's outcome. */
export function isDbosError(error: unknown): boolean {
  return error instanceof DBOSErrors.DBOSError;
}

/**
 * Runs tasks as DBOS workflows (DBOS Transact 5.3, `@dbos-inc/dbos-sdk`): each task is the workflow
 * `mcp-tasks.task` whose workflow ID is the task id; `ctx.step` (its attempts and retry options
 * inside), progress and questions are DBOS steps (`DBOS.runStep`), `ctx.sleep` a DBOS durable sleep,
 * the clock `DBOS.now`, answers and URL-elicitation completions DBOS messages (`DBOS.send` with an
 * idempotency key, `DBOS.recv` on the question's topic), a cancel `DBOS.cancelWorkflow`.
 *
 * Placement and liveness are ours, by the store's leases: a task is created leased to this
 * instance (`leaseForNewTask`), every run renews its lease every `leaseMs / 3`, and a run begins
 * only once it holds the lease (`TaskStore.claim`: a new epoch, the run's fencing token). When a
 * task's lease has expired and its holder has no live lease left, the holder is presumed dead and
 * this instance calls DBOS's own recovery for that executor ID (`recoverPendingWorkflows`: its
 * pending workflows go back on DBOS's internal queue and some live instance dequeues them); a
 * workflow whose holder is alive but which runs nowhere is resumed alone (`DBOS.resumeWorkflow`).
 * Open-source DBOS recovers only its own executor's workflows at launch; recovering another's is
 * what this liveness check triggers.
 *
 * Fencing (see `LeaseGuard`): no step function begins without a permit (a fresh confirmation that
 * this run still holds the task's lease epoch); every store write of a run is fenced by that epoch;
 * DBOS itself refuses to record a step or an outcome for an execution that no longer owns the
 * workflow (its `owner_xid`, reset by recovery), and that execution parks. A run that must stop
 * (cancel, lease lost, shutdown) ends its DBOS execution by throwing `DBOSWorkflowConflictError`,
 * which DBOS records nowhere: the task's outcome is only ever written by a run that finished it.
 *
 * Store outages are never a task's outcome: a step meeting one retries it (0.25 s doubling to 10 s)
 * until the store answers; a run stopped by one outside a step is resumed later.
 *
 * DBOS is a process-wide singleton: one `DbosExecutor` per process (constructing a second while
 * one is open throws `InvalidArgumentError`).
 */
export class DbosExecutor implements TaskExecutor {
  readonly name = 'dbos';
  /** This instance's DBOS executor ID and lease holder name. */
  readonly executorId: string;
  /** Lease length in ms. */
  readonly leaseMs: number;
  /** See `DbosExecutorOptions.permitMs` (ms). */
  readonly permitMs: number;
  private readonly options: DbosExecutorOptions;
  private readonly reconcileMs: number;
  private readonly receiveTimeoutSeconds: number;
  private host?: ExecutorHost;
  private readonly runs = new Map<string, LocalRun>();
  /** Tasks this instance just created and is starting: their first run uses the creation's lease (no claim). */
  private readonly fresh = new Map<string, { fence: Fence; since: number }>();
  /** Answers / completions delivered (or known consumed) from this process: `taskId\ntopic`. */
  private readonly delivered = new Set<string>();
  /** Tasks whose recovery this instance triggered, and when (monotonic ms): not triggered again within a lease. */
  private readonly recovering = new Map<string, number>();
  private launching?: Promise<void>;
  private heartbeat?: NodeJS.Timeout;
  private reconciler?: NodeJS.Timeout;
  private tickRun?: Promise<void>;
  private reconcileRun?: Promise<unknown>;
  /** Where the next `purgeWorkflows` pass continues in the list of ended workflows (oldest first). */
  private purgeOffset = 0;
  private closed = false;

  constructor(options: DbosExecutorOptions) {
    if (typeof options?.systemDatabaseUrl !== 'string' || options.systemDatabaseUrl.length === 0)
      throw new InvalidArgumentError('createDbosExecutor needs systemDatabaseUrl (a PostgreSQL URL)');
    if (active && !active.closed)
      throw new InvalidArgumentError('DBOS is a process-wide singleton: close the DbosExecutor of this process before creating another');
    this.options = options;
    this.executorId = options.executorId ?? `${hostname()}-${process.pid}-${randomBytes(4).toString('hex')}`;
    this.leaseMs = options.leaseMs ?? 5000;
    if (!Number.isFinite(this.leaseMs) || this.leaseMs < 100) throw new InvalidArgumentError('leaseMs must be a number of milliseconds of at least 100');
    this.permitMs = Math.max(1, Math.floor(options.permitMs ?? Math.min(500, this.leaseMs / 5)));
    if (this.permitMs > this.leaseMs / 2) throw new InvalidArgumentError(`permitMs (${this.permitMs}) must be at most half of leaseMs (${this.leaseMs})`);
    this.reconcileMs = options.reconcileMs ?? 10_000;
    this.receiveTimeoutSeconds = options.receiveTimeoutSeconds ?? 300;
    active = this;
  }

  /** Called once by the runtime. Throws `InvalidArgumentError` when bound twice. */
  bind(host: ExecutorHost): void {
    if (this.host) throw new InvalidArgumentError('A DbosExecutor serves one TaskRuntime');
    this.host = host;
  }

  /** New tasks are leased to this instance (`{ holder: executorId, leaseMs }`) and run here. */
  leaseForNewTask(): { holder: string; leaseMs: number } {
    return { holder: this.executorId, leaseMs: this.leaseMs };
  }

  /**
   * Starts the task's DBOS workflow (`DBOS.startWorkflow` with workflow ID = task id; idempotent).
   * Never rejects: a start that failed is made by the next takeover pass (`recover`, the heartbeat).
   */
  async start(task: TaskRecord, since: number): Promise<void> {
    if (this.closed) return;
    if (task.lease?.holder === this.executorId) this.fresh.set(task.taskId, { fence: fenceOf(task), since });
    try {
      await this.launch();
      await this.startWorkflow(task.taskId);
    } catch (error) {
      this.fresh.delete(task.taskId);
      this.quiet(error, task.taskId);
    }
  }

  /**
   * Launches DBOS (once; DBOS resumes this executor ID's own pending workflows then), starts the
   * lease heartbeat (every `leaseMs / 3`: renewals, takeovers) and the reconciler, then makes sure
   * every unfinished task that no live instance holds has a workflow running somewhere (a crash
   * between the store's create and `startWorkflow` must not orphan a task) and re-delivers answers
   * stored but not delivered. Resolves with how many tasks it started or recovered. Rejects when
   * DBOS cannot launch (its database unreachable) or the store cannot be read.
   */
  async recover(): Promise<number> {
    await this.launch();
    if (!this.host!.store.exclusive) await this.host!.store.measureClock().catch(() => undefined);
    this.startTimers();
    const started = await this.takeOver();
    await this.reconcile(true).catch((error) => this.quiet(error));
    return started;
  }

  /**
   * Stops the task's work everywhere: aborts its run here, cancels its DBOS workflow
   * (`DBOS.cancelWorkflow`: no step of it begins or is recorded any more, in any process; waited for
   * at most `leaseMs`, as a paused process may hold the workflow's row lock until PostgreSQL ends its
   * session — the store's cancel already keeps every step from beginning) and, when
   * another instance may have held a permit confirmed just before the store's cancel, waits
   * `permitMs` so that permit has expired before the cancel is acknowledged.
   */
  async cancelled(task: TaskRecord, revoked: Lease | undefined): Promise<void> {
    const run = this.runs.get(task.taskId);
    run?.controller.abort(new TaskCancelledSignal(task.taskId));
    this.fresh.delete(task.taskId);
    const cancelling = (async () => {
      await this.launch();
      await DBOS.cancelWorkflow(task.taskId);
    })().catch((error: unknown) => {
      // A workflow never started has nothing to cancel; other failures: the store's cancel stands and every run checks it.
      if (!(error instanceof DBOSErrors.DBOSNonExistentWorkflowError)) this.quiet(error, task.taskId);
    });
    // Safety does not wait for DBOS (no step begins without a permit from the store, which the cancel
    // revoked); the acknowledgement waits for it at most a lease, e.g. behind a paused holder's row lock.
    await Promise.race([cancelling, delay(this.leaseMs)]);
    const heldHere = run !== undefined && revoked?.holder === this.executorId;
    if (!this.host!.store.exclusive && revoked && !heldHere && revoked.expiresAt > this.host!.now() - this.permitMs) await delay(this.permitMs);
  }

  /**
   * Sends each stored answer as the DBOS message `answer:<key>` to the task's workflow, with the
   * idempotency key `<taskId>/answer:<key>` (DBOS inserts it once). Never rejects: an answer that
   * could not be sent is sent by the reconciler.
   */
  async answered(taskId: string, keys: readonly string[]): Promise<void> {
    for (const key of keys) {
      try {
        const answer = await this.host!.store.inputAnswer(taskId, key);
        if (answer !== undefined) await this.deliver(taskId, answerTopic(key), answer as unknown as Json);
      } catch (error) {
        this.quiet(error, taskId);
      }
    }
  }

  /** Sends the DBOS message `completionTopic(id)` to the task's workflow (idempotent). Never rejects. */
  async elicitationCompleted(taskId: string, elicitationId: string): Promise<void> {
    try {
      await this.deliver(taskId, completionTopic(elicitationId), true);
    } catch (error) {
      this.quiet(error, taskId);
    }
  }

  /** True while this process runs the task's handler. */
  isRunning(taskId: string): boolean {
    return this.runs.has(taskId);
  }

  /**
   * Stops the heartbeat, stops every run here (their DBOS executions park, recording nothing),
   * releases their leases (another instance may recover them at once) and shuts DBOS down.
   */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    if (this.heartbeat) clearInterval(this.heartbeat);
    if (this.reconciler) clearInterval(this.reconciler);
    await Promise.allSettled([this.tickRun, this.reconcileRun, this.launching]);
    const runs = [...this.runs.entries()];
    for (const [, run] of runs) run.controller.abort(new ShutdownSignal());
    await Promise.all(runs.map(([taskId, run]) => this.host!.store.renew(taskId, run.fence, -1).catch(() => undefined)));
    if (this.launching) {
      await DBOS.shutdown({ deregister: true }).catch((error) => this.quiet(error));
      registered = undefined;
    }
    if (active === this) active = undefined;
  }

  // ---- DBOS ----

  /** Configures, registers the workflow and launches DBOS once per executor. */
  private launch(): Promise<void> {
    if (this.closed) return Promise.reject(new ShutdownSignal());
    this.launching ??= (async () => {
      DBOS.setConfig({
        name: this.options.appName ?? 'mcp-tasks',
        systemDatabaseUrl: this.options.systemDatabaseUrl,
        systemDatabaseSchemaName: this.options.systemDatabaseSchemaName ?? 'dbos',
        applicationVersion: this.options.applicationVersion ?? 'mcp-tasks-dbos-1',
        executorID: this.executorId,
        logLevel: this.options.logLevel ?? 'warn',
        // A process paused (SIGSTOP, a VM freeze) inside one of DBOS's transactions holds its row
        // locks: PostgreSQL ends such a session after a lease, so the others' cancels and recoveries wait no longer.
        systemDatabaseIdleTransactionTimeoutMs: Math.max(1000, this.leaseMs),
      });
      registered ??= DBOS.registerWorkflow(taskWorkflow, { name: DBOS_TASK_WORKFLOW, maxRecoveryAttempts: 1_000_000 });
      try {
        await DBOS.launch();
      } catch (error) {
        this.launching = undefined; // a later recover() may try again
        throw new ExecutorUnavailableError(
          'dbos',
          `DBOS could not start on its system database ${redactUrl(this.options.systemDatabaseUrl)}: ${error instanceof Error ? error.message : String(error)}`,
          'check that PostgreSQL runs at that address and that the user may create a database and schema there (the demo: --dbos-database, or a postgres:// --store)',
          { cause: error },
        );
      }
    })();
    return this.launching;
  }

  private async startWorkflow(taskId: string): Promise<void> {
    const handle = await DBOS.startWorkflow(registered!, { workflowID: taskId })(taskId);
    // The outcome is read from the store; a parked or abandoned execution's rejection is expected.
    void handle.getResult().catch(() => undefined);
  }

  /**
   * The body of the workflow `mcp-tasks.task` in this process: takes the task's lease (or waits for
   * it), runs its handler with `runOnEngine` and returns how it ended. A run that must stop without
   * an outcome throws `DBOSWorkflowConflictError` (DBOS parks the execution, recording nothing).
   */
  async execute(taskId: string): Promise<string> {
    const host = this.host;
    if (!host || this.closed) throw new DBOSWorkflowConflictError(taskId);
    const store = host.store;
    let fence: Fence;
    let since: number;
    const fresh = this.fresh.get(taskId);
    this.fresh.delete(taskId);
    if (fresh) ({ fence, since } = fresh);
    else {
      const acquired = await this.acquire(taskId);
      if (typeof acquired === 'string') return acquired;
      ({ fence, since } = acquired);
    }
    if (this.runs.has(taskId)) throw new DBOSWorkflowConflictError(taskId); // an older execution still stops here
    const controller = new AbortController();
    const signal = controller.signal;
    const guard = new LeaseGuard({ store, taskId, fence, signal, leaseMs: this.leaseMs, permitMs: this.permitMs, exclusive: store.exclusive, since });
    const run: LocalRun = { controller, guard, fence };
    this.runs.set(taskId, run);
    this.recovering.delete(taskId);
    const unfollow = store.onTaskChange(taskId, (task) => {
      if (!task) controller.abort(new LeaseLostSignal(taskId));
      else if (task.status === 'cancelled') controller.abort(new TaskCancelledSignal(taskId));
      else if (task.lease && (task.lease.holder !== fence.holder || (task.lease.epoch ?? 0) !== fence.epoch)) controller.abort(new LeaseLostSignal(taskId));
    });
    let end: RunEnd;
    try {
      end = await runOnEngine(this.runHost(host, signal), taskId, this.durableRun(taskId, run), {
        signal,
        onEnded: () => controller.abort(new LeaseLostSignal(taskId)), // decided below from the store
        fencingToken: fence.epoch,
        fence,
        isEngineError: isDbosError,
      });
    } catch (error) {
      if (error instanceof StoreUnavailableError || error instanceof ConflictError) {
        // Stopped for the store's sake outside a step: resume the workflow later (it replays its steps).
        this.resumeLater(taskId);
        throw new DBOSWorkflowConflictError(taskId);
      }
      throw error;
    } finally {
      unfollow();
      if (this.runs.get(taskId) === run) this.runs.delete(taskId);
    }
    if (end.kind === 'ended') return end.task.status;
    if (end.kind === 'cancelled') return this.endCancelled(taskId);
    if (end.kind === 'interrupted' && (end.reason === 'already_terminal' || end.reason === 'deleted')) return end.reason;
    // Stopped (shutdown, lease lost, aborted): end the workflow only if the task ended; else park.
    const current = await store.get(taskId, ENGINE_ACCESS).catch((error: unknown) => (error instanceof TaskNotFoundError ? null : undefined));
    if (current === null) return 'deleted';
    if (current?.status === 'cancelled') return this.endCancelled(taskId);
    if (current && isTerminal(current.status)) return current.status;
    throw new DBOSWorkflowConflictError(taskId);
  }

  /**
   * Ends the execution of a task cancelled in the store with its workflow `CANCELLED` in DBOS too
   * (whether or not `cancelled` got there first): cancels it (outside any step) and parks the
   * execution, which DBOS then ends as cancelled. Should the cancel not be written (an outage), the
   * workflow stays pending and its next recovery finds the task ended.
   */
  private async endCancelled(taskId: string): Promise<never> {
    await DBOSExecutor.globalInstance!.systemDatabase.cancelWorkflows([taskId]).catch((error: unknown) => this.quiet(error, taskId));
    throw new DBOSErrors.DBOSWorkflowCancelledError(taskId);
  }

  /**
   * Takes the task's lease for this run (`TaskStore.claim`: a new epoch), waiting while another live
   * instance holds it. Resolves with the fence, or with the task's status when it has ended.
   */
  private async acquire(taskId: string): Promise<{ fence: Fence; since: number } | string> {
    const store = this.host!.store;
    for (let attempt = 0; ;) {
      if (this.closed) throw new DBOSWorkflowConflictError(taskId);
      const since = monotonicNow();
      try {
        const claimed = await store.claim(taskId, this.executorId, this.leaseMs);
        if (claimed) return { fence: fenceOf(claimed), since };
        const task = await store.get(taskId, ENGINE_ACCESS).catch((error: unknown) => {
          if (error instanceof TaskNotFoundError) return undefined;
          throw error;
        });
        if (!task) return 'deleted';
        if (isTerminal(task.status)) return task.status;
        const left = (task.lease?.expiresAt ?? 0) - store.now();
        await store.nextChange(taskId, { timeoutMs: Math.max(50, Math.min(left + 20, this.leaseMs)) });
        attempt = 0;
      } catch (error) {
        if (!(error instanceof StoreUnavailableError || error instanceof ConflictError)) throw error;
        await delay(backoff(attempt++));
      }
    }
  }

  /**
   * The host a run sees: the runtime's, with a store whose calls from the run ride out outages
   * (`retryingStore`) and a finish retried the same way. `EngineContext` adds the run's fence to
   * every write itself; what this adds is that a step function that succeeded is never run again
   * because the copy of its record (or its question, its progress) met an outage: `DBOS.runStep`
   * would otherwise see the step fail and our `effect` would run the whole function again.
   */
  private runHost(host: ExecutorHost, signal: AbortSignal): ExecutorHost {
    const retry = retrying(signal);
    return {
      store: retryingStore(host.store, retry),
      log: host.log,
      now: () => host.now(),
      handler: (tool) => host.handler(tool),
      openArguments: (args) => host.openArguments(args),
      finish: (task, outcome, fence) => retry(() => host.finish(task, outcome, fence)),
      onError: (error, taskId) => host.onError(error, taskId),
      watchStalls: (task, runSignal, fence) => host.watchStalls(task, runSignal, fence),
      expire: (task, fence) => retry(() => host.expire(task, fence)),
    };
  }

  /** `DurableRun` on DBOS for one run. */
  private durableRun(taskId: string, run: LocalRun): DurableRun {
    const signal = run.controller.signal;
    const timeoutSeconds = this.receiveTimeoutSeconds;
    return {
      step: <T extends Json | null>(name: string, fn: () => Promise<T>): Promise<T> =>
        DBOS.runStep(() => this.effect(taskId, run, fn), { name, retriesAllowed: false }) as Promise<T>,
      sleep: async (_name: string, ms: number): Promise<void> => {
        signal.throwIfAborted();
        await untilAborted(DBOS.sleepms(ms), signal);
      },
      now: async (): Promise<number> => {
        signal.throwIfAborted();
        return DBOS.now();
      },
      receive: async <T extends Json>(topic: string, stop?: AbortSignal): Promise<T> => {
        const until = stop ? AbortSignal.any([signal, stop]) : signal;
        for (;;) {
          until.throwIfAborted();
          const message = await untilAborted(DBOS.recv<T>(topic, { timeoutSeconds }), until);
          if (message !== null) return message;
        }
      },
    };
  }

  /**
   * One step function's execution under fencing: begins only under a permit (`LeaseGuard`), retries
   * store outages with backoff, and turns every reason to stop (cancel, lease lost, shutdown) into
   * `DBOSWorkflowConflictError`, which DBOS does not record as the step's outcome.
   */
  private async effect<T>(taskId: string, run: LocalRun, fn: () => Promise<T>): Promise<T> {
    const { controller, guard } = run;
    for (let attempt = 0; ;) {
      if (controller.signal.aborted) throw new DBOSWorkflowConflictError(taskId);
      try {
        await guard.permit();
        if (!guard.fresh()) continue; // the permit went stale meanwhile (a pause): ask again
        return await fn();
      } catch (error) {
        if (controller.signal.aborted) throw new DBOSWorkflowConflictError(taskId);
        if (error instanceof LeaseLostError) {
          controller.abort(error.reason === 'cancelled' ? new TaskCancelledSignal(taskId) : new LeaseLostSignal(taskId));
          throw new DBOSWorkflowConflictError(taskId);
        }
        if (error instanceof StoreUnavailableError || error instanceof ConflictError) {
          await delay(backoff(attempt++), controller.signal);
          continue;
        }
        throw error;
      }
    }
  }

  // ---- placement, liveness, reconciliation ----

  private startTimers(): void {
    if (this.closed || this.heartbeat) return;
    this.heartbeat = setInterval(
      () => {
        if (this.tickRun) return;
        this.tickRun = this.tick().finally(() => (this.tickRun = undefined));
      },
      Math.max(50, Math.floor(this.leaseMs / 3)),
    );
    this.heartbeat.unref();
    if (this.reconcileMs > 0) {
      this.reconciler = setInterval(() => {
        if (this.reconcileRun) return;
        this.reconcileRun = this.reconcile(false)
          .then(() => this.purgeWorkflows())
          .catch((error) => this.quiet(error))
          .finally(() => (this.reconcileRun = undefined));
      }, this.reconcileMs);
      this.reconciler.unref();
    }
  }

  /** One heartbeat: renew the leases of runs here (a lost one stops its run), then take over. */
  private async tick(): Promise<void> {
    if (this.closed) return;
    for (const [taskId, run] of this.runs) {
      const sent = monotonicNow();
      try {
        await this.host!.store.renew(taskId, run.fence, this.leaseMs);
        run.guard.renewed(sent, this.leaseMs);
      } catch (error) {
        if (error instanceof LeaseLostError) run.controller.abort(error.reason === 'cancelled' ? new TaskCancelledSignal(taskId) : new LeaseLostSignal(taskId));
        else if (error instanceof TaskNotFoundError) run.controller.abort(new LeaseLostSignal(taskId));
        else this.quiet(error, taskId);
      }
    }
    await this.takeOver().catch((error) => this.quiet(error));
  }

  /**
   * Finds unfinished tasks that no live instance runs — lease expired (or none), not running here —
   * and gets their workflows running: DBOS's recovery for each presumed-dead holder (one with no live
   * lease left), then per task: a workflow missing (lost start) is started, one still pending and
   * not dequeued by anyone is resumed alone. Each task is triggered at most once per lease length.
   * Returns how many tasks it triggered.
   */
  private async takeOver(): Promise<number> {
    if (this.closed) return 0;
    const store = this.host!.store;
    const tasks = await store.listUnfinished();
    const now = store.now();
    const alive = new Set<string>();
    const orphans: TaskRecord[] = [];
    for (const task of tasks) {
      const lease = task.lease;
      if (lease && lease.expiresAt > now) alive.add(lease.holder);
      else if (!this.runs.has(task.taskId) && !this.fresh.has(task.taskId)) orphans.push(task);
    }
    const clock = monotonicNow();
    for (const [taskId, at] of this.recovering) if (clock - at > this.leaseMs) this.recovering.delete(taskId);
    const pending = orphans.filter((task) => !this.recovering.has(task.taskId));
    if (pending.length === 0) return 0;
    const dead = new Set(
      pending.map((task) => task.lease?.holder).filter((holder): holder is string => holder !== undefined && holder !== this.executorId && !alive.has(holder)),
    );
    for (const holder of dead) {
      const handles = await DBOSExecutor.globalInstance!.recoverPendingWorkflows([holder]);
      if (handles.length > 0)
        this.host!.log.info({ previousExecutor: holder, workflows: handles.length }, 'dbos: recovering the workflows of an instance presumed dead');
    }
    let triggered = 0;
    for (const task of pending) {
      if (this.closed) break;
      this.recovering.set(task.taskId, monotonicNow());
      const status = await DBOS.getWorkflowStatus(task.taskId);
      if (!status) {
        await this.startWorkflow(task.taskId);
        this.host!.log.info({ taskId: task.taskId }, 'dbos: started the workflow of a task whose start was lost');
      } else if (
        status.status === 'PENDING' &&
        !(status.executorId === this.executorId && DBOSExecutor.globalInstance!.systemDatabase.checkForRunningWorkflow(task.taskId))
      ) {
        await DBOS.resumeWorkflow(task.taskId);
        this.host!.log.info({ taskId: task.taskId, previousExecutor: status.executorId }, 'dbos: resumed a workflow nobody runs');
      } else if (status.status !== 'ENQUEUED' && status.status !== 'PENDING') {
        this.host!.log.warn({ taskId: task.taskId, workflowStatus: status.status }, 'dbos: the workflow of an unfinished task has ended');
        continue;
      }
      triggered++;
    }
    return triggered;
  }

  /** Resumes `taskId`'s workflow after a backoff (a run stopped by a store outage outside a step). */
  private resumeLater(taskId: string): void {
    const timer = setTimeout(() => {
      if (this.closed) return;
      void DBOS.resumeWorkflow(taskId).catch((error) => {
        this.quiet(error, taskId);
        this.resumeLater(taskId);
      });
    }, 1000);
    timer.unref();
  }

  /**
   * Delivers again answers and completions stored but not delivered: every unfinished task's at
   * `recover` (`all`), then those of tasks this instance holds. An answer counts as consumed once its
   * workflow recorded the step `settleStepName(key)`.
   */
  private async reconcile(all: boolean): Promise<void> {
    if (this.closed) return;
    const store = this.host!.store;
    for (const task of await store.listUnfinished()) {
      if (this.closed) return;
      if (!all && task.lease?.holder !== this.executorId) continue;
      const journal = await store.readJournal(task.taskId);
      const wanted: Array<{ topic: string; step?: string; key?: string }> = [];
      for (const key of journal.keys()) {
        const parsed = parseJournalKey(key);
        if (parsed?.kind === 'input') wanted.push({ topic: answerTopic(parsed.question), step: settleStepName(parsed.question), key: parsed.question });
        else if (parsed?.kind === 'elicitation-complete') wanted.push({ topic: completionTopic(parsed.elicitationId) });
      }
      const open = wanted.filter((item) => !this.delivered.has(`${task.taskId}\n${item.topic}`));
      if (open.length === 0) continue;
      const steps = new Set(((await DBOS.listWorkflowSteps(task.taskId).catch(() => undefined)) ?? []).map((step) => step.name));
      for (const item of open) {
        if (item.step && steps.has(item.step)) {
          this.delivered.add(`${task.taskId}\n${item.topic}`);
          continue;
        }
        const value = item.key !== undefined ? ((await store.inputAnswer(task.taskId, item.key)) as unknown as Json | undefined) : true;
        if (value === undefined) continue;
        await this.deliver(task.taskId, item.topic, value).catch((error) => this.quiet(error, task.taskId));
      }
    }
  }

  /**
   * Deletes from DBOS the ended workflows (`SUCCESS`, `ERROR`, `CANCELLED`, `MAX_RECOVERY_ATTEMPTS_EXCEEDED`)
   * of tasks no longer in the store (purged after their TTL by `TaskRuntime`, or deleted): their
   * step records, messages and status (`DBOS.deleteWorkflows`). A workflow still pending is never
   * deleted, nor one whose task the store still has (or cannot say: an outage ends the pass). Each
   * call checks up to `limit` workflows, oldest first, continuing where the last call stopped and
   * starting over at the end, so every ended workflow is looked at again once per cycle. Runs
   * after each reconciliation pass (`reconcileMs`). Resolves with how many workflows it deleted.
   */
  async purgeWorkflows(limit = 200): Promise<number> {
    if (this.closed) return 0;
    await this.launch();
    const store = this.host!.store;
    const ended = await DBOS.listWorkflows({
      workflowName: DBOS_TASK_WORKFLOW,
      status: ['SUCCESS', 'ERROR', 'CANCELLED', 'MAX_RECOVERY_ATTEMPTS_EXCEEDED'],
      limit,
      offset: this.purgeOffset,
      loadInput: false,
      loadOutput: false,
    });
    const gone: string[] = [];
    for (const workflow of ended) {
      if (this.closed) return 0;
      try {
        await store.get(workflow.workflowID, ENGINE_ACCESS);
      } catch (error) {
        if (!(error instanceof TaskNotFoundError)) throw error;
        gone.push(workflow.workflowID);
      }
    }
    if (gone.length > 0) {
      await DBOS.deleteWorkflows(gone);
      this.host!.log.info({ count: gone.length }, 'dbos: deleted the workflows of purged tasks');
    }
    this.purgeOffset = ended.length < limit ? 0 : this.purgeOffset + ended.length - gone.length;
    return gone.length;
  }

  /** `DBOS.send` to the task's workflow under `topic`, idempotency key `<taskId>/<topic>`. */
  private async deliver(taskId: string, topic: string, value: Json): Promise<void> {
    await this.launch();
    await DBOS.send(taskId, value, topic, `${taskId}/${topic}`);
    this.delivered.add(`${taskId}\n${topic}`);
  }

  /** Expected errors under faults (outages, lost leases, a stopping executor) stay quiet; others go to the host. */
  private quiet(error: unknown, taskId?: string): void {
    if (error instanceof StoreUnavailableError || error instanceof LeaseLostError || error instanceof ShutdownSignal) return;
    if (error instanceof DBOSErrors.DBOSNonExistentWorkflowError) return; // a send before the workflow exists: reconciled later
    if (this.host) this.host.onError(error, taskId);
  }
}

/** Calls `call` until it does not meet a store outage (backoff 0.25 s doubling to 10 s), or `signal` aborts. */
function retrying(signal: AbortSignal): <T>(call: () => Promise<T>) => Promise<T> {
  return async (call) => {
    for (let attempt = 0; ;) {
      signal.throwIfAborted();
      try {
        return await call();
      } catch (error) {
        if (!(error instanceof StoreUnavailableError || error instanceof ConflictError) || signal.aborted) throw error;
        await delay(backoff(attempt++), signal);
      }
    }
  };
}

/** The store calls a run makes (`runOnEngine`, `EngineContext`): retried through outages. */
const RUN_CALLS = new Set<string | symbol>(['get', 'appendJournal', 'readJournal', 'report', 'requestInput', 'settleInput', 'inputAnswer']);

/** `store` with the calls of `RUN_CALLS` retried by `retry`; everything else as it is. */
function retryingStore(store: TaskStore, retry: <T>(call: () => Promise<T>) => Promise<T>): TaskStore {
  return new Proxy(store, {
    get(target, prop) {
      const value: unknown = Reflect.get(target, prop, target);
      if (typeof value !== 'function') return value;
      const method = (value as (...args: unknown[]) => unknown).bind(target);
      return RUN_CALLS.has(prop) ? (...args: unknown[]) => retry(() => method(...args) as Promise<unknown>) : method;
    },
  });
}

/** The workflow function registered with DBOS: runs the task on this process's executor. */
async function taskWorkflow(taskId: string): Promise<string> {
  if (!active) throw new DBOSWorkflowConflictError(taskId);
  return active.execute(taskId);
}

function fenceOf(task: TaskRecord): Fence {
  return { holder: task.lease!.holder, epoch: task.lease!.epoch ?? 0 };
}

/** `url` without its password, for messages. */
function redactUrl(url: string): string {
  try {
    const parsed = new URL(url);
    if (parsed.password) parsed.password = '***';
    return parsed.toString();
  } catch {
    return url;
  }
}
