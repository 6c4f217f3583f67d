import { createHash, randomBytes } from 'node:crypto';
import { createRequestStateCodec, ProtocolError, ProtocolErrorCode, type ServerContext } from '@modelcontextprotocol/server';
import { withSignals } from '../../core/deadline.js';
import { InvalidAnswerError } from '../../core/errors.js';
import type { Json, JsonObject } from '../../core/json.js';
import { isTerminal } from '../../core/status.js';
import type { InputRequest, TaskRecord } from '../../core/task.js';
import type { TaskRuntime } from '../../runtime/runtime.js';
import { answerableQuestions, wireRequestOf } from '../input-kinds.js';
import { isStoreUnavailable } from '../errors.js';

/**
 * Multi round-trip requests (2026-07-28 "Multi Round-Trip Requests", SEP-2322) served by a durable
 * task: a `tools/call` of a task tool that is not handed out as a task asks the task's questions
 * with `InputRequiredResult` rounds, and the retry resumes the same execution — the task was stored
 * on the first round, the answers are journaled before the task moves on, so nothing runs twice and
 * a crash or restart between rounds loses nothing.
 *
 * `requestState` names the task and is integrity-protected: the SDK's HMAC-SHA256 codec
 * (`createRequestStateCodec`, signed, with expiry) under a key of 32 random bytes kept in the task's
 * own journal (sealed at rest when the store has a `secretKey`), so every instance sharing the store
 * — and the same server after a restart — can verify it without configuration, and a state minted
 * for one task proves nothing about another. The state is bound (HMAC tag, not in clear) to the
 * principal, the tool and a digest of its arguments: presented by another principal, for another
 * tool or other arguments, tampered with or past its expiry it is refused with -32602 `Invalid or
 * expired requestState` (`data.reason: "invalid_request_state"`, as the SDK's own seam answers),
 * and nothing is written.
 */

/** How long a minted `requestState` stays valid, in seconds (24 h: a person may take a while to answer). */
export const REQUEST_STATE_TTL_SECONDS = 24 * 3600;

/** How long a round waits for further questions once one is asked, in ms (see `awaitRound`). */
const QUESTION_COALESCE_MS = 25;

/** Journal key of a task's `requestState` key. */
const STATE_KEY_ENTRY = 'mrtr:request-state-key';

/** What a `requestState` is bound to: who called which tool with which arguments. */
export interface CallBinding {
  owner: string | null;
  tool: string;
  args: JsonObject;
}

/**
 * The `requestState` of a round of `task` for `binding` asking `questionKeys`:
 * `<taskId>.<SDK codec value>` (the keys are in the signed payload, so each round's state differs).
 */
export async function mintRequestState(runtime: TaskRuntime, task: TaskRecord, binding: CallBinding, questionKeys: string[]): Promise<string> {
  const codec = await codecFor(runtime, task.taskId, binding, true);
  return `${task.taskId}.${await codec!.mint({ q: questionKeys }, NO_CONTEXT)}`;
}

/**
 * The task a retried call's `requestState` names, once verified (see the module comment). Throws
 * -32602 `Invalid or expired requestState` for anything else — including a task that is unknown,
 * foreign or expired, so the error says nothing about other principals' tasks. A store outage is
 * thrown as it is (`StoreUnavailableError` → -32010): the state may well be valid.
 */
export async function openRequestState(runtime: TaskRuntime, state: unknown, binding: CallBinding): Promise<TaskRecord> {
  const refuse = () => new ProtocolError(ProtocolErrorCode.InvalidParams, 'Invalid or expired requestState', { reason: 'invalid_request_state' });
  if (typeof state !== 'string' || state.length > 4096) throw refuse();
  const dot = state.indexOf('.');
  const taskId = state.slice(0, dot);
  if (dot <= 0) throw refuse();
  let task: TaskRecord;
  try {
    task = await runtime.get(taskId, binding.owner);
  } catch (error) {
    if (isStoreUnavailable(error)) throw error; // not a verdict on the state: -32010, retry later
    throw refuse();
  }
  const codec = await codecFor(runtime, taskId, binding, false);
  try {
    if (!codec) throw new Error('no key');
    await codec.verify(state.slice(dot + 1), NO_CONTEXT);
  } catch {
    throw refuse();
  }
  return task;
}

/** The codec bound to `binding` under the task's key (created when `create` and missing). */
async function codecFor(runtime: TaskRuntime, taskId: string, binding: CallBinding, create: boolean) {
  const store = runtime.store;
  let entry = (await store.readJournal(taskId)).get(STATE_KEY_ENTRY);
  if (entry === undefined && create) {
    const fresh: Json = randomBytes(32).toString('base64url');
    await store.appendJournal(taskId, STATE_KEY_ENTRY, store.secrets ? store.secrets.seal(fresh) : fresh); // first write wins
    entry = (await store.readJournal(taskId)).get(STATE_KEY_ENTRY);
  }
  if (entry === undefined) return undefined;
  const key = store.secrets ? store.secrets.open<string>(entry) : (entry as string);
  const bound = bindingDigest(binding);
  return createRequestStateCodec<JsonObject>({ key: Buffer.from(key, 'base64url'), ttlSeconds: REQUEST_STATE_TTL_SECONDS, bind: () => bound });
}

/** The codec's `bind` reads nothing from the context: the binding is captured per codec. */
const NO_CONTEXT = {} as ServerContext;

/** SHA-256 of principal, tool and arguments (keys sorted, so a client re-serializing them still matches). */
function bindingDigest(binding: CallBinding): string {
  return createHash('sha256')
    .update(JSON.stringify([binding.owner, binding.tool, sortedJson(binding.args)]))
    .digest('base64url');
}

function sortedJson(value: Json): Json {
  if (Array.isArray(value)) return value.map(sortedJson);
  if (value === null || typeof value !== 'object') return value;
  return Object.fromEntries(
    Object.keys(value)
      .sort()
      .map((key) => [key, sortedJson(value[key]!)]),
  );
}

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
  for (;;) {
    const change = runtime.store.nextChange(taskId, { signal: waiters, timeoutMs: 5_000 });
    const task = await runtime.get(taskId, options.owner);
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
    await change;
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
 * The task a round of the call `binding` works on: the one a retry's `requestState` names (verified,
 * see `openRequestState`; the retry's answers applied first, see `applyRetryAnswers`), or a new
 * task submitted for the call (recording the request's client `capabilities`, its trace continuing
 * the caller's from the request's `meta`: `traceparent`, `tracestate`, `baggage`).
 */
export async function roundTask(
  runtime: TaskRuntime,
  requestState: unknown,
  binding: CallBinding,
  capabilities: Record<string, unknown> | undefined,
  responses: Record<string, unknown> | undefined,
  dropped: readonly string[],
  meta?: unknown,
): Promise<TaskRecord> {
  if (requestState === undefined) {
    return runtime.submit({
      owner: binding.owner,
      tool: binding.tool,
      arguments: binding.args,
      errorResultStatus: 'completed',
      ...(capabilities && { clientCapabilities: capabilities as JsonObject }),
      ...(isObject(meta) && { traceCarrier: meta }),
    });
  }
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
  for (const [key, question] of questions) inputRequests[key] = wireRequestOf(question, 'modern') as unknown as JsonObject;
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

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
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
