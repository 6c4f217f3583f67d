import { Client, RELATED_TASK_META_KEY, StreamableHTTPClientTransport } from '@modelcontextprotocol/client';
import {
  createTaskSessionFromClient,
  toolDeclarationFromMcpTool,
  type ApplicationElicitResult,
  type ClientSessionPortOptions,
  type TaskEnabledSession,
  type ToolDeclaration,
} from '@modelcontextprotocol/ext-tasks/client';
import { TransportError, busyRetryMs, checkEndpointUrl, describeError, isTransient } from './errors.js';
import { createHttpRawDispatch } from './http-dispatch.js';

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

/** A connected task-aware session on one MCP endpoint. */
export interface TaskClient {
  url: string;
  /** The era negotiated: `legacy` (2025-11-25) or `modern` (2026-07-28). */
  era: 'legacy' | 'modern';
  client: Client;
  session: TaskEnabledSession;
  /** Declarations from `tools/list`, by name. */
  tools: Map<string, ToolDeclaration>;
  close(): Promise<void>;
}

/** Options of `connectTaskClient`. */
export interface ConnectOptions {
  /** Extra HTTP headers on every request (e.g. `Authorization: Bearer …`). */
  headers?: Record<string, string>;
  /** Answers elicitation questions (the CLI prompts in the terminal or uses `--answer`). */
  answer: AnswerQuestion;
  /** Background errors of the session (delivery problems, …). */
  onError?: (error: Error) => void;
  /**
   * Protocol era: `auto` (default) probes with `server/discover` and uses 2026-07-28 when the
   * server offers it, else the 2025-11-25 handshake; `legacy` forces 2025-11-25; `modern` requires
   * 2026-07-28.
   */
  era?: 'auto' | 'legacy' | 'modern';
}

const CLIENT_INFO = { name: 'mcp-tasks-cli', version: '0.1.0' };
const CAPABILITIES = { elicitation: { form: {} } };

/**
 * Connects the official SDK v2 `Client` over Streamable HTTP and wraps it in an
 * `@modelcontextprotocol/ext-tasks` session, the official requester for MCP Tasks in both eras.
 *
 * - On 2026-07-28 the session gets the `rawDispatch` and `v2RequestFraming` ext-tasks requires (see
 *   `createHttpRawDispatch`).
 * - On 2025-11-25 the client answers `elicitation/create` server requests itself (related-task
 *   `_meta` gives the task; 2025-11-25 "Input Required Status") with `options.answer`. When that
 *   leaves the question unanswered, no response is sent at all, so the question stays pending on
 *   the server (ext-tasks' own fallback would answer `cancel` on the person's behalf).
 * - The endpoint id of the session is the URL, so task references serialized by one process can be
 *   resumed by another.
 *
 * Throws `TransportError` (message naming the URL and the cause) when the server cannot be reached,
 * and an `Error` with a readable message for other connect failures (HTTP 404: not an MCP endpoint;
 * 401/403; `modern` against a 2025-only server; a URL that is not http(s)).
 */
export async function connectTaskClient(url: string, options: ConnectOptions): Promise<TaskClient> {
  checkEndpointUrl(url);
  const era = options.era ?? 'auto';
  const client = new Client(CLIENT_INFO, {
    capabilities: CAPABILITIES,
    ...(era !== 'legacy' && { versionNegotiation: { mode: era === 'modern' ? { pin: '2026-07-28' } : 'auto' } }),
  });
  client.setRequestHandler('elicitation/create', async (request, ctx) => {
    const params = request.params as unknown as ElicitationQuestion & { _meta?: Record<string, { taskId?: unknown } | undefined> };
    const related = params._meta?.[RELATED_TASK_META_KEY]?.taskId;
    const question = {
      message: String(params.message ?? ''),
      requestedSchema: params.requestedSchema ?? {},
      ...(typeof related === 'string' && { taskId: related }),
    };
    const answer = await options.answer(question, ctx.mcpReq.signal);
    if (answer) return answer as never;
    // Unanswered: never respond. The promise settles only when the request is withdrawn or the
    // connection closes, and then nothing can (or needs to) be sent.
    return new Promise<never>((_, reject) => {
      const signal = ctx.mcpReq.signal;
      if (signal.aborted) reject(signal.reason);
      else signal.addEventListener('abort', () => reject(signal.reason), { once: true });
    });
  });
  try {
    await client.connect(new StreamableHTTPClientTransport(new URL(url), { requestInit: { headers: options.headers ?? {} } }));
  } catch (error) {
    await client.close().catch(() => undefined);
    const message = describeError(error, url);
    throw isTransient(error) ? new TransportError(message, url, { cause: error }) : new Error(message, { cause: error });
  }
  const negotiated = client.getProtocolEra() === 'modern' ? 'modern' : 'legacy';
  const protocolVersion = client.getNegotiatedProtocolVersion() ?? '2026-07-28';
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
  const port: ClientSessionPortOptions =
    negotiated === 'modern'
      ? {
          rawDispatch: createHttpRawDispatch(url, { protocolVersion, headers: options.headers }),
          v2RequestFraming: { protocolVersion, clientInfo: CLIENT_INFO, clientCapabilities: CAPABILITIES },
        }
      : {};
  const session = createTaskSessionFromClient(client, {
    ...port,
    endpointId: url,
    tools: { currentTool: (name) => tools.get(name) },
    // Questions of ordinary (non-task) 2026-07-28 calls: multi round-trip retries. Unanswered means
    // the call stops here; nothing is sent.
    onInputRequest: async (request, context) => {
      if (request.kind !== 'elicitation') throw new Error(`mcp-tasks cannot answer ${request.kind} requests`);
      const params = request.params as unknown as ElicitationQuestion;
      const answer = await options.answer({ message: String(params.message ?? ''), requestedSchema: params.requestedSchema ?? {} }, context.signal);
      if (!answer) throw new Error('the question was left unanswered');
      return answer as never;
    },
    onError: options.onError,
  });
  return {
    url,
    era: negotiated,
    client,
    session,
    tools,
    close: async () => {
      await session.close().catch(() => undefined);
      await client.close().catch(() => undefined);
    },
  };
}
