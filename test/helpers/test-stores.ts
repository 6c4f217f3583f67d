import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after } from 'node:test';
import { Redis } from 'ioredis';
import { dropSchemas, PG_URL, REDIS_URL, withParam } from './services.js';

/**
 * The four stores a test file runs against, each call of `url()` a fresh, empty one: memory, a
 * SQLite file in a temp dir, a PostgreSQL schema and a Redis key prefix named after `tag` (lowercase
 * letters, digits, `_`) and a random run id, so files running side by side never share data. Call it
 * at a test file's top level: an `after` hook removes the temp dir, drops the schemas and deletes the
 * keys. `schema(name?)` and `prefix()` give further names of this run for a file's own stores.
 */
export function testStores(tag: string): {
  stores: { name: 'memory' | 'sqlite' | 'postgres' | 'redis'; url: () => string }[];
  dir: string;
  schema(name?: string): string;
  prefix(): string;
} {
  const dir = mkdtempSync(join(tmpdir(), `mcp-tasks-${tag}-`));
  const run = randomBytes(3).toString('hex');
  const schemas: string[] = [];
  after(async () => {
    rmSync(dir, { recursive: true, force: true });
    await dropSchemas(...schemas);
    const redis = new Redis(REDIS_URL);
    const keys = await redis.keys(`mcpt-${tag}-${run}-*`);
    if (keys.length > 0) await redis.del(...keys);
    await redis.quit();
  });
  let counter = 0;
  const schema = (name = String(++counter)) => {
    const created = `mcpt_${tag}_${run}_${name}`;
    schemas.push(created);
    return created;
  };
  const prefix = () => `mcpt-${tag}-${run}-${++counter}`;
  return {
    dir,
    schema,
    prefix,
    stores: [
      { name: 'memory', url: () => 'memory:' },
      { name: 'sqlite', url: () => `sqlite:${join(dir, `${tag}-${++counter}.db`)}` },
      { name: 'postgres', url: () => withParam(PG_URL, 'schema', schema()) },
      { name: 'redis', url: () => withParam(REDIS_URL, 'prefix', prefix()) },
    ],
  };
}
