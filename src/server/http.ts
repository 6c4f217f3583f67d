import { randomUUID } from 'node:crypto';
import { createServer, type IncomingMessage, type Server as HttpServer, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { localhostHostValidation, NodeStreamableHTTPServerTransport, toNodeHandler } from '@modelcontextprotocol/node';
import {
  bearerAuthChallengeResponse,
  classifyInboundRequest,
  createMcpHandler,
  isInitializeRequest,
  isJSONRPCResponse,
  isJsonContentType,
  verifyBearerToken,
  type AuthInfo,
  type BearerAuthOptions,
  type JSONRPCRequest,
  type McpServer,
} from '@modelcontextprotocol/server';
import { checkBody, type BodyLimits } from './body-guard.js';
import { createLogger, logRequestError, type Logger } from '../core/log.js';
import { Counts } from '../core/counts.js';
import { protocolVersionOf, type ProtocolVersion } from '../wire/protocol-version.js';
import { advertiseServedVersions } from '../wire/sdk-seam.js';
import { principalOf } from '../wire/principal.js';
import { hardenServerRequestIds, Sessions2025, type SessionLimits } from './sessions-2025.js';
import { isTaskSubscription, type TaskSubscriptions } from '../wire/index.js';
import type { OperatorConsole } from './console/console.js';
import type { FastPath } from '../wire/fast-path.js';
import { outageHeaders, STORE_UNAVAILABLE, storeUnavailableError, toErrorObject } from '../wire/errors.js';

/** Options of `startHttpServer`. */
export interface HttpServerOptions {
  /** Interface to bind. Default 127.0.0.1. On a loopback host, Host headers are checked (DNS-rebinding protection). */
  host?: string;
  /** TCP port; 0 picks a free one. Default 3000. */
  port?: number;
  /** Path of the MCP endpoint. Default `/mcp`. */
  path?: string;
  /**
   * Builds an `McpServer` (with tasks attached for `protocolVersion`): one per 2025-11-25 session,
   * one per 2026-07-28 request.
   */
  createMcpServer: (context: { protocolVersion: ProtocolVersion; authInfo?: AuthInfo }) => McpServer | Promise<McpServer>;
  /**
   * The protocol versions served (see `ProtocolVersion`). Default both. 2025-11-25 is always
   * served (its sessions are this endpoint's fallback); leave `2026-07-28` out to refuse it.
   */
  protocolVersions?: readonly ProtocolVersion[];
  /**
   * Keep no per-client state in this process: 2025-11-25 requests are served by the SDK's stateless
   * legacy fallback (one `McpServer` per request, no `Mcp-Session-Id`, no GET stream) instead of
   * sessions, so several instances behind a round-robin proxy can serve one client. 2026-07-28 is
   * stateless anyway. In 2025-11-25 a task's questions then need `tasks/result` on one instance.
   */
  stateless?: boolean;
  /**
   * Require `Authorization: Bearer <token>` on every request, verified with the SDK's
   * `verifyBearerToken` (failures get the SDK's 401/403 challenge). The verified `AuthInfo` binds
   * tasks to their principal (see `principalOf`). Without it every requestor is anonymous.
   */
  auth?: BearerAuthOptions;
  /**
   * The fast path (see `FastPath`): `tasks/get` in both versions, 2025-11-25 `tasks/result` of an
   * ended task, 2025-11-25 task-augmented and 2026-07-28 task-creating `tools/call` of task tools
   * answered without the SDK's per-request machinery, after every check this server and the SDK's
   * transport perform. Without it every request goes through the SDK.
   */
  fastPath?: FastPath;
  /** Answers 2026-07-28 `subscriptions/listen` requests for `taskIds` (the SDK's listen router does not know them). */
  taskSubscriptions?: TaskSubscriptions;
  /**
   * The operator console (see `OperatorConsole`), served under `/console/` (and `GET /` redirects
   * there). It has its own operator credential: the MCP endpoint's `auth` does not apply to it.
   */
  console?: OperatorConsole;
  /**
   * Lifetime of 2025-11-25 sessions (see `SessionLimits`): `idleTimeoutMs` (default 30 min),
   * `maxPerPrincipal` (default 1,000), `max` (default 10,000).
   */
  sessions?: SessionLimits;
  /**
   * Told when a 2025-11-25 session's standalone GET stream opens (`true`) and closes (`false`; also
   * once when the session starts), so questions are pushed there only while it exists (see
   * `Session2025.standaloneStream`).
   */
  onStandaloneStream?: (mcp: McpServer, open: boolean) => void;
  /**
   * Most JSON-RPC requests served at once; GET streams, `subscriptions/listen` and `tasks/result`
   * (which wait by design), responses (answers to the server's questions) and notifications are not
   * counted and never refused. A request beyond it is answered at once with HTTP 503,
   * `Retry-After: 1` and a JSON-RPC error (-32000, "Server busy"), before any work: the client
   * retries later instead of queueing behind work the server cannot keep up with. Refusals are
   * logged at warn level, at most once per 10 s with their count. Default 512; 0 = no limit.
   */
  maxConcurrentRequests?: number;
  /** Largest accepted request body in bytes. Default 4 MiB; larger bodies get HTTP 413. */
  maxBodyBytes?: number;
  /**
   * Limits on a POST's parsed JSON body, checked before anything recurses over it (see `checkBody`):
   * `maxDepth` nesting in objects/arrays (default 64), `maxBatchLength` messages (default 100),
   * `maxKeys` object members in the whole body (default 100,000). Over a limit: HTTP 400 with
   * -32602 when it is a request's `params`, else -32600.
   */
  bodyLimits?: Partial<BodyLimits>;
  /** Structured logger (see `createLogger`). Default: a new `createLogger()` (JSON on stderr, level from `MCP_TASKS_LOG_LEVEL`, else info). */
  logger?: Logger;
  /**
   * Errors met while serving requests. Default: `logRequestError` — refused client requests at debug
   * level without a stack, server faults at error level with one.
   */
  onError?: (error: unknown) => void;
}

/** A running server. `url` is the MCP endpoint, e.g. `http://127.0.0.1:3000/mcp`. */
export interface RunningHttpServer {
  url: string;
  http: HttpServer;
  /** What the server holds now: open 2025-11-25 sessions, requests being served (as `maxConcurrentRequests` counts them). */
  stats(): { sessions: number; requests: number };
  /** Closes every session and stops listening. */
  close(): Promise<void>;
}

/**
 * Serves MCP over Streamable HTTP in both protocol versions on one endpoint, routed with the SDK's
 * `isLegacyRequest` (the composition the SDK documents for keeping a sessionful 2025 deployment):
 * - 2025-11-25: sessions (`initialize`, `Mcp-Session-Id`, GET stream) on the SDK's
 *   `NodeStreamableHTTPServerTransport`, one `McpServer` per session;
 * - 2026-07-28: the SDK's strict `createMcpHandler` (per-request servers, `server/discover`,
 *   header validation incl. `Mcp-Name` → -32020), except `subscriptions/listen` for `taskIds`,
 *   which `taskSubscriptions` serves.
 * Sessions are only a transport detail: tasks live in the store and are bound to principals, so
 * after a restart a client re-initializes (unknown sessions get HTTP 404, as the transport spec
 * asks) and reads its tasks by id.
 *
 * The task store unavailable (`StoreUnavailableError`: an outage, a timeout, a full disk) is a
 * transient answer, never a 500: HTTP 503 with `Retry-After` (whole seconds, at least 1) and the
 * JSON-RPC error -32010 with `data: { retryable: true, retryAfterMs }` (`STORE_UNAVAILABLE`) —
 * on the fast path, for the SDK's JSON answers (2026-07-28; see `answerOutageWith503`), for an
 * error escaping the handler, and on the operator console (a 503 page). A response already opened
 * as an SSE stream with 200 (the SDK answers every 2025-11-25 request on one, sessions and the
 * stateless fallback alike, and a 2026-07-28 call that sent a notification first) carries the
 * same -32010 error, with `data.retryable`, in the stream. Such requests are logged at debug only:
 * the store logs each outage once, when it starts and when it ends.
 */
export async function startHttpServer(options: HttpServerOptions): Promise<RunningHttpServer> {
  const host = options.host ?? '127.0.0.1';
  const path = options.path ?? '/mcp';
  const maxBodyBytes = options.maxBodyBytes ?? 4 * 1024 * 1024;
  const logger = options.logger ?? createLogger();
  const onError = options.onError ?? ((error: unknown) => logRequestError(logger, error, { component: 'http' }));
  const sessions = new Sessions2025(logger, options.sessions);
  const maxConcurrent = options.maxConcurrentRequests ?? 512;
  let serving = 0;
  const refusals = refusalLog(logger, maxConcurrent);
  const standaloneStreams = new Counts<McpServer>();
  const loopback = host === '127.0.0.1' || host === 'localhost' || host === '::1';
  const checkHost = loopback ? localhostHostValidation() : undefined;
  const stateless = options.stateless === true;
  const fast = options.fastPath;
  const handler2026 =
    options.protocolVersions?.includes('2026-07-28') === false && !stateless
      ? undefined
      : createMcpHandler(
          async (ctx) => {
            const protocolVersion = protocolVersionOf(ctx.era);
            const mcp = await options.createMcpServer({ protocolVersion, ...(ctx.authInfo && { authInfo: ctx.authInfo }) });
            // This endpoint serves 2025-11-25 too (sessions, or the stateless fallback): server/discover says so.
            if (protocolVersion === '2026-07-28') advertiseServedVersions(mcp);
            return mcp;
          },
          {
            legacy: stateless ? 'stateless' : 'reject',
            onerror: onError,
            maxRequestBodySize: maxBodyBytes,
          },
        );
  const serveBySdk =
    handler2026 &&
    toNodeHandler(
      { fetch: async (request, requestOptions) => answerOutageWith503(await handler2026.fetch(request, requestOptions)) },
      { maxRequestBodySize: maxBodyBytes, onerror: onError },
    );
  /** The JSON-RPC id of each request being served, once its body is read (for an answer to an error that escapes `handle`). */
  const requestIds = new WeakMap<IncomingMessage, string | number>();

  const handle = async (req: IncomingMessage, res: ServerResponse) => {
    const url = new URL(req.url ?? '/', 'http://localhost');
    if (options.console && (url.pathname === '/' || url.pathname === '/console' || url.pathname.startsWith('/console/'))) {
      if (checkHost && !checkHost(req, res)) return;
      if (url.pathname === '/') return void res.writeHead(303, { location: '/console/' }).end();
      return options.console.handle(req, res, url);
    }
    if (url.pathname !== path) return reply(res, 404, { error: 'not found' });
    if (checkHost && !checkHost(req, res)) return;
    if (options.auth) {
      try {
        (req as IncomingMessage & { auth?: AuthInfo }).auth = await verifyBearerToken(req.headers.authorization, options.auth);
      } catch (error) {
        const challenge = bearerAuthChallengeResponse(error, options.auth);
        res.writeHead(challenge.status, Object.fromEntries(challenge.headers)).end(await challenge.text());
        return;
      }
    }
    let body: unknown;
    if (req.method === 'POST') {
      const raw = await readBody(req, maxBodyBytes);
      if (raw === 'too-large') return rpcError(res, 413, -32600, `Request body exceeds ${maxBodyBytes} bytes`);
      try {
        body = JSON.parse(raw);
      } catch {
        return rpcError(res, 400, -32700, 'Parse error: request body is not JSON');
      }
      // Shape, depth, batch length (an empty batch too: the SDK transport would accept it with 202) and
      // key count, before the SDK's zod validation or JSON.stringify can overflow the stack.
      const refused = checkBody(body, options.bodyLimits);
      if (refused) return rpcError(res, refused.status, refused.code, refused.message, { id: refused.id });
      const id = (body as { id?: unknown } | null)?.id;
      if (typeof id === 'string' || typeof id === 'number') requestIds.set(req, id);
      if (maxConcurrent > 0 && countsAsWork(body)) {
        if (serving >= maxConcurrent) {
          refusals.note();
          return busy(res, 'Server busy: too many requests at once; retry after 1 s', body);
        }
        if (res.closed || res.destroyed) return; // gone while the body was read
        serving++;
        res.once('close', () => serving--);
      }
    }
    const authInfo = (req as IncomingMessage & { auth?: AuthInfo }).auth;
    const sessionId = req.headers['mcp-session-id'];
    if (typeof sessionId === 'string') {
      // A session answers only the principal that opened it; anyone else is told it does not exist.
      const session = sessions.find(sessionId, principalOf(authInfo));
      if (!session) return rpcError(res, 404, -32001, 'Session not found; start a new session with initialize');
      // The client went away while its credentials were checked: nothing to serve, nothing to count
      // (a closed response's close event does not come again).
      if (res.closed || res.destroyed) return;
      sessions.track(session, res);
      if (req.method === 'GET' && options.onStandaloneStream) trackStandalone(session.mcp, res, options.onStandaloneStream);
      // The checks the SDK's transport makes before it reads a message; whatever fails one of them is its to answer.
      if (fast && req.method === 'POST' && acceptsJsonAndSse(req) && isJsonContentType(req.headers['content-type'] ?? '') && names2025Version(req)) {
        const answer = await fast.answer2025(session.mcp, body, authInfo, requestSignal(res));
        if (answer) return reply(res, answer.status, answer.body, { ...answer.headers, 'mcp-session-id': sessionId }); // JSON: Streamable HTTP allows it for any POST
      }
      return session.transport.handleRequest(req, res, body);
    }
    if (serveBySdk) {
      // The SDK's own classifier (what its isLegacyRequest runs), on the Node request as it is: its
      // `legacy` route is 2025-11-25, `modern` 2026-07-28.
      const route = classifyInboundRequest({
        httpMethod: req.method ?? 'GET',
        ...header(req, 'mcp-protocol-version', 'protocolVersionHeader'),
        ...header(req, 'mcp-method', 'mcpMethodHeader'),
        ...header(req, 'mcp-name', 'mcpNameHeader'),
        ...(body !== undefined && { body }),
      });
      if (stateless || (!initializes(body) && route.kind !== 'legacy')) {
        if (options.taskSubscriptions && isTaskSubscription(body)) return serveSubscription(options.taskSubscriptions, res, body, principalOf(authInfo));
        if (
          fast &&
          route.kind === 'modern' &&
          route.messageKind === 'request' &&
          isJsonContentType(req.headers['content-type'] ?? '') &&
          // SEP-2243: both are required on a 2026-07-28 request (the classifier has checked they match the body).
          req.headers['mcp-protocol-version'] !== undefined &&
          req.headers['mcp-method'] !== undefined
        ) {
          const mcpName = req.headers['mcp-name'];
          const answer = await fast.answer2026(
            body,
            route.classification.revision,
            { ...(typeof mcpName === 'string' && { mcpName }) },
            authInfo,
            requestSignal(res),
          );
          if (answer) return reply(res, answer.status, answer.body, answer.headers);
        }
        return serveBySdk(req, res, body);
      }
    }
    if (req.method !== 'POST' || !initializes(body)) return rpcError(res, 400, -32000, 'Bad Request: no valid session ID; start with initialize');
    const principal = principalOf(authInfo);
    const release = sessions.reserve(principal);
    if (!release) {
      logger.warn({ principal }, 'server busy: initialize refused with HTTP 503, every session is in use');
      return busy(res, 'Server busy: every session is in use; retry after 1 s', body);
    }
    try {
      const mcp = await options.createMcpServer({ protocolVersion: '2025-11-25', ...(authInfo && { authInfo }) });
      options.onStandaloneStream?.(mcp, false);
      const transport: NodeStreamableHTTPServerTransport = new NodeStreamableHTTPServerTransport({
        sessionIdGenerator: () => randomUUID(),
        onsessioninitialized: (id) => {
          release();
          sessions.add(id, { transport, mcp, principal });
        },
      });
      transport.onclose = () => {
        if (transport.sessionId) sessions.delete(transport.sessionId);
      };
      await mcp.connect(transport);
      hardenServerRequestIds(transport, logger);
      await transport.handleRequest(req, res, body);
      // Refused by the transport (a wrong Accept, a bad version …): no session, so nothing may stay behind.
      if (!transport.sessionId) await mcp.close().catch(() => undefined);
    } finally {
      release();
    }
  };

  /**
   * Reports a session's standalone GET stream open once the transport has accepted it (HTTP 200;
   * a refused GET is no stream) and closed when the last one ends.
   */
  const trackStandalone = (mcp: McpServer, res: ServerResponse, report: (mcp: McpServer, open: boolean) => void) => {
    let opened = false;
    const writeHead = res.writeHead.bind(res) as (...args: unknown[]) => ServerResponse;
    res.writeHead = ((status: number, ...rest: unknown[]) => {
      if (status === 200 && !opened) {
        opened = true;
        if (standaloneStreams.add(mcp) === 1) queueMicrotask(() => report(mcp, true)); // after the headers are out
      }
      return writeHead(status, ...rest);
    }) as ServerResponse['writeHead'];
    res.once('close', () => {
      if (!opened) return;
      if (standaloneStreams.remove(mcp) === 0) report(mcp, false);
    });
  };

  const http = createServer((req, res) => {
    handle(req, res).catch((error) => {
      onError(error);
      if (res.headersSent) return void res.end();
      // A store outage is no server fault: 503 with Retry-After, like every other answer to one.
      const outage = storeUnavailableError(error);
      const id = requestIds.get(req) ?? null;
      if (outage) {
        const object = toErrorObject(outage);
        const { status, headers } = outageHeaders(object)!;
        return reply(res, status, { jsonrpc: '2.0', error: object, id }, headers);
      }
      rpcError(res, 500, -32603, 'Internal error', { id });
    });
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
    stats: () => ({ sessions: sessions.size, requests: serving }),
    close: async () => {
      options.console?.close();
      await sessions.closeAll();
      http.closeAllConnections();
      await new Promise<void>((resolve) => http.close(() => resolve()));
    },
  };
}

async function readBody(req: IncomingMessage, limit: number): Promise<string | 'too-large'> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req) {
    size += (chunk as Buffer).length;
    if (size > limit) return 'too-large';
    chunks.push(chunk as Buffer);
  }
  return Buffer.concat(chunks).toString('utf8');
}

/** `{ [key]: value }` of request header `name` when present (repeated headers joined with ", ", as web `Headers.get` does). */
function header<K extends string>(req: IncomingMessage, name: string, key: K): { [P in K]?: string } {
  const value = req.headers[name];
  if (value === undefined) return {};
  return { [key]: Array.isArray(value) ? value.join(', ') : value } as { [P in K]?: string };
}

/** The SDK transport's `Accept` rule for a POST: both `application/json` and `text/event-stream`. */
function acceptsJsonAndSse(req: IncomingMessage): boolean {
  const accept = req.headers.accept;
  return accept !== undefined && accept.includes('application/json') && accept.includes('text/event-stream');
}

/** A 2025-11-25 session request whose `MCP-Protocol-Version` header (optional) names the revision tasks belong to. */
function names2025Version(req: IncomingMessage): boolean {
  const version = req.headers['mcp-protocol-version'];
  return version === undefined || version === '2025-11-25';
}

/** Aborts when the client goes away before the response is sent (ends a throttled poll's wait). */
function requestSignal(res: ServerResponse): AbortSignal {
  const controller = new AbortController();
  res.once('close', () => {
    if (!res.writableFinished) controller.abort();
  });
  return controller.signal;
}

/**
 * The SDK's `isInitializeRequest`, asked only of bodies whose `method` is `initialize`: for any
 * other request its schema check fails, and a failing zod parse builds an error object, on every
 * poll. The same answer either way.
 */
function initializes(body: unknown): boolean {
  return (body as { method?: unknown } | null | undefined)?.method === 'initialize' && isInitializeRequest(body);
}

/**
 * Whether a POST body counts against `maxConcurrentRequests`: a JSON-RPC request (or a batch holding
 * one), except those that stay open by design (`tasks/result` waits for its task,
 * `subscriptions/listen` is a stream). Responses (a client's answer to a question the server asked,
 * perhaps on the very call that holds a slot) and notifications are never refused: refusing them
 * could lose an answer or deadlock a call waiting for it.
 */
function countsAsWork(body: unknown): boolean {
  if (Array.isArray(body)) return body.some(countsAsWork);
  const message = body as { method?: unknown; id?: unknown } | null;
  if (typeof message?.method !== 'string' || message.id === undefined) return false;
  return message.method !== 'tasks/result' && message.method !== 'subscriptions/listen';
}

/**
 * Logs refusals for overload at warn level, at most once per 10 s with how many there were since
 * the last line (a flood of 503s must not become a flood of log lines).
 */
function refusalLog(logger: Logger, limit: number) {
  let count = 0;
  let last = 0;
  return {
    note() {
      count++;
      const now = Date.now();
      if (now - last < 10_000) return;
      logger.warn({ refused: count, maxConcurrentRequests: limit }, 'server busy: requests refused with HTTP 503');
      count = 0;
      last = now;
    },
  };
}

/** HTTP 503 with `Retry-After: 1` and a JSON-RPC error: the server is overloaded and did nothing with the request. */
function busy(res: ServerResponse, message: string, body: unknown): void {
  const id = (body as { id?: unknown } | null)?.id;
  rpcError(res, 503, -32000, message, { id: typeof id === 'string' || typeof id === 'number' ? id : null, headers: { 'retry-after': '1' } });
}

/**
 * A store outage answered by the SDK's 2026-07-28 handler (or its stateless 2025-11-25 fallback) as
 * HTTP 503 with `Retry-After`: the one place where the SDK path's answers to an outage get their
 * status (the fast path sets its own, from the same `outageHeaders`). The SDK answers a handler's
 * JSON-RPC error with HTTP 200; a single JSON response (`application/json`) whose error is -32010
 * (`STORE_UNAVAILABLE`) is re-issued with the same body, 503 and `Retry-After`. Any other response
 * passes unchanged. An SSE response (2025-11-25 sessions and the stateless fallback answer every
 * request on one, a 2026-07-28 call that sent a notification first) has sent its 200 before the
 * answer exists: the -32010 error, with `data.retryable`, then travels in the stream.
 */
async function answerOutageWith503(response: Response): Promise<Response> {
  if (response.status !== 200 || !isJsonContentType(response.headers.get('content-type') ?? '')) return response;
  const text = await response.clone().text();
  if (!text.includes(String(STORE_UNAVAILABLE))) return response; // no JSON parse for every answer
  let outage: ReturnType<typeof outageHeaders>;
  try {
    outage = outageHeaders((JSON.parse(text) as { error?: { code?: unknown; data?: unknown } } | null)?.error);
  } catch {
    return response;
  }
  if (!outage) return response;
  const headers = new Headers(response.headers);
  for (const [name, value] of Object.entries(outage.headers)) headers.set(name, value);
  return new Response(text, { status: outage.status, headers });
}

/**
 * Serves a 2026-07-28 task subscription (see `TaskSubscriptions`) on one Streamable HTTP response:
 * a lone first message that is a response (the -32021 refusal) is the JSON body; otherwise the
 * response is an SSE stream (`event: message` per JSON-RPC message, a `: keep-alive` comment every
 * `keepAliveMs`) that ends after the subscription's response. The response's close (the client
 * left) ends the subscription. A rejection (a store outage before anything was sent) is left to the
 * caller, which answers 503.
 */
async function serveSubscription(subscriptions: TaskSubscriptions, res: ServerResponse, message: JSONRPCRequest, owner: string | null): Promise<void> {
  const left = new AbortController();
  res.once('close', () => left.abort());
  let keepAlive: NodeJS.Timeout | undefined;
  const stop = () => {
    clearInterval(keepAlive);
    if (!res.writableEnded) res.end();
  };
  try {
    await subscriptions.serve(message, owner, {
      signal: left.signal,
      send: (outgoing) => {
        if (res.writableEnded) return;
        const final = isJSONRPCResponse(outgoing);
        if (!res.headersSent) {
          if (final) return reply(res, 200, outgoing);
          res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache', connection: 'keep-alive' });
          keepAlive = setInterval(() => res.write(': keep-alive\n\n'), subscriptions.keepAliveMs);
        }
        res.write(`event: message\ndata: ${JSON.stringify(outgoing)}\n\n`);
        if (final) stop();
      },
    });
  } finally {
    if (res.headersSent) stop();
  }
}

/** Writes `body` as the JSON response, with `status` and any further `headers`. Every JSON answer of this file goes through here. */
function reply(res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
  res.writeHead(status, { 'content-type': 'application/json', ...headers }).end(JSON.stringify(body));
}

/** Writes a JSON-RPC error response (`id` null unless given) with `status` and any further `headers`. */
function rpcError(
  res: ServerResponse,
  status: number,
  code: number,
  message: string,
  options: { id?: string | number | null; headers?: Record<string, string> } = {},
): void {
  reply(res, status, { jsonrpc: '2.0', error: { code, message }, id: options.id ?? null }, options.headers);
}
