import { ProtocolError, ProtocolErrorCode, type StandardSchemaV1, type StandardSchemaWithJSON, type ToolAnnotations } from '@modelcontextprotocol/server';
import * as z from 'zod';
import { InvalidArgumentError } from '../core/errors.js';
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
 * What a task tool's `inputSchema` may be — what the SDK's own `McpServer.registerTool` accepts: a
 * Standard Schema with JSON Schema output (a zod object; another Standard Schema library's object
 * schema; a plain JSON Schema wrapped with the SDK's `fromJsonSchema`), or a raw zod shape
 * (`{ field: z.string() }`, wrapped in `z.object`; deprecated by the SDK, accepted as it does). A
 * plain JSON Schema object is refused with the SDK's error (wrap it with `fromJsonSchema`).
 */
export type TaskInputSchema = StandardSchemaWithJSON<any, any> | z.ZodRawShape;

/** The arguments a handler gets for `Input`: the schema's output type (`z.output` for zod). */
export type TaskToolArgs<Input extends TaskInputSchema> =
  Input extends StandardSchemaWithJSON<any, any> ? StandardSchemaV1.InferOutput<Input> : Input extends z.ZodRawShape ? z.output<z.ZodObject<Input>> : never;

/**
 * Declaration of a task tool. `title`, `description`, `inputSchema`, `outputSchema` and
 * `annotations` are what `tools/list` shows (as for any MCP tool); `inputSchema` (see
 * `TaskInputSchema`) validates arguments on every path (task-creating and ordinary calls, both
 * protocol versions: -32602 when they do not fit).
 */
export interface TaskToolConfig<Input extends TaskInputSchema = TaskInputSchema> {
  title?: string;
  description: string;
  inputSchema: Input;
  /** Validates `structuredContent` of the tool's results of ordinary calls (through the SDK); the same kinds as `inputSchema`. */
  outputSchema?: TaskInputSchema;
  annotations?: ToolAnnotations;
  taskSupport: TaskSupport;
  /** Top-level argument fields stored encrypted at rest when the store has a `secretKey` (e.g. `['cardNumber']`). */
  sensitive?: string[];
  /**
   * Stall detection, in ms (positive): a `working` task of this tool that shows no activity — no
   * step begun or ended, no `ctx.progress` / `ctx.setStatusMessage`, no question asked or answered
   * — for longer than this is flagged stalled: `TaskRecord.stalled`, journal `stalled:<since>`, a
   * warn log line, `mcp_tasks.stalls`, `TaskRuntime.onTaskEvent`. A flag only, cleared by the next
   * activity; waiting on `ctx.sleep` / `sleepUntil` or a question is not a stall. Default: none.
   */
  stallAfterMs?: number;
  /**
   * The task's time budget, in ms from its creation (positive): past it the task ends `failed` with
   * the JSON-RPC error -32011 (`DEADLINE_EXCEEDED`, both protocol versions) and `ctx.signal`
   * aborts. A call may lower it with `_meta["mcp-tasks/deadlineMs"]`. Stored with the task
   * (`TaskRecord.deadline`): it holds across restarts and takeovers. Default: none.
   */
  deadlineMs?: number;
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

/**
 * `schema` as a Standard Schema with JSON Schema output (see `TaskInputSchema`): returned as it is,
 * or a raw zod shape wrapped in `z.object`. Throws `InvalidArgumentError` with the SDK's own words
 * for anything else (a plain JSON Schema object, a non-object schema library value).
 */
export function standardSchemaOf(schema: unknown): StandardSchemaWithJSON<Record<string, unknown>, any> {
  const std = (schema as { '~standard'?: { validate?: unknown; jsonSchema?: { input?: unknown } } } | null)?.['~standard'];
  if (std && typeof std.validate === 'function' && typeof std.jsonSchema?.input === 'function')
    return schema as StandardSchemaWithJSON<Record<string, unknown>, any>;
  if (
    schema !== null &&
    typeof schema === 'object' &&
    !Array.isArray(schema) &&
    Object.keys(schema).length > 0 &&
    Object.values(schema).every((v) => v instanceof z.ZodType)
  )
    return z.object(schema as z.ZodRawShape) as unknown as StandardSchemaWithJSON<Record<string, unknown>, any>;
  const jsonSchemaHint =
    schema !== null && typeof schema === 'object' && ('type' in schema || 'properties' in schema || '$schema' in schema)
      ? " A plain JSON Schema object: wrap it with fromJsonSchema(schema) from '@modelcontextprotocol/server'."
      : '';
  throw new InvalidArgumentError(
    `inputSchema/outputSchema/argsSchema must be a Standard Schema (e.g. z.object({...})) or a raw Zod shape ({ field: z.string() }).${jsonSchemaHint}`,
  );
}

/**
 * Validates `args` against `schema` (a Standard Schema; async validators are awaited): resolves
 * with the schema's output, or rejects with `InvalidArgumentError` (-32602 on the wire) listing
 * each issue as `✖ message → at path`.
 */
export async function validateArguments(tool: string, schema: StandardSchemaWithJSON<Record<string, unknown>, any>, args: unknown): Promise<unknown> {
  const result = await schema['~standard'].validate(args);
  if (!result.issues) return result.value;
  const lines = result.issues.map((issue) => {
    const path = (issue.path ?? []).map((part) => (typeof part === 'object' && part !== null ? part.key : part)).join('.');
    return `✖ ${issue.message}${path ? `\n  → at ${path}` : ''}`;
  });
  throw new InvalidArgumentError(`Invalid arguments for tool ${tool}: ${lines.join('\n')}`);
}

/** A registered task tool: its name and declaration. */
export interface TaskTool {
  name: string;
  config: TaskToolConfig;
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
  add(name: string, config: TaskToolConfig): void {
    const listed = {
      inputSchema: convertedOnce(standardSchemaOf(config.inputSchema)),
      ...(config.outputSchema && { outputSchema: convertedOnce(standardSchemaOf(config.outputSchema)) }),
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
