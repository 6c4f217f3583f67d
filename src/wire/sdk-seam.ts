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
 * - `advertiseServedVersions` — SDK v2 answers `server/discover` with modern revisions only.
 */
import {
  isJSONRPCRequest,
  SUPPORTED_PROTOCOL_VERSIONS,
  type JSONRPCMessage,
  type JSONRPCRequest,
  type McpServer,
  type MessageExtraInfo,
  type Result,
  type Server,
  type Transport,
} from '@modelcontextprotocol/server';
import { toErrorObject } from './errors.js';

/**
 * Decides whether mcp-tasks answers an incoming request itself: returns the pending answer (its
 * value becomes the JSON-RPC `result`, its rejection the JSON-RPC `error` via `toErrorObject`), or
 * undefined to leave the request to the SDK. It must decide synchronously, from the message alone.
 */
export type Claim = (request: JSONRPCRequest, extra?: MessageExtraInfo) => Promise<Result> | undefined;

/**
 * Wraps `server.connect` so that, once the SDK has connected a transport, `onConnect(transport)`
 * runs and the transport's `onmessage` (as the SDK installed it) is interposed on: each incoming
 * request `claim` takes is answered with `transport.send` (related to the request's id, so
 * Streamable HTTP sends it on that request's stream) and never reaches the SDK; every other message
 * flows through the SDK untouched. A response that cannot be sent is passed to `onError`.
 *
 * Call before `server.connect`. Why it exists: see this file's header.
 */
export function claimRequests(server: Server, claim: Claim, options: { onConnect?: (transport: Transport) => void; onError: (error: unknown) => void }): void {
  const connect = server.connect.bind(server);
  server.connect = async (transport: Transport) => {
    await connect(transport);
    options.onConnect?.(transport);
    interpose(transport, claim, options.onError);
  };
}

/** Answers the requests `claim` takes on `transport` itself (see `claimRequests`). */
function interpose(transport: Transport, claim: Claim, onError: (error: unknown) => void): void {
  const inner = transport.onmessage;
  transport.onmessage = (message: JSONRPCMessage, extra?: MessageExtraInfo) => {
    const answer = isJSONRPCRequest(message) ? claim(message, extra) : undefined;
    if (!answer) return inner?.(message, extra);
    const { id } = message as JSONRPCRequest; // only requests are claimed
    answer
      .then(
        (result) => transport.send({ jsonrpc: '2.0', id, result }, { relatedRequestId: id }),
        (error) => transport.send({ jsonrpc: '2.0', id, error: toErrorObject(error) }, { relatedRequestId: id }),
      )
      .catch(onError);
  };
}

/**
 * Makes `server/discover` (2026-07-28 "Server Discovery": `supportedVersions` are the protocol
 * versions the server supports) list the 2025-era revisions the same endpoint serves through
 * `initialize` — by default every version the SDK negotiates there (`SUPPORTED_PROTOCOL_VERSIONS`,
 * 2025-11-25 first) — after the modern ones, which stay first so clients that take the first
 * overlap still pick 2026-07-28.
 *
 * Why it is a seam: SDK v2 answers `server/discover` from `Server._ondiscover()` with modern
 * revisions only, and offers no option to name others. This wraps that method on the one instance
 * (the SDK's handler calls it at request time); if a later SDK drops the method, its own answer is
 * left unchanged.
 */
export function advertiseServedVersions(mcp: McpServer, legacyVersions: readonly string[] = SUPPORTED_PROTOCOL_VERSIONS): void {
  const server = mcp.server as unknown as { _ondiscover?: () => { supportedVersions: string[] } & Record<string, unknown> };
  const discover = server._ondiscover?.bind(server);
  if (!discover) return;
  server._ondiscover = () => {
    const result = discover();
    return { ...result, supportedVersions: [...result.supportedVersions, ...legacyVersions.filter((v) => !result.supportedVersions.includes(v))] };
  };
}
