import { randomUUID } from 'node:crypto';
import { IllegalTransitionError, InvalidArgumentError, LeaseLostError, StoreUnavailableError, TaskNotFoundError } from '../core/errors.js';
import type { Json, JsonObject } from '../core/json.js';
import { toJson } from '../core/json.js';
import { silentLogger, type Logger } from '../core/log.js';
import { ENGINE_ACCESS } from '../core/access.js';
import { isTerminal } from '../core/status.js';
import type { Fence, InputAnswer, InputRequest, InputResponse, RootsResponse, SamplingResponse, TaskRecord } from '../core/task.js';
import { elicitationCompleteKey, elicitationIdKey, inputKey, stepKey, timerKey, untilKey, type StepRecord, type UntilEntry } from '../core/journal-keys.js';
import type { TaskStore } from '../store/task-store.js';
import { resolveDeadline } from '../core/question-deadline.js';
import {
  attemptStep,
  elicitationUrl,
  questionKeyOf,
  recordStep,
  replay,
  type AskOptions,
  type StepOptions,
  type TaskContext,
  type UrlElicitOptions,
  type UrlElicitation,
} from './context.js';
import type { DurableRun, ExecutorHost, RunEnd } from './executor.js';
import { TaskCancelledSignal } from './signals.js';
import type { ActivityMonitor, StallWatch } from './stalls.js';

/** The message topic an executor sends the answer to question `key` under (see `DurableRun.receive`). */
export const answerTopic = (key: string): string => `answer/${key}`;
/** The message topic an executor sends the completion of URL elicitation `elicitationId` under. */
export const completionTopic = (elicitationId: string): string => `elicitation-completed/${elicitationId}`;
/**
 * The name of the engine step that settles question `key` once its answer arrived: an executor whose
 * engine recorded it knows the answer was consumed (its reconciler stops re-delivering it).
 */
export const settleStepName = (key: string): string => `settle:${key}`;

/** What an `EngineContext` is made of. */
export interface EngineContextOptions {
  taskId: string;
  store: TaskStore;
  /** The engine's durable primitives for this run. */
  run: DurableRun;
  /** Aborted when the task is cancelled or the executor stops (see `TaskContext.signal`). */
  signal: AbortSignal;
  /** Aborts `signal` with a `TaskCancelledSignal`: the task ended while the run wrote to it. */
  onEnded: () => void;
  /** The runtime's clock (the store's), ms since the epoch. */
  now: () => number;
  /** The engine's fencing token of this run (a positive integer growing with every run). */
  fencingToken: number;
  /**
   * The run's fence (lease holder and epoch) when the executor fences its runs with the store's
   * leases: every store write of the run carries it and is refused (`LeaseLostError`: the run
   * stops) once the task was cancelled, ended or claimed by a newer run.
   */
  fence?: Fence;
  log?: Logger;
  clientCapabilities?: JsonObject;
  /** Stall detection of this run (see `StallWatch`): told of every activity and wait. None: no detection. */
  activity?: ActivityMonitor;
}

/**
 * The `TaskContext` of one run of a task on an external durable engine (DBOS, Restate; see
 * `DurableRun`): the engine records and replays every step, timer and answer; the store keeps what
 * the protocol and the console see (status, `inputRequests`, progress, and a copy of each step's
 * record, timer and deadline in the task's journal for its history).
 *
 * Semantics are the embedded `ExecutionContext`'s: `step` runs once and replays its value or its
 * failure (`StepFailedError`), with the same retry options (the attempts run inside one engine
 * step); `sleep` counts from the first run that reached it; a question is asked once (a step that
 * puts the task `input_required`, unless an answer was given ahead) and its answer arrives once, as
 * the engine message its executor sends after the store took it; `progress` and
 * `setStatusMessage` are steps too, so a replay never writes an older message over a newer one.
 */
export class EngineContext implements TaskContext {
  readonly taskId: string;
  readonly signal: AbortSignal;
  readonly fencingToken: number;
  readonly clientCapabilities?: JsonObject;
  private readonly store: TaskStore;
  private readonly run: DurableRun;
  private readonly now: () => number;
  private readonly log: Logger;
  private readonly onEnded: () => void;
  private readonly fence?: Fence;
  private readonly names = new Set<string>();
  private sequence = 0;
  private reports = 0;
  private readonly monitor?: ActivityMonitor;

  constructor(options: EngineContextOptions) {
    this.taskId = options.taskId;
    this.store = options.store;
    this.run = options.run;
    this.signal = options.signal;
    this.now = options.now;
    this.fencingToken = options.fencingToken;
    this.log = options.log ?? silentLogger;
    this.onEnded = options.onEnded;
    this.fence = options.fence;
    this.clientCapabilities = options.clientCapabilities;
    this.monitor = options.activity;
  }

  async step<T>(name: string, fn: (signal: AbortSignal) => Promise<T> | T, options: StepOptions = {}): Promise<T> {
    if (typeof name !== 'string' || name.length === 0) throw new TypeError('step name must be a non-empty string');
    const key = stepKey(name);
    this.unique(key);
    this.signal.throwIfAborted();
    this.monitor?.activity('step');
    const record = await this.run.step(key, async () => {
      // Cancelled or stopping: nothing is recorded.
      const outcome = await recordStep(
        () => attemptStep(fn, options, this.signal, { begin: async (attempt) => (this.monitor?.activity('step'), attempt()) }),
        this.now,
        () => this.signal.throwIfAborted(),
      );
      // A copy for the task's history (first write wins: a step re-run after a crash keeps the first).
      await this.write(() => this.store.appendJournal(this.taskId, key, outcome as unknown as Json, this.fence));
      return outcome as unknown as Json;
    });
    this.monitor?.activity('step');
    return replay<T>(record as unknown as StepRecord);
  }

  async sleep(ms: number): Promise<void> {
    if (!Number.isFinite(ms) || ms < 0) throw new TypeError('sleep(ms) needs a non-negative number of milliseconds');
    const key = timerKey(++this.sequence);
    this.unique(key);
    const wakeAt = await this.run.step(key, async () => {
      const at = this.now() + ms;
      await this.write(() => this.store.appendJournal(this.taskId, key, at, this.fence));
      await this.write(() => this.store.report(this.taskId, { statusMessage: `Waiting until ${new Date(at).toISOString()}` }, this.fence));
      return at;
    });
    await this.waitUntil(key, wakeAt);
  }

  async sleepUntil(when: Date | string, message?: string): Promise<void> {
    const wakeAt = typeof when === 'string' ? Date.parse(when) : when.getTime();
    if (Number.isNaN(wakeAt)) throw new TypeError(`sleepUntil needs a valid date, got ${String(when)}`);
    this.signal.throwIfAborted();
    const due = new Date(wakeAt).toISOString();
    const key = untilKey(due);
    const name = `${key}#${++this.sequence}`;
    const waits = await this.run.step(name, async () => {
      if (wakeAt <= this.now()) return false;
      const entry: UntilEntry = { at: new Date(this.now()).toISOString(), due };
      await this.write(() => this.store.appendJournal(this.taskId, key, entry as unknown as Json, this.fence));
      await this.write(() => this.store.report(this.taskId, { statusMessage: message ?? `Waiting until ${due}` }, this.fence));
      return true;
    });
    if (waits) await this.waitUntil(name, wakeAt);
  }

  async elicit(message: string, requestedSchema: JsonObject, options: AskOptions = {}): Promise<InputResponse> {
    const key = this.questionKey('elicit', options.key);
    return (await this.ask(key, { kind: 'elicitation', message, requestedSchema: toJson(requestedSchema) }, options)) as InputResponse;
  }

  async elicitUrl(message: string, url: string, options: UrlElicitOptions = {}): Promise<UrlElicitation> {
    const parsed = elicitationUrl(url);
    const key = this.questionKey('url', options.key);
    const idKey = elicitationIdKey(key);
    const elicitationId = (await this.run.step(idKey, async () => {
      const chosen = options.elicitationId ?? randomUUID();
      if (await this.write(() => this.store.appendJournal(this.taskId, idKey, chosen, this.fence))) return chosen;
      return ((await this.store.readJournal(this.taskId)).get(idKey) as string | undefined) ?? chosen;
    })) as string;
    const answer = (await this.ask(key, { kind: 'url', message, url, elicitationId }, options)) as InputResponse;
    if (answer.action === 'accept' && options.waitForCompletion !== false) {
      const done = await this.run.step(`wait-${completionTopic(elicitationId)}`, async () => {
        if ((await this.store.readJournal(this.taskId)).has(elicitationCompleteKey(elicitationId))) return true;
        await this.write(() => this.store.report(this.taskId, { statusMessage: `Waiting for the step at ${parsed.host} to complete` }, this.fence));
        return false;
      });
      if (!done) {
        const waited = this.monitor?.waiting('question');
        try {
          await this.run.receive(completionTopic(elicitationId));
        } finally {
          waited?.('answer');
        }
      }
      this.signal.throwIfAborted();
    }
    return { action: answer.action, elicitationId };
  }

  async sample(params: JsonObject, options: AskOptions & { message?: string } = {}): Promise<SamplingResponse> {
    const key = this.questionKey('sample', options.key);
    const message = options.message ?? "Waiting for the client's model";
    return (await this.ask(key, { kind: 'sampling', message, params: toJson(params) }, options)) as SamplingResponse;
  }

  async listRoots(options: AskOptions & { message?: string } = {}): Promise<RootsResponse> {
    const key = this.questionKey('roots', options.key);
    return (await this.ask(key, { kind: 'roots', message: options.message ?? "Waiting for the client's roots" }, options)) as RootsResponse;
  }

  async progress(progress: number, total?: number, message?: string): Promise<void> {
    await this.report({ progress: { progress, ...(total !== undefined && { total }) }, ...(message !== undefined && { statusMessage: message }) });
  }

  async setStatusMessage(message: string): Promise<void> {
    await this.report({ statusMessage: message });
  }

  private async report(update: { statusMessage?: string; progress?: { progress: number; total?: number } }): Promise<void> {
    this.signal.throwIfAborted();
    await this.run.step(`report-${++this.reports}`, async () => {
      await this.write(() => this.store.report(this.taskId, update, this.fence));
      return null;
    });
    this.monitor?.activity(update.progress ? 'progress' : 'status');
  }

  /**
   * Asks `request` under `key` — one engine step: the answer if one was given ahead (MRTR), else the
   * task goes `input_required` — then waits for the answer's message, and settles the question.
   */
  private async ask(key: string, request: InputRequest, options: AskOptions): Promise<InputAnswer> {
    const deadline = resolveDeadline(options, request);
    this.unique(inputKey(key));
    this.signal.throwIfAborted();
    const asked = this.run.step(`ask:${key}`, async () => {
      const given = await this.store.inputAnswer(this.taskId, key);
      if (given) return given as unknown as Json;
      await this.write(() => this.store.requestInput(this.taskId, key, request, request.message, this.fence, deadline));
      this.log.info({ key, kind: request.kind }, 'task waiting for input');
      return null;
    });
    // The wait for the answer is issued now, in the handler's call order, not once the step above
    // has resolved: questions asked together (`Promise.all` of asks) then put their engine commands
    // at the same places on every replay. An engine may resolve the steps of a replay in another
    // order than the first run did (Restate does), and a command issued after such an await would
    // land elsewhere — a replay Restate refuses, and on DBOS a message read by the wrong question.
    const answered = new AbortController();
    const answering = this.run.receive<Json>(answerTopic(key), answered.signal);
    answering.catch(() => undefined); // ended by `answered` when the answer was given ahead
    let ahead: Json | null;
    try {
      ahead = await asked;
    } catch (error) {
      answered.abort(error);
      throw error;
    }
    if (ahead !== null) answered.abort(new Error('answered ahead'));
    // A replayed ask (a recovered or taken-over workflow) asks nothing: arm its deadline here all the same.
    else if (deadline) void this.store.announceQuestionDeadlines(this.taskId).catch(() => undefined);
    const waited = this.monitor?.waiting('question');
    let answer: InputAnswer;
    try {
      answer = (ahead ?? (await answering)) as unknown as InputAnswer;
    } finally {
      waited?.('answer');
    }
    this.signal.throwIfAborted();
    const settle = async () => {
      await this.write(() => this.store.settleInput(this.taskId, key, this.fence));
      return null;
    };
    await (this.run.recordsSettles === false ? settle() : this.run.step(settleStepName(key), settle));
    return answer;
  }

  /** Waits until `wakeAt` (ms since the epoch) durably, from a durable reading of the clock. */
  private async waitUntil(name: string, wakeAt: number): Promise<void> {
    this.signal.throwIfAborted();
    const waited = this.monitor?.waiting('timer');
    try {
      const now = await this.run.now(`${name}:now`);
      if (wakeAt > now) await this.run.sleep(name, wakeAt - now);
    } finally {
      waited?.();
    }
    this.signal.throwIfAborted();
  }

  /**
   * A store write of this run. A task that ended meanwhile (cancelled, deleted) stops the run: the
   * signal aborts and the write resolves with what it would have; outages reject (the engine retries).
   */
  private async write<T>(call: () => Promise<T>): Promise<T | undefined> {
    try {
      return await call();
    } catch (error) {
      if (error instanceof IllegalTransitionError || error instanceof TaskNotFoundError || error instanceof LeaseLostError) {
        this.onEnded();
        this.signal.throwIfAborted();
      }
      throw error;
    }
  }

  private unique(key: string): void {
    if (this.names.has(key))
      throw new InvalidArgumentError(`'${key}' used twice in one run of task ${this.taskId}; step names and question keys must be unique`);
    this.names.add(key);
  }

  private questionKey(prefix: string, given: string | undefined): string {
    return questionKeyOf(prefix, ++this.sequence, given);
  }
}

/**
 * One run of a task's handler on an engine, start to end: reads the task, builds its
 * `EngineContext`, runs the handler and writes its outcome to the store in a last engine step
 * (`ExecutorHost.finish`: the same outcome rules as the embedded runtime). A run whose signal
 * aborted (a cancel, the executor stopping) writes nothing. Rejects only for the engine's sake (a
 * store outage: the engine retries the run).
 */
export async function runOnEngine(
  host: ExecutorHost,
  taskId: string,
  run: DurableRun,
  options: {
    signal: AbortSignal;
    onEnded: () => void;
    fencingToken: number;
    /** The run's fence, for executors that fence runs with the store's leases (see `EngineContextOptions.fence`); `finish` carries it too. */
    fence?: Fence;
    /** Errors that belong to the engine (its cancellation, a conflict): rethrown, never the task's outcome. */
    isEngineError?: (error: unknown) => boolean;
  },
): Promise<RunEnd> {
  let task: TaskRecord;
  try {
    task = await host.store.get(taskId, ENGINE_ACCESS);
  } catch (error) {
    if (error instanceof TaskNotFoundError) return { kind: 'interrupted', reason: 'deleted' };
    throw error;
  }
  if (isTerminal(task.status)) return { kind: 'interrupted', reason: 'already_terminal' };
  const entry = host.handler(task.request.tool);
  let outcome: { result: unknown } | { error: unknown };
  let watch: StallWatch | undefined;
  try {
    if (!entry) throw new Error(`No handler is registered for tool '${task.request.tool}' in this server`);
    const args = await entry.parse(host.openArguments(task.request.arguments));
    watch = host.watchStalls(task, options.signal, options.fence);
    const ctx = new EngineContext({
      ...(watch && { activity: watch }),
      taskId,
      store: host.store,
      run,
      signal: options.signal,
      onEnded: options.onEnded,
      now: () => host.now(),
      fencingToken: options.fencingToken,
      ...(options.fence && { fence: options.fence }),
      log: host.log.child({ taskId, tool: task.request.tool, principal: task.owner }),
      clientCapabilities: task.request.clientCapabilities,
    });
    outcome = { result: await entry.handler(args, ctx) };
  } catch (error) {
    // A store failure or the engine's own error is never the task's outcome: the engine retries the run.
    if (error instanceof StoreUnavailableError || options.isEngineError?.(error)) throw error;
    outcome = { error };
  } finally {
    watch?.close();
  }
  if (options.signal.aborted) return options.signal.reason instanceof TaskCancelledSignal ? { kind: 'cancelled' } : { kind: 'interrupted', reason: 'aborted' };
  let end: RunEnd = { kind: 'interrupted', reason: 'aborted' };
  await run.step('finish', async () => {
    end = await host.finish(task, outcome, options.fence);
    return null;
  });
  return end;
}
