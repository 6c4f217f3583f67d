import { ProtocolError, ProtocolErrorCode, type McpServer } from '@modelcontextprotocol/server';
import * as z from 'zod';
import type { JsonObject } from '../../core/json.js';
import { RETRIED_AS_META_KEY, type TaskRecord } from '../../core/task.js';
import { taskMeta } from '../task-view.js';
import { isTerminal } from '../../core/status.js';
import type { Principal } from '../../core/access.js';
import type { TaskRuntime } from '../../runtime/runtime.js';
import { handler, taskIdParams } from '../handler.js';
import { toolResultOf } from '../task-result.js';
import { principalOf } from '../principal.js';
import { pollTask, type PollThrottle, type SignalSource } from '../poll-throttle.js';
import type { Session2025 } from './session.js';
import { relatedTaskMeta, toTask2025 } from './task-object.js';

const listParams = z.looseObject({ cursor: z.string().max(1024).optional() });

/**
 * Serves the 2025-11-25 task methods on one (per-session) `McpServer`:
 * `tasks/get` → `Task` (its `statusMessage` says what kind of client can answer a question this
 * client did not declare it can, see `Session2025.unanswerableStatus`); `tasks/result` → blocks until the task is terminal, delivering its
 * questions on this stream meanwhile, then returns exactly the call's result (with related-task
 * `_meta`) or its JSON-RPC error; `tasks/cancel` → the `cancelled` `Task` (-32602 if already
 * terminal); `tasks/list` (only when `list`) → the principal's tasks, paginated with opaque cursors.
 * Unknown, foreign or expired ids and bad cursors → -32602; malformed params → -32602.
 */
export function attachHandlers2025(
  mcp: McpServer,
  runtime: TaskRuntime,
  session: Session2025,
  options: { list: boolean; throttle?: PollThrottle; fallbackTools?: boolean },
): void {
  const server = mcp.server;
  handler(server, 'tasks/get', taskIdParams, (params, ctx) =>
    getTask2025(runtime, session, params.taskId, principalOf(ctx.http?.authInfo), options, ctx.mcpReq.signal),
  );

  handler(server, 'tasks/result', taskIdParams, async (params, ctx) => {
    const owner = principalOf(ctx.http?.authInfo);
    const task = await runtime.get(params.taskId, owner);
    runtime.notePoll(task.taskId, 'tasks/result');
    session.watch(task, owner);
    session.openResultStream(task.taskId, ctx);
    let final: TaskRecord | undefined;
    try {
      final = await runtime.waitForTerminal(task.taskId, owner, { signal: ctx.mcpReq.signal, onChange: (current) => session.deliver(current, owner) });
    } finally {
      session.closeResultStream(task.taskId, ctx);
    }
    if (!final) throw new ProtocolError(ProtocolErrorCode.InternalError, 'tasks/result was cancelled by the requestor');
    return taskResult2025(final);
  });

  handler(server, 'tasks/cancel', taskIdParams, async (params, ctx) => toTask2025(await runtime.cancel(params.taskId, principalOf(ctx.http?.authInfo))));

  if (options.list) {
    handler(server, 'tasks/list', listParams, async (params, ctx) => {
      const page = await runtime.list(principalOf(ctx.http?.authInfo), params.cursor);
      for (const task of page.tasks) if (!isTerminal(task.status)) runtime.notePoll(task.taskId, 'tasks/list');
      return { tasks: page.tasks.map(toTask2025), ...(page.nextCursor && { nextCursor: page.nextCursor }) };
    });
  }
}

/**
 * 2025-11-25 `tasks/get` for `owner` on one session: the `Task` (throttled like every poll, see
 * `pollTask`), its `statusMessage` saying what kind of client can answer a question this session
 * did not declare it can (`Session2025.unanswerableStatus`), and the `mcp-tasks/progress` `_meta`.
 * The session starts watching the task and is handed its open questions (`Session2025.deliver`).
 * Shared by the SDK handler and the lean path, so both answer alike. Throws
 * `TaskNotFoundError` (→ -32602) for unknown, foreign or expired ids.
 */
export async function getTask2025(
  runtime: TaskRuntime,
  session: Session2025,
  taskId: string,
  owner: Principal,
  options: { throttle?: PollThrottle; fallbackTools?: boolean },
  signal?: SignalSource,
): Promise<JsonObject> {
  const task = await pollTask(runtime, taskId, owner, options.throttle, signal);
  session.watch(task, owner);
  session.deliver(task, owner);
  const unanswerable = session.unanswerableStatus(task, options.fallbackTools ?? false);
  const meta = taskMeta(task);
  return {
    ...toTask2025(task),
    ...(unanswerable && { statusMessage: unanswerable }),
    ...(meta && { _meta: meta }),
  };
}

/**
 * The 2025-11-25 `tasks/result` answer of an ended task: exactly what the call would have returned
 * (see `toolResultOf`: the `CallToolResult`, or its JSON-RPC error thrown; a cancelled task has
 * none, -32602) with `io.modelcontextprotocol/related-task` in the result's `_meta` ("Associating
 * Task-Related Messages").
 */
export function taskResult2025(task: TaskRecord): JsonObject {
  const result = toolResultOf(task);
  const meta = (result._meta ?? {}) as JsonObject;
  const retried = task.retriedAs !== undefined && { [RETRIED_AS_META_KEY]: { taskId: task.retriedAs } };
  return { ...result, _meta: { ...meta, ...retried, ...relatedTaskMeta(task.taskId) } };
}
