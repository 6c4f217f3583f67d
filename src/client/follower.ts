import { z } from 'zod';
import type { ApplicationElicitResult, TaskOutcome, TaskView } from '@modelcontextprotocol/ext-tasks/client';
import { taskId as toTaskId } from '@modelcontextprotocol/ext-tasks/core';
import type { AnswerQuestion, AnswerSent, ElicitationQuestion, TaskClient } from './connect.js';
import type { Endpoint } from './endpoint.js';
import { SdkError, SdkErrorCode } from '@modelcontextprotocol/client';
import { isTerminal } from '../core/status.js';
import { describeError, isTransient, jsonRpcCode, busyRetryMs, unavailableRetryMs } from './errors.js';
import type { AskOutcome, Asker, QuestionContext } from './prompt.js';

/** Something worth telling the person while a task is followed. */
export type FollowEvent =
  /** A `tasks/get` answer (every poll; compare to decide what to print). */
  | { type: 'status'; taskId: string; view: TaskView }
  /**
   * The server could not be reached (or, `busy`, answered HTTP 503/429: it asked to be retried later;
   * or, `unavailable`, answered that it cannot serve requests for now, e.g. its task store is down:
   * JSON-RPC -32010); the next attempt is in `retryInMs` ms. An answer not yet acknowledged is kept
   * and sent again then.
   */
  | { type: 'unreachable'; taskId: string; message: string; retryInMs: number; busy?: boolean; unavailable?: boolean }
  /** The server answered again after being unreachable. */
  | { type: 'reachable'; taskId: string }
  /**
   * An answer reached the server: 2026-07-28 (`key`: the input key), the server acknowledged its
   * `tasks/update`; 2025-11-25, the server accepted the response to its `elicitation/create` (HTTP
   * 202). Never emitted before that.
   */
  | { type: 'answered'; taskId: string; key?: string; action: ApplicationElicitResult['action'] }
  /**
   * An answer the person gave could not be delivered (`message`: why — server unreachable, its store
   * unavailable, the connection lost before it could be sent). It is kept, not dropped and not asked
   * again: it is sent as soon as the server is back and still asks that question (`resending`, then
   * `answered`). Emitted once per answer kept.
   */
  | { type: 'kept'; taskId: string; key?: string; action: ApplicationElicitResult['action']; message: string }
  /** A kept answer is being sent again (the server is back and still asks the question). */
  | { type: 'resending'; taskId: string; key?: string; action: ApplicationElicitResult['action'] }
  /**
   * The question a kept answer was for is no longer open (the server took the answer before it
   * failed to acknowledge it, it was answered elsewhere, or the task moved on): the kept answer is
   * not sent again.
   */
  | { type: 'dropped'; taskId: string; action: ApplicationElicitResult['action'] }
  /** The server refused an answer (e.g. -32602: it does not fit the question); the question is still open. */
  | { type: 'refused'; taskId: string; message: string };

/** How following one task ended. Only `outcome` is the task's fate; everything else leaves it as it is on the server. */
export type FollowResult =
  /** The server reported the task terminal, with its result, error or cancellation. */
  | { kind: 'outcome'; taskId: string; outcome: TaskOutcome<unknown> }
  /** Stopped following; the task goes on (or keeps waiting for input) on the server. `error`: because of a refused `--answer`. */
  | { kind: 'left'; taskId: string; reason: string; error?: boolean }
  /** `until: 'answered'`: the questions were answered and the task moved on. */
  | { kind: 'answered'; taskId: string; view: TaskView }
  /**
   * `until: 'answered'`: the task is not waiting for input (`view`: its status, perhaps terminal),
   * or stopped waiting without an answer from this follower (answered elsewhere). Nothing was sent.
   */
  | { kind: 'not-asking'; taskId: string; view: TaskView }
  /** The server does not know the task (never existed, expired, purged) or refused to show it. */
  | { kind: 'gone'; taskId: string; reason: string }
  /** A JSON-RPC error that is not about reachability (e.g. the server refused the request). */
  | { kind: 'error'; taskId: string; reason: string };

/** Options of `TaskFollower.follow`. */
export interface FollowOptions {
  /** Stops following (Ctrl-C): the result is `left`, nothing is sent. */
  signal: AbortSignal;
  /**
   * `end` (default): until the task ends. `answered`: until its open questions are answered — or,
   * when it is not waiting for input (or stops waiting without an answer from here), at once with
   * `not-asking` (never waiting for a question that may come).
   */
  until?: 'end' | 'answered';
  onEvent?: (event: FollowEvent) => void;
  /** What the header of a question says about the task (tool, argument summary, created). */
  context?: QuestionContext;
}

/** One prompt shared by the server requests that ask the same question (see `TaskFollower.askOnce`). */
interface SharedQuestion {
  taskId: string | undefined;
  controller: AbortController;
  waiting: number;
  outcome: Promise<AskOutcome>;
  release?: ReturnType<typeof setTimeout>;
}

/** A 2026-07-28 follow's answers by input key: acknowledged (JSON), kept unacknowledged, and refused (JSON). */
interface Answers {
  sent: Map<string, string>;
  unsent: Map<string, KeptAnswer>;
  refused: Set<string>;
}

/** An answer given but not acknowledged by the server, kept to be sent again (see `FollowEvent` `kept`). */
interface KeptAnswer {
  taskId: string;
  result: ApplicationElicitResult;
  /** Why it was not delivered (one line). */
  reason: string;
  /** Set once `resending` was emitted for it (a question moved between streams reaches `answer` twice). */
  resending?: boolean;
  /**
   * The `kept` event, held back `REASK_GRACE_MS` (see `keep`); undefined once it was emitted
   * (`announced`) or the answer went through meanwhile.
   */
  notice?: NodeJS.Timeout;
  /** Whether `kept` was emitted for it. */
  announced?: boolean;
  /** Set when following stopped while it was being sent: it may have reached the server (not sent again). */
  uncertain?: boolean;
}

/** How long a prompt whose request was withdrawn stays up for the same question sent again (moved to another stream), in ms. */
const REASK_GRACE_MS = 1000;

/** Backoff after transport failures, in ms: 0.5 s doubling to at most 15 s. */
export const RETRY_DELAYS_MS = { firstMs: 500, maxMs: 15_000 } as const;
/** Bounds on the server's suggested poll interval, in ms. */
const POLL_MIN_MS = 100;
const POLL_MAX_MS = 30_000;
/** How long one 2025-11-25 `tasks/result` may stay open before it is re-issued, in ms. */
const RESULT_CALL_TIMEOUT_MS = 10 * 60_000;

/** `tasks/result` is not a method the SDK v2 client knows; its result is only a wake-up here (the outcome is read after `tasks/get` says the task ended). */
const ANY_RESULT = z.looseObject({});

/**
 * Follows tasks on MCP servers to their end the way the specs ask a requestor to, in both protocol versions,
 * and never mistakes a transport failure for the task's fate:
 *
 * - polls `tasks/get` at the server's suggested interval; connection errors, HTTP 5xx/429, lost
 *   sessions and timeouts are retried with capped backoff (`RETRY_DELAYS_MS`) on a fresh connection,
 *   reported as `unreachable` events, never as an outcome; so are a server's "temporarily
 *   unavailable" answers (JSON-RPC -32010 or any error with `data.retryable`, e.g. its task store is
 *   down: see `unavailableRetryMs`), on the same connection, waiting at least the `retryAfterMs` it
 *   asked for;
 * - 2026-07-28 (Tasks extension "Input Requests"): answers each outstanding `inputRequests` entry
 *   with `tasks/update`, one question at a time through the `Asker`; an answer the server could not
 *   take now (unreachable, unavailable) is kept and sent again — not asked again — until the server
 *   acknowledges it or the question is no longer open;
 * - 2025-11-25 ("Input Required Status"): on `input_required` calls `tasks/result`, on whose stream
 *   (or the GET stream) the server sends its `elicitation/create` requests; those reach `answer`
 *   (pass it and `answerSent` as `ConnectOptions.answer` / `onAnswerSent` of the endpoints used with
 *   this follower). An answer is reported sent only once the server accepted it; one it did not
 *   (server down, connection lost while the person typed) is kept and given — not asked again —
 *   when the server, back, asks the same question. A prompt whose request was lost with the
 *   connection (not withdrawn by the server) stays up meanwhile;
 * - an answer is never claimed sent before the server took it; following stopped with an answer
 *   still kept says it was not sent (`left`, with the reason);
 * - a question left unanswered (nobody at a terminal, "decide later", Ctrl-C) sends nothing: the
 *   follower returns `left` and the question stays pending on the server.
 *
 * One follower serves one CLI run: it shares the asker (one prompt at a time) across the tasks
 * followed concurrently.
 */
export class TaskFollower {
  private readonly contexts = new Map<string, QuestionContext>();
  private readonly left = new Map<string, { reason: string; error?: boolean; all?: boolean }>();
  private readonly answered = new Set<string>();
  private readonly wakers = new Map<string, () => void>();
  private readonly shared = new Map<string, SharedQuestion>();
  private readonly emitters = new Map<string, (event: FollowEvent) => void>();
  /** 2025-11-25 answers not acknowledged, by question (`questionKey`). */
  private readonly kept = new Map<string, KeptAnswer>();
  /** The tasks being followed now (answers are kept only for those). */
  private readonly following = new Set<string>();
  /** Questions of tasks not followed (yet), each waiting for its task to be followed (see `answer`). */
  private readonly followWaiters = new Map<string, Set<() => void>>();

  constructor(
    private readonly asker: Asker,
    /** Called when a person chose to stop everything (Ctrl-C at a prompt, closed terminal). */
    private readonly onLeaveAll: (reason: string) => void,
  ) {}

  /**
   * The `ConnectOptions.answer` for endpoints followed by this follower (2025-11-25 server requests).
   * A question whose answer is kept (given before, not acknowledged) is answered with it, without
   * asking again; an answer given after the request was lost with the connection is kept.
   */
  readonly answer: AnswerQuestion = async (question, signal) => {
    const taskId = question.taskId;
    if (taskId && this.left.has(taskId)) return undefined;
    // A question of a task this run does not follow (a connection that only reads: `pending`,
    // `ls --refresh`, `get`) is not put to the person: nothing would send the answer. It waits, unasked
    // and unanswered, until the task is followed (a `call` whose question came before its follow
    // began) or the request goes; the question stays pending on the server either way.
    if (taskId && !this.following.has(taskId) && !(await this.untilFollowed(taskId, signal))) return undefined;
    const key = questionKey(question);
    const kept = this.kept.get(key);
    if (kept) {
      if (!kept.resending && kept.announced) this.emitters.get(kept.taskId)?.({ type: 'resending', taskId: kept.taskId, action: kept.result.action });
      kept.resending = true;
      return kept.result;
    }
    const { outcome, othersWaiting } = await this.askOnce(question, signal);
    if (outcome.kind === 'answer') {
      if (!signal?.aborted) return outcome.result; // `answered` once the server accepted it: see answerSent
      // The request is gone (the connection was lost) and no other request waits for this answer.
      if (taskId && !othersWaiting)
        this.keep(key, taskId, outcome.result, `the connection to ${this.contexts.get(taskId)?.url ?? 'the server'} was lost before the answer could be sent`);
      return undefined;
    }
    if (signal?.aborted) return undefined;
    if (outcome.kind === 'leave') this.leave(taskId, outcome);
    return undefined;
  };

  /**
   * The `ConnectOptions.onAnswerSent` for endpoints followed by this follower: an answer the server
   * accepted is `answered` (and no longer kept); one it did not take is kept (`kept`).
   */
  readonly answerSent: AnswerSent = (question, result, failure) => {
    const taskId = question.taskId;
    if (!taskId) return;
    const key = questionKey(question);
    if (failure !== undefined) {
      this.keep(key, taskId, result, describeError(failure, this.contexts.get(taskId)?.url ?? 'the server'));
      return;
    }
    const kept = this.kept.get(key);
    if (kept?.notice) clearTimeout(kept.notice);
    this.kept.delete(key);
    this.answered.add(taskId);
    this.emitters.get(taskId)?.({ type: 'answered', taskId, action: result.action });
    this.wake(taskId);
  };

  /**
   * Keeps an answer the server did not take, to send when the question is asked again. The `kept`
   * event waits `REASK_GRACE_MS`: a server that moves a question between streams (GET stream →
   * `tasks/result`) withdraws the very request just answered and asks again at once, and the
   * answer then goes to the new request — nothing was lost, nothing needs saying.
   */
  private keep(key: string, taskId: string, result: ApplicationElicitResult, reason: string): void {
    if (!this.following.has(taskId)) return; // following it is over (and said so): nothing will send it
    const before = this.kept.get(key);
    if (before && JSON.stringify(before.result) === JSON.stringify(result)) {
      before.reason = reason;
      return;
    }
    if (before?.notice) clearTimeout(before.notice);
    const entry: KeptAnswer = { taskId, result, reason, ...(before?.resending && { resending: true }) };
    this.kept.set(key, entry);
    entry.notice = setTimeout(() => {
      entry.notice = undefined;
      if (this.kept.get(key) !== entry) return;
      entry.announced = true;
      this.emitters.get(taskId)?.({ type: 'kept', taskId, action: result.action, message: entry.reason });
    }, REASK_GRACE_MS);
    entry.notice.unref?.();
  }

  /** Forgets the kept 2025-11-25 answers of `taskId` (its questions are closed), telling `emit` about each. */
  private dropKept(taskId: string, emit?: (event: FollowEvent) => void): void {
    for (const [key, kept] of this.kept) {
      if (kept.taskId !== taskId) continue;
      if (kept.notice) clearTimeout(kept.notice);
      this.kept.delete(key);
      emit?.({ type: 'dropped', taskId, action: kept.result.action });
    }
  }

  /**
   * Withdraws the prompts of `taskId`: those no server request waits for any more (their requests
   * were lost with a connection), or with `all` every one (following it is over).
   */
  private withdrawPrompts(taskId: string, all = false): void {
    for (const entry of this.shared.values()) if (entry.taskId === taskId && (all || entry.waiting === 0)) entry.controller.abort();
  }

  /**
   * Asks a 2025-11-25 server request's question, sharing one prompt among requests for the same
   * question of the same task: a server moves a question from the GET stream to a `tasks/result`
   * stream by withdrawing the first request and sending it again, and the person must see one
   * prompt, not two. The prompt is withdrawn only when every request waiting for it was withdrawn
   * and none arrived within `REASK_GRACE_MS`. A request lost because the connection closed (not
   * withdrawn by the server) leaves the prompt up: the server asks again once it is reachable, and
   * the follow loop withdraws it if the question closed meanwhile (`withdrawPrompts`).
   * `othersWaiting`: whether another live request waits for the same outcome (it delivers the answer).
   */
  private async askOnce(question: ElicitationQuestion, signal: AbortSignal | undefined): Promise<{ outcome: AskOutcome; othersWaiting: boolean }> {
    const key = questionKey(question);
    let shared = this.shared.get(key);
    if (!shared) {
      const controller = new AbortController();
      const entry: SharedQuestion = { taskId: question.taskId, controller, waiting: 0, outcome: Promise.resolve({ kind: 'withdrawn' }) };
      entry.outcome = this.asker.ask(question, (question.taskId && this.contexts.get(question.taskId)) || {}, controller.signal).finally(() => {
        if (this.shared.get(key) === entry) this.shared.delete(key);
      });
      this.shared.set(key, (shared = entry));
    }
    const entry = shared;
    entry.waiting++;
    clearTimeout(entry.release);
    signal?.addEventListener(
      'abort',
      () => {
        if (--entry.waiting > 0 || connectionLost(signal.reason)) return;
        entry.release = setTimeout(() => entry.controller.abort(), REASK_GRACE_MS);
        entry.release.unref?.();
      },
      { once: true },
    );
    const outcome = await entry.outcome;
    return { outcome, othersWaiting: entry.waiting - (signal?.aborted ? 0 : 1) > 0 };
  }

  /** Resolves true once `taskId` is followed, false if `signal` aborts first (or already has). */
  private untilFollowed(taskId: string, signal: AbortSignal | undefined): Promise<boolean> {
    if (this.following.has(taskId)) return Promise.resolve(true);
    if (signal?.aborted) return Promise.resolve(false);
    return new Promise((resolve) => {
      let waiters = this.followWaiters.get(taskId);
      if (!waiters) this.followWaiters.set(taskId, (waiters = new Set()));
      const done = (followed: boolean) => {
        waiters.delete(wake);
        if (waiters.size === 0 && this.followWaiters.get(taskId) === waiters) this.followWaiters.delete(taskId);
        signal?.removeEventListener('abort', gone);
        resolve(followed);
      };
      const wake = () => done(true);
      const gone = () => done(false);
      waiters.add(wake);
      signal?.addEventListener('abort', gone, { once: true });
    });
  }

  /** Follows `taskId` on `endpoint` (see the class). Never rejects for transport failures; resolves when done. */
  async follow(endpoint: Endpoint, taskId: string, options: FollowOptions): Promise<FollowResult> {
    const emit = (event: FollowEvent) => options.onEvent?.(event);
    this.emitters.set(taskId, emit);
    this.contexts.set(taskId, { url: endpoint.url, ...this.contexts.get(taskId), ...options.context });
    this.following.add(taskId);
    for (const wake of [...(this.followWaiters.get(taskId) ?? [])]) wake();
    try {
      return await this.followLoop(endpoint, taskId, options, emit);
    } finally {
      this.following.delete(taskId);
      this.withdrawPrompts(taskId, true);
      this.dropKept(taskId);
    }
  }

  private async followLoop(endpoint: Endpoint, taskId: string, options: FollowOptions, emit: (event: FollowEvent) => void): Promise<FollowResult> {
    const { signal } = options;
    let failures = 0;
    let unreachable = false;
    // The open 2025-11-25 tasks/result call, if any. Re-opened (on the current connection) once it
    // has ended and the task still needs input — at most once per poll interval.
    let resultCall: { tc: TaskClient; done: Promise<void>; ended: boolean } | undefined;
    const sent = new Map<string, string>(); // 2026 input key → JSON of the answer sent
    const unsent = new Map<string, KeptAnswer>(); // 2026 input key → an answer given but not yet acknowledged
    const refused = new Set<string>(); // JSON of answers the server refused
    const keptHere = () => [...[...this.kept.values()].filter((k) => k.taskId === taskId), ...unsent.values()];
    // (An answer kept unacknowledged counts: the server may have taken it before failing to say so.)
    const gaveAnswer = () => this.answered.has(taskId) || sent.size > 0 || keptHere().length > 0;
    /** What stopping now leaves unsent, said plainly (appended to the reason). */
    const notSent = () =>
      keptHere()
        .map((k) =>
          k.uncertain
            ? `; your answer (${k.result.action}) may not have reached the server (${k.reason})`
            : `; your answer (${k.result.action}) was not sent (${k.reason})`,
        )
        .join('');
    const stopped = (): FollowResult | undefined => {
      const left = this.left.get(taskId);
      if (left) return { kind: 'left', taskId, reason: left.reason + notSent(), ...(left.error && { error: true }) };
      if (signal.aborted) return { kind: 'left', taskId, reason: reasonOf(signal) + notSent() };
      return undefined;
    };
    for (;;) {
      const stop = stopped();
      if (stop) return stop;
      let tc: TaskClient | undefined;
      try {
        tc = await endpoint.connection();
        const controller = tc.session.task(toTaskId(taskId));
        const view = await controller.snapshot(signal);
        if (unreachable) emit({ type: 'reachable', taskId });
        unreachable = false;
        failures = 0;
        emit({ type: 'status', taskId, view });
        const asking = view.status === 'input_required';
        if (options.until === 'answered' && !asking && !gaveAnswer()) return { kind: 'not-asking', taskId, view };
        if (isTerminal(view.status)) {
          const outcome = await controller.result({ signal });
          return { kind: 'outcome', taskId, outcome };
        }
        if (options.until === 'answered' && !asking) return { kind: 'answered', taskId, view };
        if (view.status !== 'input_required') {
          // The questions are gone: answered (perhaps by an answer kept here) or withdrawn.
          sent.clear();
          for (const kept of unsent.values()) emit({ type: 'dropped', taskId, action: kept.result.action });
          unsent.clear();
          this.dropKept(taskId, emit);
          this.withdrawPrompts(taskId);
        }
        if (view.status === 'input_required') {
          if (tc.protocolVersion === '2026-07-28') {
            const before = sent.size;
            const result = await this.answerInputRequests(tc, taskId, view, { sent, unsent, refused }, signal, emit);
            if (result) return result;
            if (sent.size > before) continue; // poll again at once: the answer may have moved the task on
          } else if (!resultCall || resultCall.tc !== tc || resultCall.ended) {
            const call: { tc: TaskClient; done: Promise<void>; ended: boolean } = { tc, ended: false, done: this.openResultStream(tc, taskId, signal) };
            void call.done.then(() => (call.ended = true));
            resultCall = call;
          }
        }
        await this.sleep(taskId, pollInterval(view), signal, resultCall && !resultCall.ended ? resultCall.done : undefined);
      } catch (error) {
        if (signal.aborted) continue;
        const busyMs = busyRetryMs(error);
        if (busyMs !== undefined) {
          // Busy (HTTP 503/429): the server is there and did nothing with the request. The connection
          // stays (a new session would only add load); try again when it asked to (Retry-After).
          const retryInMs = Math.min(RETRY_DELAYS_MS.maxMs, Math.max(RETRY_DELAYS_MS.firstMs, busyMs));
          emit({ type: 'unreachable', taskId, message: describeError(error, endpoint.url), retryInMs, busy: true });
          await this.sleep(taskId, retryInMs, signal);
          continue;
        }
        const unavailableMs = unavailableRetryMs(error);
        if (unavailableMs !== undefined) {
          // The server answered, but cannot serve the request now (its task store is down): the
          // connection is fine; back off (at least as long as it asked) and try again.
          const retryInMs = Math.min(RETRY_DELAYS_MS.maxMs, Math.max(unavailableMs, RETRY_DELAYS_MS.firstMs * 2 ** failures++));
          unreachable = true;
          emit({ type: 'unreachable', taskId, message: describeError(error, endpoint.url), retryInMs, unavailable: true });
          await this.sleep(taskId, retryInMs, signal);
          continue;
        }
        if (isTransient(error)) {
          if (tc) endpoint.reset(tc);
          resultCall = undefined;
          const retryInMs = Math.min(RETRY_DELAYS_MS.maxMs, RETRY_DELAYS_MS.firstMs * 2 ** failures++);
          unreachable = true;
          emit({ type: 'unreachable', taskId, message: describeError(error, endpoint.url), retryInMs });
          await this.sleep(taskId, retryInMs, signal);
          continue;
        }
        // Only the server's own JSON-RPC answer "invalid params" (unknown, expired or someone else's
        // task: the spec's -32602) means it does not know the task; anything else is an error.
        const reason = describeError(error, endpoint.url);
        if (jsonRpcCode(error) === -32602 && !(error instanceof SdkError)) return { kind: 'gone', taskId, reason };
        return { kind: 'error', taskId, reason };
      }
    }
  }

  /**
   * 2026-07-28: asks each open `inputRequests` entry not yet answered and sends the answer with
   * `tasks/update`. An answer the server did not acknowledge because it could not be reached or was
   * unavailable stays in `answers.unsent` and is sent again (without asking) on the next call; the
   * failure is thrown for the poll loop to back off.
   */
  private async answerInputRequests(
    tc: TaskClient,
    taskId: string,
    view: TaskView,
    answers: Answers,
    signal: AbortSignal,
    emit: (event: FollowEvent) => void,
  ): Promise<FollowResult | undefined> {
    const { sent, unsent, refused } = answers;
    const requests = (view.raw.inputRequests ?? {}) as Record<string, { method?: string; params?: Record<string, unknown> }>;
    for (const [key, kept] of unsent) {
      if (key in requests) continue;
      unsent.delete(key); // no longer asked: nothing to send
      emit({ type: 'dropped', taskId, action: kept.result.action });
    }
    for (const [key, request] of Object.entries(requests)) {
      if (sent.has(key)) continue;
      const kept = unsent.get(key);
      if (kept) {
        if (!kept.resending) emit({ type: 'resending', taskId, key, action: kept.result.action });
        kept.resending = true;
        await this.sendAnswer(tc, taskId, key, kept.result, answers, signal, emit);
        continue;
      }
      if (request.method !== 'elicitation/create' || (request.params?.mode !== undefined && request.params.mode !== 'form')) {
        return {
          kind: 'left',
          taskId,
          reason: `the task needs ${request.method ?? 'an input'}${request.params?.mode ? ` (${String(request.params.mode)} mode)` : ''}, which this client cannot answer; it is still waiting`,
        };
      }
      const question: ElicitationQuestion = {
        message: String(request.params?.message ?? ''),
        requestedSchema: (request.params?.requestedSchema ?? {}) as ElicitationQuestion['requestedSchema'],
        taskId,
        key,
      };
      const outcome = await this.askWhileOpen(tc, taskId, key, view, question, signal);
      if (outcome.kind === 'withdrawn') return undefined;
      if (outcome.kind === 'leave') {
        this.leave(taskId, outcome);
        return { kind: 'left', taskId, reason: outcome.reason, ...(outcome.error && { error: true }) };
      }
      const json = JSON.stringify(outcome.result);
      if (refused.has(json))
        return { kind: 'left', taskId, error: true, reason: `the server refused the answer ${json}; nothing else was sent, the task still waits` };
      if (!(await this.sendAnswer(tc, taskId, key, outcome.result, answers, signal, emit))) return undefined; // ask again on the next poll
    }
    return undefined;
  }

  /**
   * Sends one 2026-07-28 answer with `tasks/update`. Resolves true once the server acknowledged it
   * (`answered` is emitted only then), false when it refused it (a JSON-RPC error: `refused`, the
   * question is asked again). A failure to reach the server, or its "unavailable, retry later"
   * answer, keeps the answer in `unsent` (`kept` is emitted the first time) and is thrown.
   */
  private async sendAnswer(
    tc: TaskClient,
    taskId: string,
    key: string,
    result: ApplicationElicitResult,
    answers: Answers,
    signal: AbortSignal,
    emit: (event: FollowEvent) => void,
  ): Promise<boolean> {
    const json = JSON.stringify(result);
    try {
      await tc.session.task(toTaskId(taskId)).update({ [key]: result } as never, signal);
    } catch (error) {
      const code = jsonRpcCode(error);
      if (code === undefined || isTransient(error)) {
        // Not acknowledged: send it again, do not ask again (or, stopped while sending it, say so).
        if (signal.aborted) {
          answers.unsent.set(key, { taskId, result, reason: 'interrupted while it was being sent', uncertain: true });
          throw error;
        }
        const reason = describeError(error, tc.url);
        const before = answers.unsent.get(key);
        if (!before) emit({ type: 'kept', taskId, key, action: result.action, message: reason });
        answers.unsent.set(key, { taskId, result, reason, ...(before?.resending && { resending: true }) });
        throw error;
      }
      answers.unsent.delete(key);
      answers.refused.add(json);
      emit({ type: 'refused', taskId, message: describeError(error, tc.url) });
      return false;
    }
    answers.unsent.delete(key);
    answers.sent.set(key, json);
    emit({ type: 'answered', taskId, key, action: result.action });
    return true;
  }

  /**
   * 2026-07-28: asks `question` while polling the task, and withdraws the prompt when the question
   * is no longer open (answered elsewhere, the task was cancelled or moved on). Poll failures are
   * ignored here; the main loop deals with them.
   */
  private async askWhileOpen(
    tc: TaskClient,
    taskId: string,
    key: string,
    view: TaskView,
    question: ElicitationQuestion,
    signal: AbortSignal,
  ): Promise<AskOutcome> {
    const withdraw = new AbortController();
    const asking = AbortSignal.any([signal, withdraw.signal]);
    const watcher = (async () => {
      while (!asking.aborted) {
        await this.sleep(`${taskId}\0watch`, pollInterval(view), asking);
        if (asking.aborted) return;
        const now = await tc.session
          .task(toTaskId(taskId))
          .snapshot(asking)
          .catch(() => undefined);
        const open = (now?.raw.inputRequests ?? {}) as Record<string, unknown>;
        if (now && (now.status !== 'input_required' || !(key in open))) withdraw.abort();
      }
    })();
    try {
      return await this.asker.ask(question, this.contexts.get(taskId) ?? {}, asking);
    } finally {
      withdraw.abort();
      await watcher;
    }
  }

  /**
   * 2025-11-25: `tasks/result` on an `input_required` task, so the server delivers its questions on
   * that request's stream (they reach `answer`). Resolves when the call ends, however it ends (the
   * poll loop then decides); it is re-issued while the task still needs input.
   */
  private openResultStream(tc: TaskClient, taskId: string, signal: AbortSignal): Promise<void> {
    return tc.client
      .request({ method: 'tasks/result', params: { taskId } }, ANY_RESULT, { signal, timeout: RESULT_CALL_TIMEOUT_MS, resetTimeoutOnProgress: true })
      .then(
        () => undefined,
        () => undefined,
      );
  }

  private leave(taskId: string | undefined, outcome: { reason: string; all?: boolean; error?: boolean }): void {
    if (outcome.all || !taskId) {
      this.onLeaveAll(outcome.reason);
      if (!taskId) return;
    }
    this.left.set(taskId, outcome);
    this.wake(taskId);
  }

  private wake(taskId: string): void {
    this.wakers.get(taskId)?.();
  }

  /** Waits `ms`, or less when the task is woken (answered, left), `signal` aborts or `also` settles. */
  private sleep(taskId: string, ms: number, signal: AbortSignal, also?: Promise<void>): Promise<void> {
    return new Promise<void>((resolve) => {
      const done = () => {
        clearTimeout(timer);
        signal.removeEventListener('abort', done);
        if (this.wakers.get(taskId) === done) this.wakers.delete(taskId);
        resolve();
      };
      const timer = setTimeout(done, ms);
      signal.addEventListener('abort', done, { once: true });
      this.wakers.set(taskId, done);
      void also?.then(done);
    });
  }
}

/** The identity of a 2025-11-25 question: the task asking, its message and its schema. */
function questionKey(question: ElicitationQuestion): string {
  return JSON.stringify([question.taskId ?? null, question.message, question.requestedSchema]);
}

/** Whether a server request's abort `reason` is the connection closing (not the server withdrawing the question). */
function connectionLost(reason: unknown): boolean {
  return reason instanceof SdkError && reason.code === SdkErrorCode.ConnectionClosed;
}

function pollInterval(view: TaskView): number {
  const suggested = view.suggestedPollIntervalMs ?? 1000;
  return Math.min(POLL_MAX_MS, Math.max(POLL_MIN_MS, suggested));
}

function reasonOf(signal: AbortSignal): string {
  return signal.reason instanceof Error ? signal.reason.message : 'stopped following; the task goes on on the server';
}
