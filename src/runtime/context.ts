import type { Json, JsonObject } from '../core/json.js';
import { toJson } from '../core/json.js';
import { silentLogger, type Logger } from '../core/log.js';
import { randomUUID } from 'node:crypto';
import { InvalidArgumentError } from '../core/errors.js';
import { resolveDeadline, type QuestionDeadlineOptions } from '../core/question-deadline.js';
import { isTransientError, transientMark } from '../core/transient.js';
import type { InputAnswer, InputRequest, InputResponse, RootsResponse, SamplingResponse } from '../core/task.js';
import type { TaskStore } from '../store/task-store.js';
import {
  answeredKey,
  askedKey,
  elicitationCompleteKey,
  elicitationIdKey,
  inputKey,
  stepKey,
  timerKey,
  untilKey,
  type AnsweredEntry,
  type AskedEntry,
  type StepRecord,
  type UntilEntry,
} from '../core/journal-keys.js';
import { abortableDelay } from './delay.js';
import type { LeaseGuard } from './lease-guard.js';
import { TimerQueue } from './timer-queue.js';
import type { ActivityMonitor } from './stalls.js';
import type { RunTelemetry } from './telemetry.js';

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
   * Fires when the task is cancelled (`reason` is a `TaskCancelledSignal`), the runtime shuts
   * down (`ShutdownSignal`; the task resumes on the next start) or this instance lost the task
   * (`LeaseLostSignal`: another instance took it over). Pass it to I/O you start.
   */
  readonly signal: AbortSignal;
  /**
   * The fencing token of this run: the task's lease epoch, a positive integer that grows with every
   * run of the task (each takeover, restart or retried run) and never repeats. Send it with side
   * effects in foreign systems that can keep the highest token seen per task and refuse lower ones
   * — that closes the one window the engine cannot: an instance paused after its last lease check
   * and before its request left (see docs/faults.md, "The window that remains"). With `ctx.taskId` and
   * the step name it also makes an idempotency key per run.
   */
  readonly fencingToken: number;
  /**
   * Runs `fn` once and journals its JSON result (or its error) under `name`, unique per task. After
   * a restart a finished step returns the recorded value without running `fn`. A step that was
   * running when the process died runs again (at-least-once), so side effects need an idempotency
   * key — `ctx.taskId` + `name` is a good one. The value must be JSON-serializable; the handler
   * gets the JSON round-tripped value on the first run too, so both runs see the same thing.
   *
   * Fencing: each attempt of `fn` begins only while this instance provably holds the task (see
   * `LeaseGuard`): never after another instance took it over, after a cancel was acknowledged or
   * after the task ended; the run stops instead. Retries: a transient failure (`isTransientError`:
   * connection resets, timeouts, SQLite busy, HTTP 503 …) is retried by default
   * (`options.transientRetries`, 6: waits of 0.5, 1, 2, 4, 8, 16 s); `options.retries` retries any
   * failure; a `NonRetryableError` is never retried. The last failure is recorded (and replayed as
   * `StepFailedError`). Throws `Error` if `name` is reused within one run.
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
   * taken unchecked. `options.key` names the question (see `AskOptions`).
   */
  elicit(message: string, requestedSchema: JsonObject, options?: AskOptions): Promise<InputResponse>;
  /**
   * URL-mode elicitation (2025-11-25 "Elicitation", `mode: "url"`): asks the requestor to open
   * `url` (an http(s) URL: a payment approval on a bank's page, an OAuth consent) for a step that
   * must not pass through the client, and waits durably for the answer (`action`: accept = the user
   * agreed to go there; decline; cancel). On `accept` it then waits — durably, `working`, with a
   * `statusMessage` naming the site — until the out-of-band flow reports its completion with
   * `TaskRuntime.completeElicitation(taskId, elicitationId, …)` (unless
   * `options.waitForCompletion` is false). `elicitationId` (resolved with the answer, also
   * `options.elicitationId` when given) identifies the flow: put it in `url` so the site can report
   * back. Throws `InvalidArgumentError` for a URL that is not http(s).
   */
  elicitUrl(message: string, url: string, options?: UrlElicitOptions): Promise<UrlElicitation>;
  /**
   * Asks the client's model (MCP `sampling/createMessage` with `params`: `messages`, `maxTokens`,
   * optional `systemPrompt`, `modelPreferences`, …) and waits durably for its `CreateMessageResult`
   * (`role: "assistant"`, `content`, `model`, `stopReason`); the shape is checked before it is
   * stored. `options.message` is the task's `statusMessage` meanwhile (default: the first text of
   * `messages`).
   */
  sample(params: JsonObject, options?: AskOptions & { message?: string }): Promise<SamplingResponse>;
  /**
   * Asks the client for its roots (MCP `roots/list`) and waits durably for its `ListRootsResult`
   * (`roots`: `{ uri: "file://…", name? }[]`). `options.message` is the task's `statusMessage`
   * meanwhile.
   */
  listRoots(options?: AskOptions & { message?: string }): Promise<RootsResponse>;
  /**
   * The capabilities the client that created the task declared (see `TaskRequest.clientCapabilities`):
   * e.g. ask with `sample` only when `clientCapabilities?.sampling` is set. Undefined when unknown.
   * The same on every run of the task, so branching on it is deterministic.
   */
  readonly clientCapabilities?: JsonObject;
  /**
   * The task this one runs again, when an operator had a failed task run again from a chosen step
   * (`TaskRuntime.retry`; the steps before it replay from that task's journal): side effects keyed
   * by task id (a claim, a reservation) can be moved over from it. Undefined otherwise — also when
   * a `working` task was run again in place (its id did not change).
   */
  readonly retryOf?: string;
  /** Reports progress (MCP progress semantics: `progress` increases; `total` optional) and an optional status message. */
  progress(progress: number, total?: number, message?: string): Promise<void>;
  /** Sets the task's `statusMessage`. */
  setStatusMessage(message: string): Promise<void>;
}

/**
 * Options of a question (`elicit`, `elicitUrl`, `sample`, `listRoots`). `key` is the question's key
 * in `inputRequests` / `inputResponses` (1–256 characters, unique for the task's lifetime; default
 * `elicit-N`, `url-N`, `sample-N`, `roots-N` by the question's position in the run). Name it when
 * clients may answer before being asked (MRTR: a `tools/call` carrying `inputResponses` under that
 * key answers the question as soon as it is asked). Throws `InvalidArgumentError` when it is reused.
 *
 * Deadlines and reminders (`timeoutMs` or `deadline`, `onTimeout`, `remindEveryMs`; see
 * `QuestionDeadlineOptions`, docs/handlers.md "Question deadlines"): the same on every executor,
 * durable, applied once across instances. Bad values throw `InvalidArgumentError`.
 */
export interface AskOptions extends QuestionDeadlineOptions {
  key?: string;
}

/** Options of `elicitUrl`. */
export interface UrlElicitOptions extends AskOptions {
  /** The out-of-band flow's id (default: a random UUID, journaled so it survives restarts). */
  elicitationId?: string;
  /** Wait for `TaskRuntime.completeElicitation` after an `accept` (default true). */
  waitForCompletion?: boolean;
}

/** What `elicitUrl` resolves with: the requestor's `action` and the flow's `elicitationId`. */
export interface UrlElicitation {
  action: InputResponse['action'];
  elicitationId: string;
}

/**
 * Retry policy of one `ctx.step`. An attempt that throws is retried while either budget allows:
 * `retries` (any error) or `transientRetries` (transient errors only); waits start at
 * `retryDelayMs` and double, capped at `maxRetryDelayMs`, and end early on `ctx.signal`. A
 * `NonRetryableError` (anywhere in the error's `cause` chain, or `transient: false`) ends the step
 * at once. The last error is recorded.
 */
export interface StepOptions {
  /** Further attempts after any throw before the error is recorded (default 0). */
  retries?: number;
  /**
   * Further attempts after a transient throw (`isTransient`, default `isTransientError`: connection
   * resets and refusals, timeouts, SQLite busy, retryable PostgreSQL and Redis errors, HTTP
   * 408/425/429/502/503/504, `TransientError`). Default 6; 0 records a transient error at once.
   */
  transientRetries?: number;
  /** Wait before the first retry in ms, doubling each time (default 500). */
  retryDelayMs?: number;
  /** Longest wait between two attempts in ms (default 30000). */
  maxRetryDelayMs?: number;
  /** Decides which errors are transient (default `isTransientError`). */
  isTransient?: (error: unknown) => boolean;
}

/** Default `StepOptions.transientRetries`: waits of 0.5, 1, 2, 4, 8 and 16 s, about 31 s in all. */
export const DEFAULT_TRANSIENT_RETRIES = 6;

/** What an `ExecutionContext` is made of (internal to the runtime). */
export interface ExecutionContextOptions {
  taskId: string;
  signal: AbortSignal;
  store: TaskStore;
  /** The task's journal as read when the run started (empty for a new task). */
  journal: Map<string, Json>;
  /** The runtime's clock (the store's, see `TaskStore.now`), ms since the epoch. */
  now: () => number;
  /** Fencing of this run (lease holder and epoch, permits before effects); bare contexts have none. */
  guard?: LeaseGuard;
  /** Logs the task's lifecycle events (bound to its taskId, tool and principal). */
  log?: Logger;
  /** The creating client's capabilities (`TaskRequest.clientCapabilities`). */
  clientCapabilities?: JsonObject;
  /** The task this one runs again (`TaskRecord.retryOf`). */
  retryOf?: string;
  /** The run's OpenTelemetry spans (see `telemetry.ts`); none in bare contexts. */
  telemetry?: RunTelemetry;
  /** The process's durable-timer queue (one timer for every sleeping task); bare contexts get their own. */
  timers?: TimerQueue;
  /**
   * Called once when the run must stop for a reason the engine found (a `LeaseLostError` from a
   * fenced write or a permit, a `StoreUnavailableError`, any other error of the store): the runtime
   * aborts the run's signal and decides what happens next (nothing, or a retry of the run later).
   */
  onStop?: (error: Error) => void;
  /** Stall detection of this run (see `StallWatch`): told of every activity and wait. None: no detection. */
  activity?: ActivityMonitor;
}

/** Error replayed from a step that failed in an earlier run; `message` and `name` are the original's. */
export class StepFailedError extends Error {
  constructor(name: string, message: string) {
    super(message);
    this.name = name;
  }
}

/**
 * The `TaskContext` of one run of one task. Internal to the runtime.
 *
 * Every store call it makes passes through `engine()`: whatever it throws (`LeaseLostError`,
 * `StoreUnavailableError`, any other error of the store) is a reason for the run to stop (reported
 * once through `onStop`), never a step's recorded outcome — even when a handler catches and
 * rethrows something else.
 */
export class ExecutionContext implements TaskContext {
  private readonly names = new Set<string>();
  private sequence = 0;
  /** Journaled calls so far in this run (see `StepRecord.seq`). */
  private journaledCalls = 0;
  readonly taskId: string;
  readonly signal: AbortSignal;
  readonly clientCapabilities?: JsonObject;
  readonly retryOf?: string;
  private readonly store: TaskStore;
  private readonly journal: Map<string, Json>;
  private readonly now: () => number;
  private readonly guard?: LeaseGuard;
  private readonly log: Logger;
  private readonly telemetry?: RunTelemetry;
  private readonly timers: TimerQueue;
  private readonly onStop?: ExecutionContextOptions['onStop'];
  private readonly monitor?: ActivityMonitor;
  /** Errors raised by the engine (fencing, store outages): they stop the run and are never journaled as a step's outcome. */
  private readonly stops = new WeakSet<object>();
  /** The first engine error that stopped this run, if any (see `engine`). */
  stoppedBy?: Error;

  constructor(options: ExecutionContextOptions) {
    this.taskId = options.taskId;
    this.signal = options.signal;
    this.store = options.store;
    this.journal = options.journal;
    this.now = options.now;
    this.guard = options.guard;
    this.log = options.log ?? silentLogger;
    this.clientCapabilities = options.clientCapabilities;
    this.retryOf = options.retryOf;
    this.telemetry = options.telemetry;
    this.timers = options.timers ?? new TimerQueue(options.now);
    this.onStop = options.onStop;
    this.monitor = options.activity;
  }

  get fencingToken(): number {
    return this.guard?.epoch ?? 0;
  }

  /** The fence of this run's writes (undefined in bare contexts). */
  private get fence() {
    return this.guard?.fence;
  }

  /**
   * Runs an engine call (the store, a permit). Whatever it throws stops the run — never a step's
   * outcome, whatever the handler makes of it: marked so, and reported through `onStop` (once). A
   * `LeaseLostError` means the task is no longer this run's; a `StoreUnavailableError`, or any other
   * error of the store (one not classified as an outage), means the run is retried later.
   */
  private async engine<T>(call: Promise<T>): Promise<T> {
    try {
      return await call;
    } catch (error) {
      if (error instanceof Error) {
        this.stops.add(error);
        if (!this.stoppedBy) {
          this.stoppedBy = error;
          this.onStop?.(error);
        }
      }
      throw error;
    }
  }

  /**
   * Begins `effect` under a permit (see `LeaseGuard`): the last check runs in the same synchronous
   * stretch as the effect's first instruction — nothing, not even a microtask, runs in between; a
   * stale permit is renewed from the store first (its refusal stops the run, see `engine`). Without
   * a guard (bare contexts) only the signal is checked.
   */
  private async effect<T>(effect: () => T): Promise<T> {
    this.monitor?.activity('step');
    for (;;) {
      this.signal.throwIfAborted();
      if (!this.guard || this.guard.fresh()) return effect(); // the common case: no store round trip
      await this.engine(this.guard.permit());
    }
  }

  async step<T>(name: string, fn: (signal: AbortSignal) => Promise<T> | T, options: StepOptions = {}): Promise<T> {
    if (typeof name !== 'string' || name.length === 0) throw new TypeError('step name must be a non-empty string');
    const attempts = (signal: AbortSignal, retried?: (error: unknown) => void) =>
      attemptStep(fn, options, signal, {
        begin: (attempt) => this.effect(attempt) as Promise<T>,
        // Fencing refused the attempt (the run must stop): never the step's failure.
        isStop: (error) => this.stops.has(error as object),
        retried,
      });
    const telemetry = this.telemetry;
    if (!telemetry) return this.journaled(stepKey(name), (signal) => attempts(signal));
    const retries = Math.max(0, Math.floor(options.retries ?? 0));
    return this.journaled(
      stepKey(name),
      (signal) => telemetry.step(name, retries, signal, (retried) => attempts(signal, retried)),
      () => telemetry.replayed('step', name),
    );
  }

  async sleep(ms: number): Promise<void> {
    if (!Number.isFinite(ms) || ms < 0) throw new TypeError('sleep(ms) needs a non-negative number of milliseconds');
    const wakeAt = await this.journaled(timerKey(++this.sequence), () => this.now() + ms);
    await this.waitUntil(wakeAt, `Waiting until ${new Date(wakeAt).toISOString()}`);
  }

  async sleepUntil(when: Date | string, message?: string): Promise<void> {
    const wakeAt = typeof when === 'string' ? Date.parse(when) : when.getTime();
    if (Number.isNaN(wakeAt)) throw new TypeError(`sleepUntil needs a valid date, got ${String(when)}`);
    this.signal.throwIfAborted();
    if (wakeAt > this.now()) {
      // The deadline needs no replay (the caller gives it again), but the task's history shows it: an
      // `UntilEntry` (first write wins, so a restart keeps when the wait began; no sequence number is used).
      const due = new Date(wakeAt).toISOString();
      const entry: UntilEntry = { at: new Date(this.now()).toISOString(), due };
      await this.engine(this.store.appendJournal(this.taskId, untilKey(due), entry as unknown as Json, this.fence));
    }
    await this.waitUntil(wakeAt, message ?? `Waiting until ${new Date(wakeAt).toISOString()}`);
  }

  async elicit(message: string, requestedSchema: JsonObject, options: AskOptions = {}): Promise<InputResponse> {
    const key = this.questionKey('elicit', options.key);
    return (await this.ask(key, { kind: 'elicitation', message, requestedSchema: toJson(requestedSchema) }, options)) as InputResponse;
  }

  async elicitUrl(message: string, url: string, options: UrlElicitOptions = {}): Promise<UrlElicitation> {
    const parsed = elicitationUrl(url);
    const key = this.questionKey('url', options.key);
    const elicitationId = await this.journaled(elicitationIdKey(key), () => options.elicitationId ?? randomUUID());
    const answer = (await this.ask(key, { kind: 'url', message, url, elicitationId }, options)) as InputResponse;
    if (answer.action === 'accept' && options.waitForCompletion !== false) {
      const done = elicitationCompleteKey(elicitationId);
      const completed = async () => ((await this.engine(this.store.readJournal(this.taskId))).has(done) ? true : undefined);
      if (!(await completed())) {
        await this.engine(this.store.report(this.taskId, { statusMessage: `Waiting for the step at ${parsed.host} to complete` }, this.fence));
        const waited = this.monitor?.waiting('question');
        try {
          await this.waitFor(completed);
        } finally {
          waited?.('answer');
        }
      }
      return this.effect(() => ({ action: answer.action, elicitationId })); // what follows acts on the completed flow
    }
    return { action: answer.action, elicitationId };
  }

  async sample(params: JsonObject, options: AskOptions & { message?: string } = {}): Promise<SamplingResponse> {
    const key = this.questionKey('sample', options.key);
    const message = options.message ?? `Waiting for the client's model: ${firstText(params) ?? 'a sampling request'}`;
    return (await this.ask(key, { kind: 'sampling', message, params: toJson(params) }, options)) as SamplingResponse;
  }

  async listRoots(options: AskOptions & { message?: string } = {}): Promise<RootsResponse> {
    const key = this.questionKey('roots', options.key);
    return (await this.ask(key, { kind: 'roots', message: options.message ?? "Waiting for the client's roots" }, options)) as RootsResponse;
  }

  /** The key of the next question: `options.key` (checked, unique per run) or `<prefix>-N`. */
  private questionKey(prefix: string, given: string | undefined): string {
    return questionKeyOf(prefix, ++this.sequence, given);
  }

  /**
   * Asks `request` under `key` unless it was answered in an earlier run (or before it was asked:
   * MRTR answers sent ahead), moving the task to `input_required`, and waits durably for the answer.
   */
  private async ask(key: string, request: InputRequest, options: AskOptions): Promise<InputAnswer> {
    const deadline = resolveDeadline(options, request);
    if (this.names.has(inputKey(key))) throw new InvalidArgumentError(`Question key '${key}' used twice in one run of task ${this.taskId}`);
    this.names.add(inputKey(key));
    this.signal.throwIfAborted();
    let answer = await this.engine(this.store.inputAnswer(this.taskId, key));
    if (answer) {
      this.telemetry?.replayed('input', key);
      await this.engine(this.store.settleInput(this.taskId, key, this.fence));
      return this.effect(() => answer!); // the handler acts on the answer: only while this run holds the task
    }
    const asked = this.journal.get(askedKey(key)) as AskedEntry | undefined; // an earlier run's first ask
    const span = this.telemetry?.startInput(key, request.kind, asked?.at);
    const waited = this.monitor?.waiting('question');
    try {
      await this.engine(this.store.requestInput(this.taskId, key, request, request.message, this.fence, deadline));
      this.log.info({ key, kind: request.kind }, 'task waiting for input');
      answer = await this.waitFor(() => this.store.inputAnswer(this.taskId, key));
    } catch (error) {
      span?.interrupted(this.signal.reason ?? error);
      throw error;
    } finally {
      waited?.('answer');
    }
    if (span?.recording) {
      const by = ((await this.engine(this.store.readJournal(this.taskId))).get(answeredKey(key)) as AnsweredEntry | undefined)?.by;
      span.answered(by, (answer as { action?: unknown }).action);
    }
    await this.engine(this.store.settleInput(this.taskId, key, this.fence));
    const taken = answer;
    return this.effect(() => taken);
  }

  /**
   * Waits durably until `probe` finds something (not undefined), probing again on every write to
   * the task (any process sharing the store: by notice, or by the store's one periodic recheck, see
   * `TaskStoreOptions.recheckMs`). Holds no timer of its own: a task waiting for weeks costs one
   * listener. Rejects when `signal` aborts.
   */
  private async waitFor<T>(probe: () => Promise<T | undefined>): Promise<T> {
    for (;;) {
      const change = this.store.nextChange(this.taskId, { signal: this.signal });
      const found = await this.engine(probe());
      if (found !== undefined) return found;
      await change;
      this.signal.throwIfAborted();
    }
  }

  async progress(progress: number, total?: number, message?: string): Promise<void> {
    await this.engine(
      this.store.report(
        this.taskId,
        { progress: { progress, ...(total !== undefined && { total }) }, ...(message !== undefined && { statusMessage: message }) },
        this.fence,
      ),
    );
    this.monitor?.activity('progress');
  }

  async setStatusMessage(message: string): Promise<void> {
    await this.engine(this.store.report(this.taskId, { statusMessage: message }, this.fence));
    this.monitor?.activity('status');
  }

  /**
   * Waits until `wakeAt` (ms since the epoch) on the store's clock: the process's timer queue wakes
   * it by the runtime's clock (the store's, as last measured), then — before the handler goes on —
   * a permit confirmed by the store (`LeaseGuard.permit({ confirm: true })`) reads the store's own
   * clock, and an early wake (a clock that ran ahead) waits again for the rest. So a due time never
   * passes early by the store's clock, and the continuation only runs on an instance holding the task.
   */
  private async waitUntil(wakeAt: number, message: string): Promise<void> {
    this.signal.throwIfAborted();
    if (wakeAt <= this.now() && !this.guard) return;
    const span = this.telemetry?.startTimer(wakeAt);
    const waited = this.monitor?.waiting('timer');
    try {
      if (wakeAt > this.now()) await this.engine(this.store.report(this.taskId, { statusMessage: message }, this.fence));
      for (;;) {
        await this.timers.wait(wakeAt, this.signal);
        const storeNow = this.guard ? await this.engine(this.guard.permit({ confirm: true })) : undefined;
        if (storeNow === undefined || storeNow >= wakeAt) break;
        await this.timers.wait(this.now() + (wakeAt - storeNow), this.signal);
      }
    } catch (error) {
      span?.interrupted(this.signal.reason ?? error);
      throw error;
    } finally {
      waited?.();
    }
    span?.done();
  }

  /**
   * Runs `fn` once and journals its outcome under `key` with `startedAt` / `endedAt` (see
   * `StepRecord`), or replays what an earlier run journaled (calling `onReplay`).
   */
  private async journaled<T>(key: string, fn: (signal: AbortSignal) => Promise<T> | T, onReplay?: () => void): Promise<T> {
    if (this.names.has(key)) throw new Error(`Journal key '${key}' used twice in one run of task ${this.taskId}; step names must be unique`);
    this.names.add(key);
    const seq = ++this.journaledCalls;
    const recorded = this.journal.get(key) as StepRecord | undefined;
    if (recorded) {
      onReplay?.();
      return replay<T>(recorded);
    }
    this.signal.throwIfAborted();
    this.monitor?.activity('step');
    let record = await recordStep(
      () => fn(this.signal),
      this.now,
      (error) => {
        if (this.signal.aborted || this.stops.has(error as object)) throw error;
      },
    );
    record.seq = seq;
    // First write wins: if another run recorded this step meanwhile, its value is the truth. The
    // append is fenced: a run that lost the task records nothing (its outcome may be a stale effect's).
    if (!(await this.engine(this.store.appendJournal(this.taskId, key, record as unknown as Json, this.fence)))) {
      const journal = await this.engine(this.store.readJournal(this.taskId));
      record = journal.get(key) as StepRecord;
    }
    this.journal.set(key, record as unknown as Json);
    this.monitor?.activity('step');
    return replay<T>(record);
  }
}

/**
 * The attempts of one step under its `StepOptions` (the same on every executor): `begin` starts an
 * attempt (the embedded runtime's permit check; engines call it directly), an error `isStop` says
 * belongs to the engine is rethrown at once, and `retried` hears of each retried failure. Resolves
 * with the first attempt's value that succeeds, or rejects with the last failure (never retried
 * when `signal` aborted or the error is a `NonRetryableError`).
 */
export async function attemptStep<T>(
  fn: (signal: AbortSignal) => Promise<T> | T,
  options: StepOptions,
  signal: AbortSignal,
  hooks: { begin?: (attempt: () => Promise<T> | T) => Promise<T>; isStop?: (error: unknown) => boolean; retried?: (error: unknown) => void } = {},
): Promise<T> {
  const retries = Math.max(0, Math.floor(options.retries ?? 0));
  const transientRetries = Math.max(0, Math.floor(options.transientRetries ?? DEFAULT_TRANSIENT_RETRIES));
  const delay = Math.max(0, options.retryDelayMs ?? 500);
  const maxDelay = Math.max(0, options.maxRetryDelayMs ?? 30_000);
  const transient = options.isTransient ?? isTransientError;
  const begin = hooks.begin ?? (async (attempt: () => Promise<T> | T) => attempt());
  for (let attempt = 0; ; attempt++) {
    let failure: unknown;
    try {
      return await begin(() => fn(signal));
    } catch (error) {
      if (hooks.isStop?.(error)) throw error;
      failure = error;
    }
    if (signal.aborted || transientMark(failure) === false) throw failure;
    if (attempt >= retries && !(attempt < transientRetries && transient(failure))) throw failure;
    hooks.retried?.(failure);
    await abortableDelay(Math.min(maxDelay, delay * 2 ** attempt), signal);
  }
}

/**
 * The key of a run's question: `given` (checked: 1–256 characters) or `<prefix>-<sequence>`.
 * Throws `InvalidArgumentError` for a bad key.
 */
export function questionKeyOf(prefix: string, sequence: number, given: string | undefined): string {
  if (given === undefined) return `${prefix}-${sequence}`;
  if (typeof given !== 'string' || given.length === 0 || given.length > 256)
    throw new InvalidArgumentError('A question key must be a string of 1-256 characters');
  return given;
}

/** `url` parsed for `elicitUrl`: an absolute http(s) URL, else `InvalidArgumentError`. */
export function elicitationUrl(url: string): URL {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    throw new InvalidArgumentError(`elicitUrl needs an absolute http(s) URL, got ${JSON.stringify(url)}`);
  }
  if (parsed.protocol !== 'https:' && parsed.protocol !== 'http:') throw new InvalidArgumentError(`elicitUrl needs an http(s) URL, got ${parsed.protocol}`);
  return parsed;
}

/**
 * Runs a step's function once and describes its outcome as a `StepRecord` (its JSON value, or its
 * failure's name and message, with `startedAt` / `endedAt` read from `now`). A failure goes to
 * `screen` first, which rethrows it (or another error) when it is not the step's own — the run
 * stopped — so nothing is recorded then.
 */
export async function recordStep(fn: () => unknown, now: () => number, screen: (error: unknown) => void): Promise<StepRecord> {
  const startedAt = new Date(now()).toISOString();
  try {
    const value = await fn();
    const endedAt = new Date(now()).toISOString();
    return value === undefined ? { ok: true, startedAt, endedAt } : { ok: true, value: toJson(value), startedAt, endedAt };
  } catch (error) {
    screen(error);
    const err = error instanceof Error ? error : new Error(String(error));
    return { ok: false, error: { name: err.name, message: err.message }, startedAt, endedAt: new Date(now()).toISOString() };
  }
}

/** What a `StepRecord` says: its value, or its failure thrown as `StepFailedError`. */
export function replay<T>(record: StepRecord): T {
  if (!record.ok) throw new StepFailedError(record.error.name, record.error.message);
  return record.value as T;
}

/** The first text of sampling `params.messages`, shortened, for a status line. */
function firstText(params: JsonObject): string | undefined {
  const messages = Array.isArray(params.messages) ? params.messages : [];
  for (const message of messages) {
    const content = (message as { content?: unknown } | null)?.content;
    for (const block of Array.isArray(content) ? content : [content]) {
      const text = (block as { text?: unknown } | null)?.text;
      if (typeof text === 'string' && text.length > 0) return text.length > 80 ? `${text.slice(0, 77)}...` : text;
    }
  }
  return undefined;
}
