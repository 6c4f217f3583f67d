import { ProtocolError, ProtocolErrorCode } from '@modelcontextprotocol/server';
import { withSignals } from '../../core/deadline.js';
import { InvalidAnswerError } from '../../core/errors.js';
import type { JsonObject } from '../../core/json.js';
import { isTerminal } from '../../core/status.js';
import type { InputRequest, TaskRecord } from '../../core/task.js';
import type { TaskRuntime } from '../../runtime/runtime.js';
import { answerableQuestions, wireRequestOf } from '../input-kinds.js';
import { mintRequestState, openRequestState, type CallBinding } from './request-state.js';

/**
 * Multi round-trip requests (2026-07-28 "Multi Round-Trip Requests", SEP-2322) served by a durable
 * task: a `tools/call` of a task tool that is not handed out as a task asks the task's questions
 * with `InputRequiredResult` rounds, and the retry resumes the same execution — the task was stored
 * on the first round (`createCallTask`), the answers are journaled before the task moves on, so
 * nothing runs twice and a crash or restart between rounds loses nothing. The round's
 * `requestState` names the task (see `request-state.ts`).
 */
/** How long a round waits for further questions once one is asked, in ms (see `awaitRound`). */
const QUESTION_COALESCE_MS = 25;

/** How one MRTR round of a call ended (see `awaitRound`). */
export type RoundOutcome =
  | { kind: 'ended'; task: TaskRecord }
  | { kind: 'input'; task: TaskRecord; questions: [string, InputRequest][] }
  | { kind: 'unanswerable'; task: TaskRecord; questions: [string, InputRequest][] }
  | { kind: 'waiting'; task: TaskRecord };

/** What `awaitRound` works with. */
export interface RoundOptions {
  owner: string | null;
  /** The request's declared client capabilities: only questions they cover are asked. */
  capabilities: unknown;
  /**
   * Answers the request carried (`inputResponses`, object values only): given to each question
   * whose key they name as soon as it is outstanding — also questions asked only after the request
   * arrived (a client may answer ahead under a key the tool names). One that does not fit its
   * question is not an error here: the question is asked instead.
   */
  offered?: Record<string, unknown>;
  /** Ends the wait (`waiting`): the call's time limit, the requestor's cancellation. */
  signal: AbortSignal;
  /** Sees every state the task passes through (progress forwarding). */
  onChange?: (task: TaskRecord) => void;
  /**
   * The task's record as the caller just had it (created, resumed): the round starts from it
   * instead of reading it, unless a newer write of it was announced since.
   */
  known?: TaskRecord;
}

/**
 * Follows the task of one MRTR round until it ends (`ended`), asks questions this client can answer
 * (`input`: every such outstanding question), asks only questions it cannot (`unanswerable`), or
 * `signal` aborts (`waiting`). Offered answers are applied first (see `RoundOptions.offered`).
 */
export function awaitRound(runtime: TaskRuntime, taskId: string, options: RoundOptions): Promise<RoundOutcome> {
  // Every change waiter of the round is released when the round returns (a question, the end, an
  // abort or an error), not left to its 5 s timer: nothing outlives the request that waited.
  return withSignals([options.signal], (waiters) => followRound(runtime, taskId, options, waiters));
}

/** `awaitRound`'s loop; its change waiters end with `waiters`. */
async function followRound(runtime: TaskRuntime, taskId: string, options: RoundOptions, waiters: AbortSignal): Promise<RoundOutcome> {
  const used = new Set<string>();
  let pending = ''; // the answerable question keys seen last: asked together once they stop growing
  // The record the last change handed over: no need to read it again unless a newer write was
  // announced since (checked after the next waiter is in place, so no write falls in between).
  let known = options.known;
  for (;;) {
    const change = runtime.store.nextChange(taskId, { signal: waiters, timeoutMs: 5_000 });
    const fresh = known && known.version >= (runtime.store.lastSeen(taskId)?.version ?? 0) ? known : undefined;
    known = undefined;
    const task = fresh ?? (await runtime.get(taskId, options.owner));
    options.onChange?.(task);
    if (isTerminal(task.status)) return { kind: 'ended', task };
    if (options.signal.aborted) return { kind: 'waiting', task };
    if (task.status === 'input_required') {
      const ahead = Object.entries(options.offered ?? {}).filter(([key]) => Object.hasOwn(task.inputRequests, key) && !used.has(key));
      if (ahead.length > 0) {
        for (const [key] of ahead) used.add(key);
        await runtime.provideInputs(taskId, Object.fromEntries(ahead), options.owner).catch((error) => {
          if (!(error instanceof InvalidAnswerError)) throw error; // does not fit: ask it instead
        });
        continue;
      }
      const { answerable, unanswerable } = answerableQuestions(task, options.capabilities);
      const keys = answerable.map(([key]) => key).join('\0');
      if (answerable.length > 0 && keys === pending) return { kind: 'input', task, questions: answerable };
      if (answerable.length > 0) {
        // Questions asked together (Promise.all of several asks) are written one by one: give the
        // others a moment to arrive so they travel in one round.
        pending = keys;
        await runtime.store.nextChange(taskId, { signal: waiters, timeoutMs: QUESTION_COALESCE_MS });
        continue;
      }
      if (unanswerable.length > 0) return { kind: 'unanswerable', task, questions: unanswerable };
    }
    known = await change;
  }
}

/**
 * Applies a retry's answers to the task's outstanding questions before the round continues:
 * answers to keys not outstanding are ignored (MRTR "Error Handling"), a value the SDK dropped
 * because it was not an object, under an outstanding key, or an answer that does not fit its
 * question refuses the retry with -32602 (`data.problems` per key) and stores nothing.
 */
export async function applyRetryAnswers(
  runtime: TaskRuntime,
  task: TaskRecord,
  owner: string | null,
  responses: Record<string, unknown> | undefined,
  dropped: readonly string[],
): Promise<void> {
  const bad = dropped.filter((key) => Object.hasOwn(task.inputRequests, key));
  if (bad.length > 0)
    throw new ProtocolError(ProtocolErrorCode.InvalidParams, `Invalid inputResponses: ${bad.map((k) => `'${k}'`).join(', ')} not a response object`);
  if (!responses || Object.keys(responses).length === 0) return;
  try {
    await runtime.provideInputs(task.taskId, responses, owner);
  } catch (error) {
    if (error instanceof InvalidAnswerError) throw new ProtocolError(ProtocolErrorCode.InvalidParams, error.message, error.data);
    throw error;
  }
}

/**
 * The task a retried round continues: the one its `requestState` names (verified, see
 * `openRequestState`: -32602 for a bad state, -32010 while the store is unavailable), with the
 * retry's answers applied first (see `applyRetryAnswers`). A first round has no `requestState`: its
 * task is created (`createCallTask`), not resumed.
 */
export async function resumeRound(
  runtime: TaskRuntime,
  requestState: unknown,
  binding: CallBinding,
  responses: Record<string, unknown> | undefined,
  dropped: readonly string[],
): Promise<TaskRecord> {
  const task = await openRequestState(runtime, requestState, binding);
  await applyRetryAnswers(runtime, task, binding.owner, responses, dropped);
  return task;
}

/**
 * The `InputRequiredResult` of a round (`resultType: "input_required"`): the questions as
 * 2026-07-28 input requests (URL mode without `elicitationId`, which 2026-07-28 removed) and the
 * round's `requestState`. No `taskId`: the task is not handed out.
 */
export async function inputRequiredResult(
  runtime: TaskRuntime,
  task: TaskRecord,
  questions: [string, InputRequest][],
  binding: CallBinding,
): Promise<JsonObject> {
  const inputRequests: JsonObject = {};
  for (const [key, question] of questions) inputRequests[key] = wireRequestOf(question, '2026-07-28') as unknown as JsonObject;
  return {
    resultType: 'input_required',
    inputRequests,
    requestState: await mintRequestState(
      runtime,
      task,
      binding,
      questions.map(([key]) => key),
    ),
  };
}

/** Object-valued entries of a raw `inputResponses` (anything else → undefined; non-object values dropped, their keys listed). */
export function objectResponses(raw: unknown): { responses?: Record<string, unknown>; dropped: string[] } {
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) return { dropped: [] };
  const responses: Record<string, unknown> = {};
  const dropped: string[] = [];
  for (const [key, value] of Object.entries(raw)) {
    if (typeof value === 'object' && value !== null && !Array.isArray(value)) responses[key] = value;
    else dropped.push(key);
  }
  return { responses, dropped };
}
