/**
 * An SDK-free 2026-07-28 client for wire tests: every request carries the per-request `_meta`
 * envelope and the standard headers (`MCP-Protocol-Version`, `Mcp-Method`, `Mcp-Name`).
 */
import { sseMessages } from '../../src/client/sse.js';
import type { RpcMessage } from './raw-client.js';

export const TASKS_EXT = 'io.modelcontextprotocol/tasks';

export class ModernRawClient {
  private nextId = 1;
  constructor(
    readonly url: string,
    readonly declareTasks = true,
    /** Abort each request after this many ms (none by default). */
    readonly timeoutMs?: number,
    /** Declared client capabilities besides the tasks extension (default: form elicitation). */
    readonly capabilities: Record<string, unknown> = { elicitation: {} },
    /** What sends the HTTP request (default the global `fetch`; a mounted handler's `fetch` to skip the network). */
    readonly fetchImpl: (url: string, init: RequestInit) => Promise<Response> = fetch,
  ) {}

  envelope(): Record<string, unknown> {
    return {
      'io.modelcontextprotocol/protocolVersion': '2026-07-28',
      'io.modelcontextprotocol/clientInfo': { name: 'modern-raw', version: '0' },
      'io.modelcontextprotocol/clientCapabilities': { ...this.capabilities, ...(this.declareTasks && { extensions: { [TASKS_EXT]: {} } }) },
    };
  }

  /** Sends one request; returns the JSON-RPC response (reads SSE until it arrives). */
  async request(method: string, params: Record<string, unknown> = {}, headers: Record<string, string> = {}): Promise<RpcMessage & { httpStatus: number }> {
    const response = await this.send(method, params, headers);
    const type = response.headers.get('content-type') ?? '';
    if (type.includes('application/json')) return { ...((await response.json()) as RpcMessage), httpStatus: response.status };
    const messages = await readSse(response, (m) => m.id !== undefined && (m.result !== undefined || m.error !== undefined));
    return { ...messages.at(-1)!, httpStatus: response.status };
  }

  async send(method: string, params: Record<string, unknown> = {}, headers: Record<string, string> = {}): Promise<Response> {
    const id = this.nextId++;
    const name = (params.taskId ?? params.name) as string | undefined;
    return this.fetchImpl(this.url, {
      method: 'POST',
      headers: {
        'content-type': 'application/json',
        accept: 'application/json, text/event-stream',
        'mcp-protocol-version': '2026-07-28',
        'mcp-method': method,
        ...(typeof name === 'string' &&
          name !== '' && { 'mcp-name': /^[\x20-\x7e]*$/.test(name) ? name : `=?base64?${Buffer.from(name).toString('base64')}?=` }),
        ...headers,
      },
      body: JSON.stringify({ jsonrpc: '2.0', id, method, params: { ...params, _meta: { ...(params._meta as object | undefined), ...this.envelope() } } }),
      ...(this.timeoutMs !== undefined && { signal: AbortSignal.timeout(this.timeoutMs) }),
    });
  }
}

/** Reads SSE messages until `stop(message)` is true or the stream ends; returns all messages read. */
export async function readSse(response: Response, stop: (m: RpcMessage) => boolean): Promise<RpcMessage[]> {
  const out: RpcMessage[] = [];
  for await (const message of sseMessages<RpcMessage>(response)) {
    out.push(message);
    if (stop(message)) break;
  }
  return out;
}
