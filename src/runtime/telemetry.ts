import {
  context,
  createNoopMeter,
  createTraceState,
  isSpanContextValid,
  metrics,
  propagation,
  ROOT_CONTEXT,
  SpanKind,
  SpanStatusCode,
  trace,
  type Attributes,
  type Context,
  type Counter,
  type Histogram,
  type Meter,
  type MeterProvider,
  type ObservableResult,
  type Span,
  type SpanContext,
  type TextMapGetter,
} from '@opentelemetry/api';
import type { Actor } from '../core/journal-keys.js';
import type { TaskStatus } from '../core/status.js';
import type { InputKind, TaskRecord, TraceContext } from '../core/task.js';
import { LeaseLostSignal, ShutdownSignal, TaskCancelledSignal } from './signals.js';

/**
 * OpenTelemetry for the runtime, through `@opentelemetry/api` only: every function here is a no-op
 * (a few allocations at most) until the application registers an SDK (`@opentelemetry/sdk-node`,
 * or a tracer / meter provider of its own). The one place tracer and meter are reached.
 *
 * Traces — one per task, from the `tools/call` that created it to its end, across restarts and
 * takeovers:
 * - `task.create <tool>` (kind SERVER): child of the caller's context, taken from the request's
 *   `_meta` (`traceparent` / `tracestate` / `baggage`, MCP 2026-07-28 changelog, SEP-414; the OTel
 *   MCP semantic conventions propagate the same way) through the registered propagator, W3C
 *   `traceparent` understood even without one. Its own context is stored with the task
 *   (`TaskRecord.traceContext`, W3C) in the record's first write.
 * - `task.run <tool>` (INTERNAL): one per execution (`start`, `recovery`, `takeover`), child of the
 *   stored creation context, so every run of a task — in this process, after a restart, on another
 *   instance — joins the same trace. Events: `task.step.replayed`, `task.input.replayed`,
 *   `task.poll`, `task.run.interrupted`.
 * - `task.step <name>`, `task.timer`, `task.input <key>` (INTERNAL): children of their run span.
 *
 * Metrics (meter `mcp-tasks`; durations in seconds): see `instruments`.
 *
 * Attribute names follow the OTel semantic conventions for MCP (`mcp.method.name`,
 * `gen_ai.tool.name`, `gen_ai.operation.name`, `error.type`) where they fit; the rest are
 * `mcp.task.*` and `mcp_tasks.*` (see `ATTR`).
 */

/** Instrumentation scope of the tracer and the meter. */
export const TELEMETRY_SCOPE = 'mcp-tasks';

/** The attribute keys used on spans, span events and metric points. */
export const ATTR = {
  /** MCP method (semantic conventions `mcp.method.name`): `tools/call` on creation, the polled method on `task.poll`. */
  method: 'mcp.method.name',
  /** The task tool (semantic conventions `gen_ai.tool.name`). */
  tool: 'gen_ai.tool.name',
  /** `execute_tool` (semantic conventions `gen_ai.operation.name`). */
  operation: 'gen_ai.operation.name',
  /** The task's id (`taskId`). */
  taskId: 'mcp.task.id',
  /** The task's status: its final one on a run span, the counted one on metrics. */
  status: 'mcp.task.status',
  /** Semantic conventions `error.type`: `tool_error` (an `isError` result), a JSON-RPC code, or an error's name. */
  errorType: 'error.type',
  /** Why a run started: `start` (just created), `recovery` (restart), `takeover` (from a dead instance). */
  runReason: 'mcp_tasks.run.reason',
  /** The runtime instance executing the run (its lease holder id). */
  instance: 'mcp_tasks.instance.id',
  /** The instance that held the task before a takeover. */
  previousHolder: 'mcp_tasks.run.previous_holder',
  /**
   * Why a run (event `task.run.interrupted` on the run span) ended before its task did: `shutdown`,
   * `lease_lost`, `deleted`, `already_terminal`, `aborted`; on a step or wait span also `cancelled`.
   */
  interruption: 'mcp_tasks.run.interruption',
  /** Step name (`ctx.step(name, …)`). */
  step: 'mcp_tasks.step.name',
  /** Attempts a step made (1 + retries used). */
  attempts: 'mcp_tasks.step.attempts',
  /** Retries a step allows (`StepOptions.retries`). */
  maxRetries: 'mcp_tasks.step.max_retries',
  /** A timer's due time, ISO 8601. */
  due: 'mcp_tasks.timer.due',
  /** Question key. */
  inputKey: 'mcp_tasks.input.key',
  /** Question kind: `elicitation`, `url`, `sampling`, `roots`. */
  inputKind: 'mcp_tasks.input.kind',
  deadlineOutcome: 'mcp_tasks.deadline.outcome',
  /** When the question was first asked (ISO 8601), possibly in an earlier run. */
  askedAt: 'mcp_tasks.input.asked_at',
  /** Who answered: `principal`, `operator`, `engine` (journal `answered:<key>`). */
  answeredByRole: 'mcp_tasks.input.answered_by.role',
  /** The answering principal or operator, when named. */
  answeredByName: 'mcp_tasks.input.answered_by.name',
  /** The elicitation answer's `action` (`accept`, `decline`, `cancel`); never its content. */
  action: 'mcp_tasks.input.action',
  /** Polls since the previous `task.poll` event of the run (polls are coalesced, see `notePoll`). */
  pollCount: 'mcp_tasks.poll.count',
  /** Polls seen during the whole run (set on the run span when it ends). */
  polls: 'mcp_tasks.polls',
} as const;

/** Why an execution started (`ATTR.runReason`): `start` is the first run, right after `submit`. */
export type RunReason = 'start' | 'recovery' | 'takeover' | 'retry';

/** How an execution ended, for its run span. */
export type RunEnd =
  /** This run wrote the task's terminal state (`completed` / `failed`). */
  | { kind: 'ended'; task: TaskRecord }
  /** The task was cancelled while this run executed it. */
  | { kind: 'cancelled' }
  /** The run stopped and the task goes on elsewhere or later (see `ATTR.interruption`). */
  | { kind: 'interrupted'; reason: 'shutdown' | 'lease_lost' | 'deleted' | 'already_terminal' | 'aborted' | 'store_unavailable' }
  /** The runtime failed (a store outage while finishing, …). */
  | { kind: 'error'; error: unknown };

const tracer = () => trace.getTracer(TELEMETRY_SCOPE);

// ---------------------------------------------------------------------------------------------
// Trace context: the caller's (request `_meta`) and the task's (stored, W3C)
// ---------------------------------------------------------------------------------------------

/** Reads string values of a request's `_meta` for `propagation.extract` (other value types are ignored). */
const META_GETTER: TextMapGetter<Record<string, unknown>> = {
  keys: (carrier) => Object.keys(carrier),
  get: (carrier, key) => {
    const value = carrier[key];
    if (typeof value === 'string') return value;
    if (Array.isArray(value) && value.every((item) => typeof item === 'string')) return value as string[];
    return undefined;
  },
};

const TRACEPARENT = /^([0-9a-f]{2})-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})(-.*)?$/;

/**
 * The span context a W3C `traceparent` (https://www.w3.org/TR/trace-context/#traceparent-header,
 * `version-traceid-parentid-flags`, lower-case hex) and optional `tracestate` stand for, marked
 * remote; undefined when `traceparent` is malformed (version `ff`, all-zero ids, extra fields in
 * version `00`).
 */
export function parseTraceparent(traceparent: unknown, tracestate?: unknown): SpanContext | undefined {
  if (typeof traceparent !== 'string') return undefined;
  const match = TRACEPARENT.exec(traceparent.trim());
  if (!match || match[1] === 'ff' || (match[1] === '00' && match[5])) return undefined;
  const spanContext: SpanContext = {
    traceId: match[2]!,
    spanId: match[3]!,
    traceFlags: parseInt(match[4]!, 16),
    isRemote: true,
    ...(typeof tracestate === 'string' && tracestate.length > 0 && { traceState: createTraceState(tracestate) }),
  };
  return isSpanContextValid(spanContext) ? spanContext : undefined;
}

/** The W3C carrier (`traceparent`, `tracestate` when not empty) of a span context. */
export function formatTraceContext(spanContext: SpanContext): TraceContext {
  const flags = (spanContext.traceFlags & 0xff).toString(16).padStart(2, '0');
  const tracestate = spanContext.traceState?.serialize();
  return { traceparent: `00-${spanContext.traceId}-${spanContext.spanId}-${flags}`, ...(tracestate && { tracestate }) };
}

/**
 * The caller's context from a request's `_meta` (`carrier`): the registered propagator's
 * `extract` over the active context (so `baggage` and any other format the application registered
 * are honoured); when it found no span there, a W3C `traceparent` / `tracestate` in `_meta` is
 * honoured directly (SEP-414 names that format). Without a carrier: the active context.
 */
export function callerContext(carrier: unknown): Context {
  const base = context.active();
  if (typeof carrier !== 'object' || carrier === null || Array.isArray(carrier)) return base;
  const meta = carrier as Record<string, unknown>;
  const extracted = propagation.extract(base, meta, META_GETTER);
  if (trace.getSpan(extracted) !== trace.getSpan(base)) return extracted;
  const spanContext = parseTraceparent(META_GETTER.get(meta, 'traceparent'), META_GETTER.get(meta, 'tracestate'));
  return spanContext ? trace.setSpanContext(extracted, spanContext) : extracted;
}

/** The context a task's runs are children of: its stored `traceContext`, else none (a new trace). */
function taskContext(task: TaskRecord): Context {
  const spanContext = task.traceContext && parseTraceparent(task.traceContext.traceparent, task.traceContext.tracestate);
  return spanContext ? trace.setSpanContext(ROOT_CONTEXT, spanContext) : ROOT_CONTEXT;
}

// ---------------------------------------------------------------------------------------------
// Task creation
// ---------------------------------------------------------------------------------------------

/** The creation span of one `submit`: `traceContext` to store with the task, then `stored` or `failed`. */
export interface CreationTelemetry {
  /** The creation span's W3C context, for `TaskRecord.traceContext`; undefined when no SDK made a span. */
  readonly traceContext?: TraceContext;
  /** The task is stored: names it on the span (`mcp.task.id`), counts it, ends the span. */
  stored(task: TaskRecord): void;
  /** Storing failed (a limit, an outage): records the error and ends the span. */
  failed(error: unknown): void;
  /**
   * Nothing was stored: the call's idempotency key named `task`, which an earlier call created.
   * Names it on the span with `mcp_tasks.idempotent_replay` true, ends the span, counts nothing.
   */
  found(task: TaskRecord): void;
}

/**
 * Starts the span `task.create <tool>` (kind SERVER; `mcp.method.name` `tools/call`,
 * `gen_ai.tool.name`, `gen_ai.operation.name` `execute_tool`) as a child of the caller's context
 * in `carrier` (the request's `_meta`, see `callerContext`). Its context is returned as
 * `traceContext` only when an SDK actually made a new span (sampled or not), so a task created
 * without an SDK stores nothing.
 */
export function startCreation(tool: string, carrier: unknown): CreationTelemetry {
  const parent = callerContext(carrier);
  const span = tracer().startSpan(
    `task.create ${tool}`,
    { kind: SpanKind.SERVER, attributes: { [ATTR.method]: 'tools/call', [ATTR.tool]: tool, [ATTR.operation]: 'execute_tool' } },
    parent,
  );
  const own = span.spanContext();
  const parentSpanId = trace.getSpanContext(parent)?.spanId;
  const traceContext = isSpanContextValid(own) && own.spanId !== parentSpanId ? formatTraceContext(own) : undefined;
  return {
    ...(traceContext && { traceContext }),
    stored(task) {
      span.setAttribute(ATTR.taskId, task.taskId);
      span.end();
      instruments().created.add(1, { [ATTR.tool]: tool });
    },
    failed(error) {
      recordError(span, error);
      span.end();
    },
    found(task) {
      span.setAttribute(ATTR.taskId, task.taskId);
      span.setAttribute('mcp_tasks.idempotent_replay', true);
      span.end();
    },
  };
}

// ---------------------------------------------------------------------------------------------
// Runs
// ---------------------------------------------------------------------------------------------

/** Runs whose span records, by task id, for `notePoll` (the latest run per task). */
const liveRuns = new Map<string, RunTelemetry>();

/** At most one `task.poll` event per run per this many ms; the polls in between are counted into the next. */
const POLL_EVENT_GAP_MS = 1000;

/**
 * Notes a poll of `taskId` (`method`: `tasks/get`, `tasks/result`, `tasks/list`): an event
 * `task.poll` on the task's run span when that run lives in this process and records, else nothing.
 * Never a span. Events are coalesced to one per second per run (`mcp_tasks.poll.count` says how
 * many polls it stands for), so a tight poll loop cannot flood the span. One map lookup otherwise:
 * this is the hottest path of the server.
 */
export function notePoll(taskId: string, method: string): void {
  liveRuns.get(taskId)?.poll(method);
}

/**
 * One execution of one task: the span `task.run <tool>` (child of the task's stored creation
 * context; attributes `mcp.task.id`, `gen_ai.tool.name`, `mcp_tasks.run.reason`,
 * `mcp_tasks.instance.id`, `mcp_tasks.run.previous_holder` on a takeover) and its children.
 * `context` is the context handler code runs in, so spans the handler's own instrumentation makes
 * (HTTP, database) join the task's trace.
 */
export class RunTelemetry {
  /** The run span. */
  readonly span: Span;
  /** The run span's context (the handler runs in it). */
  readonly context: Context;
  /** Whether an SDK records this run (else every method is a no-op). */
  readonly recording: boolean;
  private polls = 0;
  private pollsEvented = 0;
  private lastPollEventAt = 0;
  private ended = false;

  constructor(
    readonly task: TaskRecord,
    run: { reason: RunReason; instanceId: string; previousHolder?: string },
  ) {
    const tool = task.request.tool;
    this.span = tracer().startSpan(
      `task.run ${tool}`,
      {
        kind: SpanKind.INTERNAL,
        attributes: {
          [ATTR.taskId]: task.taskId,
          [ATTR.tool]: tool,
          [ATTR.operation]: 'execute_tool',
          [ATTR.runReason]: run.reason,
          [ATTR.instance]: run.instanceId,
          ...(run.previousHolder !== undefined && { [ATTR.previousHolder]: run.previousHolder }),
        },
      },
      taskContext(task),
    );
    this.context = trace.setSpan(ROOT_CONTEXT, this.span);
    this.recording = this.span.isRecording();
    if (this.recording) liveRuns.set(task.taskId, this);
  }

  /** Runs `fn` (the handler) with the run span as the active context. */
  within<T>(fn: () => T): T {
    return context.with(this.context, fn);
  }

  /** See `notePoll`. */
  poll(method: string): void {
    this.polls++;
    const now = Date.now();
    if (now - this.lastPollEventAt < POLL_EVENT_GAP_MS) return;
    this.span.addEvent('task.poll', { [ATTR.method]: method, [ATTR.pollCount]: this.polls - this.pollsEvented });
    this.pollsEvented = this.polls;
    this.lastPollEventAt = now;
  }

  /**
   * A step recorded by an earlier run, or a question whose answer is already journaled (answered
   * in an earlier run, while nothing ran, or ahead of the ask by MRTR), returned from the journal:
   * an event `task.step.replayed` / `task.input.replayed` on the run span, no span.
   */
  replayed(what: 'step' | 'input', name: string): void {
    if (this.recording) this.span.addEvent(`task.${what}.replayed`, { [what === 'step' ? ATTR.step : ATTR.inputKey]: name });
  }

  /**
   * Runs the attempts of step `name` (`body`, given `retried(error)` to call before each retry)
   * inside the span `task.step <name>` (attributes `mcp_tasks.step.name`,
   * `mcp_tasks.step.max_retries`, `mcp_tasks.step.attempts`; an `exception` event per failed
   * attempt; status ERROR with `error.type` when the step's error is recorded), with the span as
   * the active context. Records `mcp_tasks.step.duration`. A step stopped by `signal` (cancel,
   * shutdown, takeover) gets an event `task.run.interrupted` and no duration point.
   */
  async step<T>(name: string, maxRetries: number, signal: AbortSignal, body: (retried: (error: unknown) => void) => Promise<T>): Promise<T> {
    const started = performance.now();
    const span = tracer().startSpan(
      `task.step ${name}`,
      { kind: SpanKind.INTERNAL, attributes: { [ATTR.step]: name, [ATTR.maxRetries]: maxRetries } },
      this.context,
    );
    let attempts = 1;
    const retried = (error: unknown) => {
      attempts++;
      if (span.isRecording()) span.recordException(asException(error));
    };
    const points: Attributes = { [ATTR.tool]: this.task.request.tool, [ATTR.step]: name };
    try {
      const value = await context.with(trace.setSpan(this.context, span), () => body(retried));
      instruments().stepDuration.record((performance.now() - started) / 1000, points);
      return value;
    } catch (error) {
      if (signal.aborted) span.addEvent('task.run.interrupted', { [ATTR.interruption]: interruptionOf(signal.reason) });
      else {
        recordError(span, error);
        instruments().stepDuration.record((performance.now() - started) / 1000, { ...points, [ATTR.errorType]: errorType(error) });
      }
      throw error;
    } finally {
      span.setAttribute(ATTR.attempts, attempts);
      span.end();
    }
  }

  /** Starts the span `task.timer` (attribute `mcp_tasks.timer.due`, ISO 8601) of a durable wait until `dueMs` (ms since the epoch). */
  startTimer(dueMs: number): WaitSpan {
    if (!this.recording) return NO_WAIT;
    const span = tracer().startSpan('task.timer', { kind: SpanKind.INTERNAL, attributes: { [ATTR.due]: new Date(dueMs).toISOString() } }, this.context);
    return new WaitSpan(span);
  }

  /**
   * Starts the span `task.input <key>` (attributes `mcp_tasks.input.key`, `mcp_tasks.input.kind`,
   * `mcp_tasks.input.asked_at` — the first ask, maybe in an earlier run) of a durable wait for the
   * answer to question `key`; `WaitSpan.answered` adds who answered.
   */
  startInput(key: string, kind: InputKind, askedAt?: string): WaitSpan {
    if (!this.recording) return NO_WAIT;
    const span = tracer().startSpan(
      `task.input ${key}`,
      { kind: SpanKind.INTERNAL, attributes: { [ATTR.inputKey]: key, [ATTR.inputKind]: kind, ...(askedAt && { [ATTR.askedAt]: askedAt }) } },
      this.context,
    );
    return new WaitSpan(span);
  }

  /**
   * Ends the run span (once): a run that ended its task gets `mcp.task.status` and, for a
   * `failed` task or an `isError` result, status ERROR with `error.type` (`tool_error` or the
   * JSON-RPC code); a cancelled task `mcp.task.status` `cancelled`; an interrupted run (shutdown,
   * lease lost, …) an event `task.run.interrupted` with `mcp_tasks.run.interruption`; a runtime
   * error status ERROR. Sets `mcp_tasks.polls`.
   */
  end(end: RunEnd): void {
    if (this.ended) return;
    this.ended = true;
    if (liveRuns.get(this.task.taskId) === this) liveRuns.delete(this.task.taskId);
    if (!this.recording) return this.span.end();
    const span = this.span;
    if (this.polls > 0) span.setAttribute(ATTR.polls, this.polls);
    switch (end.kind) {
      case 'ended': {
        const { task } = end;
        span.setAttribute(ATTR.status, task.status);
        const outcome = task.outcome;
        if (outcome?.type === 'error') {
          span.setAttribute(ATTR.errorType, String(outcome.error.code));
          span.setStatus({ code: SpanStatusCode.ERROR, message: outcome.error.message });
        } else if (outcome?.type === 'result' && outcome.result.isError === true) {
          span.setAttribute(ATTR.errorType, 'tool_error');
          span.setStatus({ code: SpanStatusCode.ERROR, ...(task.statusMessage !== undefined && { message: task.statusMessage }) });
        }
        break;
      }
      case 'cancelled':
        span.setAttribute(ATTR.status, 'cancelled');
        break;
      case 'interrupted':
        span.addEvent('task.run.interrupted', { [ATTR.interruption]: end.reason });
        break;
      case 'error':
        recordError(span, end.error);
        break;
    }
    span.end();
  }
}

/** A timer's or a question's wait span (see `RunTelemetry.startTimer` / `startInput`). */
export class WaitSpan {
  constructor(private readonly span?: Span) {}

  /** Whether an SDK records it (worth reading who answered). */
  get recording(): boolean {
    return this.span?.isRecording() ?? false;
  }

  /** The wait is over (the timer fired): ends the span. */
  done(): void {
    this.span?.end();
  }

  /** The question was answered: adds who answered (journal `answered:<key>`) and the elicitation `action`, and ends the span. */
  answered(by: Actor | undefined, action: unknown): void {
    if (!this.span) return;
    if (by) {
      this.span.setAttribute(ATTR.answeredByRole, by.role);
      if (by.name !== null) this.span.setAttribute(ATTR.answeredByName, by.name);
    }
    if (typeof action === 'string') this.span.setAttribute(ATTR.action, action);
    this.span.end();
  }

  /** The wait was aborted (`reason`: the signal's reason — cancel, shutdown, takeover): an event `task.run.interrupted`, and the span ends. */
  interrupted(reason: unknown): void {
    if (!this.span) return;
    this.span.addEvent('task.run.interrupted', { [ATTR.interruption]: interruptionOf(reason) });
    this.span.end();
  }
}

const NO_WAIT = new WaitSpan();

/** `mcp_tasks.run.interruption` of a step or wait stopped by `ctx.signal`, from its reason (see `signals.ts`). */
function interruptionOf(reason: unknown): string {
  if (reason instanceof TaskCancelledSignal) return 'cancelled';
  if (reason instanceof ShutdownSignal) return 'shutdown';
  if (reason instanceof LeaseLostSignal) return 'lease_lost';
  return 'aborted';
}

function asException(error: unknown): Error {
  return error instanceof Error ? error : new Error(String(error));
}

function errorType(error: unknown): string {
  return error instanceof Error ? error.name : typeof error;
}

function recordError(span: Span, error: unknown): void {
  if (!span.isRecording()) return;
  const err = asException(error);
  span.recordException(err);
  span.setAttribute(ATTR.errorType, err.name);
  span.setStatus({ code: SpanStatusCode.ERROR, message: err.message });
}

// ---------------------------------------------------------------------------------------------
// Metrics
// ---------------------------------------------------------------------------------------------

/**
 * The metric instruments on the global meter provider's meter `mcp-tasks` (re-created when the
 * application registers another provider; noop instruments without one):
 *
 * | name                        | kind                 | unit     | attributes                                   |
 * | --------------------------- | -------------------- | -------- | -------------------------------------------- |
 * | `mcp_tasks.tasks.created`   | counter              | {task}   | `gen_ai.tool.name`                           |
 * | `mcp_tasks.tasks.ended`     | counter              | {task}   | `gen_ai.tool.name`, `mcp.task.status`        |
 * | `mcp_tasks.takeovers`       | counter              | {task}   | `gen_ai.tool.name`                           |
 * | `mcp_tasks.purged`          | counter              | {task}   | —                                            |
 * | `mcp_tasks.task.duration`   | histogram            | s        | `gen_ai.tool.name`, `mcp.task.status`        |
 * | `mcp_tasks.step.duration`   | histogram            | s        | `gen_ai.tool.name`, `mcp_tasks.step.name`, `error.type` on failure |
 * | `mcp_tasks.input.wait`      | histogram            | s        | `gen_ai.tool.name`, `mcp_tasks.input.kind`   |
 * | `mcp_tasks.input.deadlines` | counter              | {event}  | `gen_ai.tool.name`, `mcp_tasks.deadline.outcome` (`default`, `decline`, `cancel`, `escalate`, `reminder`) |
 * | `mcp_tasks.tasks.live`      | observable gauge     | {task}   | `mcp.task.status` (`working`, `input_required`) |
 * | `mcp_tasks.stalls`          | counter              | {task}   | `gen_ai.tool.name`                           |
 * | `mcp_tasks.tasks.stalled`   | observable gauge     | {task}   | —                                            |
 * | `mcp_tasks.deadlines.exceeded` | counter           | {task}   | `gen_ai.tool.name`                           |
 *
 * `tasks.ended` and `task.duration` (createdAt → the terminal write) are recorded by the process
 * that wrote the end (its runtime finished or cancelled the task), so each task counts once.
 * `tasks.live` counts the executions of this process's runtimes by status: summed over the
 * instances sharing a store it is the store's live tasks (each is executed by exactly one).
 * `stalls` counts stall flags (one per episode: a task flagged, resumed and flagged again counts
 * twice); `tasks.stalled` is how many tasks this process's runs have flagged right now (summed over
 * instances: the store's stalled tasks). `deadlines.exceeded` counts tasks ended by their deadline,
 * by the process whose terminal write won (once per task).
 */
export interface Instruments {
  readonly enabled: boolean;
  readonly created: Counter;
  readonly ended: Counter;
  readonly takeovers: Counter;
  readonly purged: Counter;
  readonly taskDuration: Histogram;
  readonly stepDuration: Histogram;
  readonly inputWait: Histogram;
  readonly deadlines: Counter;
  readonly stalls: Counter;
  readonly deadlinesExceeded: Counter;
}

let cached: (Instruments & { provider: MeterProvider }) | undefined;

/** The instruments on the current global meter provider (see `Instruments`). */
export function instruments(): Instruments {
  const provider = metrics.getMeterProvider();
  if (cached?.provider === provider) return cached;
  const meter: Meter = provider.getMeter(TELEMETRY_SCOPE);
  const seconds = (buckets: number[]) => ({ unit: 's', advice: { explicitBucketBoundaries: buckets } });
  const live = meter.createObservableGauge('mcp_tasks.tasks.live', { description: 'Live tasks executed by this process, by status', unit: '{task}' });
  live.addCallback(observeLive);
  const stalled = meter.createObservableGauge('mcp_tasks.tasks.stalled', { description: 'Tasks this process runs that are flagged stalled', unit: '{task}' });
  stalled.addCallback(observeStalled);
  cached = {
    provider,
    enabled: meter !== createNoopMeter(),
    created: meter.createCounter('mcp_tasks.tasks.created', { description: 'Tasks created', unit: '{task}' }),
    ended: meter.createCounter('mcp_tasks.tasks.ended', { description: 'Tasks that reached a terminal status', unit: '{task}' }),
    takeovers: meter.createCounter('mcp_tasks.takeovers', { description: 'Tasks taken over from an instance presumed dead', unit: '{task}' }),
    purged: meter.createCounter('mcp_tasks.purged', { description: 'Expired tasks deleted with their journals', unit: '{task}' }),
    stalls: meter.createCounter('mcp_tasks.stalls', { description: 'Working tasks flagged stalled (no activity for their stallAfterMs)', unit: '{task}' }),
    deadlinesExceeded: meter.createCounter('mcp_tasks.deadlines.exceeded', { description: 'Tasks ended failed by their deadline', unit: '{task}' }),
    taskDuration: meter.createHistogram('mcp_tasks.task.duration', {
      description: 'Task lifetime from creation to its terminal status',
      ...seconds([0.1, 0.5, 1, 5, 10, 30, 60, 300, 900, 1800, 3600, 7200, 21600, 86400, 604800]),
    }),
    stepDuration: meter.createHistogram('mcp_tasks.step.duration', {
      description: 'Execution time of a journaled step (all its attempts); replayed steps are not measured',
      ...seconds([0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 900]),
    }),
    inputWait: meter.createHistogram('mcp_tasks.input.wait', {
      description: 'Time from a question first asked to its answer',
      ...seconds([1, 5, 15, 30, 60, 300, 900, 1800, 3600, 14400, 86400, 604800]),
    }),
    deadlines: meter.createCounter('mcp_tasks.input.deadlines', {
      description: 'Question deadlines applied (each once across instances) and reminders sent, by what happened',
      unit: '{event}',
    }),
  };
  return cached;
}

/** Counts a task's end (`mcp_tasks.tasks.ended`, `mcp_tasks.task.duration`) from its terminal record. */
export function recordTaskEnd(task: TaskRecord): void {
  const meters = instruments();
  const attributes = { [ATTR.tool]: task.request.tool, [ATTR.status]: task.status };
  meters.ended.add(1, attributes);
  const seconds = (Date.parse(task.lastUpdatedAt) - Date.parse(task.createdAt)) / 1000;
  if (Number.isFinite(seconds)) meters.taskDuration.record(Math.max(0, seconds), attributes);
}

/** Counts a takeover (`mcp_tasks.takeovers`) of a `tool` task. */
export function recordTakeover(tool: string): void {
  instruments().takeovers.add(1, { [ATTR.tool]: tool });
}

/** Counts a stall flag (`mcp_tasks.stalls`) of a `tool` task. */
export function recordStall(tool: string): void {
  instruments().stalls.add(1, { [ATTR.tool]: tool });
}

/** Counts a task ended by its deadline (`mcp_tasks.deadlines.exceeded`) of a `tool` task. */
export function recordDeadlineExceeded(tool: string): void {
  instruments().deadlinesExceeded.add(1, { [ATTR.tool]: tool });
}

/** Records `mcp_tasks.input.wait`: question `kind` of a `tool` task, asked at `askedAt`, answered at `answeredAt` (ISO 8601). */
export function recordInputWait(tool: string, kind: InputKind, askedAt: string, answeredAt: string): void {
  const seconds = (Date.parse(answeredAt) - Date.parse(askedAt)) / 1000;
  if (Number.isFinite(seconds)) instruments().inputWait.record(Math.max(0, seconds), { [ATTR.tool]: tool, [ATTR.inputKind]: kind });
}

/**
 * Counts what a question's deadline did (`mcp_tasks.input.deadlines`) to a `tool` task: its
 * `onTimeout` policy applied (`default`, `decline`, `cancel`, `escalate`) or a `reminder` sent —
 * recorded by the process whose write took effect, so each counts once across instances.
 */
export function recordDeadline(tool: string, outcome: 'default' | 'decline' | 'cancel' | 'escalate' | 'reminder'): void {
  instruments().deadlines.add(1, { [ATTR.tool]: tool, [ATTR.deadlineOutcome]: outcome });
}

/** Sources of `mcp_tasks.tasks.live`: each yields the statuses of the tasks one runtime executes. */
const liveSources = new Set<() => Iterable<TaskStatus>>();

/** Adds a source to `mcp_tasks.tasks.live` (a runtime's executions). Returns the function removing it. */
export function registerLiveSource(source: () => Iterable<TaskStatus>): () => void {
  liveSources.add(source);
  return () => liveSources.delete(source);
}

function observeLive(result: ObservableResult): void {
  const counts: Partial<Record<TaskStatus, number>> = { working: 0, input_required: 0 };
  for (const source of liveSources) for (const status of source()) counts[status] = (counts[status] ?? 0) + 1;
  for (const [status, count] of Object.entries(counts)) result.observe(count, { [ATTR.status]: status });
}

/** Sources of `mcp_tasks.tasks.stalled`: each says how many tasks one runtime has flagged stalled now. */
const stalledSources = new Set<() => number>();

/** Adds a source to `mcp_tasks.tasks.stalled` (a runtime's flagged tasks). Returns the function removing it. */
export function registerStalledSource(source: () => number): () => void {
  stalledSources.add(source);
  return () => stalledSources.delete(source);
}

function observeStalled(result: ObservableResult): void {
  let count = 0;
  for (const source of stalledSources) count += source();
  result.observe(count);
}
