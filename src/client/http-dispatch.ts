import { randomUUID } from 'node:crypto';
import { DispatchError, type RawClientDispatch } from '@modelcontextprotocol/ext-tasks/client';
import { STORE_UNAVAILABLE, systemCode } from './errors.js';
import { sseMessages } from './sse.js';

/** Whether `error` (a failed `fetch`) says the connection was never made, so the request was not sent. */
function neverSent(error: unknown): boolean {
  const code = systemCode(error);
  return code === 'ECONNREFUSED' || code === 'ENOTFOUND' || code === 'EAI_AGAIN';
}

/** Methods whose `Mcp-Name` header mirrors a params field (2026-07-28 Streamable HTTP "Standard Request Headers"; Tasks extension "Routing Headers"). */
const MCP_NAME_SOURCE: Record<string, 'name' | 'uri' | 'taskId'> = {
  'tools/call': 'name',
  'prompts/get': 'name',
  'resources/read': 'uri',
  'tasks/get': 'taskId',
  'tasks/update': 'taskId',
  'tasks/cancel': 'taskId',
};

/**
 * The `rawDispatch` the ext-tasks requester needs for 2026-07-28 servers, over Streamable HTTP.
 *
 * The SDK v2 `Client` refuses results with `resultType: "task"` (`UNSUPPORTED_RESULT_TYPE`), so it
 * cannot carry the extension's task wire shapes. On 2026-07-28 HTTP every request is its own
 * stateless exchange (no session, no shared id space with the SDK's connection), so this sends each
 * already-framed request as one POST with the standard headers (`MCP-Protocol-Version`,
 * `Mcp-Method`, `Mcp-Name` — Base64-sentinel encoded when not plain ASCII) and reads the JSON-RPC
 * response from a JSON or SSE body. Network failures and replies that are not a JSON-RPC response
 * (proxy pages, HTTP 404/5xx while a server restarts; not 401/403) throw a retryable `DispatchError`;
 * so does HTTP 503/429 from a busy server (`busy: true`, `retryAfterMs` from `Retry-After`), which
 * did nothing with the request. An HTTP 503 whose body is a JSON-RPC error marked retryable (an
 * mcp-tasks server whose task store is unavailable: -32010, `data.retryable`) is that error
 * (`kind: "error"`; see `unavailableRetryMs`), not a busy answer: such a request may have been acted
 * on, so only the caller knows whether it may be sent again.
 *
 * ext-tasks sends a request that failed with a retryable `DispatchError` once more, blindly. For a
 * `tools/call` that is safe only when the server declared `tools.idempotency` (SEP-3182: the call
 * carries an idempotency key, see `connectTaskClient`), so unless `options.resendCalls` says it did,
 * a `tools/call` whose failure came after the request may have reached the server (a reset
 * connection, a reply cut short or unreadable) fails with a non-retryable `DispatchError`: a
 * second call could start the work twice. A connection refused (nothing was sent) stays retryable.
 */
export function createHttpRawDispatch(
  url: string,
  options: { protocolVersion: string; headers?: Record<string, string>; resendCalls?: boolean },
): RawClientDispatch {
  return async (request, dispatchOptions) => {
    const message = request as { id?: string | number; method: string; params?: Record<string, unknown> };
    const id = message.id ?? `mcp-tasks-${randomUUID()}`;
    // Header names are case-insensitive: merge lowercased so a caller's `Mcp-Name` is not sent twice.
    const headers: Record<string, string> = {
      'content-type': 'application/json',
      accept: 'application/json, text/event-stream',
      'mcp-protocol-version': options.protocolVersion,
      'mcp-method': message.method,
    };
    for (const [key, value] of Object.entries({ ...options.headers, ...dispatchOptions?.context?.headers })) headers[key.toLowerCase()] = value;
    const source = MCP_NAME_SOURCE[message.method];
    const name = source ? message.params?.[source] : undefined;
    if (typeof name === 'string' && headers['mcp-name'] === undefined) headers['mcp-name'] = headerSafe(name);
    // Whether a failure of this request may be left to ext-tasks' blind resend (see above).
    const resendable = (error?: unknown) => message.method !== 'tools/call' || options.resendCalls === true || (error !== undefined && neverSent(error));
    let response: Response;
    try {
      response = await fetch(url, {
        method: 'POST',
        headers,
        body: JSON.stringify({ ...message, jsonrpc: '2.0', id }),
        ...(dispatchOptions?.signal && { signal: dispatchOptions.signal }),
      });
    } catch (error) {
      if (dispatchOptions?.signal?.aborted) throw error;
      throw new DispatchError(`POST ${url} failed: ${(error as Error).message}`, resendable(error), { cause: error });
    }
    if (response.status === 503 || response.status === 429) {
      const retryAfterMs = retryAfterOf(response.headers.get('retry-after'));
      const unavailable = await retryableErrorOf(response, retryAfterMs);
      if (unavailable) return { kind: 'error', error: unavailable as never };
      // Overloaded (or rate-limited): the server did nothing with the request. Retryable, after Retry-After.
      const error = Object.assign(new DispatchError(`${url} is busy (HTTP ${response.status})`, true), { busy: true });
      throw retryAfterMs === undefined ? error : Object.assign(error, { retryAfterMs });
    }
    let reply: Awaited<ReturnType<typeof readReply>>;
    try {
      reply = await readReply(response, id);
    } catch (error) {
      if (error instanceof DispatchError && error.retryable && !resendable()) throw new DispatchError(error.message, false, { cause: error });
      throw error;
    }
    if (reply.error) return { kind: 'error', error: reply.error as never };
    if (reply.result === undefined) throw new DispatchError(`HTTP ${response.status} from ${url} carried no JSON-RPC response`, resendable());
    return { kind: 'result', result: reply.result as never };
  };
}

/** `Retry-After` (delta-seconds or an HTTP date) in ms, or undefined when absent or unreadable. */
export function retryAfterOf(value: string | null | undefined): number | undefined {
  if (!value) return undefined;
  const seconds = Number(value);
  if (Number.isFinite(seconds) && seconds >= 0) return seconds * 1000;
  const at = Date.parse(value);
  return Number.isNaN(at) ? undefined : Math.max(0, at - Date.now());
}

/**
 * The JSON-RPC error of a 503/429 body when it is marked retryable (`data.retryable`, or -32010),
 * its `data.retryAfterMs` defaulting to the `Retry-After` header; else undefined (the body is
 * consumed either way: a busy server's JSON-RPC error, a proxy's page).
 */
async function retryableErrorOf(response: Response, retryAfterMs: number | undefined): Promise<Record<string, unknown> | undefined> {
  const text = await response.text().catch(() => '');
  let error: { code?: unknown; data?: unknown } | undefined;
  try {
    error = (JSON.parse(text) as { error?: { code?: unknown; data?: unknown } } | null)?.error;
  } catch {
    return undefined;
  }
  if (typeof error?.code !== 'number') return undefined;
  const data = (typeof error.data === 'object' && error.data !== null ? error.data : {}) as Record<string, unknown>;
  if (error.code !== STORE_UNAVAILABLE && data.retryable !== true) return undefined;
  return { ...error, data: { ...(retryAfterMs !== undefined && { retryAfterMs }), ...data, retryable: true } };
}

function headerSafe(value: string): string {
  return /^[\x20-\x7e]*$/.test(value) && value.trim() === value ? value : `=?base64?${Buffer.from(value, 'utf8').toString('base64')}?=`;
}

async function readReply(response: Response, id: string | number): Promise<{ result?: unknown; error?: unknown }> {
  const type = response.headers.get('content-type') ?? '';
  if (!type.includes('text/event-stream')) {
    const text = await response.text();
    try {
      return JSON.parse(text) as { result?: unknown; error?: unknown };
    } catch {
      // Not a JSON-RPC answer: a proxy, a load balancer or a server restarting (HTTP 404/502/503 pages).
      // Retryable: only the server's own JSON-RPC error says anything about the task.
      throw new DispatchError(`HTTP ${response.status}: ${text.replace(/\s+/g, ' ').slice(0, 200)}`, response.status !== 401 && response.status !== 403);
    }
  }
  for await (const message of sseMessages<{ id?: unknown; result?: unknown; error?: unknown }>(response)) {
    if (message.id === id && (message.result !== undefined || message.error !== undefined)) return message;
  }
  throw new DispatchError('The SSE stream ended without a response', true);
}
