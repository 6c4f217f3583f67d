import { randomBytes } from 'node:crypto';
import {
  isJSONRPCErrorResponse,
  isJSONRPCRequest,
  isJSONRPCResultResponse,
  type JSONRPCMessage,
  type McpServer,
  type Transport,
  type WebStandardStreamableHTTPServerTransport,
} from '@modelcontextprotocol/server';
import type { FetchTarget } from './exchange.js';
import type { Principal } from '../core/access.js';
import type { Logger } from '../core/log.js';
import { InvalidArgumentError } from '../core/errors.js';
import { Counts } from '../core/counts.js';

/** One 2025-11-25 Streamable HTTP session: its transport, its `McpServer` and the principal that opened it. */
export interface Session2025Entry {
  transport: WebStandardStreamableHTTPServerTransport;
  /** The transport as the handler's SDK target (`transport.handleRequest`). */
  target: FetchTarget;
  mcp: McpServer;
  /** The verified principal of the `initialize` request (`null` on servers without auth). */
  principal: Principal;
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
}

/** Why a session was closed by the server (log field `reason`). */
type CloseReason = 'idle' | 'principal-cap' | 'total-cap';

interface Entry extends Session2025Entry {
  sessionId: string;
  /** Requests and streams of this session still open. */
  open: number;
  /** When the last open request or stream ended (ms since the epoch). */
  lastActive: number;
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
 * names it), so both are a walk from the front.
 */
export class Sessions2025 {
  private readonly sessions = new Map<string, Entry>();
  private readonly perPrincipal = new Counts<Principal>();
  /** Initializes under way (room reserved, session not added yet), per principal and in all (`total`). */
  private readonly reserved = new Counts<Principal>();
  private readonly idleTimeoutMs: number;
  private readonly maxPerPrincipal: number;
  private readonly max: number;
  private readonly sweeper?: NodeJS.Timeout;

  constructor(
    private readonly logger: Logger,
    limits: SessionLimits = {},
    private readonly now: () => number = Date.now,
  ) {
    this.idleTimeoutMs = limits.idleTimeoutMs ?? 30 * 60_000;
    this.maxPerPrincipal = limits.maxPerPrincipal ?? 1_000;
    this.max = limits.max ?? 10_000;
    if (!Number.isFinite(this.idleTimeoutMs) || this.idleTimeoutMs < 0)
      throw new InvalidArgumentError('sessions.idleTimeoutMs must be a non-negative number of ms');
    for (const [name, value] of Object.entries({ maxPerPrincipal: this.maxPerPrincipal, max: this.max })) {
      if (!Number.isInteger(value) || value < 1) throw new InvalidArgumentError(`sessions.${name} must be a positive integer`);
    }
    if (this.idleTimeoutMs > 0) {
      this.sweeper = setInterval(() => this.sweep(), Math.max(10, Math.min(60_000, Math.floor(this.idleTimeoutMs / 4))));
      this.sweeper.unref();
    }
  }

  /**
   * The session `sessionId` if it exists and was opened by `principal`; otherwise undefined (the
   * caller answers HTTP 404 in both cases). A mismatch is logged at debug level, without ids.
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

  add(sessionId: string, session: Session2025Entry): void {
    this.sessions.set(sessionId, { ...session, sessionId, open: 0, lastActive: this.now() });
    this.perPrincipal.add(session.principal);
  }

  delete(sessionId: string): void {
    const entry = this.sessions.get(sessionId);
    if (!entry) return;
    this.sessions.delete(sessionId);
    this.perPrincipal.remove(entry.principal);
  }

  /** Sessions open now. */
  get size(): number {
    return this.sessions.size;
  }

  /** Closes every session's `McpServer` (and with it its transport). */
  async closeAll(): Promise<void> {
    if (this.sweeper) clearInterval(this.sweeper);
    const all = [...this.sessions.values()];
    this.sessions.clear();
    this.perPrincipal.clear();
    await Promise.all(all.map(({ mcp }) => mcp.close().catch(() => undefined)));
  }

  /** Closes sessions with nothing open for `idleTimeoutMs`. */
  private sweep(): void {
    const before = this.now() - this.idleTimeoutMs;
    for (const entry of [...this.sessions.values()]) if (entry.open === 0 && entry.lastActive <= before) this.close(entry, 'idle');
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
    entry.mcp.close().catch(() => undefined);
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
 * Streamable HTTP transport.
 */
export function hardenServerRequestIds(transport: Transport, logger: Logger): void {
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
}
