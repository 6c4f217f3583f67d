/** PostgreSQL and Redis of this machine (CI starts them if they are down); tests using them run, never skip. */
export const PG_URL = process.env.MCP_TASKS_TEST_POSTGRES ?? 'postgres://postgres@127.0.0.1:5432/test';
export const REDIS_URL = process.env.MCP_TASKS_TEST_REDIS ?? 'redis://127.0.0.1:6379/0';

/** `url` with one more query parameter. */
export function withParam(url: string, name: string, value: string): string {
  return `${url}${url.includes('?') ? '&' : '?'}${name}=${value}`;
}
