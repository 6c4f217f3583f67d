import { ProtocolError, ProtocolErrorCode, type JSONRPCRequest, type MessageExtraInfo } from '@modelcontextprotocol/server';
import type { JsonObject } from '../../core/json.js';
import { withDeadline } from '../../core/deadline.js';
import type { InputRequest } from '../../core/task.js';
import type { TaskRuntime } from '../../runtime/runtime.js';
import { awaitRound, inputRequiredResult, objectResponses, roundTask } from './mrtr.js';
import { principalOf } from '../principal.js';
import type * as z from 'zod';
import type { TaskToolConfig, TaskTools } from '../task-tools.js';
import type { ClaimIo } from '../sdk-seam.js';
import { progressForwarder } from '../progress.js';
import { callModern, refuseUnanswerable, type SyncCall, type SyncCallSettings } from '../sync-call.js';
import { clientCanAnswer } from '../input-kinds.js';
import { declaresTasksExtension, requestCapabilities, requireTasksExtension, toCreateTaskResult } from './task-object.js';

/** How long an `askBeforeTask` round waits for the task's first question by default, in ms. */
export const DEFAULT_ASK_BEFORE_TASK_MS = 2_000;

/**
 * How long a call from a client that did not declare form elicitation waits for the task's first
 * question before the `CreateTaskResult`, in ms: if the task asks something the client cannot
 * answer, the call is refused -32021 (or handed off to the fallback tools) instead.
 */
export const UNANSWERABLE_PROBE_MS = 2_000;

const FORM_QUESTION: InputRequest = { kind: 'elicitation', message: '', requestedSchema: {} };

/**
 * When a 2026-07-28 server answers a `tools/call` of a task tool with a task (the extension makes
 * task creation server-directed): `always`; `never` (run it as an ordinary call); or
 * `{ afterMs }` — start the task and answer with its result if it ends within `afterMs`
 * milliseconds, otherwise (or as soon as it needs input) with `CreateTaskResult`.
 */
export type ModernTaskPolicy = 'always' | 'never' | { afterMs: number };

/** Whether a 2026-07-28 call of a task tool becomes a task (see `ModernTaskPolicy`). */
export interface ModernCallPolicy {
  policy: ModernTaskPolicy;
  /** `taskSupport: 'required'`: only ever runs as a task. */
  required: boolean;
  /**
   * MRTR before the task is handed out (`TaskToolConfig.askBeforeTask`): how long, in ms, each
   * round waits for the task's first question; undefined = off.
   */
  askBeforeTaskMs?: number;
}

/**
 * Whether `McpTasks` answers this 2026-07-28 `tools/call` itself (with a task, a result, or
 * -32021) rather than letting the SDK run it as an ordinary call: yes for `required` tools, and for
 * clients that declared the extension unless the policy is `never`. A non-declaring client is never
 * given a task (extension "Capability Negotiation"). Decided from the params alone, synchronously.
 */
export function claimsModernCall(params: { _meta?: unknown }, call: ModernCallPolicy): boolean {
  if (call.required) return true;
  return declaresTasksExtension(params._meta) && call.policy !== 'never';
}

/**
 * Answers a claimed 2026-07-28 `tools/call`: -32021 when the client did not declare the extension
 * (only `required` tools get here then); otherwise stores and starts the task (recording the
 * request's client capabilities) and returns `CreateTaskResult` — or, under `{ afterMs }`, the
 * tool's own result (`resultType: "complete"`) or JSON-RPC error when the task ends within `afterMs`
 * without needing input. `params.task` is ignored (the extension removed it). `args` are checked by
 * the caller.
 *
 * A client that did not declare form elicitation (MCP Inspector's CLI, for one) has the call held
 * up to `UNANSWERABLE_PROBE_MS` for the task's first question: one it cannot answer → -32021
 * (Missing Required Client Capability, `data.requiredCapabilities`, the message quoting the
 * question; the task is cancelled) or, with the fallback tools, the hand-off result naming the
 * task — never a task that waits for an answer this client can never give.
 *
 * With `askBeforeTaskMs` (SEP-2663 "MRTR composition": input gathered before the task is created),
 * each round first waits up to that long for the task to ask something this client can answer, and
 * if it does, answers with an `InputRequiredResult` (no `taskId`; `requestState` names the task,
 * see `mrtr.ts`); the retry with `inputResponses` and `requestState` journals the answers and
 * continues — another round, or the `CreateTaskResult` (never carrying `requestState` or
 * `inputRequests`). A bad `requestState` or an answer that does not fit → -32602, nothing stored.
 */
export async function answerModernCall(
  settings: SyncCallSettings,
  params: { name?: unknown; _meta?: unknown; requestState?: unknown; inputResponses?: unknown },
  args: JsonObject,
  owner: string | null,
  call: ModernCallPolicy,
  io: ClaimIo,
): Promise<JsonObject> {
  const { runtime } = settings;
  requireTasksExtension(params._meta);
  const tool = String(params.name);
  const capabilities = requestCapabilities(params._meta);
  const binding = { owner, tool, args };
  const { responses, dropped } = objectResponses(params.inputResponses);
  let task = await roundTask(runtime, params.requestState, binding, capabilities, responses, dropped, params._meta);
  // A client that cannot answer form questions learns at once when the task's first question is one
  // it cannot answer (instead of a task that waits for it forever).
  const probeMs = call.askBeforeTaskMs ?? (clientCanAnswer(FORM_QUESTION, capabilities) ? undefined : UNANSWERABLE_PROBE_MS);
  if (probeMs !== undefined) {
    const round = await withDeadline(probeMs, [io.signal], (signal) => awaitRound(runtime, task.taskId, { owner, capabilities, offered: responses, signal }));
    if (round.kind === 'input' && call.askBeforeTaskMs !== undefined) return inputRequiredResult(runtime, round.task, round.questions, binding);
    if (round.kind === 'unanswerable') {
      const sync: SyncCall = { settings, name: tool, args, owner, io, progress: () => undefined };
      return refuseUnanswerable(sync, round.task, round.questions);
    }
    task = round.task;
  }
  if (typeof call.policy !== 'object' || call.required) return toCreateTaskResult(task);

  const needsInput = new AbortController();
  let latest = task;
  await withDeadline(call.policy.afterMs, [needsInput.signal], (signal) =>
    runtime.waitForTerminal(task.taskId, owner, {
      signal,
      onChange: (current) => {
        latest = current;
        if (current.status === 'input_required') needsInput.abort();
      },
    }),
  );
  const outcome = latest.outcome;
  if (latest.status === 'completed' && outcome?.type === 'result') return { ...outcome.result, resultType: 'complete' };
  if (latest.status === 'failed' && outcome?.type === 'error') throw new ProtocolError(outcome.error.code, outcome.error.message, outcome.error.data);
  return toCreateTaskResult(latest);
}

/** The `ModernCallPolicy` of a task tool, from its registration (`taskPolicy`, `taskSupport`, `askBeforeTask`). */
function modernCallPolicy(config: Pick<TaskToolConfig<z.ZodObject>, 'taskPolicy' | 'taskSupport' | 'askBeforeTask'>): ModernCallPolicy {
  const ask = config.askBeforeTask;
  return {
    policy: config.taskPolicy ?? 'always',
    required: config.taskSupport === 'required',
    ...(ask && { askBeforeTaskMs: typeof ask === 'object' ? ask.waitMs : DEFAULT_ASK_BEFORE_TASK_MS }),
  };
}

/**
 * The 2026-07-28 requests `McpTasks` answers itself, ahead of the SDK (see `claimRequests`); returns
 * the function answering one, given its `ClaimIo` (its value is the JSON-RPC result, its rejection
 * the JSON-RPC error), or undefined to leave the request to the SDK.
 *
 * - `tools/call` of a task tool: when `claimsModernCall` (Tasks extension "Task Creation"),
 *   answered by `answerModernCall` with `CreateTaskResult` (`resultType: "task"`), MRTR rounds
 *   first (`askBeforeTask`), the tool's result under `{ afterMs }`, or -32021 for a `required` tool
 *   called by a client that did not declare the extension; otherwise as an ordinary call with
 *   multi round-trip requests (`callModern`: `InputRequiredResult` rounds on the same durable
 *   task, progress to the call's `progressToken`). Answered here rather than by the SDK so that its
 *   errors (a bad `requestState`, -32021) are JSON-RPC errors. Arguments that are not an object, too
 *   large or too deeply nested, or an `inputResponses` that is not an object → -32602.
 * - `tasks/update` whose `inputResponses` is present but not an object (extension "Task Update
 *   Requests") → -32602, before anything is written: the SDK lifts `inputResponses` out of every
 *   request's params and ignores one that is not an object, so the handler could not tell.
 */
export function claimModernCall(
  message: JSONRPCRequest,
  extra: MessageExtraInfo | undefined,
  deps: { tools: TaskTools; runtime: TaskRuntime; sync: SyncCallSettings },
  /** `taskCreatingOnly`: claim only the `tools/call` requests `claimsModernCall` takes (the lean path, which cannot stream an ordinary call's progress). */
  options: { taskCreatingOnly?: boolean } = {},
): ((io: ClaimIo) => Promise<JsonObject>) | undefined {
  if (message.method === 'tasks/update') {
    const malformed = malformedInputResponses('tasks/update', (message.params as { inputResponses?: unknown } | undefined)?.inputResponses);
    return malformed && (() => Promise.reject(malformed));
  }
  if (message.method !== 'tools/call') return undefined;
  const params = (message.params ?? {}) as { name?: unknown; arguments?: unknown; _meta?: unknown; requestState?: unknown; inputResponses?: unknown };
  const tool = deps.tools.get(params.name);
  if (!tool) return undefined;
  const call = modernCallPolicy(tool.config);
  const claimed = claimsModernCall(params, call);
  if (options.taskCreatingOnly && !claimed) return undefined;
  const owner = principalOf(extra?.authInfo);
  return async (io) => {
    const args = deps.tools.checkArguments(tool.name, params.arguments);
    if (claimed) return answerModernCall(deps.sync, params, args, owner, call, io);
    const malformed = malformedInputResponses('tools/call', params.inputResponses);
    if (malformed) throw malformed;
    const { responses, dropped } = objectResponses(params.inputResponses);
    const meta = params._meta as { progressToken?: unknown } | undefined;
    const sync: SyncCall = { settings: deps.sync, name: tool.name, args, owner, io, progress: progressForwarder(meta?.progressToken, io.notify) };
    return callModern(sync, { _meta: params._meta, requestState: params.requestState, inputResponses: responses }, dropped);
  };
}

/**
 * The -32602 for a `method` request (`tools/call`, `tasks/update`) whose `inputResponses` is
 * present but not an object, else undefined (absent is no error here; values that are not objects
 * are judged per key by whoever takes the answers, which ignores keys that are not outstanding).
 */
function malformedInputResponses(method: string, responses: unknown): ProtocolError | undefined {
  if (responses === undefined || (typeof responses === 'object' && responses !== null && !Array.isArray(responses))) return undefined;
  return new ProtocolError(
    ProtocolErrorCode.InvalidParams,
    `Invalid params for ${method}: inputResponses must be an object mapping question keys to response objects`,
  );
}
