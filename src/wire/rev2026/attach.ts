import { ProtocolError, ProtocolErrorCode, type McpServer, type ServerContext } from '@modelcontextprotocol/server';
import * as z from 'zod';
import { IllegalTransitionError } from '../../core/errors.js';
import type { JsonObject } from '../../core/json.js';
import { isTerminal } from '../../core/status.js';
import type { InputResponse } from '../../core/task.js';
import type { TaskRuntime } from '../../runtime/runtime.js';
import { toProtocolError } from '../errors.js';
import { pollTask, type PollThrottle } from '../poll-throttle.js';
import { principalOf } from '../principal.js';
import { declaresTasksExtension, missingTasksCapability, toCreateTaskResult, toDetailedTask } from './task-object.js';

/**
 * When a 2026-07-28 server answers a `tools/call` of a task tool with a task (the extension makes
 * task creation server-directed): `always`; `never` (run it as an ordinary call); or
 * `{ afterMs }` — start the task and answer with its result if it ends within `afterMs`
 * milliseconds, otherwise (or as soon as it needs input) with `CreateTaskResult`.
 */
export type ModernTaskPolicy = 'always' | 'never' | { afterMs: number };

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
 *   are refused with -32602 before anything is written;
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

  server.setRequestHandler(
    'tasks/get',
    { params: taskIdParams } as never,
    (async (params: { taskId: string }, ctx: ServerContext) => {
      const owner = guard(ctx);
      try {
        return toDetailedTask(await pollTask(runtime, params.taskId, owner, throttle, ctx.mcpReq.signal));
      } catch (error) {
        throw toProtocolError(error);
      }
    }) as never,
  );

  server.setRequestHandler(
    'tasks/update',
    { params: updateParams } as never,
    (async (params: { taskId: string; inputResponses?: Record<string, unknown> }, ctx: ServerContext) => {
      const owner = guard(ctx);
      const dropped = ctx.mcpReq.droppedInputResponseKeys ?? [];
      if (dropped.length > 0)
        throw new ProtocolError(ProtocolErrorCode.InvalidParams, `Invalid inputResponses: ${dropped.map((k) => `'${k}'`).join(', ')} not a response object`);
      const responses = ctx.mcpReq.inputResponses ?? params.inputResponses;
      if (responses === undefined) throw new ProtocolError(ProtocolErrorCode.InvalidParams, 'Invalid params for tasks/update: inputResponses is required');
      const answers: [string, InputResponse][] = [];
      for (const [key, value] of Object.entries(responses)) {
        const parsed = elicitResult.safeParse(value);
        if (!parsed.success) throw new ProtocolError(ProtocolErrorCode.InvalidParams, `Invalid inputResponses['${key}']: ${z.prettifyError(parsed.error)}`);
        answers.push([key, { action: parsed.data.action, ...(parsed.data.action === 'accept' && parsed.data.content && { content: parsed.data.content }) }]);
      }
      try {
        await runtime.get(params.taskId, owner);
        for (const [key, answer] of answers) await runtime.provideInput(params.taskId, key, answer, owner);
        return {};
      } catch (error) {
        throw toProtocolError(error);
      }
    }) as never,
  );

  server.setRequestHandler(
    'tasks/cancel',
    { params: taskIdParams } as never,
    (async (params: { taskId: string }, ctx: ServerContext) => {
      const owner = guard(ctx);
      try {
        const task = await runtime.get(params.taskId, owner);
        if (!isTerminal(task.status)) await runtime.cancel(task.taskId, owner);
        return {};
      } catch (error) {
        if (error instanceof IllegalTransitionError) return {}; // it ended meanwhile: cancellation is cooperative
        throw toProtocolError(error);
      }
    }) as never,
  );
}

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
