/**
 * A service process for the Restate executor's crash tests: a SQLite store, the test tools
 * (`registerTestTools`), a `RestateExecutor` serving its endpoint on `RESTATE_ENDPOINT_PORT`, and a
 * small JSON control API on a free port whose URL it prints on stdout once recovered:
 * `POST /submit {tool, arguments}`, `POST /answer {taskId, key, response}`, `POST /cancel {taskId}`,
 * `GET /task?id=`. Environment: `STORE_URL` (or `STORE_PATH`, a SQLite file), `EFFECTS_PATH`, `RESTATE_INGRESS`, `RESTATE_ADMIN`,
 * `RESTATE_ENDPOINT_PORT`.
 */
import { createServer } from 'node:http';
import { createLogger } from '../../src/core/log.js';
import { openStore } from '../../src/store/open-store.js';
import { createRestateExecutor } from '../../src/executors/restate/index.js';
import { MiniRuntime, registerTestTools } from './restate-host.js';

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
  reconcileIntervalMs: 1000,
});
const runtime = new MiniRuntime(store, executor, log);
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
          return runtime.submit(input.tool, input.arguments);
        case 'POST /answer':
          return { taken: await runtime.answer(input.taskId, input.key, input.response) };
        case 'POST /cancel':
          return runtime.cancel(input.taskId);
        case 'GET /task':
          return runtime.get(url.searchParams.get('id')!);
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
