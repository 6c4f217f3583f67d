import { ProtocolError, ProtocolErrorCode, type McpServer, type ServerContext } from '@modelcontextprotocol/server';
import * as z from 'zod';
import { IllegalTransitionError } from '../../core/errors.js';
import { isTerminal } from '../../core/status.js';
import { PROGRESS_META_KEY, type InputResponse } from '../../core/task.js';
import type { TaskRuntime } from '../../runtime/runtime.js';
import { handler } from '../handler.js';
import { pollTask, type PollThrottle } from '../poll-throttle.js';
import { principalOf } from '../principal.js';
import { declaresTasksExtension, missingTasksCapability, toDetailedTask } from './task-object.js';

const taskIdParams = z.looseObject({ taskId: z.string().min(1).max(256) });
// The SDK lifts `inputResponses` out of every request's params into `ctx.mcpReq.inputResponses`.
const updateParams = z.looseObject({ taskId: z.string().min(1).max(256), inputResponses: z.record(z.string().max(256), z.unknown()).optional() });
const elicitResult = z.looseObject({
  action: z.enum(['accept', 'decline', 'cancel']),
  content: z.record(z.string(), z.union([z.string(), z.number(), z.boolean(), z.array(z.string())])).optional(),
});

/**
 * Serves the 2026-07-28 `io.modelcontextprotocol/tasks` methods on one (per-request) `McpServer`:
 * - `tasks/get` → the `DetailedTask` (`resultType: "complete"` is added by the SDK's encode seam);
 * - `tasks/update {taskId, inputResponses}` → empty ack once the answers are durable; keys not
 *   outstanding are ignored; a partial set leaves the task `input_required`; malformed responses
 *   are refused with -32602 before anything is written (non-object ones already by
 *   `claimModernCall`, since the SDK drops them from the params); so is the whole update when any
 *   answer to an outstanding question does not match that question's `requestedSchema` (MCP
 *   "Elicitation"; -32602 whose message names each field and what it must be, `data.problems` keyed
 *   by question key): none of its answers is stored and the task keeps the same `inputRequests`;
 * - `tasks/cancel` → empty ack; the task is `cancelled` before the ack unless it had already ended.
 * Every method requires the extension in the request's client capabilities (else -32021 with
 * `data.requiredCapabilities`); unknown or foreign ids are -32602. `tasks/result` and `tasks/list`
 * do not exist in this era and answer -32601 (they are simply not registered).
 */
export function attachModernHandlers(mcp: McpServer, runtime: TaskRuntime, throttle?: PollThrottle): void {
  const server = mcp.server;
  const guard = (ctx: ServerContext) => {
    if (!declaresTasksExtension(ctx.mcpReq.envelope)) throw missingTasksCapability();
    return principalOf(ctx.http?.authInfo);
  };

  handler(server, 'tasks/get', taskIdParams, async (params, ctx) => {
    const owner = guard(ctx);
    const task = await pollTask(runtime, params.taskId, owner, throttle, ctx.mcpReq.signal);
    return { ...toDetailedTask(task), ...(task.progress && { _meta: { [PROGRESS_META_KEY]: task.progress } }) };
  });

  handler(server, 'tasks/update', updateParams, async (params, ctx) => {
    const owner = guard(ctx);
    const dropped = ctx.mcpReq.droppedInputResponseKeys ?? [];
    if (dropped.length > 0)
      throw new ProtocolError(ProtocolErrorCode.InvalidParams, `Invalid inputResponses: ${dropped.map((k) => `'${k}'`).join(', ')} not a response object`);
    const responses = ctx.mcpReq.inputResponses ?? params.inputResponses;
    if (responses === undefined) throw new ProtocolError(ProtocolErrorCode.InvalidParams, 'Invalid params for tasks/update: inputResponses is required');
    const answers: { [key: string]: InputResponse } = {};
    for (const [key, value] of Object.entries(responses)) {
      const parsed = elicitResult.safeParse(value);
      if (!parsed.success) throw new ProtocolError(ProtocolErrorCode.InvalidParams, `Invalid inputResponses['${key}']: ${z.prettifyError(parsed.error)}`);
      answers[key] = { action: parsed.data.action, ...(parsed.data.action === 'accept' && parsed.data.content && { content: parsed.data.content }) };
    }
    // All or nothing: every answer to an outstanding question is checked against its requestedSchema
    // before any is stored (InvalidAnswerError → -32602 with the problems per key); others are ignored.
    await runtime.provideInputs(params.taskId, answers, owner);
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
