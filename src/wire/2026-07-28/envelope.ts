import { CLIENT_CAPABILITIES_META_KEY, MissingRequiredClientCapabilityError } from '@modelcontextprotocol/server';

/** The extension identifier (2026-07-28 Tasks extension "Extension Identifier"). */
export const TASKS_EXTENSION = 'io.modelcontextprotocol/tasks';

/**
 * What a 2026-07-28 request's `_meta` envelope says, read once per request (`readEnvelope`) and
 * handed down to whatever serves it. 2026-07-28 has no session: each request carries its own
 * client capabilities (`io.modelcontextprotocol/clientCapabilities`). The envelope's validity
 * (protocol version, shape) was checked before, by whoever serves the connection
 * (`startHttpServer`'s strict handler and the SDK's classifier, `startStdioServer`'s check).
 */
export interface Envelope2026 {
  /** The `_meta` object as sent (the caller's trace context travels in it); undefined when absent or not an object. */
  meta?: Record<string, unknown>;
  /** The request's declared client capabilities; undefined when absent or not an object. */
  capabilities?: Record<string, unknown>;
  /** Whether those capabilities declare the Tasks extension (`extensions["io.modelcontextprotocol/tasks"]` is an object). */
  declaresTasks: boolean;
  /** `progressToken` of the `_meta` (MCP "Progress"), when a string or number. */
  progressToken?: string | number;
}

/** Reads a request's `_meta` (or the SDK's lifted `ctx.mcpReq.envelope`) into an `Envelope2026`; never throws. */
export function readEnvelope(meta: unknown): Envelope2026 {
  if (!isObject(meta)) return { declaresTasks: false };
  const caps = meta[CLIENT_CAPABILITIES_META_KEY];
  const capabilities = isObject(caps) ? caps : undefined;
  const extensions = capabilities?.extensions;
  const declared = isObject(extensions) ? extensions[TASKS_EXTENSION] : undefined;
  const token = meta.progressToken;
  return {
    meta,
    ...(capabilities && { capabilities }),
    declaresTasks: typeof declared === 'object' && declared !== null,
    ...((typeof token === 'string' || typeof token === 'number') && { progressToken: token }),
  };
}

/** Throws the -32021 `missingTasksCapability()` error unless `envelope` declares the Tasks extension. */
export function requireTasksExtension(envelope: Envelope2026): void {
  if (!envelope.declaresTasks) throw missingTasksCapability();
}

/**
 * The -32021 (Missing Required Client Capability) error for a client that did not declare the
 * Tasks extension, with `data.requiredCapabilities: { extensions: { "io.modelcontextprotocol/tasks": {} } }`.
 */
export function missingTasksCapability(): MissingRequiredClientCapabilityError {
  return new MissingRequiredClientCapabilityError({ requiredCapabilities: { extensions: { [TASKS_EXTENSION]: {} } } });
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}
