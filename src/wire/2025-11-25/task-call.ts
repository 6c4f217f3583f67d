import { ProtocolError, ProtocolErrorCode, type JSONRPCRequest, type MessageExtraInfo } from '@modelcontextprotocol/server';
import * as z from 'zod';
import type { TaskRuntime } from '../../runtime/runtime.js';
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
  const params = (message.params ?? {}) as { name?: unknown; arguments?: unknown; task?: unknown; _meta?: { progressToken?: unknown; [key: string]: unknown } };
  const name = String(params.name);
  const tool = deps.tools.get(params.name);
  if (params.task === undefined && tool?.config.taskSupport !== 'required') return undefined;
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
    const owner = principalOf(extra?.authInfo);
    const record = await createCallTask(deps.runtime, {
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
