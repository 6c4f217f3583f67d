import { randomBytes } from 'node:crypto';
import type { NodeStreamableHTTPServerTransport } from '@modelcontextprotocol/node';
import {
  isJSONRPCErrorResponse,
  isJSONRPCRequest,
  isJSONRPCResultResponse,
  type JSONRPCMessage,
  type McpServer,
  type Transport,
} from '@modelcontextprotocol/server';
import type { Principal } from '../core/access.js';
import type { Logger } from '../core/log.js';

/** One 2025-11-25 Streamable HTTP session: its transport, its `McpServer` and the principal that opened it. */
export interface LegacySession {
  transport: NodeStreamableHTTPServerTransport;
  mcp: McpServer;
  /** The verified principal of the `initialize` request (`null` on servers without auth). */
  principal: Principal;
}

/**
 * The 2025-11-25 sessions of one HTTP server, each bound to the principal that opened it (MCP
 * "Security Best Practices › Session Hijacking": bind session ids to user information). A request
 * that names a session with another principal's credentials is treated exactly like one naming an
 * unknown session (HTTP 404), so a session's existence is not revealed.
 */
export class LegacySessions {
  private readonly sessions = new Map<string, LegacySession>();

  constructor(private readonly logger: Logger) {}

  /**
   * The session `sessionId` if it exists and was opened by `principal`; otherwise undefined (the
   * caller answers HTTP 404 in both cases). A mismatch is logged at debug level, without ids.
   */
  find(sessionId: string, principal: Principal): LegacySession | undefined {
    const session = this.sessions.get(sessionId);
    if (session && session.principal !== principal) {
      this.logger.debug({ principal }, 'request names a session of another principal: answered as unknown');
      return undefined;
    }
    return session;
  }

  add(sessionId: string, session: LegacySession): void {
    this.sessions.set(sessionId, session);
  }

  delete(sessionId: string): void {
    this.sessions.delete(sessionId);
  }

  /** Closes every session's `McpServer` (and with it its transport). */
  async closeAll(): Promise<void> {
    const all = [...this.sessions.values()];
    this.sessions.clear();
    await Promise.all(all.map(({ mcp }) => mcp.close().catch(() => undefined)));
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
