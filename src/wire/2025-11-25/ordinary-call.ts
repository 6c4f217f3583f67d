import type { CallToolResult, McpServer, Notification, Server, ServerContext } from '@modelcontextprotocol/server';
import type { JsonObject } from '../../core/json.js';
import { withDeadline } from '../../core/deadline.js';
import { idempotencyKeyOf } from '../../core/idempotency.js';
import type { TaskRecord } from '../../core/task.js';
import { createCallTask } from '../create-task.js';
import { isStoreUnavailable } from '../errors.js';
import { capabilityNeeded, clientCanAnswer } from '../input-kinds.js';
import { handOff, outageHandOff, registerListedTools, slowReason, type OrdinaryCall, type OrdinaryCallSettings } from '../ordinary-call.js';
import { principalOf } from '../principal.js';
import { progressForwarder } from '../progress.js';
import { failToolCall, type ClaimIo } from '../sdk-seam.js';
import { toolResultOf } from '../task-result.js';
import { forwardQuestion } from './elicitation.js';

/** How long a question asked on the call's own stream may stay unanswered, in ms (the call's wait ends long before). */
const CALL_STREAM_QUESTION_TIMEOUT_MS = 24 * 3600_000;

/**
 * Registers each task tool on a 2025-11-25 `McpServer` as an ordinary tool (see
 * `registerListedTools`) declaring its `execution.taskSupport` ("Tool-Level Negotiation"), whose
 * calls without `params.task` are answered by `callOrdinary2025`. Task-augmented calls never reach
 * these callbacks: `claimTaskCall2025` answers them ahead of the SDK.
 */
export function registerTools2025(mcp: McpServer, settings: OrdinaryCallSettings): void {
  const registered = registerListedTools(mcp, settings, async (name, args, ctx) => {
    try {
      return await callOrdinary2025(settings, mcp.server, name, args, ctx);
    } catch (error) {
      // No task was stored (or none known): the retryable -32010, not an isError result.
      if (isStoreUnavailable(error)) throw failToolCall(mcp.server, ctx, error);
      throw error;
    }
  });
  for (const { name, config } of settings.tools.all()) registered.get(name)!.execution = { taskSupport: config.taskSupport };
}

/**
 * An ordinary 2025-11-25 call of a task tool (no `params.task`): the same durable task as a
 * task-augmented call, awaited for up to `settings.waitMs`, then answered with exactly the tool's
 * result (or its JSON-RPC error). Arguments are checked first: not an object, too large, too deeply
 * nested or not valid for the tool's schema → -32602. The task records the session's client
 * capabilities; a tool result with `isError` ends the task `failed`.
 *
 * Progress the task reports is forwarded to the call's `_meta.progressToken` (MCP "Progress":
 * `notifications/progress` related to the call, strictly increasing, never after the task ended).
 *
 * Questions are asked on this call's stream (the server request each kind maps to, related to the
 * call, see `forwardQuestion`; asked again when an answer does not fit) when the client declared
 * the capability the question needs (`clientCanAnswer`); otherwise the call is handed off (see
 * `handOff`) saying what kind of client can answer. It is handed off too when the work outlasts
 * `waitMs`. Cancelling the call (`notifications/cancelled`) cancels the task; the call then fails
 * -32603 "The call was cancelled".
 *
 * Store outages: when the task cannot be stored, the call fails with the retryable -32010 (see
 * `failToolCall`); once it is stored, an outage while the call waits hands the task off (see
 * `outageHandOff`) — never -32010, whose retry would start the work a second time.
 */
export async function callOrdinary2025(
  settings: OrdinaryCallSettings,
  server: Server,
  name: string,
  rawArgs: unknown,
  ctx: ServerContext,
): Promise<CallToolResult> {
  const args = settings.tools.checkArguments(name, rawArgs);
  const owner = principalOf(ctx.http?.authInfo);
  const io: ClaimIo = { signal: ctx.mcpReq.signal, notify: (n) => ctx.mcpReq.notify(n as Notification) };
  const call: OrdinaryCall = { settings, name, args, owner, io, progress: progressForwarder(ctx.mcpReq._meta?.progressToken, io.notify) };
  const { runtime } = settings;
  const capabilities = server.getClientCapabilities() as JsonObject | undefined;
  const idempotencyKey = idempotencyKeyOf({ _meta: ctx.mcpReq._meta }); // `claimTaskCall2025` moved `params.idempotencyKey` there
  const task = await createCallTask(runtime, {
    idempotencyKey,
    owner,
    tool: name,
    args,
    errorResultStatus: 'failed',
    capabilities,
    meta: ctx.mcpReq._meta,
  });
  const asked = new Set<string>();
  const stopAsking = new AbortController();
  let reason = slowReason(settings.waitMs);
  let final: TaskRecord | undefined;
  try {
    final = await withDeadline(settings.waitMs, [ctx.mcpReq.signal, stopAsking.signal], (signal) =>
      runtime.waitForTerminal(task.taskId, owner, {
        signal,
        onChange: (current) => {
          call.progress(current);
          if (current.status !== 'input_required') return;
          for (const [key, question] of Object.entries(current.inputRequests)) {
            if (asked.has(key)) continue;
            if (!clientCanAnswer(question, capabilities)) {
              reason = `its question needs a client that declares ${capabilityNeeded(question)}`;
              return stopAsking.abort();
            }
            asked.add(key);
            forwardQuestion(
              runtime,
              { taskId: task.taskId, key, question, principal: owner },
              { server, ctx, signal: stopAsking.signal, timeoutMs: CALL_STREAM_QUESTION_TIMEOUT_MS },
            ).catch((error: unknown) => {
              if (stopAsking.signal.aborted || ctx.mcpReq.signal.aborted) return;
              reason = `its question could not be asked here (${error instanceof Error ? error.message : String(error)})`;
              stopAsking.abort();
            });
          }
        },
      }),
    );
  } catch (error) {
    stopAsking.abort();
    if (isStoreUnavailable(error)) return outageHandOff(call, task.taskId);
    throw error;
  }
  if (final) return toolResultOf(final) as CallToolResult;
  stopAsking.abort(); // stop asking on this call's stream
  return handOff(call, task.taskId, reason).catch((error: unknown) => {
    if (isStoreUnavailable(error)) return outageHandOff(call, task.taskId);
    throw error;
  });
}
