import { randomBytes } from 'node:crypto';

/**
 * Creates a new `taskId`: 128 random bits from the operating system's CSPRNG as 32 lowercase hex
 * characters — safe unquoted in shells and as CLI arguments (never starts with `-`), in HTTP headers
 * (`Mcp-Name`) and in URLs. The spec requires receiver-generated, unique string ids, and ids that
 * cannot be guessed where tasks are not bound to an authorization context (2025-11-25 "Security
 * Considerations › Task Isolation and Access Control").
 */
export function newTaskId(): string {
  return randomBytes(16).toString('hex');
}

/** A syntactic check for ids coming from the wire: 1–256 printable ASCII characters. */
export function isPlausibleTaskId(value: unknown): value is string {
  return typeof value === 'string' && value.length > 0 && value.length <= 256 && /^[\x21-\x7e]+$/.test(value);
}
