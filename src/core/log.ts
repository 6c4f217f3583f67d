import { pino, stdSerializers, type DestinationStream, type Level, type Logger as PinoLogger } from 'pino';
import pretty from 'pino-pretty';
import { errorChain, StoreUnavailableError, STORE_UNAVAILABLE } from './errors.js';

/**
 * The structured logger every layer takes (a pino logger): one JSON object per line on stderr,
 * with `level`, `time` (ms since the epoch), `pid`, `hostname`, `msg` and the event's fields.
 * Fields that can carry client input are bounded by `createLogger` (see `MAX_LOGGED_STRING`).
 */
export type Logger = PinoLogger;

/** Log levels, most to least verbose; `silent` logs nothing. */
export const LOG_LEVELS = ['trace', 'debug', 'info', 'warn', 'error', 'fatal', 'silent'] as const;
export type LogLevel = Level | 'silent';

/** Longest string value written to the log, in characters; longer ones are cut and marked `…[+N chars]`. */
export const MAX_LOGGED_STRING = 200;
/** Longest stack trace written, in characters (stacks are logged for server faults only). */
const MAX_LOGGED_STACK = 4000;
/** Deepest nesting of a logged object; deeper values are replaced by `"[…]"`. */
const MAX_LOGGED_DEPTH = 4;

/** Options of `createLogger`. */
export interface LoggerOptions {
  /** Lowest level written. Default: `MCP_TASKS_LOG_LEVEL` from the environment, else `info`. */
  level?: LogLevel;
  /**
   * Human-readable lines (pino-pretty, colours when the destination is a terminal) instead of JSON.
   * Default: JSON. Either way every value is escaped: a newline in a field never starts a line.
   */
  pretty?: boolean;
  /** Where lines go. Default: stderr (stdout may carry the MCP stdio transport). */
  destination?: DestinationStream;
}

/**
 * Builds the logger. Every string field is cut to `MAX_LOGGED_STRING` characters and objects to
 * `MAX_LOGGED_DEPTH` levels before it is written, so a client-supplied value (a `taskId` of 100 kB,
 * a name holding `\n`) yields one bounded, escaped line. `err` fields are serialized with their
 * stack (cut to 4000 characters): pass `err` only for server faults (see `logRequestError`).
 * Throws `Error` for an unknown level.
 */
export function createLogger(options: LoggerOptions = {}): Logger {
  const level = options.level ?? defaultLogLevel();
  if (!(LOG_LEVELS as readonly string[]).includes(level)) throw new Error(`Unknown log level '${level}' (one of ${LOG_LEVELS.join(', ')})`);
  const destination =
    options.destination ??
    (options.pretty
      ? pretty({ destination: 2, colorize: process.stderr.isTTY === true, translateTime: 'SYS:HH:MM:ss.l', ignore: 'pid,hostname', singleLine: true })
      : pino.destination(2));
  return pino(
    {
      level,
      // pino applies `formatters.log` before the serializers: errors pass through to `serializeError`.
      formatters: { log: (object) => bound(object, 0) as Record<string, unknown> },
      serializers: { err: serializeError },
    },
    destination,
  );
}

/** A logger that writes nothing (for tests and embedders that log elsewhere). */
export const silentLogger: Logger = pino({ level: 'silent' });

/** `MCP_TASKS_LOG_LEVEL` when it names a level, else `info`. */
function defaultLogLevel(): LogLevel {
  const fromEnv = process.env.MCP_TASKS_LOG_LEVEL;
  return fromEnv && (LOG_LEVELS as readonly string[]).includes(fromEnv) ? (fromEnv as LogLevel) : 'info';
}

/**
 * Logs an error met while serving a request at the right level: a client error (a refused request:
 * a JSON-RPC error the client caused, e.g. -32600/-32601/-32602, or a header the SDK rejected) at
 * `debug`, with its message and code only; a request answered "retry later" because the task store
 * is unavailable (`isStoreOutageAnswer`: the store logs each outage once, when it starts and when it
 * ends) at `debug` too, without a stack; anything else is a server fault, logged at `error` with
 * its stack. `fields` adds context (method, taskId, …); all values are bounded as above.
 */
export function logRequestError(logger: Logger, error: unknown, fields: Record<string, unknown> = {}, message = 'request failed'): void {
  if (isStoreOutageAnswer(error)) {
    logger.debug({ ...fields, error: (error as Error).message }, 'request answered as retryable: the task store is unavailable');
    return;
  }
  if (isClientError(error)) {
    const code = (error as { code?: unknown }).code;
    logger.debug({ ...fields, error: (error as Error).message, ...(typeof code === 'number' && { code }) }, 'client request refused');
    return;
  }
  logger.error({ ...fields, err: error }, message);
}

/**
 * Whether `error` was caused by the client's request rather than by the server: JSON-RPC errors
 * with a code other than -32603 (Internal error), and the SDK's rejections of inbound requests.
 */
export function isClientError(error: unknown): boolean {
  if (!(error instanceof Error)) return false;
  const code = (error as { code?: unknown }).code;
  if (typeof code === 'number') return code !== -32603;
  return error.message.startsWith('Rejected inbound request');
}

/**
 * Whether `error` is a store outage as a request meets it: a `StoreUnavailableError`, one in its
 * `cause` chain (8 deep), or the JSON-RPC error it is answered with (code -32010).
 */
export function isStoreOutageAnswer(error: unknown): boolean {
  for (const e of errorChain(error)) if (e instanceof StoreUnavailableError || e.code === STORE_UNAVAILABLE) return true;
  return false;
}

function serializeError(error: unknown): unknown {
  if (!(error instanceof Error)) return bound(error, 1);
  const { type, message, stack, ...rest } = stdSerializers.err(error) as unknown as Record<string, unknown>;
  return {
    ...(bound(rest, 1) as object),
    type,
    message: cut(String(message), MAX_LOGGED_STRING),
    ...(typeof stack === 'string' && { stack: cut(stack, MAX_LOGGED_STACK) }),
  };
}

function cut(value: string, max: number): string {
  return value.length <= max ? value : `${value.slice(0, max)}…[+${value.length - max} chars]`;
}

/** A copy of `value` with strings cut and nesting limited (see `createLogger`). */
function bound(value: unknown, depth: number): unknown {
  if (typeof value === 'string') return cut(value, MAX_LOGGED_STRING);
  if (value === null || typeof value !== 'object') return value;
  // A top-level error field is left to the `err` serializer; nested ones keep their type and message.
  if (value instanceof Error) return depth <= 1 ? value : { type: value.name, message: cut(value.message, MAX_LOGGED_STRING) };
  if (depth >= MAX_LOGGED_DEPTH) return '[…]';
  if (Array.isArray(value)) {
    const items = value.slice(0, 20).map((item) => bound(item, depth + 1));
    if (value.length > 20) items.push(`…[+${value.length - 20} items]`);
    return items;
  }
  const out: Record<string, unknown> = {};
  let count = 0;
  for (const [key, item] of Object.entries(value)) {
    if (++count > 50) {
      out['…'] = 'more keys left out';
      break;
    }
    out[cut(key, MAX_LOGGED_STRING)] = bound(item, depth + 1);
  }
  return out;
}
