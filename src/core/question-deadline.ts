import { InvalidArgumentError } from './errors.js';
import { checkInputAnswer } from './input-answers.js';
import { toJson, type Json } from './json.js';
import type { InputRequest, QuestionDeadline, TaskRecord } from './task.js';

export type { QuestionDeadline } from './task.js';

/**
 * What happens when a question's deadline passes unanswered (`AskOptions.onTimeout`). It is the tool
 * author's explicit policy — the engine never answers or cancels for a person otherwise:
 * - `{ default: answer }`: the question is answered with `answer`, checked like any answer (an MCP
 *   `ElicitResult` for `elicit` / `elicitUrl`, e.g. `{ action: 'accept', content: { … } }` matching
 *   the form's `requestedSchema`; a `CreateMessageResult` for `sample`; a `ListRootsResult` for
 *   `listRoots`). Journaled as answered by the `deadline` actor.
 * - `'decline'`: answered `{ action: 'decline' }` (elicitations only: `elicit`, `elicitUrl`).
 * - `'cancel'`: the task is cancelled (the handler sees the usual cancellation: `ctx.signal`
 *   aborts with a `TaskCancelledSignal`), journaled as cancelled by the `deadline` actor.
 * - `'escalate'`: nothing is answered; the question stays pending, marked escalated for operators
 *   (journal `escalated:<key>`, `QuestionDeadline.escalatedAt`, a warn log line and the
 *   `mcp_tasks.input.deadlines` metric), and the task keeps waiting.
 */
export type OnTimeout = 'decline' | 'cancel' | 'escalate' | { default: unknown };

/** The name of an `OnTimeout` policy as journaled and logged: `default`, `decline`, `cancel` or `escalate`. */
export type OnTimeoutKind = 'default' | 'decline' | 'cancel' | 'escalate';

/**
 * The deadline options of every question (`ctx.elicit`, `elicitUrl`, `sample`, `listRoots`; part of
 * `AskOptions`). All optional; without them a question waits for as long as the task lives.
 */
export interface QuestionDeadlineOptions {
  /**
   * Milliseconds from the question's first ask (its durable `asked:` journal entry: a restart or a
   * re-ask on another instance does not reset it) until `onTimeout` applies. A non-negative finite
   * number; not together with `deadline`.
   */
  timeoutMs?: number;
  /** An absolute deadline: a `Date` or an ISO 8601 date-time string (with a zone, e.g. `2026-12-01T09:00:00Z`). Not together with `timeoutMs`. */
  deadline?: Date | string;
  /** What happens at the deadline (see `OnTimeout`). Required with `timeoutMs` / `deadline`, refused without them. */
  onTimeout?: OnTimeout;
  /**
   * While the question is pending, re-announce it every `remindEveryMs` ms counted from its first
   * ask: a log line, a status write that moves the task's `lastUpdatedAt` (so `tasks/get` pollers and
   * `notifications/tasks/status` subscribers see it) and a journal entry `reminded:<key>:<n>`. A
   * positive finite number. Reminders go on after an `'escalate'` deadline; missed ones (while no
   * instance ran) are not replayed one by one: the latest is sent once.
   */
  remindEveryMs?: number;
}

/** Deadline options as checked and normalized (`resolveDeadline`): JSON only, ready to be stored. */
export interface DeadlineSpec {
  timeoutMs?: number;
  /** ISO 8601 (as `toISOString` writes it). */
  deadline?: string;
  onTimeout?: QuestionDeadline['onTimeout'];
  remindEveryMs?: number;
}

/** The `OnTimeoutKind` of a stored or given policy. */
export function onTimeoutKind(policy: DeadlineSpec['onTimeout'] | OnTimeout): OnTimeoutKind | undefined {
  if (policy === undefined) return undefined;
  return typeof policy === 'string' ? policy : 'default';
}

/** ISO 8601 date-time with a zone designator. */
const ISO_DATE_TIME = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(?::\d{2}(?:\.\d+)?)?(?:Z|[+-]\d{2}:\d{2})$/;

/**
 * Checks and normalizes the deadline options of a question asking `request` (see
 * `QuestionDeadlineOptions`). Returns undefined when none is given. Throws `InvalidArgumentError`
 * (`invalid_argument`; -32602 if it ever reached the wire) for: `timeoutMs` not a non-negative finite
 * number; `deadline` not a valid `Date` or ISO 8601 date-time with a zone; both given; `onTimeout`
 * missing with them, given without them, or not one of the four policies; `'decline'` for a
 * sampling or roots question; a `default` answer that does not fit the question (`checkInputAnswer`:
 * a form answer must match its `requestedSchema`); `remindEveryMs` not a positive finite number.
 */
export function resolveDeadline(options: QuestionDeadlineOptions | undefined, request: InputRequest): DeadlineSpec | undefined {
  const { timeoutMs, deadline, onTimeout, remindEveryMs } = options ?? {};
  if (timeoutMs === undefined && deadline === undefined && onTimeout === undefined && remindEveryMs === undefined) return undefined;
  const spec: DeadlineSpec = {};
  if (timeoutMs !== undefined) {
    if (typeof timeoutMs !== 'number' || !Number.isFinite(timeoutMs) || timeoutMs < 0)
      throw new InvalidArgumentError('timeoutMs must be a non-negative finite number of milliseconds');
    spec.timeoutMs = timeoutMs;
  }
  if (deadline !== undefined) {
    if (timeoutMs !== undefined) throw new InvalidArgumentError('Give timeoutMs or deadline, not both');
    const ms = deadline instanceof Date ? deadline.getTime() : typeof deadline === 'string' && ISO_DATE_TIME.test(deadline) ? Date.parse(deadline) : NaN;
    if (Number.isNaN(ms)) throw new InvalidArgumentError('deadline must be a valid Date or an ISO 8601 date-time with a zone (2026-12-01T09:00:00Z)');
    spec.deadline = new Date(ms).toISOString();
  }
  const timed = spec.timeoutMs !== undefined || spec.deadline !== undefined;
  if (timed && onTimeout === undefined)
    throw new InvalidArgumentError("onTimeout is required with timeoutMs or deadline: { default: answer }, 'decline', 'cancel' or 'escalate'");
  if (!timed && onTimeout !== undefined) throw new InvalidArgumentError('onTimeout needs timeoutMs or deadline');
  if (onTimeout !== undefined) spec.onTimeout = checkPolicy(onTimeout, request);
  if (remindEveryMs !== undefined) {
    if (typeof remindEveryMs !== 'number' || !Number.isFinite(remindEveryMs) || remindEveryMs <= 0)
      throw new InvalidArgumentError('remindEveryMs must be a positive finite number of milliseconds');
    spec.remindEveryMs = remindEveryMs;
  }
  return spec;
}

function checkPolicy(policy: unknown, request: InputRequest): NonNullable<DeadlineSpec['onTimeout']> {
  if (policy === 'cancel' || policy === 'escalate') return policy;
  if (policy === 'decline') {
    if (request.kind !== 'elicitation' && request.kind !== 'url')
      throw new InvalidArgumentError(`onTimeout 'decline' is for elicitations; a ${request.kind} question cannot be declined`);
    return policy;
  }
  if (typeof policy === 'object' && policy !== null && !Array.isArray(policy) && Object.hasOwn(policy, 'default')) {
    const check = checkInputAnswer(request, (policy as { default: unknown }).default);
    if (!check.valid) throw new InvalidArgumentError(`onTimeout's default answer does not fit the question: ${check.problems.join('; ')}`);
    return { default: toJson<Json>(check.answer) };
  }
  throw new InvalidArgumentError("onTimeout must be { default: answer }, 'decline', 'cancel' or 'escalate'");
}

/**
 * The stored deadline of a first ask at `askedAt` (ISO 8601) under `spec`: `dueAt` from `timeoutMs`
 * (counted from `askedAt`) or `deadline`.
 */
export function questionDeadlineOf(spec: DeadlineSpec, askedAt: string): QuestionDeadline {
  const dueAt = spec.deadline ?? (spec.timeoutMs !== undefined ? new Date(Date.parse(askedAt) + spec.timeoutMs).toISOString() : undefined);
  return {
    askedAt,
    ...(dueAt !== undefined && { dueAt }),
    ...(spec.onTimeout !== undefined && { onTimeout: spec.onTimeout }),
    ...(spec.remindEveryMs !== undefined && { remindEveryMs: spec.remindEveryMs }),
  };
}

/** A pending question whose deadline passed (`overdueQuestions`). */
export interface OverdueQuestion {
  key: string;
  /** ms since the epoch. */
  dueAt: number;
  escalated: boolean;
}

/**
 * The pending questions of `task` whose deadline passed at `now` (ms since the epoch), earliest
 * first: for operator views ("overdue", "escalated"). Empty unless the task is `input_required`.
 */
export function overdueQuestions(task: TaskRecord, now: number): OverdueQuestion[] {
  if (task.status !== 'input_required' || !task.questionDeadlines) return [];
  const overdue: OverdueQuestion[] = [];
  for (const [key, deadline] of Object.entries(task.questionDeadlines)) {
    if (!Object.hasOwn(task.inputRequests, key) || deadline.dueAt === undefined) continue;
    const dueAt = Date.parse(deadline.dueAt);
    if (dueAt <= now) overdue.push({ key, dueAt, escalated: deadline.escalatedAt !== undefined });
  }
  return overdue.sort((a, b) => a.dueAt - b.dueAt);
}
