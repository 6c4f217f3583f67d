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
 * - `postgres://…` / `postgresql://…` — PostgreSQL for several instances; `?schema=name` picks the
 *   schema (default `mcp_tasks`; the parameter is not passed on to the driver);
 * - `redis://…` / `rediss://…` — Redis for several instances; `?prefix=name` picks the key prefix
 *   (default `mcp-tasks`).
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
    return new SqliteBackend(path, { synchronous: synchronous ?? 'full', exclusive: search.get('shared') !== 'true', groupCommit: groupCommit !== 'off' });
  }
  if (url.startsWith('postgres://') || url.startsWith('postgresql://')) {
    const parsed = new URL(url);
    const schema = parsed.searchParams.get('schema') ?? undefined;
    parsed.searchParams.delete('schema');
    return new PostgresBackend({ connectionString: parsed.toString(), schema });
  }
  if (url.startsWith('redis://') || url.startsWith('rediss://')) {
    const parsed = new URL(url);
    const prefix = parsed.searchParams.get('prefix') ?? undefined;
    parsed.searchParams.delete('prefix');
    return new RedisBackend({ url: parsed.toString(), prefix });
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
