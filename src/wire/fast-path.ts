import { isJSONRPCRequest, ProtocolErrorCode, SERVER_INFO_META_KEY, type AuthInfo, type JSONRPCRequest, type McpServer } from '@modelcontextprotocol/server';
import type { JsonObject } from '../core/json.js';
import { isTerminal } from '../core/status.js';
import type { TaskRuntime } from '../runtime/runtime.js';
import { outageHeaders, toErrorObject } from './errors.js';
import { principalOf } from './principal.js';
import { signalOf, type PollThrottle, type SignalSource } from './poll-throttle.js';
import { taskIdParams } from './handler.js';
import type { OrdinaryCallSettings } from './ordinary-call.js';
import { serverInfoOf } from './sdk-seam.js';
import type { TaskTools } from './task-tools.js';
import { getTask2025, taskResult2025 } from './2025-11-25/attach.js';
import type { Session2025 } from './2025-11-25/session.js';
import { claimTaskCall2025 } from './2025-11-25/task-call.js';
import { getTask2026 } from './2026-07-28/attach.js';
import { claimCall2026 } from './2026-07-28/call.js';
import { readEnvelope } from './2026-07-28/envelope.js';

/**
 * A JSON-RPC response the fast path produced, with the HTTP status the SDK would have answered it
 * with (200, or 400 for -32021 in 2026-07-28, as the SDK's in-band mapping does) — except a store
 * outage (-32010, `STORE_UNAVAILABLE`): 503 with `Retry-After` in `headers` (see `outageHeaders`),
 * as `startHttpServer` answers the SDK path's JSON responses.
 */
export interface FastAnswer {
  status: number;
  /** Further response headers (`retry-after` with a 503). */
  headers?: Record<string, string>;
  body: { jsonrpc: '2.0'; id: string | number; result?: JsonObject; error?: { code: number; message: string; data?: unknown } };
}

/** What the 2026-07-28 fast path needs to know of the HTTP request besides its body. */
export interface RequestHeaders2026 {
  /** `Mcp-Name` (SEP-2243), as received. */
  mcpName?: string;
}

/**
 * The fast path: the requests of a task's lifecycle — `tasks/get` in both versions, 2025-11-25
 * `tasks/result` of a task that has already ended, and the `tools/call` requests `McpTasks`
 * answers ahead of the SDK anyway (2025-11-25 task-augmented calls, see `claimTaskCall2025`;
 * 2026-07-28 task-creating calls, see `claimCall2026`) —
 * answered without the SDK's per-request machinery (web `Request`/`Response` adapters,
 * per-request `McpServer` in 2026-07-28, SSE framing), with the same checks and the same answer.
 * Polling is the protocol's hottest path: every poll may be a fresh serverless invocation.
 *
 * It shares the handlers' own code (`getTask2025`, `getTask2026`, `taskResult2025`, `claimTaskCall2025`, `claimCall2026`),
 * so the result, throttling, question delivery and error codes cannot drift apart. It answers only what it is
 * sure of: anything it does not recognise — another method, a batch, params that do not parse, an
 * `Mcp-Name` header it would have to decode, an unknown revision, a `tasks/result` that would have
 * to wait — is declined (`undefined`) and goes the ordinary way, where the SDK gives its own answer
 * and error. The transport-level checks (authentication, session binding, `Accept`,
 * `Content-Type`, protocol-version headers, body limits, protocol-version classification and
 * envelope validation) run before it, in `startHttpServer`.
 */
export class FastPath {
  /** The `io.modelcontextprotocol/serverInfo` every 2026 `McpServer` built so far stamps; `null` once two disagreed. */
  private serverInfo: JsonObject | null | undefined;
  /** `serverInfo` as JSON, to compare the next server's identity with (a custom factory builds a new object each time). */
  private serverInfoJson?: string;
  /** What `getTask2025` / `getTask2026` need of the settings: the poll throttle, whether the fallback tools can answer questions. */
  private readonly pollOptions: { throttle?: PollThrottle; fallbackTools: boolean };

  constructor(
    private readonly runtime: TaskRuntime,
    private readonly tools: TaskTools,
    /** `sessionOf`: the 2025-11-25 session state `McpTasks.attach` gave a server; `calls`: `McpTasks`' ordinary-call settings. */
    private readonly options: {
      throttle?: PollThrottle;
      sessionOf: (mcp: McpServer) => Session2025 | undefined;
      calls: OrdinaryCallSettings;
    },
  ) {
    this.pollOptions = { ...(options.throttle && { throttle: options.throttle }), fallbackTools: options.calls.fallbackTools };
  }

  /**
   * Learns the identity a 2026-07-28 `McpServer` stamps on its results. The 2026 fast path answers
   * only once one is known, and never again if two servers built for 2026-07-28 disagree (a factory
   * that varies its identity per request).
   */
  noteServer2026(mcp: McpServer): void {
    if (this.serverInfo === null) return;
    const info = serverInfoOf(mcp);
    if (info === undefined) return void (this.serverInfo = null);
    if (info === this.serverInfo) return;
    const json = JSON.stringify(info);
    if (this.serverInfoJson === undefined) {
      this.serverInfo = info;
      this.serverInfoJson = json;
    } else if (json !== this.serverInfoJson) this.serverInfo = null;
  }

  /**
   * A 2025-11-25 request on the session served by `mcp`: answers `tasks/get`, `tasks/result` of an
   * ended task and the task-augmented `tools/call` requests `claimTaskCall2025` takes, for the
   * principal of `authInfo`; resolves undefined to leave the request to the
   * SDK (see the class). `signal` aborts when the HTTP request goes away (it ends a throttled wait);
   * given as a function, it is made only when a poll waits.
   */
  async answer2025(mcp: McpServer, body: unknown, authInfo: AuthInfo | undefined, signal: SignalSource): Promise<FastAnswer | undefined> {
    const session = this.options.sessionOf(mcp);
    if (!session) return undefined;
    const call = singleRequest(body, ['tools/call']);
    // Only calls of task tools: those are registered by `McpTasks` without a scope challenge, so the
    // SDK transport's scope check has nothing to say about them.
    if (call && this.tools.get((call.params as { name?: unknown } | undefined)?.name)) {
      // The claim `McpTasks` installs on the session's transport (`claimRequests`), run here instead:
      // the same function, so the same task, result and errors; the SDK never sees these calls.
      const answerCall = claimTaskCall2025(call, { authInfo }, { tools: this.tools, runtime: this.runtime, session });
      if (answerCall) return answer(call.id, answerCall as () => Promise<JsonObject>, false);
    }
    const request = taskRequest(body, ['tasks/get', 'tasks/result']);
    if (!request) return undefined;
    const owner = principalOf(authInfo);
    if (request.message.method === 'tasks/get')
      return answer(request.message.id, () => getTask2025(this.runtime, session, request.taskId, owner, this.pollOptions, signal), false);
    let ended: JsonObject | undefined;
    try {
      const task = await this.runtime.get(request.taskId, owner);
      if (!isTerminal(task.status)) return undefined; // it waits: the SDK's stream serves the wait and its questions
      this.runtime.notePoll(task.taskId, 'tasks/result');
      ended = taskResult2025(task);
    } catch (error) {
      return errorAnswer(request.message.id, error, false);
    }
    return { status: 200, body: { jsonrpc: '2.0', id: request.message.id, result: ended } };
  }

  /**
   * A 2026-07-28 request the SDK's classifier routed to that version (`revision` is the envelope's
   * claimed revision): answers `tasks/get` when its `Mcp-Name` header is present and names the
   * same `taskId` verbatim (SEP-2243), with `resultType: "complete"` and the server's
   * `io.modelcontextprotocol/serverInfo` `_meta` as the SDK's encoder adds them. Resolves undefined
   * to leave the request to the SDK. `signal`: as in `answer2025` (a task-creating call makes it).
   */
  answer2026(
    body: unknown,
    revision: string | undefined,
    headers: RequestHeaders2026,
    authInfo: AuthInfo | undefined,
    signal: SignalSource,
  ): Promise<FastAnswer> | undefined {
    const serverInfo = this.serverInfo;
    if (revision !== '2026-07-28' || !serverInfo) return undefined;
    // The header must mirror params.taskId (params.name for tools/call). Only the verbatim form is
    // taken here; an encoded one (`=?base64?…?=`), a missing or a mismatching header is the SDK's
    // to judge (-32020).
    const name = headers.mcpName?.replace(/^[ \t]+|[ \t]+$/g, '');
    if (name === undefined || name.startsWith('=?')) return undefined;
    const call = singleRequest(body, ['tools/call']);
    if (call) return this.call2026(call, name, authInfo, signal);
    const request = taskRequest(body, ['tasks/get']);
    if (!request || name !== request.taskId) return undefined;
    const envelope = readEnvelope((request.message.params as { _meta?: unknown } | undefined)?._meta);
    return answer(
      request.message.id,
      async () => {
        const result = await getTask2026(this.runtime, request.taskId, envelope, principalOf(authInfo), this.pollOptions, signal);
        const meta = (result._meta as JsonObject | undefined) ?? {};
        return { ...result, resultType: 'complete', _meta: { ...meta, [SERVER_INFO_META_KEY]: serverInfo } };
      },
      true,
    );
  }

  /**
   * A 2026-07-28 `tools/call` of a task tool that becomes a task (`becomesTask2026`: the client
   * declared the extension, or the tool is `required`), named verbatim by `Mcp-Name`: answered by
   * the same `claimCall2026` the SDK path runs on its per-request `McpServer`, so
   * the task, `CreateTaskResult`, MRTR rounds and errors are the same. Ordinary calls (which may
   * stream progress notifications) and calls of other tools are declined.
   */
  private call2026(call: JSONRPCRequest, name: string, authInfo: AuthInfo | undefined, signal: SignalSource): Promise<FastAnswer> | undefined {
    if (name !== (call.params as { name?: unknown } | undefined)?.name) return undefined;
    const deps = { tools: this.tools, runtime: this.runtime, calls: this.options.calls };
    const answerCall = claimCall2026(call, authInfo && { authInfo }, deps, { taskCreatingOnly: true });
    if (!answerCall) return undefined;
    // A task-creating call sends no notification (`answerTaskCall2026` reports nothing while it runs).
    return answer(call.id, () => answerCall({ signal: signalOf(signal), notify: async () => undefined }), true);
  }
}

/** `body` as a single JSON-RPC request of one of `methods` (the method is looked at before the SDK's schema check); else undefined. */
function singleRequest(body: unknown, methods: string[]): JSONRPCRequest | undefined {
  if (typeof body !== 'object' || body === null || Array.isArray(body)) return undefined;
  const method = (body as { method?: unknown }).method;
  return typeof method === 'string' && methods.includes(method) && isJSONRPCRequest(body) ? body : undefined;
}

/** `body` as a single JSON-RPC request of one of `methods` whose params parse as `{ taskId }`; else undefined. */
function taskRequest(body: unknown, methods: string[]): { message: JSONRPCRequest; taskId: string } | undefined {
  const message = singleRequest(body, methods);
  const params = message && taskIdParams.safeParse(message.params ?? {});
  return message && params?.success ? { message, taskId: params.data.taskId } : undefined;
}

async function answer(id: string | number, work: () => Promise<JsonObject>, is2026: boolean): Promise<FastAnswer> {
  try {
    return { status: 200, body: { jsonrpc: '2.0', id, result: await work() } };
  } catch (error) {
    return errorAnswer(id, error, is2026);
  }
}

function errorAnswer(id: string | number, error: unknown, is2026: boolean): FastAnswer {
  const object = toErrorObject(error);
  const outage = outageHeaders(object);
  if (outage) return { status: outage.status, headers: outage.headers, body: { jsonrpc: '2.0', id, error: object } };
  const status = is2026 && object.code === ProtocolErrorCode.MissingRequiredClientCapability ? 400 : 200;
  return { status, body: { jsonrpc: '2.0', id, error: object } };
}
