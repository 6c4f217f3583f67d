/**
 * Shape, depth and size limits for a parsed JSON-RPC request body, checked before anything
 * recursive (the SDK's zod validation, `JSON.stringify` in `toWebRequest`, the task store) sees it.
 *
 * Why: V8's `JSON.parse` accepts any nesting, but `JSON.stringify` and zod recurse and throw
 * `RangeError: Maximum call stack size exceeded` at a few thousand levels, which surfaced as HTTP
 * 500 / -32603. Object members are also expensive downstream (the SDK copies `_meta` and params
 * several times, several µs per member), so a 4 MiB body of keys would block the event loop for
 * seconds.
 */

/** Limits applied by `checkBody`. */
export interface BodyLimits {
  /**
   * Deepest allowed nesting, counted in containers (objects and arrays) from the top of the body:
   * `{}` and `[]` have depth 1, `{"a":{"b":[1]}}` depth 3, scalars add nothing. A JSON-RPC request uses
   * 2 levels before its `params` members (message, `params`), a batch one more. Default 64.
   */
  maxDepth: number;
  /**
   * Most messages in a batch array. MCP dropped JSON-RPC batching in 2025-06-18 (so neither
   * 2025-11-25 nor 2026-07-28 has it); the SDK's session transport still accepts batches of up to
   * 100 messages, hence the default 100.
   */
  maxBatchLength: number;
  /**
   * Most object members (keys) in the whole body, summed over all objects at any depth. Default
   * 100,000: room for a large legitimate argument (thousands of rows), while the SDK's per-member
   * work (a few µs each) stays under a second per request.
   */
  maxKeys: number;
}

/** The defaults of `BodyLimits`. */
export const DEFAULT_BODY_LIMITS: Readonly<BodyLimits> = Object.freeze({ maxDepth: 64, maxBatchLength: 100, maxKeys: 100_000 });

/** Why a body was refused: answer it with HTTP `status` and the JSON-RPC error `{ code, message }` for `id`. */
export interface BodyRejection {
  /** HTTP status: always 400 (Bad Request). */
  status: 400;
  /** JSON-RPC 2.0 error code: -32600 (Invalid Request) or -32602 (Invalid params), see `checkBody`. */
  code: -32600 | -32602;
  message: string;
  /** The request's `id` when it can be read safely (top-level string or number `id` of a single request), else `null`. */
  id: string | number | null;
}

/**
 * Checks a parsed JSON-RPC body (the value `JSON.parse` returned for a POST) against `limits`
 * (missing fields take `DEFAULT_BODY_LIMITS`). Returns `undefined` when the body may be handed on,
 * or the rejection to answer with. The walk is iterative (an explicit stack, no recursion), visits
 * each value at most once and stops at the first exceeded limit, so it is safe on any input
 * `JSON.parse` accepted.
 *
 * Shapes refused, all with HTTP 400 (JSON-RPC 2.0 §4 "Request object", §5.1 "Error object", §6
 * "Batch"; MCP "Base protocol › Messages" for 2025-11-25 and 2026-07-28):
 * - a top-level value that is not an object or an array (number, string, boolean, `null`) → -32600;
 * - an empty batch, or a batch with more than `maxBatchLength` entries → -32600 (entries themselves
 *   are left to the SDK, which answers invalid ones with 4xx);
 * - nesting deeper than `maxDepth` containers, or more than `maxKeys` object members in total.
 *
 * Error-code rule for the last two: when the body is a single request or notification with a
 * well-formed envelope (`jsonrpc` "2.0", a string `method`, an `id` that is absent, a string or a
 * number) and the limit is crossed inside its `params`, the Request object itself is valid and only
 * its parameters are unacceptable → -32602 (Invalid params). Everything else (a batch, a malformed
 * envelope, a limit crossed in `id`, `result`, `error` or any other top-level member) → -32600
 * (Invalid Request). Members outside `params` are walked first, so the code does not depend on key
 * order.
 *
 * `id` in the rejection is the top-level `id` when the body is a single object with a string
 * `method` and a string or number `id` (the same rule as the SDK's `echoableRequestId`); otherwise
 * (batches, notifications, posted responses, unreadable ids) `null`, as JSON-RPC 2.0 §5 asks.
 */
export function checkBody(body: unknown, limits: Partial<BodyLimits> = {}): BodyRejection | undefined {
  const maxDepth = limits.maxDepth ?? DEFAULT_BODY_LIMITS.maxDepth;
  const maxBatchLength = limits.maxBatchLength ?? DEFAULT_BODY_LIMITS.maxBatchLength;
  const maxKeys = limits.maxKeys ?? DEFAULT_BODY_LIMITS.maxKeys;
  const invalidRequest = (message: string, id: string | number | null = null): BodyRejection => ({
    status: 400,
    code: -32600,
    message: `Invalid Request: ${message}`,
    id,
  });

  if (typeof body !== 'object' || body === null) return invalidRequest('a JSON-RPC message must be an object (or a batch array)');
  if (Array.isArray(body)) {
    if (body.length === 0) return invalidRequest('empty batch');
    if (body.length > maxBatchLength) return invalidRequest(`batch of ${body.length} messages exceeds ${maxBatchLength}`);
    const exceeded = walk([body], 1, maxDepth, maxKeys, { keys: 0 });
    return exceeded === undefined ? undefined : invalidRequest(exceeded);
  }

  const message = body as Record<string, unknown>;
  const hasMethod = typeof message.method === 'string';
  const id = hasMethod && (typeof message.id === 'string' || typeof message.id === 'number') ? message.id : null;
  // The message object is depth 1, its members depth 2: first every member but params, then params.
  const keys = Object.keys(message);
  const counter = { keys: keys.length };
  if (counter.keys > maxKeys) return invalidRequest(`more than ${maxKeys} object members`, id);
  const inEnvelope = walk(
    keys.filter((key) => key !== 'params').map((key) => message[key]),
    2,
    maxDepth,
    maxKeys,
    counter,
  );
  if (inEnvelope) return invalidRequest(inEnvelope, id);
  const inParams = walk([message.params], 2, maxDepth, maxKeys, counter);
  if (!inParams) return undefined;
  const validEnvelope = hasMethod && message.jsonrpc === '2.0' && (message.id === undefined || id !== null);
  if (!validEnvelope) return invalidRequest(inParams, id);
  return { status: 400, code: -32602, message: `Invalid params: ${inParams}`, id };
}

/**
 * Iterative depth-first walk of `roots`, values at depth `rootDepth` (a container at depth `d` has
 * its children at `d + 1`; scalars have no depth). Adds every object member to `counter.keys`.
 * Returns a description of the first exceeded limit, or `undefined`. Uses an explicit stack of
 * containers (two parallel arrays), so neither deep nor wide input can overflow the call stack.
 */
function walk(roots: unknown[], rootDepth: number, maxDepth: number, maxKeys: number, counter: { keys: number }): string | undefined {
  const tooDeep = `nesting deeper than ${maxDepth} levels`;
  const values: object[] = [];
  const depths: number[] = [];
  for (const root of roots) {
    if (typeof root !== 'object' || root === null) continue;
    if (rootDepth > maxDepth) return tooDeep;
    values.push(root);
    depths.push(rootDepth);
  }
  while (values.length > 0) {
    const value = values.pop()!;
    const childDepth = depths.pop()! + 1;
    const children = Array.isArray(value) ? value : Object.values(value);
    if (!Array.isArray(value)) {
      counter.keys += children.length;
      if (counter.keys > maxKeys) return `more than ${maxKeys} object members`;
    }
    for (const child of children) {
      if (typeof child !== 'object' || child === null) continue;
      if (childDepth > maxDepth) return tooDeep;
      values.push(child);
      depths.push(childDepth);
    }
  }
  return undefined;
}
