import { Client, StreamableHTTPClientTransport } from '@modelcontextprotocol/client';
import {
  createTaskSessionFromClient,
  toolDeclarationFromMcpTool,
  type ApplicationElicitResult,
  type ClientSessionPortOptions,
  type TaskEnabledSession,
  type ToolDeclaration,
} from '@modelcontextprotocol/ext-tasks/client';
import { createHttpRawDispatch } from './http-dispatch.js';

/** A question from the server: the MCP form-elicitation params (`message`, `requestedSchema`). */
export interface ElicitationQuestion {
  message: string;
  requestedSchema: { type?: string; properties?: Record<string, Record<string, unknown>>; required?: string[] };
  taskId?: string;
}

/** Answers a question; resolves with an MCP `ElicitResult`. */
export type AnswerQuestion = (question: ElicitationQuestion) => Promise<ApplicationElicitResult>;

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
 * On 2026-07-28 the session gets the `rawDispatch` and `v2RequestFraming` ext-tasks requires (see
 * `createHttpRawDispatch`). The endpoint id of the session is the URL, so task references serialized
 * by one process can be resumed by another. Throws the SDK's connect errors (e.g. `modern` against
 * a 2025-only server).
 */
export async function connectTaskClient(url: string, options: ConnectOptions): Promise<TaskClient> {
  const era = options.era ?? 'auto';
  const client = new Client(CLIENT_INFO, {
    capabilities: CAPABILITIES,
    ...(era !== 'legacy' && { versionNegotiation: { mode: era === 'modern' ? { pin: '2026-07-28' } : 'auto' } }),
  });
  await client.connect(new StreamableHTTPClientTransport(new URL(url), { requestInit: { headers: options.headers ?? {} } }));
  const negotiated = client.getProtocolEra() === 'modern' ? 'modern' : 'legacy';
  const protocolVersion = client.getNegotiatedProtocolVersion() ?? '2026-07-28';
  const tools = new Map<string, ToolDeclaration>();
  try {
    for (const tool of (await client.listTools()).tools) tools.set(tool.name, toolDeclarationFromMcpTool(tool));
  } catch {
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
    onInputRequest: async (request, context) => {
      if (request.kind !== 'elicitation') throw new Error(`mcp-tasks CLI cannot answer ${request.kind} requests`);
      const params = request.params as unknown as ElicitationQuestion;
      const answer = options.answer({ message: String(params.message ?? ''), requestedSchema: params.requestedSchema ?? {}, taskId: context.taskId });
      return (await untilAborted(answer, context.signal)) as never;
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

/** `promise`, or a rejection with the signal's reason as soon as `signal` aborts (e.g. the execution was detached). */
function untilAborted<T>(promise: Promise<T>, signal: AbortSignal | undefined): Promise<T> {
  if (!signal) return promise;
  if (signal.aborted) return Promise.reject(signal.reason);
  return new Promise<T>((resolve, reject) => {
    const onAbort = () => reject(signal.reason);
    signal.addEventListener('abort', onAbort, { once: true });
    promise.then(resolve, reject).finally(() => signal.removeEventListener('abort', onAbort));
  });
}
