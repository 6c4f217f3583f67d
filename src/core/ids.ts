import { randomFillSync } from 'node:crypto';

/** Random bytes fetched 4 KiB at a time (256 ids per call into the CSPRNG), as Node's own `randomUUID` caches them. */
const pool = Buffer.alloc(4096);
let poolOffset = pool.length;

/**
 * Creates a new `taskId`: 128 random bits from the operating system's CSPRNG as 32 lowercase hex
 * characters — safe unquoted in shells and as CLI arguments (never starts with `-`), in HTTP headers
 * (`Mcp-Name`) and in URLs. The spec requires receiver-generated, unique string ids, and ids that
 * cannot be guessed where tasks are not bound to an authorization context (2025-11-25 "Security
 * Considerations › Task Isolation and Access Control").
 */
export function newTaskId(): string {
  if (poolOffset === pool.length) {
    randomFillSync(pool);
    poolOffset = 0;
  }
  const id = pool.toString('hex', poolOffset, poolOffset + 16);
  poolOffset += 16;
  return id;
}

/** A syntactic check for ids coming from the wire: 1–256 printable ASCII characters. */
export function isPlausibleTaskId(value: unknown): value is string {
  return typeof value === 'string' && value.length > 0 && value.length <= 256 && /^[\x21-\x7e]+$/.test(value);
}
