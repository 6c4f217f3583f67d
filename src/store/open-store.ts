import { InvalidArgumentError } from '../core/errors.js';
import type { StoreBackend } from './backend.js';
import { MemoryBackend } from './memory-backend.js';
import { SqliteBackend } from './sqlite-backend.js';
import { TaskStore, type TaskStoreOptions } from './task-store.js';

/**
 * Opens the backend a store URL names:
 * - `memory:` — in-process, nothing survives the process;
 * - `sqlite:<path>` — embedded SQLite file in WAL mode (`sqlite::memory:` for a private in-memory DB);
 *   query `?synchronous=normal` trades power-loss durability for speed (default `full`).
 * Throws `InvalidArgumentError` for any other URL.
 */
export function openBackend(url: string): StoreBackend {
  if (url === 'memory:' || url === 'memory://') return new MemoryBackend();
  if (url.startsWith('sqlite:')) {
    let rest = url.slice('sqlite:'.length);
    if (rest.startsWith('//')) rest = rest.slice(2);
    const [path, query] = rest.split('?', 2) as [string, string | undefined];
    if (!path) throw new InvalidArgumentError(`sqlite store URL needs a path: ${url}`);
    const synchronous = new URLSearchParams(query ?? '').get('synchronous');
    if (synchronous !== null && synchronous !== 'full' && synchronous !== 'normal')
      throw new InvalidArgumentError(`synchronous must be full or normal: ${url}`);
    return new SqliteBackend(path, { synchronous: synchronous ?? 'full' });
  }
  throw new InvalidArgumentError(`Unsupported store URL '${url}': use memory: or sqlite:<path>`);
}

/** `new TaskStore(openBackend(url), options)`. */
export function openStore(url: string, options?: TaskStoreOptions): TaskStore {
  return new TaskStore(openBackend(url), options);
}
