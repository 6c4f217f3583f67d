import { McpServer, type AuthInfo, type Transport } from '@modelcontextprotocol/server';
import { createLogger, type Logger } from '../core/log.js';
import type { TaskContext } from '../runtime/context.js';
import { ExecutorUnavailableError, type TaskExecutor } from '../runtime/executor.js';
import { TaskRuntime, type TaskRuntimeOptions, type TaskToolResult } from '../runtime/runtime.js';
import { openStore } from '../store/open-store.js';
import type { TaskStore, TaskStoreOptions } from '../store/task-store.js';
import { McpTasks, type McpTasksOptions, type ProtocolVersion, type TaskInputSchema, type TaskToolArgs, type TaskToolConfig } from '../wire/mcp-tasks.js';
import { TaskSubscriptions } from '../wire/index.js';
import { startHttpServer, type HttpServerOptions, type RunningHttpServer } from './http.js';
import { createMcpHttpHandler, type McpHttpHandler, type McpHttpHandlerOptions } from './mcp-http-handler.js';
import { startStdioServer } from './stdio.js';
import { OperatorConsole, type ConsoleOptions } from './console/console.js';
import { InvalidArgumentError, errorChain } from '../core/errors.js';
import { WebhookDispatcher, webhookRoutes, type WebhooksOptions } from './webhooks/dispatcher.js';
import { randomBytes } from 'node:crypto';

/** Options of `createTaskServer`. */
export interface TaskServerOptions {
  /**
   * The task store: a URL for `openStore` (`memory:`, `sqlite:<path>`, `postgres://…`, `redis://…`;
   * the backend creates or migrates its schema when opened) or a `TaskStore` you opened yourself.
   */
  store: string | TaskStore;
  /**
   * Options for `openStore` when `store` is a URL: `policy` (all ms: `defaultTtlMs`, `maxTtlMs`,
   * `retainAfterEndMs` — how long a result is kept at least after its task ends, capped by the
   * task's ttl, default 24 h — and `pollIntervalMs`), `maxLiveTasksPerOwner`, `secretKey`, `logger`
   * (default: this server's `logger`).
   */
  storeOptions?: TaskStoreOptions;
  /** Runtime options: `instanceId`, `leaseMs` (ms), `maxResultBytes`, `purgeIntervalMs` (ms), `onError`. */
  runtime?: Omit<TaskRuntimeOptions, 'logger' | 'executor'>;
  /**
   * What executes task handlers (see `TaskExecutor`). Default: the embedded executor (this process,
   * the store's journal, timers and leases; `runtime` options tune it). Or an engine you already
   * operate: `createDbosExecutor({ systemDatabaseUrl })` from `mcp-tasks/executor/dbos`,
   * `createRestateExecutor({ ingressUrl, adminUrl })` from `mcp-tasks/executor/restate`. Tool code
   * and the wire are the same on each.
   */
  executor?: TaskExecutor;
  /** Wire options: `list`, `fallbackTools`, `syncWaitMs` (ms), `maxArgumentBytes`, `throttlePolling`, `declareIdempotency`, `onError`. */
  tasks?: Omit<McpTasksOptions, 'logger'>;
  /** One logger for every layer. Default: `createLogger()` (JSON on stderr, info). */
  logger?: Logger;
  /** 2026-07-28 `subscriptions/listen` streams: `keepAliveMs` between keep-alive comments (default 15000). */
  subscriptions?: { keepAliveMs?: number };
  /** Server identity for the default `McpServer` factory. Default `{ name: 'mcp-tasks', version: '0.1.0' }`. */
  info?: { name: string; version: string };
  /**
   * Builds the `McpServer` your ordinary tools, resources and prompts live on — over HTTP one per
   * 2025-11-25 session and one per 2026-07-28 request; over stdio one per connection in either
   * version (plus one for a `server/discover` probe, discarded when the client then sends
   * `initialize`); the task tools are attached to it for the `protocolVersion` given. Default: `new McpServer(info)`.
   * With the default, a quiet 2025-11-25 session goes dormant after 5 s and its `McpServer` is built
   * again when the session is next used (see `SessionLimits.dormantAfterMs`); with a factory of your
   * own, only if you set `sessions.dormantAfterMs` (your servers must then hold no state of their own).
   */
  createMcpServer?: (context: { protocolVersion: ProtocolVersion; authInfo?: AuthInfo }) => McpServer | Promise<McpServer>;
  /**
   * Serve the operator console at `/console/` beside the MCP endpoint (HTTP only; see
   * `OperatorConsole`): every task in the store, live, with its timeline; pending form questions
   * answered and tasks cancelled by an operator. `true` = defaults. It sees every principal's tasks,
   * so when `listen({ auth })` authenticates MCP clients, `operatorTokens` are required; without
   * tokens it answers loopback peers only. Default off.
   */
  console?: boolean | ConsoleOptions;
  /**
   * Answer a task's lifecycle over HTTP — `tasks/get` in both versions, 2025-11-25 `tasks/result`
   * of an ended task, 2025-11-25 task-augmented and 2026-07-28 task-creating `tools/call` of task
   * tools — on the fast path (see `FastPath`): same checks, same answers, without the SDK's
   * per-request machinery. `false` sends every request through the SDK. Default true.
   */
  fastPath?: boolean;
  /**
   * Webhooks (see docs/webhooks.md): `endpoints` (`{ id, url, secret, events?, principal? }`) get a
   * signed POST (Standard Webhooks) when a task needs input or ends, from a durable outbox written
   * with the task (at-least-once, one stable `webhook-id` per delivery). `allowPrivateAddresses`,
   * `dispatch`, `timeoutMs`, `retry`, `claimMs`, `batchSize`, `idleCheckMs`: see `WebhooksOptions`.
   * Checked when the server is built (`InvalidArgumentError`, `WebhookUrlRefusedError` with code
   * `WEBHOOK_URL_REFUSED`) and by DNS at `start`. Default none: no outbox writes, no timer.
   */
  webhooks?: WebhooksOptions;
}

/** What `listen` takes: `startHttpServer`'s options less what the task server provides itself. */
export type ListenOptions = Omit<
  HttpServerOptions,
  'createMcpServer' | 'taskSubscriptions' | 'logger' | 'onStandaloneStream' | 'sessionQuiet' | 'fastPath' | 'console' | 'ready'
>;

/**
 * What `httpHandler` takes (see `McpHttpHandlerOptions`): `stateless`, `auth`, `protocolVersions`,
 * `sessions`, `maxConcurrentRequests`, `maxBodyBytes`, `bodyLimits`, `onError`.
 */
export type HttpHandlerOptions = Omit<
  McpHttpHandlerOptions,
  'createMcpServer' | 'taskSubscriptions' | 'logger' | 'onStandaloneStream' | 'sessionQuiet' | 'fastPath' | 'ready'
>;

/**
 * A complete durable MCP Tasks server: one store, one runtime, task tools in both protocol versions
 * (2025-11-25 Tasks; 2026-07-28 with the `io.modelcontextprotocol/tasks` extension and its
 * `subscriptions/listen`), served over Streamable HTTP (`listen`) or stdio (`serveStdio`), both versions on either.
 *
 * Lifecycle: register task tools (`registerTool`), then `listen`/`serveStdio`, which first resumes
 * every unfinished task from its journal (`start`, `TaskRuntime.recover`) and then accepts requests
 * — or `start()` and mount `httpHandler()` / `consoleHandler()` in an app you already run, or
 * `serveWorker()` to run tasks and serve nothing.
 * `close` stops accepting (closing sessions and connections), stops running handlers and releases
 * their leases (so another instance takes over at once), then closes the store.
 * `closeOnSignals()` does that on SIGTERM/SIGINT and exits.
 */
export class TaskServer {
  readonly store: TaskStore;
  readonly runtime: TaskRuntime;
  readonly tasks: McpTasks;
  readonly logger: Logger;
  private readonly createMcpServer: (context: { protocolVersion: ProtocolVersion; authInfo?: AuthInfo }) => Promise<McpServer>;
  private readonly subscriptions: { keepAliveMs?: number };
  private readonly consoleOptions?: ConsoleOptions;
  private readonly fastPath: boolean;
  private readonly closers: (() => Promise<void>)[] = [];
  private starting?: Promise<number>;
  /** Set once `start` has resolved: handlers then serve without awaiting it. */
  private isStarted = false;
  private closing?: Promise<void>;
  /** Sends webhook deliveries (when `webhooks` are configured and `dispatch` is not false). */
  private readonly dispatcher?: WebhookDispatcher;
  /**
   * `sessions.dormantAfterMs` unless the endpoint's options set it: 5,000 with the default
   * `McpServer` factory (its servers hold no state of their own), 0 (never) with a custom one.
   */
  private readonly dormantAfterMs: number;

  constructor(options: TaskServerOptions) {
    this.logger = options.logger ?? createLogger();
    this.store = typeof options.store === 'string' ? openStore(options.store, { logger: this.logger, ...options.storeOptions }) : options.store;
    this.runtime = new TaskRuntime(this.store, { ...options.runtime, ...(options.executor && { executor: options.executor }), logger: this.logger });
    this.tasks = new McpTasks(this.runtime, { ...options.tasks, logger: this.logger });
    if (options.webhooks) {
      this.store.routeWebhooks(webhookRoutes(options.webhooks));
      const holder = this.runtime.instanceId ?? `webhooks-${randomBytes(6).toString('hex')}`;
      if (options.webhooks.dispatch !== false) this.dispatcher = new WebhookDispatcher(this.store, options.webhooks, holder, this.logger);
    }
    this.subscriptions = options.subscriptions ?? {};
    this.fastPath = options.fastPath ?? true;
    if (options.console) this.consoleOptions = options.console === true ? {} : options.console;
    const info = options.info ?? { name: 'mcp-tasks', version: '0.1.0' };
    const factory = options.createMcpServer ?? (() => new McpServer(info));
    this.dormantAfterMs = options.createMcpServer ? 0 : 5_000;
    this.createMcpServer = async (context) => {
      const mcp = await factory(context);
      this.tasks.attach(mcp, { protocolVersion: context.protocolVersion });
      return mcp;
    };
  }

  /**
   * Registers a durable task tool (see `McpTasks.registerTool`): `handler(args, ctx)` gets the parsed
   * arguments and a `TaskContext`. Register every tool before `listen`/`serveStdio`, so tasks
   * resumed at start-up find their handler. Throws `InvalidArgumentError` if the name is taken.
   */
  registerTool<Input extends TaskInputSchema>(
    name: string,
    config: TaskToolConfig<Input>,
    handler: (args: TaskToolArgs<Input>, ctx: TaskContext) => Promise<TaskToolResult>,
  ): this {
    this.tasks.registerTool(name, config, handler);
    return this;
  }

  /**
   * Resumes unfinished tasks, then serves MCP over Streamable HTTP, both protocol versions on one endpoint
   * (default `http://127.0.0.1:3000/mcp`). Resolves with the running server (`url`) and how many
   * tasks were resumed. With the `console` option, the operator console is served at `/console/`.
   * Throws if already started, when the port cannot be bound, or (`InvalidArgumentError`) when the
   * console is on and `auth` is set without operator tokens.
   */
  async listen(options: ListenOptions = {}): Promise<RunningHttpServer & { resumed: number }> {
    const operatorConsole = this.consoleOptions && this.operatorConsole(this.consoleOptions, options);
    const resumed = await this.start();
    const http = await startHttpServer({ ...this.endpointOptions(options), ...(operatorConsole && { console: operatorConsole }) });
    this.closers.push(() => http.close());
    return Object.assign(http, { resumed });
  }

  /**
   * Resumes unfinished tasks, then serves one connection on stdin/stdout (stdout then belongs to
   * the protocol: log to stderr) in the protocol version its client speaks, as the SDK's `serveStdio` negotiates
   * it (see `startStdioServer`): a client that opens with `initialize` gets 2025-11-25, one whose
   * requests carry the 2026-07-28 `_meta` envelope (`server/discover` first, or any request) gets
   * 2026-07-28 with the `io.modelcontextprotocol/tasks` extension (each request read with its own
   * `_meta`), `subscriptions/listen` for task ids included. Both versions share this server's store
   * and runtime.
   *
   * Resolves once the connection is being served, with how many tasks were resumed and `closed`,
   * which resolves when the connection ends (the client closed stdin, or `close()`); the server is
   * not closed then — call `close()` to release leases and close the store. `options.transport`
   * serves another stream instead of stdin/stdout. Throws if already started.
   */
  async serveStdio(options: { transport?: Transport } = {}): Promise<{ resumed: number; closed: Promise<void> }> {
    const resumed = await this.start();
    const stdio = startStdioServer({
      ...options,
      logger: this.logger,
      taskSubscriptions: new TaskSubscriptions(this.runtime, this.subscriptions),
      createMcpServer: this.createMcpServer,
    });
    this.closers.push(() => stdio.close());
    return { resumed, closed: stdio.closed };
  }

  /**
   * The MCP endpoint as a request handler to mount in an app you already run (see `McpHttpHandler`):
   * `fetch(request, { authInfo?, parsedBody? })` → `Response` for web-standard hosts (Hono, Bun,
   * Deno, serverless functions), `node(req, res, parsedBody?)` for Node hosts (Express, Fastify,
   * `node:http`). Both protocol versions, sessions, the fast path and every limit, as `listen`
   * serves them. The principal is the host's: `req.auth` / `authInfo` (e.g. the SDK's
   * `requireBearerAuth`), or `options.auth` to verify bearer tokens here.
   *
   * Call `start()` before serving (it resumes unfinished tasks); a request that comes first starts
   * the server itself, and if starting fails it is answered HTTP 503 (-32010, the store unavailable)
   * or 500 (-32603), and the next request tries again. `close()` closes the handler's sessions too.
   * Several handlers (or a handler beside `listen`) may serve one task server; create each once and
   * reuse it (each holds its own 2025-11-25 sessions and a sweep timer until `close()`). Throws
   * `InvalidArgumentError` for invalid `sessions` limits.
   */
  httpHandler(options: HttpHandlerOptions = {}): McpHttpHandler {
    const handler = createMcpHttpHandler({
      ...this.endpointOptions(options),
      ready: () =>
        this.isStarted
          ? undefined
          : this.start().catch((error: unknown) => {
              this.logger.error({ err: error }, 'could not start: request refused');
              throw error;
            }),
    });
    this.closers.push(() => handler.close());
    return handler;
  }

  /**
   * Runs tasks and serves nothing: resumes unfinished tasks (`start`), then claims and runs every
   * task of the store as the instances that run tasks do (leases, heartbeats, takeovers, timers),
   * until `close()`. For split deployments: front instances (`runtime: { runTasks: false }`, e.g. a
   * serverless function mounting `httpHandler`) create tasks and store answers; workers run them.
   * Needs a store shared by several processes (PostgreSQL, Redis, SQLite with `?shared=true`).
   * Resolves with how many tasks were resumed and `closed`, which resolves when the worker is
   * closed (while it is unresolved the worker keeps the process alive). Throws (with what to do)
   * when the store fails at start-up.
   */
  async serveWorker(): Promise<{ resumed: number; closed: Promise<void> }> {
    const resumed = await this.start();
    let stop!: () => void;
    const closed = new Promise<void>((resolve) => (stop = resolve));
    const alive = setInterval(() => undefined, 2 ** 30); // the executor's timers are unref'ed: this one holds the process
    this.closers.push(async () => {
      clearInterval(alive);
      stop();
    });
    return { resumed, closed };
  }

  /**
   * The operator console as a request handler to mount in your own app (see `OperatorConsole`):
   * `fetch(request, { remoteAddress? })` for web-standard hosts, `node(req, res)` for Node hosts,
   * served under `options.basePath` (default `/console`; mount it there, e.g. Express
   * `app.use('/ops', console.node)` with `basePath: '/ops'`). Default options: the server's
   * `console` option. It sees every principal's tasks: without `operatorTokens` it answers only
   * loopback peers naming a loopback host (a `fetch` host must pass `remoteAddress`), so give it
   * tokens anywhere else. `close()` ends its live streams. Throws `InvalidArgumentError` for a bad
   * `basePath`.
   */
  consoleHandler(options: ConsoleOptions = this.consoleOptions ?? {}): OperatorConsole {
    const operatorConsole = this.newConsole(options);
    this.closers.push(async () => operatorConsole.close());
    return operatorConsole;
  }

  /** Stops accepting requests, stops handlers and releases their leases, closes the store. Idempotent. */
  close(): Promise<void> {
    this.closing ??= (async () => {
      for (const close of this.closers.splice(0).reverse()) await close().catch((error) => this.logger.error({ err: error }, 'error while closing'));
      await this.dispatcher?.close();
      await this.runtime.close();
      await this.store.close();
    })();
    return this.closing;
  }

  /** On SIGTERM or SIGINT: `close()`, then exit the process with code 0 (1 if closing failed). */
  closeOnSignals(): this {
    const stop = (signal: string) => {
      this.logger.info({ signal }, 'shutting down');
      this.close().then(
        () => process.exit(0),
        () => process.exit(1),
      );
    };
    process.once('SIGTERM', () => stop('SIGTERM'));
    process.once('SIGINT', () => stop('SIGINT'));
    return this;
  }

  private operatorConsole(options: ConsoleOptions, listen: ListenOptions): OperatorConsole {
    if (listen.auth && !Object.keys(options.operatorTokens ?? {}).length)
      throw new InvalidArgumentError(
        "The operator console sees every principal's tasks: give it operatorTokens (the demo's --operator-tokens FILE) when the server authenticates its clients",
      );
    return this.newConsole(options);
  }

  private newConsole(options: ConsoleOptions): OperatorConsole {
    return new OperatorConsole(
      {
        runtime: this.runtime,
        sensitiveFields: (tool) => this.tasks.toolConfig(tool)?.sensitive,
        toolNames: () => this.tasks.toolNames(),
        logger: this.logger,
      },
      options,
    );
  }

  /**
   * Resumes every unfinished task (see `TaskRuntime.recover`) and starts the runtime's background
   * work (leases, timers, purge). `listen`, `serveStdio`, `serveWorker` and a handler's first
   * request call it; call it yourself before mounting `httpHandler` so a store that cannot be
   * reached stops your app at boot. Resolves with how many tasks were resumed; called again, with
   * the same number. Throws (with what to do) when the store or the executor fails; a later call
   * tries again.
   */
  start(): Promise<number> {
    this.starting ??= this.recover().then(
      (resumed) => {
        this.isStarted = true;
        return resumed;
      },
      (error: unknown) => {
        this.starting = undefined;
        throw error;
      },
    );
    return this.starting;
  }

  /** The endpoint options every HTTP serving of this server shares. */
  private endpointOptions<T extends { sessions?: McpHttpHandlerOptions['sessions'] }>(options: T): T & McpHttpHandlerOptions {
    return {
      ...options,
      sessions: { dormantAfterMs: this.dormantAfterMs, ...options.sessions },
      sessionQuiet: (mcp) => this.tasks.quiet(mcp),
      logger: this.logger,
      taskSubscriptions: new TaskSubscriptions(this.runtime, this.subscriptions),
      createMcpServer: this.createMcpServer,
      onStandaloneStream: (mcp, open) => this.tasks.standaloneStream(mcp, open),
      ...(this.fastPath && { fastPath: this.tasks.fastPath }),
    };
  }

  private async recover(): Promise<number> {
    await this.dispatcher?.start();
    try {
      return await this.runtime.recover();
    } catch (error) {
      if (error instanceof ExecutorUnavailableError)
        throw new Error(`Cannot start: the ${error.executor} executor failed: ${error.message.replace(/\.$/, '')}. What to do: ${error.advice}.`, {
          cause: error,
        });
      throw startupError(this.store.health.name, error);
    }
  }
}

/**
 * What to do about a store that fails at start-up, by the driver's error code (node system codes,
 * PostgreSQL SQLSTATEs, SQLite codes).
 */
const STARTUP_ADVICE: Record<string, string> = {
  ECONNREFUSED: 'nothing listens at that host and port: start the database server, or fix the URL',
  ENOTFOUND: 'the host name is unknown: fix the URL',
  EAI_AGAIN: 'the host name could not be looked up: check DNS, or use an IP address',
  ETIMEDOUT: 'the server does not answer: check the host, the port and any firewall between them',
  ECONNRESET: 'the server closed the connection: check that the URL points at the right kind of server',
  '28P01': 'the password was refused: fix the user or password in the store URL',
  '28000': 'the user may not connect: fix the user in the store URL, or allow it in pg_hba.conf',
  '3D000': 'the database does not exist: create it (createdb) or fix the database name in the URL',
  '42501': 'the user may not create the schema or its tables: grant it CREATE, or create the schema beforehand',
  '53300': 'the server has no connection left: raise max_connections or lower the pool size',
  SQLITE_BUSY: 'another process holds the file locked: stop it, or use ?shared=true when several processes share the file',
  SQLITE_FULL: 'the disk is full: free some space',
};

/**
 * The error `listen`/`serveStdio` throw when the store fails at start-up: it names the store (its URL
 * without password, or its file), the driver's words and code, and what to do. `cause` is the
 * original error.
 */
function startupError(store: string, error: unknown): Error {
  // The first error of the chain with a driver code, else the deepest one.
  const chain = [...errorChain(error)];
  const cause = chain.find((e) => typeof e.code === 'string') ?? chain.at(-1);
  const code = typeof cause?.code === 'string' ? cause.code : undefined;
  const message = (typeof cause?.message === 'string' && cause.message ? cause.message : String(error)).replace(/\.$/, '');
  const timeout = /timeout|timed out/i.test(message) ? 'the server does not answer in time: check the host, the port and any firewall between them' : undefined;
  // ioredis gives up on a command after its reconnection attempts failed, without the socket's error.
  const unreachable = /max retries per request/i.test(message)
    ? 'the server cannot be reached: check that it runs at that host and port (redis-cli -h HOST -p PORT ping)'
    : undefined;
  const advice = (code && STARTUP_ADVICE[code]) ?? timeout ?? unreachable ?? 'check the store URL and that the database server is running and reachable';
  return new Error(`Cannot start: the task store ${store} failed: ${message}${code ? ` (${code})` : ''}. What to do: ${advice}.`, { cause: error });
}

/**
 * Builds a complete durable MCP Tasks server from a store URL (see `TaskServer`):
 *
 * ```ts
 * const server = createTaskServer({ store: 'sqlite:.data/tasks.db' });
 * server.registerTool('report', { description: '…', inputSchema: z.object({}), taskSupport: 'optional' }, async (args, ctx) => …);
 * await server.listen({ port: 3000 });
 * server.closeOnSignals();
 * ```
 */
export function createTaskServer(options: TaskServerOptions): TaskServer {
  return new TaskServer(options);
}
