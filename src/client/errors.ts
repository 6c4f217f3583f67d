import { errorChain, STORE_UNAVAILABLE } from '../core/errors.js';
import { JsonRpcResponseError } from '@modelcontextprotocol/ext-tasks/client';
import { ProtocolError, SdkError, SdkErrorCode } from '@modelcontextprotocol/client';

/**
 * A failure to talk to the server, as opposed to an answer from it: nothing reached the server or
 * nothing came back (connection refused/reset, DNS, timeouts, a dropped stream, HTTP 5xx/429/404 of
 * a lost session). While following a task these are retried; they are never a task's outcome.
 */
export class TransportError extends Error {
  constructor(
    message: string,
    /** The endpoint URL the request went to. */
    readonly url: string,
    options?: ErrorOptions,
  ) {
    super(message, options);
    this.name = 'TransportError';
  }
}

export { STORE_UNAVAILABLE };

/** A JSON-RPC error the server answered with (`code` as on the wire, e.g. -32602). Not retried. */
export function jsonRpcCode(error: unknown): number | undefined {
  if (error instanceof JsonRpcResponseError) return error.code;
  if (error instanceof ProtocolError) return error.code;
  const code = (error as { code?: unknown } | null)?.code;
  return typeof code === 'number' && Number.isInteger(code) && code < 0 ? code : undefined;
}

const TRANSIENT_SDK_CODES = new Set<string>([
  SdkErrorCode.ConnectionClosed,
  SdkErrorCode.RequestTimeout,
  SdkErrorCode.SendFailed,
  SdkErrorCode.NotConnected,
  SdkErrorCode.EraNegotiationFailed,
  SdkErrorCode.ClientHttpFailedToOpenStream,
]);

/**
 * True when `error` means the server could not be reached or did not answer (see `TransportError`),
 * or answered "temporarily unavailable, retry later" (`unavailableRetryMs`), so a follower should
 * retry rather than report it. Other JSON-RPC errors (the server answered), HTTP 401/403 and local
 * programming errors are not transient.
 */
export function isTransient(error: unknown): boolean {
  if (error instanceof TransportError) return true;
  if (unavailableRetryMs(error) !== undefined) return true;
  if (error instanceof JsonRpcResponseError || error instanceof ProtocolError) return false;
  // ext-tasks wraps SDK failures in a DispatchError (retryable or not): look at what it wraps.
  for (let e = error as { cause?: unknown } | undefined, depth = 0; e && depth < 8; depth++, e = e.cause as typeof e) {
    if (e instanceof SdkError) {
      const status = httpStatus(e);
      if (status !== undefined) return status >= 500 || status === 429 || status === 404 || status === 408;
      if (TRANSIENT_SDK_CODES.has(e.code)) return true;
    }
    if (e instanceof JsonRpcResponseError || e instanceof ProtocolError) return false;
    if (systemCode(e) !== undefined || (e instanceof TypeError && /fetch failed/i.test(e.message))) return true;
  }
  const retryable = (error as { retryable?: unknown } | null)?.retryable;
  if (retryable === true) return true;
  return /fetch failed|network|socket|ECONN|other side closed/i.test(String((error as Error)?.message));
}

/**
 * When `error` is a busy server's answer (HTTP 503 or 429: it did nothing with the request, so the
 * request may be sent again), the delay in ms before trying again: its `Retry-After`, else 1000.
 * Otherwise undefined — also for a 503 that says the server's task store is unavailable
 * (`unavailableRetryMs`): such a request may have been acted on, see there. Looks through wrappers
 * (`TransportError`, ext-tasks' `DispatchError`).
 */
export function busyRetryMs(error: unknown): number | undefined {
  if (unavailableRetryMs(error) !== undefined) return undefined;
  for (let e = error as { cause?: unknown } | undefined, depth = 0; e && depth < 8; depth++, e = e.cause as typeof e) {
    if (e instanceof SdkError) {
      const status = httpStatus(e);
      if (status === 503 || status === 429) return 1000;
    }
    // `createHttpRawDispatch`'s busy error, with the `Retry-After` it read.
    const { busy, retryAfterMs } = e as { busy?: unknown; retryAfterMs?: unknown };
    if (busy === true) return typeof retryAfterMs === 'number' ? retryAfterMs : 1000;
  }
  return undefined;
}

/**
 * When `error` is a server's "temporarily unavailable, retry later" answer, the delay in ms before
 * trying again; otherwise undefined. That answer is a JSON-RPC error with `data.retryable === true`
 * or the code -32010 (`STORE_UNAVAILABLE`: the server's task store cannot be reached), whether it
 * came as a JSON response, in an SSE stream or as the body of an HTTP 503; the delay is its
 * `data.retryAfterMs`, else 1000. Looks through wrappers (ext-tasks' `DispatchError`, `cause`s).
 *
 * Reads, answers (`tasks/update`: a stored answer is kept, first write wins), cancellation and
 * result retrieval may be sent again as they are. A request that creates a task may not: the
 * server may have stored the task before the store failed, and a second call would create another.
 */
export function unavailableRetryMs(error: unknown): number | undefined {
  return unavailableAnswer(error)?.retryAfterMs;
}

/** The retryable JSON-RPC error behind `error` (see `unavailableRetryMs`), with its retry delay in ms. */
function unavailableAnswer(error: unknown): { code: number; message: string; retryAfterMs: number } | undefined {
  for (const e of errorChain(error)) {
    const found = retryableRpcError(e);
    if (found) return found;
    // An HTTP 503 the SDK transport refused, with the JSON-RPC error as its body (mcp-tasks' lean path).
    if (e instanceof SdkError && httpStatus(e) === 503) {
      const text = (e.data as { text?: unknown } | undefined)?.text;
      if (typeof text === 'string' && text.includes('"error"')) {
        try {
          const inBody = retryableRpcError((JSON.parse(text) as { error?: unknown } | null)?.error);
          if (inBody) return inBody;
        } catch {
          /* not JSON: a busy proxy's page */
        }
      }
    }
  }
  return undefined;
}

/** A JSON-RPC error object (or error) marked retryable or coded -32010, with its retry delay (ms); else undefined. */
function retryableRpcError(value: unknown): { code: number; message: string; retryAfterMs: number } | undefined {
  if (typeof value !== 'object' || value === null) return undefined;
  const { code, message, data } = value as { code?: unknown; message?: unknown; data?: { retryable?: unknown; retryAfterMs?: unknown } | null };
  if (typeof code !== 'number') return undefined; // JSON-RPC errors only (SDK errors have string codes)
  if (code !== STORE_UNAVAILABLE && data?.retryable !== true) return undefined;
  const after = data?.retryAfterMs;
  return {
    code,
    message: typeof message === 'string' ? message : 'temporarily unavailable',
    retryAfterMs: typeof after === 'number' && Number.isFinite(after) && after >= 0 ? after : 1000,
  };
}

/**
 * One line saying what went wrong talking to `url` and why, with the underlying cause (e.g.
 * `cannot reach http://127.0.0.1:9/mcp: connection refused (ECONNREFUSED)`). Server answers keep
 * their JSON-RPC code: `the server refused: Task not found (-32602)`.
 */
export function describeError(error: unknown, url: string): string {
  if (error instanceof TransportError) return error.message;
  const unavailable = unavailableAnswer(error);
  if (unavailable)
    return unavailable.code === STORE_UNAVAILABLE
      ? `${url} is temporarily unavailable: its task store cannot be reached (JSON-RPC ${unavailable.code})`
      : `${url} is temporarily unavailable: ${trim(unavailable.message)} (JSON-RPC ${unavailable.code})`;
  const rpc = jsonRpcCode(error);
  if (rpc !== undefined && !(error instanceof SdkError)) return `${(error as Error).message} (JSON-RPC ${rpc})`;
  const status = error instanceof SdkError ? httpStatus(error) : undefined;
  if (status === 404) return `${url} answered HTTP 404: is this the MCP endpoint (e.g. http://host:port/mcp)?`;
  if (status === 503 || status === 429) return `${url} is busy (HTTP ${status}): it asked to be retried later`;
  if (status === 401 || status === 403) return `${url} refused access (HTTP ${status}): pass --token or -H 'Authorization: …'`;
  if (status !== undefined) return `${url} answered HTTP ${status}${error instanceof Error ? `: ${trim(error.message.replace(/\s*\(.*\)\s*$/, ''))}` : ''}`;
  const code = systemCode(error);
  if (code) return `cannot reach ${url}: ${SYSTEM_CODES[code] ?? code} (${code})`;
  if (error instanceof SdkError && error.code === SdkErrorCode.RequestTimeout) return `${url} did not answer in time`;
  const message = error instanceof Error ? error.message : String(error);
  const cause = innermostMessage(error);
  const tls = /wrong version number|EPROTO|ssl3_get_record/i.test(`${message} ${cause ?? ''}`);
  if (tls) return `${url}: TLS handshake failed — is the server plain http:// rather than https://?`;
  return `${url}: ${trim(message)}${cause && !message.includes(cause) ? ` (${trim(cause)})` : ''}`;
}

/** Checks a user-given endpoint URL: absolute http(s). Throws a message that says what to type. */
export function checkEndpointUrl(url: string): string {
  let parsed: URL | undefined;
  try {
    parsed = new URL(url);
  } catch {
    /* below */
  }
  if (parsed && parsed.protocol !== 'http:' && parsed.protocol !== 'https:' && /^[a-z][a-z0-9+.-]*:\/\//i.test(url)) {
    throw new Error(`'${url}' is not an MCP endpoint this client can reach: only http:// and https:// (Streamable HTTP) are supported`);
  }
  if (!parsed || (parsed.protocol !== 'http:' && parsed.protocol !== 'https:')) {
    throw new Error(`'${url}' is not an http(s) URL of an MCP endpoint; did you mean http://${url.replace(/^\/+/, '')}?`);
  }
  return url;
}

const SYSTEM_CODES: Record<string, string> = {
  ECONNREFUSED: 'connection refused (is the server running on that port?)',
  ECONNRESET: 'connection reset',
  ENOTFOUND: 'unknown host',
  EAI_AGAIN: 'host name lookup failed',
  ETIMEDOUT: 'connection timed out',
  EHOSTUNREACH: 'host unreachable',
  ENETUNREACH: 'network unreachable',
  EPIPE: 'connection closed',
  UND_ERR_SOCKET: 'connection closed by the server',
  UND_ERR_CONNECT_TIMEOUT: 'connection timed out',
  UND_ERR_HEADERS_TIMEOUT: 'no answer in time',
};

/**
 * The system error code behind `error` (`ECONNREFUSED`, `UND_ERR_SOCKET`, …): its own, or the first
 * in its `cause` chain or an `AggregateError`'s first error (8 deep); undefined when none.
 */
export function systemCode(error: unknown): string | undefined {
  for (let e = error as { code?: unknown; cause?: unknown; errors?: unknown[] } | undefined, depth = 0; e && depth < 8; depth++) {
    if (typeof e.code === 'string' && /^(E[A-Z]+|UND_ERR_[A-Z_]+)$/.test(e.code)) return e.code;
    if (Array.isArray(e.errors) && e.errors.length > 0) {
      const inner = systemCode(e.errors[0]);
      if (inner) return inner;
    }
    e = e.cause as typeof e;
  }
  return undefined;
}

function httpStatus(error: SdkError): number | undefined {
  const status = (error.data as { status?: unknown } | undefined)?.status;
  return typeof status === 'number' ? status : undefined;
}

function innermostMessage(error: unknown): string | undefined {
  let last: string | undefined;
  for (let e = (error as { cause?: unknown })?.cause, depth = 0; e && depth < 8; depth++) {
    if (e instanceof Error) last = e.message;
    e = (e as { cause?: unknown }).cause;
  }
  return last;
}

function trim(text: string): string {
  const line = text.replace(/\s+/g, ' ').trim();
  return line.length > 200 ? `${line.slice(0, 199)}…` : line;
}
