import { ProtocolError, ProtocolErrorCode, type JSONRPCRequest, type MessageExtraInfo } from '@modelcontextprotocol/server';
import type { JsonObject } from '../../core/json.js';
import type { TaskRuntime } from '../../runtime/runtime.js';
import { principalOf } from '../principal.js';
import type { TaskTools } from '../task-tools.js';
import { declaresTasksExtension, missingTasksCapability, toCreateTaskResult } from './task-object.js';

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
 * (only `required` tools get here then); otherwise stores and starts the task and returns
 * `CreateTaskResult` — or, under `{ afterMs }`, the tool's own result (`resultType: "complete"`) or
 * JSON-RPC error when the task ends within `afterMs` without needing input. `params.task` is
 * ignored (the extension removed it). `args` are checked by the caller.
 */
export async function answerModernCall(
  runtime: TaskRuntime,
  params: { name?: unknown; _meta?: unknown },
  args: JsonObject,
  owner: string | null,
  call: ModernCallPolicy,
): Promise<JsonObject> {
  if (!declaresTasksExtension(params._meta)) throw missingTasksCapability();
  const task = await runtime.submit({ owner, tool: String(params.name), arguments: args, errorResultStatus: 'completed' });
  if (typeof call.policy !== 'object' || call.required) return toCreateTaskResult(task);

  const needsInput = new AbortController();
  let latest = task;
  await runtime.waitForTerminal(task.taskId, owner, {
    signal: AbortSignal.any([needsInput.signal, AbortSignal.timeout(Math.max(0, call.policy.afterMs))]),
    onChange: (current) => {
      latest = current;
      if (current.status === 'input_required') needsInput.abort();
    },
  });
  const outcome = latest.outcome;
  if (latest.status === 'completed' && outcome?.type === 'result') return { ...outcome.result, resultType: 'complete' };
  if (latest.status === 'failed' && outcome?.type === 'error') throw new ProtocolError(outcome.error.code, outcome.error.message, outcome.error.data);
  return toCreateTaskResult(latest);
}

/**
 * The 2026-07-28 requests `McpTasks` answers itself, ahead of the SDK (see `claimRequests`); returns
 * the pending answer (its value is the JSON-RPC result, its rejection the JSON-RPC error), or
 * undefined to leave the request to the SDK.
 *
 * - `tools/call` of a task tool that `claimsModernCall` takes (Tasks extension "Task Creation"):
 *   answered by `answerModernCall` with `CreateTaskResult` (`resultType: "task"`), the tool's result
 *   under `{ afterMs }`, or -32021 for a `required` tool called by a client that did not declare the
 *   extension; arguments that are not an object, too large or too deeply nested → -32602.
 * - `tasks/update` whose `inputResponses` is not an object mapping question keys to response
 *   objects (extension "Task Update Requests") → -32602, before anything is written. The SDK lifts
 *   `inputResponses` out of every request's params and silently drops non-object values, so the
 *   registered handler could not tell that they were malformed.
 */
export function claimModernCall(
  message: JSONRPCRequest,
  extra: MessageExtraInfo | undefined,
  deps: { tools: TaskTools; runtime: TaskRuntime },
): Promise<JsonObject> | undefined {
  if (message.method === 'tasks/update') return refuseMalformedInputResponses(message.params);
  if (message.method !== 'tools/call') return undefined;
  const params = (message.params ?? {}) as { name?: unknown; arguments?: unknown; _meta?: unknown };
  const tool = deps.tools.get(params.name);
  if (!tool) return undefined;
  const call = { policy: tool.config.taskPolicy ?? 'always', required: tool.config.taskSupport === 'required' };
  if (!claimsModernCall(params, call)) return undefined;
  return (async () => answerModernCall(deps.runtime, params, deps.tools.checkArguments(tool.name, params.arguments), principalOf(extra?.authInfo), call))();
}

/** A rejected answer (-32602) for `tasks/update` params whose `inputResponses` is malformed, else undefined. */
function refuseMalformedInputResponses(params: JSONRPCRequest['params']): Promise<never> | undefined {
  const responses = (params as { inputResponses?: unknown } | undefined)?.inputResponses;
  const isRecord = (v: unknown) => typeof v === 'object' && v !== null && !Array.isArray(v);
  if (isRecord(responses) && Object.values(responses as object).every(isRecord)) return undefined;
  return Promise.reject(
    new ProtocolError(
      ProtocolErrorCode.InvalidParams,
      'Invalid params for tasks/update: inputResponses must be an object mapping question keys to response objects',
    ),
  );
}
