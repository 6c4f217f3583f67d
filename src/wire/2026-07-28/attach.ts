import { ProtocolError, ProtocolErrorCode, type McpServer, type ServerContext } from '@modelcontextprotocol/server';
import * as z from 'zod';
import { IllegalTransitionError } from '../../core/errors.js';
import { isTerminal } from '../../core/status.js';
import { taskMeta } from '../task-view.js';
import type { Principal } from '../../core/access.js';
import type { JsonObject } from '../../core/json.js';
import type { TaskRuntime } from '../../runtime/runtime.js';
import { handler, taskIdParams } from '../handler.js';
import { pollTask, type PollThrottle, type SignalSource } from '../poll-throttle.js';
import { principalOf } from '../principal.js';
import { readEnvelope, requireTasksExtension, type Envelope2026 } from './envelope.js';
import { toDetailedTask } from './task-object.js';

// The SDK lifts `inputResponses` out of every request's params into `ctx.mcpReq.inputResponses`.
const updateParams = z.looseObject({ taskId: z.string().min(1).max(256), inputResponses: z.record(z.string().max(256), z.unknown()).optional() });

/**
 * Serves the 2026-07-28 `io.modelcontextprotocol/tasks` methods on one (per-request) `McpServer`:
 * (`tasks/get` results get `resultType: "complete"` from the SDK's encode seam.)
 * - `tasks/get` → the `DetailedTask`, its `inputRequests` limited to what the requesting client
 *   declared it can answer (see `toDetailedTask`'s `viewer`);
 * - `tasks/update {taskId, inputResponses}` → empty ack once the answers are durable; keys not
 *   outstanding are ignored whatever their values (junk under a key never asked does not spoil the
 *   valid answers sent with it); a partial set leaves the task `input_required`; an answer to an
 *   outstanding question that does not fit it — not an object (the SDK drops those from the params,
 *   so they are found through `droppedInputResponseKeys`), not a valid `ElicitResult` /
 *   `CreateMessageResult` / `ListRootsResult`, or form content not matching the `requestedSchema`
 *   (MCP "Elicitation") — refuses the whole update with -32602 (message naming each field, and
 *   `data.problems` keyed by question key): none of its answers is stored and the task keeps the
 *   same `inputRequests`; an `inputResponses` that is not an object is refused -32602 too;
 * - `tasks/cancel` → empty ack; the task is `cancelled` before the ack unless it had already ended.
 * Every method requires the extension in the request's client capabilities (else -32021 with
 * `data.requiredCapabilities`); unknown or foreign ids are -32602. `tasks/result` and `tasks/list`
 * do not exist in this version and answer -32601 (they are simply not registered).
 */
export function attachHandlers2026(mcp: McpServer, runtime: TaskRuntime, options: { throttle?: PollThrottle; fallbackTools?: boolean } = {}): void {
  const server = mcp.server;
  const guard = (ctx: ServerContext) => {
    requireTasksExtension(readEnvelope(ctx.mcpReq.envelope));
    return principalOf(ctx.http?.authInfo);
  };

  handler(server, 'tasks/get', taskIdParams, (params, ctx) =>
    getTask2026(runtime, params.taskId, readEnvelope(ctx.mcpReq.envelope), principalOf(ctx.http?.authInfo), options, ctx.mcpReq.signal),
  );

  handler(server, 'tasks/update', updateParams, async (params, ctx) => {
    const owner = guard(ctx);
    const responses = ctx.mcpReq.inputResponses ?? params.inputResponses;
    if (responses === undefined) throw new ProtocolError(ProtocolErrorCode.InvalidParams, 'Invalid params for tasks/update: inputResponses is required');
    const task = await runtime.get(params.taskId, owner);
    const dropped = (ctx.mcpReq.droppedInputResponseKeys ?? []).filter((key) => Object.hasOwn(task.inputRequests, key));
    if (dropped.length > 0)
      throw new ProtocolError(ProtocolErrorCode.InvalidParams, `Invalid inputResponses: ${dropped.map((k) => `'${k}'`).join(', ')} not a response object`);
    // All or nothing: every answer to an outstanding question is checked against its question
    // before any is stored (InvalidAnswerError → -32602 with the problems per key); others are ignored.
    await runtime.provideInputs(params.taskId, responses, owner);
    return {};
  });

  handler(server, 'tasks/cancel', taskIdParams, async (params, ctx) => {
    const owner = guard(ctx);
    try {
      const task = await runtime.get(params.taskId, owner);
      if (!isTerminal(task.status)) await runtime.cancel(task.taskId, owner);
    } catch (error) {
      if (!(error instanceof IllegalTransitionError)) throw error; // else it ended meanwhile: cancellation is cooperative
    }
    return {};
  });
}

/**
 * 2026-07-28 `tasks/get` (extension "Polling"): the `DetailedTask` of `taskId` for `owner`, its
 * `inputRequests` limited to what the request's `envelope` (its `_meta`, with
 * `io.modelcontextprotocol/clientCapabilities`) declares it can answer (see `toDetailedTask`), plus
 * the `mcp-tasks/progress` `_meta`; throttled like every poll (`pollTask`). Shared by the SDK
 * handler and the lean path. Throws -32021 (`MissingRequiredClientCapabilityError`) when
 * the envelope does not declare the extension, `TaskNotFoundError` (→ -32602) for unknown, foreign
 * or expired ids. The result has no `resultType`: the SDK's encoder (or the lean path) adds it.
 */
export async function getTask2026(
  runtime: TaskRuntime,
  taskId: string,
  envelope: Envelope2026,
  owner: Principal,
  options: { throttle?: PollThrottle; fallbackTools?: boolean },
  signal?: SignalSource,
): Promise<JsonObject> {
  requireTasksExtension(envelope);
  const task = await pollTask(runtime, taskId, owner, options.throttle, signal);
  const viewer = { capabilities: envelope.capabilities, fallbackTools: options.fallbackTools };
  const meta = taskMeta(task);
  return { ...toDetailedTask(task, viewer), ...(meta && { _meta: meta }) };
}
