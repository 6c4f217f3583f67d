import { CLIENT_CAPABILITIES_META_KEY, MissingRequiredClientCapabilityError } from '@modelcontextprotocol/server';
import type { JsonObject } from '../../core/json.js';
import type { TaskRecord } from '../../core/task.js';
import { answerableQuestions, unanswerableMessage, wireRequestOf } from '../input-kinds.js';

/** The extension identifier (2026-07-28 Tasks extension "Extension Identifier"). */
export const TASKS_EXTENSION = 'io.modelcontextprotocol/tasks';

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
  const base = taskFieldsV2(task);
  if (task.status === 'input_required') {
    // Servers MUST NOT send input requests the client did not declare (MRTR "Server Requirements"):
    // those are left out, and the statusMessage says what kind of client can answer them.
    const { answerable, unanswerable } = viewer
      ? answerableQuestions(task, viewer.capabilities)
      : { answerable: Object.entries(task.inputRequests), unanswerable: [] };
    const inputRequests: JsonObject = {};
    for (const [key, question] of answerable) inputRequests[key] = wireRequestOf(question, 'modern') as unknown as JsonObject;
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
  return { resultType: 'task', ...taskFieldsV2(task) };
}

/**
 * The extension's `Task` fields of a record: ISO 8601 times, `ttlMs` and `pollIntervalMs` in ms.
 * `ttlMs` is the actual lifetime from `createdAt` (null = unlimited): for a terminal task
 * `expiry − createdAt`, which the store extended when the task ended so its result is kept at least
 * `min(ttl, retainAfterEndMs)` after the end (see `ttlAtEnd`; 2026-07-28 Tasks extension `ttlMs`,
 * as 2025-11-25 "TTL and Resource Management": the receiver reports the actual value).
 */
export function taskFieldsV2(task: TaskRecord): JsonObject {
  return {
    taskId: task.taskId,
    status: task.status,
    ...(task.statusMessage !== undefined && { statusMessage: task.statusMessage }),
    createdAt: task.createdAt,
    lastUpdatedAt: task.lastUpdatedAt,
    ttlMs: task.ttl,
    pollIntervalMs: task.pollInterval,
  };
}

/**
 * The client capabilities a 2026-07-28 request declares: `io.modelcontextprotocol/clientCapabilities`
 * of its `_meta` (or of the SDK's lifted `ctx.mcpReq.envelope`); undefined when absent.
 */
export function requestCapabilities(meta: unknown): Record<string, unknown> | undefined {
  const caps = (meta as Record<string, unknown> | undefined)?.[CLIENT_CAPABILITIES_META_KEY];
  return typeof caps === 'object' && caps !== null && !Array.isArray(caps) ? (caps as Record<string, unknown>) : undefined;
}

/** True when a request's per-request client capabilities (`_meta` envelope) declare the extension. */
export function declaresTasksExtension(meta: unknown): boolean {
  const caps = (meta as Record<string, unknown> | undefined)?.[CLIENT_CAPABILITIES_META_KEY] as { extensions?: Record<string, unknown> } | undefined;
  const declared = caps?.extensions?.[TASKS_EXTENSION];
  return declared !== undefined && declared !== null && typeof declared === 'object';
}

/** Throws the -32021 `missingTasksCapability()` error unless the request's `_meta` envelope declares the extension. */
export function requireTasksExtension(meta: unknown): void {
  if (!declaresTasksExtension(meta)) throw missingTasksCapability();
}

/** The -32021 error for a client that did not declare the extension (`data.requiredCapabilities`). */
export function missingTasksCapability(): MissingRequiredClientCapabilityError {
  return new MissingRequiredClientCapabilityError({ requiredCapabilities: { extensions: { [TASKS_EXTENSION]: {} } } });
}
