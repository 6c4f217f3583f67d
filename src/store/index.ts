/**
 * The store layer's public API: `TaskStore` (the one domain layer: lifecycle, ownership, TTL,
 * compare-and-swap, leases, cursors), `openStore` / `openBackend` (a store from a URL), the
 * `StoreBackend` contract for writing a backend, and the dependency-free `MemoryBackend`.
 *
 * The driver-backed backends are not re-exported here, so importing this barrel (or the package
 * root) loads no database driver: `SqliteBackend` is `mcp-tasks/store/sqlite`, `PostgresBackend`
 * `mcp-tasks/store/postgres`, `RedisBackend` `mcp-tasks/store/redis` (src/store/*-backend.ts).
 */
export type { ListPosition, ListQuery, OperatorListPage, OperatorListQuery, StatusCounts, StoreBackend } from './backend.js';
export { MemoryBackend } from './memory-backend.js';
export { TaskStore, type CreateTaskInput, type OperatorListOptions, type TaskPage, type TaskStoreOptions } from './task-store.js';
export { openBackend, openStore } from './open-store.js';
