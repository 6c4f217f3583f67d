import { createHash, createHmac } from 'node:crypto';
import { InvalidArgumentError } from './errors.js';
import type { Json } from './json.js';

/**
 * Idempotent task creation (SEP-3182 "Request Idempotency", proposed 2026-08: an optional
 * `idempotencyKey` on `tools/call` and a `tools.idempotency` server capability): a `tools/call`
 * that carries a key returns the task the first call with that key created, as long as that task
 * is retained, instead of creating a second one. Keys are scoped to the principal; the same key with
 * other arguments is refused (`IdempotencyConflictError`, -32602).
 */

/**
 * The `_meta` key under which a client that cannot add a top-level param sends its idempotency key
 * (`params._meta["io.modelcontextprotocol/idempotencyKey"]`), the same value as `params.idempotencyKey`.
 */
export const IDEMPOTENCY_META_KEY = 'io.modelcontextprotocol/idempotencyKey';

/** Longest accepted idempotency key, in characters (UTF-16 code units). */
export const MAX_IDEMPOTENCY_KEY_LENGTH = 255;

/**
 * What a task created with an idempotency key stores with it (`TaskRecord.idempotency`): the `key`
 * as the client sent it, and `fingerprint`, a hash of the request it created the task for (the tool
 * name and its arguments, see `requestFingerprint`), against which a later call with the same key
 * is compared. Never the arguments themselves.
 */
export interface TaskIdempotency {
  key: string;
  fingerprint: string;
}

/**
 * `key` if it is a valid idempotency key: a string of 1–255 characters without control characters
 * (a UUID is recommended). Throws `InvalidArgumentError` (-32602) otherwise, naming `where` it came from.
 */
export function checkIdempotencyKey(key: unknown, where = 'idempotencyKey'): string {
  if (typeof key !== 'string' || key.length === 0 || key.length > MAX_IDEMPOTENCY_KEY_LENGTH)
    throw new InvalidArgumentError(`${where} must be a string of 1-${MAX_IDEMPOTENCY_KEY_LENGTH} characters (a UUID is recommended)`);
  if (/[\u0000-\u001f\u007f]/.test(key)) throw new InvalidArgumentError(`${where} must not contain control characters`);
  return key;
}

/**
 * The idempotency key of a `tools/call`'s `params` (`params.idempotencyKey`, or
 * `params._meta["io.modelcontextprotocol/idempotencyKey"]`), checked with `checkIdempotencyKey`;
 * undefined when it carries none. Throws `InvalidArgumentError` (-32602) for a malformed key, or
 * when both places carry different keys.
 */
export function idempotencyKeyOf(params: unknown): string | undefined {
  if (typeof params !== 'object' || params === null) return undefined;
  const given = (params as { idempotencyKey?: unknown }).idempotencyKey;
  const meta = (params as { _meta?: unknown })._meta;
  const inMeta = typeof meta === 'object' && meta !== null ? (meta as Record<string, unknown>)[IDEMPOTENCY_META_KEY] : undefined;
  const key = given === undefined ? undefined : checkIdempotencyKey(given);
  const metaKey = inMeta === undefined ? undefined : checkIdempotencyKey(inMeta, `_meta["${IDEMPOTENCY_META_KEY}"]`);
  if (key !== undefined && metaKey !== undefined && key !== metaKey)
    throw new InvalidArgumentError(`params.idempotencyKey and _meta["${IDEMPOTENCY_META_KEY}"] differ: send one key`);
  return key ?? metaKey;
}

/**
 * The index a backend keeps idempotency keys under: SHA-256 (hex) of the principal (`owner`, null
 * for the anonymous one) and the key, so one principal's key never finds another's task.
 */
export function idempotencyScope(owner: string | null, key: string): string {
  return createHash('sha256')
    .update(JSON.stringify([owner, key]))
    .digest('hex');
}

/**
 * The fingerprint of a task-creating request (see `TaskIdempotency`): SHA-256 (hex) of the canonical
 * JSON of `[tool, args]` — object keys sorted, so the same arguments in another key order match — or
 * an HMAC-SHA256 under `secret` when given (stores that seal sensitive arguments pass their key, so
 * the fingerprint reveals nothing a guess could confirm).
 */
export function requestFingerprint(tool: string, args: Json, secret?: Buffer): string {
  const text = canonicalJson([tool, args]);
  return (secret ? createHmac('sha256', secret) : createHash('sha256')).update(text).digest('hex');
}

/** JSON with every object's keys sorted (arrays keep their order). */
function canonicalJson(value: Json): string {
  if (Array.isArray(value)) return `[${value.map(canonicalJson).join(',')}]`;
  if (value !== null && typeof value === 'object')
    return `{${Object.keys(value)
      .sort()
      .filter((key) => value[key] !== undefined)
      .map((key) => `${JSON.stringify(key)}:${canonicalJson(value[key]!)}`)
      .join(',')}}`;
  return JSON.stringify(value);
}
