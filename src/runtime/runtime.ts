import { randomBytes } from 'node:crypto';
import { EventEmitter } from 'node:events';
import { hostname } from 'node:os';
import {
  IllegalTransitionError,
  InvalidAnswerError,
  InvalidArgumentError,
  LeaseLostError,
  StoreUnavailableError,
  TaskNotFoundError,
  TaskRpcError,
} from '../core/errors.js';
import { isTerminal, type TaskStatus } from '../core/status.js';
import type { Json, JsonObject } from '../core/json.js';
import { jsonSize, toJson } from '../core/json.js';
import { leasePlausible, type Fence, type Lease, type TaskRecord } from '../core/task.js';
import { ENGINE_ACCESS, type Access, type Principal } from '../core/access.js';
import {
  askedKey,
  answeredKey,
  asksUrlElicitation,
  elicitationCompleteKey,
  runKey,
  type Actor,
  type AnsweredEntry,
  type AskedEntry,
  type ElicitationCompleteEntry,
  type RunEntry,
} from '../core/journal-keys.js';
import { createLogger, type Logger } from '../core/log.js';
import { withSignals } from '../core/deadline.js';
import type { TaskPage, TaskStore } from '../store/task-store.js';
import { ExecutionContext, type TaskContext } from './context.js';
import { LeaseGuard, monotonicNow } from './lease-guard.js';
import { LeaseLostSignal, ShutdownSignal, StoreUnavailableSignal, TaskCancelledSignal } from './signals.js';
import { TimerQueue } from './timer-queue.js';
import {
  instruments,
  notePoll,
  recordInputWait,
  recordTakeover,
  recordTaskEnd,
  registerLiveSource,
  RunTelemetry,
  startCreation,
  type RunEnd,
  type RunReason,
} from './telemetry.js';

/**
 * What a task handler returns: an MCP `CallToolResult`-shaped object (`content` blocks, optional
 * `structuredContent`, optional `isError`). It is stored as JSON and returned by `tasks/result`.
 */
export interface TaskToolResult {
  content: Array<{ type: string; [key: string]: unknown }>;
  structuredContent?: { [key: string]: unknown };
  isError?: boolean;
  [key: string]: unknown;
}

/** A task handler: `(args, ctx) => result`. Throwing ends the task `failed` (see `TaskRuntime`). */
export type TaskHandler<Args = JsonObject> = (args: Args, ctx: TaskContext) => Promise<TaskToolResult>;

/** A handler registered under a tool name, with the argument parser that feeds it. */
export interface RegisteredHandler {
  /** Validates and converts stored arguments; throws to reject them. */
  parse: (args: JsonObject) => unknown;
  handler: TaskHandler<any>;
  /** Top-level argument fields stored encrypted when the store has a `secretKey`. */
  sensitive?: readonly string[];
}

/** What `submit` needs. */
export interface SubmitInput {
  owner: string | null;
  tool: string;
  arguments: JsonObject;
  /** Requested lifetime in ms (clamped by the store's policy). */
  ttl?: number | null;
  errorResultStatus: 'failed' | 'completed';
  /** The requestor's declared client capabilities (stored as `TaskRequest.clientCapabilities`). */
  clientCapabilities?: JsonObject;
  /**
   * Where the caller's trace context travels: the creating request's `_meta` (MCP 2026-07-28
   * changelog, SEP-414: `traceparent`, `tracestate`, `baggage`). The task's creation span is its
   * child, and every run of the task continues that trace (see `telemetry.ts`). Read with the
   * registered OpenTelemetry propagator (W3C `traceparent` is understood without one); ignored
   * when no OpenTelemetry SDK is installed.
   */
  traceCarrier?: Record<string, unknown>;
}

/** Options of a `TaskRuntime`. */
export interface TaskRuntimeOptions {
  /**
   * Clock in ms since the epoch (tests inject one). Default: the store's clock (`TaskStore.now`:
   * this process's clock corrected by the offset measured against a shared store).
   */
  now?: () => number;
  /**
   * Structured logger. The runtime logs each task's lifecycle at info level (created, waiting for
   * input, input answered, resumed after a restart, taken over, completed / failed / cancelled,
   * purged) with `taskId`, `tool` and `principal` — never arguments, answers or tokens.
   * Default: `createLogger()`.
   */
  logger?: Logger;
  /** Called with errors the runtime cannot attribute to a request (store outages while finishing, …). Default: logged at error level. */
  onError?: (error: unknown, taskId?: string) => void;
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
  /** Largest tool result stored, in bytes of JSON (default 4 MiB); a larger one fails its task. */
  maxResultBytes?: number;
  /**
   * How often expired tasks (terminal, past `createdAt + ttl`, their `ttl` extended at the end by the
   * store's `retainAfterEndMs`) are deleted with their journals, in
   * ms (default 60000; 0 disables). Each run deletes batches of 500 until none is left (at most 20).
   */
  purgeIntervalMs?: number;
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
const RETRY_FIRST_MS = 500;
const RETRY_MAX_MS = 30_000;

/**
 * Runs task handlers durably over a `TaskStore`.
 *
 * - `submit` stores the task (durable before it resolves) and starts its handler in the background.
 * - `recover` (call once at start-up) restarts every `working` / `input_required` task from its
 *   journal: finished steps replay, timers keep their original deadline, answered questions return
 *   their answer, unanswered ones wait again.
 * - A handler's return value completes the task: `completed`, or `task.errorResultStatus` when the
 *   result has `isError: true`. A thrown `TaskRpcError` fails it with that JSON-RPC error; any other
 *   throw ends it with an `isError` tool result carrying the message (what the MCP SDK returns for a
 *   throwing tool), in `task.errorResultStatus`, with the message as `statusMessage`. Nothing is left
 *   `working` by a handler error.
 * - `cancel` makes the task `cancelled` in the store first, then aborts `ctx.signal`; whatever the
 *   handler does afterwards cannot change the status. A cancel written by anyone else to the store
 *   (another connection, another process sharing the store) aborts the run as well.
 * - Fencing (see `LeaseGuard`): each run holds the task under a lease epoch; every journal and
 *   status write it makes carries that epoch and is refused by the store once the task was taken
 *   over, cancelled or ended, and no step function, timer continuation or use of an answer begins
 *   without a fresh confirmation that it still holds the task.
 * - Store outages are never a task's outcome: a run interrupted by one (`StoreUnavailableError`) is
 *   started again in this process with backoff (0.5 s doubling to 30 s) until the store answers,
 *   replaying its journal; on shared stores another instance may take it over instead.
 * - On shared stores with a clock (PostgreSQL, Redis), lease expiries and timer due times are read
 *   on the store's clock; an instance whose clock is more than `maxClockSkewMs` off takes no leases.
 */
export class TaskRuntime {
  private readonly handlers = new Map<string, RegisteredHandler>();
  private readonly completions = new EventEmitter().setMaxListeners(0);
  private readonly executions = new Map<string, Execution>();
  private readonly now: () => number;
  private readonly onError: (error: unknown, taskId?: string) => void;
  private readonly log: Logger;
  private closed = false;
  /** This instance's identity in leases. */
  readonly instanceId: string;
  /** Lease length in ms. */
  readonly leaseMs: number;
  private heartbeat?: NodeJS.Timeout;
  private purger?: NodeJS.Timeout;
  private timersStarted = false;
  private readonly maxResultBytes: number;
  private readonly purgeIntervalMs: number;
  private unregisterLive?: () => void;
  /** Every durable timer of this runtime's tasks, on one `setTimeout` (see `TimerQueue`). */
  private readonly timers: TimerQueue;
  /** See `TaskRuntimeOptions.permitMs`. */
  readonly permitMs: number;
  private readonly maxClockSkewMs: number;
  /** True while this instance's clock is beyond `maxClockSkewMs` from the store's: it takes no leases. */
  private skewed = false;
  /** Pending in-process retries of runs a store outage interrupted: task id → attempt, timer, last start (monotonic ms). */
  private readonly retries = new Map<string, { attempt: number; timer?: NodeJS.Timeout; startedAt?: number }>();
  /** Leases ending implausibly late (see `leasePlausible`) this instance watches: task id → the lease seen, since when (monotonic ms). */
  private readonly implausible = new Map<string, { key: string; since: number }>();
  /** The heartbeat under way, and the retries under way (`resume`), which `close` waits for. */
  private tickRun?: Promise<void>;
  private readonly resuming = new Set<Promise<void>>();

  constructor(
    readonly store: TaskStore,
    options: TaskRuntimeOptions = {},
  ) {
    this.now = options.now ?? (() => store.now());
    this.log = options.logger ?? createLogger();
    this.onError = options.onError ?? ((error, taskId) => this.log.error({ err: error, taskId }, 'task runtime error'));
    this.instanceId = options.instanceId ?? `${hostname()}-${process.pid}-${randomBytes(4).toString('hex')}`;
    this.leaseMs = options.leaseMs ?? 5000;
    this.maxResultBytes = options.maxResultBytes ?? 4 * 1024 * 1024;
    this.purgeIntervalMs = options.purgeIntervalMs ?? 60_000;
    this.timers = new TimerQueue(this.now);
    this.permitMs = Math.max(1, Math.floor(options.permitMs ?? Math.min(500, this.leaseMs / 5)));
    if (this.permitMs > this.leaseMs / 2)
      throw new InvalidArgumentError(`permitMs (${this.permitMs}) must be at most half of leaseMs (${this.leaseMs}): a permit must end well before the lease`);
    this.maxClockSkewMs = options.maxClockSkewMs ?? 1000;
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

  /** Registers the handler for tool `name`. Throws `InvalidArgumentError` if the name is taken. */
  register(name: string, entry: RegisteredHandler): void {
    if (this.handlers.has(name)) throw new InvalidArgumentError(`A task handler named '${name}' is already registered`);
    this.handlers.set(name, entry);
  }

  /** True when a handler is registered for tool `name`. */
  has(name: string): boolean {
    return this.handlers.has(name);
  }

  /**
   * Validates the arguments, stores a new `working` task and starts it. Resolves once the task is
   * durably stored (the handler keeps running). Throws `InvalidArgumentError` for an unknown tool or
   * arguments the tool's parser rejects; nothing is stored then.
   *
   * Telemetry: the span `task.create <tool>`, child of the caller's context in
   * `input.traceCarrier`, whose context is stored with the task (`TaskRecord.traceContext`) in
   * the same write; `mcp_tasks.tasks.created`. See `telemetry.ts`.
   */
  async submit(input: SubmitInput): Promise<TaskRecord> {
    const entry = this.handlers.get(input.tool);
    if (!entry) throw new InvalidArgumentError(`Unknown task tool: ${input.tool}`);
    entry.parse(input.arguments);
    const creation = startCreation(input.tool, input.traceCarrier);
    let task: TaskRecord;
    const since = monotonicNow();
    try {
      task = await this.store.create({
        owner: input.owner,
        request: {
          tool: input.tool,
          arguments: this.sealSensitive(entry, toJson<JsonObject>(input.arguments)),
          ...(input.clientCapabilities && { clientCapabilities: toJson<JsonObject>(input.clientCapabilities) }),
        },
        ttl: input.ttl,
        errorResultStatus: input.errorResultStatus,
        // An instance whose clock is off creates the task unleased: another instance claims and runs it.
        ...(!this.skewed && { lease: { holder: this.instanceId, leaseMs: this.leaseMs } }),
        ...(creation.traceContext && { traceContext: creation.traceContext }),
      });
    } catch (error) {
      creation.failed(error);
      throw error;
    }
    creation.stored(task);
    this.log.info(taskFields(task), 'task created');
    this.startHeartbeat();
    if (task.lease) this.start(task, { reason: 'start', since });
    return task;
  }

  /**
   * Resumes unfinished tasks from the store and starts the heartbeat that renews this instance's
   * leases and takes over tasks of instances that died. With an exclusive backend (one process:
   * memory, SQLite by default) every unfinished task is taken at once — its previous holder was this
   * very process before a crash; otherwise only tasks whose lease is free or expired. Returns how
   * many tasks were started.
   */
  async recover(): Promise<number> {
    if (!this.store.exclusive) await this.checkClock();
    this.startHeartbeat();
    return this.takeOver(this.store.exclusive);
  }

  /** Deletes expired tasks in bounded batches (see `purgeIntervalMs`). Returns how many. */
  async purgeExpired(): Promise<number> {
    let total = 0;
    for (let batch = 0; batch < 20; batch++) {
      const deleted = await this.store.purgeExpired(500);
      total += deleted;
      if (deleted < 500) break;
    }
    if (total > 0) {
      this.log.info({ count: total }, 'expired tasks purged');
      instruments().purged.add(total);
    }
    return total;
  }

  private sealSensitive(entry: RegisteredHandler, args: JsonObject): JsonObject {
    const box = this.store.secrets;
    if (!box || !entry.sensitive?.length) return args;
    const sealed = { ...args };
    for (const field of entry.sensitive) if (sealed[field] !== undefined) sealed[field] = box.seal(sealed[field]!);
    return sealed;
  }

  private openSensitive(args: JsonObject): JsonObject {
    const box = this.store.secrets;
    if (!box) return args;
    return Object.fromEntries(Object.entries(args).map(([key, value]) => [key, box.open(value)]));
  }

  /**
   * Claims and starts unfinished tasks that no live instance holds (all of them when `force`).
   * Each start is journaled as a `RunEntry` (`run:<at>:<holder>`): `recovery` after a restart
   * (an exclusive store, or our own lease), `takeover` (with `previousHolder`) from another
   * instance; the run span says the same (`mcp_tasks.run.reason`), takeovers count in
   * `mcp_tasks.takeovers`.
   */
  private async takeOver(force: boolean): Promise<number> {
    if (this.skewed) return 0;
    let started = 0;
    const journaled: Promise<unknown>[] = [];
    const now = this.now();
    const seen = new Set<string>();
    for (const task of await this.store.listUnfinished()) {
      if (this.closed || this.skewed || this.executions.has(task.taskId) || this.retries.has(task.taskId)) continue;
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
      if (!this.start(claimed, run)) continue;
      started++;
      if (takeover) {
        this.log.info({ ...taskFields(claimed), previousHolder: previous }, 'task taken over from an instance presumed dead');
        recordTakeover(claimed.request.tool);
      } else this.log.info(taskFields(claimed), 'task resumed after restart');
      journaled.push(this.journalRun(claimed, run));
    }
    for (const taskId of this.implausible.keys()) if (!seen.has(taskId)) this.implausible.delete(taskId);
    await Promise.all(journaled); // after the starts: the first resumed task does not wait for the others' entries
    return started;
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

  /** Every third of a lease (shared stores only): renew ours (aborting runs whose lease was taken), take over expired ones. */
  /**
   * Starts the background timers once: the purge, and — only when other processes may share the
   * store — the lease heartbeat. On an exclusive store nobody else can take a task over (a restart
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
    }
    if (this.purgeIntervalMs > 0) {
      this.purger = setInterval(() => void this.purgeExpired().catch((error) => this.onError(error)), this.purgeIntervalMs);
      this.purger.unref();
    }
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
   * Cancels a task on behalf of `access` (required, see `Access`). The task is `cancelled` in the
   * store when this resolves. Throws `TaskNotFoundError` (unknown, foreign, expired), or
   * `IllegalTransitionError` if already terminal.
   */
  async cancel(taskId: string, access: Access, actor?: Actor): Promise<TaskRecord> {
    let revoked: Lease | undefined;
    const task = await this.store.cancel(taskId, access, { ...(actor && { actor }), onRevoked: (lease) => (revoked = lease) });
    recordTaskEnd(task);
    this.log.info({ ...taskFields(task), by: actor ? actorName(actor) : accessName(access) }, 'task cancelled');
    const running = this.executions.get(taskId);
    running?.controller.abort(new TaskCancelledSignal(taskId));
    this.cancelRetry(taskId);
    // Another instance (or a run of this one not yet started) may hold a permit confirmed just before
    // the cancel was written: it expires within permitMs (see LeaseGuard), and only then is the cancel
    // acknowledged, so no effect of the task begins after the acknowledgement. Not needed when this
    // instance's run of it was just aborted, or the lease had already expired before the permit could
    // be confirmed.
    const heldHere = running !== undefined && revoked?.holder === this.instanceId;
    if (!this.store.exclusive && revoked && !heldHere && revoked.expiresAt > this.now() - this.permitMs) {
      await new Promise((resolve) => setTimeout(resolve, this.permitMs));
    }
    return task;
  }

  /**
   * Delivers an answer to outstanding question `key`: `provideInputs` with one answer. Returns false
   * when the key is not outstanding. `access` is required (see `Access`). Throws `TaskNotFoundError`
   * for unknown or foreign tasks, and `InvalidAnswerError` (-32602 on the wire; nothing stored, the
   * question stays pending) when the answer does not fit the question (see `checkInputAnswer`).
   */
  async provideInput(taskId: string, key: string, response: unknown, access: Access, actor?: Actor): Promise<boolean> {
    return (await this.provideInputs(taskId, { [key]: response }, access, actor)).length === 1;
  }

  /**
   * Delivers answers keyed by question key (see `TaskStore.answerInputs`: keys not outstanding are
   * ignored, whatever their values; every answer to an outstanding question is checked against that
   * question — form schema, URL-mode action, sampling or roots result shape — before any is stored,
   * so a refusal stores nothing). Returns the keys taken. Logs each taken answer (`task input
   * answered`, with its `action` for elicitations) and a refusal (`task input refused`, with the
   * problems) at info level — never the answer's content. `access` is required (see `Access`).
   * Throws `TaskNotFoundError` for unknown, foreign or expired tasks, `InvalidAnswerError` for
   * answers that do not fit.
   */
  async provideInputs(taskId: string, responses: { [key: string]: unknown }, access: Access, actor?: Actor): Promise<string[]> {
    let taken: string[];
    const by = actor ? actorName(actor) : accessName(access);
    try {
      taken = await this.store.answerInputs(taskId, responses, access, actor);
    } catch (error) {
      if (error instanceof InvalidAnswerError) this.log.info({ taskId, problems: error.problems, by }, 'task input refused');
      throw error;
    }
    for (const key of taken) {
      const action = (responses[key] as { action?: unknown } | undefined)?.action;
      this.log.info({ taskId, key, ...(typeof action === 'string' && { action }), by }, 'task input answered');
    }
    if (taken.length > 0 && instruments().enabled) void this.measureInputWaits(taskId, taken).catch(() => undefined);
    return taken;
  }

  /**
   * Records `mcp_tasks.input.wait` for answers just taken (in the background, off the answering
   * request): from the question's first ask (`asked:<key>`) to its answer (`answered:<key>`). Here,
   * where each answer is taken exactly once, rather than in the waiting run, so an answer given
   * while nothing ran (a restart) counts once too.
   */
  private async measureInputWaits(taskId: string, keys: string[]): Promise<void> {
    const running = this.executions.get(taskId);
    const [journal, tool] = await Promise.all([
      this.store.readJournal(taskId),
      running ? running.tool : this.store.get(taskId, ENGINE_ACCESS).then((task) => task.request.tool),
    ]);
    for (const key of keys) {
      const asked = journal.get(askedKey(key)) as AskedEntry | undefined;
      const answered = journal.get(answeredKey(key)) as AnsweredEntry | undefined;
      if (asked && answered) recordInputWait(tool, asked.kind, asked.at, answered.at);
    }
  }

  /**
   * Notes that a requestor polled `taskId` (`method`: `tasks/get`, `tasks/result`, `tasks/list`):
   * an event on the task's run span when this process runs it and an OpenTelemetry SDK records it,
   * else nothing (see `telemetry.ts` `notePoll`). Cheap: one map lookup.
   */
  notePoll(taskId: string, method: string): void {
    notePoll(taskId, method);
  }

  /**
   * Reports that the out-of-band flow of a URL-mode elicitation (`ctx.elicitUrl`) completed — the
   * bank's page confirmed the payment, the OAuth consent came back — so the waiting task resumes
   * (durably: journal entry `elicitation-complete:<elicitationId>`, first report wins). Listeners
   * of `onElicitationComplete` (the 2025-11-25 wire, which sends `notifications/elicitation/complete`)
   * are told. Returns false when it had already been reported. `access` is required (see `Access`;
   * the site's callback usually acts as `ENGINE_ACCESS`). Throws `TaskNotFoundError` for unknown,
   * foreign or expired tasks, and `InvalidArgumentError` when the task never asked under
   * `elicitationId`.
   */
  async completeElicitation(taskId: string, elicitationId: string, access: Access): Promise<boolean> {
    const task = await this.store.get(taskId, access);
    if (!asksUrlElicitation(await this.store.readJournal(taskId), elicitationId))
      throw new InvalidArgumentError(`Task ${taskId} has no URL elicitation '${elicitationId}'`);
    const entry: ElicitationCompleteEntry = { at: new Date(this.now()).toISOString() };
    const first = await this.store.appendJournal(taskId, elicitationCompleteKey(elicitationId), entry as unknown as Json);
    if (!first) return false;
    this.log.info({ ...taskFields(task), elicitationId, by: accessName(access) }, 'task url elicitation completed');
    // A write wakes the waiting handler (wherever it runs) and tells watchers.
    if (!isTerminal(task.status)) await this.store.report(taskId, { statusMessage: 'The out-of-band step completed; working.' }).catch(() => undefined);
    this.completions.emit('complete', task, elicitationId);
    return true;
  }

  /** Subscribes to `completeElicitation` reports made in this process. Returns the unsubscribe function. */
  onElicitationComplete(listener: (task: TaskRecord, elicitationId: string) => void): () => void {
    this.completions.on('complete', listener);
    return () => this.completions.off('complete', listener);
  }

  /**
   * The task as `access` may see it (see `TaskStore.get`). Throws `TaskNotFoundError` for unknown,
   * foreign or expired tasks.
   */
  get(taskId: string, access: Access): Promise<TaskRecord> {
    return this.store.get(taskId, access);
  }

  /**
   * One page of `principal`'s tasks, oldest first (see `TaskStore.list`): `cursor` from an earlier
   * page's `nextCursor` (else `InvalidCursorError`), `limit` 1–1000 (default 50).
   */
  list(principal: Principal, cursor?: string, limit?: number): Promise<TaskPage> {
    return this.store.list(principal, cursor, limit);
  }

  /**
   * Subscribes to every task write seen by this process (its own, and other instances' on shared
   * stores that notify). The listener must filter by task and check visibility itself. Returns the
   * unsubscribe function.
   */
  onChange(listener: (task: TaskRecord) => void): () => void {
    return this.store.onChange(listener);
  }

  /**
   * Subscribes to the writes of one task (see `TaskStore.onTaskChange`): a write calls only its own
   * task's listeners, so thousands of watched tasks cost nothing on other tasks' writes. The
   * listener gets undefined when the task was deleted. Returns the unsubscribe function.
   */
  onTaskChange(taskId: string, listener: (task: TaskRecord | undefined) => void): () => void {
    return this.store.onTaskChange(taskId, listener);
  }

  /** True while this runtime is executing the task's handler. */
  isRunning(taskId: string): boolean {
    return this.executions.has(taskId);
  }

  /**
   * Waits until the task is terminal and returns it. `onChange` sees every intermediate state
   * (e.g. to forward questions while `input_required`). Resolves with undefined if `signal` aborts.
   * Throws `TaskNotFoundError` for unknown or foreign tasks.
   */
  async waitForTerminal(
    taskId: string,
    access: Access,
    options: { signal?: AbortSignal; onChange?: (task: TaskRecord) => void } = {},
  ): Promise<TaskRecord | undefined> {
    // The change waiter of the last round is released as soon as the wait ends (a terminal task, an
    // abort or an error), not left to its timer: nothing outlives the request that waited.
    return withSignals([options.signal], async (waiters) => {
      for (;;) {
        const change = this.store.nextChange(taskId, { signal: waiters, timeoutMs: 5_000 });
        const task = await this.store.get(taskId, access);
        options.onChange?.(task);
        if (isTerminal(task.status)) return task;
        if (options.signal?.aborted) return undefined;
        await change;
      }
    });
  }

  /**
   * Stops every running handler. Their tasks stay as stored, with their leases released so another
   * instance (or this one's next start) takes them over at once.
   */
  async close(): Promise<void> {
    this.closed = true;
    if (this.heartbeat) clearInterval(this.heartbeat);
    if (this.purger) clearInterval(this.purger);
    for (const taskId of [...this.retries.keys()]) this.cancelRetry(taskId);
    // Claims under way finish (and, closed, give their lease back) before the store may close.
    await Promise.allSettled([this.tickRun, ...this.resuming]);
    this.unregisterLive?.();
    const running = [...this.executions.entries()];
    for (const [, execution] of running) execution.controller.abort(new ShutdownSignal());
    await Promise.allSettled(running.map(([, execution]) => execution.done));
    this.timers.close();
    await Promise.all(running.map(([taskId, execution]) => this.release(taskId, execution.guard.fence)));
  }

  /**
   * Starts the handler of `task` unless it is already running here. Returns whether it started.
   * The run is the span `task.run <tool>` (see `RunTelemetry`), ended with how the run ended.
   */
  private start(task: TaskRecord, run: RunStart): boolean {
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
        if ((end.kind === 'interrupted' && end.reason === 'store_unavailable') || end.kind === 'error') this.retryLater(task.taskId);
        else this.retries.delete(task.taskId);
      })
      .catch((error) => this.onError(error, task.taskId))
      .finally(() => {
        unfollow();
        this.executions.delete(task.taskId);
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
      const resuming: Promise<void> = this.resume(taskId)
        .catch((error) => {
          if (error instanceof StoreUnavailableError) this.retryLater(taskId);
          else {
            this.retries.delete(taskId);
            this.onError(error, taskId);
          }
        })
        .finally(() => this.resuming.delete(resuming));
      this.resuming.add(resuming);
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
    if (!this.start(claimed, run)) return void this.retries.delete(taskId);
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
    const entry = this.handlers.get(task.request.tool);
    if (!entry) return this.fail(task, execution, new Error(`No handler is registered for tool '${task.request.tool}' in this server`));
    let outcome: { result: TaskToolResult } | { error: unknown };
    let ctx: ExecutionContext | undefined;
    try {
      const args = entry.parse(this.openSensitive(task.request.arguments));
      const journal = fresh ? new Map<string, Json>() : await this.store.readJournal(task.taskId);
      ctx = new ExecutionContext({
        taskId: task.taskId,
        signal,
        store: this.store,
        journal,
        now: this.now,
        guard: execution.guard,
        log: this.log.child(taskFields(task)),
        clientCapabilities: task.request.clientCapabilities,
        telemetry,
        timers: this.timers,
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
    if ('error' in outcome) return this.fail(task, execution, outcome.error);
    let result: JsonObject;
    try {
      result = normalizeResult(outcome.result);
      const size = jsonSize(result);
      if (size > this.maxResultBytes) throw new Error(`The tool result is too large to keep (${size} bytes; the limit is ${this.maxResultBytes})`);
    } catch (error) {
      return this.fail(task, execution, error);
    }
    const status = result.isError === true ? task.errorResultStatus : 'completed';
    const message = result.isError === true ? firstText(result) : undefined;
    return this.settle(this.store.finish(task.taskId, status, { type: 'result', result }, message, execution.guard.fence));
  }

  /**
   * Ends a task whose handler threw. A `TaskRpcError` fails it with that JSON-RPC error. Any other
   * error becomes the `isError` tool result the SDK would have returned for a throwing tool, with
   * the status that result means for the task (`errorResultStatus`: `failed` in 2025-11-25,
   * `completed` in the 2026-07-28 extension, where `failed` is reserved for JSON-RPC errors).
   */
  private async fail(task: TaskRecord, execution: Execution, error: unknown): Promise<RunEnd> {
    const fence = execution.guard.fence;
    if (error instanceof TaskRpcError) {
      const rpc = { code: error.code, message: error.message, ...(error.data !== undefined && { data: toJson<Json>(error.data) }) };
      return this.settle(this.store.finish(task.taskId, 'failed', { type: 'error', error: rpc }, error.message, fence));
    }
    const message = error instanceof Error ? error.message : String(error);
    const result: JsonObject = { content: [{ type: 'text', text: message }], isError: true };
    return this.settle(this.store.finish(task.taskId, task.errorResultStatus, { type: 'result', result }, message, fence));
  }

  /**
   * Logs and counts (`mcp_tasks.tasks.ended`, `mcp_tasks.task.duration`) a finish. A finish that
   * lost to a cancel, a deleted task or a takeover (fenced) is expected, not an error: it is
   * reported as how the run ended.
   */
  private async settle(write: Promise<TaskRecord>): Promise<RunEnd> {
    try {
      const task = await write;
      const fields = { ...taskFields(task), ...(task.outcome?.type === 'error' && { code: task.outcome.error.code }) };
      if (task.status === 'completed') this.log.info(fields, 'task completed');
      else this.log.info({ ...fields, statusMessage: task.statusMessage }, `task ${task.status}`);
      recordTaskEnd(task);
      return { kind: 'ended', task };
    } catch (error) {
      if (error instanceof IllegalTransitionError) return { kind: 'interrupted', reason: 'already_terminal' };
      if (error instanceof TaskNotFoundError) return { kind: 'interrupted', reason: 'deleted' };
      if (error instanceof LeaseLostError)
        return { kind: 'interrupted', reason: error.reason === 'cancelled' || error.reason === 'ended' ? 'already_terminal' : 'lease_lost' };
      if (error instanceof StoreUnavailableError) return { kind: 'interrupted', reason: 'store_unavailable' };
      throw error;
    }
  }
}

/** How a run stopped by its signal ended, from the signal's reason (see `signals.ts`). */
function abortEnd(reason: unknown): RunEnd {
  if (reason instanceof TaskCancelledSignal) return { kind: 'cancelled' };
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

function normalizeResult(value: unknown): JsonObject {
  if (value === null || typeof value !== 'object' || Array.isArray(value))
    throw new Error('Task handler must return a tool result object ({ content: [...] })');
  const result = toJson<JsonObject>(value);
  if (!Array.isArray(result.content)) result.content = [];
  return result;
}

function firstText(result: JsonObject): string | undefined {
  const first = (result.content as Json[])[0];
  return first && typeof first === 'object' && !Array.isArray(first) && typeof first.text === 'string' ? first.text : undefined;
}

/** The fields that identify a task in log lines: never its arguments or answers. */
function taskFields(task: TaskRecord): { taskId: string; tool: string; principal: string | null } {
  return { taskId: task.taskId, tool: task.request.tool, principal: task.owner };
}

/** Who acted, for log lines: the principal, or `engine`. */
function accessName(access: Access): string | null {
  return access === ENGINE_ACCESS ? 'engine' : access;
}

/** How logs name an `Actor`: the principal, `operator:<name>`, or `engine`. */
function actorName(actor: Actor): string | null {
  return actor.role === 'operator' ? `operator:${actor.name}` : actor.role === 'engine' ? 'engine' : actor.name;
}
