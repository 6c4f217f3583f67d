/**
 * mcp-tasks: durable MCP Tasks for TypeScript MCP servers and clients.
 *
 * Layers, each importable on its own: `core` (task record, statuses, transitions, ids, TTL policy,
 * errors), `store` (TaskStore domain layer over memory / SQLite backends), `runtime` (durable task
 * execution: steps, timers, input, cancellation, recovery), `wire` (MCP 2025-11-25 Tasks on the SDK
 * v2 McpServer), `server` (Streamable HTTP serving), `client` (journal + ext-tasks session).
 */
export * from './core/index.js';
export * from './store/index.js';
export * from './runtime/index.js';
export * from './wire/index.js';
export { startHttpServer, type HttpServerOptions, type RunningHttpServer } from './server/http.js';
export { createTaskServer, TaskServer, type TaskServerOptions, type ListenOptions } from './server/task-server.js';
export { staticTokenVerifier, loadTokenFile } from './server/auth.js';
export { connectTaskClient, type TaskClient, type ConnectOptions, type ElicitationQuestion, type AnswerQuestion } from './client/connect.js';
export { ClientJournal, type JournalEntry } from './client/journal.js';
