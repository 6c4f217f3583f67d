/**
 * Which failures are worth trying again: the classification behind `ctx.step`'s default retries
 * (see `StepOptions.transientRetries`) and the store's outage handling (`isStoreOutage`).
 *
 * A failure is **transient** when the same call may well succeed a moment later without anything
 * being changed: the other side was unreachable, too busy, locked or slow. The documented list
 * (`isTransientError`), checked on the error and its `cause` chain (8 deep, and the first of an
 * `AggregateError`'s `errors`):
 *
 * - an explicit mark wins: `TransientError` (or any error with `transient: true`) is transient,
 *   `NonRetryableError` (or `transient: false`) never is, whatever it wraps;
 * - the task store's `StoreUnavailableError`;
 * - network errors by system code: `ECONNRESET`, `ECONNREFUSED`, `ECONNABORTED`, `ETIMEDOUT`,
 *   `EPIPE`, `EAI_AGAIN`, `EHOSTUNREACH`, `ENETUNREACH`, `ENETDOWN`, `ENOTCONN`, and undici's
 *   `UND_ERR_SOCKET`, `UND_ERR_CONNECT_TIMEOUT`, `UND_ERR_HEADERS_TIMEOUT`, `UND_ERR_BODY_TIMEOUT`
 *   (fetch's `TypeError: fetch failed` carries them as `cause`);
 * - timeouts: an error named `TimeoutError` (`AbortSignal.timeout`);
 * - SQLite busy or locked: `SQLITE_BUSY*`, `SQLITE_LOCKED*` (another writer held the lock past the
 *   busy timeout);
 * - PostgreSQL SQLSTATEs of a retryable kind: class 08 (connection exception), `40001`
 *   (serialization failure), `40P01` (deadlock), `55P03` (lock not available), `57014` (statement
 *   timeout / query cancelled), `57P01`–`57P03` (server shutting down or starting), `53300` (too
 *   many connections);
 * - Redis: `LOADING`, `BUSY`, `TRYAGAIN`, `CLUSTERDOWN`, `MASTERDOWN` replies, ioredis's
 *   "Connection is closed", "Command timed out" and `MaxRetriesPerRequestError`;
 * - an HTTP answer meaning "later": `status` or `statusCode` 408, 425, 429, 502, 503 or 504.
 *
 * Everything else — a validation error, a refusal, a 4xx, a bug — is not retried by default: a
 * handler that knows better marks it (`throw new TransientError(…, { cause })`, or
 * `StepOptions.isTransient`).
 */

import { errorChain } from './errors.js';

/** An error a handler marks as worth retrying (`ctx.step` retries it like a connection reset). */
export class TransientError extends Error {
  readonly transient = true;
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = 'TransientError';
  }
}

/**
 * An error a handler marks as final: `ctx.step` records it at once, without the default retries,
 * even when its `cause` would be transient (e.g. a payment refused for good after a timeout).
 */
export class NonRetryableError extends Error {
  readonly transient = false;
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = 'NonRetryableError';
  }
}

const NETWORK_CODES = new Set([
  'ECONNRESET',
  'ECONNREFUSED',
  'ECONNABORTED',
  'ETIMEDOUT',
  'EPIPE',
  'EAI_AGAIN',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'ENETDOWN',
  'ENOTCONN',
  'UND_ERR_SOCKET',
  'UND_ERR_CONNECT_TIMEOUT',
  'UND_ERR_HEADERS_TIMEOUT',
  'UND_ERR_BODY_TIMEOUT',
]);
const PG_CODES = new Set(['40001', '40P01', '55P03', '57014', '57P01', '57P02', '57P03', '53300']);
const REDIS_REPLY = /^(LOADING|BUSY|TRYAGAIN|CLUSTERDOWN|MASTERDOWN)\b/;
const REDIS_CLIENT = /^(Connection is closed\.?|Command timed out|Stream isn't writeable)/;
const HTTP_LATER = new Set([408, 425, 429, 502, 503, 504]);

/**
 * The explicit mark on `error` or the first error of its `cause` chain that carries one: `true`
 * (`TransientError`, `transient: true`), `false` (`NonRetryableError`, `transient: false`), or
 * undefined when nothing is marked.
 */
export function transientMark(error: unknown): boolean | undefined {
  for (const e of errorChain(error)) if (typeof e.transient === 'boolean') return e.transient;
  return undefined;
}

/** True when `error` is transient by the documented list above (an explicit mark wins). */
export function isTransientError(error: unknown): boolean {
  const mark = transientMark(error);
  if (mark !== undefined) return mark;
  for (const e of errorChain(error)) {
    if (e.name === 'StoreUnavailableError' || e.name === 'TimeoutError' || e.name === 'MaxRetriesPerRequestError') return true;
    const code = e.code;
    if (typeof code === 'string') {
      if (NETWORK_CODES.has(code) || PG_CODES.has(code) || code.startsWith('08')) return true;
      if (code.startsWith('SQLITE_BUSY') || code.startsWith('SQLITE_LOCKED')) return true;
    }
    const status = typeof e.status === 'number' ? e.status : typeof e.statusCode === 'number' ? e.statusCode : undefined;
    if (status !== undefined && HTTP_LATER.has(status)) return true;
    const message = typeof e.message === 'string' ? e.message : '';
    if (REDIS_REPLY.test(message) || REDIS_CLIENT.test(message)) return true;
  }
  return false;
}
