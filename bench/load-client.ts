/**
 * The benchmark's load client: one MCP client per instance, on its own keep-alive connection
 * (node:http, no fetch), speaking 2025-11-25 (session, `params.task`, `tasks/get`, `tasks/result`)
 * or 2026-07-28 (per-request `_meta` envelope and standard headers, server-directed tasks,
 * `tasks/get` with the result inline). Light on purpose: the load generator shares the machine
 * with the server, so every cycle it spends is one the server does not get. Responses are read as
 * JSON or as an SSE stream (the message answering the request's id).
 */
import { Agent, request } from 'node:http';

export type BenchEra = '2025' | '2026';

export interface Rpc {
  id?: number | string;
  result?: any;
  error?: { code: number; message: string; data?: unknown };
}

const ENVELOPE = {
  'io.modelcontextprotocol/protocolVersion': '2026-07-28',
  'io.modelcontextprotocol/clientInfo': { name: 'bench', version: '0' },
  'io.modelcontextprotocol/clientCapabilities': { extensions: { 'io.modelcontextprotocol/tasks': {} } },
};

export class LoadClient {
  private readonly agent = new Agent({ keepAlive: true, maxSockets: 1 });
  private readonly target: URL;
  private sessionId?: string;
  private nextId = 1;

  private readonly envelope: Record<string, unknown>;

  /** `options.elicitation`: 2026-07-28 requests declare form elicitation too (the server may then ask this client questions). */
  constructor(
    url: string,
    readonly era: BenchEra,
    options: { elicitation?: boolean } = {},
  ) {
    this.target = new URL(url);
    this.envelope = options.elicitation
      ? { ...ENVELOPE, 'io.modelcontextprotocol/clientCapabilities': { elicitation: {}, extensions: { 'io.modelcontextprotocol/tasks': {} } } }
      : ENVELOPE;
  }

  /** 2025-11-25: `initialize` + `notifications/initialized`; 2026-07-28 needs nothing. */
  async init(): Promise<void> {
    if (this.era === '2026') return;
    const init = await this.rpc('initialize', { protocolVersion: '2025-11-25', capabilities: {}, clientInfo: { name: 'bench', version: '0' } });
    if (init.error) throw new Error(`initialize: ${init.error.message}`);
    await this.send({ jsonrpc: '2.0', method: 'notifications/initialized' }, {});
  }

  /** One JSON-RPC request; resolves with its response. */
  async rpc(method: string, params: Record<string, unknown> = {}): Promise<Rpc> {
    const id = this.nextId++;
    const modern = this.era === '2026';
    const name = (params.taskId ?? params.name) as string | undefined;
    const headers: Record<string, string> = modern
      ? { 'mcp-protocol-version': '2026-07-28', 'mcp-method': method, ...(name !== undefined && { 'mcp-name': name }) }
      : { ...(this.sessionId && { 'mcp-session-id': this.sessionId, 'mcp-protocol-version': '2025-11-25' }) };
    const body = { jsonrpc: '2.0', id, method, params: modern ? { ...params, _meta: this.envelope } : params };
    const { text, type } = await this.send(body, headers);
    if (type.includes('text/event-stream')) {
      for (const line of text.split('\n')) {
        if (!line.startsWith('data:')) continue;
        const message = JSON.parse(line.slice(5)) as Rpc & { method?: string };
        if (message.id === id && !message.method) return message;
      }
      throw new Error(`no response to ${method} in the stream: ${text.slice(0, 200)}`);
    }
    return JSON.parse(text) as Rpc;
  }

  /** A task-tool call that must become a task: `{ taskId, status, pollInterval }` (ms). */
  async createTask(tool: string): Promise<{ taskId: string; status: string; pollInterval: number }> {
    const res =
      this.era === '2026' ? await this.rpc('tools/call', { name: tool, arguments: {} }) : await this.rpc('tools/call', { name: tool, arguments: {}, task: {} });
    const task = this.era === '2026' ? res.result : res.result?.task;
    if (!task?.taskId) throw new Error(`no task: ${JSON.stringify(res)}`);
    return { taskId: task.taskId, status: task.status, pollInterval: task.pollInterval ?? task.pollIntervalMs ?? 10 };
  }

  /**
   * One lifecycle: create, poll `tasks/get` every `pollInterval` until terminal, then (2025-11-25)
   * `tasks/result`; in 2026-07-28 the last `tasks/get` carries the result.
   */
  async lifecycle(tool: string): Promise<void> {
    const task = await this.createTask(tool);
    let status = task.status;
    let last: Rpc | undefined;
    while (status !== 'completed' && status !== 'failed' && status !== 'cancelled') {
      await new Promise((r) => setTimeout(r, task.pollInterval));
      last = await this.rpc('tasks/get', { taskId: task.taskId });
      if (!last.result) throw new Error(`tasks/get: ${JSON.stringify(last)}`);
      status = last.result.status;
    }
    if (this.era === '2025') {
      const result = await this.rpc('tasks/result', { taskId: task.taskId });
      if (!result.result) throw new Error(`tasks/result: ${JSON.stringify(result)}`);
      return;
    }
    // 2026: a task already ended at creation (a client that did not declare elicitation has its
    // create held until the task asks or ends) still needs one tasks/get to fetch its result.
    last ??= await this.rpc('tasks/get', { taskId: task.taskId });
    if (!last.result?.result) throw new Error(`tasks/get of a completed task without its result: ${JSON.stringify(last)}`);
  }

  close(): void {
    this.agent.destroy();
  }

  private async send(body: unknown, headers: Record<string, string>): Promise<{ text: string; type: string }> {
    const response = await postJson(this.agent, this.target, body, headers);
    if (response.sessionId !== undefined) this.sessionId = response.sessionId;
    return response;
  }
}

/**
 * One JSON POST as an MCP client sends it (JSON and SSE accepted) on `agent`: resolves with the
 * HTTP status, the `Mcp-Session-Id` response header if any, the body as text and its content type.
 */
export function postJson(
  agent: Agent,
  target: URL,
  body: unknown,
  headers: Record<string, string>,
): Promise<{ status: number; sessionId?: string; text: string; type: string }> {
  const payload = JSON.stringify(body);
  return new Promise((resolve, reject) => {
    const req = request(
      target,
      {
        method: 'POST',
        agent,
        headers: {
          'content-type': 'application/json',
          accept: 'application/json, text/event-stream',
          'content-length': Buffer.byteLength(payload),
          ...headers,
        },
      },
      (res) => {
        const sessionId = res.headers['mcp-session-id'];
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () =>
          resolve({
            status: res.statusCode ?? 0,
            ...(typeof sessionId === 'string' && { sessionId }),
            text: Buffer.concat(chunks).toString('utf8'),
            type: String(res.headers['content-type'] ?? ''),
          }),
        );
        res.on('error', reject);
      },
    );
    req.on('error', reject);
    req.end(payload);
  });
}
