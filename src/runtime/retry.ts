import { InvalidArgumentError } from '../core/errors.js';
import {
  answeredKey,
  askedKey,
  parseJournalKey,
  stepKey,
  type AnsweredEntry,
  type AskedEntry,
  type RetryFrom,
  type StepRecord,
  type UntilEntry,
} from '../core/journal-keys.js';
import type { Json } from '../core/json.js';

export type { RetryFrom };

/**
 * Which journal entries an operator retry keeps (`keep`, replayed by the new run) and which it
 * drops (`drop`, done again), for a retry from `from` (see `RetryFrom`):
 *
 * - Steps, `ctx.sleep` timers and URL-elicitation ids (`StepRecord`s) that began before the point
 *   `from` names are kept; everything that began at or after it is dropped.
 * - Answers (`input:` and `answered:`) given before that point are kept; later ones are kept too
 *   unless `clearAnswers` (then their questions are asked again). A question's `asked:` entry
 *   follows its answer, or, unanswered, is kept only when asked before that point.
 * - `until:` entries (history of `ctx.sleepUntil`) follow the same rule by their start; a question's
 *   deadline, reminders and escalation (`deadline:`, `reminded:`, `escalated:`) follow its `asked:`.
 * - History (`run:`, `retried:`, `retry-of`, `cancelled`), completed URL flows and the MRTR key are
 *   kept; keys of later versions are kept.
 *
 * Throws `InvalidArgumentError` when `from.step` is not a step of the journal, or was recorded
 * without its start time (by a release older than step times).
 */
export function retryPlan(journal: Map<string, Json>, from: RetryFrom, clearAnswers: boolean): { keep: Map<string, Json>; drop: string[] } {
  // The point is a recorded call: its start time, and its position in the run (`seq`), which orders
  // the calls of one millisecond. Undefined: nothing is cut (`'stopped'` with no failed step).
  let point: { at: string; seq?: number } | undefined = { at: '' };
  if (typeof from === 'object') {
    const chosen = journal.get(stepKey(from.step)) as StepRecord | undefined;
    if (!chosen) throw new InvalidArgumentError(`Task has no recorded step '${from.step}' (its steps: ${stepsOf(journal).join(', ') || 'none'})`);
    if (chosen.startedAt === undefined) throw new InvalidArgumentError(`Step '${from.step}' was recorded without its start time: retry from the start instead`);
    point = { at: chosen.startedAt, ...(chosen.seq !== undefined && { seq: chosen.seq }) };
  } else if (from === 'stopped') {
    point = undefined;
    for (const [key, value] of journal) {
      const record = value as StepRecord | null;
      if (parseJournalKey(key)?.kind !== 'step' || record?.ok !== false) continue;
      const at = { at: record.startedAt ?? '', ...(record.seq !== undefined && { seq: record.seq }) };
      if (!point || comesBefore(at, point)) point = at;
    }
  }
  /** Whether a call recorded at `at` (with `seq`) came before the point. */
  const before = (at: string | undefined, seq?: number) => {
    if (point === undefined) return true;
    if (at === undefined) return false;
    return comesBefore({ at, ...(seq !== undefined && { seq }) }, point);
  };
  const answerKept = (question: string): boolean | undefined => {
    const answered = journal.get(answeredKey(question)) as AnsweredEntry | undefined;
    if (!answered) return undefined;
    return before(answered.at) || !clearAnswers;
  };
  const askedKept = (question: string): boolean => answerKept(question) ?? before((journal.get(askedKey(question)) as AskedEntry | undefined)?.at);
  const keep = new Map<string, Json>();
  const drop: string[] = [];
  for (const [key, value] of journal) {
    const parsed = parseJournalKey(key);
    let kept: boolean;
    switch (parsed?.kind) {
      case 'step':
      case 'timer':
      case 'elicitation-id':
        kept = before((value as StepRecord | null)?.startedAt, (value as StepRecord | null)?.seq);
        break;
      case 'input':
      case 'answered':
        kept = answerKept(parsed.question) ?? !clearAnswers;
        break;
      case 'asked':
        kept = askedKept(parsed.question);
        break;
      case 'deadline':
      case 'reminded':
      case 'escalated':
        // A question's deadline and what it did follow the question: asked again, it gets them afresh.
        kept = askedKept(parsed.question);
        break;
      case 'until':
        kept = before((value as UntilEntry | null)?.at);
        break;
      default:
        kept = true;
    }
    if (kept) keep.set(key, value);
    else drop.push(key);
  }
  return { keep, drop };
}

/** The names of the steps recorded in `journal`, in the order they began (those without a start time last). */
export function stepsOf(journal: Map<string, Json>): string[] {
  const steps: [name: string, at: string][] = [];
  for (const [key, value] of journal) {
    const parsed = parseJournalKey(key);
    if (parsed?.kind === 'step') steps.push([parsed.name, (value as StepRecord | null)?.startedAt ?? '\uffff']);
  }
  return steps.sort((a, b) => (a[1] < b[1] ? -1 : a[1] > b[1] ? 1 : 0)).map(([name]) => name);
}

/** The journal keys a successor task does not inherit: the history of the task it runs again. */
export function isHistoryKey(key: string): boolean {
  const kind = parseJournalKey(key)?.kind;
  return kind === 'run' || kind === 'retried' || kind === 'retry-of' || kind === 'cancelled' || kind === 'request-state-key' || kind === undefined;
}

/** Whether a call at `a` came before one at `b`: by position in the run when both have one (same run order on every run), else by start time. */
function comesBefore(a: { at: string; seq?: number }, b: { at: string; seq?: number }): boolean {
  if (a.seq !== undefined && b.seq !== undefined) return a.seq < b.seq;
  return a.at < b.at;
}
