/**
 * The SDK seam: every place where mcp-tasks reaches past the public API of SDK v2
 * (`@modelcontextprotocol/server`) to serve what that API cannot express. Nothing else in src/wire
 * wraps SDK methods or transport callbacks.
 *
 * This file can be deleted when the SDK offers server extensions (a way for an extension to answer
 * requests, shape results and contribute to `server/discover` itself); each function below says
 * which gap it fills:
 *
 * - `claimRequests` — SDK v2 validates every `tools/call` handler result as a `CallToolResult` in
 *   both eras, so a handler cannot return a task (`CreateTaskResult {task}` in 2025-11-25,
 *   `resultType: "task"` in 2026-07-28) or a task-specific error. It also lifts `inputResponses`
 *   out of every request's params (dropping non-object values silently), so a `tasks/update`
 *   handler cannot see that its `inputResponses` were malformed. Both are answered on the
 *   transport, before the SDK sees the request.
 * - `failToolCall` — SDK v2's `McpServer` answers anything a tool callback throws with an `isError`
 *   result (only -32042 escapes), so a tool cannot fail its call with a JSON-RPC error. A store
 *   outage met by a fallback tool or an ordinary call of a task tool must be the retryable -32010,
 *   not a result a model or client takes for the tool's answer: the transport `claimRequests`
 *   interposes on swaps the SDK's `isError` result for that error.
 * - `advertiseServedVersions` — SDK v2 answers `server/discover` with 2026-07-28-and-later revisions only.
 * - `serverInfoOf` — SDK v2 stamps `io.modelcontextprotocol/serverInfo` on 2026-07-28 results from
 *   the server's identity but offers no getter for it; the lean path stamps the same.
 */
import {
  isJSONRPCRequest,
  isJSONRPCResultResponse,
  SUPPORTED_PROTOCOL_VERSIONS,
  type JSONRPCMessage,
  type JSONRPCRequest,
  type McpServer,
  type MessageExtraInfo,
  type RequestId,
  type Result,
  type Server,
  type ServerContext,
  type Transport,
} from '@modelcontextprotocol/server';
import type { JsonObject } from '../core/json.js';
import { toErrorObject } from './errors.js';

/**
 * Decides whether mcp-tasks answers an incoming request itself, synchronously, from the message
 * alone: returns the function that answers it (given the request's `ClaimIo`; its value becomes the
 * JSON-RPC `result`, its rejection the JSON-RPC `error` via `toErrorObject`), or undefined to leave
 * the request to the SDK.
 */
export type Claim = (request: JSONRPCRequest, extra: MessageExtraInfo | undefined) => ((io: ClaimIo) => Promise<Result>) | undefined;

/** What a claimed request can use while it runs. */
export interface ClaimIo {
  /**
   * Aborts when the requestor cancels the request (`notifications/cancelled` naming its id, on the
   * same connection) or the connection closes.
   */
  signal: AbortSignal;
  /** Sends a notification related to the request (on its stream), e.g. `notifications/progress`. */
  notify(notification: { method: string; params?: Record<string, unknown> }): Promise<void>;
}

/**
 * Wraps `server.connect` so that, once the SDK has connected a transport, `onConnect(transport)`
 * runs and the transport's `onmessage` (as the SDK installed it) is interposed on: each incoming
 * request `claim` takes is answered with `transport.send` (related to the request's id, so
 * Streamable HTTP sends it on that request's stream) and never reaches the SDK; every other message
 * flows through the SDK untouched. A response that cannot be sent is passed to `onError`. The
 * SDK's responses to tool calls `failToolCall` marked go out as that JSON-RPC error instead.
 *
 * Claimed requests skip the SDK's per-request checks (the 2026-07-28 `_meta` envelope): whatever
 * serves the connection validates the envelope first (`startHttpServer`'s strict handler,
 * `startStdioServer`'s envelope check). Call before `server.connect`. Why it exists: see this
 * file's header.
 */
export function claimRequests(server: Server, claim: Claim, options: { onConnect?: (transport: Transport) => void; onError: (error: unknown) => void }): void {
  const connect = server.connect.bind(server);
  server.connect = async (transport: Transport) => {
    await connect(transport);
    options.onConnect?.(transport);
    interpose(server, transport, claim, options.onError);
  };
}

/** The tool calls a callback failed with `failToolCall`, per server: request id → the error to answer with. */
const failedToolCalls = new WeakMap<Server, Map<RequestId, unknown>>();

/**
 * Fails the tool call `ctx` of `server` (a server `claimRequests` was applied to) with the JSON-RPC
 * error of `error` (`toErrorObject`: -32010 with `data.retryable` for a store outage) instead of the
 * `isError` result SDK v2 makes of what a tool callback throws: notes the call, so that when the SDK
 * sends its result for that request id the transport sends the error in its place. Returns `error`,
 * for the callback to throw (`throw failToolCall(server, ctx, error)`). Why it exists: see this
 * file's header.
 */
export function failToolCall(server: Server, ctx: ServerContext, error: unknown): unknown {
  let calls = failedToolCalls.get(server);
  if (!calls) failedToolCalls.set(server, (calls = new Map()));
  calls.set(ctx.mcpReq.id, error);
  return error;
}

/** Answers the requests `claim` takes on `transport` itself, and sends failed tool calls as errors (see `claimRequests`). */
function interpose(server: Server, transport: Transport, claim: Claim, onError: (error: unknown) => void): void {
  const send = transport.send.bind(transport);
  transport.send = (message, options) => {
    const id = isJSONRPCResultResponse(message) ? message.id : undefined;
    const failed = id === undefined ? undefined : failedToolCalls.get(server);
    if (id !== undefined && failed?.has(id)) {
      const error = failed.get(id);
      failed.delete(id);
      return send({ jsonrpc: '2.0', id, error: toErrorObject(error) }, options);
    }
    return send(message, options);
  };
  const inner = transport.onmessage;
  const running = new Map<string | number, AbortController>();
  transport.onmessage = (message: JSONRPCMessage, extra?: MessageExtraInfo) => {
    const cancelled = message as { method?: unknown; params?: { requestId?: unknown } };
    if (cancelled.method === 'notifications/cancelled') running.get(cancelled.params?.requestId as string | number)?.abort();
    const answer = isJSONRPCRequest(message) ? claim(message, extra) : undefined;
    if (!answer) return inner?.(message, extra);
    const { id } = message as JSONRPCRequest; // only requests are claimed
    const controller = new AbortController();
    running.set(id, controller);
    answer({ signal: controller.signal, notify: (notification) => transport.send({ jsonrpc: '2.0', ...notification }, { relatedRequestId: id }) })
      .then(
        (result) => transport.send({ jsonrpc: '2.0', id, result }, { relatedRequestId: id }),
        (error) => transport.send({ jsonrpc: '2.0', id, error: toErrorObject(error) }, { relatedRequestId: id }),
      )
      .catch(onError)
      .finally(() => running.delete(id));
  };
  const onclose = transport.onclose;
  transport.onclose = () => {
    for (const controller of running.values()) controller.abort();
    onclose?.();
  };
}

/**
 * Makes `server/discover` (2026-07-28 "Server Discovery": `supportedVersions` are the protocol
 * versions the server supports) list the earlier revisions the same endpoint serves through
 * `initialize` — by default every version the SDK negotiates there (`SUPPORTED_PROTOCOL_VERSIONS`,
 * 2025-11-25 first) — after the 2026-07-28 ones, which stay first so clients that take the first
 * overlap still pick 2026-07-28.
 *
 * Why it is a seam: SDK v2 answers `server/discover` from `Server._ondiscover()` with envelope-era
 * revisions only, and offers no option to name others. This wraps that method on the one instance
 * (the SDK's handler calls it at request time); if a later SDK drops the method, its own answer is
 * left unchanged.
 */
export function advertiseServedVersions(mcp: McpServer, earlierVersions: readonly string[] = SUPPORTED_PROTOCOL_VERSIONS): void {
  const server = mcp.server as unknown as { _ondiscover?: () => { supportedVersions: string[] } & Record<string, unknown> };
  const discover = server._ondiscover?.bind(server);
  if (!discover) return;
  server._ondiscover = () => {
    const result = discover();
    return { ...result, supportedVersions: [...result.supportedVersions, ...earlierVersions.filter((v) => !result.supportedVersions.includes(v))] };
  };
}

/**
 * The `Implementation` (`{ name, version, … }`) an `McpServer` stamps as
 * `io.modelcontextprotocol/serverInfo` on its 2026-07-28 results, or undefined if this SDK no longer
 * exposes it (the lean path then leaves 2026 polls to the SDK).
 *
 * Why it is a seam: SDK v2 reads it through `Server._outboundServerInfo()` (the hook its encoder
 * calls) and has no public getter.
 */
export function serverInfoOf(mcp: McpServer): JsonObject | undefined {
  const server = mcp.server as unknown as { _outboundServerInfo?: () => unknown };
  const info = server._outboundServerInfo?.call(server);
  return typeof info === 'object' && info !== null && !Array.isArray(info) ? (info as JsonObject) : undefined;
}
