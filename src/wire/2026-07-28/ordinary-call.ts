import { MissingRequiredClientCapabilityError, ProtocolError, ProtocolErrorCode, type CallToolResult, type McpServer } from '@modelcontextprotocol/server';
import type { JsonObject } from '../../core/json.js';
import { withDeadline } from '../../core/deadline.js';
import type { InputRequest, TaskRecord } from '../../core/task.js';
import { createCallTask } from '../create-task.js';
import { isStoreUnavailable } from '../errors.js';
import { capabilityNeeded } from '../input-kinds.js';
import { handOff, outageHandOff, registerListedTools, slowReason, type OrdinaryCall, type OrdinaryCallSettings } from '../ordinary-call.js';
import { toolResultOf } from '../task-result.js';
import type { Envelope2026 } from './envelope.js';
import { awaitRound, inputRequiredResult, resumeRound } from './mrtr.js';

/**
 * Registers each task tool on a 2026-07-28 `McpServer` so that `tools/list` shows it (see
 * `registerListedTools`). Its calls never reach the SDK's callback: every 2026-07-28 call of a task
 * tool is answered ahead of the SDK by `claimCall2026` (so that a bad `requestState` or -32021 are
 * JSON-RPC errors: the SDK turns anything a tool callback throws into an `isError` result); the
 * callback only refuses with -32603 if it is ever reached.
 */
export function registerTools2026(mcp: McpServer, settings: OrdinaryCallSettings): void {
  registerListedTools(mcp, settings, async (name) => {
    throw new ProtocolError(ProtocolErrorCode.InternalError, `Task tool '${name}' is answered ahead of the SDK`);
  });
}

/** The parts of a 2026-07-28 ordinary call's request a round needs, read once by `claimCall2026`. */
export interface OrdinaryRequest2026 {
  envelope: Envelope2026;
  /** `requestState` of a retried round; undefined on the first. */
  requestState?: unknown;
  /** The call's idempotency key (see `TaskCallRequest2026.idempotencyKey`); ignored with `requestState`. */
  idempotencyKey?: string;
  /** `inputResponses` with object values (see `objectResponses`); `dropped` lists keys whose values were not objects. */
  inputResponses?: Record<string, unknown>;
  dropped: readonly string[];
}

/**
 * An ordinary 2026-07-28 call of a task tool (the server does not hand out a task), answered ahead
 * of the SDK by `claimCall2026`. Returns the JSON-RPC result: the tool's result with `resultType:
 * "complete"`, an `InputRequiredResult`, or a hand-off result.
 *
 * 2026-07-28 (no server-to-client requests; "Multi Round-Trip Requests"): the first round creates
 * the task (`createCallTask`; a tool result with `isError` ends it `completed`); when the task asks
 * questions this request's client capabilities cover, the call answers with an
 * `InputRequiredResult` (`inputRequests` keyed by question key, `requestState` naming the task, see
 * `mrtr.ts`); the retry carrying `inputResponses` and that `requestState` resumes the same durable
 * execution (`resumeRound`: answers journaled first, nothing re-run; a restart between rounds loses
 * nothing) and is answered the same way: the result, another round, or a hand-off (see `handOff`).
 * Answers the first call already carries are used as soon as the task asks under their keys. A
 * retry's answer that does not fit its question, or a bad `requestState`, is refused with -32602
 * and stores nothing.
 *
 * When the task only asks what this client cannot answer (a capability it did not declare): see
 * `refuseUnanswerable`.
 *
 * Store outages: before the task is stored, and on a retry carrying `requestState` (which resumes
 * the same task when sent again), the call fails with the retryable -32010; once a first call's
 * task is stored, an outage while it waits hands the task off (`outageHandOff`).
 */
export async function callOrdinary2026(call: OrdinaryCall, request: OrdinaryRequest2026): Promise<JsonObject> {
  const { settings, name, args, owner, io } = call;
  const { runtime } = settings;
  const { envelope, requestState } = request;
  const capabilities = envelope.capabilities;
  const binding = { owner, tool: name, args };
  const offered = request.inputResponses;
  const task =
    requestState === undefined
      ? await createCallTask(runtime, {
          owner,
          tool: name,
          args,
          errorResultStatus: 'completed',
          capabilities,
          meta: envelope.meta,
          idempotencyKey: request.idempotencyKey,
        })
      : await resumeRound(runtime, requestState, binding, offered, request.dropped);
  try {
    const outcome = await withDeadline(settings.waitMs, [io.signal], (signal) =>
      awaitRound(runtime, task.taskId, { owner, capabilities, offered, signal, onChange: call.progress, known: task }),
    );
    switch (outcome.kind) {
      case 'ended':
        return complete(toolResultOf(outcome.task) as CallToolResult);
      case 'input':
        return await inputRequiredResult(runtime, outcome.task, outcome.questions, binding);
      case 'unanswerable':
        return await refuseUnanswerable(call, outcome.task, outcome.questions);
      case 'waiting':
        return complete(await handOff(call, task.taskId, slowReason(settings.waitMs)));
    }
  } catch (error) {
    // A retry (`requestState`) may be sent again as it is; a first call would start a second task.
    if (isStoreUnavailable(error) && requestState === undefined) return complete(outageHandOff(call, task.taskId));
    throw error;
  }
}

/**
 * A 2026-07-28 call whose task asks only what this client cannot answer (`questions`, for
 * capabilities it did not declare): with the fallback tools, the hand-off result (they can answer);
 * without, the task — which nobody else knows of — is cancelled and the call fails -32021 (Missing
 * Required Client Capability) with `data.requiredCapabilities` naming what is needed and a message
 * quoting the question.
 */
export async function refuseUnanswerable(call: OrdinaryCall, task: TaskRecord, questions: [string, InputRequest][]): Promise<JsonObject> {
  const { settings, name, owner } = call;
  const needs = [...new Set(questions.map(([, q]) => capabilityNeeded(q)))].join(', ');
  if (settings.fallbackTools) return complete(await handOff(call, task.taskId, `its question needs a client that declares ${needs}`));
  await settings.runtime.cancel(task.taskId, owner).catch(() => undefined);
  throw new MissingRequiredClientCapabilityError(
    { requiredCapabilities: requiredCapabilities(questions.map(([, q]) => q)) },
    `Tool '${name}' needs a client that declares ${needs} to answer its question: "${questions[0]![1].message}"`,
  );
}

/** A 2026-07-28 tool result answered ahead of the SDK: with its `resultType: "complete"`. */
function complete(result: CallToolResult): JsonObject {
  return { ...(result as unknown as JsonObject), resultType: 'complete' };
}

/** `requiredCapabilities` of -32021 for questions a client could not be sent (e.g. `{ elicitation: { form: {} } }`). */
function requiredCapabilities(questions: InputRequest[]): JsonObject {
  const needed: JsonObject = {};
  for (const q of questions) {
    if (q.kind === 'elicitation') needed.elicitation = { ...(needed.elicitation as JsonObject | undefined), form: {} };
    if (q.kind === 'url') needed.elicitation = { ...(needed.elicitation as JsonObject | undefined), url: {} };
    if (q.kind === 'sampling') needed.sampling = {};
    if (q.kind === 'roots') needed.roots = {};
  }
  return needed;
}
