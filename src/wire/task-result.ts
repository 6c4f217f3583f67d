import { ProtocolError, ProtocolErrorCode } from '@modelcontextprotocol/server';
import type { JsonObject } from '../core/json.js';
import type { TaskRecord } from '../core/task.js';

/**
 * The tool's own answer of an ended task, as an ordinary `tools/call` would have returned it (both
 * protocol versions): its `CallToolResult` (an `isError` result included), or its JSON-RPC error
 * thrown as a `ProtocolError` with the stored code, message and data. A cancelled task has no
 * result: -32602 `Task <taskId> was cancelled and has no result`. The task must be terminal.
 */
export function toolResultOf(task: TaskRecord): JsonObject {
  const outcome = task.outcome;
  if (task.status === 'cancelled' || !outcome) throw new ProtocolError(ProtocolErrorCode.InvalidParams, `Task ${task.taskId} was cancelled and has no result`);
  if (outcome.type === 'error') throw new ProtocolError(outcome.error.code, outcome.error.message, outcome.error.data);
  return outcome.result;
}
