import { createServer, type Server as HttpServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { localhostHostValidation } from '@modelcontextprotocol/node';
import type { OperatorConsole } from './console/console.js';
import { createMcpHttpHandler, type McpHttpHandlerOptions } from './mcp-http-handler.js';

/** Options of `startHttpServer`: the endpoint's (`McpHttpHandlerOptions`), where it listens, and the console. */
export interface HttpServerOptions extends McpHttpHandlerOptions {
  /** Interface to bind. Default 127.0.0.1. On a loopback host, Host headers are checked (DNS-rebinding protection). */
  host?: string;
  /** TCP port; 0 picks a free one. Default 3000. */
  port?: number;
  /** Path of the MCP endpoint. Default `/mcp`. */
  path?: string;
  /**
   * The operator console (see `OperatorConsole`), served under its `basePath` (default `/console/`;
   * `GET /` redirects there). It has its own operator credential: the MCP endpoint's `auth` does
   * not apply to it.
   */
  console?: OperatorConsole;
}

/** A running server. `url` is the MCP endpoint, e.g. `http://127.0.0.1:3000/mcp`. */
export interface RunningHttpServer {
  url: string;
  http: HttpServer;
  /**
   * What the server holds now: open 2025-11-25 sessions (`dormant`: of which dormant, see
   * `SessionLimits.dormantAfterMs`), requests being served (as `maxConcurrentRequests` counts them).
   */
  stats(): { sessions: number; dormant: number; requests: number };
  /** Closes every session and stops listening. */
  close(): Promise<void>;
}

/**
 * Serves the MCP endpoint (`createMcpHttpHandler`: both protocol versions, sessions, the fast path,
 * limits, 503 on a store outage) on a `node:http` server of its own at `path`, with Host-header
 * checks on a loopback `host` (DNS-rebinding protection), and the operator console under its
 * `basePath` (default `/console/`) when given (`GET /` redirects there). Other paths get 404. To serve the endpoint from
 * an app you already run (Express, Hono, Fastify, a serverless host), mount the handler instead
 * (see `McpHttpHandler`, `TaskServer.httpHandler`).
 */
export async function startHttpServer(options: HttpServerOptions): Promise<RunningHttpServer> {
  const host = options.host ?? '127.0.0.1';
  const path = options.path ?? '/mcp';
  const loopback = host === '127.0.0.1' || host === 'localhost' || host === '::1';
  const checkHost = loopback ? localhostHostValidation() : undefined;
  const endpoint = createMcpHttpHandler(options);
  const http = createServer((req, res) => {
    const pathname = new URL(req.url ?? '/', 'http://localhost').pathname;
    const operatorConsole = options.console;
    if (operatorConsole && (pathname === '/' || pathname === operatorConsole.basePath || pathname.startsWith(`${operatorConsole.basePath}/`))) {
      if (checkHost && !checkHost(req, res)) return;
      if (pathname === '/' && operatorConsole.basePath !== '') return void res.writeHead(303, { location: `${operatorConsole.basePath}/` }).end();
      return void operatorConsole.node(req, res);
    }
    if (pathname !== path) return void res.writeHead(404, { 'content-type': 'application/json' }).end(JSON.stringify({ error: 'not found' }));
    if (checkHost && !checkHost(req, res)) return;
    void endpoint.node(req, res);
  });
  await new Promise<void>((resolve, reject) => {
    http.once('error', reject);
    http.listen(options.port ?? 3000, host, () => resolve());
  });
  const address = http.address() as AddressInfo;
  const shownHost = address.family === 'IPv6' ? `[${address.address}]` : address.address;
  return {
    url: `http://${shownHost}:${address.port}${path}`,
    http,
    stats: () => endpoint.stats(),
    close: async () => {
      options.console?.close();
      await endpoint.close();
      http.closeAllConnections();
      await new Promise<void>((resolve) => http.close(() => resolve()));
    },
  };
}
