import type { Json } from './json.js';
import type { OnTimeoutKind } from './question-deadline.js';
import type { InputKind } from './task.js';

/**
 * The vocabulary of a task's journal, in one place: every key mcp-tasks writes into it, what the
 * entry under it records, the shape of its value and who writes it. Nothing else spells a key.
 *
 * A journal is a task's append-only map of key → JSON value (`StoreBackend.appendJournal`): every
 * key is written once, the first write wins, and it is deleted with its task. Two kinds of entry
 * share it:
 * - entries execution replays after a restart (`step:`, `timer:`, `elicitation-id:`, `input:`,
 *   `elicitation-complete:`, `mrtr:request-state-key`): what makes a handler's run durable;
 * - history entries nothing replays (`asked:`, `answered:`, `run:`, `until:`, `cancelled`,
 *   `deadline:`, `reminded:`, `escalated:`, `stalled:`, `resumed:`, `retried:`, `retry-of-task`):
 *   what a task did, for the operator console's timeline and for metrics (`reminded:` and
 *   `escalated:` also make each reminder and escalation happen once across instances: first
 *   write wins).
 *
 * Keys are stored as spelled here and existing databases hold them: a spelling never changes. All
 * times are ISO 8601 (UTC, milliseconds, as `Date.prototype.toISOString` writes them) unless a field
 * says ms since the epoch.
 *
 * | key                         | value                                 | written by                                |
 * | --------------------------- | ------------------------------------- | ----------------------------------------- |
 * | `step:<name>`               | `StepRecord` (the step's outcome)     | `ctx.step` (runtime `ExecutionContext`)   |
 * | `timer:<n>`                 | `StepRecord` (value: due, ms)         | `ctx.sleep`                               |
 * | `elicitation-id:<question>` | `StepRecord` (value: the id)          | `ctx.elicitUrl`                           |
 * | `elicitation-complete:<id>` | `ElicitationCompleteEntry`            | `TaskRuntime.completeElicitation`         |
 * | `input:<question>`          | the answer (`InputAnswer`, or sealed) | `TaskStore.answerInputs`                  |
 * | `asked:<question>`          | `AskedEntry`                          | `TaskStore.requestInput`                  |
 * | `answered:<question>`       | `AnsweredEntry`                       | `TaskStore.answerInputs`                  |
 * | `run:<at>:<holder>`         | `RunEntry`                            | `TaskRuntime` (each run after the first)  |
 * | `until:<due>`               | `UntilEntry`                          | `ctx.sleepUntil`                          |
 * | `cancelled`                 | `CancelledEntry`                      | `TaskStore.cancel`                        |
 * | `deadline:<question>`       | `DeadlineEntry`                       | `TaskStore.requestInput` (with a deadline)|
 * | `reminded:<question>:<n>`   | `RemindedEntry`                       | runtime `QuestionDeadlines`               |
 * | `escalated:<question>`      | `EscalatedEntry`                      | runtime `QuestionDeadlines`               |
 * | `stalled:<since>`           | `StalledEntry`                        | `TaskRuntime` (stall detection)           |
 * | `resumed:<since>`           | `ResumedEntry`                        | `TaskRuntime` (stall detection)           |
 * | `mrtr:request-state-key`    | the `requestState` key (or sealed)    | the 2026-07-28 wire (MRTR `requestState`) |
 */

/**
 * Value of a journaled computation — `step:<name>`, `timer:<n>` (`value`: the due time, ms since the
 * epoch) and `elicitation-id:<question>` (`value`: the flow's id): the value (absent for
 * `undefined`) or the error, and when the run that recorded it started and finished computing it
 * (`startedAt`, `endedAt`, ISO 8601 on the runtime's clock; for a timer, when it started waiting),
 * for the task's timeline. Replay reads only `ok`, `value` and `error`; records written before the
 * times existed lack them.
 */
export type StepRecord = ({ ok: true; value?: Json } | { ok: false; error: { name: string; message: string } }) & {
  startedAt?: string;
  endedAt?: string;
  /**
   * The call's position in its run (1-based, counting `ctx.step`, `ctx.sleep` and URL-elicitation
   * ids in call order): the same on every run of a deterministic handler, so an operator retry can
   * tell which steps came before another even within one millisecond. Absent in records written
   * before it existed, and in those of the DBOS and Restate executors.
   */
  seq?: number;
};

/**
 * Who did something to a task: a principal (the requestor's identity, `null` when anonymous), an
 * operator (by name), the engine itself, or a question's deadline (`deadline`: the `onTimeout`
 * policy the tool's author chose, applied when the deadline passed).
 */
export interface Actor {
  role: 'principal' | 'operator' | 'engine' | 'deadline';
  /** The principal or operator name; `null` for the anonymous principal, the engine and a deadline. */
  name: string | null;
}

/** Value of `asked:<question>`: the question was first asked at `at` (a re-ask after a restart keeps it). */
export interface AskedEntry {
  at: string;
  kind: InputKind;
  message: string;
}

/** Value of `answered:<question>`: the question was answered at `at` by `by` (the answer itself is `input:<question>`). */
export interface AnsweredEntry {
  at: string;
  by: Actor;
  /**
   * Set when a `'cancel'` deadline took the question (`TaskStore.claimQuestion`): the task is
   * cancelled, and the `{ action: 'cancel' }` stored under `input:<question>` — which only keeps
   * anyone else from answering — is never handed to the handler (`TaskStore.inputAnswer`).
   */
  cancels?: true;
}

/**
 * Value of `run:<at>:<holder>`: an execution started again after a restart (`recovery`), on
 * another instance (`takeover`), or after a store outage interrupted the previous one (`retry`).
 */
export interface RunEntry {
  at: string;
  holder: string;
  reason: 'recovery' | 'takeover' | 'retry';
  /** The instance that held the task before a takeover. */
  previousHolder?: string;
}

/** Value of `until:<due>`: from `at`, the task waits until `due` (`ctx.sleepUntil`; `ctx.sleep` timers are `timer:<n>` steps). */
export interface UntilEntry {
  at: string;
  due: string;
}

/** Value of `cancelled`: the task was cancelled at `at` by `by` (history only: the cancel stands even when this entry could not be written). */
export interface CancelledEntry {
  at: string;
  by: Actor;
}

/**
 * Where an operator retry starts: `{ step }` — that recorded step, which runs again with every later
 * one; `'start'` — every step runs again; `'stopped'` — where the task stopped: the steps that
 * failed (and whatever began after the first of them) run again, every other recorded step is
 * kept (a task stuck in a step that never finished keeps them all). See `TaskRuntime.retry`.
 */
export type RetryFrom = { step: string } | 'start' | 'stopped';

/**
 * Value of `retried:<at>`: at `at`, operator `by` had the task run again from `from` (see
 * `RetryFrom`: the recorded steps before that point kept, the others run again).
 * `successor`: the task that runs it again, when this one had ended (terminal tasks never change
 * status: MCP 2025-11-25 "Task Status Lifecycle"); absent when this task itself runs again (it was
 * `working`). `dropped`: the journal keys the new run does not replay; `clearedAnswers`: whether
 * answers given after that point were dropped too (else they are replayed).
 */
export interface RetriedEntry {
  at: string;
  by: Actor;
  from: RetryFrom;
  successor?: string;
  dropped: string[];
  clearedAnswers: boolean;
}

/** Value of `retry-of-task`: this task runs task `taskId` again from `from` (see `RetriedEntry`), created at `at` by `by`. */
export interface RetryOfEntry {
  at: string;
  by: Actor;
  taskId: string;
  from: RetryFrom;
}

/**
 * Value of `deadline:<question>`: the question, first asked at `at`, has a deadline `dueAt` (absent
 * when it only has reminders) with policy `onTimeout` (its kind: the default answer itself is kept
 * with the task, see `QuestionDeadline`), and reminders every `remindEveryMs` ms. First write wins,
 * so a re-ask keeps the first deadline.
 */
export interface DeadlineEntry {
  at: string;
  dueAt?: string;
  onTimeout?: OnTimeoutKind;
  remindEveryMs?: number;
}

/** Value of `reminded:<question>:<n>`: reminder `n` (1, 2, …) of the pending question was sent at `at`. */
export interface RemindedEntry {
  at: string;
}

/** Value of `escalated:<question>`: the question's `'escalate'` deadline passed unanswered; marked at `at`. */
export interface EscalatedEntry {
  at: string;
}

/** Value of `elicitation-complete:<id>`: the out-of-band flow `id` reported its completion at `at` (readers test presence only). */
export interface ElicitationCompleteEntry {
  at: string;
}

/**
 * Value of `stalled:<since>`: the task was flagged stalled at `at` — `working` with no activity
 * (step, progress, status message, question or answer) since `since`, longer than its tool's
 * `stallAfterMs` (`afterMs`). One entry per stall episode: `since` names the episode, so flagging
 * it again (another run of the same instance after an outage) keeps the first entry.
 */
export interface StalledEntry {
  at: string;
  since: string;
  afterMs: number;
}

/**
 * What ended a stall: a step began or ended, progress or a status message was reported, a question
 * was asked or answered, a durable timer began or ended, or the task's run started again (`run`: a
 * restart, takeover or retry).
 */
export type ActivityKind = 'step' | 'progress' | 'status' | 'question' | 'answer' | 'timer' | 'run';

/** Value of `resumed:<since>`: the stall episode `since` (see `StalledEntry`) ended at `at` with `activity`. */
export interface ResumedEntry {
  at: string;
  activity: ActivityKind;
}

const STEP = 'step:';
const TIMER = 'timer:';
const ELICITATION_ID = 'elicitation-id:';
const ELICITATION_COMPLETE = 'elicitation-complete:';
const INPUT = 'input:';
const ASKED = 'asked:';
const ANSWERED = 'answered:';
const RUN = 'run:';
const UNTIL = 'until:';
const RETRIED = 'retried:';
const DEADLINE = 'deadline:';
const REMINDED = 'reminded:';
const ESCALATED = 'escalated:';
const STALLED = 'stalled:';
const RESUMED = 'resumed:';

/**
 * Key of step `name` (`ctx.step`; names are non-empty and unique per task): its `StepRecord`.
 */
export const stepKey = (name: string): string => `${STEP}${name}`;

/**
 * Key of a `ctx.sleep` timer: `n` is the call's position in the run (a positive integer, counted
 * with the run's default question keys, the same on every run of a deterministic handler). Its
 * `StepRecord` holds the due time (ms since the epoch).
 */
export const timerKey = (n: number): string => `${TIMER}${n}`;

/** Key of the `elicitationId` chosen for URL question `question` (`ctx.elicitUrl`): a `StepRecord` whose value is the id. */
export const elicitationIdKey = (question: string): string => `${ELICITATION_ID}${question}`;

/** Key recording that the out-of-band flow `elicitationId` completed: an `ElicitationCompleteEntry`. */
export const elicitationCompleteKey = (elicitationId: string): string => `${ELICITATION_COMPLETE}${elicitationId}`;

/**
 * Key of the answer to question `question`: an `InputAnswer` as checked by the store (sealed with
 * `SecretBox` when a `secretKey` is configured). Its presence is what makes the question answered.
 */
export const inputKey = (question: string): string => `${INPUT}${question}`;

/** Key of the `AskedEntry` of question `question`. */
export const askedKey = (question: string): string => `${ASKED}${question}`;

/** Key of the `AnsweredEntry` of question `question`. */
export const answeredKey = (question: string): string => `${ANSWERED}${question}`;

/**
 * Key of a `RunEntry`: `at` is when the run started (ISO 8601 as `toISOString` writes it, ending in
 * `Z`), `holder` the instance that runs it.
 */
export const runKey = (at: string, holder: string): string => `${RUN}${at}:${holder}`;

/** Key of an `UntilEntry` (`due`: ISO 8601 as `toISOString` writes it). */
export const untilKey = (due: string): string => `${UNTIL}${due}`;

/** Key of the `DeadlineEntry` of question `question`. */
export const deadlineKey = (question: string): string => `${DEADLINE}${question}`;

/** Key of reminder `n` (a positive integer) of question `question`: a `RemindedEntry`. */
export const remindedKey = (question: string, n: number): string => `${REMINDED}${question}:${n}`;

/** Key of the `EscalatedEntry` of question `question`. */
export const escalatedKey = (question: string): string => `${ESCALATED}${question}`;
/** Key of the `StalledEntry` of the stall episode whose last activity was at `since` (ISO 8601 as `toISOString` writes it). */
export const stalledKey = (since: string): string => `${STALLED}${since}`;

/** Key of the `ResumedEntry` that ended stall episode `since` (the `since` of its `stalledKey`). */
export const resumedKey = (since: string): string => `${RESUMED}${since}`;

/** Key of the `CancelledEntry`. */
export const CANCELLED_KEY = 'cancelled';

/** Key of a `RetriedEntry` (`at`: ISO 8601 as `toISOString` writes it). */
export const retriedKey = (at: string): string => `${RETRIED}${at}`;

/** Key of the `RetryOfEntry` of a task created by an operator retry. */
export const RETRY_OF_KEY = 'retry-of-task';

/**
 * Key of the task's `requestState` key: the secret (32 random bytes, base64url; sealed with
 * `SecretBox` when a `secretKey` is configured) that signs the `requestState` of the task's MRTR
 * rounds on the 2026-07-28 wire, created with the first one.
 */
export const REQUEST_STATE_KEY = 'mrtr:request-state-key';

/** A journal key taken apart: its kind and what it names (see the builders for each part). */
export type JournalKey =
  | { kind: 'step'; name: string }
  | { kind: 'timer'; n: number }
  | { kind: 'elicitation-id'; question: string }
  | { kind: 'elicitation-complete'; elicitationId: string }
  | { kind: 'input'; question: string }
  | { kind: 'asked'; question: string }
  | { kind: 'answered'; question: string }
  | { kind: 'run'; at: string; holder: string }
  | { kind: 'until'; due: string }
  | { kind: 'deadline'; question: string }
  | { kind: 'reminded'; question: string; n: number }
  | { kind: 'escalated'; question: string }
  | { kind: 'cancelled' }
  | { kind: 'stalled'; since: string }
  | { kind: 'resumed'; since: string }
  | { kind: 'request-state-key' }
  | { kind: 'retried'; at: string }
  | { kind: 'retry-of' };

/** Every `JournalKey['kind']`. */
export type JournalKeyKind = JournalKey['kind'];

/** `run:<at>:<holder>`: `at` ends at its `Z` (a holder may hold `:` and `Z` itself). */
const RUN_PARTS = /^([^Z]*Z):([\s\S]*)$/;
/** `reminded:<question>:<n>`: `n` after the last `:` (a question key may hold `:` itself). */
const REMINDED_PARTS = /^([\s\S]*):([1-9]\d*)$/;

/** Each prefixed kind: its prefix, and how the rest of a key parses (undefined: malformed). No prefix is another's prefix. */
const PREFIXED: [prefix: string, parse: (rest: string) => JournalKey | undefined][] = [
  [STEP, (name) => ({ kind: 'step', name })],
  [TIMER, (n) => (/^(?:0|[1-9]\d*)$/.test(n) && Number.isSafeInteger(Number(n)) ? { kind: 'timer', n: Number(n) } : undefined)],
  [ELICITATION_ID, (question) => ({ kind: 'elicitation-id', question })],
  [ELICITATION_COMPLETE, (elicitationId) => ({ kind: 'elicitation-complete', elicitationId })],
  [INPUT, (question) => ({ kind: 'input', question })],
  [ASKED, (question) => ({ kind: 'asked', question })],
  [ANSWERED, (question) => ({ kind: 'answered', question })],
  [
    RUN,
    (rest) => {
      const match = RUN_PARTS.exec(rest);
      return match ? { kind: 'run', at: match[1]!, holder: match[2]! } : undefined;
    },
  ],
  [UNTIL, (due) => ({ kind: 'until', due })],
  [RETRIED, (at) => ({ kind: 'retried', at })],
  [DEADLINE, (question) => ({ kind: 'deadline', question })],
  [
    REMINDED,
    (rest) => {
      const match = REMINDED_PARTS.exec(rest);
      return match && Number.isSafeInteger(Number(match[2])) ? { kind: 'reminded', question: match[1]!, n: Number(match[2]) } : undefined;
    },
  ],
  [ESCALATED, (question) => ({ kind: 'escalated', question })],
  [STALLED, (since) => ({ kind: 'stalled', since })],
  [RESUMED, (since) => ({ kind: 'resumed', since })],
];

/**
 * Takes `key` apart (the inverse of the builders: `formatJournalKey(parseJournalKey(k)!) === k` for
 * every key they build). Returns undefined for a key that is none of the above (an entry of a later
 * version, a malformed `timer:` or `run:` key): readers skip it.
 */
export function parseJournalKey(key: string): JournalKey | undefined {
  if (key === CANCELLED_KEY) return { kind: 'cancelled' };
  if (key === REQUEST_STATE_KEY) return { kind: 'request-state-key' };
  if (key === RETRY_OF_KEY) return { kind: 'retry-of' };
  for (const [prefix, parse] of PREFIXED) if (key.startsWith(prefix)) return parse(key.slice(prefix.length));
  return undefined;
}

/** The key `parsed` stands for (the builder of its kind applied to its parts). */
export function formatJournalKey(parsed: JournalKey): string {
  switch (parsed.kind) {
    case 'step':
      return stepKey(parsed.name);
    case 'timer':
      return timerKey(parsed.n);
    case 'elicitation-id':
      return elicitationIdKey(parsed.question);
    case 'elicitation-complete':
      return elicitationCompleteKey(parsed.elicitationId);
    case 'input':
      return inputKey(parsed.question);
    case 'asked':
      return askedKey(parsed.question);
    case 'answered':
      return answeredKey(parsed.question);
    case 'run':
      return runKey(parsed.at, parsed.holder);
    case 'until':
      return untilKey(parsed.due);
    case 'deadline':
      return deadlineKey(parsed.question);
    case 'reminded':
      return remindedKey(parsed.question, parsed.n);
    case 'escalated':
      return escalatedKey(parsed.question);
    case 'cancelled':
      return CANCELLED_KEY;
    case 'stalled':
      return stalledKey(parsed.since);
    case 'resumed':
      return resumedKey(parsed.since);
    case 'request-state-key':
      return REQUEST_STATE_KEY;
    case 'retried':
      return retriedKey(parsed.at);
    case 'retry-of':
      return RETRY_OF_KEY;
  }
}

/**
 * Whether `journal` (a task's, by key) shows that the task asked a URL elicitation under
 * `elicitationId`: an `elicitation-id:` step recorded that id. What `completeElicitation` checks
 * before it records a completion.
 */
export function asksUrlElicitation(journal: Map<string, Json>, elicitationId: string): boolean {
  for (const [key, value] of journal) {
    if (parseJournalKey(key)?.kind !== 'elicitation-id') continue;
    const record = value as StepRecord | null;
    if (record?.ok && record.value === elicitationId) return true;
  }
  return false;
}
