import {
  classifyInboundRequest,
  isJSONRPCNotification,
  isJSONRPCRequest,
  UnsupportedProtocolVersionError,
  type JSONRPCMessage,
  type JSONRPCRequest,
  type McpServer,
  type MessageExtraInfo,
  type RequestId,
  type Transport,
  type TransportSendOptions,
} from '@modelcontextprotocol/server';
import { serveStdio, StdioServerTransport } from '@modelcontextprotocol/server/stdio';
import { createLogger, logRequestError, type Logger } from '../core/log.js';
import { protocolVersionOf, type ProtocolVersion } from '../wire/protocol-version.js';
import { isTaskSubscription, type TaskSubscriptions } from '../wire/index.js';
import { advertiseServedVersions } from '../wire/sdk-seam.js';
import { toErrorObject } from '../wire/errors.js';

/** The envelope-carrying revisions this server speaks (the wire layer implements exactly this one). */
const ENVELOPE_REVISIONS = ['2026-07-28'];

/** Most `subscriptions/listen` streams for task ids open at once on one connection (the SDK's own limit for its listen router). */
const MAX_TASK_SUBSCRIPTIONS = 1024;

/** Options of `startStdioServer`. */
export interface StdioServerOptions {
  /**
   * Builds an `McpServer` (with tasks attached for `protocolVersion`): one per connection, plus one for a
   * `server/discover` probe that is discarded again when the client then sends `initialize`.
   */
  createMcpServer: (context: { protocolVersion: ProtocolVersion }) => McpServer | Promise<McpServer>;
  /**
   * Answers 2026-07-28 `subscriptions/listen` requests for `taskIds` (the SDK's stdio listen router
   * does not know them). Without it they are left to the SDK, which acknowledges no task ids.
   */
  taskSubscriptions?: TaskSubscriptions;
  /**
   * The connection's message stream. Default: a `StdioServerTransport` on this process's
   * stdin/stdout (stdout then belongs to the protocol: log to stderr). Pass one over other streams
   * (a socket, a pipe) to serve a connection there. It is started, and closed when the connection ends.
   */
  transport?: Transport;
  /** Structured logger (see `createLogger`). Default: a new `createLogger()` (JSON on stderr). */
  logger?: Logger;
  /**
   * Errors met while serving: requests refused or failed, delivery failures. Default: refused
   * client requests at debug level, input that is not JSON-RPC at warn level, server faults at
   * error level (see `logRequestError`).
   */
  onError?: (error: unknown) => void;
}

/** A connection being served on stdio (see `startStdioServer`). */
export interface RunningStdioServer {
  /** Resolves when the connection has ended: the client closed stdin (or the stream failed), or `close()` was called. */
  readonly closed: Promise<void>;
  /** Ends the connection: ends task subscriptions, closes its `McpServer` and the transport. Idempotent. */
  close(): Promise<void>;
}

/**
 * Serves one MCP connection on stdio in the protocol version its client speaks, as negotiated
 * by the SDK's own stdio entry, `serveStdio` (`@modelcontextprotocol/server/stdio`), from the body
 * of the opening message (there are no headers on stdio; 2026-07-28 "stdio: Backward
 * Compatibility"):
 * - `initialize` (or any message without the 2026-07-28 `_meta` envelope) → 2025-11-25: one
 *   `McpServer` built with `protocolVersion: '2025-11-25'` is pinned to the connection and serves it as a
 *   hand-wired stdio server does (handshake, server→client requests such as `elicitation/create`,
 *   notifications);
 * - a request whose `_meta` claims `io.modelcontextprotocol/protocolVersion: "2026-07-28"` → one
 *   `McpServer` built with `protocolVersion: '2026-07-28'` serves every later message. Each request stands on its
 *   own `_meta` (protocol version, client info, client capabilities): a task is offered only to
 *   requests that declare `io.modelcontextprotocol/tasks` in their client capabilities. A later
 *   `initialize` is refused with -32022 (UnsupportedProtocolVersion);
 * - `server/discover` first (the spec's stdio probe) is answered by a 2026-07-28 instance, whose
 *   `supportedVersions` list 2026-07-28 first and then the earlier versions this connection also
 *   accepts through `initialize` (see `advertiseServedVersions`); when the client then sends
 *   `initialize`, that instance is discarded and the connection is served in 2025-11-25;
 * - an opening request with a malformed envelope → -32602; one claiming an unsupported revision →
 *   -32022 with `data.supported`; the connection stays open for a valid opening.
 *
 * On a 2026-07-28 connection every later request that carries an envelope is checked as the
 * opening one is (malformed → -32602 with `data.envelope`; another revision → -32022), before
 * anything answers it; and `subscriptions/listen` with `notifications.taskIds` is answered by
 * `taskSubscriptions` (Tasks extension "Task Status Notifications": -32021 for a client that did
 * not declare the extension; else the acknowledgement, `notifications/tasks` with the
 * subscription id, and a `resultType: "complete"` result once every watched task has ended);
 * `notifications/cancelled` for its request id ends such a subscription. Other
 * `subscriptions/listen` filters are served by the SDK.
 *
 * Robustness: a line that is not JSON is skipped, one that is JSON but not JSON-RPC is reported
 * to `onError` and skipped; the connection and the process stay up. (A single line over the SDK
 * transport's buffer limit, 10 MB by default, ends the connection: the SDK closes the transport.)
 *
 * Returns at once, while the transport starts; `closed` tells when the connection ends.
 */
export function startStdioServer(options: StdioServerOptions): RunningStdioServer {
  const logger = options.logger ?? createLogger();
  const onError = options.onError ?? ((error: unknown) => logStdioError(logger, error));
  const wire = options.transport ?? new StdioServerTransport();
  const subscriptions = new StdioTaskSubscriptions(wire, options.taskSubscriptions, onError);
  /** The protocol version of the instance serving the connection (a discover probe counts as 2026-07-28); undefined before the opening. */
  let version: ProtocolVersion | undefined;
  let ended!: () => void;
  const closed = new Promise<void>((resolve) => (ended = resolve));

  // The SDK entry gets a thin front of the wire: requests on a 2026-07-28 connection are checked,
  // task subscriptions are answered, everything else reaches `serveStdio` untouched.
  const front = new InterposedTransport(wire, (message) => {
    if (version === '2025-11-25') return false;
    if (isJSONRPCNotification(message)) return subscriptions.cancel(message);
    if (!isJSONRPCRequest(message)) return false;
    // Before the opening the SDK classifies the message itself; after it, requests carrying an
    // envelope are checked here, as the HTTP entry checks each request.
    const check = checkEnvelope(message);
    if (version === '2026-07-28' && check.refusal) {
      void wire.send({ jsonrpc: '2.0', id: message.id, error: check.refusal }).catch(onError);
      return true;
    }
    return check.envelope && !check.refusal && isTaskSubscription(message) && subscriptions.serve(message);
  });
  front.onclosed = () => {
    subscriptions.closeAll();
    ended();
  };

  const handle = serveStdio(
    async (context) => {
      version = protocolVersionOf(context.era);
      logger.debug({ transport: 'stdio', protocolVersion: version }, 'stdio connection: building a server for its protocol version');
      if (version === '2025-11-25') subscriptions.closeAll();
      const mcp = await options.createMcpServer({ protocolVersion: version });
      // This connection accepts 2025-11-25 `initialize` too: server/discover says so.
      if (version === '2026-07-28') advertiseServedVersions(mcp);
      return mcp;
    },
    { transport: front, legacy: 'serve', onerror: onError },
  );
  return {
    closed,
    close: async () => {
      subscriptions.closeAll();
      await handle.close();
      ended();
    },
  };
}

/**
 * How a request's `_meta` envelope stands, classified by the SDK's body-primary classifier
 * (`classifyInboundRequest`, as the HTTP entry uses it): `envelope` when it claims the 2026-07-28
 * mechanism; `refusal` is the JSON-RPC error for an envelope that is malformed (-32602 in the
 * SDK's words, `data.envelope`) or claims a revision other than 2026-07-28 (-32022,
 * `data.supported`, `data.requested`). A request without an envelope is neither (`envelope: false`,
 * no refusal): it is left to the SDK, which refuses it on a 2026-07-28 connection.
 */
function checkEnvelope(message: JSONRPCRequest): { envelope: boolean; refusal?: { code: number; message: string; data?: unknown } } {
  const outcome = classifyInboundRequest({ httpMethod: 'POST', body: message });
  if (outcome.kind === 'reject')
    return { envelope: true, refusal: { code: outcome.code, message: outcome.message, ...(outcome.data !== undefined && { data: outcome.data }) } };
  if (outcome.kind !== 'modern') return { envelope: false }; // the SDK's word for 2026-07-28
  const revision = outcome.classification.revision;
  if (revision !== undefined && ENVELOPE_REVISIONS.includes(revision)) return { envelope: true };
  const error = new UnsupportedProtocolVersionError({ supported: [...ENVELOPE_REVISIONS], requested: revision ?? 'unknown' });
  return { envelope: true, refusal: { code: error.code, message: error.message, data: error.data } };
}

/**
 * Logs what `serveStdio` and the transport report: input that is not JSON-RPC at warn level
 * without a stack; requests the SDK refused (wrong protocol version, malformed envelope, unsupported revision)
 * and other client errors at debug level; everything else via `logRequestError`.
 */
function logStdioError(logger: Logger, error: unknown): void {
  const name = (error as { name?: unknown } | undefined)?.name;
  const message = error instanceof Error ? error.message : String(error);
  if (name === 'ZodError' || name === 'SyntaxError') {
    logger.warn({ component: 'stdio', error: message.slice(0, 500) }, 'skipped a message on stdin that is not JSON-RPC');
    return;
  }
  if (/^(Rejected|Discarded) /.test(message)) {
    logger.debug({ component: 'stdio', error: message }, 'client message refused');
    return;
  }
  logRequestError(logger, error, { component: 'stdio' });
}

/**
 * A `Transport` in front of another: `intercept(message)` sees every inbound message first and
 * returns true when it has handled it (it then never reaches this transport's `onmessage`);
 * sending, starting and closing go straight to the inner transport. `onclosed` runs once when the
 * inner transport closes, after this transport's `onclose`.
 */
class InterposedTransport implements Transport {
  onmessage?: (message: JSONRPCMessage, extra?: MessageExtraInfo) => void;
  onclose?: () => void;
  onerror?: (error: Error) => void;
  onclosed?: () => void;

  constructor(
    private readonly inner: Transport,
    private readonly intercept: (message: JSONRPCMessage) => boolean,
  ) {}

  get sessionId(): string | undefined {
    return this.inner.sessionId;
  }

  async start(): Promise<void> {
    this.inner.onmessage = (message, extra) => {
      if (!this.intercept(message)) this.onmessage?.(message, extra);
    };
    this.inner.onerror = (error) => this.onerror?.(error);
    this.inner.onclose = () => {
      try {
        this.onclose?.();
      } finally {
        this.onclosed?.();
      }
    };
    await this.inner.start();
  }

  send(message: JSONRPCMessage, options?: TransportSendOptions): Promise<void> {
    return this.inner.send(message, options);
  }

  setProtocolVersion(version: string): void {
    this.inner.setProtocolVersion?.(version);
  }

  close(): Promise<void> {
    return this.inner.close();
  }
}

/**
 * 2026-07-28 `subscriptions/listen` for task ids on one stdio connection, served by
 * `TaskSubscriptions` straight onto the wire: each message of a subscription is sent as it is.
 * Subscriptions are keyed by their request id; `notifications/cancelled` for that id ends one
 * (nothing more is sent for it), and so does the end of the connection.
 */
class StdioTaskSubscriptions {
  private readonly open = new Map<RequestId, AbortController>();

  constructor(
    private readonly wire: Transport,
    private readonly tasks: TaskSubscriptions | undefined,
    private readonly onError: (error: unknown) => void,
  ) {}

  /** Serves a task subscription request; false when there is no `TaskSubscriptions` (the SDK then answers it). */
  serve(message: JSONRPCRequest): boolean {
    if (!this.tasks) return false;
    const send = (reply: JSONRPCMessage) => void this.wire.send(reply).catch(this.onError);
    if (this.open.has(message.id) || this.open.size >= MAX_TASK_SUBSCRIPTIONS) {
      const reason = this.open.has(message.id) ? 'a subscription with this request id is already open' : 'Subscription limit reached';
      send({ jsonrpc: '2.0', id: message.id, error: { code: this.open.has(message.id) ? -32600 : -32603, message: reason } });
      return true;
    }
    const left = new AbortController();
    this.open.set(message.id, left);
    let sent = false;
    const sink = {
      signal: left.signal,
      send: (outgoing: JSONRPCMessage) => {
        if (left.signal.aborted) return;
        sent = true;
        send(outgoing);
      },
    };
    // Stdio has no principal: every requestor on the connection is the anonymous one.
    this.tasks
      .serve(message, null, sink)
      .catch((error: unknown) => {
        this.onError(error);
        // A store outage is -32010 (retryable); anything else stays an internal error without details.
        if (!sent && !left.signal.aborted) send({ jsonrpc: '2.0', id: message.id, error: toErrorObject(error) });
      })
      .finally(() => {
        if (this.open.get(message.id) === left) this.open.delete(message.id);
      });
    return true;
  }

  /** Ends the subscription a `notifications/cancelled` names; true when it named one (the notification is then consumed). */
  cancel(notification: JSONRPCMessage): boolean {
    const params = (notification as { method?: string; params?: { requestId?: unknown } }).params;
    if ((notification as { method?: string }).method !== 'notifications/cancelled') return false;
    const id = params?.requestId as RequestId | undefined;
    const open = id === undefined ? undefined : this.open.get(id);
    if (!open) return false;
    this.open.delete(id!);
    open.abort();
    return true;
  }

  /** Ends every open subscription without a final result (the connection is gone or changed protocol version). */
  closeAll(): void {
    const open = [...this.open.values()];
    this.open.clear();
    for (const left of open) left.abort();
  }
}
