import { createRequire } from 'node:module';

const require = createRequire(import.meta.url);

/**
 * Loads the CommonJS database driver `name` (`pg`, `ioredis`, `better-sqlite3`) when the backend
 * that needs it is constructed, never when `mcp-tasks` is imported: an application loads (and
 * installs) only the driver of the store it opens. The driver is resolved from this package's
 * location, so the application's `node_modules` (where npm puts peer dependencies) provides it;
 * Node's module cache makes later calls free.
 *
 * `needs` says what needs it (e.g. `"A postgres:// store (PostgresBackend)"`; never a connection
 * string, which may hold credentials) and `relation` how mcp-tasks depends on it. When the package
 * is not installed, throws `Error`: `"<needs> needs '<name>' (<relation>), which is not installed:
 * npm install <name>"` (the original error as `cause`); any other load failure (a broken install, a
 * native addon built for another Node version, …) is rethrown unchanged.
 */
export function loadDriver<T>(name: string, needs: string, relation: string): T {
  try {
    require.resolve(name);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'MODULE_NOT_FOUND') throw error;
    throw new Error(`${needs} needs '${name}' (${relation}), which is not installed: npm install ${name}`, { cause: error });
  }
  return require(name) as T;
}
