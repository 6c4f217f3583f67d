import { ENGINE_ACCESS } from '../core/access.js';
import { IllegalTransitionError, InvalidAnswerError, TaskNotFoundError } from '../core/errors.js';
import { DEADLINE_ACTOR } from '../core/history.js';
import { escalatedKey, remindedKey, type EscalatedEntry, type RemindedEntry } from '../core/journal-keys.js';
import type { Json } from '../core/json.js';
import type { Logger } from '../core/log.js';
import { onTimeoutKind, type QuestionDeadline } from '../core/question-deadline.js';
import { isTerminal } from '../core/status.js';
import type { TaskRecord } from '../core/task.js';
import type { TaskStore } from '../store/task-store.js';
import { recordDeadline } from './telemetry.js';
import { TimerQueue } from './timer-queue.js';

/** What `QuestionDeadlines` acts through (the `TaskRuntime`'s own paths, so every executor is told). */
export interface QuestionDeadlinesHost {
  store: TaskStore;
  log: Logger;
  /** The runtime's clock (ms since the epoch; the store's as last measured): what timers are armed on. */
  now: () => number;
  /** Answers `key` as the `deadline` actor (`TaskRuntime.provideInputs`); resolves true when this answer was taken (first wins). */
  answer(taskId: string, key: string, answer: Json): Promise<boolean>;
  /** Cancels the task as the `deadline` actor (`TaskRuntime.cancel`). */
  cancel(taskId: string): Promise<void>;
}

/** Longest wait before a deadline that failed (a store outage) is tried again, ms. */
const MAX_RETRY_MS = 30_000;

/**
 * The deadlines and reminders of pending questions (`AskOptions.timeoutMs` / `deadline`,
 * `onTimeout`, `remindEveryMs`), for every executor alike. A question's deadline lives in the store
 * (`TaskRecord.questionDeadlines`, journal `deadline:<key>`); this only wakes up and acts:
 *
 * - Armed for each question asked with one in this process (`TaskStore.onQuestionDeadline`), each
 *   one found pending at start-up (`armPending`, from `TaskRuntime.recover`), and each one a watched
 *   task's record shows (another instance's ask heard of). One `TimerQueue` (one `setTimeout`) for
 *   all, one entry per pending question, and a listener on that question's task (`onTaskChange`)
 *   that drops the entry once the question is answered: nothing at all when no question has a deadline.
 * - A wake-up by this process's clock is confirmed by the store's own (`TaskStore.clockNow`): an
 *   early wake (a clock ahead) waits for the rest, so nothing fires early by the store's clock. A
 *   deadline already past at start-up fires at once.
 * - At the deadline the question is re-read; if it is still pending its `onTimeout` applies through
 *   the normal paths, each decided by a first-write-wins store write, so several instances (each
 *   armed for the same question) and a person answering at the same instant yield one outcome: an
 *   answer (`default`, `decline`) via `TaskRuntime.provideInputs` (the `input:<key>` entry decides);
 *   `cancel` by taking `input:<key>` (`TaskStore.claimQuestion`) and then `TaskRuntime.cancel`;
 *   `escalate` by the journal entry `escalated:<key>`. The actor is `DEADLINE_ACTOR`.
 * - Reminder `n` is sent at `askedAt + n × remindEveryMs` by whoever writes `reminded:<key>:<n>`
 *   first (a log line, the `mcp_tasks.input.deadlines` metric, `TaskStore.markQuestion`).
 * - A store failure is never an outcome: the step is tried again after a growing wait (0.5 s … 30 s).
 */
export class QuestionDeadlines {
  private readonly timers: TimerQueue;
  /** Per task with armed questions: each question's stop (or `done`: its deadline did all it does) and the task's change listener. */
  private readonly tasks = new Map<string, { keys: Map<string, AbortController | 'done'>; unsubscribe: () => void }>();
  private readonly unsubscribe: () => void;
  private closed = false;

  constructor(private readonly host: QuestionDeadlinesHost) {
    this.timers = new TimerQueue(host.now);
    this.unsubscribe = host.store.onQuestionDeadline((task) => this.watch(task));
  }

  /** Arms every pending question with a deadline or reminders in the store (start-up, recovery). Returns how many tasks have some. */
  async armPending(): Promise<number> {
    let count = 0;
    for (const task of await this.host.store.listUnfinished()) if (this.watch(task)) count++;
    if (count > 0) this.host.log.info({ tasks: count }, 'question deadlines armed');
    return count;
  }

  /** Questions armed now (for tests and the lifetime checks). */
  get armed(): number {
    let count = 0;
    for (const { keys } of this.tasks.values()) for (const state of keys.values()) if (state !== 'done') count++;
    return count;
  }

  /** Stops every timer and listener (the deadlines stay in the store for the next start or another instance). */
  close(): void {
    this.closed = true;
    this.unsubscribe();
    for (const taskId of [...this.tasks.keys()]) this.drop(taskId);
    this.timers.close();
  }

  /** Arms the pending questions of `task` that have a deadline and are not armed yet. Returns whether it has any. */
  private watch(task: TaskRecord): boolean {
    if (this.closed || task.status !== 'input_required' || !task.questionDeadlines) return false;
    let any = false;
    for (const [key, deadline] of Object.entries(task.questionDeadlines)) {
      if (!Object.hasOwn(task.inputRequests, key)) continue;
      any = true;
      let watched = this.tasks.get(task.taskId);
      if (!watched) {
        const taskId = task.taskId;
        watched = { keys: new Map(), unsubscribe: this.host.store.onTaskChange(taskId, (current) => this.changed(taskId, current)) };
        this.tasks.set(taskId, watched);
      }
      if (watched.keys.has(key)) continue;
      const stop = new AbortController();
      watched.keys.set(key, stop);
      void this.run(task.taskId, task.request.tool, key, deadline, stop.signal).then(() => {
        if (watched.keys.get(key) === stop) watched.keys.set(key, 'done');
      });
    }
    return any;
  }

  /** A write to a watched task: questions no longer pending are dropped, new ones armed. */
  private changed(taskId: string, task: TaskRecord | undefined): void {
    const watched = this.tasks.get(taskId);
    if (!watched) return;
    if (!task || isTerminal(task.status)) return this.drop(taskId);
    for (const [key, state] of watched.keys) {
      if (Object.hasOwn(task.inputRequests, key)) continue;
      if (state !== 'done') state.abort();
      watched.keys.delete(key);
    }
    this.watch(task);
    if (watched.keys.size === 0) this.drop(taskId);
  }

  private drop(taskId: string): void {
    const watched = this.tasks.get(taskId);
    if (!watched) return;
    this.tasks.delete(taskId);
    watched.unsubscribe();
    for (const state of watched.keys.values()) if (state !== 'done') state.abort();
  }

  /**
   * One pending question's life: waits for its next reminder or its deadline (whichever comes
   * first), acts once it is due by the store's clock, until the question is no longer pending, the
   * deadline did what it does, or `signal` aborts.
   */
  private async run(taskId: string, tool: string, key: string, deadline: QuestionDeadline, signal: AbortSignal): Promise<void> {
    const askedAt = Date.parse(deadline.askedAt);
    const dueAt = deadline.dueAt === undefined ? undefined : Date.parse(deadline.dueAt);
    let expired = deadline.escalatedAt !== undefined;
    let reminded = deadline.reminders ?? 0;
    let failures = 0;
    while (!signal.aborted) {
      const nextReminder = deadline.remindEveryMs ? askedAt + (reminded + 1) * deadline.remindEveryMs : Infinity;
      const at = Math.min(!expired && dueAt !== undefined ? dueAt : Infinity, nextReminder);
      if (at === Infinity) return;
      try {
        const storeNow = await this.waitUntil(at, signal);
        const task = await this.pending(taskId, key);
        if (!task) return;
        const current = task.questionDeadlines?.[key] ?? deadline;
        if (!expired && dueAt !== undefined && storeNow >= dueAt) {
          if (await this.expire(task, key, current, storeNow)) return;
          expired = true;
        } else {
          reminded = await this.remind(task, key, askedAt, deadline.remindEveryMs!, reminded, storeNow);
        }
        failures = 0;
      } catch (error) {
        if (signal.aborted) return;
        failures++;
        this.host.log.warn({ taskId, key, err: error }, 'question deadline not applied yet; trying again');
        await this.timers.wait(this.host.now() + Math.min(MAX_RETRY_MS, 250 * 2 ** failures), signal).catch(() => undefined);
      }
    }
  }

  /** Waits until `at` (ms since the epoch) by the store's clock; resolves with the store's clock then. Rejects when `signal` aborts. */
  private async waitUntil(at: number, signal: AbortSignal): Promise<number> {
    await this.timers.wait(at, signal);
    for (;;) {
      const storeNow = await this.host.store.clockNow();
      if (storeNow >= at) return storeNow;
      // Woke early by this process's clock (it runs ahead of the store's): wait for the rest.
      await this.timers.wait(this.host.now() + (at - storeNow), signal);
    }
  }

  /** The task while question `key` is still pending in it, else undefined. */
  private async pending(taskId: string, key: string): Promise<TaskRecord | undefined> {
    try {
      const task = await this.host.store.get(taskId, ENGINE_ACCESS);
      return !isTerminal(task.status) && Object.hasOwn(task.inputRequests, key) ? task : undefined;
    } catch (error) {
      if (error instanceof TaskNotFoundError) return undefined;
      throw error;
    }
  }

  /** Applies the question's `onTimeout`. Resolves true when the question is settled by it (every policy but `escalate`). */
  private async expire(task: TaskRecord, key: string, deadline: QuestionDeadline, storeNow: number): Promise<boolean> {
    const { taskId } = task;
    const tool = task.request.tool;
    const policy = deadline.onTimeout;
    const kind = onTimeoutKind(policy);
    const fields = { taskId, tool, key, onTimeout: kind, by: 'deadline', dueAt: deadline.dueAt };
    if (kind === 'escalate') {
      const entry: EscalatedEntry = { at: new Date(storeNow).toISOString() };
      const first = await this.host.store.appendJournal(taskId, escalatedKey(key), entry as unknown as Json);
      if (first) {
        this.host.log.warn(fields, 'question deadline passed: escalated to operators; the task keeps waiting');
        recordDeadline(tool, 'escalate');
      }
      if (first || deadline.escalatedAt === undefined) await this.host.store.markQuestion(taskId, key, { escalatedAt: entry.at });
      return false;
    }
    if (kind === 'cancel') {
      if (!(await this.host.store.claimQuestion(taskId, key, DEADLINE_ACTOR))) return true; // answered first
      try {
        await this.host.cancel(taskId);
      } catch (error) {
        if (error instanceof IllegalTransitionError || error instanceof TaskNotFoundError) return true; // ended meanwhile
        throw error;
      }
      this.host.log.info(fields, 'question deadline passed: task cancelled');
      recordDeadline(tool, 'cancel');
      return true;
    }
    if (kind === 'default' || kind === 'decline') {
      const answer = kind === 'decline' ? { action: 'decline' } : (policy as { default: Json }).default;
      try {
        if (await this.host.answer(taskId, key, answer)) {
          this.host.log.info(fields, 'question deadline passed: answered by its onTimeout policy');
          recordDeadline(tool, kind);
        }
      } catch (error) {
        // Checked when asked, so only a question whose schema changed meaning can refuse it: never retried.
        if (!(error instanceof InvalidAnswerError)) throw error;
        this.host.log.error({ ...fields, problems: error.problems }, 'question deadline passed: its default answer was refused');
      }
      return true;
    }
    return false;
  }

  /**
   * Sends reminder `n` of question `key` (the latest one due by `storeNow`, at least the one after
   * `reminded`) unless another instance did: first write of `reminded:<key>:<n>` wins. Returns `n`.
   */
  private async remind(task: TaskRecord, key: string, askedAt: number, every: number, reminded: number, storeNow: number): Promise<number> {
    const n = Math.max(reminded + 1, Math.floor((storeNow - askedAt) / every));
    const entry: RemindedEntry = { at: new Date(storeNow).toISOString() };
    if (await this.host.store.appendJournal(task.taskId, remindedKey(key, n), entry as unknown as Json)) {
      this.host.log.info({ taskId: task.taskId, tool: task.request.tool, key, reminder: n }, 'question reminder sent');
      recordDeadline(task.request.tool, 'reminder');
      await this.host.store.markQuestion(task.taskId, key, { reminders: n, remindedAt: entry.at });
    }
    return n;
  }
}
