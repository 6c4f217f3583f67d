import { ProtocolError, ProtocolErrorCode, type StandardSchemaWithJSON, type ToolAnnotations } from '@modelcontextprotocol/server';
import type * as z from 'zod';
import type { JsonObject } from '../core/json.js';
import { jsonSize } from '../core/json.js';

/**
 * When a 2026-07-28 server answers a `tools/call` of a task tool with a task (the Tasks extension
 * makes task creation server-directed): `always`; `never` (run it as an ordinary call); or
 * `{ afterMs }` — start the task and answer with its result if it ends within `afterMs`
 * milliseconds, otherwise (or as soon as it needs input) with `CreateTaskResult`. 2025-11-25 has no
 * such choice: there the client decides with `params.task`.
 */
export type TaskCreationPolicy = 'always' | 'never' | { afterMs: number };

/**
 * `execution.taskSupport` of a task tool (2025-11-25 "Tool-Level Negotiation"): `optional` tools
 * run as a task when the call carries `params.task` and as an ordinary call otherwise; `required` tools
 * refuse calls without `params.task` with -32601 (and, in 2026-07-28, calls from clients that did
 * not declare the Tasks extension with -32021).
 */
export type TaskSupport = 'optional' | 'required';

/**
 * Declaration of a task tool. `title`, `description`, `inputSchema`, `outputSchema` and
 * `annotations` are what `tools/list` shows (as for any MCP tool); `inputSchema` is a zod object and
 * validates arguments on every path (task-creating and ordinary calls, both protocol versions: -32602 when they do not fit).
 */
export interface TaskToolConfig<Input extends z.ZodObject> {
  title?: string;
  description: string;
  inputSchema: Input;
  /** Validates `structuredContent` of the tool's results of ordinary calls (through the SDK). */
  outputSchema?: z.ZodObject;
  annotations?: ToolAnnotations;
  taskSupport: TaskSupport;
  /** Top-level argument fields stored encrypted at rest when the store has a `secretKey` (e.g. `['cardNumber']`). */
  sensitive?: string[];
  /**
   * Protocol 2026-07-28 only, where the server decides per request whether a call becomes a task
   * (see `TaskCreationPolicy`). Default `always`. `required` tools always become tasks.
   */
  taskPolicy?: TaskCreationPolicy;
  /**
   * Protocol 2026-07-28, clients that declared the Tasks extension: gather input with multi
   * round-trip requests before the task is handed out (SEP-2663 "MRTR composition"). The call waits
   * up to `waitMs` (default 2000) for the task's first question; if it asks one the client can
   * answer, the call is answered with an `InputRequiredResult` instead of a `CreateTaskResult`, and
   * the retry carrying the answer continues the same task (see `answerTaskCall2026`). Default off.
   * (Clients without the extension always get MRTR rounds: see `callOrdinary2026`.)
   */
  askBeforeTask?: boolean | { waitMs: number };
}

/** A registered task tool: its name and declaration. */
export interface TaskTool {
  name: string;
  config: TaskToolConfig<z.ZodObject>;
  /**
   * `config.inputSchema` / `outputSchema` as given to every `McpServer` (one per 2026-07-28
   * request): the same validation, their JSON Schema converted once (see `convertedOnce`).
   */
  listed: { inputSchema: StandardSchemaWithJSON<Record<string, unknown>>; outputSchema?: StandardSchemaWithJSON };
}

/**
 * `schema` (any Standard Schema with JSON Schema output, e.g. a zod object) with its JSON Schema
 * conversion memoized per target and direction: validation is delegated unchanged. The SDK converts
 * a tool's schema on each `McpServer` it is registered on (for `tools/list` and the 2026-07-28
 * `Mcp-Param-*` header check of every `tools/call`); with one `McpServer` per 2026 request that was
 * a conversion per call.
 */
export function convertedOnce<Input, Output>(schema: StandardSchemaWithJSON<Input, Output>): StandardSchemaWithJSON<Input, Output> {
  const std = schema['~standard'];
  const cache = new Map<string, Record<string, unknown>>();
  const memo =
    (io: 'input' | 'output') =>
    (options: StandardJSONSchemaOptions): Record<string, unknown> => {
      const key = `${io} ${JSON.stringify(options)}`;
      let json = cache.get(key);
      if (!json) cache.set(key, (json = std.jsonSchema[io](options)));
      return json;
    };
  return {
    '~standard': {
      version: std.version,
      vendor: std.vendor,
      validate: (value) => std.validate(value),
      jsonSchema: { input: memo('input'), output: memo('output') },
    },
  };
}

type StandardJSONSchemaOptions = Parameters<StandardSchemaWithJSON['~standard']['jsonSchema']['input']>[0];

/**
 * The task tools of one `McpTasks`, as every call path (task-creating and ordinary calls, both protocol versions) looks them
 * up, with the argument checks those paths share.
 */
export class TaskTools {
  private readonly byName = new Map<string, TaskTool>();

  /** `maxArgumentBytes`: largest accepted `arguments`, in bytes of JSON. */
  constructor(private readonly maxArgumentBytes: number) {}

  /** Adds a tool; the caller has checked that `name` is free. */
  add(name: string, config: TaskToolConfig<z.ZodObject>): void {
    const listed = {
      inputSchema: convertedOnce(config.inputSchema),
      ...(config.outputSchema && { outputSchema: convertedOnce(config.outputSchema) }),
    };
    this.byName.set(name, { name, config, listed });
  }

  /** The task tool a `tools/call` names (`params.name`, unchecked), or undefined (not a string, or no such task tool). */
  get(name: unknown): TaskTool | undefined {
    return typeof name === 'string' ? this.byName.get(name) : undefined;
  }

  /** Every registered task tool, in registration order. */
  all(): TaskTool[] {
    return [...this.byName.values()];
  }

  /**
   * Shape and size checks of `arguments` on every path: returns them as an object (absent → `{}`)
   * of at most `maxArgumentBytes` bytes of JSON; anything else → -32602. Arguments too deeply nested
   * to serialize (stdio has no HTTP body guard) are refused -32602 as well. The tool's schema itself
   * is checked by the runtime's parser when the task is submitted.
   */
  checkArguments(name: string, args: unknown): JsonObject {
    const value = args ?? {};
    if (typeof value !== 'object' || value === null || Array.isArray(value)) {
      throw new ProtocolError(ProtocolErrorCode.InvalidParams, `Invalid arguments for tool ${name}: expected an object`);
    }
    let size: number;
    try {
      size = jsonSize(value);
    } catch (error) {
      if (!(error instanceof RangeError)) throw error;
      throw new ProtocolError(ProtocolErrorCode.InvalidParams, `Arguments for tool ${name} are nested too deeply`);
    }
    if (size > this.maxArgumentBytes)
      throw new ProtocolError(ProtocolErrorCode.InvalidParams, `Arguments for tool ${name} exceed ${this.maxArgumentBytes} bytes`);
    return value as JsonObject;
  }
}
