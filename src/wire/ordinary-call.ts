import { ProtocolError, ProtocolErrorCode, type CallToolResult, type McpServer, type ServerContext } from '@modelcontextprotocol/server';
import type { JsonObject } from '../core/json.js';
import type { TaskRecord } from '../core/task.js';
import type { TaskRuntime } from '../runtime/runtime.js';
import { nextStepHint, taskStatusView } from './fallback-tools.js';
import type { ClaimIo } from './sdk-seam.js';
import type { TaskTools } from './task-tools.js';

/**
 * An ordinary call of a task tool: a `tools/call` answered with the tool's own result rather than
 * a task handle (2025-11-25: without `params.task`; 2026-07-28: when the server does not hand out a
 * task). It is backed by the same durable task; each protocol version follows it its own way
 * (`callOrdinary2025`: questions on the call's stream; `callOrdinary2026`: multi round-trip
 * requests). This module holds what both share: their settings and how a call ends without the
 * tool's result (the hand-off).
 */

/** What the ordinary calls of one `McpTasks` work with. */
export interface OrdinaryCallSettings {
  runtime: TaskRuntime;
  tools: TaskTools;
  /** How long an ordinary call waits for its task before handing it off, in ms. */
  waitMs: number;
  /** Whether the fallback tools are registered: a hand-off is then an ordinary result, else `isError`. */
  fallbackTools: boolean;
}

/** One ordinary call of a task tool. */
export interface OrdinaryCall {
  settings: OrdinaryCallSettings;
  name: string;
  args: JsonObject;
  owner: string | null;
  /** The requestor's cancellation, and notifications related to the call. */
  io: ClaimIo;
  /** Forwards the task's progress to the call's progressToken (see `progressForwarder`). */
  progress: (task: TaskRecord) => void;
}

/**
 * Registers each task tool of `settings.tools` on `mcp` as an ordinary tool: `tools/list` shows it
 * with its title, description, input / output schema and annotations. `callback` answers the calls
 * the SDK itself dispatches (2025-11-25 ordinary calls); returns each tool's SDK registration, for
 * the protocol version to add what it declares (2025-11-25 `execution.taskSupport`).
 */
export function registerListedTools(
  mcp: McpServer,
  settings: OrdinaryCallSettings,
  callback: (name: string, args: Record<string, unknown>, ctx: ServerContext) => Promise<CallToolResult>,
): Map<string, ReturnType<McpServer['registerTool']>> {
  const registered = new Map<string, ReturnType<McpServer['registerTool']>>();
  for (const { name, config, listed } of settings.tools.all()) {
    const tool = mcp.registerTool(
      name,
      {
        title: config.title,
        description: config.description,
        inputSchema: listed.inputSchema,
        ...(listed.outputSchema && { outputSchema: listed.outputSchema }),
        ...(config.annotations && { annotations: config.annotations }),
      },
      (args: Record<string, unknown>, ctx: ServerContext) => callback(name, args, ctx),
    );
    registered.set(name, tool);
  }
  return registered;
}

/**
 * The end of an ordinary call whose task has not ended (both versions): cancelled by the requestor
 * (the task is cancelled, -32603 "The call was cancelled"), else the hand-off result — a text
 * naming the taskId, `reason` (e.g. `it is taking longer than 30 s`), the question it waits for
 * and how to continue, with the task status (`taskStatusView`) as `structuredContent` unless the
 * tool has an `outputSchema`. It is an ordinary result when the fallback tools can continue the
 * task, else `isError` (this client cannot). The task goes on durably either way.
 */
export async function handOff(call: OrdinaryCall, taskId: string, reason: string): Promise<CallToolResult> {
  const { settings, name, owner, io } = call;
  const { runtime } = settings;
  if (io.signal.aborted) {
    await runtime.cancel(taskId, owner).catch(() => undefined);
    throw new ProtocolError(ProtocolErrorCode.InternalError, 'The call was cancelled');
  }
  const current = await runtime.get(taskId, owner);
  const question = Object.values(current.inputRequests)[0]?.message;
  const how = settings.fallbackTools ? nextStepHint(current) : 'Continue it with a client that supports MCP Tasks.';
  return {
    content: [
      {
        type: 'text',
        text: `The work continues as task ${taskId} because ${reason}${question ? `; it is waiting for: ${question}` : ''}. ${how}`,
      },
    ],
    // A tool with an outputSchema has its structuredContent validated against it: leave it out there.
    ...(!settings.tools.get(name)?.config.outputSchema && { structuredContent: taskStatusView(current) }),
    ...(!settings.fallbackTools && { isError: true }),
  };
}

/**
 * The answer to an ordinary call whose task is stored but could not be followed because the task
 * store became unavailable: a hand-off naming the task (as `handOff`, without the task's status,
 * which cannot be read now), never -32010 — a client retrying the call would start the work a
 * second time. An ordinary result when the fallback tools can continue the task, else `isError`.
 */
export function outageHandOff(call: OrdinaryCall, taskId: string): CallToolResult {
  const { fallbackTools } = call.settings;
  const how = fallbackTools ? `Call get_task_result with taskId "${taskId}" later for its result.` : 'Continue it later with a client that supports MCP Tasks.';
  return {
    content: [
      { type: 'text', text: `The work continues as task ${taskId}; its progress cannot be read now because the task store is temporarily unavailable. ${how}` },
    ],
    ...(!fallbackTools && { isError: true }),
  };
}

/** A hand-off's reason when the work outlasts the call's wait (`waitMs`, in ms): `it is taking longer than 30 s`. */
export function slowReason(waitMs: number): string {
  return `it is taking longer than ${Math.round(waitMs / 1000)} s`;
}
