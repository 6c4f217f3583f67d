import rfdc from 'rfdc';

/** Any JSON value. Records, results and journal entries are stored as JSON. */
export type Json = null | boolean | number | string | Json[] | { [key: string]: Json };

/** A JSON object. */
export type JsonObject = { [key: string]: Json };

/** Deep copy through JSON; also rejects values JSON cannot hold (functions, cycles, BigInt). */
export function toJson<T = Json>(value: unknown): T {
  const text = JSON.stringify(value);
  return (text === undefined ? null : JSON.parse(text)) as T;
}

/** Byte length of the UTF-8 JSON encoding of `value`. */
export function jsonSize(value: unknown): number {
  return Buffer.byteLength(JSON.stringify(value) ?? 'null', 'utf8');
}

/**
 * Deep copy of a value that is already JSON (a stored task record, a journal value): plain objects
 * and arrays copied, scalars shared. Nothing is checked (use `toJson` for values from outside).
 * rfdc: about 6× faster than `structuredClone` on a task record, which the store copies on every write.
 */
export const copyJson: <T>(value: T) => T = rfdc({ proto: false, circles: false });
