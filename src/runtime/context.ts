import type { Json, JsonObject } from '../core/json.js';
import { toJson } from '../core/json.js';
import { silentLogger, type Logger } from '../core/log.js';
import type { InputResponse } from '../core/task.js';
import type { TaskStore } from '../store/task-store.js';
import { abortableDelay } from './delay.js';

/**
 * What a task handler gets besides its arguments. Everything here is durable: after a crash the
 * handler runs again from the top, and recorded steps, timers and answers are replayed from the
 * task's journal instead of being redone. Handlers must therefore call these methods in the same
 * order on every run (branch only on step results, answers and arguments).
 */
export interface TaskContext {
  /** The task's id (`taskId`). */
  readonly taskId: string;
  /**
   * Fires when the task is cancelled (`reason` is a `TaskCancelledSignal`) or the runtime shuts
   * down (`ShutdownSignal`; the task resumes on the next start). Pass it to I/O you start.
   */
  readonly signal: AbortSignal;
  /**
   * Runs `fn` once and journals its JSON result (or its error) under `name`, unique per task. After
   * a restart a finished step returns the recorded value without running `fn`. A step that was
   * running when the process died runs again (at-least-once), so side effects need an idempotency
   * key — `ctx.taskId` + `name` is a good one. The value must be JSON-serializable; the handler
   * gets the JSON round-tripped value on the first run too, so both runs see the same thing.
   * A throw is recorded too (and replayed as `StepFailedError`), after `options.retries` further
   * attempts spaced by `options.retryDelayMs` (doubling) — use them for transient failures.
   * Throws `Error` if `name` is reused within one run.
   */
  step<T>(name: string, fn: (signal: AbortSignal) => Promise<T> | T, options?: StepOptions): Promise<T>;
  /** Durable timer: waits `ms` milliseconds counted from the first run that reached this call. */
  sleep(ms: number): Promise<void>;
  /**
   * Durable timer: waits until `when` (a `Date` or ISO 8601 string). Returns at once when it is in
   * the past. The task's `statusMessage` says what it waits for (`message`, or "Waiting until …").
   */
  sleepUntil(when: Date | string, message?: string): Promise<void>;
  /**
   * Asks the requestor a question (MCP form elicitation: `message` plus a restricted JSON Schema
   * `requestedSchema`), puts the task in `input_required` and waits durably — across restarts and
   * reconnects — for the answer, an MCP `ElicitResult` (`action` accept | decline | cancel, and
   * `content` on accept). Accepted `content` always matches `requestedSchema`: the store refuses
   * answers that do not (`TaskStore.answerInputs`; forms are closed, see `checkAnswer`), so the
   * handler need not re-check it — unless the schema does not compile, in which case answers are
   * taken unchecked.
   */
  elicit(message: string, requestedSchema: JsonObject): Promise<InputResponse>;
  /** Reports progress (MCP progress semantics: `progress` increases; `total` optional) and an optional status message. */
  progress(progress: number, total?: number, message?: string): Promise<void>;
  /** Sets the task's `statusMessage`. */
  setStatusMessage(message: string): Promise<void>;
}

/** Retry policy of one `ctx.step`. */
export interface StepOptions {
  /** Further attempts after a throw before the error is recorded (default 0: record the first error). */
  retries?: number;
  /** Wait before the first retry in ms, doubling each time (default 500). Aborted by `ctx.signal`. */
  retryDelayMs?: number;
}

type StepRecord = { ok: true; value?: Json } | { ok: false; error: { name: string; message: string } };

/** Error replayed from a step that failed in an earlier run; `message` and `name` are the original's. */
export class StepFailedError extends Error {
  constructor(name: string, message: string) {
    super(message);
    this.name = name;
  }
}

const MAX_DELAY_CHUNK_MS = 2_147_000_000;

/** The `TaskContext` of one run of one task. Internal to the runtime. */
export class ExecutionContext implements TaskContext {
  private readonly names = new Set<string>();
  private sequence = 0;

  constructor(
    readonly taskId: string,
    readonly signal: AbortSignal,
    private readonly store: TaskStore,
    private readonly journal: Map<string, Json>,
    private readonly now: () => number,
    /** The runtime instance holding the task's lease; its writes are fenced by it. */
    private readonly holder?: string,
    /** Logs the task's lifecycle events (bound to its taskId, tool and principal). */
    private readonly log: Logger = silentLogger,
  ) {}

  async step<T>(name: string, fn: (signal: AbortSignal) => Promise<T> | T, options: StepOptions = {}): Promise<T> {
    if (typeof name !== 'string' || name.length === 0) throw new TypeError('step name must be a non-empty string');
    const retries = Math.max(0, Math.floor(options.retries ?? 0));
    const delay = Math.max(0, options.retryDelayMs ?? 500);
    return this.journaled(`step:${name}`, async (signal) => {
      for (let attempt = 0; ; attempt++) {
        try {
          return await fn(signal);
        } catch (error) {
          if (attempt >= retries || signal.aborted) throw error;
          await abortableDelay(delay * 2 ** attempt, signal);
        }
      }
    });
  }

  async sleep(ms: number): Promise<void> {
    if (!Number.isFinite(ms) || ms < 0) throw new TypeError('sleep(ms) needs a non-negative number of milliseconds');
    const wakeAt = await this.journaled(`timer:${++this.sequence}`, () => this.now() + ms);
    await this.waitUntil(wakeAt, `Waiting until ${new Date(wakeAt).toISOString()}`);
  }

  async sleepUntil(when: Date | string, message?: string): Promise<void> {
    const wakeAt = typeof when === 'string' ? Date.parse(when) : when.getTime();
    if (Number.isNaN(wakeAt)) throw new TypeError(`sleepUntil needs a valid date, got ${String(when)}`);
    await this.waitUntil(wakeAt, message ?? `Waiting until ${new Date(wakeAt).toISOString()}`);
  }

  async elicit(message: string, requestedSchema: JsonObject): Promise<InputResponse> {
    const key = `elicit-${++this.sequence}`;
    this.signal.throwIfAborted();
    let answer = await this.store.inputAnswer(this.taskId, key);
    if (answer) {
      await this.store.settleInput(this.taskId, key);
      return answer;
    }
    await this.store.requestInput(this.taskId, key, { kind: 'elicitation', message, requestedSchema: toJson(requestedSchema) }, message, this.holder);
    this.log.info({ key }, 'task waiting for input');
    for (;;) {
      const change = this.store.nextChange(this.taskId, { signal: this.signal, timeoutMs: 30_000 });
      answer = await this.store.inputAnswer(this.taskId, key);
      if (answer) break;
      await change;
      this.signal.throwIfAborted();
    }
    await this.store.settleInput(this.taskId, key);
    return answer;
  }

  async progress(progress: number, total?: number, message?: string): Promise<void> {
    await this.store.report(
      this.taskId,
      { progress: { progress, ...(total !== undefined && { total }) }, ...(message !== undefined && { statusMessage: message }) },
      this.holder,
    );
  }

  async setStatusMessage(message: string): Promise<void> {
    await this.store.report(this.taskId, { statusMessage: message }, this.holder);
  }

  private async waitUntil(wakeAt: number, message: string): Promise<void> {
    this.signal.throwIfAborted();
    if (wakeAt <= this.now()) return;
    await this.store.report(this.taskId, { statusMessage: message }, this.holder);
    for (let left = wakeAt - this.now(); left > 0; left = wakeAt - this.now()) {
      await abortableDelay(Math.min(left, MAX_DELAY_CHUNK_MS), this.signal);
    }
  }

  private async journaled<T>(key: string, fn: (signal: AbortSignal) => Promise<T> | T): Promise<T> {
    if (this.names.has(key)) throw new Error(`Journal key '${key}' used twice in one run of task ${this.taskId}; step names must be unique`);
    this.names.add(key);
    const recorded = this.journal.get(key) as StepRecord | undefined;
    if (recorded) return replay<T>(recorded);
    this.signal.throwIfAborted();
    let record: StepRecord;
    try {
      const value = await fn(this.signal);
      record = value === undefined ? { ok: true } : { ok: true, value: toJson(value) };
    } catch (error) {
      if (this.signal.aborted) throw error;
      const err = error instanceof Error ? error : new Error(String(error));
      record = { ok: false, error: { name: err.name, message: err.message } };
    }
    // First write wins: if another run recorded this step meanwhile, its value is the truth.
    if (!(await this.store.appendJournal(this.taskId, key, record as unknown as Json))) {
      const journal = await this.store.readJournal(this.taskId);
      record = journal.get(key) as StepRecord;
    }
    this.journal.set(key, record as unknown as Json);
    return replay<T>(record);
  }
}

function replay<T>(record: StepRecord): T {
  if (!record.ok) throw new StepFailedError(record.error.name, record.error.message);
  return record.value as T;
}
