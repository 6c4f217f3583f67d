import { randomBytes } from 'node:crypto';
import { hostname } from 'node:os';
import { IllegalTransitionError, InvalidAnswerError, InvalidArgumentError, LeaseLostError, TaskNotFoundError, TaskRpcError } from '../core/errors.js';
import { isTerminal } from '../core/status.js';
import type { Json, JsonObject } from '../core/json.js';
import { jsonSize, toJson } from '../core/json.js';
import type { InputResponse, TaskRecord } from '../core/task.js';
import { ENGINE_ACCESS, type Access, type Principal } from '../core/access.js';
import { createLogger, type Logger } from '../core/log.js';
import type { TaskPage, TaskStore } from '../store/task-store.js';
import { ExecutionContext, type TaskContext } from './context.js';
import { LeaseLostSignal, ShutdownSignal, TaskCancelledSignal } from './signals.js';

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
}

/** Options of a `TaskRuntime`. */
export interface TaskRuntimeOptions {
  /** Clock in ms since the epoch (tests inject one). */
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
}

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
 */
export class TaskRuntime {
  private readonly handlers = new Map<string, RegisteredHandler>();
  private readonly executions = new Map<string, Execution>();
  private readonly now: () => number;
  private readonly onError: (error: unknown, taskId?: string) => void;
  private readonly log: Logger;
  private closed = false;
  private readonly unsubscribe: () => void;
  /** This instance's identity in leases. */
  readonly instanceId: string;
  /** Lease length in ms. */
  readonly leaseMs: number;
  private heartbeat?: NodeJS.Timeout;
  private purger?: NodeJS.Timeout;
  private timersStarted = false;
  private ticking = false;
  private readonly maxResultBytes: number;
  private readonly purgeIntervalMs: number;

  constructor(
    readonly store: TaskStore,
    options: TaskRuntimeOptions = {},
  ) {
    this.now = options.now ?? Date.now;
    this.log = options.logger ?? createLogger();
    this.onError = options.onError ?? ((error, taskId) => this.log.error({ err: error, taskId }, 'task runtime error'));
    this.instanceId = options.instanceId ?? `${hostname()}-${process.pid}-${randomBytes(4).toString('hex')}`;
    this.leaseMs = options.leaseMs ?? 5000;
    this.maxResultBytes = options.maxResultBytes ?? 4 * 1024 * 1024;
    this.purgeIntervalMs = options.purgeIntervalMs ?? 60_000;
    this.unsubscribe = store.onChange((task) => {
      const execution = this.executions.get(task.taskId);
      if (!execution) return;
      if (task.status === 'cancelled') execution.controller.abort(new TaskCancelledSignal(task.taskId));
      else if (task.lease && task.lease.holder !== this.instanceId) execution.controller.abort(new LeaseLostSignal(task.taskId));
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
   */
  async submit(input: SubmitInput): Promise<TaskRecord> {
    const entry = this.handlers.get(input.tool);
    if (!entry) throw new InvalidArgumentError(`Unknown task tool: ${input.tool}`);
    entry.parse(input.arguments);
    const task = await this.store.create({
      owner: input.owner,
      request: { tool: input.tool, arguments: this.sealSensitive(entry, toJson<JsonObject>(input.arguments)) },
      ttl: input.ttl,
      errorResultStatus: input.errorResultStatus,
      lease: { holder: this.instanceId, leaseMs: this.leaseMs },
    });
    this.log.info(taskFields(task), 'task created');
    this.startHeartbeat();
    this.start(task);
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
    if (total > 0) this.log.info({ count: total }, 'expired tasks purged');
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

  /** Claims and starts unfinished tasks that no live instance holds (all of them when `force`). */
  private async takeOver(force: boolean): Promise<number> {
    let started = 0;
    for (const task of await this.store.listUnfinished()) {
      if (this.closed || this.executions.has(task.taskId)) continue;
      if (!force && task.lease && task.lease.holder !== this.instanceId && task.lease.expiresAt > this.now()) continue;
      const claimed = await this.store.claim(task.taskId, this.instanceId, this.leaseMs, force);
      if (!claimed || !this.start(claimed)) continue;
      started++;
      const previous = task.lease?.holder;
      if (force || !previous || previous === this.instanceId) this.log.info(taskFields(claimed), 'task resumed after restart');
      else this.log.info({ ...taskFields(claimed), previousHolder: previous }, 'task taken over from an instance presumed dead');
    }
    return started;
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
    if (!this.store.exclusive) {
      this.heartbeat = setInterval(() => void this.tick(), Math.max(50, Math.floor(this.leaseMs / 3)));
      this.heartbeat.unref();
    }
    if (this.purgeIntervalMs > 0) {
      this.purger = setInterval(() => void this.purgeExpired().catch((error) => this.onError(error)), this.purgeIntervalMs);
      this.purger.unref();
    }
  }

  private async tick(): Promise<void> {
    if (this.ticking || this.closed) return;
    this.ticking = true;
    try {
      for (const [taskId, execution] of this.executions) {
        try {
          await this.store.renew(taskId, this.instanceId, this.leaseMs);
        } catch (error) {
          if (error instanceof LeaseLostError || error instanceof TaskNotFoundError) execution.controller.abort(new LeaseLostSignal(taskId));
          else this.onError(error, taskId);
        }
      }
      await this.takeOver(false);
    } catch (error) {
      this.onError(error);
    } finally {
      this.ticking = false;
    }
  }

  /**
   * Cancels a task on behalf of `access` (required, see `Access`). The task is `cancelled` in the
   * store when this resolves. Throws `TaskNotFoundError` (unknown, foreign, expired), or
   * `IllegalTransitionError` if already terminal.
   */
  async cancel(taskId: string, access: Access): Promise<TaskRecord> {
    const task = await this.store.cancel(taskId, access);
    this.log.info({ ...taskFields(task), by: accessName(access) }, 'task cancelled');
    this.executions.get(taskId)?.controller.abort(new TaskCancelledSignal(taskId));
    return task;
  }

  /**
   * Delivers an answer to outstanding question `key`: `provideInputs` with one answer. Returns false
   * when the key is not outstanding. `access` is required (see `Access`). Throws `TaskNotFoundError`
   * for unknown or foreign tasks, and `InvalidAnswerError` (-32602 on the wire; nothing stored, the
   * question stays pending) when an `accept` does not match the question's `requestedSchema`.
   */
  async provideInput(taskId: string, key: string, response: InputResponse, access: Access): Promise<boolean> {
    return (await this.provideInputs(taskId, { [key]: response }, access)).length === 1;
  }

  /**
   * Delivers answers keyed by question key (see `TaskStore.answerInputs`: keys not outstanding are
   * ignored; every answer is checked against its question's `requestedSchema` before any is stored,
   * so a refusal stores nothing). Returns the keys taken. Logs each taken answer (`task input
   * answered`) and a refusal (`task input refused`, with the schema problems) at info level — never
   * the answer's content. `access` is required (see `Access`). Throws `TaskNotFoundError` for
   * unknown, foreign or expired tasks, `InvalidAnswerError` for answers that do not match.
   */
  async provideInputs(taskId: string, responses: { [key: string]: InputResponse }, access: Access): Promise<string[]> {
    let taken: string[];
    try {
      taken = await this.store.answerInputs(taskId, responses, access);
    } catch (error) {
      if (error instanceof InvalidAnswerError) this.log.info({ taskId, problems: error.problems, by: accessName(access) }, 'task input refused');
      throw error;
    }
    for (const key of taken) this.log.info({ taskId, key, action: responses[key]!.action, by: accessName(access) }, 'task input answered');
    return taken;
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
    for (;;) {
      const change = this.store.nextChange(taskId, { signal: options.signal, timeoutMs: 5_000 });
      const task = await this.store.get(taskId, access);
      options.onChange?.(task);
      if (isTerminal(task.status)) return task;
      if (options.signal?.aborted) return undefined;
      await change;
    }
  }

  /**
   * Stops every running handler. Their tasks stay as stored, with their leases released so another
   * instance (or this one's next start) takes them over at once.
   */
  async close(): Promise<void> {
    this.closed = true;
    if (this.heartbeat) clearInterval(this.heartbeat);
    if (this.purger) clearInterval(this.purger);
    this.unsubscribe();
    const running = [...this.executions.entries()];
    for (const [, execution] of running) execution.controller.abort(new ShutdownSignal());
    await Promise.allSettled(running.map(([, execution]) => execution.done));
    await Promise.allSettled(running.map(([taskId]) => this.store.renew(taskId, this.instanceId, -1)));
  }

  /** Starts the handler of `task` unless it is already running here. Returns whether it started. */
  private start(task: TaskRecord): boolean {
    if (this.closed || this.executions.has(task.taskId) || isTerminal(task.status)) return false;
    const controller = new AbortController();
    const execution: Execution = { controller, done: Promise.resolve() };
    this.executions.set(task.taskId, execution);
    execution.done = this.run(task, controller.signal)
      .catch((error) => this.onError(error, task.taskId))
      .finally(() => this.executions.delete(task.taskId));
    return true;
  }

  private async run(task: TaskRecord, signal: AbortSignal): Promise<void> {
    const entry = this.handlers.get(task.request.tool);
    if (!entry) {
      await this.fail(task, new Error(`No handler is registered for tool '${task.request.tool}' in this server`));
      return;
    }
    let outcome: { result: TaskToolResult } | { error: unknown };
    try {
      const args = entry.parse(this.openSensitive(task.request.arguments));
      const journal = await this.store.readJournal(task.taskId);
      const ctx = new ExecutionContext(task.taskId, signal, this.store, journal, this.now, this.instanceId, this.log.child(taskFields(task)));
      outcome = { result: await entry.handler(args, ctx) };
    } catch (error) {
      outcome = { error };
    }
    if (signal.aborted) return; // cancelled (already terminal), shutting down or taken over (resumes elsewhere)
    if ('error' in outcome) return this.fail(task, outcome.error);
    let result: JsonObject;
    try {
      result = normalizeResult(outcome.result);
      const size = jsonSize(result);
      if (size > this.maxResultBytes) throw new Error(`The tool result is too large to keep (${size} bytes; the limit is ${this.maxResultBytes})`);
    } catch (error) {
      return this.fail(task, error);
    }
    const status = result.isError === true ? task.errorResultStatus : 'completed';
    const message = result.isError === true ? firstText(result) : undefined;
    await this.settle(this.store.finish(task.taskId, status, { type: 'result', result }, message, this.instanceId));
  }

  /**
   * Ends a task whose handler threw. A `TaskRpcError` fails it with that JSON-RPC error. Any other
   * error becomes the `isError` tool result the SDK would have returned for a throwing tool, with
   * the status that result means for the task (`errorResultStatus`: `failed` in 2025-11-25,
   * `completed` in the 2026-07-28 extension, where `failed` is reserved for JSON-RPC errors).
   */
  private async fail(task: TaskRecord, error: unknown): Promise<void> {
    if (error instanceof TaskRpcError) {
      const rpc = { code: error.code, message: error.message, ...(error.data !== undefined && { data: toJson<Json>(error.data) }) };
      await this.settle(this.store.finish(task.taskId, 'failed', { type: 'error', error: rpc }, error.message, this.instanceId));
      return;
    }
    const message = error instanceof Error ? error.message : String(error);
    const result: JsonObject = { content: [{ type: 'text', text: message }], isError: true };
    await this.settle(this.store.finish(task.taskId, task.errorResultStatus, { type: 'result', result }, message, this.instanceId));
  }

  /** A finish that lost to a cancel, a deleted task or a takeover (fenced) is expected, not an error. */
  private async settle(write: Promise<TaskRecord>): Promise<void> {
    try {
      const task = await write;
      const fields = { ...taskFields(task), ...(task.outcome?.type === 'error' && { code: task.outcome.error.code }) };
      if (task.status === 'completed') this.log.info(fields, 'task completed');
      else this.log.info({ ...fields, statusMessage: task.statusMessage }, `task ${task.status}`);
    } catch (error) {
      if (error instanceof IllegalTransitionError || error instanceof TaskNotFoundError || error instanceof LeaseLostError) return;
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

/** The fields that identify a task in log lines: never its arguments or answers. */
function taskFields(task: TaskRecord): { taskId: string; tool: string; principal: string | null } {
  return { taskId: task.taskId, tool: task.request.tool, principal: task.owner };
}

/** Who acted, for log lines: the principal, or `engine`. */
function accessName(access: Access): string | null {
  return access === ENGINE_ACCESS ? 'engine' : access;
}
