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
import type { JsonObject } from '../core/json.js';
import { jsonSize } from '../core/json.js';
import type { TaskRecord } from '../core/task.js';
import type { TaskContext } from '../runtime/context.js';
import type { TaskRuntime, TaskToolResult } from '../runtime/runtime.js';
import { toErrorObject, toProtocolError } from './errors.js';
import { principalOf } from './principal.js';
import { clientCanElicit, Session2025, toInputResponse } from './rev2025/session.js';
import { relatedTaskMeta, toTask2025 } from './rev2025/task-object.js';

/**
 * `execution.taskSupport` of a task tool (2025-11-25 "Tool-Level Negotiation"): `optional` tools
 * run as a task when the call carries `params.task` and synchronously otherwise; `required` tools
 * refuse calls without `params.task` with -32601.
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
}

/** Options of `McpTasks`. */
export interface McpTasksOptions {
  /**
   * Declare and serve `tasks/list`. Only sensible when requestors are authenticated: the spec says
   * receivers that cannot identify requestors SHOULD NOT declare it. Default false.
   */
  list?: boolean;
  /** Largest accepted `arguments` of a task-augmented call, in bytes of JSON. Default 1 MiB. */
  maxArgumentBytes?: number;
  /** Errors that concern no single request (delivery failures, …). Default: console.error. */
  onError?: (error: unknown) => void;
}

interface ToolEntry {
  name: string;
  config: TaskToolConfig<z.ZodObject>;
}

const taskIdParams = z.looseObject({ taskId: z.string().min(1).max(256) });
const listParams = z.looseObject({ cursor: z.string().max(1024).optional() });
const taskParam = z.looseObject({ ttl: z.number().finite().nonnegative().nullable().optional() });

/**
 * Durable MCP Tasks (protocol revision 2025-11-25, "Tasks") for an SDK v2 `McpServer`.
 *
 * Register task tools once with `registerTool`, then `attach(mcp)` every `McpServer` you create
 * (one per connection for Streamable HTTP sessions, one for stdio) before connecting it. Attaching:
 * - declares `capabilities.tasks` (`requests.tools.call`, `cancel`, and `list` if enabled);
 * - registers each task tool on the server with `execution.taskSupport`; a call without
 *   `params.task` to an `optional` tool runs the same durable task and answers when it ends,
 *   asking its questions on the call's own stream;
 * - serves `tasks/get`, `tasks/result` (blocks until terminal, returns exactly the call's result or
 *   JSON-RPC error with related-task `_meta`), `tasks/cancel`, and `tasks/list` if enabled;
 * - answers task-augmented `tools/call` with `CreateTaskResult { task }` once the task is durably
 *   stored. The SDK v2 refuses a `{ task }` result from a `tools/call` handler on the 2025 wire, so
 *   this one request shape is answered at the transport boundary: `attach` wraps the server's
 *   `connect` to interpose on the connected transport's `onmessage` for `tools/call` requests that
 *   carry `params.task` (and for `required` tools called without it). Everything else flows through
 *   the SDK untouched.
 *
 * Errors (JSON-RPC codes): unknown/expired/foreign `taskId`, invalid cursor, cancelling a terminal
 * task, malformed params or arguments → -32602; `task` on a tool that does not support tasks, or a
 * `required` tool called without `task` → -32601; anything unexpected → -32603.
 */
export class McpTasks {
  private readonly tools = new Map<string, ToolEntry>();
  private readonly listEnabled: boolean;
  private readonly maxArgumentBytes: number;
  private readonly onError: (error: unknown) => void;

  constructor(
    readonly runtime: TaskRuntime,
    options: McpTasksOptions = {},
  ) {
    this.listEnabled = options.list ?? false;
    this.maxArgumentBytes = options.maxArgumentBytes ?? 1024 * 1024;
    this.onError = options.onError ?? ((error) => console.error('[mcp-tasks]', error));
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
    });
    this.tools.set(name, { name, config: config as unknown as TaskToolConfig<z.ZodObject> });
  }

  /** Names of the registered task tools. */
  toolNames(): string[] {
    return [...this.tools.keys()];
  }

  /** Wires tasks into `mcp` (see the class comment). Call before `mcp.connect`. */
  attach(mcp: McpServer): void {
    const server = mcp.server;
    server.registerCapabilities({
      tasks: { cancel: {}, requests: { tools: { call: {} } }, ...(this.listEnabled && { list: {} }) },
    } as never);
    const session = new Session2025(this.runtime, server, this.onError);

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
        (async (args: JsonObject, ctx: ServerContext) => this.callSynchronously(server, name, args, ctx)) as never,
      );
      registered.execution = { taskSupport: config.taskSupport };
    }

    server.setRequestHandler(
      'tasks/get',
      { params: taskIdParams } as never,
      (async (params: { taskId: string }, ctx: ServerContext) => {
        const owner = principalOf(ctx.http?.authInfo);
        try {
          const task = await this.runtime.store.get(params.taskId, owner);
          session.watch(task, owner);
          session.deliver(task, owner);
          return toTask2025(task);
        } catch (error) {
          throw toProtocolError(error);
        }
      }) as never,
    );

    server.setRequestHandler(
      'tasks/result',
      { params: taskIdParams } as never,
      (async (params: { taskId: string }, ctx: ServerContext) => {
        const owner = principalOf(ctx.http?.authInfo);
        let final: TaskRecord | undefined;
        try {
          const task = await this.runtime.store.get(params.taskId, owner);
          session.watch(task, owner);
          session.openResultStream(task.taskId, ctx);
          try {
            final = await this.runtime.waitForTerminal(task.taskId, owner, {
              signal: ctx.mcpReq.signal,
              onChange: (current) => session.deliver(current, owner),
            });
          } finally {
            session.closeResultStream(task.taskId, ctx);
          }
        } catch (error) {
          throw toProtocolError(error);
        }
        if (!final) throw new ProtocolError(ProtocolErrorCode.InternalError, 'tasks/result was cancelled by the requestor');
        return resultOf(final, true);
      }) as never,
    );

    server.setRequestHandler(
      'tasks/cancel',
      { params: taskIdParams } as never,
      (async (params: { taskId: string }, ctx: ServerContext) => {
        try {
          return toTask2025(await this.runtime.cancel(params.taskId, principalOf(ctx.http?.authInfo)));
        } catch (error) {
          throw toProtocolError(error);
        }
      }) as never,
    );

    if (this.listEnabled) {
      server.setRequestHandler(
        'tasks/list',
        { params: listParams } as never,
        (async (params: { cursor?: string }, ctx: ServerContext) => {
          try {
            const page = await this.runtime.store.list(principalOf(ctx.http?.authInfo), params.cursor);
            return { tasks: page.tasks.map(toTask2025), ...(page.nextCursor && { nextCursor: page.nextCursor }) };
          } catch (error) {
            throw toProtocolError(error);
          }
        }) as never,
      );
    }

    const connect = server.connect.bind(server);
    server.connect = async (transport: Transport) => {
      await connect(transport);
      session.connected(transport);
      this.interpose(transport, session);
    };
    const previousOnClose = server.onclose;
    server.onclose = () => {
      session.dispose();
      previousOnClose?.();
    };
  }

  /**
   * Takes over `tools/call` requests that carry `params.task` (and `required` tools called without
   * it); every other message goes to the SDK as before.
   */
  private interpose(transport: Transport, session: Session2025): void {
    const inner = transport.onmessage;
    transport.onmessage = (message: JSONRPCMessage, extra?: MessageExtraInfo) => {
      if (isJSONRPCRequest(message) && message.method === 'tools/call') {
        const params = (message.params ?? {}) as { name?: unknown; task?: unknown };
        const entry = typeof params.name === 'string' ? this.tools.get(params.name) : undefined;
        if (params.task !== undefined || entry?.config.taskSupport === 'required') {
          void this.createTask(message, entry, extra, session)
            .then(
              (result) => transport.send({ jsonrpc: '2.0', id: message.id, result } as JSONRPCMessage, { relatedRequestId: message.id }),
              (error) => transport.send({ jsonrpc: '2.0', id: message.id, error: toErrorObject(error) } as JSONRPCMessage, { relatedRequestId: message.id }),
            )
            .catch((error) => this.onError(error));
          return;
        }
      }
      inner?.(message, extra);
    };
  }

  /** `tools/call` with `params.task`: validates, stores, starts, and returns `CreateTaskResult`. */
  private async createTask(message: JSONRPCRequest, entry: ToolEntry | undefined, extra: MessageExtraInfo | undefined, session: Session2025) {
    const params = (message.params ?? {}) as { name?: unknown; arguments?: unknown; task?: unknown; _meta?: { progressToken?: unknown } };
    const name = String(params.name);
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
    const args = params.arguments ?? {};
    if (typeof args !== 'object' || args === null || Array.isArray(args))
      throw new ProtocolError(ProtocolErrorCode.InvalidParams, `Invalid arguments for tool ${name}: expected an object`);
    if (jsonSize(args) > this.maxArgumentBytes)
      throw new ProtocolError(ProtocolErrorCode.InvalidParams, `Arguments for tool ${name} exceed ${this.maxArgumentBytes} bytes`);
    const owner = principalOf(extra?.authInfo);
    const record = await this.runtime.submit({ owner, tool: name, arguments: args as JsonObject, ttl: task.data.ttl, errorResultStatus: 'failed' });
    const token = params._meta?.progressToken;
    session.watch(record, owner, typeof token === 'string' || typeof token === 'number' ? token : undefined);
    return { task: toTask2025(record) };
  }

  /**
   * A call without `params.task` to an `optional` task tool: the same durable task, awaited. Its
   * questions are asked on this call's stream; cancelling the call cancels the task. If a question
   * cannot be delivered (e.g. the client does not support elicitation), the call ends with an
   * `isError` result naming the task, which stays `input_required` for a task-aware client.
   */
  private async callSynchronously(server: Server, name: string, args: JsonObject, ctx: ServerContext): Promise<CallToolResult> {
    const owner = principalOf(ctx.http?.authInfo);
    const task = await this.runtime.submit({ owner, tool: name, arguments: args, errorResultStatus: 'failed' });
    const asked = new Set<string>();
    const undeliverable = new AbortController();
    let reason = '';
    const final = await this.runtime.waitForTerminal(task.taskId, owner, {
      signal: AbortSignal.any([ctx.mcpReq.signal, undeliverable.signal]),
      onChange: (current) => {
        if (current.status !== 'input_required') return;
        if (!clientCanElicit(server)) {
          reason = 'the client does not support elicitation';
          return undeliverable.abort();
        }
        for (const [key, question] of Object.entries(current.inputRequests)) {
          if (asked.has(key)) continue;
          asked.add(key);
          const params = { mode: 'form' as const, message: question.message, requestedSchema: question.requestedSchema as never };
          ctx.mcpReq
            .send({ method: 'elicitation/create', params }, { timeout: 24 * 3600_000, signal: undeliverable.signal })
            .then((answer) => this.runtime.provideInput(task.taskId, key, toInputResponse(answer), owner))
            .catch((error) => {
              if (undeliverable.signal.aborted || ctx.mcpReq.signal.aborted) return;
              reason = error instanceof Error ? error.message : String(error);
              undeliverable.abort();
            });
        }
      },
    });
    if (final) return resultOf(final, false) as CallToolResult;
    if (ctx.mcpReq.signal.aborted) {
      await this.runtime.cancel(task.taskId, owner).catch(() => undefined);
      throw new ProtocolError(ProtocolErrorCode.InternalError, 'The call was cancelled');
    }
    const waiting = await this.runtime.store.get(task.taskId, owner);
    const question = Object.values(waiting.inputRequests)[0]?.message ?? waiting.statusMessage ?? '';
    return {
      content: [
        {
          type: 'text',
          text: `This call needs input that could not be asked here (${reason}). The work continues as task ${task.taskId}, waiting for: ${question}. Answer it with a client that supports MCP Tasks and elicitation.`,
        },
      ],
      isError: true,
    };
  }
}

/**
 * What `tasks/result` (or the synchronous call) returns for a terminal task: the stored result,
 * with related-task `_meta` when `related`; a stored JSON-RPC error is thrown as that error. A
 * cancelled task has no result: -32602 saying so.
 */
function resultOf(task: TaskRecord, related: boolean): Record<string, unknown> {
  const outcome = task.outcome;
  if (task.status === 'cancelled' || !outcome) throw new ProtocolError(ProtocolErrorCode.InvalidParams, `Task ${task.taskId} was cancelled and has no result`);
  if (outcome.type === 'error') throw new ProtocolError(outcome.error.code, outcome.error.message, outcome.error.data);
  if (!related) return outcome.result;
  const meta = (outcome.result._meta ?? {}) as JsonObject;
  return { ...outcome.result, _meta: { ...meta, ...relatedTaskMeta(task.taskId) } };
}
