import {
  isJSONRPCRequest,
  ProtocolError,
  ProtocolErrorCode,
  type CallToolResult,
  type JSONRPCMessage,
  type JSONRPCRequest,
  type McpServer,
  type MessageExtraInfo,
  type Server,
  type ServerContext,
  type ToolAnnotations,
  type Transport,
} from '@modelcontextprotocol/server';
import * as z from 'zod';
import { InvalidArgumentError } from '../core/errors.js';
import { createLogger, type Logger } from '../core/log.js';
import type { JsonObject } from '../core/json.js';
import { jsonSize } from '../core/json.js';
import type { TaskContext } from '../runtime/context.js';
import type { TaskRuntime, TaskToolResult } from '../runtime/runtime.js';
import { toErrorObject } from './errors.js';
import { nextStepHint, registerFallbackTools, taskStatusView } from './fallback-tools.js';
import { PollThrottle } from './poll-throttle.js';
import { principalOf } from './principal.js';
import { attachLegacyHandlers, resultOf } from './rev2025/attach.js';
import { clientCanElicit, Session2025, toInputResponse } from './rev2025/session.js';
import { toTask2025 } from './rev2025/task-object.js';
import { answerModernCall, attachModernHandlers, claimsModernCall, type ModernTaskPolicy } from './rev2026/attach.js';
import { TASKS_EXTENSION } from './rev2026/task-object.js';

/**
 * `execution.taskSupport` of a task tool (2025-11-25 "Tool-Level Negotiation"): `optional` tools
 * run as a task when the call carries `params.task` and synchronously otherwise; `required` tools
 * refuse calls without `params.task` with -32601 (and, in 2026-07-28, calls from clients that did
 * not declare the Tasks extension with -32021).
 */
export type TaskSupport = 'optional' | 'required';

/** Declaration of a task tool. `inputSchema` is a zod object; it validates arguments on every path. */
export interface TaskToolConfig<Input extends z.ZodObject> {
  title?: string;
  description: string;
  inputSchema: Input;
  outputSchema?: z.ZodObject;
  annotations?: ToolAnnotations;
  taskSupport: TaskSupport;
  /** Top-level argument fields stored encrypted at rest when the store has a `secretKey` (e.g. `['cardNumber']`). */
  sensitive?: string[];
  /**
   * Protocol 2026-07-28 only, where the server decides per request whether a call becomes a task
   * (see `ModernTaskPolicy`). Default `always`. `required` tools always become tasks.
   */
  taskPolicy?: ModernTaskPolicy;
}

/**
 * The protocol era an `McpServer` serves: `legacy` = 2025-11-25 sessions (`initialize`), `modern` =
 * 2026-07-28 per-request serving with the `io.modelcontextprotocol/tasks` extension.
 */
export type Era = 'legacy' | 'modern';

/** Options of `McpTasks`. */
export interface McpTasksOptions {
  /**
   * Declare and serve 2025-11-25 `tasks/list`. Only sensible when requestors are authenticated: the
   * spec says receivers that cannot identify requestors SHOULD NOT declare it. Default false.
   */
  list?: boolean;
  /** Largest accepted `arguments` of a task call, in bytes of JSON. Default 1 MiB. */
  maxArgumentBytes?: number;
  /** Structured logger (see `createLogger`). Default: `createLogger()`. */
  logger?: Logger;
  /** Errors that concern no single request (delivery failures, …). Default: logged at warn level. */
  onError?: (error: unknown) => void;
  /**
   * Register the fallback tools `get_task_status`, `get_task_result`, `answer_task_input` and
   * `cancel_task` for hosts that do not speak MCP Tasks (see `registerFallbackTools`). Default false.
   */
  fallbackTools?: boolean;
  /**
   * How long an ordinary (non-task) call of a task tool waits for the work, in ms (default 30000).
   * Past that it answers with an ordinary result naming the task and how to continue; the work goes
   * on durably.
   */
  syncWaitMs?: number;
  /** Slow down `tasks/get` polls faster than half the advertised `pollInterval` (see `PollThrottle`). Default true. */
  throttlePolling?: boolean;
}

interface ToolEntry {
  name: string;
  config: TaskToolConfig<z.ZodObject>;
}

const taskParam = z.looseObject({ ttl: z.number().finite().nonnegative().nullable().optional() });

/**
 * Durable MCP Tasks for an SDK v2 `McpServer`, in both protocol eras, on one store and runtime.
 *
 * Register task tools once with `registerTool`, then `attach(mcp, { era })` every `McpServer` you
 * create (per session for 2025-11-25 Streamable HTTP or stdio, per request for 2026-07-28) before
 * it is connected.
 *
 * 2025-11-25 ("Tasks", in core): declares `capabilities.tasks` (`requests.tools.call`, `cancel`,
 * `list` if enabled) and `execution.taskSupport` per tool; `params.task` → `CreateTaskResult {task}`
 * once durably stored; `tasks/get|result|cancel|list` (see `attachLegacyHandlers`); status and
 * progress notifications and questions per connection (see `Session2025`).
 *
 * 2026-07-28 (extension `io.modelcontextprotocol/tasks`): advertises the extension in
 * `server/discover`; the server decides per request and tool (`taskPolicy`) whether to answer with
 * a flat `CreateTaskResult` (`resultType: "task"`, `ttlMs`, `pollIntervalMs`), only for requests
 * whose client capabilities declare the extension; `tasks/get|update|cancel` (see
 * `attachModernHandlers`); `isError` tool results end tasks `completed`. Tasks created in either era
 * are readable in the other.
 *
 * Without `params.task` (2025) or without a task decision (2026), a task tool runs as an ordinary
 * call backed by the same durable task; in 2025 its questions are asked on the call's stream.
 *
 * One SDK seam: SDK v2 refuses a task result from a `tools/call` handler in both eras (it validates
 * tool results as `CallToolResult`), so `attach` wraps the server's `connect` and interposes on the
 * connected transport's `onmessage` for exactly the `tools/call` requests that must be answered with
 * a task (or with a task-specific error); everything else flows through the SDK untouched.
 *
 * Errors (JSON-RPC codes): unknown/expired/foreign `taskId`, invalid cursor, cancelling a terminal
 * task (2025), malformed params or arguments → -32602; 2025: `task` on a tool that does not support
 * tasks, or a `required` tool without `task` → -32601; 2026: a non-declaring client calling
 * `tasks/*` or a `required` tool → -32021; `tasks/result`/`tasks/list` in 2026 → -32601; anything
 * unexpected → -32603.
 */
export class McpTasks {
  private readonly tools = new Map<string, ToolEntry>();
  private readonly listEnabled: boolean;
  private readonly maxArgumentBytes: number;
  private readonly onError: (error: unknown) => void;
  private readonly fallbackTools: boolean;
  private readonly syncWaitMs: number;
  private readonly throttle?: PollThrottle;

  constructor(
    readonly runtime: TaskRuntime,
    options: McpTasksOptions = {},
  ) {
    this.listEnabled = options.list ?? false;
    this.maxArgumentBytes = options.maxArgumentBytes ?? 1024 * 1024;
    const logger = options.logger ?? createLogger();
    this.onError = options.onError ?? ((error) => logger.warn({ err: error }, 'could not deliver a message to the client'));
    this.fallbackTools = options.fallbackTools ?? false;
    this.syncWaitMs = options.syncWaitMs ?? 30_000;
    if (options.throttlePolling !== false) this.throttle = new PollThrottle();
  }

  /**
   * Registers a durable task tool. `handler(args, ctx)` gets the parsed arguments and a
   * `TaskContext` and returns a `CallToolResult`-shaped object. Throws `InvalidArgumentError` if the
   * name is taken.
   */
  registerTool<Input extends z.ZodObject>(
    name: string,
    config: TaskToolConfig<Input>,
    handler: (args: z.output<Input>, ctx: TaskContext) => Promise<TaskToolResult>,
  ): void {
    if (this.tools.has(name)) throw new InvalidArgumentError(`Task tool '${name}' is already registered`);
    this.runtime.register(name, {
      parse: (args) => {
        const parsed = config.inputSchema.safeParse(args);
        if (!parsed.success) throw new InvalidArgumentError(`Invalid arguments for tool ${name}: ${z.prettifyError(parsed.error)}`);
        return parsed.data;
      },
      handler: handler as never,
      sensitive: config.sensitive,
    });
    this.tools.set(name, { name, config: config as unknown as TaskToolConfig<z.ZodObject> });
  }

  /** Names of the registered task tools. */
  toolNames(): string[] {
    return [...this.tools.keys()];
  }

  /** Wires tasks into `mcp` for one era (default `legacy`). Call before `mcp.connect`. */
  attach(mcp: McpServer, options: { era?: Era } = {}): void {
    const era = options.era ?? 'legacy';
    const server = mcp.server;
    this.registerToolsOn(mcp, era);
    if (this.fallbackTools) registerFallbackTools(mcp, this.runtime);
    if (era === 'modern') {
      server.registerCapabilities({ extensions: { [TASKS_EXTENSION]: {} } } as never);
      attachModernHandlers(mcp, this.runtime, this.throttle);
      this.afterConnect(mcp, (transport) => this.interpose(transport, (message, extra) => this.claimModernCall(message, extra)));
      return;
    }
    server.registerCapabilities({ tasks: { cancel: {}, requests: { tools: { call: {} } }, ...(this.listEnabled && { list: {} }) } } as never);
    const session = new Session2025(this.runtime, server, this.onError);
    attachLegacyHandlers(mcp, this.runtime, session, { list: this.listEnabled, throttle: this.throttle });
    this.afterConnect(mcp, (transport) => {
      session.connected(transport);
      this.interpose(transport, (message, extra) => this.claimLegacyCall(message, extra, session));
    });
    const previousOnClose = server.onclose;
    server.onclose = () => {
      session.dispose();
      previousOnClose?.();
    };
  }

  /** Registers each task tool as an ordinary tool too (the synchronous path); `execution.taskSupport` in 2025-11-25. */
  private registerToolsOn(mcp: McpServer, era: Era): void {
    for (const { name, config } of this.tools.values()) {
      const registered = mcp.registerTool(
        name,
        {
          title: config.title,
          description: config.description,
          inputSchema: config.inputSchema,
          ...(config.outputSchema && { outputSchema: config.outputSchema }),
          ...(config.annotations && { annotations: config.annotations }),
        },
        (async (args: JsonObject, ctx: ServerContext) => this.callSynchronously(mcp.server, era, name, args, ctx)) as never,
      );
      if (era === 'legacy') registered.execution = { taskSupport: config.taskSupport };
    }
  }

  /** Runs `after(transport)` right after the SDK connected `mcp` to a transport. */
  private afterConnect(mcp: McpServer, after: (transport: Transport) => void): void {
    const server = mcp.server;
    const connect = server.connect.bind(server);
    server.connect = async (transport: Transport) => {
      await connect(transport);
      after(transport);
    };
  }

  /**
   * Answers the `tools/call` requests `claim` takes (it returns the pending answer, or undefined to
   * leave the request to the SDK); the answer's value or error becomes the JSON-RPC response.
   */
  private interpose(transport: Transport, claim: (message: JSONRPCRequest, extra?: MessageExtraInfo) => Promise<unknown> | undefined): void {
    const inner = transport.onmessage;
    transport.onmessage = (message: JSONRPCMessage, extra?: MessageExtraInfo) => {
      const answer = isJSONRPCRequest(message) ? claim(message, extra) : undefined;
      if (!answer) return inner?.(message, extra);
      const id = (message as JSONRPCRequest).id;
      answer
        .then(
          (result) => transport.send({ jsonrpc: '2.0', id, result } as JSONRPCMessage, { relatedRequestId: id }),
          (error) => transport.send({ jsonrpc: '2.0', id, error: toErrorObject(error) } as JSONRPCMessage, { relatedRequestId: id }),
        )
        .catch((error) => this.onError(error));
    };
  }

  /** 2025-11-25: `tools/call` with `params.task`, or a `required` tool called without it. */
  private claimLegacyCall(message: JSONRPCRequest, extra: MessageExtraInfo | undefined, session: Session2025): Promise<unknown> | undefined {
    if (message.method !== 'tools/call') return undefined;
    const params = (message.params ?? {}) as { name?: unknown; arguments?: unknown; task?: unknown; _meta?: { progressToken?: unknown } };
    const name = String(params.name);
    const entry = typeof params.name === 'string' ? this.tools.get(params.name) : undefined;
    if (params.task === undefined && entry?.config.taskSupport !== 'required') return undefined;
    return (async () => {
      if (typeof params.name !== 'string') throw new ProtocolError(ProtocolErrorCode.InvalidParams, 'Invalid params: tools/call needs a string name');
      if (!entry)
        throw new ProtocolError(
          ProtocolErrorCode.MethodNotFound,
          `Tool '${name}' does not support task-augmented calls (its execution.taskSupport is not 'optional' or 'required')`,
        );
      if (params.task === undefined)
        throw new ProtocolError(
          ProtocolErrorCode.MethodNotFound,
          `Tool '${name}' must be called as a task (execution.taskSupport is 'required'): add params.task`,
        );
      const task = taskParam.safeParse(params.task);
      if (!task.success) throw new ProtocolError(ProtocolErrorCode.InvalidParams, `Invalid params.task: ${z.prettifyError(task.error)}`);
      const args = this.checkArguments(name, params.arguments);
      const owner = principalOf(extra?.authInfo);
      const record = await this.runtime.submit({ owner, tool: name, arguments: args, ttl: task.data.ttl, errorResultStatus: 'failed' });
      const token = params._meta?.progressToken;
      session.watch(record, owner, typeof token === 'string' || typeof token === 'number' ? token : undefined);
      return { task: toTask2025(record) };
    })();
  }

  /**
   * 2026-07-28: calls of task tools that `claimsModernCall` says the server answers itself; and
   * `tasks/update` with a malformed `inputResponses` (the SDK lifts that field out of the params and
   * drops non-object values silently, so the handler could not tell it was malformed) → -32602.
   */
  private claimModernCall(message: JSONRPCRequest, extra: MessageExtraInfo | undefined): Promise<unknown> | undefined {
    if (message.method === 'tasks/update') {
      const responses = (message.params as { inputResponses?: unknown } | undefined)?.inputResponses;
      const isRecord = (v: unknown) => typeof v === 'object' && v !== null && !Array.isArray(v);
      if (isRecord(responses) && Object.values(responses as object).every(isRecord)) return undefined;
      return Promise.reject(
        new ProtocolError(
          ProtocolErrorCode.InvalidParams,
          'Invalid params for tasks/update: inputResponses must be an object mapping question keys to response objects',
        ),
      );
    }
    if (message.method !== 'tools/call') return undefined;
    const params = (message.params ?? {}) as { name?: unknown; arguments?: unknown; _meta?: unknown };
    const entry = typeof params.name === 'string' ? this.tools.get(params.name) : undefined;
    if (!entry) return undefined;
    const call = { policy: entry.config.taskPolicy ?? 'always', required: entry.config.taskSupport === 'required' };
    if (!claimsModernCall(params, call)) return undefined;
    return (async () => answerModernCall(this.runtime, params, this.checkArguments(entry.name, params.arguments), principalOf(extra?.authInfo), call))();
  }

  /**
   * Shape and size checks of `arguments` on every path (task and synchronous, both eras): an object
   * of at most `maxArgumentBytes` bytes of JSON, else -32602; the schema itself is checked by the
   * runtime's parser. Arguments too deeply nested to serialize (stdio has no HTTP body guard) are
   * refused -32602 as well.
   */
  private checkArguments(name: string, args: unknown): JsonObject {
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

  /**
   * An ordinary call of a task tool: the same durable task, awaited for up to `syncWaitMs`. In
   * 2025-11-25 its questions are asked on this call's stream and cancelling the call cancels the
   * task. When the work outlasts `syncWaitMs`, or a question cannot be asked here (2026-07-28 without
   * the Tasks extension, or a client without elicitation), the call hands the task off: a result
   * naming the taskId and how to continue, with the status as `structuredContent`. It is an ordinary
   * result when the fallback tools can continue it, else `isError` (this client cannot). The task
   * goes on durably either way.
   */
  private async callSynchronously(server: Server, era: Era, name: string, args: JsonObject, ctx: ServerContext): Promise<CallToolResult> {
    this.checkArguments(name, args);
    const owner = principalOf(ctx.http?.authInfo);
    const task = await this.runtime.submit({ owner, tool: name, arguments: args, errorResultStatus: era === 'modern' ? 'completed' : 'failed' });
    const asked = new Set<string>();
    const handOff = new AbortController();
    let reason = `it is taking longer than ${Math.round(this.syncWaitMs / 1000)} s`;
    const final = await this.runtime.waitForTerminal(task.taskId, owner, {
      signal: AbortSignal.any([ctx.mcpReq.signal, handOff.signal, AbortSignal.timeout(this.syncWaitMs)]),
      onChange: (current) => {
        if (current.status !== 'input_required') return;
        if (era === 'modern' || !clientCanElicit(server)) {
          reason = era === 'modern' ? `its question needs the ${TASKS_EXTENSION} extension or the fallback tools` : 'the client does not support elicitation';
          return handOff.abort();
        }
        for (const [key, question] of Object.entries(current.inputRequests)) {
          if (asked.has(key)) continue;
          asked.add(key);
          const params = { mode: 'form' as const, message: question.message, requestedSchema: question.requestedSchema as never };
          ctx.mcpReq
            .send({ method: 'elicitation/create', params }, { timeout: 24 * 3600_000, signal: handOff.signal })
            .then((answer) => this.runtime.provideInput(task.taskId, key, toInputResponse(answer), owner))
            .catch((error) => {
              if (handOff.signal.aborted || ctx.mcpReq.signal.aborted) return;
              reason = `its question could not be asked here (${error instanceof Error ? error.message : String(error)})`;
              handOff.abort();
            });
        }
      },
    });
    if (final) return resultOf(final, false) as CallToolResult;
    if (ctx.mcpReq.signal.aborted) {
      await this.runtime.cancel(task.taskId, owner).catch(() => undefined);
      throw new ProtocolError(ProtocolErrorCode.InternalError, 'The call was cancelled');
    }
    handOff.abort(); // stop asking on this call's stream
    const current = await this.runtime.get(task.taskId, owner);
    const question = Object.values(current.inputRequests)[0]?.message;
    const how = this.fallbackTools ? nextStepHint(current) : 'Continue it with a client that supports MCP Tasks.';
    return {
      content: [
        {
          type: 'text',
          text: `The work continues as task ${task.taskId} because ${reason}${question ? `; it is waiting for: ${question}` : ''}. ${how}`,
        },
      ],
      // A tool with an outputSchema has its structuredContent validated against it: leave it out there.
      ...(!this.tools.get(name)?.config.outputSchema && { structuredContent: taskStatusView(current) }),
      ...(!this.fallbackTools && { isError: true }),
    };
  }
}
