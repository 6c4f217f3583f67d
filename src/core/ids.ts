import { randomBytes } from 'node:crypto';

/**
 * Creates a new `taskId`: 128 random bits from the operating system's CSPRNG, base64url-encoded
 * (22 characters). The spec requires receiver-generated, unique string ids, and ids that cannot be
 * guessed where tasks are not bound to an authorization context (2025-11-25 "Security
 * Considerations › Task Isolation and Access Control").
 */
export function newTaskId(): string {
  return randomBytes(16).toString('base64url');
}

/** A syntactic check for ids coming from the wire: 1–256 printable ASCII characters. */
export function isPlausibleTaskId(value: unknown): value is string {
  return typeof value === 'string' && value.length > 0 && value.length <= 256 && /^[\x21-\x7e]+$/.test(value);
}
