import { randomUUID } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import {
  bearerAuthChallengeResponse,
  classifyInboundRequest,
  createMcpHandler,
  isInitializeRequest,
  isJSONRPCResponse,
  isJsonContentType,
  verifyBearerToken,
  WebStandardStreamableHTTPServerTransport,
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
import { hardenServerRequestIds, Sessions2025, type LiveSession, type Session2025Entry, type SessionLimits } from './sessions-2025.js';
import { isTaskSubscription, type TaskSubscriptions } from '../wire/index.js';
import type { FastPath } from '../wire/fast-path.js';
import { outageHeaders, STORE_UNAVAILABLE, storeUnavailableError, toErrorObject } from '../wire/errors.js';
import type { Principal } from '../core/access.js';
import { json, rpcError, type Exchange, type FetchTarget, type McpFetchOptions, type Outcome } from './exchange.js';

export type { McpFetchOptions } from './exchange.js';
import { nodeExchange, sendNode } from './exchange-node.js';
import { sendWeb, webExchange } from './exchange-web.js';

/** Options of `createMcpHttpHandler` (and, through `TaskServer.httpHandler`/`listen`, of a task server's endpoint). */
export interface McpHttpHandlerOptions {
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
   * sessions, so several instances behind a round-robin proxy — or a fresh serverless instance per
   * request — can serve one client. 2026-07-28 is stateless anyway. In 2025-11-25 a task's questions
   * then need `tasks/result` on one instance; 2026-07-28 questions need nothing of the kind.
   */
  stateless?: boolean;
  /**
   * Require `Authorization: Bearer <token>` on every request, verified with the SDK's
   * `verifyBearerToken` (failures get the SDK's 401/403 challenge). The verified `AuthInfo` binds
   * tasks to their principal (see `principalOf`). Without it, the `AuthInfo` the host app gives
   * (Express/Node `req.auth`, e.g. from `requireBearerAuth` of `@modelcontextprotocol/express`; the
   * `authInfo` option of `fetch`) is the principal's, and without that every requestor is anonymous.
   */
  auth?: BearerAuthOptions;
  /**
   * The fast path (see `FastPath`): `tasks/get` in both versions, 2025-11-25 `tasks/result` of an
   * ended task, 2025-11-25 task-augmented and 2026-07-28 task-creating `tools/call` of task tools
   * answered without the SDK's per-request machinery, after every check this handler and the SDK's
   * transport perform. Without it every request goes through the SDK.
   */
  fastPath?: FastPath;
  /** Answers 2026-07-28 `subscriptions/listen` requests for `taskIds` (the SDK's listen router does not know them). */
  taskSubscriptions?: TaskSubscriptions;
  /**
   * Lifetime of 2025-11-25 sessions (see `SessionLimits`): `idleTimeoutMs` (default 30 min),
   * `maxPerPrincipal` (default 1,000), `max` (default 10,000), `dormantAfterMs` (default 0: never).
   */
  sessions?: SessionLimits;
  /**
   * Whether what is attached to a session's `McpServer` holds nothing a rebuilt one would lack, so
   * the session may go dormant (see `SessionLimits.dormantAfterMs`). Undefined: always.
   */
  sessionQuiet?: (mcp: McpServer) => boolean;
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
  /**
   * Largest accepted request body in bytes. Default 4 MiB; larger bodies get HTTP 413. A body the
   * host app parsed already (`express.json()`, Fastify) is limited by the host's own setting.
   */
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
  /**
   * Called before each request is served; a promise it returns is awaited first, and its rejection
   * answers the request (503 with -32010 for a store outage, else 500 with -32603) without serving
   * it (`TaskServer.httpHandler` starts the server this way). Undefined: nothing to wait for.
   */
  ready?: () => Promise<unknown> | undefined;
}

/**
 * The MCP endpoint of a task server as a request handler, to mount in any HTTP host at the path
 * of your choice (every request given to it is an MCP endpoint request: routing is the host's):
 * - `fetch(request, { authInfo?, parsedBody? })` → `Response`: web-standard hosts (Hono, Bun,
 *   Deno, Cloudflare Workers, serverless functions); SSE answers are `ReadableStream` bodies;
 * - `node(req, res, parsedBody?)`: Node hosts (`node:http`, Express, Fastify's `request.raw`/
 *   `reply.raw`); `req.auth` (set by Express auth middleware such as the SDK's
 *   `requireBearerAuth`) is the caller's `AuthInfo`; an Express `next` as third argument is
 *   ignored; `req.body` parsed by `express.json()` is used when the stream was consumed.
 *
 * Both serve Streamable HTTP in both protocol versions exactly as `TaskServer.listen` does (which
 * is a `node:http` server around `node`): 2025-11-25 sessions (`initialize`, `Mcp-Session-Id`, GET
 * stream; or the stateless fallback), 2026-07-28 per-request servers with `server/discover` and
 * header validation, `subscriptions/listen` for task ids, the fast path, the limits, and a store
 * outage answered with HTTP 503 + `Retry-After` and -32010. Host-header (DNS rebinding) and Origin
 * checks are the host app's (the SDK's `createMcpExpressApp`/`createMcpHonoApp`/
 * `createMcpFastifyApp` install them).
 */
export interface McpHttpHandler {
  /** Serves one request, web-standard. Never rejects: failures are JSON-RPC error responses (500 -32603, 503 -32010). */
  fetch(request: Request, options?: McpFetchOptions): Promise<Response>;
  /** Serves one request on Node's `req`/`res`. Never rejects: failures are JSON-RPC error responses. */
  node(req: IncomingMessage, res: ServerResponse, parsedBody?: unknown): Promise<void>;
  /**
   * What the handler holds now: open 2025-11-25 sessions (`dormant`: of which dormant, see
   * `SessionLimits.dormantAfterMs`), requests being served (as `maxConcurrentRequests` counts them).
   */
  stats(): { sessions: number; dormant: number; requests: number };
  /** Closes every 2025-11-25 session (their `McpServer`s and streams). The task server is not closed. */
  close(): Promise<void>;
}

/**
 * Builds the MCP endpoint handler (see `McpHttpHandler`) over `createMcpServer`: both protocol
 * versions on one endpoint, routed with the SDK's `classifyInboundRequest` (the composition the
 * SDK documents for keeping a sessionful 2025 deployment):
 * - 2025-11-25: sessions (`initialize`, `Mcp-Session-Id`, GET stream) on the SDK's
 *   `WebStandardStreamableHTTPServerTransport`, one `McpServer` per session;
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
 * on the fast path, for the SDK's JSON answers (2026-07-28; see `answerOutageWith503`) and for an
 * error escaping the handler. A response already opened as an SSE stream with 200 (the SDK answers
 * every 2025-11-25 request on one, sessions and the stateless fallback alike, and a 2026-07-28 call
 * that sent a notification first) carries the same -32010 error, with `data.retryable`, in the
 * stream. Such requests are logged at debug only: the store logs each outage once.
 *
 * Throws `InvalidArgumentError` for invalid `sessions` limits.
 */
export function createMcpHttpHandler(options: McpHttpHandlerOptions): McpHttpHandler {
  const endpoint = new McpEndpoint(options);
  return {
    fetch: async (request, fetchOptions) => {
      const exchange = webExchange(request, fetchOptions);
      return sendWeb(await endpoint.serve(exchange), request, exchange, endpoint.onError);
    },
    node: async (req, res, parsedBody) => {
      const exchange = nodeExchange(req, res, parsedBody);
      try {
        await sendNode(await endpoint.serve(exchange), req, res, exchange, endpoint.onError);
      } catch (error) {
        endpoint.onError(error);
        if (res.headersSent) return void res.end();
        res
          .writeHead(500, { 'content-type': 'application/json' })
          .end(JSON.stringify({ jsonrpc: '2.0', error: { code: -32603, message: 'Internal error' }, id: null }));
      }
    },
    stats: () => ({ sessions: endpoint.sessions.size, dormant: endpoint.sessions.size - endpoint.sessions.awake, requests: endpoint.serving }),
    close: () => endpoint.sessions.closeAll(),
  };
}

/** The routing and checks of `McpHttpHandler`, written once over `Exchange`. */
class McpEndpoint {
  readonly sessions: Sessions2025;
  readonly onError: (error: unknown) => void;
  /** Requests being served, as `maxConcurrentRequests` counts them. */
  serving = 0;
  private readonly logger: Logger;
  private readonly maxBodyBytes: number;
  private readonly maxConcurrent: number;
  private readonly refusals: ReturnType<typeof refusalLog>;
  private readonly standaloneStreams = new Counts<McpServer>();
  private readonly stateless: boolean;
  private readonly fast?: FastPath;
  private readonly sdk2026?: FetchTarget;

  constructor(private readonly options: McpHttpHandlerOptions) {
    this.maxBodyBytes = options.maxBodyBytes ?? 4 * 1024 * 1024;
    this.logger = options.logger ?? createLogger();
    this.onError = options.onError ?? ((error: unknown) => logRequestError(this.logger, error, { component: 'http' }));
    const quiet = options.sessionQuiet;
    this.sessions = new Sessions2025(this.logger, options.sessions, Date.now, quiet && ((live) => quiet(live.mcp)));
    this.maxConcurrent = options.maxConcurrentRequests ?? 512;
    this.refusals = refusalLog(this.logger, this.maxConcurrent);
    this.stateless = options.stateless === true;
    if (options.fastPath) this.fast = options.fastPath;
    if (options.protocolVersions?.includes('2026-07-28') !== false || this.stateless) {
      const handler = createMcpHandler(
        async (ctx) => {
          const protocolVersion = protocolVersionOf(ctx.era);
          const mcp = await options.createMcpServer({ protocolVersion, ...(ctx.authInfo && { authInfo: ctx.authInfo }) });
          // This endpoint serves 2025-11-25 too (sessions, or the stateless fallback): server/discover says so.
          if (protocolVersion === '2026-07-28') advertiseServedVersions(mcp);
          return mcp;
        },
        { legacy: this.stateless ? 'stateless' : 'reject', onerror: this.onError, maxRequestBodySize: this.maxBodyBytes },
      );
      this.sdk2026 = { fetch: async (request, requestOptions) => answerOutageWith503(await handler.fetch(request, requestOptions)) };
    }
  }

  /** Decides how to answer `x`. Never rejects: an error escaping is answered 503 (a store outage) or 500 (-32603). */
  async serve(x: Exchange): Promise<Outcome> {
    const ready = this.options.ready?.();
    if (ready) {
      try {
        await ready;
      } catch (error) {
        return failure(error, null, 'Internal error: the server could not start');
      }
    }
    let id: string | number | null = null;
    try {
      return await this.route(x, (found) => (id = found));
    } catch (error) {
      this.onError(error);
      return failure(error, id, 'Internal error');
    }
  }

  private async route(x: Exchange, noteId: (id: string | number) => void): Promise<Outcome> {
    const { options, fast } = this;
    if (options.auth) {
      try {
        x.authInfo = await verifyBearerToken(x.header('authorization'), options.auth);
      } catch (error) {
        return { kind: 'response', response: bearerAuthChallengeResponse(error, options.auth) };
      }
    }
    let body: unknown;
    if (x.method === 'POST') {
      const read = await x.readBody(this.maxBodyBytes);
      if (read === 'too-large') return rpcError(413, -32600, `Request body exceeds ${this.maxBodyBytes} bytes`);
      if ('parsed' in read) body = read.parsed;
      else {
        try {
          body = JSON.parse(read.text);
        } catch {
          return rpcError(400, -32700, 'Parse error: request body is not JSON');
        }
      }
      // Shape, depth, batch length (an empty batch too: the SDK transport would accept it with 202) and
      // key count, before the SDK's zod validation or JSON.stringify can overflow the stack.
      const refused = checkBody(body, options.bodyLimits);
      if (refused) return rpcError(refused.status, refused.code, refused.message, { id: refused.id });
      const id = (body as { id?: unknown } | null)?.id;
      if (typeof id === 'string' || typeof id === 'number') noteId(id);
      if (this.maxConcurrent > 0 && countsAsWork(body)) {
        if (this.serving >= this.maxConcurrent) {
          this.refusals.note();
          return busy('Server busy: too many requests at once; retry after 1 s', body);
        }
        if (!x.gone()) {
          // (gone while the body was read: nothing to count; whatever is answered goes nowhere)
          this.serving++;
          x.onClose(() => this.serving--);
        }
      }
    }
    const authInfo = x.authInfo;
    const sessionId = x.header('mcp-session-id');
    if (sessionId !== undefined) {
      // A session answers only the principal that opened it; anyone else is told it does not exist.
      const session = this.sessions.find(sessionId, principalOf(authInfo));
      if (!session) return rpcError(404, -32001, 'Session not found; start a new session with initialize');
      // The client went away while its credentials were checked: nothing to serve, nothing to count
      // (a closed response's close event does not come again).
      if (x.gone()) return json(499, null);
      this.sessions.track(session, (listener) => x.onClose(listener));
      const live = session.live ?? (await this.sessions.wake(session, () => this.rebuild(session, authInfo)));
      if (!live) return rpcError(404, -32001, 'Session not found; start a new session with initialize');
      // The checks the SDK's transport makes before it reads a message; whatever fails one of them is its to answer.
      if (fast && x.method === 'POST' && acceptsJsonAndSse(x) && isJsonContentType(x.header('content-type') ?? '') && names2025Version(x)) {
        const answer = await fast.answer2025(live.mcp, body, authInfo, () => x.signal);
        if (answer) return json(answer.status, answer.body, { ...answer.headers, 'mcp-session-id': sessionId }); // JSON: Streamable HTTP allows it for any POST
      }
      if (!session.pinned && !(x.method === 'POST' && leavesNoState(body))) session.pinned = true;
      const report = x.method === 'GET' ? options.onStandaloneStream : undefined;
      return {
        kind: 'sdk',
        target: live.target,
        parsedBody: body,
        ...(report && { onResponse: (status: number) => this.trackStandalone(live.mcp, x, status, report) }),
      };
    }
    if (this.sdk2026) {
      // The SDK's own classifier (what its isLegacyRequest runs), on the request as it is: its
      // `legacy` route is 2025-11-25, `modern` 2026-07-28.
      const protocolVersionHeader = x.header('mcp-protocol-version');
      const mcpMethodHeader = x.header('mcp-method');
      const mcpNameHeader = x.header('mcp-name');
      const route = classifyInboundRequest({
        httpMethod: x.method,
        ...(protocolVersionHeader !== undefined && { protocolVersionHeader }),
        ...(mcpMethodHeader !== undefined && { mcpMethodHeader }),
        ...(mcpNameHeader !== undefined && { mcpNameHeader }),
        ...(body !== undefined && { body }),
      });
      if (this.stateless || (!initializes(body) && route.kind !== 'legacy')) {
        if (options.taskSubscriptions && isTaskSubscription(body)) {
          return { kind: 'response', response: await subscriptionResponse(options.taskSubscriptions, body, principalOf(authInfo), x.signal) };
        }
        if (
          fast &&
          route.kind === 'modern' &&
          route.messageKind === 'request' &&
          isJsonContentType(x.header('content-type') ?? '') &&
          // SEP-2243: both are required on a 2026-07-28 request (the classifier has checked they match the body).
          protocolVersionHeader !== undefined &&
          mcpMethodHeader !== undefined
        ) {
          const answer = await fast.answer2026(
            body,
            route.classification.revision,
            { ...(mcpNameHeader !== undefined && { mcpName: mcpNameHeader }) },
            authInfo,
            () => x.signal,
          );
          if (answer) return json(answer.status, answer.body, answer.headers);
        }
        return { kind: 'sdk', target: this.sdk2026, parsedBody: body };
      }
    }
    if (x.method !== 'POST' || !initializes(body)) return rpcError(400, -32000, 'Bad Request: no valid session ID; start with initialize');
    return this.initialize(x, body);
  }

  /** A 2025-11-25 `initialize` without a session: opens one (its `McpServer` and transport) within the session caps. */
  private async initialize(x: Exchange, body: unknown): Promise<Outcome> {
    const { authInfo } = x;
    const principal = principalOf(authInfo);
    const release = this.sessions.reserve(principal);
    if (!release) {
      this.logger.warn({ principal }, 'server busy: initialize refused with HTTP 503, every session is in use');
      return busy('Server busy: every session is in use; retry after 1 s', body);
    }
    let handedOver = false;
    try {
      let live: LiveSession | undefined;
      live = await this.connect(authInfo, undefined, (sessionId) => {
        release();
        this.sessions.add(sessionId, { principal, initialize: body as JSONRPCRequest, live: live! });
      });
      const { mcp, transport, target } = live;
      handedOver = true;
      return {
        kind: 'sdk',
        target,
        parsedBody: body,
        onResponse: () => {
          release();
          // Refused by the transport (a wrong Accept, a bad version …): no session, so nothing may stay behind.
          if (!transport.sessionId) mcp.close().catch(() => undefined);
        },
      };
    } finally {
      if (!handedOver) release();
    }
  }

  /**
   * A new `McpServer` (`createMcpServer`, for 2025-11-25) connected to a new session transport
   * (unguessable server-to-client request ids, see `hardenServerRequestIds`). `sessionId`: the id
   * the transport gives the session it initializes (default a random UUID); `initialized` is told
   * it. The transport closing (`DELETE`, or the server closed) ends the session it serves.
   */
  private async connect(authInfo: AuthInfo | undefined, sessionId: string | undefined, initialized?: (sessionId: string) => void): Promise<LiveSession> {
    const mcp = await this.options.createMcpServer({ protocolVersion: '2025-11-25', ...(authInfo && { authInfo }) });
    this.options.onStandaloneStream?.(mcp, false);
    const transport: WebStandardStreamableHTTPServerTransport = new WebStandardStreamableHTTPServerTransport({
      sessionIdGenerator: sessionId === undefined ? () => randomUUID() : () => sessionId,
      ...(initialized && { onsessioninitialized: initialized }),
    });
    transport.onclose = () => {
      if (transport.sessionId) this.sessions.closed(transport.sessionId, transport);
    };
    await mcp.connect(transport);
    const pending = hardenServerRequestIds(transport, this.logger);
    return { mcp, transport, target: sessionTarget(transport), pending };
  }

  /**
   * Wakes a dormant session (see `SessionLimits.dormantAfterMs`): a new `McpServer` and transport
   * for its id, to which its `initialize` request and `notifications/initialized` are replayed
   * through the SDK transport, as the client sent them (the answers go nowhere). `authInfo` is the
   * waking request's (its principal is the session's, `find` checked it). Rejects when the factory
   * fails or the replay is refused (the session stays dormant; the request gets HTTP 500).
   */
  private async rebuild(session: Session2025Entry, authInfo: AuthInfo | undefined): Promise<LiveSession> {
    const live = await this.connect(authInfo, session.sessionId);
    try {
      const replay = async (message: unknown, headers: Record<string, string>) => {
        const request = new Request('http://localhost/mcp', {
          method: 'POST',
          headers: { 'content-type': 'application/json', accept: 'application/json, text/event-stream', ...headers },
        });
        const response = await live.transport.handleRequest(request, { parsedBody: message, ...(authInfo && { authInfo }) });
        await response.text();
        return response.status;
      };
      const initialize = await replay(session.initialize, {});
      if (initialize !== 200 || live.transport.sessionId !== session.sessionId)
        throw new Error(`a dormant session could not be woken: the SDK answered its initialize replay with HTTP ${initialize}`);
      const initialized = await replay({ jsonrpc: '2.0', method: 'notifications/initialized' }, { 'mcp-session-id': session.sessionId });
      if (initialized !== 202) throw new Error(`a dormant session could not be woken: the SDK answered notifications/initialized with HTTP ${initialized}`);
      return live;
    } catch (error) {
      live.mcp.close().catch(() => undefined);
      throw error;
    }
  }

  /**
   * Reports a session's standalone GET stream open once the transport has accepted it (HTTP 200;
   * a refused GET is no stream) and closed when the last one ends.
   */
  private trackStandalone(mcp: McpServer, x: Exchange, status: number, report: (mcp: McpServer, open: boolean) => void): void {
    if (status !== 200) return;
    if (this.standaloneStreams.add(mcp) === 1) setImmediate(() => report(mcp, true)); // after the headers are out
    x.onClose(() => {
      if (this.standaloneStreams.remove(mcp) === 0) report(mcp, false);
    });
  }
}

/**
 * The answer to an error that escaped: a store outage is no server fault — 503 with Retry-After and
 * -32010, like every other answer to one —, anything else 500 with -32603 and `message`.
 */
function failure(error: unknown, id: string | number | null, message: string): Outcome {
  const outage = storeUnavailableError(error);
  if (!outage) return rpcError(500, -32603, message, { id });
  const object = toErrorObject(outage);
  const { status, headers } = outageHeaders(object)!;
  return json(status, { jsonrpc: '2.0', error: object, id }, headers);
}

/**
 * Whether the SDK serving `body` on a session leaves its `McpServer` as a rebuilt one would be
 * (see `SessionLimits.dormantAfterMs`): `notifications/initialized`, `ping`, `notifications/cancelled`
 * and responses (to server-to-client requests, which are tracked on their own), alone or in a batch.
 */
function leavesNoState(body: unknown): boolean {
  if (Array.isArray(body)) return body.every(leavesNoState);
  const message = body as { method?: unknown } | null;
  if (typeof message !== 'object' || message === null) return false;
  if (message.method === undefined) return 'result' in message || 'error' in message;
  return message.method === 'notifications/initialized' || message.method === 'ping' || message.method === 'notifications/cancelled';
}

/** The session transport as a `FetchTarget`. */
function sessionTarget(transport: WebStandardStreamableHTTPServerTransport): FetchTarget {
  return { fetch: (request, options) => transport.handleRequest(request, options) };
}

/** The SDK transport's `Accept` rule for a POST: both `application/json` and `text/event-stream`. */
function acceptsJsonAndSse(x: Exchange): boolean {
  const accept = x.header('accept');
  return accept !== undefined && accept.includes('application/json') && accept.includes('text/event-stream');
}

/** A 2025-11-25 session request whose `MCP-Protocol-Version` header (optional) names the revision tasks belong to. */
function names2025Version(x: Exchange): boolean {
  const version = x.header('mcp-protocol-version');
  return version === undefined || version === '2025-11-25';
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
function busy(message: string, body: unknown): Outcome {
  const id = (body as { id?: unknown } | null)?.id;
  return rpcError(503, -32000, message, { id: typeof id === 'string' || typeof id === 'number' ? id : null, headers: { 'retry-after': '1' } });
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
 * Serves a 2026-07-28 task subscription (see `TaskSubscriptions`) as one Streamable HTTP response:
 * a lone first message that is a response (the -32021 refusal) is the JSON body; otherwise an SSE
 * stream (`event: message` per JSON-RPC message, a `: keep-alive` comment every `keepAliveMs`)
 * that ends after the subscription's response. The client leaving (`signal`, or the stream
 * cancelled) ends the subscription. Rejects when the subscription fails before anything was sent
 * (a store outage: the caller answers 503).
 */
function subscriptionResponse(subscriptions: TaskSubscriptions, message: JSONRPCRequest, owner: Principal, signal: AbortSignal): Promise<Response> {
  return new Promise<Response>((resolve, reject) => {
    const left = new AbortController();
    const leave = () => left.abort();
    signal.addEventListener('abort', leave, { once: true });
    const encoder = new TextEncoder();
    let stream: ReadableStreamDefaultController<Uint8Array> | undefined;
    let answered = false;
    let keepAlive: NodeJS.Timeout | undefined;
    const stop = () => {
      clearInterval(keepAlive);
      signal.removeEventListener('abort', leave);
      try {
        stream?.close();
      } catch {
        /* cancelled by the client already */
      }
    };
    const write = (text: string) => {
      try {
        stream?.enqueue(encoder.encode(text));
      } catch {
        /* cancelled by the client already */
      }
    };
    subscriptions
      .serve(message, owner, {
        signal: left.signal,
        send: (outgoing) => {
          if (left.signal.aborted) return;
          const final = isJSONRPCResponse(outgoing);
          if (!answered) {
            answered = true;
            if (final) return resolve(Response.json(outgoing));
            const body = new ReadableStream<Uint8Array>({
              start: (controller) => void (stream = controller),
              cancel: () => {
                left.abort();
                stop();
              },
            });
            resolve(
              new Response(body, { status: 200, headers: { 'content-type': 'text/event-stream', 'cache-control': 'no-cache', connection: 'keep-alive' } }),
            );
            keepAlive = setInterval(() => write(': keep-alive\n\n'), subscriptions.keepAliveMs);
          }
          write(`event: message\ndata: ${JSON.stringify(outgoing)}\n\n`);
          if (final) stop();
        },
      })
      .then(
        () => {
          stop();
          // The subscriber left before anything was sent: nobody reads this answer.
          if (!answered) resolve(new Response(null, { status: 204 }));
        },
        (error: unknown) => {
          stop();
          if (!answered) reject(error instanceof Error ? error : new Error(String(error)));
        },
      );
  });
}
