import { randomBytes } from 'node:crypto';
import { hostname } from 'node:os';
import { InvalidArgumentError, LeaseLostError, StoreUnavailableError, TaskNotFoundError } from '../core/errors.js';
import { isTerminal, type TaskStatus } from '../core/status.js';
import type { Json } from '../core/json.js';
import { withSignals } from '../core/deadline.js';
import { leasePlausible, type Fence, type Lease, type TaskRecord } from '../core/task.js';
import { runKey, type RunEntry } from '../core/journal-keys.js';
import type { Logger } from '../core/log.js';
import type { TaskStore } from '../store/task-store.js';
import { ExecutionContext } from './context.js';
import type { ExecutorHost, TaskExecutor } from './executor.js';
import { LeaseGuard, monotonicNow } from './lease-guard.js';
import { DeadlineExceededSignal, LeaseLostSignal, ShutdownSignal, StoreUnavailableSignal, TaskCancelledSignal } from './signals.js';
import type { StallWatch } from './stalls.js';
import type { RegisteredHandler } from './handler.js';
import { TimerQueue } from './timer-queue.js';
import { recordTakeover, registerLiveSource, RunTelemetry, type RunEnd, type RunReason } from './telemetry.js';
import type { TaskToolResult } from './handler.js';

/** Options of the `EmbeddedExecutor` (also accepted by `TaskRuntime` when it builds the default one). */
export interface EmbeddedExecutorOptions {
  /** This instance's identity in leases. Default: `<hostname>-<pid>-<random>`. */
  instanceId?: string;
  /**
   * Lease length in ms (default 5000): how long after an instance dies before another instance
   * takes its tasks over. On stores shared by several processes leases are renewed every third
   * of it; on an exclusive store (memory, SQLite by default) they are never consulted or renewed.
   */
  leaseMs?: number;
  /**
   * Fencing on stores shared by several processes (see `LeaseGuard`): how long a confirmation from
   * the store that this instance still holds a task authorizes effects (steps, timer continuations,
   * the use of answers) to begin, in ms by the monotonic clock; a cancel of a task another instance
   * holds is acknowledged only this long after it was written, so no permit from before the cancel
   * is still usable. Default `min(500, leaseMs / 5)`.
   */
  permitMs?: number;
  /**
   * Shared stores with a clock of their own (PostgreSQL, Redis): the largest difference between
   * this instance's clock and the store's it tolerates, in ms (default 1000). Beyond it the
   * instance takes no leases — it creates tasks for the other instances to run, runs none itself,
   * stops its runs and releases their leases — logs an error, and reports the offset
   * (`mcp_tasks.clock.offset`) until its clock is back within it. A lease written from a clock that
   * had jumped ahead before the jump was measured is taken over by the others once it stayed
   * unrenewed for its own length (`leasePlausible`).
   */
  maxClockSkewMs?: number;
  /**
   * Whether this instance runs tasks (default true). `false` makes a front instance: it creates
   * tasks without a lease, stores answers and cancels, serves reads — and runs no handler, holds
   * no lease, starts no heartbeat. Instances that run tasks (`TaskServer.serveWorker`, or servers
   * with the default) on the same shared store claim each new task within a heartbeat (a third of
   * `leaseMs`), at once when the store's change feed announces it (PostgreSQL, Redis). For
   * serverless hosts and split deployments (HTTP in one place, execution in another). Needs a store
   * shared by several processes: `recover` throws `InvalidArgumentError` on an exclusive one.
   */
  runTasks?: boolean;
}

interface Execution {
  controller: AbortController;
  done: Promise<void>;
  /** The task's status as last written (for the `mcp_tasks.tasks.live` gauge). */
  status: TaskStatus;
  /** The task's tool (metric attributes). */
  tool: string;
  /** Fencing of this run: its lease holder and epoch, and permits before effects. */
  guard: LeaseGuard;
}

/**
 * How an execution started: its reason, the instance that held the task before a takeover, and
 * when (monotonic ms) the write that gave this run its lease was sent.
 */
interface RunStart {
  reason: RunReason;
  previousHolder?: string;
  since: number;
}

/** Waits between in-process retries of a run interrupted by a store outage: 0.5 s doubling, at most 30 s. */
/** How many tasks a takeover (a restart's recovery, a heartbeat's sweep) claims at once. */
const CLAIM_CONCURRENCY = 64;
const RETRY_FIRST_MS = 500;
const RETRY_MAX_MS = 30_000;

/**
 * The embedded executor (the default): runs task handlers in this process over the `TaskStore`'s
 * own journal, timers and leases.
 *
 * - A new task runs at once (`start`); `recover` restarts every `working` / `input_required` task
 *   from its journal: finished steps replay, timers keep their original deadline, answered
 *   questions return their answer, unanswered ones wait again.
 * - Fencing (see `LeaseGuard`): each run holds the task under a lease epoch; every journal and
 *   status write it makes carries that epoch and is refused by the store once the task was taken
 *   over, cancelled or ended, and no step function, timer continuation or use of an answer begins
 *   without a fresh confirmation that it still holds the task.
 * - Placement: on stores shared by several processes, a heartbeat renews this instance's leases
 *   every third of `leaseMs` and takes over tasks whose lease expired (an instance presumed dead).
 * - Store outages are never a task's outcome: a run interrupted by one (`StoreUnavailableError`) is
 *   started again in this process with backoff (0.5 s doubling to 30 s) until the store answers,
 *   replaying its journal; on shared stores another instance may take it over instead.
 * - On shared stores with a clock (PostgreSQL, Redis), lease expiries and timer due times are read
 *   on the store's clock; an instance whose clock is more than `maxClockSkewMs` off takes no leases.
 * - A cancel written to the store by anyone (any connection, any process sharing the store) aborts
 *   the run's `ctx.signal`; answers reach a waiting handler through the store's change feed.
 */
export class EmbeddedExecutor implements TaskExecutor {
  readonly name = 'embedded';
  private host!: ExecutorHost;
  private readonly executions = new Map<string, Execution>();
  private closed = false;
  /** This instance's identity in leases. */
  readonly instanceId: string;
  /** Lease length in ms. */
  readonly leaseMs: number;
  private heartbeat?: NodeJS.Timeout;
  private timersStarted = false;
  private unregisterLive?: () => void;
  /** Every durable timer of this executor's tasks, on one `setTimeout` (see `TimerQueue`). */
  private timers!: TimerQueue;
  /** See `EmbeddedExecutorOptions.permitMs`. */
  readonly permitMs: number;
  private readonly maxClockSkewMs: number;
  /** Tasks whose tool this instance does not have, already logged (see `noteForeignTool`). */
  private readonly foreignTools = new Set<string>();
  /** See `EmbeddedExecutorOptions.runTasks`. */
  readonly runsTasks: boolean;
  /** Stops listening to the store's change feed for unclaimed tasks (see `wakeOnNewTasks`). */
  private unsubscribeChanges?: () => void;
  /** Runs abandoned by an operator retry (see `restart`): their end must not touch the new run's bookkeeping. */
  private readonly abandoned = new WeakSet<Execution>();
  /** True while this instance's clock is beyond `maxClockSkewMs` from the store's: it takes no leases. */
  private skewed = false;
  /** Pending in-process retries of runs a store outage interrupted: task id → attempt, timer, last start (monotonic ms). */
  private readonly retries = new Map<string, { attempt: number; timer?: NodeJS.Timeout; startedAt?: number }>();
  /** Leases ending implausibly late (see `leasePlausible`) this instance watches: task id → the lease seen, since when (monotonic ms). */
  private readonly implausible = new Map<string, { key: string; since: number }>();
  /** The heartbeat under way, and the retries and claims under way (`background`), which `close` waits for. */
  private tickRun?: Promise<void>;
  private readonly resuming = new Set<Promise<void>>();

  constructor(options: EmbeddedExecutorOptions = {}) {
    this.instanceId = options.instanceId ?? `${hostname()}-${process.pid}-${randomBytes(4).toString('hex')}`;
    this.leaseMs = options.leaseMs ?? 5000;
    this.permitMs = Math.max(1, Math.floor(options.permitMs ?? Math.min(500, this.leaseMs / 5)));
    if (this.permitMs > this.leaseMs / 2)
      throw new InvalidArgumentError(`permitMs (${this.permitMs}) must be at most half of leaseMs (${this.leaseMs}): a permit must end well before the lease`);
    this.maxClockSkewMs = options.maxClockSkewMs ?? 1000;
    this.runsTasks = options.runTasks !== false;
  }

  bind(host: ExecutorHost): void {
    this.host = host;
    this.timers = new TimerQueue(() => host.now());
  }

  private get store(): TaskStore {
    return this.host.store;
  }

  private get log(): Logger {
    return this.host.log;
  }

  private now(): number {
    return this.host.now();
  }

  private onError(error: unknown, taskId?: string): void {
    this.host.onError(error, taskId);
  }

  /** A new task carries this instance's lease — unless its clock is off: another instance claims and runs it then. */
  leaseForNewTask(): { holder: string; leaseMs: number } | undefined {
    return this.skewed || !this.runsTasks ? undefined : { holder: this.instanceId, leaseMs: this.leaseMs };
  }

  async start(task: TaskRecord, since: number): Promise<void> {
    if (!this.runsTasks) return; // a worker claims it (see `runTasks`)
    this.startHeartbeat();
    if (task.lease) this.launch(task, { reason: 'start', since });
  }

  /**
   * Resumes unfinished tasks from the store and starts the heartbeat that renews this instance's
   * leases and takes over tasks of instances that died. With an exclusive backend (one process:
   * memory, SQLite by default) every unfinished task is taken at once — its previous holder was this
   * very process before a crash; otherwise only tasks whose lease is free or expired. Returns how
   * many tasks were started.
   */
  async recover(): Promise<number> {
    if (!this.runsTasks) {
      if (this.store.exclusive)
        throw new InvalidArgumentError(
          'runTasks: false needs a store shared with the instances that run tasks (PostgreSQL, Redis, or SQLite with ?shared=true): on this one no other process could run them',
        );
      return 0;
    }
    if (!this.store.exclusive) await this.checkClock();
    this.startHeartbeat();
    return this.takeOver(this.store.exclusive);
  }

  /**
   * Aborts the task's run here and its pending retry. Another instance (or a run of this one not yet
   * started) may hold a permit confirmed just before the cancel was written: it expires within
   * permitMs (see LeaseGuard), and only then does this resolve, so no effect of the task begins after
   * the cancel's acknowledgement. Not needed when this instance's run of it was just aborted, or the
   * lease had already expired before the permit could be confirmed.
   */
  /**
   * See `TaskExecutor.restart`: claims the task by force (a new lease epoch) and launches its run
   * here, replaying the trimmed journal; an earlier run of it in this process is aborted and
   * abandoned first. An instance that runs no tasks (`runTasks: false`) gives the retry's hold up
   * instead (an expired lease): a worker takes it over at its next heartbeat.
   */
  async restart(taskId: string, heldBy: string): Promise<void> {
    const stale = this.executions.get(taskId);
    if (stale) {
      stale.controller.abort(new LeaseLostSignal(taskId));
      this.abandoned.add(stale);
      this.executions.delete(taskId);
    }
    this.cancelRetry(taskId);
    if (!this.runsTasks || this.skewed) {
      await this.store.renew(taskId, heldBy, -1);
      return;
    }
    this.startHeartbeat();
    const since = monotonicNow();
    const claimed = await this.store.claim(taskId, this.instanceId, this.leaseMs, true);
    if (!claimed) return; // it ended meanwhile
    const run: RunStart = { reason: 'retry', since };
    if (this.launch(claimed, run)) await this.journalRun(claimed, run);
  }

  async cancelled(task: TaskRecord, revoked: Lease | undefined): Promise<void> {
    const running = this.executions.get(task.taskId);
    running?.controller.abort(new TaskCancelledSignal(task.taskId));
    this.cancelRetry(task.taskId);
    const heldHere = running !== undefined && revoked?.holder === this.instanceId;
    if (!this.store.exclusive && revoked && !heldHere && revoked.expiresAt > this.now() - this.permitMs) {
      await new Promise((resolve) => setTimeout(resolve, this.permitMs));
    }
  }

  /** Nothing to do: a waiting handler hears of the answer through the store's change feed, wherever it runs. */
  async answered(): Promise<void> {}

  /** Nothing to do: the waiting handler hears of the journal entry through the store's change feed. */
  async elicitationCompleted(): Promise<void> {}

  /** True while this executor runs the task's handler. */
  isRunning(taskId: string): boolean {
    return this.executions.has(taskId);
  }

  /**
   * Stops every running handler. Their tasks stay as stored, with their leases released so another
   * instance (or this one's next start) takes them over at once.
   */
  async close(): Promise<void> {
    this.closed = true;
    if (this.heartbeat) clearInterval(this.heartbeat);
    this.unsubscribeChanges?.();
    for (const taskId of [...this.retries.keys()]) this.cancelRetry(taskId);
    // Claims under way finish (and, closed, give their lease back) before the store may close.
    await Promise.allSettled([this.tickRun, ...this.resuming]);
    this.unregisterLive?.();
    const running = [...this.executions.entries()];
    for (const [, execution] of running) execution.controller.abort(new ShutdownSignal());
    await Promise.allSettled(running.map(([, execution]) => execution.done));
    this.timers?.close();
    await Promise.all(running.map(([taskId, execution]) => this.release(taskId, execution.guard.fence)));
  }

  /** Whether this instance currently refuses leases because its clock is too far from the store's (see `maxClockSkewMs`). */
  get clockSkewed(): boolean {
    return this.skewed;
  }

  /**
   * Measures this instance's clock against the store's (`TaskStore.measureClock`, `samples`
   * readings) and applies `maxClockSkewMs`: beyond it, logs an error (once, until it is back
   * within) and stops taking leases, stopping the runs it holds and releasing their leases for the
   * other instances; back within it, logs that and takes leases again. Runs at `recover` and at the
   * start of every heartbeat (before its renewals and takeovers), so leases are written and judged
   * on a fresh reading of the store's clock. A store that cannot be reached, or a reading slower
   * than the tolerance, leaves the state as it was. Returns the offset in ms (store minus local),
   * or undefined when it could not be measured.
   */
  async checkClock(samples = 3): Promise<number | undefined> {
    let reading: { offsetMs: number; rttMs: number };
    try {
      reading = await this.store.measureClock(samples);
    } catch (error) {
      if (error instanceof StoreUnavailableError) return undefined;
      throw error;
    }
    // A reading is as uncertain as half its round trip: only an offset beyond the tolerance by more
    // than that counts, and a reading slower than the tolerance itself (a stalled store, a blocked
    // event loop) decides nothing.
    if (reading.rttMs > this.maxClockSkewMs) return undefined;
    const skewed = Math.abs(reading.offsetMs) - reading.rttMs / 2 > this.maxClockSkewMs;
    if (skewed && !this.skewed) {
      this.log.error(
        { offsetMs: reading.offsetMs, rttMs: reading.rttMs, maxClockSkewMs: this.maxClockSkewMs, instanceId: this.instanceId },
        `this instance's clock is ${Math.abs(reading.offsetMs)} ms ${reading.offsetMs < 0 ? 'ahead of' : 'behind'} the store's (tolerance ${this.maxClockSkewMs} ms): it takes no task leases until its clock is fixed (check NTP)`,
      );
      this.skewed = true;
      // Stop every run, and release its lease for the other instances at once: the offset is
      // measured now, so `now()` reads the store's clock again and the release is not in the future.
      for (const [taskId, execution] of this.executions) {
        execution.controller.abort(new LeaseLostSignal('clock'));
        void this.release(taskId, execution.guard.fence);
      }
    } else if (!skewed && this.skewed) {
      this.log.warn(
        { offsetMs: reading.offsetMs, instanceId: this.instanceId },
        "this instance's clock agrees with the store's again: it takes task leases again",
      );
      this.skewed = false;
    }
    return reading.offsetMs;
  }

  /**
   * Follows the writes of a task running here (its own, and on shared stores other instances'):
   * keeps `execution.status` current and aborts the run when the task is cancelled or its lease
   * went to another instance. One listener per running task, so a write to a task that does not run
   * here costs this runtime nothing (on shared stores, not even a read of the notice's record).
   */
  private follow(taskId: string, execution: Execution): () => void {
    return this.store.onTaskChange(taskId, (task) => {
      if (!task) return;
      execution.status = task.status;
      if (task.status === 'cancelled') execution.controller.abort(new TaskCancelledSignal(task.taskId));
      else if (task.lease && (task.lease.holder !== this.instanceId || (task.lease.epoch ?? 0) !== execution.guard.epoch))
        execution.controller.abort(new LeaseLostSignal(task.taskId));
    });
  }

  /**
   * Claims and starts unfinished tasks that no live instance holds (all of them when `force`).
   * Each start is journaled as a `RunEntry` (`run:<at>:<holder>`): `recovery` after a restart
   * (an exclusive store, or our own lease), `takeover` (with `previousHolder`) from another
   * instance; the run span says the same (`mcp_tasks.run.reason`), takeovers count in
   * `mcp_tasks.takeovers`.
   */
  private async takeOver(force: boolean, only?: TaskRecord): Promise<number> {
    if (this.skewed) return 0;
    let started = 0;
    const journaled: Promise<unknown>[] = [];
    const now = this.now();
    const seen = new Set<string>();
    // Checked when a task is listed and again before its claim: a claim awaited meanwhile may have changed it.
    const passOver = (taskId: string) => this.closed || this.skewed || this.executions.has(taskId) || this.retries.has(taskId);
    const candidates: { task: TaskRecord; takeImplausible: boolean }[] = [];
    for (const task of only ? [only] : await this.store.listUnfinished()) {
      if (passOver(task.taskId)) continue;
      // A tool this instance does not have (a rolling deploy: the task is a newer release's) is left to
      // an instance that has it; alone on an exclusive store, nobody else could run it, so it ends failed.
      if (!this.store.exclusive && !this.host.handler(task.request.tool)) {
        this.noteForeignTool(task);
        continue;
      }
      const lease = task.lease;
      let takeImplausible = false;
      if (!force && lease && lease.holder !== this.instanceId && lease.expiresAt > now) {
        if (leasePlausible(lease, now)) continue;
        // Ends implausibly late (a clock that jumped): take it only once it stayed unrenewed for its
        // whole length by this instance's monotonic clock — a live holder renews it long before.
        seen.add(task.taskId);
        if (!this.implausibleLongEnough(task.taskId, lease)) continue;
        takeImplausible = true;
      }
      candidates.push({ task, takeImplausible });
    }
    // Claimed CLAIM_CONCURRENCY at a time, not one after another: concurrent claims share a commit
    // (SQLite's group commit, PostgreSQL's batched statements), where 1,000 claims in a row were
    // 1,000 fsyncs (most of a restart's time).
    let next = 0;
    const claimNext = async (): Promise<void> => {
      while (next < candidates.length) {
        const { task, takeImplausible } = candidates[next++]!;
        if (passOver(task.taskId)) continue;
        const since = monotonicNow();
        const claimed = await this.store.claim(task.taskId, this.instanceId, this.leaseMs, force, { takeImplausible });
        if (!claimed) continue;
        if (this.closed) {
          // Closing meanwhile: give the lease back at once instead of leaving it to expire.
          await this.release(claimed.taskId, fenceOf(claimed));
          continue;
        }
        const previous = task.lease?.holder;
        const takeover = !force && previous !== undefined && previous !== this.instanceId;
        const run: RunStart = takeover ? { reason: 'takeover', previousHolder: previous, since } : { reason: 'recovery', since };
        if (!this.launch(claimed, run)) continue;
        started++;
        if (takeover) {
          this.log.info({ ...taskFields(claimed), previousHolder: previous }, 'task taken over from an instance presumed dead');
          recordTakeover(claimed.request.tool);
        } else this.log.info(taskFields(claimed), 'task resumed after restart');
        journaled.push(this.journalRun(claimed, run));
      }
    };
    await Promise.all(Array.from({ length: Math.min(CLAIM_CONCURRENCY, candidates.length) }, claimNext));
    if (!only) for (const taskId of this.implausible.keys()) if (!seen.has(taskId)) this.implausible.delete(taskId);
    await Promise.all(journaled); // after the starts: the first resumed task does not wait for the others' entries
    return started;
  }

  /**
   * Logs once per task (at warn level) that an unfinished task's tool is not registered here, so
   * this instance leaves it to one that has it. Bounded memory: forgotten past 10,000 tasks.
   */
  private noteForeignTool(task: TaskRecord): void {
    if (this.foreignTools.has(task.taskId)) return;
    if (this.foreignTools.size >= 10_000) this.foreignTools.clear();
    this.foreignTools.add(task.taskId);
    this.log.warn(taskFields(task), 'task left to another instance: its tool is not registered here (a rolling deploy?)');
  }

  /**
   * Whether the implausible `lease` of `taskId` has been seen unchanged (same holder, epoch and
   * expiry) for at least its own length by this instance's monotonic clock; starts watching it
   * otherwise.
   */
  private implausibleLongEnough(taskId: string, lease: Lease): boolean {
    const key = `${lease.holder}\n${lease.epoch ?? 0}\n${lease.expiresAt}`;
    const watched = this.implausible.get(taskId);
    if (!watched || watched.key !== key) {
      this.implausible.set(taskId, { key, since: monotonicNow() });
      return false;
    }
    return monotonicNow() - watched.since >= (lease.ms ?? this.leaseMs);
  }

  /** Journals the start of a run that is not the task's first (`RunEntry`), fenced by the run's lease. */
  private journalRun(task: TaskRecord, run: RunStart): Promise<unknown> {
    const at = new Date(this.now()).toISOString();
    const entry: RunEntry = {
      at,
      holder: this.instanceId,
      reason: run.reason as RunEntry['reason'],
      ...(run.previousHolder && { previousHolder: run.previousHolder }),
    };
    return this.store
      .appendJournal(task.taskId, runKey(at, this.instanceId), entry as unknown as Json, fenceOf(task))
      .catch((error) => this.quietOrReport(error, task.taskId));
  }

  /**
   * Gives the lease of `taskId` held under `fence` back for an immediate takeover (it expires now).
   * Never rejects: a lease already lost or a store outage is expected; anything else goes to `onError`.
   */
  private release(taskId: string, fence: Fence): Promise<void> {
    return this.store.renew(taskId, fence, -1).then(
      () => undefined,
      (error) => this.quietOrReport(error, taskId),
    );
  }

  /** Errors the engine expects under faults (a lost lease, a store outage: logged once by the store) stay quiet; others go to `onError`. */
  private quietOrReport(error: unknown, taskId?: string): void {
    if (error instanceof LeaseLostError || error instanceof StoreUnavailableError) return;
    this.onError(error, taskId);
  }

  /**
   * Starts the lease heartbeat once, only when other processes may share the store. On an exclusive store nobody else can take a task over (a restart
   * takes everything at once), so renewing every running task's lease would be writes for nothing.
   */
  private startHeartbeat(): void {
    if (this.timersStarted || this.closed) return;
    this.timersStarted = true;
    this.unregisterLive = registerLiveSource(() => [...this.executions.values()].map((execution) => execution.status));
    if (!this.store.exclusive) {
      this.heartbeat = setInterval(
        () => {
          if (this.tickRun) return;
          this.tickRun = this.tick().finally(() => (this.tickRun = undefined));
        },
        Math.max(50, Math.floor(this.leaseMs / 3)),
      );
      this.heartbeat.unref();
      this.wakeOnNewTasks();
    }
  }

  /**
   * Claims at once a task the store's change feed announces with no lease: one created by a front
   * instance (`runTasks: false`) or by an instance whose clock is off. Several instances may race
   * for it; the store's claim lets one win. Without a feed (or if this wake-up is missed) the next
   * heartbeat's takeover claims it.
   */
  private wakeOnNewTasks(): void {
    this.unsubscribeChanges = this.store.onChange((task) => {
      if (task.lease || (task.status !== 'working' && task.status !== 'input_required')) return;
      if (this.closed || this.skewed || this.executions.has(task.taskId)) return;
      // `close` waits for a claim under way (which gives the lease back).
      this.background(
        this.takeOver(false, task).then(
          () => undefined,
          (error: unknown) => this.quietOrReport(error, task.taskId),
        ),
      );
    });
  }

  /** Work `close` waits for before the store may close (`resuming`): `work` must not reject. */
  private background(work: Promise<void>): void {
    const tracked: Promise<void> = work.finally(() => this.resuming.delete(tracked));
    this.resuming.add(tracked);
  }

  /** One heartbeat (the interval starts it only when the previous one has ended: see `tickRun`). */
  private async tick(): Promise<void> {
    if (this.closed) return;
    try {
      // The clock first: a renewal from a clock that just jumped would push the lease into the future.
      await this.checkClock(3);
      for (const [taskId, execution] of this.skewed ? [] : this.executions) {
        const sent = monotonicNow();
        try {
          await this.store.renew(taskId, execution.guard.fence, this.leaseMs);
          execution.guard.renewed(sent, this.leaseMs); // written after `sent`, so it lasts at least leaseMs from then
        } catch (error) {
          if (error instanceof LeaseLostError || error instanceof TaskNotFoundError) execution.controller.abort(stopSignal(taskId, error));
          else this.quietOrReport(error, taskId); // an outage: the lease runs on, the next tick tries again
        }
      }
      await this.takeOver(false);
    } catch (error) {
      this.quietOrReport(error);
    }
  }

  /**
   * Starts the handler of `task` unless it is already running here. Returns whether it started.
   * The run is the span `task.run <tool>` (see `RunTelemetry`), ended with how the run ended.
   */
  private launch(task: TaskRecord, run: RunStart): boolean {
    if (this.closed || this.executions.has(task.taskId) || isTerminal(task.status) || !task.lease) return false;
    // A write this store announced after the record we start from (a cancel, a takeover that raced
    // our claim): the record is stale, and this run would not hear of that write any more.
    const seen = this.store.lastSeen(task.taskId);
    if (seen && seen.version > task.version && (isTerminal(seen.status) || seen.lease?.holder !== task.lease.holder || seen.lease.epoch !== task.lease.epoch))
      return false;
    const controller = new AbortController();
    const guard = new LeaseGuard({
      store: this.store,
      taskId: task.taskId,
      fence: fenceOf(task),
      signal: controller.signal,
      leaseMs: this.leaseMs,
      permitMs: this.permitMs,
      exclusive: this.store.exclusive,
      since: run.since,
    });
    const execution: Execution = { controller, done: Promise.resolve(), status: task.status, tool: task.request.tool, guard };
    this.executions.set(task.taskId, execution);
    const unfollow = this.follow(task.taskId, execution);
    const telemetry = new RunTelemetry(task, { ...run, instanceId: this.instanceId });
    // A task this runtime has just created has an empty journal by construction: no read for it.
    execution.done = this.run(task, execution, telemetry, run.reason === 'start')
      .catch((error): RunEnd => {
        if (error instanceof StoreUnavailableError) return { kind: 'interrupted', reason: 'store_unavailable' };
        this.onError(error, task.taskId);
        return { kind: 'error', error };
      })
      .then((end) => {
        telemetry.end(end);
        // The run stopped for the store's sake (an outage, or an error the engine met writing it):
        // start it again later rather than leave the task `working` with nobody running it.
        if (this.abandoned.has(execution)) return;
        if ((end.kind === 'interrupted' && end.reason === 'store_unavailable') || end.kind === 'error') this.retryLater(task.taskId);
        else this.retries.delete(task.taskId);
      })
      .catch((error) => this.onError(error, task.taskId))
      .finally(() => {
        unfollow();
        // An abandoned run (operator retry) ends after its successor began: the entry is the new run's.
        if (!this.abandoned.has(execution)) this.executions.delete(task.taskId);
      });
    return true;
  }

  /**
   * Starts `taskId`'s run again after a store outage interrupted it, after a backoff (0.5 s doubling
   * to 30 s per attempt): claims the task anew (a new lease epoch; on an exclusive store by force)
   * and replays its journal. Stops when the task ended, another instance holds it, or the runtime
   * closes; a store still unavailable schedules the next attempt.
   */
  private retryLater(taskId: string): void {
    if (this.closed) return;
    const state = this.retries.get(taskId) ?? { attempt: 0 };
    if (state.timer) return;
    // A retried run that ran for a while before this outage: the backoff starts over.
    if (state.startedAt !== undefined && monotonicNow() - state.startedAt > RETRY_MAX_MS) state.attempt = 0;
    const delay = Math.min(RETRY_MAX_MS, RETRY_FIRST_MS * 2 ** state.attempt);
    state.attempt++;
    state.timer = setTimeout(() => {
      state.timer = undefined;
      this.background(
        this.resume(taskId).catch((error) => {
          if (error instanceof StoreUnavailableError) this.retryLater(taskId);
          else {
            this.retries.delete(taskId);
            this.onError(error, taskId);
          }
        }),
      );
    }, delay);
    state.timer.unref();
    this.retries.set(taskId, state);
    this.log.info({ taskId, attempt: state.attempt, retryInMs: delay }, 'task run interrupted by a store outage; it resumes when the store answers');
  }

  /** One attempt of `retryLater`. */
  private async resume(taskId: string): Promise<void> {
    if (this.closed || this.executions.has(taskId)) return;
    if (this.skewed) return void this.retries.delete(taskId);
    const since = monotonicNow();
    const claimed = await this.store.claim(taskId, this.instanceId, this.leaseMs, this.store.exclusive);
    if (!claimed) return void this.retries.delete(taskId); // ended, or another instance runs it
    if (this.closed) return this.release(taskId, fenceOf(claimed));
    const run: RunStart = { reason: 'retry', since };
    if (!this.launch(claimed, run)) return void this.retries.delete(taskId);
    const state = this.retries.get(taskId);
    if (state) state.startedAt = monotonicNow();
    this.log.info(taskFields(claimed), 'task resumed after a store outage');
    await this.journalRun(claimed, run);
  }

  private cancelRetry(taskId: string): void {
    const state = this.retries.get(taskId);
    if (state?.timer) clearTimeout(state.timer);
    this.retries.delete(taskId);
  }

  private async run(task: TaskRecord, execution: Execution, telemetry: RunTelemetry, fresh: boolean): Promise<RunEnd> {
    const signal = execution.controller.signal;
    const entry = this.host.handler(task.request.tool);
    if (!entry)
      return this.host.finish(task, { error: new Error(`No handler is registered for tool '${task.request.tool}' in this server`) }, execution.guard.fence);
    // A deadline that passed while nothing ran (a restart, a takeover): the task ends before its handler starts.
    const deadline = task.deadline === undefined ? undefined : Date.parse(task.deadline);
    if (deadline !== undefined && deadline <= this.now() && (await this.deadlinePassed(task, execution, deadline, signal))) return this.expire(task, execution);
    const watch = this.host.watchStalls(task, signal, execution.guard.fence);
    try {
      if (deadline === undefined && !watch) return await this.runHandler(task, entry, execution, telemetry, fresh, watch);
      // Tools that declare a deadline or stall detection expect handlers stuck in an await that never
      // returns: such a handler must neither keep its task past the deadline nor, once the run stops
      // (a cancel, a shutdown, a lost lease), keep the run going (`close` waits for runs). The
      // deadline's wait ends with the run (`withSignals` aborts `stop`, also when `signal` aborts).
      return await withSignals([signal], async (stop) => {
        const handling = this.runHandler(task, entry, execution, telemetry, fresh, watch);
        const stopped = new Promise<RunEnd>((resolve) => stop.addEventListener('abort', () => resolve(abortEnd(signal.reason)), { once: true }));
        const expiry =
          deadline === undefined
            ? new Promise<never>(() => undefined)
            : this.deadlinePassed(task, execution, deadline, stop).then((passed) => (passed ? EXPIRED : new Promise<never>(() => undefined)));
        const first = await Promise.race([handling, expiry, stopped]);
        if (first !== EXPIRED) return first;
        handling.catch(() => undefined);
        return this.expire(task, execution);
      });
    } finally {
      watch?.close();
    }
  }

  /**
   * Resolves true once `deadline` (ms since the epoch) has passed on the store's clock, as a durable
   * timer's wake is confirmed (`LeaseGuard.permit({ confirm: true })`: never early by the store's
   * clock, and only while this run holds the task); false when `stop` (the run's signal, or the end
   * of the race it is part of) aborts first or the run lost its lease (then it is stopped). An
   * outage while confirming is tried again (1 s apart).
   */
  private async deadlinePassed(task: TaskRecord, execution: Execution, deadline: number, stop: AbortSignal): Promise<boolean> {
    let wakeAt = deadline;
    for (;;) {
      try {
        await this.timers.wait(wakeAt, stop);
        const storeNow = await execution.guard.permit({ confirm: true });
        if (stop.aborted) return false;
        if (storeNow === undefined || storeNow >= deadline) return true;
        wakeAt = this.now() + (deadline - storeNow);
      } catch (error) {
        if (stop.aborted || execution.controller.signal.aborted) return false;
        if (!(error instanceof StoreUnavailableError)) {
          execution.controller.abort(stopSignal(task.taskId, error));
          return false;
        }
        wakeAt = this.now() + 1000;
      }
    }
  }

  /** Ends the task by its deadline (`ExecutorHost.expire`), its handler's signal aborted first so no new effect begins. */
  private expire(task: TaskRecord, execution: Execution): Promise<RunEnd> {
    execution.controller.abort(new DeadlineExceededSignal(task.taskId, task.deadline!));
    return this.host.expire(task, execution.guard.fence);
  }

  /** The handler's part of `run`: its context, its outcome written through `ExecutorHost.finish`. */
  private async runHandler(
    task: TaskRecord,
    entry: RegisteredHandler,
    execution: Execution,
    telemetry: RunTelemetry,
    fresh: boolean,
    watch: StallWatch | undefined,
  ): Promise<RunEnd> {
    const signal = execution.controller.signal;
    let outcome: { result: TaskToolResult } | { error: unknown };
    let ctx: ExecutionContext | undefined;
    try {
      const args = await entry.parse(this.host.openArguments(task.request.arguments));
      const journal = fresh ? new Map<string, Json>() : await this.store.readJournal(task.taskId);
      ctx = new ExecutionContext({
        taskId: task.taskId,
        signal,
        store: this.store,
        journal,
        now: () => this.now(),
        guard: execution.guard,
        log: this.log.child(taskFields(task)),
        clientCapabilities: task.request.clientCapabilities,
        ...(task.retryOf !== undefined && { retryOf: task.retryOf }),
        telemetry,
        timers: this.timers,
        ...(watch && { activity: watch }),
        // The engine found a reason to stop (fencing, an outage): stop the handler's own I/O too.
        onStop: (error) => {
          // Neither an outage (logged by the store) nor a lost lease (expected): unexpected, said once.
          if (!(error instanceof LeaseLostError) && !(error instanceof StoreUnavailableError)) this.onError(error, task.taskId);
          execution.controller.abort(stopSignal(task.taskId, error));
        },
      });
      // The handler runs in the run span's context: spans its own instrumentation makes join the task's trace.
      outcome = { result: await telemetry.within(() => entry.handler(args, ctx!)) };
    } catch (error) {
      outcome = { error };
    }
    // A store failure is never the task's outcome, whatever the handler made of it: the run is retried.
    const stop = ctx?.stoppedBy;
    if ('error' in outcome && ((stop !== undefined && !(stop instanceof LeaseLostError)) || outcome.error instanceof StoreUnavailableError)) {
      return { kind: 'interrupted', reason: 'store_unavailable' };
    }
    if (signal.aborted) return abortEnd(signal.reason); // cancelled (already terminal), shutting down or taken over (resumes elsewhere)
    return this.host.finish(task, outcome, execution.guard.fence);
  }
}

/** What `run`'s race of a handler against its deadline sees when the deadline won. */
const EXPIRED = Symbol('expired');

/** How a run stopped by its signal ended, from the signal's reason (see `signals.ts`). */
function abortEnd(reason: unknown): RunEnd {
  if (reason instanceof TaskCancelledSignal) return { kind: 'cancelled' };
  if (reason instanceof DeadlineExceededSignal) return { kind: 'interrupted', reason: 'already_terminal' };
  if (reason instanceof ShutdownSignal) return { kind: 'interrupted', reason: 'shutdown' };
  if (reason instanceof LeaseLostSignal) return { kind: 'interrupted', reason: 'lease_lost' };
  if (reason instanceof StoreUnavailableSignal) return { kind: 'interrupted', reason: 'store_unavailable' };
  return { kind: 'interrupted', reason: 'aborted' };
}

/**
 * The `ctx.signal` reason a run stops with when the engine meets `error`: a cancel, a lost lease (also
 * a task gone), or the store failing (the run is retried).
 */
function stopSignal(taskId: string, error: unknown): Error {
  if (error instanceof LeaseLostError) return error.reason === 'cancelled' ? new TaskCancelledSignal(taskId) : new LeaseLostSignal(taskId);
  if (error instanceof TaskNotFoundError) return new LeaseLostSignal(taskId);
  return new StoreUnavailableSignal(taskId);
}

/** The fence of a run holding `task` (its lease holder and epoch; a lease without epoch is epoch 0). */
function fenceOf(task: TaskRecord): Fence {
  return { holder: task.lease!.holder, epoch: task.lease!.epoch ?? 0 };
}

/** The fields that identify a task in log lines: never its arguments or answers. */
function taskFields(task: TaskRecord): { taskId: string; tool: string; principal: string | null } {
  return { taskId: task.taskId, tool: task.request.tool, principal: task.owner };
}
