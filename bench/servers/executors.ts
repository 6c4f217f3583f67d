/**
 * Benchmark server for scenario 10 (what each executor costs): the tools of scenario 9 (`trivial`,
 * `stepped`: four steps, `timed`: a 1 ms durable timer then a step) on one executor.
 *
 * Usage: node --import tsx bench/servers/executors.ts <embedded|dbos|restate> <store-url> [engine options as JSON].
 * DBOS options: `{ "systemDatabaseUrl", "systemDatabaseSchemaName" }`; Restate: `{ "ingressUrl", "adminUrl", "port" }`.
 * Prints the MCP URL on stdout.
 */
import { registerStepTools } from './step-tools.js';
import { createLogger, createTaskServer, type TaskExecutor } from '../../src/index.js';

const [name, storeUrl, json] = process.argv.slice(2) as [string, string, string | undefined];
const engine = (json ? JSON.parse(json) : {}) as Record<string, string>;

async function executor(): Promise<TaskExecutor | undefined> {
  if (name === 'dbos') {
    const { createDbosExecutor } = await import('../../src/executors/dbos/index.js');
    return createDbosExecutor({ systemDatabaseUrl: engine.systemDatabaseUrl!, systemDatabaseSchemaName: engine.systemDatabaseSchemaName! });
  }
  if (name === 'restate') {
    const { createRestateExecutor } = await import('../../src/executors/restate/index.js');
    return createRestateExecutor({ ingressUrl: engine.ingressUrl!, adminUrl: engine.adminUrl!, endpoint: { port: Number(engine.port) } });
  }
  return undefined;
}

const chosen = await executor();
const server = createTaskServer({
  store: storeUrl,
  storeOptions: { policy: { pollIntervalMs: 10 } },
  runtime: { onError: () => undefined, purgeIntervalMs: 0 },
  ...(chosen && { executor: chosen }),
  tasks: { throttlePolling: false, onError: () => undefined },
  logger: createLogger({ level: 'warn' }),
  info: { name: `bench-${name}`, version: '0' },
});
registerStepTools(server);
const http = await server.listen({ port: 0, onError: () => undefined });
process.stdout.write(`${http.url}\n`);
process.on('SIGTERM', () => void server.close().finally(() => process.exit(0)));
