/**
 * The invoice workflow (examples/invoice: `process_invoice`, its ERP and ledger) served by a
 * `RestateExecutor` in a child process, for the Restate invoice crash test — a stand-in for
 * `examples/invoice/main.ts --executor restate` until the runtime takes an executor. Control API as
 * in restate-child.ts (`/submit`, `/answer`, `/cancel`, `/task`). Environment: `STORE_PATH`,
 * `LEDGER_PATH`, `ERP_PATH`, `RESTATE_INGRESS`, `RESTATE_ADMIN`, `RESTATE_ENDPOINT_PORT`.
 */
import { createServer } from 'node:http';
import { ENGINE_ACCESS } from '../../src/core/access.js';
import { createLogger } from '../../src/core/log.js';
import { createRestateExecutor } from '../../src/executors/restate/index.js';
import { openStore } from '../../src/store/open-store.js';
import { Erp } from '../../examples/invoice/erp.js';
import { Ledger } from '../../examples/invoice/ledger.js';
import { registerInvoiceTasks } from '../../examples/invoice/tools.js';
import { MiniRuntime } from './restate-host.js';

const env = (name: string): string => {
  const value = process.env[name];
  if (!value) throw new Error(`${name} is not set`);
  return value;
};

const log = createLogger({ level: (process.env.LOG_LEVEL as 'info') ?? 'info' });
const store = openStore(`sqlite:${env('STORE_PATH')}`);
const executor = createRestateExecutor({
  ingressUrl: env('RESTATE_INGRESS'),
  adminUrl: env('RESTATE_ADMIN'),
  endpoint: { port: Number(env('RESTATE_ENDPOINT_PORT')) },
  reconcileIntervalMs: 2000,
});
const runtime = new MiniRuntime(store, executor, log);
const tasks = {
  registerTool: (name: string, config: { inputSchema: { parse(value: unknown): unknown } }, handler: (args: any, ctx: any) => Promise<unknown>) =>
    runtime.register(name, (args, ctx) => handler(config.inputSchema.parse(args), ctx)),
};
registerInvoiceTasks(tasks as never, {
  erp: Erp.load(env('ERP_PATH')),
  ledger: new Ledger(env('LEDGER_PATH')),
  runtime: { get: (taskId: string) => store.get(taskId, ENGINE_ACCESS) } as never,
  logger: log,
});
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
