import type { Json, JsonObject } from '../core/json.js';
import type { Logger } from '../core/log.js';
import type { Fence, Lease, TaskRecord } from '../core/task.js';
import type { TaskStore } from '../store/task-store.js';
import type { RegisteredHandler } from './handler.js';
import type { StallWatch } from './stalls.js';
import type { RunEnd } from './telemetry.js';

/**
 * What a `TaskRuntime` gives its executor: the store (the source of truth for everything the
 * protocol and the console see), the registered handlers and how a handler's outcome is written.
 */
export interface ExecutorHost {
  readonly store: TaskStore;
  readonly log: Logger;
  /** The runtime's clock in ms since the epoch (the store's, see `TaskStore.now`). */
  now(): number;
  /** The handler registered for `tool`, or undefined. */
  handler(tool: string): RegisteredHandler | undefined;
  /** `args` with the fields stored encrypted (`RegisteredHandler.sensitive`) opened. */
  openArguments(args: JsonObject): JsonObject;
  /**
   * Ends `task` with its handler's outcome, as every executor must (see `TaskRuntime`): a result
   * completes it (`completed`, or `errorResultStatus` when `isError`; too large a result fails it), a
   * thrown `TaskRpcError` fails it with that JSON-RPC error, any other throw ends it with an
   * `isError` result. `fence` (embedded runs) makes the write conditional on the run's lease. A task
   * that had already ended (cancelled meanwhile), was deleted or was taken over is left as it is:
   * resolves `{ kind: 'interrupted', … }` then. Rejects with `StoreUnavailableError` on an outage.
   */
  finish(task: TaskRecord, outcome: { result: unknown } | { error: unknown }, fence?: Fence): Promise<RunEnd>;
  /** Errors that belong to no request. */
  onError(error: unknown, taskId?: string): void;
  /**
   * Stall detection for one run of `task` (see `StallWatch`), when its tool declares `stallAfterMs`;
   * undefined otherwise. The run's context reports its activity to it; the executor closes it when
   * the run ends or `signal` aborts (closed then by itself too). A flag is written with `fence`
   * (when given), logged (warn), counted and announced (`TaskRuntime.onTaskEvent`).
   */
  watchStalls(task: TaskRecord, signal: AbortSignal, fence?: Fence): StallWatch | undefined;
  /**
   * Ends `task` because its deadline (`TaskRecord.deadline`) passed — confirmed on the store's clock
   * by the caller: `failed` with the JSON-RPC error `DEADLINE_EXCEEDED` (-32011), through `finish`
   * (so a task that ended meanwhile, or that another run holds, is left alone: `interrupted`). A
   * won write is logged (warn), counted and announced (`TaskRuntime.onTaskEvent`).
   */
  expire(task: TaskRecord, fence?: Fence): Promise<RunEnd>;
}

export type { RunEnd };

/**
 * The seam between the task protocol and whatever executes task handlers.
 *
 * The `TaskRuntime` (the façade the wire talks to) owns everything the protocol and the people see,
 * in the `TaskStore`: creating a task, its status, `inputRequests`, answers, results, ownership, TTL
 * and history. An executor owns execution: running the handler with a `TaskContext`, steps, timers,
 * waiting for answers, retries, cancellation, recovery after a crash and placement across
 * instances. Three implementations: the embedded one (`EmbeddedExecutor`, the default: our own
 * journal, timers and leases), DBOS (`mcp-tasks/executor/dbos`) and Restate
 * (`mcp-tasks/executor/restate`). The handler API is the same on all three.
 *
 * Order of calls: `bind` once, then `recover` at start-up, then any of `start`, `cancelled`,
 * `answered`, `elicitationCompleted`; `close` last. Every notification comes after the store write
 * it reports, so an executor that misses one (a crash in between) finds the truth in the store.
 */
export interface TaskExecutor {
  /** `embedded`, `dbos`, `restate`: shown in logs and metrics. */
  readonly name: string;
  /** Called once by the runtime, before anything else. */
  bind(host: ExecutorHost): void;
  /**
   * The lease a new task is created with (`TaskStore.create`'s `lease`): this instance's, for an
   * executor that places tasks by our leases; undefined for an engine that places them itself.
   */
  leaseForNewTask(): { holder: string; leaseMs: number } | undefined;
  /**
   * Starts executing `task`, just created (durably stored, `working`). `since` is the monotonic time
   * (ms, `performance.now()`) the create was sent. Must not throw for the engine's sake: a task
   * whose start was lost is started by `recover` (the store lists it unfinished).
   */
  start(task: TaskRecord, since: number): Promise<void>;
  /**
   * At start-up: resumes or re-attaches every unfinished task this instance should run (those
   * whose start was lost included) and starts whatever background work the executor needs (lease
   * heartbeats, reconciliation). Resolves with how many tasks it started or resumed.
   */
  recover(): Promise<number>;
  /**
   * `task` was just cancelled in the store (`TaskStore.cancel`; `revoked` is the lease it held then):
   * stop its work everywhere. Resolves once no effect of the task can begin any more (the cancel's
   * acknowledgement waits for it).
   */
  cancelled(task: TaskRecord, revoked: Lease | undefined): Promise<void>;
  /**
   * Answers to questions `keys` of `taskId` were just stored (`TaskStore.answerInputs`): deliver
   * each to the waiting handler exactly once, wherever it runs. Must not throw for a delivery it
   * can retry later (a reconciler re-delivers answers stored but not consumed).
   */
  answered(taskId: string, keys: readonly string[]): Promise<void>;
  /** The out-of-band flow `elicitationId` of `taskId`'s URL elicitation completed (journaled first). */
  elicitationCompleted(taskId: string, elicitationId: string): Promise<void>;
  /** True while this process executes the task's handler. */
  isRunning(taskId: string): boolean;
  /**
   * Operator retry (`TaskRuntime.retry`): `taskId` — a live task whose lease the retry handed to
   * `heldBy` (no instance's name) while it trimmed the journal — must run again from its journal
   * now. The run holding it before was fenced out by that write; a handler of it still running here
   * (one stuck in an await) is abandoned: it can write nothing any more. Optional: executors
   * without it (DBOS, Restate, whose engines replay their own histories) do not support operator
   * retry.
   */
  restart?(taskId: string, heldBy: string): Promise<void>;
  /** Stops executing here; tasks stay as stored and resume on the next start or another instance. */
  close(): Promise<void>;
}

/**
 * The durable primitives an engine gives one run of one task (see `EngineContext`, which builds the
 * `TaskContext` on them). Each call is recorded by the engine the first time and replayed from its
 * record afterwards; calls must come in the same order on every replay.
 */
export interface DurableRun {
  /**
   * Runs `fn` once and records its value (JSON or null). `fn` returns the value or throws only for
   * the engine's sake (a store outage, a lost lease): the engine retries it then, or stops the run.
   * Failures of the handler's own step functions are values here (`StepRecord`), never throws.
   */
  step<T extends Json | null>(name: string, fn: () => Promise<T>): Promise<T>;
  /** Waits `ms` milliseconds durably (the engine records the deadline; a restart keeps it). */
  sleep(name: string, ms: number): Promise<void>;
  /** A durable reading of the clock, ms since the epoch (the same value on replay). */
  now(name: string): Promise<number>;
  /**
   * Waits durably for the message `topic` sent to this task by its executor (`TaskExecutor.answered`
   * sends each answer under its question key) and returns its value. The engine's command is issued
   * when this is called (its place in the run's history is fixed then); `stop` aborting ends the
   * wait (rejecting with its reason) without taking the command back.
   */
  receive<T extends Json>(topic: string, stop?: AbortSignal): Promise<T>;
  /**
   * Whether the question bookkeeping after a wait (settling an answer once it arrived) is recorded
   * as a `step` (default) or done again on each replay (`false`: the write is idempotent). An
   * engine that replays completed waits in another order than they completed (Restate) would
   * otherwise see those steps at other places of the run's history and refuse the replay; DBOS
   * records them (its reconciler reads `settleStepName` steps).
   */
  readonly recordsSettles?: boolean;
}

/**
 * An executor's engine could not be reached or refused to start (DBOS's system database, a
 * restate-server's admin API): thrown by `TaskExecutor.recover`, reported at start-up by naming the
 * engine, what failed and what to do (`advice`), never as the task store's failure. `cause` is the
 * engine's own error.
 */
export class ExecutorUnavailableError extends Error {
  constructor(
    /** The executor's `name` (`dbos`, `restate`). */
    readonly executor: string,
    message: string,
    /** What to do about it, for a person starting the server. */
    readonly advice: string,
    options?: ErrorOptions,
  ) {
    super(message, options);
    this.name = 'ExecutorUnavailableError';
  }
}
