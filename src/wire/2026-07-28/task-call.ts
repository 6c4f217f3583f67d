import { ProtocolError } from '@modelcontextprotocol/server';
import type { JsonObject } from '../../core/json.js';
import { withDeadline } from '../../core/deadline.js';
import type { InputRequest } from '../../core/task.js';
import { createCallTask } from '../create-task.js';
import { clientCanAnswer } from '../input-kinds.js';
import type { OrdinaryCallSettings } from '../ordinary-call.js';
import type { ClaimIo } from '../sdk-seam.js';
import type { TaskCreationPolicy } from '../task-tools.js';
import { requireTasksExtension, type Envelope2026 } from './envelope.js';
import { awaitRound, inputRequiredResult, resumeRound } from './mrtr.js';
import { refuseUnanswerable } from './ordinary-call.js';
import { toCreateTaskResult } from './task-object.js';

/** How long an `askBeforeTask` round waits for the task's first question by default, in ms. */
export const DEFAULT_ASK_BEFORE_TASK_MS = 2_000;

/**
 * How long a call from a client that did not declare form elicitation waits for the task's first
 * question before the `CreateTaskResult`, in ms: if the task asks something the client cannot
 * answer, the call is refused -32021 (or handed off to the fallback tools) instead.
 */
export const UNANSWERABLE_PROBE_MS = 2_000;

const FORM_QUESTION: InputRequest = { kind: 'elicitation', message: '', requestedSchema: {} };

/** How a 2026-07-28 `tools/call` of one task tool is answered, from its registration (see `callHandling2026`). */
export interface CallHandling2026 {
  /** `TaskToolConfig.taskPolicy`: when the call becomes a task. */
  policy: TaskCreationPolicy;
  /** `taskSupport: 'required'`: only ever runs as a task. */
  required: boolean;
  /**
   * MRTR before the task is handed out (`TaskToolConfig.askBeforeTask`): how long, in ms, each
   * round waits for the task's first question; undefined = off.
   */
  askBeforeTaskMs?: number;
}

/** The parts of a task-creating 2026-07-28 call's request, read once by `claimCall2026`. */
export interface TaskCallRequest2026 {
  tool: string;
  args: JsonObject;
  owner: string | null;
  envelope: Envelope2026;
  /** `requestState` of an `askBeforeTask` round's retry; undefined on the first request. */
  requestState?: unknown;
  /**
   * The call's idempotency key (SEP-3182; see `idempotencyKeyOf`): a first request returns the task
   * an earlier call with this key created. Ignored on a retry carrying `requestState`, which resumes
   * the task it names anyway.
   */
  idempotencyKey?: string;
  /** `inputResponses` with object values; `dropped` lists keys whose values were not objects. */
  inputResponses?: Record<string, unknown>;
  dropped: readonly string[];
}

/**
 * Answers a task-creating 2026-07-28 `tools/call` (Tasks extension "Task Creation"; see
 * `becomesTask2026`): -32021 when the client did not declare the extension (only `required` tools
 * get here then); otherwise creates the task (`createCallTask`, recording the request's client
 * capabilities; a tool result with `isError` ends it `completed`) and returns `CreateTaskResult` —
 * or, under `{ afterMs }`, the tool's own result (`resultType: "complete"`) or JSON-RPC error when
 * the task ends within `afterMs` without needing input. `params.task` is ignored (the extension
 * removed it). `args` are checked by the caller.
 *
 * A client that did not declare form elicitation (MCP Inspector's CLI, for one) has the call held
 * up to `UNANSWERABLE_PROBE_MS` for the task's first question: one it cannot answer → -32021
 * (Missing Required Client Capability, `data.requiredCapabilities`, the message quoting the
 * question; the task is cancelled) or, with the fallback tools, the hand-off result naming the
 * task — never a task that waits for an answer this client can never give.
 *
 * With `askBeforeTaskMs` (SEP-2663 "MRTR composition": input gathered before the task is handed
 * out), each round first waits up to that long for the task to ask something this client can
 * answer, and if it does, answers with an `InputRequiredResult` (no `taskId`; `requestState` names
 * the task, see `mrtr.ts`); the retry with `inputResponses` and `requestState` resumes the task
 * (`resumeRound`: answers journaled first) and continues — another round, or the `CreateTaskResult`
 * (never carrying `requestState` or `inputRequests`). A bad `requestState` or an answer that does
 * not fit → -32602, nothing stored.
 */
export async function answerTaskCall2026(
  settings: OrdinaryCallSettings,
  request: TaskCallRequest2026,
  handling: CallHandling2026,
  io: ClaimIo,
): Promise<JsonObject> {
  const { runtime } = settings;
  const { tool, args, owner, envelope } = request;
  requireTasksExtension(envelope);
  const capabilities = envelope.capabilities;
  const binding = { owner, tool, args };
  const offered = request.inputResponses;
  let task =
    request.requestState === undefined
      ? await createCallTask(runtime, {
          owner,
          tool,
          args,
          errorResultStatus: 'completed',
          capabilities,
          meta: envelope.meta,
          idempotencyKey: request.idempotencyKey,
        })
      : await resumeRound(runtime, request.requestState, binding, offered, request.dropped);
  // A client that cannot answer form questions learns at once when the task's first question is one
  // it cannot answer (instead of a task that waits for it forever).
  const probeMs = handling.askBeforeTaskMs ?? (clientCanAnswer(FORM_QUESTION, capabilities) ? undefined : UNANSWERABLE_PROBE_MS);
  if (probeMs !== undefined) {
    const round = await withDeadline(probeMs, [io.signal], (signal) => awaitRound(runtime, task.taskId, { owner, capabilities, offered, signal, known: task }));
    if (round.kind === 'input' && handling.askBeforeTaskMs !== undefined) return inputRequiredResult(runtime, round.task, round.questions, binding);
    if (round.kind === 'unanswerable')
      return refuseUnanswerable({ settings, name: tool, args, owner, io, progress: () => undefined }, round.task, round.questions);
    task = round.task;
  }
  if (typeof handling.policy !== 'object' || handling.required) return toCreateTaskResult(task);

  const needsInput = new AbortController();
  let latest = task;
  await withDeadline(handling.policy.afterMs, [needsInput.signal], (signal) =>
    runtime.waitForTerminal(task.taskId, owner, {
      signal,
      onChange: (current) => {
        latest = current;
        if (current.status === 'input_required') needsInput.abort();
      },
    }),
  );
  const outcome = latest.outcome;
  if (latest.status === 'completed' && outcome?.type === 'result') return { ...outcome.result, resultType: 'complete' };
  if (latest.status === 'failed' && outcome?.type === 'error') throw new ProtocolError(outcome.error.code, outcome.error.message, outcome.error.data);
  return toCreateTaskResult(latest);
}
