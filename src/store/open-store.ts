import { InvalidArgumentError } from '../core/errors.js';
import type { StoreBackend } from './backend.js';
import { MemoryBackend } from './memory-backend.js';
import { PostgresBackend } from './postgres-backend.js';
import { RedisBackend } from './redis-backend.js';
import { SqliteBackend } from './sqlite-backend.js';
import { TaskStore, type TaskStoreOptions } from './task-store.js';

/**
 * Opens the backend a store URL names:
 * - `memory:` — in-process, nothing survives the process;
 * - `sqlite:<path>` — embedded SQLite file in WAL mode (`sqlite::memory:` for a private in-memory
 *   DB); `?synchronous=normal` trades power-loss durability for speed (default `full`);
 *   `?shared=true` when several processes share the file (they then use leases to take over);
 *   `?groupCommit=off` commits each write on its own (default `on`: concurrent writes share a
 *   commit, see `GroupCommit`; either way a write resolves only once it is committed);
 *   `?busyTimeoutMs=N` how long a write waits for another process's lock (default 5000);
 * - `postgres://…` / `postgresql://…` — PostgreSQL for several instances; `?schema=name` picks the
 *   schema (default `mcp_tasks`); `?connectTimeoutMs=N` (default 3000) and `?queryTimeoutMs=N`
 *   (default 5000) bound each connection attempt and query, `?max=N` is the connection pool's size
 *   (default 10) (these parameters are not passed on to the driver);
 * - `redis://…` / `rediss://…` — Redis for several instances; `?prefix=name` picks the key prefix
 *   (default `mcp-tasks`); `?connectTimeoutMs=N` (default 3000) and `?commandTimeoutMs=N` (default
 *   5000) bound each connection attempt and command.
 *
 * A timeout or `max` parameter that is not a positive integer throws `InvalidArgumentError`.
 *
 * Synchronous: no I/O happens here beyond opening (and migrating) a SQLite file; the shared
 * backends connect, and create or migrate their schema, on first use. Each backend loads its driver
 * (`better-sqlite3`, `pg`, `ioredis`) only when it is built here, so an application installs and
 * loads only the driver of the store it opens; `pg` and `ioredis` are optional peer dependencies of
 * mcp-tasks.
 *
 * Throws `InvalidArgumentError` for an unsupported URL or bad sqlite parameters, `TypeError` when a
 * postgres/redis URL does not parse, and `Error` ("… needs 'pg' …: npm install pg") when the driver
 * the URL needs is not installed.
 */
export function openBackend(url: string): StoreBackend {
  if (url === 'memory:' || url === 'memory://') return new MemoryBackend();
  if (url.startsWith('sqlite:')) {
    let rest = url.slice('sqlite:'.length);
    if (rest.startsWith('//')) rest = rest.slice(2);
    const [path, query] = rest.split('?', 2) as [string, string | undefined];
    if (!path) throw new InvalidArgumentError(`sqlite store URL needs a path: ${url}`);
    const search = new URLSearchParams(query ?? '');
    const synchronous = search.get('synchronous');
    if (synchronous !== null && synchronous !== 'full' && synchronous !== 'normal')
      throw new InvalidArgumentError(`synchronous must be full or normal: ${url}`);
    const groupCommit = search.get('groupCommit');
    if (groupCommit !== null && groupCommit !== 'on' && groupCommit !== 'off') throw new InvalidArgumentError(`groupCommit must be on or off: ${url}`);
    return new SqliteBackend(path, {
      synchronous: synchronous ?? 'full',
      exclusive: search.get('shared') !== 'true',
      groupCommit: groupCommit !== 'off',
      busyTimeoutMs: msParam(search, 'busyTimeoutMs', url),
    });
  }
  if (url.startsWith('postgres://') || url.startsWith('postgresql://')) {
    const parsed = new URL(url);
    const schema = parsed.searchParams.get('schema') ?? undefined;
    const connectTimeoutMs = msParam(parsed.searchParams, 'connectTimeoutMs', url);
    const queryTimeoutMs = msParam(parsed.searchParams, 'queryTimeoutMs', url);
    const max = msParam(parsed.searchParams, 'max', url);
    for (const name of ['schema', 'connectTimeoutMs', 'queryTimeoutMs', 'max']) parsed.searchParams.delete(name);
    return new PostgresBackend({ connectionString: parsed.toString(), schema, connectTimeoutMs, queryTimeoutMs, ...(max !== undefined && { max }) });
  }
  if (url.startsWith('redis://') || url.startsWith('rediss://')) {
    const parsed = new URL(url);
    const prefix = parsed.searchParams.get('prefix') ?? undefined;
    const connectTimeoutMs = msParam(parsed.searchParams, 'connectTimeoutMs', url);
    const commandTimeoutMs = msParam(parsed.searchParams, 'commandTimeoutMs', url);
    for (const name of ['prefix', 'connectTimeoutMs', 'commandTimeoutMs']) parsed.searchParams.delete(name);
    return new RedisBackend({ url: parsed.toString(), prefix, connectTimeoutMs, commandTimeoutMs });
  }
  throw new InvalidArgumentError(`Unsupported store URL '${url}': use memory:, sqlite:<path>, postgres://… or redis://…`);
}

/**
 * `new TaskStore(openBackend(url), options)`: the task store a URL names (see `openBackend` for the
 * URLs, drivers and errors). Synchronous (see `openBackend`).
 */
export function openStore(url: string, options?: TaskStoreOptions): TaskStore {
  return new TaskStore(openBackend(url), options);
}

/**
 * A positive integer (ms, or a count such as `max`) from URL parameter `name`, or undefined when
 * absent; throws `InvalidArgumentError` otherwise.
 */
function msParam(search: URLSearchParams, name: string, url: string): number | undefined {
  const value = search.get(name);
  if (value === null) return undefined;
  const ms = Number(value);
  if (!Number.isInteger(ms) || ms <= 0)
    throw new InvalidArgumentError(
      `${name} must be a positive integer${name === 'max' ? '' : ' number of milliseconds'}: ${url.replace(/\/\/[^@/]*@/, '//***@')}`,
    );
  return ms;
}
