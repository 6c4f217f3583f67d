import pg from 'pg';
import { Redis } from 'ioredis';

/**
 * Removes what a bench run left in the shared servers: each PostgreSQL schema of `schemas` (with
 * its tables) on `pgUrl`, and every Redis key starting with one of `prefixes` on `redisUrl`.
 */
export async function dropBenchData(pgUrl: string, schemas: readonly string[], redisUrl: string, prefixes: readonly string[]): Promise<void> {
  const client = new pg.Client({ connectionString: pgUrl });
  await client.connect();
  for (const schema of schemas) await client.query(`DROP SCHEMA IF EXISTS ${schema} CASCADE`);
  await client.end();
  const redis = new Redis(redisUrl);
  for (const prefix of prefixes) {
    const keys = await redis.keys(`${prefix}*`);
    for (let i = 0; i < keys.length; i += 1000) await redis.del(...keys.slice(i, i + 1000));
  }
  redis.disconnect();
}
