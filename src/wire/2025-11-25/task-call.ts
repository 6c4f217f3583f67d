import { ProtocolError, ProtocolErrorCode, type JSONRPCRequest, type MessageExtraInfo } from '@modelcontextprotocol/server';
import * as z from 'zod';
import type { TaskRuntime } from '../../runtime/runtime.js';
import { IDEMPOTENCY_META_KEY, idempotencyKeyOf } from '../../core/idempotency.js';
import { createCallTask } from '../create-task.js';
import { principalOf } from '../principal.js';
import type { TaskTools } from '../task-tools.js';
import type { Session2025 } from './session.js';
import { toTask2025, type Task2025 } from './task-object.js';

/** `params.task` (2025-11-25 "Task Parameters"): `ttl` in ms, `null` for unlimited; other fields are ignored. */
const taskParam = z.looseObject({ ttl: z.number().finite().nonnegative().nullable().optional() });

/**
 * The 2025-11-25 `tools/call` requests `McpTasks` answers itself, ahead of the SDK (see
 * `claimRequests`): those with `params.task`, and calls of a `required` task tool without it.
 * Returns the function answering it (its value is the JSON-RPC result, its rejection the
 * JSON-RPC error), or undefined to leave the request to the SDK (ordinary calls of `optional` task
 * tools and of other tools).
 *
 * The answer is `CreateTaskResult { task }` (2025-11-25 "Creating Tasks") once the task is durably
 * stored; the task is then watched by `session` for status / progress notifications (with the
 * call's `_meta.progressToken`) and questions. Errors: `name` not a string → -32602; `params.task`
 * on a tool that is not a task tool → -32601; a `required` tool without `params.task` → -32601
 * ("Tool-Level Negotiation"); malformed `params.task`, or arguments that are not an object, too
 * large, too deeply nested or not valid for the tool's schema → -32602.
 */
export function claimTaskCall2025(
  message: JSONRPCRequest,
  extra: MessageExtraInfo | undefined,
  deps: { tools: TaskTools; runtime: TaskRuntime; session: Session2025 },
): (() => Promise<{ task: Task2025 }>) | undefined {
  if (message.method !== 'tools/call') return undefined;
  const params = (message.params ?? {}) as {
    name?: unknown;
    arguments?: unknown;
    task?: unknown;
    idempotencyKey?: unknown;
    _meta?: { progressToken?: unknown; [key: string]: unknown };
  };
  const name = String(params.name);
  const tool = deps.tools.get(params.name);
  if (params.task === undefined && tool?.config.taskSupport !== 'required') {
    // An ordinary call goes to the SDK, whose params schema drops fields it does not know: the key
    // travels on in `_meta`, where `callOrdinary2025` reads it (a conflicting pair is refused there).
    if (tool && params.idempotencyKey !== undefined) {
      try {
        idempotencyKeyOf(params); // a malformed or conflicting key is refused here, before the SDK drops it
      } catch (error) {
        return () => Promise.reject(error as Error);
      }
      keepIdempotencyKey(params);
    }
    return undefined;
  }
  return async () => {
    if (typeof params.name !== 'string') throw new ProtocolError(ProtocolErrorCode.InvalidParams, 'Invalid params: tools/call needs a string name');
    if (!tool)
      throw new ProtocolError(
        ProtocolErrorCode.MethodNotFound,
        `Tool '${name}' does not support task-augmented calls (its execution.taskSupport is not 'optional' or 'required')`,
      );
    if (params.task === undefined)
      throw new ProtocolError(
        ProtocolErrorCode.MethodNotFound,
        `Tool '${name}' must be called as a task (execution.taskSupport is 'required'): add params.task`,
      );
    const task = taskParam.safeParse(params.task);
    if (!task.success) throw new ProtocolError(ProtocolErrorCode.InvalidParams, `Invalid params.task: ${z.prettifyError(task.error)}`);
    const args = deps.tools.checkArguments(name, params.arguments);
    const idempotencyKey = idempotencyKeyOf(params);
    const owner = principalOf(extra?.authInfo);
    const record = await createCallTask(deps.runtime, {
      idempotencyKey,
      owner,
      tool: name,
      args,
      ttl: task.data.ttl,
      errorResultStatus: 'failed',
      capabilities: deps.session.clientCapabilities(),
      meta: params._meta,
    });
    const token = params._meta?.progressToken;
    deps.session.watch(record, owner, typeof token === 'string' || typeof token === 'number' ? token : undefined);
    return { task: toTask2025(record) };
  };
}

/**
 * Copies a valid `params.idempotencyKey` of an ordinary `tools/call` into
 * `params._meta["io.modelcontextprotocol/idempotencyKey"]` (where it is, or is the same, already:
 * `idempotencyKeyOf` checked that), so that it survives the SDK's parsing of the request.
 */
function keepIdempotencyKey(params: { idempotencyKey?: unknown; _meta?: unknown }): void {
  params._meta ??= {};
  if (typeof params._meta !== 'object' || params._meta === null || Array.isArray(params._meta)) return; // the SDK refuses such a request
  (params._meta as Record<string, unknown>)[IDEMPOTENCY_META_KEY] = params.idempotencyKey;
}
