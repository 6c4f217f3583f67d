#!/usr/bin/env node
/**
 * The invoice demo's entry point (`npm start`): an application built on mcp-tasks' public API.
 * Options as `node --import tsx examples/invoice/main.ts --help` lists them.
 */
import { Command, InvalidArgumentError, Option } from 'commander';
import { createLogger, loadTokenFile, LOG_LEVELS } from '../../src/index.js';
import { startInvoiceServer } from './server.js';

const program = new Command()
  .name('invoice-demo')
  .description(
    'Serve the durable invoice workflow over MCP 2025-11-25 and 2026-07-28 (Streamable HTTP at http://HOST:PORT/mcp, or stdio); prints the URL on stdout (HTTP only)',
  )
  .option('--host <host>', 'interface to bind', '127.0.0.1')
  .option('--port <port>', 'TCP port (0 = any free port)', parsePort, 3000)
  .option('--store <url>', 'task store: sqlite:<path>, memory:, postgres://… or redis://…', 'sqlite:.mcp-tasks/invoice.db')
  .option('--erp <file>', 'ERP master data (JSON); default: the shipped examples/invoice/data/erp.json')
  .option('--ledger <file>', 'payment ledger database; default: ledger.db beside the store')
  .option('--poll-interval <ms>', 'pollInterval advertised to clients, in ms', parsePositiveInt, 1000)
  .option(
    '--stdio',
    'serve one connection on stdin/stdout instead of HTTP, in the protocol version the client speaks (2025-11-25 after initialize, 2026-07-28 for requests with its _meta envelope); exits when stdin closes',
  )
  .option('--stateless', 'keep no client state in the process (instances behind a round-robin proxy)')
  .option('--tokens <file>', 'require bearer tokens: JSON file mapping each token to its principal')
  .option('--console', 'serve the operator console at http://HOST:PORT/console/ (loopback peers only, unless --operator-tokens)')
  .option('--operator-tokens <file>', 'console sign-in (implies --console): JSON file mapping each operator token to the operator name; required with --tokens')
  .option('--fallback-tools', 'add get_task_status/get_task_result/answer_task_input/cancel_task for hosts without MCP Tasks')
  .option('--sync-wait-ms <ms>', 'how long a call without task support waits before handing off its task', parsePositiveInt, 30000)
  .option('--max-live-tasks <n>', 'most working/input_required tasks per principal', parsePositiveInt)
  .option('--session-idle-ms <ms>', 'close a 2025-11-25 session after this long with nothing open (0 = never)', parseCount, 1_800_000)
  .option('--max-sessions <n>', 'most 2025-11-25 sessions in all (least recently used idle ones are closed first)', parsePositiveInt, 10_000)
  .option(
    '--max-sessions-per-principal <n>',
    'most 2025-11-25 sessions of one authenticated principal (--tokens); anonymous clients fall under --max-sessions only',
    parsePositiveInt,
    1_000,
  )
  .option('--max-requests <n>', 'most requests served at once; beyond it HTTP 503 + Retry-After (0 = no limit)', parseCount, 512)
  .option(
    '--payment-retries <n>',
    "automatic retries of a payment on transient errors (payment system busy or unreachable; waits of 0.5 s doubling) before a person is asked what to do (default: the engine's, 6)",
    parseCount,
  )
  .option(
    '--approval-deadline-ms <ms>',
    'escalate an unanswered approval to operators after this long (the task keeps waiting; 0 = never; default: $INVOICE_APPROVAL_DEADLINE_MS, else 48 h)',
    parseCount,
  )
  .option(
    '--webhook-url <url>',
    'send every task event (input needed, ended, stalled, overdue) to this URL, signed (Standard Webhooks); default: $INVOICE_WEBHOOK_URL',
  )
  .option('--webhook-secret <whsec>', 'the signing secret of --webhook-url (whsec_…); default: $INVOICE_WEBHOOK_SECRET')
  .option('--instance-id <id>', 'this instance in task leases (several instances sharing a store)')
  .addOption(
    new Option('--executor <name>', 'what executes the tasks: this process (embedded), DBOS workflows, or Restate workflows')
      .choices(['embedded', 'dbos', 'restate'])
      .default('embedded'),
  )
  .option('--dbos-database <url>', 'DBOS system database (PostgreSQL URL); default: the store URL when it is postgres://')
  .option('--restate-ingress <url>', "Restate's ingress URL", 'http://127.0.0.1:8080')
  .option('--restate-admin <url>', "Restate's admin URL", 'http://127.0.0.1:9070')
  .option('--restate-endpoint-port <port>', 'port this process serves the Restate service endpoint on (registered with the admin URL)', parsePort, 9080)
  .option('--lease-ms <ms>', 'lease length: how soon other instances take over after this one dies', parsePositiveInt, 5000)
  .addOption(new Option('--log-level <level>', 'lowest log level written to stderr (default: $MCP_TASKS_LOG_LEVEL, else info)').choices([...LOG_LEVELS]))
  .addOption(
    new Option('--log-format <format>', 'log lines as JSON, or human-readable (default: pretty when stderr is a terminal, else json)').choices([
      'json',
      'pretty',
    ]),
  )
  .action(async (opts) => {
    if (opts.operatorTokens) opts.console = true; // operator tokens are only for the console
    if (opts.console && opts.tokens && !opts.operatorTokens)
      throw new InvalidArgumentError(
        "--console with --tokens needs --operator-tokens FILE: the console shows every principal's tasks, so operators sign in with tokens of their own",
      );
    const server = await startInvoiceServer({
      host: opts.host,
      port: opts.port,
      store: opts.store,
      erp: opts.erp,
      ledger: opts.ledger,
      stdio: opts.stdio,
      policy: { pollIntervalMs: opts.pollInterval },
      instanceId: opts.instanceId,
      leaseMs: opts.leaseMs,
      executor: opts.executor,
      ...(opts.dbosDatabase && { dbos: { systemDatabaseUrl: opts.dbosDatabase } }),
      restate: { ingressUrl: opts.restateIngress, adminUrl: opts.restateAdmin, endpointPort: opts.restateEndpointPort },
      paymentRetries: opts.paymentRetries,
      approvalDeadlineMs: opts.approvalDeadlineMs,
      ...(opts.webhookUrl !== undefined && { webhook: { url: opts.webhookUrl, secret: opts.webhookSecret ?? process.env.INVOICE_WEBHOOK_SECRET ?? '' } }),
      stateless: opts.stateless,
      ...(opts.tokens && { tokens: loadTokenFile(opts.tokens) }),
      console: opts.console,
      ...(opts.operatorTokens && { operatorTokens: loadTokenFile(opts.operatorTokens) }),
      fallbackTools: opts.fallbackTools,
      syncWaitMs: opts.syncWaitMs,
      maxLiveTasks: opts.maxLiveTasks,
      sessions: { idleTimeoutMs: opts.sessionIdleMs, max: opts.maxSessions, maxPerPrincipal: opts.maxSessionsPerPrincipal },
      maxConcurrentRequests: opts.maxRequests,
      secretKey: process.env.MCP_TASKS_SECRET_KEY,
      logger: createLogger({
        ...(opts.logLevel && { level: opts.logLevel }),
        pretty: (opts.logFormat ?? (process.stderr.isTTY ? 'pretty' : 'json')) === 'pretty',
      }),
    });
    if (server.url) process.stdout.write(`${server.url}\n`);
    const stop = () => {
      void server.close().finally(() => process.exit(0));
    };
    process.once('SIGINT', stop);
    process.once('SIGTERM', stop);
    // stdio: the client closing stdin ends the session (MCP stdio "Shutdown"): release leases and exit.
    void server.closed?.then(stop);
  });

function parsePort(value: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 0 || n > 65535) throw new InvalidArgumentError('must be a port number (0-65535)');
  return n;
}

function parseCount(value: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 0) throw new InvalidArgumentError('must be a non-negative integer');
  return n;
}

function parsePositiveInt(value: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n <= 0) throw new InvalidArgumentError('must be a positive integer');
  return n;
}

program.parseAsync(process.argv).catch((error: unknown) => {
  process.stderr.write(`invoice-demo: ${error instanceof Error ? error.message : String(error)}\n`);
  process.exit(1);
});
