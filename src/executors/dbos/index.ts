/**
 * The DBOS executor (`mcp-tasks/executor/dbos`): tasks run as DBOS Transact workflows on PostgreSQL.
 * Needs the optional peer dependency `@dbos-inc/dbos-sdk` (5.3 or later 5.x).
 *
 * ```ts
 * import { createDbosExecutor } from 'mcp-tasks/executor/dbos';
 * const executor = createDbosExecutor({ systemDatabaseUrl: process.env.DATABASE_URL! });
 * const server = createTaskServer({ ..., executor });
 * ```
 *
 * @module mcp-tasks/executor/dbos
 */
import { DbosExecutor, type DbosExecutorOptions } from './executor.js';

export { DbosExecutor, DBOS_TASK_WORKFLOW, isDbosError, type DbosExecutorOptions } from './executor.js';

/**
 * Creates the process's DBOS executor (see `DbosExecutor`; DBOS is a process-wide singleton, so one
 * per process). DBOS launches at the runtime's `recover()`. Throws `InvalidArgumentError` for a
 * missing `systemDatabaseUrl`, a `leaseMs` under 100 ms, a `permitMs` over `leaseMs / 2`, or when
 * another `DbosExecutor` of this process is still open.
 */
export function createDbosExecutor(options: DbosExecutorOptions): DbosExecutor {
  return new DbosExecutor(options);
}
