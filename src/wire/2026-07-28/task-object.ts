import type { JsonObject } from '../../core/json.js';
import type { TaskRecord } from '../../core/task.js';
import { answerableQuestions, unanswerableMessage, wireRequestOf } from '../input-kinds.js';
import { taskFields } from '../task-view.js';

/** JSON-RPC code a `failed` task reports when it failed on an `isError` tool result (created over 2025-11-25). */
const TOOL_ERROR_CODE = -32603;

/**
 * Who a `DetailedTask` is shown to: the requestor's declared client capabilities (the request's
 * `io.modelcontextprotocol/clientCapabilities`) and whether the fallback tools can answer questions.
 */
export interface TaskViewer {
  capabilities: unknown;
  fallbackTools?: boolean;
}

/**
 * The extension's `DetailedTask` (as `tasks/get` and `notifications/tasks` carry it): the `Task`
 * fields (`ttlMs`, `pollIntervalMs` in ms; ISO 8601 times) plus, by status, `inputRequests`
 * (`input_required`: the outstanding questions as input requests — `elicitation/create` in form or
 * URL mode, `sampling/createMessage`, `roots/list`, see `wireRequestOf`), `result`
 * (`completed`: the `CallToolResult` as the call would have returned it in 2026-07-28, i.e. with
 * `resultType: "complete"`) or `error` (`failed`).
 *
 * A task created over 2025-11-25 whose tool result had `isError: true` is `failed` with a result and
 * no JSON-RPC error; it is shown with `error: { code: -32603, message, data: { result } }` so the
 * extension's "failed carries error" holds without losing the result (SEP-2663: 2025 tasks stay
 * readable through the new `tasks/get`).
 *
 * With `viewer`, questions that client may not be sent (`clientCanAnswer` on its capabilities) are
 * left out of `inputRequests` (possibly leaving it `{}`), and `statusMessage` says what kind of
 * client — or the fallback tool `answer_task_input` — can answer them (`unanswerableMessage`).
 */
export function toDetailedTask(task: TaskRecord, viewer?: TaskViewer): JsonObject {
  const base = taskFields(task);
  if (task.status === 'input_required') {
    // Servers MUST NOT send input requests the client did not declare (MRTR "Server Requirements"):
    // those are left out, and the statusMessage says what kind of client can answer them.
    const { answerable, unanswerable } = viewer
      ? answerableQuestions(task, viewer.capabilities)
      : { answerable: Object.entries(task.inputRequests), unanswerable: [] };
    const inputRequests: JsonObject = {};
    for (const [key, question] of answerable) inputRequests[key] = wireRequestOf(question, '2026-07-28') as unknown as JsonObject;
    base.inputRequests = inputRequests;
    if (unanswerable.length > 0) base.statusMessage = unanswerableMessage(unanswerable, viewer?.fallbackTools ?? false);
  }
  const outcome = task.outcome;
  // A 2026-07-28 result carries its discriminator: the call would have returned resultType "complete".
  if (task.status === 'completed' && outcome?.type === 'result') base.result = { ...outcome.result, resultType: 'complete' };
  if (task.status === 'failed' && outcome) {
    base.error =
      outcome.type === 'error'
        ? outcome.error
        : { code: TOOL_ERROR_CODE, message: task.statusMessage ?? 'The tool reported an error', data: { result: outcome.result } };
  }
  return base;
}

/** The flat `CreateTaskResult` (`resultType: "task"` plus the `Task` fields). */
export function toCreateTaskResult(task: TaskRecord): JsonObject {
  return { resultType: 'task', ...taskFields(task) };
}
