/** PostgreSQL and Redis of this machine (CI starts them if they are down); tests using them run, never skip. */
export const PG_URL = process.env.MCP_TASKS_TEST_POSTGRES ?? 'postgres://postgres@127.0.0.1:5432/test';
export const REDIS_URL = process.env.MCP_TASKS_TEST_REDIS ?? 'redis://127.0.0.1:6379/0';

/** `url` with one more query parameter. */
export function withParam(url: string, name: string, value: string): string {
  return `${url}${url.includes('?') ? '&' : '?'}${name}=${value}`;
}

/** Drops test schemas from the PostgreSQL at `PG_URL`. */
export async function dropSchemas(...schemas: string[]): Promise<void> {
  const { default: pg } = await import('pg');
  const client = new pg.Client({ connectionString: PG_URL });
  await client.connect();
  for (const schema of schemas) await client.query(`DROP SCHEMA IF EXISTS ${schema} CASCADE`);
  await client.end();
}
