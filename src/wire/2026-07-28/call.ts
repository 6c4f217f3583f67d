import { ProtocolError, ProtocolErrorCode, type JSONRPCRequest, type MessageExtraInfo } from '@modelcontextprotocol/server';
import { idempotencyKeyOf } from '../../core/idempotency.js';
import type { JsonObject } from '../../core/json.js';
import type { TaskRuntime } from '../../runtime/runtime.js';
import type { OrdinaryCallSettings } from '../ordinary-call.js';
import { principalOf } from '../principal.js';
import { progressForwarder } from '../progress.js';
import type { ClaimIo } from '../sdk-seam.js';
import type { TaskToolConfig, TaskTools } from '../task-tools.js';
import { readEnvelope, type Envelope2026 } from './envelope.js';
import { objectResponses } from './mrtr.js';
import { callOrdinary2026 } from './ordinary-call.js';
import { answerTaskCall2026, DEFAULT_ASK_BEFORE_TASK_MS, type CallHandling2026 } from './task-call.js';

/**
 * Whether a 2026-07-28 `tools/call` of a task tool becomes a task (answered by
 * `answerTaskCall2026`) rather than an ordinary call with multi round-trip requests
 * (`callOrdinary2026`): yes for `required` tools, and for clients that declared the extension
 * unless the tool's policy is `never`. A non-declaring client is never given a task (extension
 * "Capability Negotiation"). Decided from the envelope alone, synchronously.
 */
export function becomesTask2026(envelope: Envelope2026, handling: CallHandling2026): boolean {
  if (handling.required) return true;
  return envelope.declaresTasks && handling.policy !== 'never';
}

/** The `CallHandling2026` of a task tool, from its registration (`taskPolicy`, `taskSupport`, `askBeforeTask`). */
export function callHandling2026(config: Pick<TaskToolConfig, 'taskPolicy' | 'taskSupport' | 'askBeforeTask'>): CallHandling2026 {
  const ask = config.askBeforeTask;
  return {
    policy: config.taskPolicy ?? 'always',
    required: config.taskSupport === 'required',
    ...(ask && { askBeforeTaskMs: typeof ask === 'object' ? ask.waitMs : DEFAULT_ASK_BEFORE_TASK_MS }),
  };
}

/** What `claimCall2026` works with: the task tools, the runtime, and the ordinary-call settings of one `McpTasks`. */
export interface CallDeps2026 {
  tools: TaskTools;
  runtime: TaskRuntime;
  calls: OrdinaryCallSettings;
}

/**
 * The 2026-07-28 requests `McpTasks` answers itself, ahead of the SDK (see `claimRequests`); returns
 * the function answering one, given its `ClaimIo` (its value is the JSON-RPC result, its rejection
 * the JSON-RPC error), or undefined to leave the request to the SDK. The request's `_meta`
 * envelope is read once here (`readEnvelope`) and handed down.
 *
 * - `tools/call` of a task tool: when `becomesTask2026`, answered by `answerTaskCall2026` with
 *   `CreateTaskResult` (`resultType: "task"`), MRTR rounds first (`askBeforeTask`), the tool's result
 *   under `{ afterMs }`, or -32021 for a `required` tool called by a client that did not declare the
 *   extension; otherwise as an ordinary call with multi round-trip requests (`callOrdinary2026`:
 *   `InputRequiredResult` rounds on the same durable task, progress to the call's `progressToken`).
 *   Answered here rather than by the SDK so that its errors (a bad `requestState`, -32021) are
 *   JSON-RPC errors. Arguments that are not an object, too large or too deeply nested, or an
 *   `inputResponses` that is not an object → -32602.
 * - `tasks/update` whose `inputResponses` is present but not an object (extension "Task Update
 *   Requests") → -32602, before anything is written: the SDK lifts `inputResponses` out of every
 *   request's params and ignores one that is not an object, so the handler could not tell.
 *
 * `taskCreatingOnly`: claim only the `tools/call` requests that become tasks (the fast path, which
 * cannot stream an ordinary call's progress).
 */
export function claimCall2026(
  message: JSONRPCRequest,
  extra: MessageExtraInfo | undefined,
  deps: CallDeps2026,
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
  const envelope = readEnvelope(params._meta);
  const handling = callHandling2026(tool.config);
  const task = becomesTask2026(envelope, handling);
  if (options.taskCreatingOnly && !task) return undefined;
  const owner = principalOf(extra?.authInfo);
  return async (io) => {
    const args = deps.tools.checkArguments(tool.name, params.arguments);
    const malformed = !task && malformedInputResponses('tools/call', params.inputResponses);
    if (malformed) throw malformed;
    const { responses, dropped } = objectResponses(params.inputResponses);
    const idempotencyKey = idempotencyKeyOf(params);
    const answers = {
      ...(idempotencyKey !== undefined && { idempotencyKey }),
      ...(params.requestState !== undefined && { requestState: params.requestState }),
      ...(responses && { inputResponses: responses }),
      dropped,
    };
    if (task) return answerTaskCall2026(deps.calls, { tool: tool.name, args, owner, envelope, ...answers }, handling, io);
    const progress = progressForwarder(envelope.progressToken, io.notify);
    return callOrdinary2026({ settings: deps.calls, name: tool.name, args, owner, io, progress }, { envelope, ...answers });
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
