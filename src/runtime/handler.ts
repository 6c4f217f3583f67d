import type { JsonObject } from '../core/json.js';
import type { TaskContext } from './context.js';

/**
 * What a task handler returns: an MCP `CallToolResult`-shaped object (`content` blocks, optional
 * `structuredContent`, optional `isError`). It is stored as JSON and returned by `tasks/result`.
 */
export interface TaskToolResult {
  content: Array<{ type: string; [key: string]: unknown }>;
  structuredContent?: { [key: string]: unknown };
  isError?: boolean;
  [key: string]: unknown;
}

/** A task handler: `(args, ctx) => result`. Throwing ends the task `failed` (see `TaskRuntime`). */
export type TaskHandler<Args = JsonObject> = (args: Args, ctx: TaskContext) => Promise<TaskToolResult>;

/** A handler registered under a tool name, with the argument parser that feeds it. */
export interface RegisteredHandler {
  /** Validates and converts stored arguments (sync or async); throws or rejects to refuse them (`InvalidArgumentError`). */
  parse: (args: JsonObject) => unknown;
  handler: TaskHandler<any>;
  /** Top-level argument fields stored encrypted when the store has a `secretKey`. */
  sensitive?: readonly string[];
  /**
   * Stall detection (ms, positive): a `working` task of this tool with no activity — no step begun
   * or ended, no progress or status message reported, no question asked or answered — for longer
   * than this is flagged stalled (see `StallWatch`, `TaskRuntime.onTaskEvent`). Waiting on a durable
   * timer or a question is not a stall. Default: no detection.
   */
  stallAfterMs?: number;
  /**
   * The tool's time budget (ms from the task's `createdAt`, positive): past it the task ends
   * `failed` with `DEADLINE_EXCEEDED` (-32011) and `ctx.signal` aborts. A call may lower it
   * (`SubmitInput.deadlineMs`). Default: none.
   */
  deadlineMs?: number;
}
