/**
 * `mcp-tasks/executor/restate`: run task handlers as Restate workflows (see `RestateExecutor`).
 * Needs the optional peer dependency `@restatedev/restate-sdk` (1.14.x) and a restate-server (1.7).
 *
 * @module mcp-tasks/executor/restate
 */
export { createRestateExecutor, RestateExecutor, type RestateExecutorOptions, type RestateRetryPolicy } from './executor.js';
