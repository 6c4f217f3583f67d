import { Client, RELATED_TASK_META_KEY, StreamableHTTPClientTransport } from '@modelcontextprotocol/client';
import {
  createTaskSessionFromClient,
  toolDeclarationFromMcpTool,
  type ApplicationElicitResult,
  type ClientSessionPortOptions,
  type TaskEnabledSession,
  type ToolDeclaration,
} from '@modelcontextprotocol/ext-tasks/client';
import { randomUUID } from 'node:crypto';
import { IDEMPOTENCY_META_KEY } from '../core/idempotency.js';
import { TransportError, busyRetryMs, checkEndpointUrl, describeError, isTransient } from './errors.js';
import { operatorConsoleAdvice } from './console-probe.js';
import { createHttpRawDispatch } from './http-dispatch.js';
import type { ProtocolVersion } from '../core/protocol-version.js';

/** A question from the server: MCP form-elicitation params (`message`, `requestedSchema`) and where it comes from. */
export interface ElicitationQuestion {
  message: string;
  /** The restricted JSON Schema of the form (MCP "Elicitation": flat object of primitive properties). */
  requestedSchema: { type?: string; properties?: Record<string, Record<string, unknown>>; required?: string[] };
  /** The task asking (2025-11-25: from the request's related-task `_meta`; 2026-07-28: the polled task). */
  taskId?: string;
  /** The question's key in the task's `inputRequests` (2026-07-28 only). */
  key?: string;
}

/**
 * Answers a question: resolves with an MCP `ElicitResult`, or with `undefined` to leave it
 * unanswered — then nothing at all is sent and the question stays pending on the server (a person
 * who is not there, Ctrl-C, "decide later"). `signal` aborts when the server withdraws the question
 * or the client stops.
 */
export type AnswerQuestion = (question: ElicitationQuestion, signal?: AbortSignal) => Promise<ApplicationElicitResult | undefined>;

/**
 * Told, for each answer `AnswerQuestion` gave to a 2025-11-25 `elicitation/create`, whether it
 * reached the server: `failure` undefined once the server accepted the response (HTTP 202), else why
 * it did not — the POST failed (server down, connection refused, HTTP error: the server did not take
 * it) or the request was lost with the connection before the response could be sent (a
 * `TransportError`). Called once per answer.
 */
export type AnswerSent = (question: ElicitationQuestion, result: ApplicationElicitResult, failure?: unknown) => void;

/** A connected task-aware session on one MCP endpoint. */
export interface TaskClient {
  url: string;
  /** The protocol version negotiated (see `ProtocolVersion`): `2025-11-25` or `2026-07-28`. */
  protocolVersion: ProtocolVersion;
  client: Client;
  session: TaskEnabledSession;
  /** Declarations from `tools/list`, by name. */
  tools: Map<string, ToolDeclaration>;
  /**
   * Whether the server declared `capabilities.tools.idempotency` (SEP-3182): a `session.callTool`
   * whose reply was lost (connection cut, timeout, store unavailable) is then sent again with the
   * same idempotency key, and the server answers with the task the first call created.
   */
  idempotency: boolean;
  /**
   * Closes the connection and leaves every task as it is: task executions started through
   * `session` (`callTool`, `resumeTask`) and not settled are detached first — their tasks go on on
   * the server and their questions stay pending — never cancelled (ext-tasks' own
   * `session.close()` cancels them; call `execution.cancel()` for that).
   */
  close(): Promise<void>;
}

/** Options of `connectTaskClient`. */
export interface ConnectOptions {
  /** Extra HTTP headers on every request (e.g. `Authorization: Bearer …`). */
  headers?: Record<string, string>;
  /** Answers elicitation questions (the CLI prompts in the terminal or uses `--answer`). */
  answer: AnswerQuestion;
  /** Told whether each 2025-11-25 answer reached the server (see `AnswerSent`). */
  onAnswerSent?: AnswerSent;
  /** Background errors of the session (delivery problems, …). */
  onError?: (error: Error) => void;
  /**
   * Protocol version: `auto` (default) probes with `server/discover` and uses 2026-07-28 when the
   * server offers it, else the 2025-11-25 handshake; `2025-11-25` forces the handshake;
   * `2026-07-28` requires 2026-07-28.
   */
  protocolVersion?: 'auto' | ProtocolVersion;
  /**
   * How often a `session.callTool` whose reply was lost is sent again, with the same idempotency key,
   * when the server declared `tools.idempotency` (default 5; waits of 0.5, 1, 2, 4, 8 s). 0 never
   * sends a call twice. Servers that do not declare it never get a call twice.
   */
  callRetries?: number;
}

const CLIENT_INFO = { name: 'mcp-tasks-cli', version: '0.1.0' };
const CAPABILITIES = { elicitation: { form: {} } };

/**
 * Connects the official SDK v2 `Client` over Streamable HTTP and wraps it in an
 * `@modelcontextprotocol/ext-tasks` session, the official requester for MCP Tasks in both protocol versions.
 *
 * - On 2026-07-28 the session gets the `rawDispatch` and `v2RequestFraming` ext-tasks requires (see
 *   `createHttpRawDispatch`).
 * - On 2025-11-25 the client answers `elicitation/create` server requests itself (related-task
 *   `_meta` gives the task; 2025-11-25 "Input Required Status") with `options.answer`. When that
 *   leaves the question unanswered, no response is sent at all, so the question stays pending on
 *   the server (ext-tasks' own fallback would answer `cancel` on the person's behalf). Whether an
 *   answer reached the server is told to `options.onAnswerSent`.
 * - The endpoint id of the session is the URL, so task references serialized by one process can be
 *   resumed by another.
 *
 * Throws `TransportError` (message naming the URL and the cause) when the server cannot be reached,
 * and an `Error` with a readable message for other connect failures (HTTP 404: not an MCP endpoint;
 * the URL of an mcp-tasks operator console, e.g. the server's root: says so and names the MCP
 * endpoint, see `operatorConsoleAdvice`; 401/403; `2026-07-28` demanded of a 2025-only server; a URL that
 * is not http(s)).
 */
export async function connectTaskClient(url: string, options: ConnectOptions): Promise<TaskClient> {
  checkEndpointUrl(url);
  const wanted = options.protocolVersion ?? 'auto';
  const client = new Client(CLIENT_INFO, {
    capabilities: CAPABILITIES,
    ...(wanted !== '2025-11-25' && { versionNegotiation: { mode: wanted === '2026-07-28' ? { pin: '2026-07-28' } : 'auto' } }),
  });
  const transport = new ResponseTrackingTransport(new URL(url), { requestInit: { headers: options.headers ?? {} } });
  client.setRequestHandler('elicitation/create', async (request, ctx) => {
    const params = request.params as unknown as ElicitationQuestion & { _meta?: Record<string, { taskId?: unknown } | undefined> };
    const related = params._meta?.[RELATED_TASK_META_KEY]?.taskId;
    const question = {
      message: String(params.message ?? ''),
      requestedSchema: params.requestedSchema ?? {},
      ...(typeof related === 'string' && { taskId: related }),
    };
    const answer = await options.answer(question, ctx.mcpReq.signal);
    if (answer) {
      if (options.onAnswerSent) transport.track(ctx.mcpReq.id, ctx.mcpReq.signal, url, (failure) => options.onAnswerSent!(question, answer, failure));
      return answer as never;
    }
    // Unanswered: never respond. The promise settles only when the request is withdrawn or the
    // connection closes, and then nothing can (or needs to) be sent.
    return untilWithdrawn(ctx.mcpReq.signal);
  });
  try {
    await client.connect(transport);
  } catch (error) {
    await client.close().catch(() => undefined);
    const message = describeError(error, url);
    if (isTransient(error)) throw new TransportError(message, url, { cause: error });
    // A URL that reached a server but not its MCP endpoint: the operator console says so plainly.
    throw new Error((await operatorConsoleAdvice(url)) ?? message, { cause: error });
  }
  // The SDK's words for the two families: `modern` is 2026-07-28, `legacy` the 2025-11-25 handshake.
  const negotiated: ProtocolVersion = client.getProtocolEra() === 'modern' ? '2026-07-28' : '2025-11-25';
  const revision = client.getNegotiatedProtocolVersion() ?? '2026-07-28';
  const tools = new Map<string, ToolDeclaration>();
  try {
    for (const tool of (await client.listTools()).tools) tools.set(tool.name, toolDeclarationFromMcpTool(tool));
  } catch (error) {
    // A busy server (HTTP 503/429) has tools it could not list now: not "no tools" but "try again".
    if (busyRetryMs(error) !== undefined) {
      await client.close().catch(() => undefined);
      throw new TransportError(describeError(error, url), url, { cause: error });
    }
    /* a server without tools can still serve tasks/* */
  }
  // The SDK's parsed capabilities drop what its schema does not know (`tools.idempotency`, SEP-3182): read the server's own.
  const idempotency = Boolean((transport.serverCapabilities?.tools as { idempotency?: unknown } | undefined)?.idempotency);
  const port: ClientSessionPortOptions =
    negotiated === '2026-07-28'
      ? {
          rawDispatch: createHttpRawDispatch(url, { protocolVersion: revision, headers: options.headers, resendCalls: idempotency }),
          v2RequestFraming: { protocolVersion: revision, clientInfo: CLIENT_INFO, clientCapabilities: CAPABILITIES },
        }
      : {};
  const session = createTaskSessionFromClient(client, {
    ...port,
    endpointId: url,
    tools: { currentTool: (name) => tools.get(name) },
    // Questions of 2026-07-28 calls: a task's (`scope: 'task'`, answered with tasks/update) or an
    // ordinary call's (multi round-trip retries). Unanswered sends nothing: an ordinary call stops
    // here; a task's question stays pending on the server. ext-tasks answers a task question whose
    // handler throws with `{ action: 'cancel' }` on the user's behalf, so for those this never
    // settles until ext-tasks withdraws the question (its input signal aborts: the question was
    // answered elsewhere, or the execution was detached or closed), and then nothing is sent.
    onInputRequest: async (request, context) => {
      if (request.kind !== 'elicitation') throw new Error(`mcp-tasks cannot answer ${request.kind} requests`);
      const params = request.params as unknown as ElicitationQuestion;
      const answer = await options.answer(
        {
          message: String(params.message ?? ''),
          requestedSchema: params.requestedSchema ?? {},
          ...(context.scope === 'task' && context.taskId !== undefined && { taskId: context.taskId }),
          ...(context.scope === 'task' && context.inputId !== undefined && { key: context.inputId }),
        },
        context.signal,
      );
      if (answer) return answer as never;
      if (context.scope !== 'task') throw new Error('the question was left unanswered');
      return untilWithdrawn(context.signal);
    },
    onError: options.onError,
  });
  sendWithIdempotencyKeys(session, idempotency ? Math.max(0, Math.floor(options.callRetries ?? 5)) : 0);
  const unsettled = trackTaskExecutions(session);
  return {
    url,
    protocolVersion: negotiated,
    client,
    session,
    tools,
    idempotency,
    close: async () => {
      for (const execution of unsettled) {
        await execution.detach().catch(() => undefined);
        await execution.result().catch(() => undefined); // settles once detached: ext-tasks forgets it, so its close cancels nothing
      }
      await session.close().catch(() => undefined);
      await client.close().catch(() => undefined);
    },
  };
}

/**
 * The task executions `session.callTool` and `session.resumeTask` return, while they have not
 * settled: `TaskClient.close` detaches them, so that ext-tasks' `session.close()`, which cancels
 * every unsettled execution, never cancels a task the user did not cancel. The one place this
 * package wraps ext-tasks' session (its methods are rebound on the instance; behaviour unchanged).
 */
function trackTaskExecutions(session: TaskEnabledSession): Set<{ detach(): Promise<void>; result(): Promise<unknown> }> {
  const unsettled = new Set<{ detach(): Promise<void>; result(): Promise<unknown> }>();
  const track = <E extends { kind: string; result(): Promise<unknown>; detach(): Promise<void> }>(execution: E): E => {
    if (execution.kind !== 'task') return execution;
    unsettled.add(execution);
    const forget = () => void unsettled.delete(execution);
    execution.result().then(forget, forget);
    return execution;
  };
  const callTool = session.callTool.bind(session);
  const resumeTask = session.resumeTask.bind(session);
  session.callTool = (async (...args: Parameters<typeof callTool>) => track(await callTool(...args))) as typeof session.callTool;
  session.resumeTask = (async (...args: Parameters<typeof resumeTask>) => track(await resumeTask(...args))) as typeof session.resumeTask;
  return unsettled;
}

/**
 * Makes every `session.callTool` carry an idempotency key (SEP-3182; in
 * `_meta["io.modelcontextprotocol/idempotencyKey"]`, which ext-tasks passes on as the request's
 * `_meta`): a random UUID per call, unless the caller's `options.metadata` names one. A call that
 * fails without an answer from the server (`isTransient`: the connection was cut or refused, a
 * timeout, HTTP 503, the server's store unavailable) is sent again with the same key up to `retries`
 * times (waits of 0.5 s doubling to 8 s; none once `options.signal` aborts): the server answers a
 * key it has seen with the task it created then, so a lost reply never starts the work twice. Pass
 * `retries` 0 for servers that do not declare `tools.idempotency`: they may ignore the key. The
 * session's method is rebound on the instance, like `trackTaskExecutions` does.
 */
function sendWithIdempotencyKeys(session: TaskEnabledSession, retries: number): void {
  const callTool = session.callTool.bind(session);
  session.callTool = (async (name: string, params?: Parameters<typeof callTool>[1], options: Parameters<typeof callTool>[2] = {}) => {
    const key = options.metadata?.[IDEMPOTENCY_META_KEY] ?? randomUUID();
    const keyed = { ...options, metadata: { ...options.metadata, [IDEMPOTENCY_META_KEY]: key } };
    for (let attempt = 0; ; attempt++) {
      try {
        return await callTool(name, params, keyed);
      } catch (error) {
        if (attempt >= retries || options.signal?.aborted || !isTransient(error) || busyRetryMs(error) !== undefined) throw error;
        await abortableSleep(Math.min(8000, 500 * 2 ** attempt), options.signal);
      }
    }
  }) as typeof session.callTool;
}

/** Resolves after `ms`, or at once when `signal` aborts. */
function abortableSleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    const timer = setTimeout(done, ms);
    function done() {
      clearTimeout(timer);
      signal?.removeEventListener('abort', done);
      resolve();
    }
    signal?.addEventListener('abort', done, { once: true });
  });
}

/** Never resolves; rejects once `signal` aborts (never without one): an unanswered question left to wait. */
function untilWithdrawn(signal: AbortSignal | undefined): Promise<never> {
  return new Promise<never>((_, reject) => {
    if (!signal) return;
    if (signal.aborted) reject(signal.reason);
    else signal.addEventListener('abort', () => reject(signal.reason), { once: true });
  });
}

/**
 * Streamable HTTP that tells whether the responses this client sends (its answers to server
 * requests) reached the server: the SDK sends a request handler's result after the handler returns
 * and reports a failure only to `onerror`, so without this an answer lost on the way would look sent.
 */
class ResponseTrackingTransport extends StreamableHTTPClientTransport {
  private readonly pending = new Map<string | number, (failure?: unknown) => void>();
  /**
   * The `capabilities` of the server's `initialize` (2025-11-25) or `server/discover` (2026-07-28)
   * result as the server sent them: the SDK's `getServerCapabilities()` returns them parsed by its
   * schema, which drops capabilities newer than it (`tools.idempotency`).
   */
  serverCapabilities?: Record<string, unknown>;

  constructor(...args: ConstructorParameters<typeof StreamableHTTPClientTransport>) {
    super(...args);
    // Every message the transport receives passes `onmessage`, which the SDK's Client assigns on
    // connect: an accessor on the instance sees each one before the Client does.
    let inner: StreamableHTTPClientTransport['onmessage'];
    Object.defineProperty(this, 'onmessage', {
      configurable: true,
      enumerable: true,
      get: () =>
        inner &&
        ((message: Parameters<NonNullable<typeof inner>>[0]) => {
          // `initialize` results carry `serverInfo`, `server/discover` results `supportedVersions`.
          const result = (message as { result?: { capabilities?: unknown; serverInfo?: unknown; supportedVersions?: unknown } }).result;
          const handshake = result?.serverInfo !== undefined || Array.isArray(result?.supportedVersions);
          if (handshake && typeof result!.capabilities === 'object' && result!.capabilities !== null)
            this.serverCapabilities = result.capabilities as Record<string, unknown>;
          inner!(message);
        }),
      set: (handler: typeof inner) => {
        inner = handler;
      },
    });
  }

  /**
   * Reports (once) what becomes of the response to request `id`: `settle()` when the server accepted
   * it (HTTP 2xx), `settle(error)` when sending failed, or when `signal` aborts first (the request
   * was withdrawn or lost with the connection: the SDK then sends nothing).
   */
  track(id: string | number, signal: AbortSignal, url: string, settle: (failure?: unknown) => void): void {
    let settled = false;
    const once = (failure?: unknown) => {
      if (settled) return;
      settled = true;
      this.pending.delete(id);
      signal.removeEventListener('abort', onAbort);
      settle(failure);
    };
    const onAbort = () => once(new TransportError(`the connection to ${url} was lost before the answer could be sent`, url, { cause: signal.reason }));
    this.pending.set(id, once);
    if (signal.aborted) onAbort();
    else signal.addEventListener('abort', onAbort, { once: true });
  }

  override async send(...args: Parameters<StreamableHTTPClientTransport['send']>): Promise<void> {
    const [message] = args;
    const id = !Array.isArray(message) && ('result' in message || 'error' in message) ? message.id : undefined;
    const settle = id === undefined || id === null ? undefined : this.pending.get(id);
    try {
      await super.send(...args);
    } catch (error) {
      settle?.(error);
      throw error;
    }
    settle?.();
  }
}
