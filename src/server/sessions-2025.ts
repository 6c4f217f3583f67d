import { randomBytes } from 'node:crypto';
import {
  isJSONRPCErrorResponse,
  isJSONRPCRequest,
  isJSONRPCResultResponse,
  type JSONRPCMessage,
  type JSONRPCRequest,
  type McpServer,
  type Transport,
  type WebStandardStreamableHTTPServerTransport,
} from '@modelcontextprotocol/server';
import type { FetchTarget } from './exchange.js';
import type { Principal } from '../core/access.js';
import type { Logger } from '../core/log.js';
import { InvalidArgumentError } from '../core/errors.js';
import { Counts } from '../core/counts.js';

/**
 * What serves a 2025-11-25 session while it is awake: its transport, its `McpServer` and what
 * `hardenServerRequestIds` tracks. A dormant session has none (see `SessionLimits.dormantAfterMs`).
 */
export interface LiveSession {
  transport: WebStandardStreamableHTTPServerTransport;
  /** The transport as the handler's SDK target (`transport.handleRequest`). */
  target: FetchTarget;
  mcp: McpServer;
  /** Server-to-client requests sent and not yet answered (see `hardenServerRequestIds`). */
  pending: () => number;
}

/** One 2025-11-25 Streamable HTTP session: its id, the principal that opened it, and what serves it while awake. */
export interface Session2025Entry {
  sessionId: string;
  /** The verified principal of the `initialize` request (`null` on servers without auth). */
  principal: Principal;
  /** The client's `initialize` request as received: replayed to a new `McpServer` when a dormant session wakes. */
  initialize: JSONRPCRequest;
  /** Undefined while the session is dormant. */
  live?: LiveSession;
  /**
   * Set once the SDK served this session anything but the initialize exchange, `ping` or a response
   * (its `McpServer` may then hold state a rebuilt one would lack: a logging level, a user handler's
   * own state): the session then stays awake until it is closed.
   */
  pinned: boolean;
}

/** Lifetime limits of 2025-11-25 sessions (see `Sessions2025`). */
export interface SessionLimits {
  /**
   * How long (ms) a session may sit with no request or stream open before it is closed: its
   * `McpServer`, transport and listeners released. Its tasks are untouched; a later request naming
   * it gets HTTP 404 and the client initializes again (Streamable HTTP "Session Management").
   * Default 30 min (longer than any sensible poll gap); 0 keeps idle sessions forever.
   */
  idleTimeoutMs?: number;
  /**
   * Most sessions one authenticated principal may hold (at least 1). A new `initialize` beyond it
   * closes that principal's least recently used idle session; with none idle it is refused with HTTP
   * 503 and `Retry-After`. Anonymous clients (a server without auth) are all one principal, so only
   * `max` applies to them. Default 1,000.
   */
  maxPerPrincipal?: number;
  /** Most sessions in all (at least 1), enforced the same way over every principal's sessions. Default 10,000. */
  max?: number;
  /**
   * How long (ms) a quiet session stays awake before it goes dormant; 0 = never (the default of
   * `createMcpHttpHandler`; a task server with its default `McpServer` factory uses 5,000). Quiet:
   * no request or stream open, nothing watched or asked for it (no task followed, no question
   * pending, no server-to-client request unanswered), and the SDK has served it nothing but the
   * initialize exchange, `ping` and responses. A dormant session keeps only its id, its principal
   * and its `initialize` request (well under 1 KB instead of its `McpServer` and transport); the
   * next request naming it builds a new `McpServer` with `createMcpServer` and replays that
   * `initialize` and `notifications/initialized` to it through a new SDK transport with the same
   * session id, then serves the request: the client sees no difference. The replay reaches the
   * `McpServer` (its `oninitialized` runs again), so only factories whose servers hold no state of
   * their own should enable this.
   */
  dormantAfterMs?: number;
}

/** Why a session was closed by the server (log field `reason`). */
type CloseReason = 'idle' | 'principal-cap' | 'total-cap';

interface Entry extends Session2025Entry {
  /** Requests and streams of this session still open. */
  open: number;
  /** When the last open request or stream ended (ms since the epoch). */
  lastActive: number;
  /** A wake under way (see `wake`). */
  waking?: Promise<LiveSession | undefined>;
}

/**
 * The 2025-11-25 sessions of one HTTP server, each bound to the principal that opened it (MCP
 * "Security Best Practices › Session Hijacking": bind session ids to user information). A request
 * that names a session with another principal's credentials is treated exactly like one naming an
 * unknown session (HTTP 404), so a session's existence is not revealed.
 *
 * Sessions have a lifetime (`SessionLimits`): clients that vanish without `DELETE` (the common
 * case) are closed after `idleTimeoutMs` with nothing open, by one sweep timer per server; the
 * number of sessions per principal and in all is capped, closing the least recently used idle
 * session first. The map's order is the use order (a session moves to the end when a request
 * names it), so both are a walk from the front. The same sweep puts quiet sessions to sleep after
 * `dormantAfterMs` (their `McpServer` and transport released, see `SessionLimits.dormantAfterMs`);
 * `wake` builds them again.
 */
export class Sessions2025 {
  private readonly sessions = new Map<string, Entry>();
  private readonly perPrincipal = new Counts<Principal>();
  /** Initializes under way (room reserved, session not added yet), per principal and in all (`total`). */
  private readonly reserved = new Counts<Principal>();
  private readonly idleTimeoutMs: number;
  private readonly dormantAfterMs: number;
  private readonly maxPerPrincipal: number;
  private readonly max: number;
  private readonly sweeper?: NodeJS.Timeout;

  /**
   * `quiet(live)`: whether what is attached to a live session's `McpServer` holds nothing a rebuilt
   * one would lack (see `SessionLimits.dormantAfterMs`); asked only with `dormantAfterMs` > 0.
   * Throws `InvalidArgumentError` for invalid limits.
   */
  constructor(
    private readonly logger: Logger,
    limits: SessionLimits = {},
    private readonly now: () => number = Date.now,
    private readonly quiet: (live: LiveSession) => boolean = () => true,
  ) {
    this.idleTimeoutMs = limits.idleTimeoutMs ?? 30 * 60_000;
    this.dormantAfterMs = limits.dormantAfterMs ?? 0;
    this.maxPerPrincipal = limits.maxPerPrincipal ?? 1_000;
    this.max = limits.max ?? 10_000;
    for (const [name, value] of Object.entries({ idleTimeoutMs: this.idleTimeoutMs, dormantAfterMs: this.dormantAfterMs })) {
      if (!Number.isFinite(value) || value < 0) throw new InvalidArgumentError(`sessions.${name} must be a non-negative number of ms`);
    }
    for (const [name, value] of Object.entries({ maxPerPrincipal: this.maxPerPrincipal, max: this.max })) {
      if (!Number.isInteger(value) || value < 1) throw new InvalidArgumentError(`sessions.${name} must be a positive integer`);
    }
    const shortest = Math.min(...[this.idleTimeoutMs, this.dormantAfterMs].filter((ms) => ms > 0));
    if (Number.isFinite(shortest)) {
      this.sweeper = setInterval(() => this.sweep(), Math.max(10, Math.min(60_000, Math.floor(shortest / 4))));
      this.sweeper.unref();
    }
  }

  /**
   * The session `sessionId` if it exists and was opened by `principal`; otherwise undefined (the
   * caller answers HTTP 404 in both cases). A mismatch is logged at debug level, without ids. A
   * dormant session is returned dormant (`live` undefined): see `wake`.
   */
  find(sessionId: string, principal: Principal): Session2025Entry | undefined {
    const session = this.sessions.get(sessionId);
    if (session && session.principal !== principal) {
      this.logger.debug({ principal }, 'request names a session of another principal: answered as unknown');
      return undefined;
    }
    if (session) {
      this.sessions.delete(sessionId); // most recently used last
      this.sessions.set(sessionId, session);
    }
    return session;
  }

  /**
   * The live side of `session`: as it is when awake, else built by `build` (once, however many
   * requests wait for it) and kept. Resolves undefined when the session was closed meanwhile (what
   * `build` made is closed then; the caller answers HTTP 404). Rejects with `build`'s error, the
   * session staying dormant. Call after `track`, so that the session is not closed while it wakes.
   */
  async wake(session: Session2025Entry, build: () => Promise<LiveSession>): Promise<LiveSession | undefined> {
    const entry = session as Entry;
    if (entry.live) return entry.live;
    entry.waking ??= build().then(
      (live) => {
        entry.waking = undefined;
        if (this.sessions.get(entry.sessionId) !== entry) {
          live.mcp.close().catch(() => undefined);
          return undefined;
        }
        entry.live = live;
        return live;
      },
      (error: unknown) => {
        entry.waking = undefined;
        throw error;
      },
    );
    return entry.waking;
  }

  /**
   * Counts a request or stream of the session as open until its response closes (`onClose` registers
   * the listener; idle sessions only are closed). The caller checks first that the response is not
   * closed already (its close would not be reported).
   */
  track(session: Session2025Entry, onClose: (listener: () => void) => void): void {
    const entry = session as Entry;
    entry.open++;
    onClose(() => {
      entry.open--;
      entry.lastActive = this.now();
    });
  }

  /**
   * Reserves room for a new session of `principal` under the caps, closing least recently used idle
   * sessions (initializes still under way count too, so concurrent ones cannot overshoot). Returns
   * the release function of the reservation (call it once the initialize has ended, whether or not
   * it opened a session), or undefined when the caps are reached and no session can be closed
   * (every one has a request open): the caller refuses the `initialize` (HTTP 503).
   */
  reserve(principal: Principal): (() => void) | undefined {
    const capped = principal !== null; // anonymous clients are everyone: only the total cap applies
    const held = () => this.perPrincipal.get(principal) + this.reserved.get(principal);
    while (capped && held() >= this.maxPerPrincipal) if (!this.closeIdlest('principal-cap', principal)) return undefined;
    while (this.sessions.size + this.reserved.total >= this.max) if (!this.closeIdlest('total-cap')) return undefined;
    this.reserved.add(principal);
    let released = false;
    return () => {
      if (released) return;
      released = true;
      this.reserved.remove(principal);
    };
  }

  /** Adds a session that has just been initialized (awake, not pinned). */
  add(sessionId: string, session: { principal: Principal; initialize: JSONRPCRequest; live: LiveSession }): void {
    this.sessions.set(sessionId, { ...session, sessionId, pinned: false, open: 0, lastActive: this.now() });
    this.perPrincipal.add(session.principal);
  }

  delete(sessionId: string): void {
    const entry = this.sessions.get(sessionId);
    if (!entry) return;
    this.sessions.delete(sessionId);
    this.perPrincipal.remove(entry.principal);
  }

  /**
   * A session's transport closed (`DELETE`, or its `McpServer` closed): the session ends, unless
   * that transport no longer serves it (it went dormant, or woke with a new one).
   */
  closed(sessionId: string, transport: WebStandardStreamableHTTPServerTransport): void {
    if (this.sessions.get(sessionId)?.live?.transport === transport) this.delete(sessionId);
  }

  /** Sessions open now (dormant ones included). */
  get size(): number {
    return this.sessions.size;
  }

  /** Sessions awake now (with an `McpServer` and transport). */
  get awake(): number {
    let count = 0;
    for (const entry of this.sessions.values()) if (entry.live) count++;
    return count;
  }

  /** Closes every session's `McpServer` (and with it its transport). */
  async closeAll(): Promise<void> {
    if (this.sweeper) clearInterval(this.sweeper);
    const all = [...this.sessions.values()];
    this.sessions.clear();
    this.perPrincipal.clear();
    await Promise.all(all.flatMap(({ live }) => (live ? [live.mcp.close().catch(() => undefined)] : [])));
  }

  /** Closes sessions with nothing open for `idleTimeoutMs`; puts quiet ones to sleep after `dormantAfterMs`. */
  private sweep(): void {
    const now = this.now();
    const idleBefore = this.idleTimeoutMs > 0 ? now - this.idleTimeoutMs : -Infinity;
    const dormantBefore = this.dormantAfterMs > 0 ? now - this.dormantAfterMs : -Infinity;
    for (const entry of [...this.sessions.values()]) {
      if (entry.open > 0) continue;
      if (entry.lastActive <= idleBefore) this.close(entry, 'idle');
      else if (entry.live && !entry.pinned && !entry.waking && entry.lastActive <= dormantBefore && entry.live.pending() === 0 && this.quiet(entry.live)) {
        const { mcp } = entry.live;
        entry.live = undefined; // before the close, so its transport's onclose leaves the session be
        mcp.close().catch(() => undefined);
      }
    }
  }

  /** Closes the least recently used idle session (of `principal` when given). Returns whether one was closed. */
  private closeIdlest(reason: CloseReason, principal?: Principal): boolean {
    for (const entry of this.sessions.values()) {
      if (entry.open > 0 || (principal !== undefined && entry.principal !== principal)) continue;
      this.close(entry, reason);
      return true;
    }
    return false;
  }

  private close(entry: Entry, reason: CloseReason): void {
    this.delete(entry.sessionId);
    this.logger.info({ reason, principal: entry.principal, idleMs: this.now() - entry.lastActive }, 'session closed');
    entry.live?.mcp.close().catch(() => undefined);
  }
}

/**
 * Makes the ids of server-to-client requests on `transport` unguessable, and accepts a JSON-RPC
 * response only for a request this transport sent and is still waiting for.
 *
 * The SDK numbers the requests it sends (elicitation, sampling, roots) 0, 1, 2, … per connection;
 * on Streamable HTTP a response is a POST that anyone holding the session could forge by guessing
 * the id. This wraps the connected transport (after `McpServer.connect`) at its two ends: each
 * outgoing request gets a random id (128 bits, `s-` + base64url) that is mapped back to the SDK's
 * id when its response arrives; `notifications/cancelled` for such a request carries the random
 * id too. A response whose id was never sent, or was already answered, is dropped before the SDK
 * sees it and logged at debug level. Implements 2025-11-25 "Security Best Practices" for the
 * Streamable HTTP transport. Returns how many requests are still waiting for their response.
 */
export function hardenServerRequestIds(transport: Transport, logger: Logger): () => number {
  const sdkIdOf = new Map<string, string | number>();
  const wireIdOf = new Map<string | number, string>();
  const send = transport.send.bind(transport);
  transport.send = (message, options) => {
    if (isJSONRPCRequest(message)) {
      const wireId = `s-${randomBytes(16).toString('base64url')}`;
      sdkIdOf.set(wireId, message.id);
      wireIdOf.set(message.id, wireId);
      return send({ ...message, id: wireId }, options);
    }
    if ('method' in message && message.method === 'notifications/cancelled') {
      const requestId = (message.params as { requestId?: string | number } | undefined)?.requestId;
      const wireId = requestId === undefined ? undefined : wireIdOf.get(requestId);
      if (wireId !== undefined) {
        forget(wireId);
        return send({ ...message, params: { ...message.params, requestId: wireId } } as JSONRPCMessage, options);
      }
    }
    return send(message, options);
  };
  const forget = (wireId: string) => {
    const sdkId = sdkIdOf.get(wireId);
    sdkIdOf.delete(wireId);
    if (sdkId !== undefined) wireIdOf.delete(sdkId);
  };
  const receive = transport.onmessage;
  transport.onmessage = (message, extra) => {
    if (isJSONRPCResultResponse(message) || isJSONRPCErrorResponse(message)) {
      const wireId = typeof message.id === 'string' ? message.id : undefined;
      const sdkId = wireId === undefined ? undefined : sdkIdOf.get(wireId);
      if (wireId === undefined || sdkId === undefined) {
        logger.debug({ id: message.id }, 'dropped a JSON-RPC response to no pending server request');
        return;
      }
      forget(wireId);
      return receive?.({ ...message, id: sdkId }, extra);
    }
    return receive?.(message, extra);
  };
  return () => sdkIdOf.size;
}
