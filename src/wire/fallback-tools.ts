import type { CallToolResult, McpServer, ServerContext } from '@modelcontextprotocol/server';
import * as z from 'zod';
import { InvalidAnswerError, TaskError } from '../core/errors.js';
import type { JsonObject } from '../core/json.js';
import { withDeadline } from '../core/deadline.js';
import { isTerminal } from '../core/status.js';
import type { InputRequest, TaskRecord } from '../core/task.js';
import type { TaskRuntime } from '../runtime/runtime.js';
import { isStoreUnavailable } from './errors.js';
import { principalOf } from './principal.js';
import { failToolCall } from './sdk-seam.js';
import { taskFields } from './task-view.js';

/** Longest `waitSeconds` of `get_task_result`. */
const MAX_WAIT_SECONDS = 60;

/** The status of a task as the fallback tools report it (also their `structuredContent`). */
export function taskStatusView(task: TaskRecord): JsonObject {
  const pending = Object.entries(task.inputRequests).map(([key, q]) => ({ questionKey: key, ...pendingView(q) }));
  return { ...taskFields(task), ...(pending.length > 0 && { pendingInput: pending }) };
}

/**
 * One pending question as the fallback tools show it: `kind`, `message` and what an answer needs —
 * `requestedSchema` (form: the fields of `answers`), `url` (URL mode: the user opens it; answer
 * with the action only), `sampling` (the `sampling/createMessage` params: answer with
 * `answers.text`), nothing more for roots (answer with `answers.roots`, a list of `file://` URIs).
 */
function pendingView(q: InputRequest): JsonObject {
  switch (q.kind) {
    case 'elicitation':
      return { kind: 'form', message: q.message, requestedSchema: q.requestedSchema };
    case 'url':
      return { kind: 'url', message: q.message, url: q.url };
    case 'sampling':
      return { kind: 'sampling', message: q.message, sampling: q.params };
    case 'roots':
      return { kind: 'roots', message: q.message };
  }
}

/**
 * The answer `answer_task_input` stores for `question`: an `ElicitResult` for form and URL
 * questions (URL mode: the action only), a `CreateMessageResult` whose text is `answers.text` for
 * sampling (model `answer_task_input`), a `ListRootsResult` from `answers.roots` (URIs) for roots.
 */
function fallbackAnswer(question: InputRequest, action: 'accept' | 'decline' | 'cancel', answers: JsonObject | undefined): unknown {
  if (question.kind === 'sampling')
    return { role: 'assistant', content: { type: 'text', text: String(answers?.text ?? '') }, model: 'answer_task_input', stopReason: 'endTurn' };
  if (question.kind === 'roots') {
    const uris = Array.isArray(answers?.roots) ? answers.roots : [];
    return { roots: uris.map((uri) => ({ uri: String(uri) })) };
  }
  return action === 'accept' && question.kind === 'elicitation' ? { action, content: answers ?? {} } : { action };
}

/** Tells a model what to do next with a task (used by the fallback tools and the synchronous time limit). */
export function nextStepHint(task: TaskRecord): string {
  if (task.status === 'input_required') {
    const q = Object.values(task.inputRequests)[0];
    return `It needs an answer${q ? `: "${q.message}"` : ''}. Call answer_task_input with taskId "${task.taskId}" and answers matching pendingInput[0].requestedSchema.`;
  }
  if (isTerminal(task.status)) return `It has ended (${task.status}). Call get_task_result with taskId "${task.taskId}" for the result.`;
  return `It is still working. Call get_task_result with taskId "${task.taskId}" and waitSeconds (up to ${MAX_WAIT_SECONDS}) to wait for the result, or get_task_status to check on it.`;
}

const json = (value: JsonObject, text: string): CallToolResult => ({ content: [{ type: 'text', text }], structuredContent: value });
const failure = (text: string): CallToolResult => ({ content: [{ type: 'text', text }], isError: true });

/**
 * Ordinary tools for hosts that do not speak MCP Tasks (most do not yet): a model can follow a task
 * a task tool handed it, answer its questions and cancel it. Registered once per server when
 * `McpTasks({ fallbackTools: true })`. The same principal rules as the protocol methods apply: a
 * task of another principal is "not found". Errors are tool results with `isError: true` so the
 * model can read and correct them — except a store outage, which fails the call with the retryable
 * JSON-RPC error -32010 (`data: { retryable: true, retryAfterMs }`; HTTP 503 where the answer is
 * JSON; see `failToolCall`): it says nothing about the task.
 */
export function registerFallbackTools(mcp: McpServer, runtime: TaskRuntime): void {
  const owner = (ctx: ServerContext) => principalOf(ctx.http?.authInfo);
  const guard = async (ctx: ServerContext, fn: () => Promise<CallToolResult>): Promise<CallToolResult> => {
    try {
      return await fn();
    } catch (error) {
      // The store cannot be reached: not the tool's answer but the retryable JSON-RPC -32010.
      if (isStoreUnavailable(error)) throw failToolCall(mcp.server, ctx, error);
      if (error instanceof TaskError) return failure(error.message);
      throw error;
    }
  };
  const taskId = z.string().min(1).max(256).describe('The taskId a previous tool result named');

  mcp.registerTool(
    'get_task_status',
    {
      title: 'Get task status',
      description:
        'Checks on a long-running task that an earlier tool call started (its result named a taskId). Returns the status ' +
        '(working, input_required, completed, failed, cancelled), a status message, and — when the task waits for an answer — ' +
        'pendingInput with the question and the JSON schema the answer must follow. Does not wait.',
      inputSchema: z.object({ taskId }),
    },
    async ({ taskId: id }, ctx) =>
      guard(ctx, async () => {
        const task = await runtime.get(id, owner(ctx));
        return json(taskStatusView(task), `Task ${id} is ${task.status}${task.statusMessage ? `: ${task.statusMessage}` : ''}. ${nextStepHint(task)}`);
      }),
  );

  mcp.registerTool(
    'get_task_result',
    {
      title: 'Get task result',
      description:
        'Gets the final result of a task that an earlier tool call started. Waits up to waitSeconds (0–60, default 0) for it ' +
        'to finish. If it has finished, returns exactly what the original tool returned. If it is still running or needs an ' +
        'answer, returns its status and what to do next (answer_task_input when it waits for input).',
      inputSchema: z.object({ taskId, waitSeconds: z.number().min(0).max(MAX_WAIT_SECONDS).optional().describe('How long to wait for the task to finish') }),
    },
    async ({ taskId: id, waitSeconds }, ctx) =>
      guard(ctx, async () => {
        const principal = owner(ctx);
        let task = await runtime.get(id, principal);
        if (!isTerminal(task.status) && task.status !== 'input_required' && (waitSeconds ?? 0) > 0) {
          const stop = new AbortController();
          task =
            (await withDeadline(waitSeconds! * 1000, [ctx.mcpReq.signal, stop.signal], (signal) =>
              runtime.waitForTerminal(id, principal, { signal, onChange: (t) => t.status === 'input_required' && stop.abort() }),
            )) ?? (await runtime.get(id, principal));
        }
        if (!isTerminal(task.status)) return json(taskStatusView(task), `Task ${id} has not finished (${task.status}). ${nextStepHint(task)}`);
        if (task.status === 'cancelled') return failure(`Task ${id} was cancelled; it has no result.`);
        const outcome = task.outcome!;
        if (outcome.type === 'error') return failure(`Task ${id} failed: ${outcome.error.message}`);
        return outcome.result as CallToolResult;
      }),
  );

  mcp.registerTool(
    'answer_task_input',
    {
      title: 'Answer a task question',
      description:
        'Answers the question a task is waiting for (its status is input_required; get_task_status shows pendingInput with ' +
        'the question and the JSON schema of the answer). Pass answers as an object with exactly the fields of that schema ' +
        '(answers that do not match it are refused and nothing is recorded). Use ' +
        'action "decline" to refuse to answer or "cancel" to dismiss the question. By the question\'s kind: "form" — answers ' +
        'has the fields of requestedSchema; "url" — give the user the url, then answer with the action only; "sampling" — ' +
        'answers.text is the reply to the sampling messages; "roots" — answers.roots lists file:// URIs. The task continues after the answer.',
      inputSchema: z.object({
        taskId,
        answers: z
          .record(z.string(), z.union([z.string(), z.number(), z.boolean(), z.array(z.string())]))
          .optional()
          .describe('Fields of the requested schema (form), text (sampling) or roots (roots)'),
        action: z.enum(['accept', 'decline', 'cancel']).optional().describe('Default accept'),
        questionKey: z.string().optional().describe('Which pending question (default: the first in pendingInput)'),
      }),
    },
    async (args, ctx) =>
      guard(ctx, async () => {
        const principal = owner(ctx);
        const task = await runtime.get(args.taskId, principal);
        const entries = Object.entries(task.inputRequests);
        if (task.status !== 'input_required' || entries.length === 0) return failure(`Task ${args.taskId} is not waiting for input (it is ${task.status}).`);
        const [key, question] = args.questionKey ? (entries.find(([k]) => k === args.questionKey) ?? []) : entries[0]!;
        if (!key || !question)
          return failure(`Task ${args.taskId} has no pending question '${args.questionKey}'. Pending: ${entries.map(([k]) => k).join(', ')}.`);
        const action = args.action ?? 'accept';
        if (action !== 'accept' && (question.kind === 'sampling' || question.kind === 'roots'))
          return failure(`Question '${key}' (${question.kind}) can only be answered with action "accept".`);
        const response = fallbackAnswer(question, action, args.answers);
        let accepted: boolean;
        try {
          accepted = await runtime.provideInput(task.taskId, key, response, principal);
        } catch (error) {
          // The store checks every answer against the question's requestedSchema (one validator for all paths).
          if (!(error instanceof InvalidAnswerError)) throw error;
          const problems = error.problems[key] ?? [error.message];
          return failure(
            `The answer does not fit the question's schema: ${problems.join('; ')}. Nothing was recorded; the question is still pending. ` +
              (question.kind === 'elicitation' ? `Schema: ${JSON.stringify(question.requestedSchema)}` : ''),
          );
        }
        if (!accepted) return failure(`Question '${key}' of task ${args.taskId} was already answered.`);
        const now = await runtime.get(task.taskId, principal);
        return json(taskStatusView(now), `Answer recorded. ${nextStepHint(now)}`);
      }),
  );

  mcp.registerTool(
    'cancel_task',
    {
      title: 'Cancel a task',
      description: 'Cancels a task an earlier tool call started, stopping its work. A task that has already ended cannot be cancelled.',
      inputSchema: z.object({ taskId }),
    },
    async ({ taskId: id }, ctx) =>
      guard(ctx, async () => {
        const task = await runtime.cancel(id, owner(ctx));
        return json(taskStatusView(task), `Task ${id} is cancelled.`);
      }),
  );
}
