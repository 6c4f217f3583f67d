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
}
