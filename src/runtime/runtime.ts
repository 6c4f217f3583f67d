import { EventEmitter } from 'node:events';
import {
  DEADLINE_EXCEEDED,
  IllegalTransitionError,
  InvalidAnswerError,
  InvalidArgumentError,
  LeaseLostError,
  StoreUnavailableError,
  TaskNotFoundError,
  TaskRpcError,
} from '../core/errors.js';
import { isTerminal } from '../core/status.js';
import type { Json, JsonObject } from '../core/json.js';
import { jsonSize, toJson } from '../core/json.js';
import { requestFingerprint } from '../core/idempotency.js';
import type { Fence, Lease, TaskRecord } from '../core/task.js';
import { ENGINE_ACCESS, type Access, type Principal } from '../core/access.js';
import {
  askedKey,
  answeredKey,
  asksUrlElicitation,
  elicitationCompleteKey,
  retriedKey,
  RETRY_OF_KEY,
  type ActivityKind,
  type Actor,
  type AnsweredEntry,
  type AskedEntry,
  type ElicitationCompleteEntry,
  type RetriedEntry,
  type RetryFrom,
  type RetryOfEntry,
} from '../core/journal-keys.js';
import { completedWithToolError } from '../store/backend.js';
import { isHistoryKey, retryPlan } from './retry.js';
import { createLogger, type Logger } from '../core/log.js';
import { withSignals } from '../core/deadline.js';
import type { TaskPage, TaskStore } from '../store/task-store.js';
import type { OutboxDelivery, WebhookEventType } from '../store/outbox.js';
import type { RegisteredHandler } from './handler.js';
import { EmbeddedExecutor, type EmbeddedExecutorOptions } from './embedded-executor.js';
import type { TaskExecutor } from './executor.js';
import { monotonicNow } from './lease-guard.js';
import { QuestionDeadlines } from './question-deadlines.js';
import { DEADLINE_ACTOR } from '../core/history.js';
import { StallWatch } from './stalls.js';
import {
  instruments,
  notePoll,
  recordDeadlineExceeded,
  recordInputWait,
  recordStall,
  recordTaskEnd,
  registerStalledSource,
  startCreation,
  type RunEnd,
} from './telemetry.js';

export type { RegisteredHandler, TaskHandler, TaskToolResult } from './handler.js';

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
  /**
   * The call's idempotency key (SEP-3182, `params.idempotencyKey`; see `TaskStore.createOrFind`):
   * a retained task `owner` created with it — for the same tool and arguments — is returned instead
   * of a new one, and is not started again. Other arguments → `IdempotencyConflictError` (-32602).
   */
  idempotencyKey?: string;
  /**
   * This call's time budget in ms from creation (2025-11-25 and 2026-07-28: the `tools/call`
   * request's `_meta["mcp-tasks/deadlineMs"]`, see `DEADLINE_META_KEY`): it only lowers the tool's
   * `deadlineMs` (`RegisteredHandler.deadlineMs`); ignored when larger, or when the tool declares
   * none. Throws `InvalidArgumentError` unless it is a positive finite number.
   */
  deadlineMs?: number;
}

/** The lease holder an operator retry hands a task to while it prepares it (no runtime instance has this name). */
const RETRY_HOLDER = 'mcp-tasks:operator-retry';

/** Which task an event is about (`TaskEvent`): never its arguments or answers. */
export interface TaskEventTask {
  taskId: string;
  tool: string;
  /** The task's principal; `null` when anonymous. */
  principal: string | null;
}

/**
 * What `TaskRuntime.onTaskEvent` announces, after the durable write it reports (all times ISO 8601,
 * store clock; each event is emitted by the one process that made the write):
 * - `stalled`: the task, `working`, showed no activity since `since` for longer than its tool's
 *   `stallAfterMs` (flagged at `at`; `TaskRecord.stalled`, journal `stalled:<since>`). A flag only.
 * - `resumed`: the stall episode `since` ended at `at` with `activity` (a step, progress, …).
 * - `deadline_exceeded`: the task ended `failed` at `at` because its `deadline` passed (-32011).
 */
export type TaskEvent =
  | ({ type: 'stalled'; at: string; since: string; stallAfterMs: number } & TaskEventTask)
  | ({ type: 'resumed'; at: string; since: string; activity: ActivityKind } & TaskEventTask)
  | ({ type: 'deadline_exceeded'; at: string; deadline: string } & TaskEventTask);

/** Options of a `TaskRuntime`. */
export interface TaskRuntimeOptions extends EmbeddedExecutorOptions {
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
  /**
   * What executes task handlers (see `TaskExecutor`): the embedded executor (default: this
   * process, our journal, timers and leases; built from `instanceId`, `leaseMs`, `permitMs`,
   * `maxClockSkewMs`), or an external durable engine — `createDbosExecutor` from
   * `mcp-tasks/executor/dbos`, `createRestateExecutor` from `mcp-tasks/executor/restate`. The
   * handler API and everything the protocol shows are the same on each.
   */
  executor?: TaskExecutor;
  /** Largest tool result stored, in bytes of JSON (default 4 MiB); a larger one fails its task. */
  maxResultBytes?: number;
  /**
   * How often expired tasks (terminal, past `createdAt + ttl`, their `ttl` extended at the end by the
   * store's `retainAfterEndMs`) are deleted with their journals, in
   * ms (default 60000; 0 disables). Each run deletes batches of 500 until none is left (at most 20).
   */
  purgeIntervalMs?: number;
}

/**
 * The façade the wire talks to: creates, reads, answers and cancels tasks in the `TaskStore`, and
 * hands their execution to a `TaskExecutor` (the embedded one by default; DBOS or Restate).
 *
 * - `submit` stores the task (durable before it resolves) and starts it on the executor.
 * - `recover` (call once at start-up) has the executor resume every unfinished task: finished steps
 *   replay, timers keep their original deadline, answered questions return their answer,
 *   unanswered ones wait again.
 * - A handler's return value completes the task: `completed`, or `task.errorResultStatus` when the
 *   result has `isError: true`. A thrown `TaskRpcError` fails it with that JSON-RPC error; any other
 *   throw ends it with an `isError` tool result carrying the message (what the MCP SDK returns for a
 *   throwing tool), in `task.errorResultStatus`, with the message as `statusMessage`. Nothing is left
 *   `working` by a handler error. Every executor ends tasks through the same code (`ExecutorHost.finish`).
 * - `cancel` makes the task `cancelled` in the store first, then has the executor stop its work;
 *   whatever the handler does afterwards cannot change the status.
 * - Answers (`provideInputs`, from every path: 2025-11-25 `tasks/result`, 2026-07-28
 *   `tasks/update` and MRTR, fallback tools, the console) are checked and stored once, then handed
 *   to the executor, which delivers each to the waiting handler exactly once.
 * - Store outages are never a task's outcome (see each executor).
 */
export class TaskRuntime {
  private readonly handlers = new Map<string, RegisteredHandler>();
  private readonly completions = new EventEmitter().setMaxListeners(0);
  private readonly now: () => number;
  private readonly onError: (error: unknown, taskId?: string) => void;
  private readonly log: Logger;
  private purger?: NodeJS.Timeout;
  private readonly maxResultBytes: number;
  private readonly purgeIntervalMs: number;
  /** Tasks this process's runs have flagged stalled and not seen resume (`mcp_tasks.tasks.stalled`). */
  private readonly stalledNow = new Set<string>();
  private readonly unregisterStalled: () => void;
  /** What executes the handlers (see `TaskRuntimeOptions.executor`). */
  readonly executor: TaskExecutor;
  /**
   * The deadlines and reminders of pending questions (see `QuestionDeadlines`), on every executor.
   *
   * @internal Read by tests (`armed`); not an API of its own.
   */
  readonly deadlines: QuestionDeadlines;

  constructor(
    readonly store: TaskStore,
    options: TaskRuntimeOptions = {},
  ) {
    this.now = options.now ?? (() => store.now());
    this.log = options.logger ?? createLogger();
    this.onError = options.onError ?? ((error, taskId) => this.log.error({ err: error, taskId }, 'task runtime error'));
    this.maxResultBytes = options.maxResultBytes ?? 4 * 1024 * 1024;
    this.purgeIntervalMs = options.purgeIntervalMs ?? 60_000;
    this.executor = options.executor ?? new EmbeddedExecutor(options);
    this.executor.bind({
      store,
      log: this.log,
      now: () => this.now(),
      handler: (tool) => this.handlers.get(tool),
      openArguments: (args) => this.openSensitive(args),
      finish: (task, outcome, fence) => this.finish(task, outcome, fence),
      onError: (error, taskId) => this.onError(error, taskId),
      watchStalls: (task, signal, fence) => this.watchStalls(task, signal, fence),
      expire: (task, fence) => this.expire(task, fence),
    });
    this.deadlines = new QuestionDeadlines({
      store,
      log: this.log,
      now: () => this.now(),
      answer: async (taskId, key, answer) => (await this.provideInputs(taskId, { [key]: answer }, ENGINE_ACCESS, DEADLINE_ACTOR)).length === 1,
      cancel: async (taskId) => void (await this.cancel(taskId, ENGINE_ACCESS, DEADLINE_ACTOR)),
    });
    this.unregisterStalled = registerStalledSource(() => this.stalledNow.size);
  }

  /** The embedded executor's identity in leases (undefined on another executor). */
  get instanceId(): string | undefined {
    return this.executor instanceof EmbeddedExecutor ? this.executor.instanceId : undefined;
  }

  /** Whether the embedded executor refuses leases because its clock is too far from the store's (see `maxClockSkewMs`). */
  get clockSkewed(): boolean {
    return this.executor instanceof EmbeddedExecutor && this.executor.clockSkewed;
  }

  /** The embedded executor's `checkClock` (undefined on another executor). */
  async checkClock(samples = 3): Promise<number | undefined> {
    return this.executor instanceof EmbeddedExecutor ? this.executor.checkClock(samples) : undefined;
  }

  /**
   * Enqueues webhook event `type` for task `taskId` (see `TaskStore.emitTaskEvent`): for events that
   * are not a status write of their own, such as `task.stalled` and `task.question_overdue`. `detail`
   * (JSON, sent as it is: no secrets) goes under the payload's `data.detail`. Durable when it
   * resolves; returns the deliveries enqueued ([] when no webhook takes the event).
   */
  emitTaskEvent(taskId: string, type: WebhookEventType, detail?: JsonObject): Promise<OutboxDelivery[]> {
    return this.store.emitTaskEvent(taskId, type, detail);
  }

  /**
   * Registers the handler for tool `name`. Throws `InvalidArgumentError` if the name is taken,
   * `stallAfterMs` / `deadlineMs` is given and not a positive finite number of ms, or `deadlineMs`
   * is given on an executor other than the embedded one (DBOS, Restate: not enforced there yet).
   */
  register(name: string, entry: RegisteredHandler): void {
    if (this.handlers.has(name)) throw new InvalidArgumentError(`A task handler named '${name}' is already registered`);
    for (const option of ['stallAfterMs', 'deadlineMs'] as const) {
      const value = entry[option];
      if (value !== undefined && !positiveMs(value)) throw new InvalidArgumentError(`${option} of tool '${name}' must be a positive number of milliseconds`);
    }
    // Deadlines are enforced by the embedded executor's runs (a race of the handler against a timer
    // confirmed on the store's clock); an engine's DurableRun has no deterministic race yet.
    if (entry.deadlineMs !== undefined && this.executor.name !== 'embedded')
      throw new InvalidArgumentError(
        `deadlineMs of tool '${name}' needs the embedded executor; the ${this.executor.name} executor does not enforce deadlines yet`,
      );
    this.handlers.set(name, entry);
  }
  /** True when a handler is registered for tool `name`. */
  has(name: string): boolean {
    return this.handlers.has(name);
  }
  /**
   * Validates the arguments, stores a new `working` task and starts it on the executor. Resolves
   * once the task is durably stored (the handler keeps running). Throws `InvalidArgumentError` for
   * an unknown tool or arguments the tool's parser rejects; nothing is stored then.
   *
   * Telemetry: the span `task.create <tool>`, child of the caller's context in
   * `input.traceCarrier`, whose context is stored with the task (`TaskRecord.traceContext`) in
   * the same write; `mcp_tasks.tasks.created`. See `telemetry.ts`.
   */
  async submit(input: SubmitInput): Promise<TaskRecord> {
    const entry = this.handlers.get(input.tool);
    if (!entry) throw new InvalidArgumentError(`Unknown task tool: ${input.tool}`);
    await entry.parse(input.arguments);
    const deadlineMs = effectiveDeadline(entry.deadlineMs, input.deadlineMs);
    const creation = startCreation(input.tool, input.traceCarrier);
    let task: TaskRecord;
    const since = monotonicNow();
    const lease = this.executor.leaseForNewTask();
    let created = true;
    try {
      ({ task, created } = await this.store.createOrFind({
        owner: input.owner,
        request: {
          tool: input.tool,
          arguments: this.sealSensitive(entry, toJson<JsonObject>(input.arguments)),
          ...(input.clientCapabilities && { clientCapabilities: toJson<JsonObject>(input.clientCapabilities) }),
        },
        ttl: input.ttl,
        errorResultStatus: input.errorResultStatus,
        ...(lease && { lease }),
        ...(creation.traceContext && { traceContext: creation.traceContext }),
        ...(input.idempotencyKey !== undefined && {
          idempotency: {
            key: input.idempotencyKey,
            fingerprint: requestFingerprint(input.tool, toJson(input.arguments), this.store.secrets?.macKey()),
          },
        }),
        ...(deadlineMs !== undefined && { deadlineMs }),
      }));
    } catch (error) {
      creation.failed(error);
      throw error;
    }
    if (!created) {
      creation.found(task);
      this.log.debug({ ...taskFields(task), idempotencyKey: input.idempotencyKey }, 'task creation retried: returned the task the key created');
      return task;
    }
    creation.stored(task);
    this.log.info(taskFields(task), 'task created');
    this.startPurge();
    await this.deliver(() => this.executor.start(task, since), task.taskId);
    return task;
  }

  /**
   * Has the executor resume unfinished tasks (see `TaskExecutor.recover`), arms the deadlines and
   * reminders of every pending question that has some (`QuestionDeadlines.armPending`: one already
   * past fires at once) and starts the purge of expired tasks. Returns how many tasks were started.
   */
  async recover(): Promise<number> {
    this.startPurge();
    const started = await this.executor.recover();
    await this.deadlines.armPending();
    return started;
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
  /** Starts the purge of expired tasks once (see `purgeIntervalMs`). */
  private startPurge(): void {
    if (this.purger || this.purgeIntervalMs <= 0) return;
    this.purger = setInterval(() => void this.purgeExpired().catch((error) => this.onError(error)), this.purgeIntervalMs);
    this.purger.unref();
  }

  /**
   * Hands a store write that happened to the executor. An executor that cannot be told now is told
   * later by its own reconciliation (the store has the truth): its error is reported, never the
   * request's.
   */
  private async deliver(call: () => Promise<void>, taskId: string): Promise<void> {
    try {
      await call();
    } catch (error) {
      this.onError(error, taskId);
    }
  }

  /**
   * Cancels a task on behalf of `access` (required, see `Access`). The task is `cancelled` in the
   * store, and the executor has stopped its work (no effect of it begins any more), when this
   * resolves. Throws `TaskNotFoundError` (unknown, foreign, expired), or `IllegalTransitionError` if
   * already terminal.
   */
  async cancel(taskId: string, access: Access, actor?: Actor): Promise<TaskRecord> {
    let revoked: Lease | undefined;
    const task = await this.store.cancel(taskId, access, { ...(actor && { actor }), onRevoked: (lease) => (revoked = lease) });
    recordTaskEnd(task);
    this.log.info({ ...taskFields(task), by: actor ? actorName(actor) : accessName(access) }, 'task cancelled');
    await this.deliver(() => this.executor.cancelled(task, revoked), taskId);
    return task;
  }

  /**
   * Operator retry: runs task `taskId` again from `options.from` (see `RetryFrom`; default
   * `'stopped'`: where it stopped — its failed steps run again, the others replay). The recorded
   * steps before that point are kept and replay; the step there and every later one run again.
   * Answers already given are kept (and replay) unless `options.clearAnswers`, which drops those
   * given after that point, so their questions are asked again. `options.by` (an operator) is
   * journaled (`RetriedEntry`) and shown on the timeline.
   *
   * - A `failed` task (or one that `completed` with a tool error, 2026-07-28) keeps its status and
   *   result — terminal statuses are final (MCP 2025-11-25 "Task Status Lifecycle") — and a
   *   **successor** task runs it again: same principal, tool, arguments and client capabilities,
   *   its journal the kept entries, `TaskRecord.retryOf` naming the old task (`ctx.retryOf`), which
   *   names it in turn (`retriedAs`, shown by `tasks/get` as `_meta["mcp-tasks/retriedAs"]`).
   * - A `working` task (stalled, or stuck) runs again **in place**, same task id, still `working`:
   *   its lease is taken from the run holding it (which is fenced out and aborted, wherever it
   *   runs), the dropped entries are deleted, and it is claimed under a new lease epoch and started
   *   here (a front instance leaves it to a worker).
   *
   * Resolves with the task that runs it again and whether that is the same one. Throws
   * `TaskNotFoundError` (unknown or expired), `IllegalTransitionError` (a task that is
   * `input_required`, `cancelled` or `completed` successfully — answer, or create a new one),
   * `InvalidArgumentError` (an unknown step; a task already retried — retry its successor; a tool
   * not registered here; an executor without `restart`: DBOS and Restate replay their own
   * histories, so operator retry needs the embedded executor).
   */
  /**
   * Whether `task` may be run again by `retry` on this instance (the console offers it then): its
   * executor supports it, it was not run again already, and it is `failed`, ended with a tool error
   * or is `working`. `retry` refuses the others, each with its reason.
   */
  canRetry(task: TaskRecord): boolean {
    return this.executor.restart !== undefined && task.retriedAs === undefined && (isFailedEnd(task) || task.status === 'working');
  }

  async retry(taskId: string, options: { from?: RetryFrom; clearAnswers?: boolean; by: Actor }): Promise<{ taskId: string; inPlace: boolean }> {
    const executor = this.executor;
    if (!executor.restart)
      throw new InvalidArgumentError(
        'Operator retry needs the embedded executor: DBOS and Restate replay their own histories (use their own fork or restart tools)',
      );
    const task = await this.store.get(taskId, ENGINE_ACCESS);
    const failed = isFailedEnd(task);
    if (!failed && task.status !== 'working') throw new IllegalTransitionError(taskId, task.status, 'working');
    if (task.retriedAs !== undefined) throw new InvalidArgumentError(`Task ${taskId} was already run again as task ${task.retriedAs}; retry that one instead`);
    const handler = this.handlers.get(task.request.tool);
    if (!handler) throw new InvalidArgumentError(`Tool '${task.request.tool}' is not registered on this instance`);
    const from = options.from ?? 'stopped';
    const clearAnswers = options.clearAnswers === true;
    const plan = retryPlan(await this.store.readJournal(taskId), from, clearAnswers);
    const at = new Date(this.now()).toISOString();
    const fromText = typeof from === 'object' ? `step '${from.step}'` : from === 'start' ? 'the start' : 'where it stopped';
    const by = options.by.name ?? 'an operator';
    const entry = (successor?: string): RetriedEntry => ({
      at,
      by: options.by,
      from,
      ...(successor !== undefined && { successor }),
      dropped: plan.drop,
      clearedAnswers: clearAnswers,
    });
    const holdMs = 60_000; // how long no instance takes the task over while the retry prepares it (a crash meanwhile: then it is taken over)
    if (!failed) {
      await this.store.holdForRetry(taskId, RETRY_HOLDER, holdMs, `Running again from ${fromText}, as ${by} asked`);
      await this.store.deleteJournal(taskId, plan.drop);
      await this.store.appendJournal(taskId, retriedKey(at), entry() as unknown as Json);
      this.log.info({ ...taskFields(task), by: actorName(options.by), from }, 'task run again in place by an operator');
      await executor.restart(taskId, RETRY_HOLDER);
      return { taskId, inPlace: true };
    }
    const successor = await this.store.create({
      owner: task.owner,
      request: task.request,
      errorResultStatus: task.errorResultStatus,
      lease: { holder: RETRY_HOLDER, leaseMs: holdMs },
      retryOf: taskId,
      // The tool's time budget starts over with the new task (a per-call lowering is not known any more).
      ...(handler.deadlineMs !== undefined && { deadlineMs: handler.deadlineMs }),
      statusMessage: `Running task ${taskId} again from ${fromText}, as ${by} asked`,
      ...(task.traceContext && { traceContext: task.traceContext }),
    });
    await Promise.all([...plan.keep].filter(([key]) => !isHistoryKey(key)).map(([key, value]) => this.store.appendJournal(successor.taskId, key, value)));
    const retryOf: RetryOfEntry = { at, by: options.by, taskId, from };
    await this.store.appendJournal(successor.taskId, RETRY_OF_KEY, retryOf as unknown as Json);
    await this.store.markRetried(taskId, successor.taskId);
    await this.store.appendJournal(taskId, retriedKey(at), entry(successor.taskId) as unknown as Json);
    this.log.info({ ...taskFields(task), by: actorName(options.by), from, successor: successor.taskId }, 'failed task run again by an operator, as a new task');
    this.startPurge();
    await executor.restart(successor.taskId, RETRY_HOLDER);
    return { taskId: successor.taskId, inPlace: false };
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
    if (taken.length > 0) await this.deliver(() => this.executor.answered(taskId, taken), taskId);
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
    const [journal, tool] = await Promise.all([this.store.readJournal(taskId), this.store.get(taskId, ENGINE_ACCESS).then((task) => task.request.tool)]);
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
    await this.deliver(() => this.executor.elicitationCompleted(taskId, elicitationId), taskId);
    return true;
  }
  /**
   * Subscribes to the task events this process writes (see `TaskEvent`: `stalled`, `resumed`,
   * `deadline_exceeded`), e.g. to send a webhook. Called synchronously after the durable write; a
   * listener that throws is reported to `onError` and does not disturb the others. Returns the
   * unsubscribe function.
   */
  onTaskEvent(listener: (event: TaskEvent) => void): () => void {
    this.completions.on('task-event', listener);
    return () => this.completions.off('task-event', listener);
  }

  private announceTaskEvent(event: TaskEvent): void {
    for (const listener of this.completions.listeners('task-event') as ((event: TaskEvent) => void)[]) {
      try {
        listener(event);
      } catch (error) {
        this.onError(error, event.taskId);
      }
    }
  }

  /** `ExecutorHost.watchStalls`: a `StallWatch` whose flags and resumptions are written, logged, counted and announced. */
  private watchStalls(task: TaskRecord, signal: AbortSignal, fence?: Fence): StallWatch | undefined {
    const afterMs = this.handlers.get(task.request.tool)?.stallAfterMs;
    if (afterMs === undefined || signal.aborted) return undefined;
    const fields = taskFields(task);
    const { taskId } = task;
    const watch = new StallWatch({
      afterMs,
      now: () => this.now(),
      ...(task.stalled && { flaggedSince: task.stalled.since }),
      onStalled: async (since, at) => {
        if (!(await this.bookkeeping(taskId, () => this.store.markStalled(taskId, { at, since }, afterMs, fence)))) return;
        this.stalledNow.add(taskId);
        const idleMs = Date.parse(at) - Date.parse(since);
        this.log.warn({ ...fields, since, idleMs, stallAfterMs: afterMs }, `task stalled: no activity for ${idleMs} ms (stallAfterMs ${afterMs})`);
        recordStall(task.request.tool);
        this.announceTaskEvent({ type: 'stalled', ...fields, at, since, stallAfterMs: afterMs });
      },
      onResumed: async (since, at, activity) => {
        this.stalledNow.delete(taskId);
        if (!(await this.bookkeeping(taskId, () => this.store.clearStalled(taskId, since, { at, activity }, fence)))) return;
        this.log.info({ ...fields, since, activity }, 'task active again after a stall');
        this.announceTaskEvent({ type: 'resumed', ...fields, at, since, activity });
      },
    });
    signal.addEventListener(
      'abort',
      () => {
        watch.close();
        this.stalledNow.delete(taskId);
      },
      { once: true },
    );
    return watch;
  }

  /**
   * A bookkeeping write of a run (a stall flag): resolves true once written; false when the run no
   * longer holds the task (ended, cancelled, taken over, deleted: nothing to flag) or the store
   * failed (reported, or left to the store's outage log).
   */
  private async bookkeeping(taskId: string, write: () => Promise<unknown>): Promise<boolean> {
    try {
      return (await write()) !== false;
    } catch (error) {
      if (!(error instanceof LeaseLostError || error instanceof TaskNotFoundError || error instanceof StoreUnavailableError)) this.onError(error, taskId);
      return false;
    }
  }

  /** `ExecutorHost.expire`: ends `task` failed with `DEADLINE_EXCEEDED`; a won write is logged, counted and announced. */
  private async expire(task: TaskRecord, fence?: Fence): Promise<RunEnd> {
    const deadline = task.deadline!;
    const deadlineMs = Date.parse(deadline) - Date.parse(task.createdAt);
    const error = new TaskRpcError(DEADLINE_EXCEEDED, `Task deadline exceeded: its time budget of ${deadlineMs} ms from creation ended at ${deadline}`, {
      deadline,
      deadlineMs,
    });
    const end = await this.finish(task, { error }, fence);
    if (end.kind === 'ended') {
      this.stalledNow.delete(task.taskId);
      this.log.warn({ ...taskFields(task), deadline, deadlineMs }, 'task deadline exceeded');
      recordDeadlineExceeded(task.request.tool);
      this.announceTaskEvent({ type: 'deadline_exceeded', ...taskFields(task), at: end.task.lastUpdatedAt, deadline });
    }
    return end;
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
  /** True while this process executes the task's handler. */
  isRunning(taskId: string): boolean {
    return this.executor.isRunning(taskId);
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
   * Stops executing handlers (see `TaskExecutor.close`): their tasks stay as stored and resume on the
   * next start or another instance.
   */
  async close(): Promise<void> {
    if (this.purger) clearInterval(this.purger);
    this.deadlines.close();
    await this.executor.close();
    this.unregisterStalled();
  }

  /**
   * Ends `task` with its handler's outcome (`ExecutorHost.finish`, the same for every executor): a
   * result completes it (`errorResultStatus` when `isError`; a result larger than `maxResultBytes`
   * fails it); a `TaskRpcError` fails it with that JSON-RPC error; any other error becomes the
   * `isError` tool result the SDK would have returned for a throwing tool, with the status that
   * result means for the task (`errorResultStatus`: `failed` in 2025-11-25, `completed` in the
   * 2026-07-28 extension, where `failed` is reserved for JSON-RPC errors). `fence` makes the write
   * conditional on the run's lease.
   */
  private async finish(task: TaskRecord, outcome: { result: unknown } | { error: unknown }, fence?: Fence): Promise<RunEnd> {
    if ('result' in outcome) {
      let result: JsonObject;
      try {
        result = normalizeResult(outcome.result);
        const size = jsonSize(result);
        if (size > this.maxResultBytes) throw new Error(`The tool result is too large to keep (${size} bytes; the limit is ${this.maxResultBytes})`);
      } catch (error) {
        return this.finish(task, { error }, fence);
      }
      const status = result.isError === true ? task.errorResultStatus : 'completed';
      const message = result.isError === true ? firstText(result) : undefined;
      return this.settle(this.store.finish(task.taskId, status, { type: 'result', result }, message, fence));
    }
    const error = outcome.error;
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
      throw error;
    }
  }
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

/** Whether `value` is a positive finite number (of ms). */
function positiveMs(value: unknown): value is number {
  return typeof value === 'number' && Number.isFinite(value) && value > 0;
}

/**
 * The deadline a new task gets, in ms from creation: the tool's `deadlineMs`, lowered by the call's
 * (ignored when larger, or when the tool has none). Throws `InvalidArgumentError` for a call value
 * that is not a positive finite number.
 */
function effectiveDeadline(tool: number | undefined, call: number | undefined): number | undefined {
  if (call !== undefined && !positiveMs(call)) throw new InvalidArgumentError('The requested deadlineMs must be a positive number of milliseconds');
  if (tool === undefined) return undefined;
  return call === undefined ? tool : Math.min(tool, call);
}

/** The fields that identify a task in log lines: never its arguments or answers. */
function taskFields(task: TaskRecord): { taskId: string; tool: string; principal: string | null } {
  return { taskId: task.taskId, tool: task.request.tool, principal: task.owner };
}

/** Who acted, for log lines: the principal, or `engine`. */
function accessName(access: Access): string | null {
  return access === ENGINE_ACCESS ? 'engine' : access;
}

/** How logs name an `Actor`: the principal, `operator:<name>`, `engine` or `deadline`. */
function actorName(actor: Actor): string | null {
  return actor.role === 'operator' ? `operator:${actor.name}` : actor.role === 'engine' || actor.role === 'deadline' ? actor.role : actor.name;
}

/** Whether `task` ended as a failure: `failed`, or `completed` with a tool error (how 2026-07-28 ends a failing tool). */
function isFailedEnd(task: TaskRecord): boolean {
  return task.status === 'failed' || completedWithToolError(task);
}
