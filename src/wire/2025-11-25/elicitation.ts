import type { ElicitResult, Server, ServerContext, ServerRequest } from '@modelcontextprotocol/server';
import type { Principal } from '../../core/access.js';
import { InvalidAnswerError } from '../../core/errors.js';
import type { InputRequest, InputResponse } from '../../core/task.js';
import { wireRequestOf, type WireInputRequest } from '../input-kinds.js';
import { abortableDelay } from '../../runtime/delay.js';
import type { TaskRuntime } from '../../runtime/runtime.js';

/** One outstanding question of a task, to be asked of the connected client. */
export interface ForwardedQuestion {
  taskId: string;
  /** The question's key in the task's `inputRequests`. */
  key: string;
  question: InputRequest;
  /** Whose answer it is: the principal the answer is written for (must own the task). */
  principal: Principal;
  /** `_meta` of the `elicitation/create` params (e.g. the 2025-11-25 related-task key), if any. */
  meta?: Record<string, unknown>;
}

/** Where and for how long a question is asked. */
export interface ForwardOptions {
  /** The connection's server (asks on the standalone stream when there is no `ctx`). */
  server: Server;
  /** The request the question belongs with: it travels on that request's stream. */
  ctx?: ServerContext;
  /** Aborting it withdraws the question (the SDK sends `notifications/cancelled`) and rejects the promise. */
  signal: AbortSignal;
  /** How long the client may take to answer, in ms; past that the promise rejects (SDK request timeout). */
  timeoutMs: number;
}

/**
 * Asks the client one task question as the server request its kind maps to (see `wireRequestOf`:
 * `elicitation/create` in form or URL mode, `sampling/createMessage`, `roots/list`; 2025-11-25
 * "Input Required Status"; MCP "Elicitation", "Sampling", "Roots") and writes the answer to the
 * store with `runtime.provideInput(taskId, key, answer, principal)`, which resumes the task
 * wherever it runs. Resolves with `provideInput`'s verdict (false when the question was already
 * answered elsewhere). Rejects when the request fails (a client that refuses a sampling request
 * answers with an error: the question stays pending), times out (`timeoutMs`, per request) or is
 * aborted (`signal`), or when the answer cannot be written; callers decide what a rejection means.
 *
 * An answer that does not fit the question (a form answer not matching its `requestedSchema`, a
 * malformed `CreateMessageResult` …) is refused by the store (`InvalidAnswerError`, nothing stored;
 * the runtime logs the refusal without the content) and the same question is asked again at once
 * with a new request on the same channel — the client cannot be told otherwise, a response to a
 * server request gets no reply. Repeated refusals are spaced out (`reaskDelayMs`: 0 ms after the
 * first, then 250 ms doubling up to 10 s) so a client that keeps answering wrongly is not flooded;
 * `signal` ends the loop.
 *
 * With `ctx` the request is sent with `ctx.mcpReq.send`, which relates it to that request so it
 * travels on its stream (`ctx.mcpReq.elicitInput` would not: SDK 2.4 sends it on the standalone
 * stream); without, with `server.request` on the standalone stream (not `server.elicitInput`, which
 * checks accepted content with the SDK's own, open-form rules and throws instead of letting the
 * question be asked again: the store's check is the one that decides). Callers check
 * `clientCanAnswer` first: servers must not send requests the client did not declare.
 */
export async function forwardQuestion(runtime: TaskRuntime, asked: ForwardedQuestion, options: ForwardOptions): Promise<boolean> {
  const wire = wireRequestOf(asked.question);
  const params = { ...wire.params, ...(asked.meta && { _meta: asked.meta }) } as Record<string, unknown>;
  const request = { signal: options.signal, timeout: options.timeoutMs };
  for (let refusals = 0; ;) {
    const answer: Record<string, unknown> = options.ctx
      ? await options.ctx.mcpReq.send({ method: wire.method, params } as ServerRequest, request)
      : await options.server.request({ method: wire.method, params } as ServerRequest, request);
    try {
      return await runtime.provideInput(asked.taskId, asked.key, toStoredAnswer(wire.method, answer), asked.principal);
    } catch (error) {
      if (!(error instanceof InvalidAnswerError)) throw error;
      await abortableDelay(reaskDelayMs(++refusals), options.signal);
    }
  }
}

/** What the store is given for a client's result: an `InputResponse` for elicitation, else the result without its `_meta`. */
function toStoredAnswer(method: WireInputRequest['method'], result: Record<string, unknown>): unknown {
  if (method === 'elicitation/create') return toInputResponse(result as ElicitResult);
  const { _meta: _ignored, ...rest } = result;
  return rest;
}

/**
 * How long to wait before asking a question again after its `refusals`-th refused answer, in ms:
 * 0 after the first (ask again at once), then 250, 500, 1000, … capped at 10 000.
 */
export function reaskDelayMs(refusals: number): number {
  return refusals <= 1 ? 0 : Math.min(10_000, 250 * 2 ** (refusals - 2));
}

/** Projects an MCP `ElicitResult` onto the engine's `InputResponse` (`content` only on `accept`; unknown actions → `cancel`). */
export function toInputResponse(result: ElicitResult): InputResponse {
  const action = result.action === 'accept' || result.action === 'decline' ? result.action : 'cancel';
  return { action, ...(action === 'accept' && result.content && { content: result.content as InputResponse['content'] }) };
}
