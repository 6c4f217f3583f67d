import { ProtocolError, ProtocolErrorCode } from '@modelcontextprotocol/server';
import { InvalidAnswerError, LimitExceededError, TaskError, TaskRpcError } from '../core/errors.js';

/** JSON-RPC code for a refused request because a configured limit was reached (implementation-defined range). */
export const LIMIT_EXCEEDED = -32000;

/**
 * Maps an engine error to the JSON-RPC error the spec prescribes (2025-11-25 "Tasks › Error
 * Handling"; 2026-07-28 extension "Error Handling"): unknown, foreign or expired `taskId`, invalid
 * cursor, illegal transition (e.g. cancelling a terminal task) and malformed input → -32602
 * (Invalid params); an answer that does not match its question's `requestedSchema`
 * (`InvalidAnswerError`) → -32602 with the schema problems as message and `data: { problems }`
 * (keyed by question key); a reached limit → -32000 with `data` ({limit, max, current}); a `TaskRpcError`
 * keeps its own code; anything else → -32603 (Internal error)
 * with a generic message, so no internals leak to the requestor.
 */
export function toProtocolError(error: unknown): ProtocolError {
  if (error instanceof ProtocolError) return error;
  if (error instanceof TaskRpcError) return new ProtocolError(error.code, error.message, error.data);
  if (error instanceof LimitExceededError) return new ProtocolError(LIMIT_EXCEEDED, error.message, error.data);
  if (error instanceof InvalidAnswerError) return new ProtocolError(ProtocolErrorCode.InvalidParams, error.message, error.data);
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
