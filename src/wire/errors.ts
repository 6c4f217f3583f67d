import { ProtocolError, ProtocolErrorCode } from '@modelcontextprotocol/server';
import {
  errorChain,
  IdempotencyConflictError,
  InvalidAnswerError,
  STORE_UNAVAILABLE,
  LimitExceededError,
  StoreUnavailableError,
  TaskError,
  TaskRpcError,
} from '../core/errors.js';

/** JSON-RPC code for a refused request because a configured limit was reached (implementation-defined range). */
export const LIMIT_EXCEEDED = -32000;

export { STORE_UNAVAILABLE } from '../core/errors.js';

/** `data` of a -32010 (`STORE_UNAVAILABLE`) error: retry, at the earliest after `retryAfterMs` (ms). */
export interface StoreUnavailableData {
  retryable: true;
  retryAfterMs: number;
}

/**
 * Maps an engine error to the JSON-RPC error the spec prescribes (2025-11-25 "Tasks › Error
 * Handling"; 2026-07-28 extension "Error Handling"):
 *
 * | error                                                   | code   | message, `data`                              |
 * |---------------------------------------------------------|--------|----------------------------------------------|
 * | unknown, foreign or expired `taskId`, invalid cursor,   | -32602 | the error's message                          |
 * | illegal transition (e.g. cancelling a terminal task),   |        |                                              |
 * | malformed input                                         |        |                                              |
 * | an answer not matching its `requestedSchema`            | -32602 | the schema problems, `{ problems }` by key   |
 * | (`InvalidAnswerError`)                                  |        |                                              |
 * | an idempotency key reused for another request           | -32602 | `{ reason: "idempotencyKeyConflict",         |
 * | (`IdempotencyConflictError`, SEP-3182)                  |        | idempotencyKey, taskId }`                    |
 * | a reached limit (`LimitExceededError`)                  | -32000 | `{ limit, max, current }`                    |
 * | the task store unavailable (`StoreUnavailableError`,    | -32010 | "The task store is temporarily unavailable;  |
 * | also when wrapped as another error's `cause`)           |        | retry later", `{ retryable: true,            |
 * |                                                         |        | retryAfterMs }`; HTTP 503 + `Retry-After`    |
 * | a `TaskRpcError`                                        | its own| its own                                      |
 * | a `ProtocolError`                                       | its own| its own                                      |
 * | anything else (conflicts, lost leases, bugs)            | -32603 | "Internal error": no internals leak          |
 */
export function toProtocolError(error: unknown): ProtocolError {
  const outage = storeUnavailableError(error);
  if (outage)
    return new ProtocolError(STORE_UNAVAILABLE, outage.message, { retryable: true, retryAfterMs: outage.retryAfterMs } satisfies StoreUnavailableData);
  if (error instanceof ProtocolError) return error;
  if (error instanceof TaskRpcError) return new ProtocolError(error.code, error.message, error.data);
  if (error instanceof LimitExceededError) return new ProtocolError(LIMIT_EXCEEDED, error.message, error.data);
  if (error instanceof InvalidAnswerError || error instanceof IdempotencyConflictError)
    return new ProtocolError(ProtocolErrorCode.InvalidParams, error.message, error.data);
  if (error instanceof TaskError) {
    const internal = error.kind === 'conflict' || error.kind === 'lease_lost';
    return new ProtocolError(internal ? ProtocolErrorCode.InternalError : ProtocolErrorCode.InvalidParams, error.message);
  }
  return new ProtocolError(ProtocolErrorCode.InternalError, 'Internal error');
}

/** `{ code, message, data? }` of a JSON-RPC error response for `error` (see `toProtocolError`). */
export function toErrorObject(error: unknown): { code: number; message: string; data?: unknown } {
  const e = toProtocolError(error);
  return { code: e.code, message: e.message, ...(e.data !== undefined && { data: e.data }) };
}

/**
 * The `StoreUnavailableError` behind `error`: itself, or the first one in its `cause` chain (8
 * deep; callers may wrap it). Undefined when the store is not the reason — also for a
 * `ProtocolError` that merely carries -32010 (a tool may end its task with any code).
 */
export function storeUnavailableError(error: unknown): StoreUnavailableError | undefined {
  for (const e of errorChain(error)) if (e instanceof StoreUnavailableError) return e;
  return undefined;
}

/** Whether `error` is, or wraps, a store outage (`storeUnavailableError`): the request may be sent again later. */
export function isStoreUnavailable(error: unknown): boolean {
  return storeUnavailableError(error) !== undefined;
}

/**
 * The HTTP answer to a JSON-RPC error object: for -32010 (`STORE_UNAVAILABLE`), status 503 and
 * `Retry-After` in whole seconds, at least 1 (`data.retryAfterMs` rounded up; 1 s without it);
 * undefined for any other error (the transport's own status stands). Every HTTP path of this
 * package that answers a store outage (the lean path, `startHttpServer` for the SDK's JSON
 * responses and errors that escape) takes its status and header from here.
 */
export function outageHeaders(error: { code?: unknown; data?: unknown } | undefined): { status: 503; headers: { 'retry-after': string } } | undefined {
  if (error?.code !== STORE_UNAVAILABLE) return undefined;
  const ms = (error.data as { retryAfterMs?: unknown } | undefined)?.retryAfterMs;
  const seconds = typeof ms === 'number' && Number.isFinite(ms) ? Math.max(1, Math.ceil(ms / 1000)) : 1;
  return { status: 503, headers: { 'retry-after': String(seconds) } };
}
