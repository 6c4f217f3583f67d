import { McpServer, type AuthInfo } from '@modelcontextprotocol/server';
import { StdioServerTransport } from '@modelcontextprotocol/server/stdio';
import type * as z from 'zod';
import { createLogger, type Logger } from '../core/log.js';
import type { TaskContext } from '../runtime/context.js';
import { TaskRuntime, type TaskRuntimeOptions, type TaskToolResult } from '../runtime/runtime.js';
import { openStore } from '../store/open-store.js';
import type { TaskStore, TaskStoreOptions } from '../store/task-store.js';
import { McpTasks, type Era, type McpTasksOptions, type TaskToolConfig } from '../wire/mcp-tasks.js';
import { TaskSubscriptions } from '../wire/rev2026/subscriptions.js';
import { startHttpServer, type HttpServerOptions, type RunningHttpServer } from './http.js';

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
  runtime?: Omit<TaskRuntimeOptions, 'logger'>;
  /** Wire options: `list`, `fallbackTools`, `syncWaitMs` (ms), `maxArgumentBytes`, `throttlePolling`, `onError`. */
  tasks?: Omit<McpTasksOptions, 'logger'>;
  /** One logger for every layer. Default: `createLogger()` (JSON on stderr, info). */
  logger?: Logger;
  /** 2026-07-28 `subscriptions/listen` streams: `keepAliveMs` between keep-alive comments (default 15000). */
  subscriptions?: { keepAliveMs?: number };
  /** Server identity for the default `McpServer` factory. Default `{ name: 'mcp-tasks', version: '0.1.0' }`. */
  info?: { name: string; version: string };
  /**
   * Builds the `McpServer` your ordinary tools, resources and prompts live on — one per 2025-11-25
   * session (or stdio connection), one per 2026-07-28 request; the task tools are attached to it
   * for the era given. Default: `new McpServer(info)`.
   */
  createMcpServer?: (context: { era: Era; authInfo?: AuthInfo }) => McpServer | Promise<McpServer>;
}

/** What `listen` takes: `startHttpServer`'s options less what the task server provides itself. */
export type ListenOptions = Omit<HttpServerOptions, 'createMcpServer' | 'taskSubscriptions' | 'logger'>;

/**
 * A complete durable MCP Tasks server: one store, one runtime, task tools in both protocol eras
 * (2025-11-25 Tasks; 2026-07-28 with the `io.modelcontextprotocol/tasks` extension and its
 * `subscriptions/listen`), served over Streamable HTTP (`listen`) or stdio (`serveStdio`, 2025-11-25).
 *
 * Lifecycle: register task tools (`registerTool`), then `listen`/`serveStdio`, which first resumes
 * every unfinished task from its journal (`TaskRuntime.recover`) and then accepts requests.
 * `close` stops accepting (closing sessions and connections), stops running handlers and releases
 * their leases (so another instance takes over at once), then closes the store.
 * `closeOnSignals()` does that on SIGTERM/SIGINT and exits.
 */
export class TaskServer {
  readonly store: TaskStore;
  readonly runtime: TaskRuntime;
  readonly tasks: McpTasks;
  readonly logger: Logger;
  private readonly createMcpServer: (context: { era: Era; authInfo?: AuthInfo }) => Promise<McpServer>;
  private readonly subscriptions: { keepAliveMs?: number };
  private readonly closers: (() => Promise<void>)[] = [];
  private started = false;
  private closing?: Promise<void>;

  constructor(options: TaskServerOptions) {
    this.logger = options.logger ?? createLogger();
    this.store = typeof options.store === 'string' ? openStore(options.store, { logger: this.logger, ...options.storeOptions }) : options.store;
    this.runtime = new TaskRuntime(this.store, { ...options.runtime, logger: this.logger });
    this.tasks = new McpTasks(this.runtime, { ...options.tasks, logger: this.logger });
    this.subscriptions = options.subscriptions ?? {};
    const info = options.info ?? { name: 'mcp-tasks', version: '0.1.0' };
    const factory = options.createMcpServer ?? (() => new McpServer(info));
    this.createMcpServer = async (context) => {
      const mcp = await factory(context);
      this.tasks.attach(mcp, { era: context.era });
      return mcp;
    };
  }

  /**
   * Registers a durable task tool (see `McpTasks.registerTool`): `handler(args, ctx)` gets the parsed
   * arguments and a `TaskContext`. Register every tool before `listen`/`serveStdio`, so tasks
   * resumed at start-up find their handler. Throws `InvalidArgumentError` if the name is taken.
   */
  registerTool<Input extends z.ZodObject>(
    name: string,
    config: TaskToolConfig<Input>,
    handler: (args: z.output<Input>, ctx: TaskContext) => Promise<TaskToolResult>,
  ): this {
    this.tasks.registerTool(name, config, handler);
    return this;
  }

  /**
   * Resumes unfinished tasks, then serves MCP over Streamable HTTP, both eras on one endpoint
   * (default `http://127.0.0.1:3000/mcp`). Resolves with the running server (`url`) and how many
   * tasks were resumed. Throws if already started, or when the port cannot be bound.
   */
  async listen(options: ListenOptions = {}): Promise<RunningHttpServer & { resumed: number }> {
    const resumed = await this.start();
    const http = await startHttpServer({
      ...options,
      logger: this.logger,
      taskSubscriptions: new TaskSubscriptions(this.runtime, this.subscriptions),
      createMcpServer: this.createMcpServer,
    });
    this.closers.push(() => http.close());
    return Object.assign(http, { resumed });
  }

  /**
   * Resumes unfinished tasks, then serves one 2025-11-25 connection on stdin/stdout (stdout then
   * belongs to the protocol: log to stderr). Resolves with how many tasks were resumed.
   */
  async serveStdio(): Promise<{ resumed: number }> {
    const resumed = await this.start();
    const mcp = await this.createMcpServer({ era: 'legacy' });
    await mcp.connect(new StdioServerTransport());
    this.closers.push(() => mcp.close());
    return { resumed };
  }

  /** Stops accepting requests, stops handlers and releases their leases, closes the store. Idempotent. */
  close(): Promise<void> {
    this.closing ??= (async () => {
      for (const close of this.closers.splice(0).reverse()) await close().catch((error) => this.logger.error({ err: error }, 'error while closing'));
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

  private async start(): Promise<number> {
    if (this.started) throw new Error('This TaskServer is already serving');
    this.started = true;
    return this.runtime.recover();
  }
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
