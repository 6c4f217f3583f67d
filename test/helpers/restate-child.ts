/**
 * A service process for the Restate executor's crash tests: a real `TaskRuntime` over a store
 * (`STORE_URL`, or a SQLite file `STORE_PATH`) whose executor is a `RestateExecutor` serving its
 * endpoint on `RESTATE_ENDPOINT_PORT`, the test tools (`registerTestTools`, effects logged to
 * `EFFECTS_PATH`), and a small JSON control API on a free port whose URL it prints on stdout once
 * recovered: `POST /submit {tool, arguments}`, `POST /answer {taskId, key, response}`,
 * `POST /cancel {taskId}`, `GET /task?id=` — the runtime's `submit`, `provideInputs`, `cancel`, `get`.
 * Environment also: `RESTATE_INGRESS`, `RESTATE_ADMIN`, `LOG_LEVEL`.
 */
import { createServer } from 'node:http';
import { ENGINE_ACCESS } from '../../src/core/access.js';
import { createLogger } from '../../src/core/log.js';
import { createRestateExecutor } from '../../src/executors/restate/index.js';
import { TaskRuntime } from '../../src/runtime/runtime.js';
import { openStore } from '../../src/store/open-store.js';
import { registerTestTools } from './restate-tools.js';

const env = (name: string): string => {
  const value = process.env[name];
  if (!value) throw new Error(`${name} is not set`);
  return value;
};

const log = createLogger({ level: (process.env.LOG_LEVEL as 'info') ?? 'info' });
const store = openStore(process.env.STORE_URL ?? `sqlite:${env('STORE_PATH')}`);
const executor = createRestateExecutor({
  ingressUrl: env('RESTATE_INGRESS'),
  adminUrl: env('RESTATE_ADMIN'),
  endpoint: { port: Number(env('RESTATE_ENDPOINT_PORT')) },
  reconcileIntervalMs: Number(process.env.RECONCILE_MS ?? 1000),
});
const runtime = new TaskRuntime(store, { executor, logger: log });
registerTestTools(runtime, env('EFFECTS_PATH'));
const resumed = await runtime.recover();
log.info({ resumed }, `resumed ${resumed} task(s)`);

const server = createServer((req, res) => {
  let body = '';
  req.on('data', (chunk) => (body += String(chunk)));
  req.on('end', () => {
    void (async () => {
      const input = body ? JSON.parse(body) : {};
      const url = new URL(req.url!, 'http://x');
      switch (`${req.method} ${url.pathname}`) {
        case 'POST /submit':
          return runtime.submit({ owner: null, tool: input.tool, arguments: input.arguments, ttl: 3_600_000, errorResultStatus: 'failed' });
        case 'POST /answer':
          return { taken: await runtime.provideInputs(input.taskId, { [input.key]: input.response }, ENGINE_ACCESS) };
        case 'POST /cancel':
          return runtime.cancel(input.taskId, ENGINE_ACCESS);
        case 'GET /task':
          return runtime.get(url.searchParams.get('id')!, ENGINE_ACCESS);
      }
      throw new Error(`no route ${req.method} ${url.pathname}`);
    })().then(
      (value) => res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(value ?? null)),
      (error: unknown) => res.writeHead(500).end(String(error)),
    );
  });
});
server.listen(0, '127.0.0.1', () => {
  const { port } = server.address() as { port: number };
  process.stdout.write(`http://127.0.0.1:${port}\n`);
});
