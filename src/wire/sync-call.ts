import {
  MissingRequiredClientCapabilityError,
  ProtocolError,
  ProtocolErrorCode,
  type CallToolResult,
  type McpServer,
  type Notification,
  type Server,
  type ServerContext,
} from '@modelcontextprotocol/server';
import type { ClaimIo } from './sdk-seam.js';
import type { JsonObject } from '../core/json.js';
import { withDeadline } from '../core/deadline.js';
import type { InputRequest, TaskRecord } from '../core/task.js';
import type { TaskRuntime } from '../runtime/runtime.js';
import { forwardQuestion } from './elicitation.js';
import { nextStepHint, taskStatusView } from './fallback-tools.js';
import { capabilityNeeded, clientCanAnswer } from './input-kinds.js';
import { principalOf } from './principal.js';
import { progressForwarder } from './progress.js';
import { resultOf } from './rev2025/attach.js';
import { awaitRound, inputRequiredResult, roundTask } from './rev2026/mrtr.js';
import { isStoreUnavailable } from './errors.js';
import { failToolCall } from './sdk-seam.js';
import { requestCapabilities } from './rev2026/task-object.js';
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
 * ones, and every 2026-07-28 call of a task tool (`callModern`, through `claimModernCall`) — are
 * answered by the era's call claim instead: in 2026-07-28 the registration only lists the tool.
 */
export function registerSynchronousTools(mcp: McpServer, era: Era, settings: SyncCallSettings): void {
  for (const { name, config, listed } of settings.tools.all()) {
    const registered = mcp.registerTool(
      name,
      {
        title: config.title,
        description: config.description,
        inputSchema: listed.inputSchema,
        ...(listed.outputSchema && { outputSchema: listed.outputSchema }),
        ...(config.annotations && { annotations: config.annotations }),
      },
      async (args: Record<string, unknown>, ctx: ServerContext) => {
        if (era === 'modern') throw new ProtocolError(ProtocolErrorCode.InternalError, `Task tool '${name}' is answered ahead of the SDK`);
        try {
          return await callSynchronously(settings, mcp.server, name, args, ctx);
        } catch (error) {
          // No task was stored (or none known): the retryable -32010, not an isError result.
          if (isStoreUnavailable(error)) throw failToolCall(mcp.server, ctx, error);
          throw error;
        }
      },
    );
    if (era === 'legacy') registered.execution = { taskSupport: config.taskSupport };
  }
}

/**
 * An ordinary 2025-11-25 call of a task tool (2026-07-28: `callModern`): the same durable task as a
 * task-augmented call, awaited for up to `settings.waitMs`, then answered with exactly the tool's
 * result (or its JSON-RPC error). Arguments are checked first: not an object, too large, too deeply nested or not
 * valid for the tool's schema → -32602. The task records the caller's declared client capabilities.
 *
 * Progress the task reports is forwarded to the call's `_meta.progressToken` (MCP "Progress":
 * `notifications/progress` related to the call, strictly increasing, never after the task ended).
 * Questions: see `callLegacy`.
 *
 * Hand-off (both eras, see `endWithoutResult`): when the work outlasts `waitMs` (or, in
 * 2025-11-25, a question cannot be asked here),
 * the call answers with a result naming the taskId, the reason and how to continue, with the task
 * status (`taskStatusView`) as `structuredContent` unless the tool has an `outputSchema`. It is an
 * ordinary result when the fallback tools can continue the task, else `isError` (this client
 * cannot). The task goes on durably either way. Cancelling the call (`notifications/cancelled`)
 * cancels the task; the call then fails -32603 "The call was cancelled".
 *
 * Store outages: when the task cannot be stored, the call fails with the retryable -32010 (see
 * `failToolCall`); once it is stored, an outage while the call waits hands the task off (see
 * `outageHandOff`) — never -32010, whose retry would start the work a second time.
 */
async function callSynchronously(settings: SyncCallSettings, server: Server, name: string, rawArgs: unknown, ctx: ServerContext): Promise<CallToolResult> {
  const args = settings.tools.checkArguments(name, rawArgs);
  const owner = principalOf(ctx.http?.authInfo);
  const io: ClaimIo = { signal: ctx.mcpReq.signal, notify: (n) => ctx.mcpReq.notify(n as Notification) };
  return callLegacy({ settings, name, args, owner, io, progress: progressForwarder(ctx.mcpReq._meta?.progressToken, io.notify) }, server, ctx);
}

/** One ordinary call of a task tool. */
export interface SyncCall {
  settings: SyncCallSettings;
  name: string;
  args: JsonObject;
  owner: string | null;
  /** The requestor's cancellation, and notifications related to the call. */
  io: ClaimIo;
  /** Forwards the task's progress to the call's progressToken (see `progressForwarder`). */
  progress: (task: TaskRecord) => void;
}

/**
 * 2025-11-25: the task's questions are asked on this call's stream (the server request each kind
 * maps to, related to the call, see `forwardQuestion`; asked again when an answer does not fit),
 * when the client declared the capability the question needs (`clientCanAnswer`); otherwise the
 * call is handed off saying what kind of client can answer. A tool result with `isError` ends the
 * task `failed`.
 */
async function callLegacy(call: SyncCall, server: Server, ctx: ServerContext): Promise<CallToolResult> {
  const { settings, name, args, owner } = call;
  const { runtime } = settings;
  const capabilities = server.getClientCapabilities() as JsonObject | undefined;
  const task = await runtime.submit({
    owner,
    tool: name,
    arguments: args,
    errorResultStatus: 'failed',
    ...(capabilities && { clientCapabilities: capabilities }),
    ...(ctx.mcpReq._meta && { traceCarrier: ctx.mcpReq._meta as Record<string, unknown> }), // the caller's trace context
  });
  const asked = new Set<string>();
  const handOff = new AbortController();
  let reason = `it is taking longer than ${Math.round(settings.waitMs / 1000)} s`;
  let final: TaskRecord | undefined;
  try {
    final = await withDeadline(settings.waitMs, [ctx.mcpReq.signal, handOff.signal], (signal) =>
      runtime.waitForTerminal(task.taskId, owner, {
        signal,
        onChange: (current) => {
          call.progress(current);
          if (current.status !== 'input_required') return;
          for (const [key, question] of Object.entries(current.inputRequests)) {
            if (asked.has(key)) continue;
            if (!clientCanAnswer(question, capabilities)) {
              reason = `its question needs a client that declares ${capabilityNeeded(question)}`;
              return handOff.abort();
            }
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
      }),
    );
  } catch (error) {
    handOff.abort();
    if (isStoreUnavailable(error)) return outageHandOff(call, task.taskId);
    throw error;
  }
  if (final) return resultOf(final, false) as CallToolResult;
  handOff.abort(); // stop asking on this call's stream
  return endWithoutResult(call, task.taskId, reason).catch((error: unknown) => {
    if (isStoreUnavailable(error)) return outageHandOff(call, task.taskId);
    throw error;
  });
}

/**
 * An ordinary 2026-07-28 call of a task tool, answered ahead of the SDK by `claimModernCall` (so
 * that a bad `requestState` or -32021 are JSON-RPC errors: the SDK turns anything a tool callback
 * throws into an `isError` result). `params` are the call's `_meta` (envelope), `requestState` and
 * `inputResponses` (object values; `dropped` lists keys whose values were not objects). Returns
 * the JSON-RPC result: the tool's result with `resultType: "complete"`, an `InputRequiredResult`,
 * or a hand-off result.
 *
 * 2026-07-28 (no server-to-client requests; "Multi Round-Trip Requests"): when the task asks
 * questions this request's client capabilities cover, the call answers with an
 * `InputRequiredResult` (`inputRequests` keyed by question key, `requestState` naming the task, see
 * `mrtr.ts`); the retry carrying `inputResponses` and that `requestState` resumes the same durable
 * execution (answers journaled first, nothing re-run; a restart between rounds loses nothing) and
 * is answered the same way: the result, another round, or a hand-off. Answers the first call
 * already carries are used as soon as the task asks under their keys. A retry's answer that does
 * not fit its question, or a bad `requestState`, is refused with -32602 and stores nothing.
 *
 * When the task only asks what this client cannot answer (a capability it did not declare): with
 * the fallback tools the call is handed off (they can answer); without, the call fails -32021
 * (Missing Required Client Capability, `data.requiredCapabilities` naming what is needed) and the
 * task, which nobody else knows of, is cancelled. A tool result with `isError` ends the task
 * `completed`.
 *
 * Store outages: before the task is stored, and on a retry carrying `requestState` (which resumes
 * the same task when sent again), the call fails with the retryable -32010; once a first call's
 * task is stored, an outage while it waits hands the task off (`outageHandOff`).
 */
export async function callModern(
  call: SyncCall,
  params: { _meta?: unknown; requestState?: unknown; inputResponses?: Record<string, unknown> },
  dropped: readonly string[],
): Promise<JsonObject> {
  const { settings, name, args, owner, io } = call;
  const { runtime } = settings;
  const capabilities = requestCapabilities(params._meta);
  const binding = { owner, tool: name, args };
  const offered = params.inputResponses;
  const task = await roundTask(runtime, params.requestState, binding, capabilities, offered, dropped, params._meta);
  try {
    const outcome = await withDeadline(settings.waitMs, [io.signal], (signal) =>
      awaitRound(runtime, task.taskId, { owner, capabilities, offered, signal, onChange: call.progress }),
    );
    switch (outcome.kind) {
      case 'ended':
        return { ...resultOf(outcome.task, false), resultType: 'complete' };
      case 'input':
        return await inputRequiredResult(runtime, outcome.task, outcome.questions, binding);
      case 'unanswerable':
        return await refuseUnanswerable(call, outcome.task, outcome.questions);
      case 'waiting':
        return complete(await endWithoutResult(call, task.taskId, `it is taking longer than ${Math.round(settings.waitMs / 1000)} s`));
    }
  } catch (error) {
    // A retry (`requestState`) may be sent again as it is; a first call would start a second task.
    if (isStoreUnavailable(error) && params.requestState === undefined) return complete(outageHandOff(call, task.taskId));
    throw error;
  }
}

/**
 * A 2026-07-28 call whose task asks only what this client cannot answer (`questions`, for
 * capabilities it did not declare): with the fallback tools, the hand-off result (they can answer);
 * without, the task — which nobody else knows of — is cancelled and the call fails -32021 (Missing
 * Required Client Capability) with `data.requiredCapabilities` naming what is needed and a message
 * quoting the question.
 */
export async function refuseUnanswerable(call: SyncCall, task: TaskRecord, questions: [string, InputRequest][]): Promise<JsonObject> {
  const { settings, name, owner } = call;
  const needs = [...new Set(questions.map(([, q]) => capabilityNeeded(q)))].join(', ');
  if (settings.fallbackTools) return complete(await endWithoutResult(call, task.taskId, `its question needs a client that declares ${needs}`));
  await settings.runtime.cancel(task.taskId, owner).catch(() => undefined);
  throw new MissingRequiredClientCapabilityError(
    { requiredCapabilities: requiredCapabilities(questions.map(([, q]) => q)) },
    `Tool '${name}' needs a client that declares ${needs} to answer its question: "${questions[0]![1].message}"`,
  );
}

/** A 2026-07-28 tool result answered ahead of the SDK: with its `resultType: "complete"`. */
function complete(result: CallToolResult): JsonObject {
  return { ...(result as unknown as JsonObject), resultType: 'complete' };
}

/**
 * The end of a call whose task has not ended: cancelled by the requestor (the task is cancelled,
 * -32603 "The call was cancelled"), else the hand-off result (see `callSynchronously`).
 */
async function endWithoutResult(call: SyncCall, taskId: string, reason: string): Promise<CallToolResult> {
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
 * store became unavailable: a hand-off naming the task (as `endWithoutResult`, without the task's
 * status, which cannot be read now), never -32010 — a client retrying the call would start the work
 * a second time. An ordinary result when the fallback tools can continue the task, else `isError`.
 */
function outageHandOff(call: SyncCall, taskId: string): CallToolResult {
  const { fallbackTools } = call.settings;
  const how = fallbackTools ? `Call get_task_result with taskId "${taskId}" later for its result.` : 'Continue it later with a client that supports MCP Tasks.';
  return {
    content: [
      { type: 'text', text: `The work continues as task ${taskId}; its progress cannot be read now because the task store is temporarily unavailable. ${how}` },
    ],
    ...(!fallbackTools && { isError: true }),
  };
}

/** `requiredCapabilities` of -32021 for questions a client could not be sent (e.g. `{ elicitation: { form: {} } }`). */
function requiredCapabilities(questions: InputRequest[]): JsonObject {
  const needed: JsonObject = {};
  for (const q of questions) {
    if (q.kind === 'elicitation') needed.elicitation = { ...(needed.elicitation as JsonObject | undefined), form: {} };
    if (q.kind === 'url') needed.elicitation = { ...(needed.elicitation as JsonObject | undefined), url: {} };
    if (q.kind === 'sampling') needed.sampling = {};
    if (q.kind === 'roots') needed.roots = {};
  }
  return needed;
}
