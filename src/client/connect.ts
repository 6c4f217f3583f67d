import { Client, StreamableHTTPClientTransport } from '@modelcontextprotocol/client';
import {
  createTaskSessionFromClient,
  toolDeclarationFromMcpTool,
  type ApplicationElicitResult,
  type TaskEnabledSession,
  type ToolDeclaration,
} from '@modelcontextprotocol/ext-tasks/client';

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
}

/**
 * Connects the official SDK v2 `Client` over Streamable HTTP and wraps it in an
 * `@modelcontextprotocol/ext-tasks` session, the official requester for MCP Tasks. The endpoint id
 * of the session is the URL, so task references serialized by one process can be resumed by another.
 */
export async function connectTaskClient(url: string, options: ConnectOptions): Promise<TaskClient> {
  const client = new Client({ name: 'mcp-tasks-cli', version: '0.1.0' }, { capabilities: { elicitation: { form: {} } } });
  await client.connect(new StreamableHTTPClientTransport(new URL(url), { requestInit: { headers: options.headers ?? {} } }));
  const tools = new Map<string, ToolDeclaration>();
  try {
    for (const tool of (await client.listTools()).tools) tools.set(tool.name, toolDeclarationFromMcpTool(tool));
  } catch {
    /* a server without tools can still serve tasks/* */
  }
  const session = createTaskSessionFromClient(client, {
    endpointId: url,
    tools: { currentTool: (name) => tools.get(name) },
    onInputRequest: async (request, context) => {
      if (request.kind !== 'elicitation') throw new Error(`mcp-tasks CLI cannot answer ${request.kind} requests`);
      const params = request.params as unknown as ElicitationQuestion;
      return (await options.answer({ message: String(params.message ?? ''), requestedSchema: params.requestedSchema ?? {}, taskId: context.taskId })) as never;
    },
    onError: options.onError,
  });
  return {
    url,
    client,
    session,
    tools,
    close: async () => {
      await session.close().catch(() => undefined);
      await client.close().catch(() => undefined);
    },
  };
}
