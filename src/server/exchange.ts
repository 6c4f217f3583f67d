import type { AuthInfo, HandleRequestOptions } from '@modelcontextprotocol/server';

/**
 * One HTTP request to the MCP endpoint as `McpHttpHandler` sees it, whatever the host: a Node
 * `IncomingMessage`/`ServerResponse` pair (`nodeExchange`) or a web-standard `Request`
 * (`webExchange`). The handler decides on an `Outcome` from it; the host's adapter carries the
 * outcome out. Everything between (checks, sessions, the fast path, the SDK's route) is written
 * once, in `McpHttpHandler`.
 */
export interface Exchange {
  /** The HTTP method, upper case. */
  readonly method: string;
  /** A request header by its lower-case name; repeated headers joined with ", " (as web `Headers.get` does). */
  header(name: string): string | undefined;
  /** The caller's verified identity: set by the host app's authentication, or by the handler's own `auth`. */
  authInfo: AuthInfo | undefined;
  /**
   * The request body: `{ parsed }` when the host app already parsed it (Express `express.json()`,
   * Fastify, Hono's `parsedBody`), else `{ text }` read from the request, or `'too-large'` past
   * `limit` bytes (nothing more is read then).
   */
  readBody(limit: number): Promise<{ parsed: unknown } | { text: string } | 'too-large'>;
  /** Aborts when the client goes away before the response has ended (ends a throttled poll's wait). */
  readonly signal: AbortSignal;
  /** Whether the client has gone already (a response's close would not be reported again). */
  gone(): boolean;
  /** Calls `listener` once, when the response has ended or the client has gone. */
  onClose(listener: () => void): void;
}

/** What `McpHttpHandler.fetch` takes besides the request (the names the SDK's `createMcpHandler(...).fetch` uses). */
export interface McpFetchOptions {
  /** The caller's verified identity, from the host app's authentication (ignored when the handler has its own `auth`). */
  authInfo?: AuthInfo;
  /** The JSON body, when the host app parsed it already (Hono's `c.get('parsedBody')`); else it is read from the request. */
  parsedBody?: unknown;
}

/** A web-standard MCP handler: the SDK's `createMcpHandler(...)`, a session's transport, or anything shaped like them. */
export interface FetchTarget {
  fetch(request: Request, options?: HandleRequestOptions): Promise<Response>;
}

/** What the handler decided; the host's adapter sends it. */
export type Outcome =
  /** A JSON response (`content-type: application/json`), `body` serialized with `JSON.stringify`. */
  | { kind: 'json'; status: number; body: unknown; headers?: Record<string, string> }
  /**
   * The SDK's turn: `target` serves the request (given the parsed body and the `authInfo`), then
   * `onResponse` is told its status before the response is sent.
   */
  | { kind: 'sdk'; target: FetchTarget; parsedBody: unknown; onResponse?: (status: number) => void }
  /** A response built already (an SSE stream of a task subscription). */
  | { kind: 'response'; response: Response };

/** A JSON outcome. */
export function json(status: number, body: unknown, headers?: Record<string, string>): Outcome {
  return headers ? { kind: 'json', status, body, headers } : { kind: 'json', status, body };
}

/** A JSON-RPC error outcome (`id` null unless given) with `status` and any further `headers`. */
export function rpcError(
  status: number,
  code: number,
  message: string,
  options: { id?: string | number | null; headers?: Record<string, string> } = {},
): Outcome {
  return json(status, { jsonrpc: '2.0', error: { code, message }, id: options.id ?? null }, options.headers);
}

/** The target of an SDK outcome, telling `onResponse` the status it answered (500 when it threw). */
export function reportingTarget(outcome: Extract<Outcome, { kind: 'sdk' }>): FetchTarget {
  const { target, onResponse } = outcome;
  if (!onResponse) return target;
  return {
    async fetch(request, options) {
      let status = 500;
      try {
        const response = await target.fetch(request, options);
        status = response.status;
        return response;
      } finally {
        onResponse(status);
      }
    },
  };
}
