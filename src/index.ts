/**
 * mcp-tasks: durable MCP Tasks for TypeScript MCP servers on the official MCP SDK v2, in both
 * protocol versions: 2025-11-25 (Tasks in core: `params.task`, `tasks/get|result|cancel|list`) and
 * 2026-07-28 (the `io.modelcontextprotocol/tasks` extension: the server decides per request,
 * `tasks/get|update|cancel`, `subscriptions/listen`).
 *
 * This entry point (`mcp-tasks`) is the server side's public API, named one by one so internals
 * cannot leak (test/exports.test.ts holds the list):
 * - `createTaskServer` / `TaskServer`: the composition root (store + runtime + wire + HTTP or stdio);
 * - the layers underneath, usable on their own: `openStore` / `TaskStore` (store), `TaskRuntime` /
 *   `TaskContext` (durable execution), `McpTasks` (MCP wiring of an SDK `McpServer`),
 *   `createMcpHttpHandler` (the endpoint as a `fetch` / Node handler to mount anywhere),
 *   `startHttpServer` and `TaskSubscriptions` (Streamable HTTP serving of both versions);
 * - the core vocabulary: task records and statuses, `Access` / `ENGINE_ACCESS`, errors, logger.
 *
 * Other entry points: `mcp-tasks/client` (`connectTaskClient`, `KnownTasks`) and one per
 * driver-backed backend: `mcp-tasks/store/sqlite`, `mcp-tasks/store/postgres`,
 * `mcp-tasks/store/redis`. Importing this one loads no database driver: `openStore` loads the driver
 * of the URL it opens (`better-sqlite3`, or the optional peer dependencies `pg` / `ioredis`).
 *
 * @module mcp-tasks
 */

// core: the task record, statuses, ownership, errors, policy, logging.
export type { Access, Principal } from './core/access.js';
export type { Actor } from './core/journal-keys.js';
export { ENGINE_ACCESS } from './core/access.js';
export {
  ConflictError,
  IdempotencyConflictError,
  IllegalTransitionError,
  InvalidAnswerError,
  InvalidArgumentError,
  InvalidCursorError,
  LeaseLostError,
  LimitExceededError,
  STORE_UNAVAILABLE,
  StoreUnavailableError,
  TaskError,
  TaskNotFoundError,
  TaskRpcError,
  type LeaseLossReason,
  type TaskErrorKind,
} from './core/errors.js';
export { isTransientError, NonRetryableError, TransientError } from './core/transient.js';
export { IDEMPOTENCY_META_KEY, idempotencyKeyOf, MAX_IDEMPOTENCY_KEY_LENGTH, type TaskIdempotency } from './core/idempotency.js';
export type { Json, JsonObject } from './core/json.js';
export { createLogger, LOG_LEVELS, silentLogger, type Logger, type LoggerOptions, type LogLevel } from './core/log.js';
export { DEFAULT_LIFETIME_POLICY, type LifetimePolicy } from './core/policy.js';
export type { SecretBox } from './core/secrets.js';
export { isTaskStatus, isTerminal, TASK_STATUSES, TERMINAL_STATUSES, type TaskStatus } from './core/status.js';
export type {
  InputAnswer,
  InputKind,
  InputRequest,
  InputResponse,
  Fence,
  Lease,
  RootsResponse,
  SamplingResponse,
  TaskOutcome,
  TaskRecord,
  TaskRequest,
  TraceContext,
} from './core/task.js';

// store: TaskStore over a backend; backends with drivers have their own entry points.
export {
  MemoryBackend,
  openBackend,
  openStore,
  TaskStore,
  type CreateTaskInput,
  type ListPosition,
  type ListQuery,
  type OperatorListOptions,
  type OperatorListPage,
  type OperatorListQuery,
  type StatusCounts,
  type StoreBackend,
  type TaskPage,
  type TaskStoreOptions,
} from './store/index.js';

// runtime: durable execution of task handlers.
export { StepFailedError, type AskOptions, type StepOptions, type TaskContext, type UrlElicitation, type UrlElicitOptions } from './runtime/context.js';
export type { DeadlineSpec, OnTimeout, QuestionDeadlineOptions } from './core/question-deadline.js';
export type { QuestionDeadline, StallMark } from './core/task.js';
export type { ActivityKind, ResumedEntry, RetryFrom } from './core/journal-keys.js';
export type { ActivityMonitor, StallWatch } from './runtime/stalls.js';
export type { TaskEvent, TaskEventTask } from './runtime/runtime.js';
export { TaskRuntime, type RegisteredHandler, type SubmitInput, type TaskHandler, type TaskRuntimeOptions, type TaskToolResult } from './runtime/runtime.js';
export { EmbeddedExecutor, type EmbeddedExecutorOptions } from './runtime/embedded-executor.js';
export { ExecutorUnavailableError, type DurableRun, type ExecutorHost, type TaskExecutor } from './runtime/executor.js';
export { EngineContext, runOnEngine, answerTopic, completionTopic, settleStepName, type EngineContextOptions } from './runtime/engine-context.js';
export { LeaseLostSignal, ShutdownSignal, StoreUnavailableSignal, TaskCancelledSignal } from './runtime/signals.js';

// wire: MCP Tasks on an SDK v2 McpServer (names taken one by one from the wire layer's barrel).
export {
  McpTasks,
  principalOf,
  TaskSubscriptions,
  type McpTasksOptions,
  type ProtocolVersion,
  type SubscriptionSink,
  type TaskCreationPolicy,
  type TaskInputSchema,
  type TaskSupport,
  type TaskToolArgs,
  type TaskToolConfig,
} from './wire/index.js';

// server: Streamable HTTP serving, token auth, the composition root.
export { loadTokenFile, staticTokenVerifier } from './server/auth.js';
export type { BodyLimits } from './server/body-guard.js';
export { startHttpServer, type HttpServerOptions, type RunningHttpServer } from './server/http.js';
export { createMcpHttpHandler, type McpFetchOptions, type McpHttpHandler, type McpHttpHandlerOptions } from './server/mcp-http-handler.js';
export type { SessionLimits } from './server/sessions-2025.js';
export { startStdioServer, type RunningStdioServer, type StdioServerOptions } from './server/stdio.js';
export { createTaskServer, TaskServer, type HttpHandlerOptions, type ListenOptions, type TaskServerOptions } from './server/task-server.js';
export { OperatorConsole, type ConsoleDeps, type ConsoleOptions, type ConsoleRequestContext } from './server/console/console.js';
export {
  WEBHOOK_EVENT_TYPES,
  type DeliverySettlement,
  type DeliveryState,
  type OutboxBackend,
  type OutboxDelivery,
  type WebhookEventType,
  type WebhookPayload,
} from './store/outbox.js';
export type { WebhookEndpoint, WebhookRetryPolicy, WebhooksOptions } from './server/webhooks/dispatcher.js';
export { WebhookUrlRefusedError } from './server/webhooks/ssrf.js';
