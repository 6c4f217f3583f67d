import type { McpServer } from '@modelcontextprotocol/server';
import { InvalidArgumentError } from '../core/errors.js';
import { createLogger, type Logger } from '../core/log.js';
import type { TaskContext } from '../runtime/context.js';
import type { TaskRuntime, TaskToolResult } from '../runtime/runtime.js';
import { isStoreUnavailable } from './errors.js';
import { registerFallbackTools } from './fallback-tools.js';
import { FastPath } from './fast-path.js';
import type { OrdinaryCallSettings } from './ordinary-call.js';
import { PollThrottle } from './poll-throttle.js';
import type { ProtocolVersion } from './protocol-version.js';
import { claimRequests } from './sdk-seam.js';
import { standardSchemaOf, TaskTools, validateArguments, type TaskInputSchema, type TaskToolArgs, type TaskToolConfig } from './task-tools.js';
import { attachHandlers2025 } from './2025-11-25/attach.js';
import { registerTools2025 } from './2025-11-25/ordinary-call.js';
import { Session2025 } from './2025-11-25/session.js';
import { claimTaskCall2025 } from './2025-11-25/task-call.js';
import { attachHandlers2026 } from './2026-07-28/attach.js';
import { claimCall2026 } from './2026-07-28/call.js';
import { TASKS_EXTENSION } from './2026-07-28/envelope.js';
import { registerTools2026 } from './2026-07-28/ordinary-call.js';

export type { ProtocolVersion } from './protocol-version.js';
export type { TaskCreationPolicy, TaskInputSchema, TaskSupport, TaskToolArgs, TaskToolConfig } from './task-tools.js';

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
  /**
   * Errors that concern no single request (delivery failures, an answer to a pushed question that
   * could not be stored, …). Default: logged at warn level, except store outages (the store logs
   * each outage once; the question is asked again): debug.
   */
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
  /**
   * Declare the `tools.idempotency` server capability (SEP-3182 "Request Idempotency"), which tells
   * clients that a `tools/call` retried with the same `idempotencyKey` is not executed twice. Task
   * tools always honor keys, declared or not. Default true; set it to false when the same
   * `McpServer` carries ordinary tools with side effects that do not honor `params.idempotencyKey`
   * (read it with `idempotencyKeyOf(params)`), since the capability covers every tool.
   */
  declareIdempotency?: boolean;
}

/**
 * Durable MCP Tasks for an SDK v2 `McpServer`, in both protocol versions, on one store and runtime.
 *
 * Register task tools once with `registerTool`, then `attach(mcp, { protocolVersion })` every `McpServer` you
 * create (per session for 2025-11-25 Streamable HTTP, per request for 2026-07-28 Streamable HTTP, per
 * connection on stdio in either version) before
 * it is connected.
 *
 * Both versions: declares `capabilities.tools.idempotency` (SEP-3182, see `declareIdempotency`) and
 * honors `params.idempotencyKey` (or `_meta["io.modelcontextprotocol/idempotencyKey"]`) on every
 * task-creating call: a retry returns the task the first call created (see `createCallTask`).
 *
 * 2025-11-25 ("Tasks", in core): declares `capabilities.tasks` (`requests.tools.call`, `cancel`,
 * `list` if enabled) and `execution.taskSupport` per tool; `params.task` → `CreateTaskResult {task}`
 * once durably stored (see `claimTaskCall2025`); `tasks/get|result|cancel|list` (see
 * `attachHandlers2025`); status and progress notifications and questions per connection (see
 * `Session2025`).
 *
 * 2026-07-28 (extension `io.modelcontextprotocol/tasks`): advertises the extension in
 * `server/discover`; the server decides per request and tool (`taskPolicy`) whether to answer with
 * a flat `CreateTaskResult` (`resultType: "task"`, `ttlMs`, `pollIntervalMs`), only for requests
 * whose client capabilities declare the extension (see `claimCall2026`); `tasks/get|update|cancel`
 * (see `attachHandlers2026`); `isError` tool results end tasks `completed`. Tasks created in either
 * version are readable in the other.
 *
 * Without `params.task` (2025) or without a task decision (2026), a task tool runs as an ordinary
 * call backed by the same durable task (see `ordinary-call.ts`); in 2025 its questions are asked
 * on the call's stream (`callOrdinary2025`), in 2026 with multi round-trip requests
 * (`InputRequiredResult` rounds resuming the same task, see `callOrdinary2026`). Questions of every kind (form and URL elicitation,
 * sampling, roots) only go to clients that declared the capability (see `clientCanAnswer`).
 *
 * Task-augmented calls, and every 2026 call of a task tool, are answered ahead of the SDK, which
 * refuses task results from `tools/call` handlers and turns their errors into `isError` results:
 * see `claimRequests` in `sdk-seam.ts`, the one place that patches SDK objects.
 *
 * Errors (JSON-RPC codes): unknown/expired/foreign `taskId`, invalid cursor, cancelling a terminal
 * task (2025), malformed params or arguments, an answer (2026 `tasks/update`) that does not match
 * its question's `requestedSchema` → -32602 (a 2025 answer to `elicitation/create` cannot be
 * refused with an error: the question is asked again); 2025: `task` on a tool that does not support
 * tasks, or a `required` tool without `task` → -32601; 2026: a non-declaring client calling
 * `tasks/*` or a `required` tool → -32021; `tasks/result`/`tasks/list` in 2026 → -32601; a
 * tampered, foreign or expired `requestState` → -32602; a 2026 ordinary call whose question the
 * client did not declare it can answer → -32021; the task store unavailable for now → -32010 with
 * `data: { retryable: true, retryAfterMs }` (HTTP 503 + `Retry-After` where the answer is a JSON
 * response; see `STORE_UNAVAILABLE`); anything unexpected → -32603.
 */
export class McpTasks {
  private readonly tools: TaskTools;
  private readonly listEnabled: boolean;
  private readonly onError: (error: unknown) => void;
  private readonly calls: OrdinaryCallSettings;
  private readonly throttle?: PollThrottle;
  /** The server capabilities this adds to every attached `McpServer` besides tasks (`tools.idempotency`). */
  private readonly toolCapabilities: { listChanged?: boolean };
  /** The 2025-11-25 session view of each server attached for 2025-11-25. */
  private readonly sessions = new WeakMap<McpServer, Session2025>();
  /**
   * The fast path over the same runtime, tools and settings (see `FastPath`): `startHttpServer`
   * answers `tasks/get` (both versions), `tasks/result` of ended tasks, 2025 task-augmented calls
   * and 2026 task-creating calls with it unless `TaskServerOptions.fastPath` is false.
   *
   * @internal The server's seam to the wire (`createTaskServer` passes it to `startHttpServer`), not
   * an API of its own.
   */
  readonly fastPath: FastPath;

  constructor(
    readonly runtime: TaskRuntime,
    options: McpTasksOptions = {},
  ) {
    this.listEnabled = options.list ?? false;
    this.tools = new TaskTools(options.maxArgumentBytes ?? 1024 * 1024);
    const logger = options.logger ?? createLogger();
    this.onError =
      options.onError ??
      ((error) => {
        if (isStoreUnavailable(error)) logger.debug({ error: (error as Error).message }, 'a question could not be answered now: the task store is unavailable');
        else logger.warn({ err: error }, 'could not deliver a message to the client');
      });
    this.calls = { runtime, tools: this.tools, waitMs: options.syncWaitMs ?? 30_000, fallbackTools: options.fallbackTools ?? false };
    if (options.throttlePolling !== false) this.throttle = new PollThrottle();
    // The SDK's `ServerCapabilities` type predates SEP-3182; the capability object is sent as merged.
    this.toolCapabilities = options.declareIdempotency === false ? {} : ({ idempotency: {} } as { listChanged?: boolean });
    this.fastPath = new FastPath(runtime, this.tools, {
      throttle: this.throttle,
      sessionOf: (mcp) => this.sessions.get(mcp),
      calls: this.calls,
    });
  }

  /**
   * Registers a durable task tool. `handler(args, ctx)` gets the parsed arguments and a
   * `TaskContext` and returns a `CallToolResult`-shaped object. Throws `InvalidArgumentError` if the
   * name is taken.
   */
  registerTool<Input extends TaskInputSchema>(
    name: string,
    config: TaskToolConfig<Input>,
    handler: (args: TaskToolArgs<Input>, ctx: TaskContext) => Promise<TaskToolResult>,
  ): void {
    if (this.tools.get(name)) throw new InvalidArgumentError(`Task tool '${name}' is already registered`);
    const schema = standardSchemaOf(config.inputSchema); // refuses what the SDK refuses, before anything is registered
    if (config.outputSchema) standardSchemaOf(config.outputSchema);
    this.runtime.register(name, {
      parse: (args) => validateArguments(name, schema, args),
      handler,
      sensitive: config.sensitive,
      ...(config.stallAfterMs !== undefined && { stallAfterMs: config.stallAfterMs }),
      ...(config.deadlineMs !== undefined && { deadlineMs: config.deadlineMs }),
    });
    this.tools.add(name, config);
  }

  /** Names of the registered task tools. */
  toolNames(): string[] {
    return this.tools.all().map((tool) => tool.name);
  }

  /** The declaration a task tool was registered with (`TaskToolConfig`), or undefined for an unknown name. */
  toolConfig(name: string): TaskToolConfig | undefined {
    return this.tools.get(name)?.config;
  }

  /**
   * Tells the 2025-11-25 session of `mcp` whether its client holds the standalone GET stream open
   * (see `Session2025.standaloneStream`); `startHttpServer`'s `onStandaloneStream` calls it. No-op
   * for servers this did not attach for 2025-11-25.
   */
  standaloneStream(mcp: McpServer, open: boolean): void {
    this.sessions.get(mcp)?.standaloneStream(open);
  }

  /**
   * Whether the 2025-11-25 session state of `mcp` holds nothing a new `McpServer` attached the same
   * way would lack (no task watched, no question pending; see `Session2025.quiet`), so its session
   * may go dormant (`SessionLimits.dormantAfterMs`). True for servers this did not attach for 2025-11-25.
   */
  quiet(mcp: McpServer): boolean {
    return this.sessions.get(mcp)?.quiet() ?? true;
  }

  /**
   * Wires tasks into `mcp` for one protocol version (default `2025-11-25`; see `ProtocolVersion`).
   * Call before `mcp.connect`.
   */
  attach(mcp: McpServer, options: { protocolVersion?: ProtocolVersion } = {}): void {
    if ((options.protocolVersion ?? '2025-11-25') === '2026-07-28') return this.attach2026(mcp);
    this.attach2025(mcp);
  }

  /** `attach` for 2026-07-28: the extension, its task methods, its calls (ahead of the SDK). */
  private attach2026(mcp: McpServer): void {
    const { runtime, tools, onError, calls } = this;
    registerTools2026(mcp, calls);
    if (calls.fallbackTools) registerFallbackTools(mcp, runtime);
    mcp.server.registerCapabilities({ extensions: { [TASKS_EXTENSION]: {} }, tools: this.toolCapabilities });
    attachHandlers2026(mcp, runtime, { throttle: this.throttle, fallbackTools: calls.fallbackTools });
    claimRequests(mcp.server, (message, extra) => claimCall2026(message, extra, { tools, runtime, calls }), { onError });
    this.fastPath.noteServer2026(mcp);
  }

  /** `attach` for 2025-11-25: the `tasks` capability, a session view, its task methods and task-augmented calls. */
  private attach2025(mcp: McpServer): void {
    const server = mcp.server;
    const { runtime, tools, onError, calls } = this;
    registerTools2025(mcp, calls);
    if (calls.fallbackTools) registerFallbackTools(mcp, runtime);
    server.registerCapabilities({
      tasks: { cancel: {}, requests: { tools: { call: {} } }, ...(this.listEnabled && { list: {} }) },
      tools: this.toolCapabilities,
    });
    const session = new Session2025(runtime, server, onError);
    this.sessions.set(mcp, session);
    attachHandlers2025(mcp, runtime, session, { list: this.listEnabled, throttle: this.throttle, fallbackTools: calls.fallbackTools });
    claimRequests(server, (message, extra) => claimTaskCall2025(message, extra, { tools, runtime, session }), {
      onConnect: (transport) => session.connected(transport),
      onError,
    });
    const previousOnClose = server.onclose;
    server.onclose = () => {
      session.dispose();
      previousOnClose?.();
    };
  }
}
