import { ProtocolError, ProtocolErrorCode, type CallToolResult, type McpServer, type Server, type ServerContext } from '@modelcontextprotocol/server';
import type { TaskRuntime } from '../runtime/runtime.js';
import { clientCanElicit, forwardQuestion } from './elicitation.js';
import { nextStepHint, taskStatusView } from './fallback-tools.js';
import { principalOf } from './principal.js';
import { resultOf } from './rev2025/attach.js';
import { TASKS_EXTENSION } from './rev2026/task-object.js';
import type { Era, TaskTools } from './task-tools.js';

/** How long a question asked on the call's own stream may stay unanswered, in ms (the call's wait ends long before). */
const CALL_STREAM_QUESTION_TIMEOUT_MS = 24 * 3600_000;

/** What the synchronous path of one `McpTasks` works with. */
export interface SyncCallSettings {
  runtime: TaskRuntime;
  tools: TaskTools;
  /** How long an ordinary call waits for its task before handing it off, in ms. */
  waitMs: number;
  /** Whether the fallback tools are registered: a hand-off is then an ordinary result, else `isError`. */
  fallbackTools: boolean;
}

/**
 * Registers each task tool of `settings.tools` on `mcp` as an ordinary tool (`tools/list` shows it
 * with its title, description, input / output schema and annotations) whose calls take the
 * synchronous path (see `callSynchronously`); in 2025-11-25 it also declares the tool's
 * `execution.taskSupport` ("Tool-Level Negotiation"). Calls the SDK never sees — task-augmented
 * ones — are answered by the era's call claim instead.
 */
export function registerSynchronousTools(mcp: McpServer, era: Era, settings: SyncCallSettings): void {
  for (const { name, config } of settings.tools.all()) {
    const registered = mcp.registerTool(
      name,
      {
        title: config.title,
        description: config.description,
        inputSchema: config.inputSchema,
        ...(config.outputSchema && { outputSchema: config.outputSchema }),
        ...(config.annotations && { annotations: config.annotations }),
      },
      async (args: Record<string, unknown>, ctx: ServerContext) => callSynchronously(settings, mcp.server, era, name, args, ctx),
    );
    if (era === 'legacy') registered.execution = { taskSupport: config.taskSupport };
  }
}

/**
 * An ordinary call of a task tool (either era): the same durable task as a task-augmented call,
 * awaited for up to `settings.waitMs`, then answered with exactly the tool's result (or its
 * JSON-RPC error).
 *
 * - In 2025-11-25 the task's questions are asked on this call's stream (`elicitation/create`
 *   related to the call, see `forwardQuestion`; asked again when an answer does not match the
 *   question's `requestedSchema`), and cancelling the call cancels the task (the call
 *   then fails -32603 "The call was cancelled"). A tool result with `isError` ends the task `failed`
 *   (2025-11-25), `completed` (2026-07-28).
 * - Hand-off: when the work outlasts `waitMs`, or a question cannot be asked here (2026-07-28
 *   without the Tasks extension, a client without elicitation, or the question could not be sent),
 *   the call answers with a result naming the taskId, the reason and how to continue, with the task
 *   status (`taskStatusView`) as `structuredContent` unless the tool has an `outputSchema`. It is an
 *   ordinary result when the fallback tools can continue the task, else `isError` (this client
 *   cannot). The task goes on durably either way.
 *
 * Errors: arguments that are not an object, too large, too deeply nested or not valid for the
 * tool's schema → -32602; the task's own JSON-RPC error when it fails with one.
 */
async function callSynchronously(
  settings: SyncCallSettings,
  server: Server,
  era: Era,
  name: string,
  rawArgs: unknown,
  ctx: ServerContext,
): Promise<CallToolResult> {
  const { runtime } = settings;
  const args = settings.tools.checkArguments(name, rawArgs);
  const owner = principalOf(ctx.http?.authInfo);
  const task = await runtime.submit({ owner, tool: name, arguments: args, errorResultStatus: era === 'modern' ? 'completed' : 'failed' });
  const asked = new Set<string>();
  const handOff = new AbortController();
  let reason = `it is taking longer than ${Math.round(settings.waitMs / 1000)} s`;
  const final = await runtime.waitForTerminal(task.taskId, owner, {
    signal: AbortSignal.any([ctx.mcpReq.signal, handOff.signal, AbortSignal.timeout(settings.waitMs)]),
    onChange: (current) => {
      if (current.status !== 'input_required') return;
      if (era === 'modern' || !clientCanElicit(server)) {
        reason = era === 'modern' ? `its question needs the ${TASKS_EXTENSION} extension or the fallback tools` : 'the client does not support elicitation';
        return handOff.abort();
      }
      for (const [key, question] of Object.entries(current.inputRequests)) {
        if (asked.has(key)) continue;
        asked.add(key);
        forwardQuestion(
          runtime,
          { taskId: task.taskId, key, question, principal: owner },
          { server, ctx, signal: handOff.signal, timeoutMs: CALL_STREAM_QUESTION_TIMEOUT_MS },
        ).catch((error) => {
          if (handOff.signal.aborted || ctx.mcpReq.signal.aborted) return;
          reason = `its question could not be asked here (${error instanceof Error ? error.message : String(error)})`;
          handOff.abort();
        });
      }
    },
  });
  if (final) return resultOf(final, false) as CallToolResult;
  if (ctx.mcpReq.signal.aborted) {
    await runtime.cancel(task.taskId, owner).catch(() => undefined);
    throw new ProtocolError(ProtocolErrorCode.InternalError, 'The call was cancelled');
  }
  handOff.abort(); // stop asking on this call's stream
  const current = await runtime.get(task.taskId, owner);
  const question = Object.values(current.inputRequests)[0]?.message;
  const how = settings.fallbackTools ? nextStepHint(current) : 'Continue it with a client that supports MCP Tasks.';
  return {
    content: [
      {
        type: 'text',
        text: `The work continues as task ${task.taskId} because ${reason}${question ? `; it is waiting for: ${question}` : ''}. ${how}`,
      },
    ],
    // A tool with an outputSchema has its structuredContent validated against it: leave it out there.
    ...(!settings.tools.get(name)?.config.outputSchema && { structuredContent: taskStatusView(current) }),
    ...(!settings.fallbackTools && { isError: true }),
  };
}
