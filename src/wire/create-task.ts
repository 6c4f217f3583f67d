import type { JsonObject } from '../core/json.js';
import { DEADLINE_META_KEY, type TaskRecord } from '../core/task.js';
import type { TaskRuntime } from '../runtime/runtime.js';

/** What a `tools/call` of a task tool creates its task from, in either protocol version. */
export interface CallTaskRequest {
  /** The requestor's principal (see `principalOf`); `null` when anonymous. */
  owner: string | null;
  /** The task tool's name. */
  tool: string;
  /** The call's `arguments`, already shape- and size-checked (`TaskTools.checkArguments`). */
  args: JsonObject;
  /**
   * The requestor's declared client capabilities (2025-11-25: from `initialize`; 2026-07-28: the
   * request's `io.modelcontextprotocol/clientCapabilities`), recorded with the task so that its
   * questions only go to clients able to answer them.
   */
  capabilities?: Record<string, unknown>;
  /**
   * The request's `_meta`: the caller's trace context travels there (`traceparent`, `tracestate`,
   * `baggage`), and a lower deadline for this call (`DEADLINE_META_KEY`, `mcp-tasks/deadlineMs`).
   */
  meta?: unknown;
  /** 2025-11-25 `params.task.ttl`: requested lifetime in ms (the store's policy clamps it). */
  ttl?: number | null;
  /**
   * The status a tool result with `isError: true` ends the task in: `failed` in 2025-11-25 (both
   * task-augmented and ordinary calls), `completed` in 2026-07-28 (the extension's rule).
   */
  errorResultStatus: 'failed' | 'completed';
  /**
   * The call's idempotency key (SEP-3182: `params.idempotencyKey` or
   * `params._meta["io.modelcontextprotocol/idempotencyKey"]`, read with `idempotencyKeyOf`): a
   * retained task `owner` created with it for the same tool and arguments is returned instead of a
   * new one (see `TaskRuntime.submit`); other arguments → -32602.
   */
  idempotencyKey?: string;
}

/**
 * Task creation, the one step every task-creating path takes (2025-11-25 task-augmented and
 * ordinary calls, 2026-07-28 task-creating calls and the first round of an ordinary call): checks
 * the arguments against the tool's schema (`InvalidArgumentError` → -32602), stores the task
 * durably and starts it (see `TaskRuntime.submit`) — or, for a call whose idempotency key created a
 * task that is still retained, returns that task as it is now (SEP-3182; a key reused with other
 * arguments → `IdempotencyConflictError`, -32602). `_meta["mcp-tasks/deadlineMs"]` (both protocol
 * versions) lowers the tool's `deadlineMs` for this task; a value that is not a positive number is
 * refused (`InvalidArgumentError` → -32602). Resolves once the task is stored; a store outage
 * rejects with `StoreUnavailableError` (-32010) and nothing was created.
 */
export function createCallTask(runtime: TaskRuntime, request: CallTaskRequest): Promise<TaskRecord> {
  const meta = request.meta;
  const deadlineMs = typeof meta === 'object' && meta !== null ? (meta as Record<string, unknown>)[DEADLINE_META_KEY] : undefined;
  return runtime.submit({
    owner: request.owner,
    tool: request.tool,
    arguments: request.args,
    ...(request.ttl !== undefined && { ttl: request.ttl }),
    ...(request.idempotencyKey !== undefined && { idempotencyKey: request.idempotencyKey }),
    errorResultStatus: request.errorResultStatus,
    ...(request.capabilities && { clientCapabilities: request.capabilities as JsonObject }),
    ...(typeof meta === 'object' && meta !== null && !Array.isArray(meta) && { traceCarrier: meta as Record<string, unknown> }),
    ...(deadlineMs !== undefined && { deadlineMs: deadlineMs as number }),
  });
}
