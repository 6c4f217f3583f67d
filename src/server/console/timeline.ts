import {
  answeredKey,
  inputKey,
  parseJournalKey,
  resumedKey,
  type Actor,
  type AnsweredEntry,
  type AskedEntry,
  type CancelledEntry,
  type RetriedEntry,
  type RetryFrom,
  type RetryOfEntry,
  type DeadlineEntry,
  type ResumedEntry,
  type RunEntry,
  type StalledEntry,
  type UntilEntry,
} from '../../core/journal-keys.js';
import { DEADLINE_EXCEEDED } from '../../core/errors.js';
import type { Json } from '../../core/json.js';
import type { TaskRecord } from '../../core/task.js';
import { isTerminal } from '../../core/status.js';

/**
 * One row of a task's timeline in the operator console: something that happened (or is still
 * happening) at a point or over an interval. Times are ms since the epoch.
 */
export interface TimelineItem {
  kind: 'created' | 'step' | 'timer' | 'question' | 'deadline' | 'reminder' | 'run' | 'cancelled' | 'ended' | 'completion' | 'retry' | 'stall';
  /** What happened, e.g. `step validate-with-erp` or `question approval`. */
  label: string;
  /** A short account: a step's recorded value, the question and its answer, a run's instance. */
  detail?: string;
  start: number;
  /** End of the interval; undefined for a point in time, or for something still going on (see `state`). */
  end?: number;
  /** Timers: when the task wakes up. */
  due?: number;
  /** `done`/`failed` for finished work, `waiting` for a pending timer or question, `info` for points in time. */
  state: 'done' | 'failed' | 'waiting' | 'info';
  /** Who answered a question, cancelled the task or escalated a question (`deadline`). */
  by?: Actor;
}

interface StepRecord {
  ok: boolean;
  value?: Json;
  error?: { name: string; message: string };
  startedAt?: string;
  endedAt?: string;
}

const PREVIEW_CHARS = 160;

/**
 * A value shortened for one line of the timeline: a string as is, an object as `name: value`
 * pairs separated by ` · ` (nested values as JSON), anything else as JSON.
 */
export function preview(value: unknown): string {
  const text =
    typeof value === 'string'
      ? value
      : value !== null && typeof value === 'object' && !Array.isArray(value)
        ? Object.entries(value)
            .map(([name, v]) => `${name}: ${typeof v === 'string' ? v : JSON.stringify(v)}`)
            .join(' · ')
        : JSON.stringify(value);
  if (text === undefined) return '';
  return text.length > PREVIEW_CHARS ? `${text.slice(0, PREVIEW_CHARS - 1)}…` : text;
}

/**
 * Builds a task's timeline from its record and journal (see `src/core/journal-keys.ts` for the history
 * entries; steps and timers carry `startedAt`/`endedAt`): creation; each step with its start,
 * duration and recorded value (or error); each timer with its deadline; each question with when it
 * was asked, when and by whom it was answered and the answer (`answerOf` opens sealed answers);
 * each question's deadline (what happens then), reminders and escalation; restarts and takeovers;
 * operator retries; stall episodes (flagged → resumed); the task's deadline (when it has one,
 * `failed` when it ended the task); a cancellation; the end. Entries written by older versions without times
 * are placed at creation. Sorted by start time. `now` is ms since the epoch.
 */
export function buildTimeline(task: TaskRecord, journal: Map<string, Json>, answerOf: (key: string) => unknown, now: number): TimelineItem[] {
  const created = Date.parse(task.createdAt);
  const ended = isTerminal(task.status) ? Date.parse(task.lastUpdatedAt) : undefined;
  const items: TimelineItem[] = [
    { kind: 'created', label: 'created', detail: `${task.request.tool} by ${task.owner ?? 'anonymous'}`, start: created, state: 'info' },
  ];
  const at = (iso: string | undefined) => (iso ? Date.parse(iso) : created);
  /** A wait that began at `start` until `due` (ms; unknown for a malformed entry): woken once due or once the task ended. */
  const timerItem = (label: string, start: number, due: number | undefined): TimelineItem => {
    const fired = due !== undefined && (due <= now || ended !== undefined);
    return {
      kind: 'timer',
      label,
      detail: due === undefined ? 'timer' : `${fired ? 'woke at' : 'waits until'} ${new Date(due).toISOString()}`,
      start,
      ...(fired && { end: Math.min(due, ended ?? due) }),
      ...(due !== undefined && { due }),
      state: fired ? 'done' : 'waiting',
    };
  };

  for (const [key, value] of journal) {
    const parsed = parseJournalKey(key);
    if (parsed?.kind === 'step') {
      const record = value as unknown as StepRecord;
      items.push({
        kind: 'step',
        label: `step ${parsed.name}`,
        detail: record.ok ? (record.value === undefined ? 'done' : preview(record.value)) : `${record.error?.name}: ${record.error?.message}`,
        start: at(record.startedAt),
        end: record.endedAt ? Date.parse(record.endedAt) : at(record.startedAt),
        state: record.ok ? 'done' : 'failed',
      });
    } else if (parsed?.kind === 'timer') {
      // `ctx.sleep`: a journaled step whose value is the deadline (ms since the epoch).
      const record = value as unknown as StepRecord;
      const due = typeof record.value === 'number' ? record.value : undefined;
      items.push(timerItem(`timer ${parsed.n}`, at(record.startedAt), due));
    } else if (parsed?.kind === 'until') {
      // `ctx.sleepUntil`: an `UntilEntry`.
      const entry = value as unknown as UntilEntry;
      items.push(timerItem('waits for a date', at(entry.at), Date.parse(entry.due)));
    } else if (parsed?.kind === 'asked') {
      const question = parsed.question;
      const asked = value as unknown as AskedEntry;
      const answered = journal.get(answeredKey(question)) as unknown as AnsweredEntry | undefined;
      const hasAnswer = journal.has(inputKey(question));
      const answer = hasAnswer ? answerOf(question) : undefined;
      items.push({
        kind: 'question',
        label: `question ${question}`,
        detail: `${asked.message}${hasAnswer ? ` → ${answered?.cancels ? 'no answer in time: the task is cancelled' : describeAnswer(answer)}` : ''}`,
        start: at(asked.at),
        ...(hasAnswer ? { end: answered ? Date.parse(answered.at) : at(asked.at) } : ended !== undefined ? { end: ended } : {}),
        ...(answered && { by: answered.by }),
        state: hasAnswer ? 'done' : ended !== undefined ? 'failed' : 'waiting',
      });
    } else if (parsed?.kind === 'deadline') {
      // A question's deadline (`DeadlineEntry`): a wait like a timer's, over once answered or due.
      const entry = value as unknown as DeadlineEntry;
      if (entry.dueAt === undefined) continue; // reminders only: each reminder is its own row
      const due = Date.parse(entry.dueAt);
      const answered = journal.get(answeredKey(parsed.question)) as unknown as AnsweredEntry | undefined;
      const over = answered ? Math.min(Date.parse(answered.at), due) : due <= now || ended !== undefined ? Math.min(due, ended ?? due) : undefined;
      const then = { default: 'answered with its default', decline: 'declined', cancel: 'the task is cancelled', escalate: 'escalated to operators' };
      items.push({
        kind: 'deadline',
        label: `deadline of question ${parsed.question}`,
        detail: `due ${entry.dueAt}${entry.onTimeout ? `, then ${then[entry.onTimeout]}` : ''}${entry.remindEveryMs ? `; reminders every ${entry.remindEveryMs} ms` : ''}`,
        start: at(entry.at),
        ...(over !== undefined && { end: over }),
        due,
        state: over === undefined ? 'waiting' : 'done',
      });
    } else if (parsed?.kind === 'reminded') {
      const when = (value as { at?: string } | null)?.at;
      items.push({ kind: 'reminder', label: `reminder ${parsed.n} of question ${parsed.question}`, start: at(when), state: 'info' });
    } else if (parsed?.kind === 'escalated') {
      const when = (value as { at?: string } | null)?.at;
      items.push({
        kind: 'deadline',
        label: `question ${parsed.question} escalated`,
        detail: 'its deadline passed unanswered; it still waits',
        start: at(when),
        by: { role: 'deadline', name: null },
        state: 'info',
      });
    } else if (parsed?.kind === 'run') {
      const run = value as unknown as RunEntry;
      items.push({
        kind: 'run',
        label: run.reason === 'takeover' ? 'taken over' : run.reason === 'retry' ? 'run started again' : 'resumed after restart',
        detail: run.reason === 'takeover' ? `by ${run.holder} from ${run.previousHolder ?? 'an instance presumed dead'}` : `on ${run.holder}`,
        start: at(run.at),
        state: 'info',
      });
    } else if (parsed?.kind === 'retried') {
      const entry = value as unknown as RetriedEntry;
      const from = retryFromText(entry.from);
      items.push({
        kind: 'retry',
        label: 'run again',
        detail: `${from}${entry.successor ? ` as task ${entry.successor}` : ''}; ${entry.dropped.length} journal entr${entry.dropped.length === 1 ? 'y' : 'ies'} dropped${entry.clearedAnswers ? ', later answers cleared' : ''}`,
        start: at(entry.at),
        by: entry.by,
        state: 'info',
      });
    } else if (parsed?.kind === 'retry-of') {
      const entry = value as unknown as RetryOfEntry;
      items.push({
        kind: 'retry',
        label: 'runs a failed task again',
        detail: `task ${entry.taskId} ${retryFromText(entry.from)}`,
        start: at(entry.at),
        by: entry.by,
        state: 'info',
      });
    } else if (parsed?.kind === 'cancelled') {
      const entry = value as unknown as CancelledEntry;
      items.push({ kind: 'cancelled', label: 'cancel requested', start: at(entry.at), by: entry.by, state: 'info' });
    } else if (parsed?.kind === 'stalled') {
      // A stall episode: from its flag to the activity that ended it (`resumed:<since>`), the end, or now.
      const entry = value as unknown as StalledEntry;
      const resumed = journal.get(resumedKey(parsed.since)) as unknown as ResumedEntry | undefined;
      const end = resumed ? Date.parse(resumed.at) : ended;
      items.push({
        kind: 'stall',
        label: 'stalled',
        detail: `no activity since ${entry.since} (stallAfterMs ${entry.afterMs})${resumed ? `; resumed with ${resumed.activity}` : ''}`,
        start: at(entry.at),
        ...(end !== undefined && { end }),
        state: resumed ? 'done' : ended !== undefined ? 'failed' : 'waiting',
      });
    } else if (parsed?.kind === 'elicitation-complete') {
      const when = (value as { at?: string } | null)?.at;
      items.push({ kind: 'completion', label: 'out-of-band step completed', start: at(when), state: 'info' });
    }
  }
  const deadline = task.deadline ? Date.parse(task.deadline) : undefined;
  if (task.deadline && deadline !== undefined && deadline <= (ended ?? now)) {
    const missed = task.outcome?.type === 'error' && task.outcome.error.code === DEADLINE_EXCEEDED;
    items.push({
      kind: 'deadline',
      label: missed ? 'deadline exceeded' : 'deadline',
      detail: task.deadline,
      start: deadline,
      state: missed ? 'failed' : 'info',
    });
  }
  if (ended !== undefined) {
    const outcome = task.outcome;
    const toolError = outcome?.type === 'result' && outcome.result.isError === true;
    const detail =
      outcome?.type === 'error'
        ? `error: ${outcome.error.message} (code ${outcome.error.code})`
        : outcome?.type === 'result'
          ? toolError
            ? `the tool returned an error${firstText(outcome.result) ? `: ${firstText(outcome.result)}` : ''}`
            : 'with a result'
          : (task.statusMessage ?? '');
    items.push({
      kind: 'ended',
      // Worded as the console counts it: a tool error is a failure, whatever status the client sees.
      label: toolError ? 'failed' : task.status,
      detail,
      start: ended,
      state: task.status === 'completed' && !toolError ? 'done' : 'failed',
    });
  }
  return items.sort((a, b) => a.start - b.start || order(a) - order(b));
}

/** Where an operator retry started, in words (`from step pay:L1`, `from the start`, `from where it stopped`). */
function retryFromText(from: RetryFrom | undefined): string {
  return typeof from === 'object' ? `from step ${from.step}` : from === 'start' ? 'from the start' : 'from where it stopped';
}

/** Ties: creation first, the end last. */
function order(item: TimelineItem): number {
  return item.kind === 'created' ? -1 : item.kind === 'ended' ? 1 : 0;
}

/** The first text of a tool result's content, if any. */
function firstText(result: { content?: unknown }): string | undefined {
  const text = Array.isArray(result.content) ? (result.content as { type?: unknown; text?: unknown }[]).find((c) => c.type === 'text')?.text : undefined;
  return typeof text === 'string' ? text : undefined;
}

/**
 * One line for an answer, in an operator's words rather than the protocol's: a form's fields
 * (`answered: decision = reject; comment = wrong PO`), `agreed` for a link or form accepted with
 * nothing to show, `declined`, `cancelled (dismissed without an answer)`; a model's reply (sampling)
 * by its model and first text; shared folders (roots) by their URIs.
 */
export function describeAnswer(answer: unknown): string {
  if (answer === null || typeof answer !== 'object') return 'answered';
  const { action, content, model, roots } = answer as { action?: unknown; content?: unknown; model?: unknown; roots?: unknown };
  if (action === 'decline') return 'declined';
  if (action === 'cancel') return 'cancelled (dismissed without an answer)';
  if (action === 'accept') {
    const fields = content !== null && typeof content === 'object' ? Object.entries(content as Record<string, unknown>) : [];
    if (fields.length === 0) return 'agreed';
    return `answered: ${preview(fields.map(([name, v]) => `${name} = ${Array.isArray(v) ? v.join(', ') : String(v)}`).join('; '))}`;
  }
  if (typeof model === 'string') {
    const blocks = [(answer as { content?: unknown }).content].flat() as { type?: unknown; text?: unknown }[];
    const text = blocks.find((b) => b?.type === 'text')?.text;
    return `answered by model ${model}${typeof text === 'string' ? `: ${preview(text)}` : ''}`;
  }
  if (Array.isArray(roots)) {
    const uris = roots.map((r: { uri?: unknown }) => (typeof r?.uri === 'string' ? r.uri : '?'));
    return uris.length === 0 ? 'shared no folders' : `shared ${uris.length === 1 ? 'a folder' : `${uris.length} folders`}: ${preview(uris.join(', '))}`;
  }
  return `answered: ${preview(answer)}`;
}
