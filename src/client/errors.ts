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
 * so a follower should retry rather than report it. JSON-RPC errors (the server answered), HTTP
 * 401/403 and local programming errors are not transient.
 */
export function isTransient(error: unknown): boolean {
  if (error instanceof TransportError) return true;
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
 * Otherwise undefined. Looks through wrappers (`TransportError`, ext-tasks' `DispatchError`).
 */
export function busyRetryMs(error: unknown): number | undefined {
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
 * One line saying what went wrong talking to `url` and why, with the underlying cause (e.g.
 * `cannot reach http://127.0.0.1:9/mcp: connection refused (ECONNREFUSED)`). Server answers keep
 * their JSON-RPC code: `the server refused: Task not found (-32602)`.
 */
export function describeError(error: unknown, url: string): string {
  if (error instanceof TransportError) return error.message;
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

function systemCode(error: unknown): string | undefined {
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
