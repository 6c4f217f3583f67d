/**
 * A deliberately SDK-free MCP client for wire tests: plain fetch, JSON-RPC by hand, Streamable HTTP
 * responses read as JSON or SSE. Server-to-client requests seen on a stream are handed to
 * `onServerRequest` and its return value is POSTed back as the JSON-RPC response.
 */
import { sseMessages } from '../../src/client/sse.js';

export interface RpcMessage {
  jsonrpc: '2.0';
  id?: string | number;
  method?: string;
  params?: any;
  result?: any;
  error?: { code: number; message: string; data?: unknown };
}

export class RawMcpClient {
  sessionId?: string;
  private nextId = 1;
  readonly notifications: RpcMessage[] = [];

  constructor(
    readonly url: string,
    private readonly headers: Record<string, string> = {},
  ) {}

  /** initialize + notifications/initialized, protocol 2025-11-25. Returns the InitializeResult. */
  async initialize(capabilities: Record<string, unknown> = { elicitation: { form: {} } }): Promise<any> {
    const res = await this.request('initialize', { protocolVersion: '2025-11-25', capabilities, clientInfo: { name: 'raw-test-client', version: '0' } });
    if (res.error) throw new Error(`initialize failed: ${res.error.message}`);
    await this.notify('notifications/initialized');
    return res.result;
  }

  async notify(method: string, params?: unknown): Promise<void> {
    await this.post({ jsonrpc: '2.0', method, ...(params !== undefined && { params }) });
  }

  /** Sends a request and returns its response (result or error), answering server requests on the way. */
  async request(method: string, params?: unknown, onServerRequest?: (req: RpcMessage) => Promise<unknown>): Promise<RpcMessage> {
    const id = this.nextId++;
    const response = await this.post({ jsonrpc: '2.0', id, method, ...(params !== undefined && { params }) });
    return this.readResponse(response, id, onServerRequest);
  }

  /** POSTs any body (valid or not) and returns the raw HTTP response. */
  async post(body: unknown): Promise<Response> {
    const response = await postInSession(this.url, this.sessionId, body, { headers: this.headers });
    const sid = response.headers.get('mcp-session-id');
    if (sid) this.sessionId = sid;
    return response;
  }

  private async readResponse(response: Response, id: number, onServerRequest?: (req: RpcMessage) => Promise<unknown>): Promise<RpcMessage> {
    const type = response.headers.get('content-type') ?? '';
    if (type.includes('application/json')) return (await response.json()) as RpcMessage;
    if (!type.includes('text/event-stream') || !response.body) throw new Error(`unexpected response ${response.status} ${type}: ${await response.text()}`);
    for await (const message of sseMessages<RpcMessage>(response)) {
      if (message.id === id && (message.result !== undefined || message.error !== undefined)) return message;
      if (message.method && message.id !== undefined) {
        if (!onServerRequest) throw new Error(`unexpected server request ${message.method}`);
        const result = await onServerRequest(message);
        await this.post({ jsonrpc: '2.0', id: message.id, result });
      } else if (message.method) {
        this.notifications.push(message);
      }
    }
    throw new Error(`stream ended without a response to request ${id}`);
  }
}

/**
 * POSTs a body (a JSON-RPC message, or any string) as a 2025-11-25 client would: JSON and SSE
 * accepted, `MCP-Protocol-Version: 2025-11-25`, `Mcp-Session-Id` when `sessionId` is given (any
 * session, e.g. one an SDK client opened). Returns the raw HTTP response.
 */
export function postInSession(
  url: string,
  sessionId: string | undefined,
  body: unknown,
  options: { headers?: Record<string, string>; signal?: AbortSignal } = {},
): Promise<Response> {
  return fetch(url, {
    method: 'POST',
    headers: {
      'content-type': 'application/json',
      accept: 'application/json, text/event-stream',
      'mcp-protocol-version': '2025-11-25',
      ...options.headers,
      ...(sessionId && { 'mcp-session-id': sessionId }),
    },
    body: typeof body === 'string' ? body : JSON.stringify(body),
    signal: options.signal,
  });
}
