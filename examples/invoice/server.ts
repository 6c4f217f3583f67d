import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { McpServer } from '@modelcontextprotocol/server';
import {
  createLogger,
  createTaskServer,
  staticTokenVerifier,
  type Logger,
  type ProtocolVersion,
  type SessionLimits,
  type LifetimePolicy,
  type TaskExecutor,
  InvalidArgumentError,
} from '../../src/index.js';
import { Erp } from './erp.js';
import { Ledger } from './ledger.js';
import { registerInvoiceTasks, registerLedgerTools } from './tools.js';

const here = dirname(fileURLToPath(import.meta.url));
/** The shipped ERP file, beside this module. */
export const DEFAULT_ERP_PATH = resolve(here, 'data/erp.json');

/** Options of the invoice demo server. */
export interface InvoiceServerOptions {
  /** Store URL. Default `sqlite:.mcp-tasks/invoice.db`. */
  store?: string;
  /** Ledger database file; default `ledger.db` beside a SQLite store, in memory for `memory:`, `.mcp-tasks/ledger.db` otherwise. */
  ledger?: string;
  /** ERP JSON file. Default: the shipped `examples/invoice/data/erp.json`. */
  erp?: string;
  host?: string;
  port?: number;
  /**
   * Serve one connection on stdin/stdout instead of HTTP, in the protocol version the client speaks: 2025-11-25
   * after `initialize`, 2026-07-28 for requests carrying its `_meta` envelope (see `TaskServer.serveStdio`).
   */
  stdio?: boolean;
  /** Keep no client state in the process (see `HttpServerOptions.stateless`), for instances behind a round-robin proxy. */
  stateless?: boolean;
  policy?: Partial<LifetimePolicy>;
  /** This instance's id in task leases (see `TaskRuntime`). */
  instanceId?: string;
  /** Lease length in ms: how soon other instances take over after this one dies. Default 5000. */
  leaseMs?: number;
  /**
   * What executes the invoice tasks (see `TaskServerOptions.executor`): `embedded` (default), `dbos`
   * (DBOS workflows in `dbos.systemDatabaseUrl`, default: the store URL when it is PostgreSQL) or
   * `restate` (Restate workflows through `restate.ingressUrl`/`adminUrl`; this process serves the
   * Restate endpoint on `restate.endpointPort`, default 9080). The tools' code is the same on each.
   */
  executor?: 'embedded' | 'dbos' | 'restate';
  dbos?: { systemDatabaseUrl?: string };
  restate?: { ingressUrl?: string; adminUrl?: string; endpointPort?: number };
  /** Bearer tokens → principals (see `staticTokenVerifier`); enables `tasks/list` (2025-11-25). Default: no authentication. */
  tokens?: Record<string, string>;
  /** Register the fallback tools for hosts without MCP Tasks. */
  fallbackTools?: boolean;
  /** How long an ordinary (non-task) call waits before handing its task off, in ms. */
  syncWaitMs?: number;
  /** Most live tasks per principal. */
  maxLiveTasks?: number;
  /** Serve the operator console at `/console/` (HTTP only; see `TaskServerOptions.console`). */
  console?: boolean;
  /** Operator tokens → operator names for the console; required with `tokens`. Without them the console answers loopback peers only. */
  operatorTokens?: Record<string, string>;
  /** Key for encrypting approval answers at rest. */
  secretKey?: string;
  /** Lifetime of 2025-11-25 sessions (see `SessionLimits`): idle timeout in ms, caps. */
  sessions?: SessionLimits;
  /** Most requests served at once before answering HTTP 503 + Retry-After (see `HttpServerOptions.maxConcurrentRequests`). */
  maxConcurrentRequests?: number;
  /**
   * Transient-error retries of each payment attempt before the task asks a person what to do
   * (default: the engine's 6 — waits of 0.5 s doubling, about 31 s in all; see `InvoiceDeps`).
   */
  paymentRetries?: number;
  /**
   * How long the approval question waits before it is escalated to operators, in ms (see
   * `InvoiceDeps.approvalDeadlineMs`). Default: `INVOICE_APPROVAL_DEADLINE_MS` from the environment,
   * else 48 h; 0: no deadline.
   */
  approvalDeadlineMs?: number;
  /**
   * One webhook endpoint every task event is sent to (see docs/webhooks.md): `url` (https, or http
   * on loopback/private networks, which the demo allows) and `secret` (`whsec_…`, Standard Webhooks).
   * Default: `INVOICE_WEBHOOK_URL` and `INVOICE_WEBHOOK_SECRET` from the environment, else none.
   */
  webhook?: { url: string; secret: string };
  /** Structured logger (default: `createLogger()`, JSON on stderr; stdout belongs to the protocol under stdio). */
  logger?: Logger;
}

export interface RunningInvoiceServer {
  /** MCP endpoint URL (HTTP only). */
  url?: string;
  /** The operator console's URL, when it is served. */
  consoleUrl?: string;
  /** How many unfinished tasks were resumed at start-up. */
  resumed: number;
  /** stdio only: resolves when the connection has ended (the client closed stdin). */
  closed?: Promise<void>;
  close(): Promise<void>;
}

/**
 * The DBOS or Restate executor the options ask for. Each is loaded only when chosen, so the
 * engines' SDKs (optional peers) are needed only by deployments that use them. Throws
 * `InvalidArgumentError` when an engine's address is missing.
 */
async function engineExecutor(options: InvoiceServerOptions, storeUrl: string): Promise<TaskExecutor> {
  if (options.executor === 'dbos') {
    const systemDatabaseUrl = options.dbos?.systemDatabaseUrl ?? (/^postgres(ql)?:/.test(storeUrl) ? storeUrl : undefined);
    if (!systemDatabaseUrl)
      throw new InvalidArgumentError(
        '--executor dbos keeps its workflows in PostgreSQL: use a postgres:// --store (DBOS then uses the same database), or give DBOS one with --dbos-database postgres://…',
      );
    const { createDbosExecutor } = await import('../../src/executors/dbos/index.js');
    // DBOS's tables beside the store's schema (`?schema=invoices` → `invoices_dbos`): each deployment its own.
    const storeSchema = options.dbos?.systemDatabaseUrl ? null : new URL(storeUrl).searchParams.get('schema');
    return createDbosExecutor({
      ...(storeSchema && { systemDatabaseSchemaName: `${storeSchema}_dbos` }),
      systemDatabaseUrl,
      ...(options.instanceId && { executorId: options.instanceId }),
      ...(options.leaseMs && { leaseMs: options.leaseMs }),
    });
  }
  const ingressUrl = options.restate?.ingressUrl ?? 'http://127.0.0.1:8080';
  const adminUrl = options.restate?.adminUrl ?? 'http://127.0.0.1:9070';
  const { createRestateExecutor } = await import('../../src/executors/restate/index.js');
  return createRestateExecutor({ ingressUrl, adminUrl, endpoint: { port: options.restate?.endpointPort ?? 9080 } });
}

/**
 * Starts the invoice workflow server: opens the store, resumes every unfinished task from its
 * journal, and serves MCP in both eras (2025-11-25 Tasks; 2026-07-28 with the
 * `io.modelcontextprotocol/tasks` extension) over Streamable HTTP at `http://HOST:PORT/mcp`, or
 * over stdio (one connection, in the era its client speaks).
 */
export async function startInvoiceServer(options: InvoiceServerOptions = {}): Promise<RunningInvoiceServer> {
  const logger = options.logger ?? createLogger();
  const storeUrl = options.store ?? 'sqlite:.mcp-tasks/invoice.db';
  const erp = Erp.load(options.erp ?? DEFAULT_ERP_PATH);
  const ledgerPath = options.ledger ?? defaultLedgerPath(storeUrl);
  const executor = options.executor && options.executor !== 'embedded' ? await engineExecutor(options, storeUrl) : undefined;
  const ledger = new Ledger(ledgerPath);
  const webhook =
    options.webhook ??
    (process.env.INVOICE_WEBHOOK_URL ? { url: process.env.INVOICE_WEBHOOK_URL, secret: process.env.INVOICE_WEBHOOK_SECRET ?? '' } : undefined);
  const server = createTaskServer({
    store: storeUrl,
    ...(webhook && { webhooks: { endpoints: [{ id: 'invoice-demo', url: webhook.url, secret: webhook.secret }], allowPrivateAddresses: true } }),
    ...(executor && { executor }),
    storeOptions: { policy: options.policy, maxLiveTasksPerOwner: options.maxLiveTasks, secretKey: options.secretKey },
    runtime: { instanceId: options.instanceId, leaseMs: options.leaseMs },
    tasks: { list: options.tokens !== undefined, fallbackTools: options.fallbackTools, syncWaitMs: options.syncWaitMs },
    logger,
    ...(options.console && { console: { ...(options.operatorTokens && { operatorTokens: options.operatorTokens }) } }),
    createMcpServer: ({ protocolVersion }) => {
      const mcp = new McpServer({ name: 'mcp-tasks-invoice', version: '0.1.0' }, { instructions: INSTRUCTIONS[protocolVersion] });
      registerLedgerTools(mcp, ledger);
      return mcp;
    },
  });
  const fromEnv = process.env.INVOICE_APPROVAL_DEADLINE_MS;
  const approvalDeadlineMs = options.approvalDeadlineMs ?? (fromEnv ? Number(fromEnv) : undefined);
  if (approvalDeadlineMs !== undefined && !(Number.isFinite(approvalDeadlineMs) && approvalDeadlineMs >= 0))
    throw new Error(`The approval deadline must be a non-negative number of ms, got ${String(fromEnv ?? approvalDeadlineMs)}`);
  registerInvoiceTasks(server.tasks, { erp, ledger, runtime: server.runtime, paymentRetries: options.paymentRetries, approvalDeadlineMs, logger });
  const close = () => server.close().finally(() => ledger.close());

  // A start that fails (the store, an engine) closes what was opened: no ledger left half-open.
  const failed = async (error: unknown): Promise<never> => {
    await close().catch(() => undefined);
    throw error;
  };
  if (options.stdio) {
    const { resumed, closed } = await server.serveStdio().catch(failed);
    logger.info(
      { transport: 'stdio', store: storeUrl, ledger: ledgerPath, resumed },
      `mcp-tasks invoice demo on stdio (2025-11-25 and 2026-07-28); resumed ${resumed} task(s)`,
    );
    return { resumed, closed, close };
  }
  const http = await server
    .listen({
      host: options.host,
      port: options.port,
      stateless: options.stateless,
      ...(options.sessions && { sessions: options.sessions }),
      ...(options.maxConcurrentRequests !== undefined && { maxConcurrentRequests: options.maxConcurrentRequests }),
      ...(options.tokens && { auth: { verifier: staticTokenVerifier(options.tokens) } }),
    })
    .catch(failed);
  const consoleUrl = options.console ? new URL('/console/', http.url).href : undefined;
  logger.info(
    { url: http.url, ...(consoleUrl && { console: consoleUrl }), store: storeUrl, ledger: ledgerPath, resumed: http.resumed },
    `mcp-tasks invoice demo listening on ${http.url}${consoleUrl ? `, operator console at ${consoleUrl}` : ''}; resumed ${http.resumed} task(s)`,
  );
  return { url: http.url, ...(consoleUrl && { consoleUrl }), resumed: http.resumed, close };
}

/** What the server tells a client's model, true for the protocol version it speaks. */
const INSTRUCTIONS: Record<ProtocolVersion, string> = {
  '2025-11-25':
    'Invoice workflow. Call process_invoice as a task (params.task) with an invoice; poll tasks/get; answer the approval question ' +
    '(elicitation/create, delivered on tasks/result); fetch the result with tasks/result. list_payments shows the ledger; ' +
    'export_payments_report must be called as a task.',
  '2026-07-28':
    'Invoice workflow. Call process_invoice with an invoice (declare the io.modelcontextprotocol/tasks extension): it answers with a ' +
    'task; poll tasks/get, which lists the approval question under inputRequests and carries the result once the task is completed; ' +
    'answer with tasks/update (inputResponses). list_payments shows the ledger; export_payments_report always runs as a task.',
};

/** `ledger.db` beside a SQLite store, in memory for a memory store, `.mcp-tasks/ledger.db` for shared stores. */
function defaultLedgerPath(storeUrl: string): string {
  if (storeUrl.startsWith('memory:') || storeUrl.includes(':memory:')) return ':memory:';
  if (storeUrl.startsWith('sqlite:')) return join(dirname(storeUrl.slice('sqlite:'.length).replace(/^\/\//, '').split('?')[0]!), 'ledger.db');
  return join('.mcp-tasks', 'ledger.db');
}
