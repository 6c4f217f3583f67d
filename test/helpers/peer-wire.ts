/**
 * A recording loopback proxy for interop tests: forwards every HTTP request to one upstream MCP
 * endpoint unchanged (responses streamed through, SSE included) and records the JSON-RPC messages
 * in both directions, each tagged with the HTTP exchange that carried it. That answers "which stream
 * did the question arrive on" (the SSE response of which POST, or the GET stream) and "what did the
 * client send" without touching either side.
 */
import { createServer, request, type IncomingHttpHeaders } from 'node:http';
import type { AddressInfo } from 'node:net';

export interface WireMessage {
  jsonrpc?: string;
  id?: string | number | null;
  method?: string;
  params?: any;
  result?: any;
  error?: { code: number; message: string; data?: unknown };
}

/** One HTTP request/response pair seen by the proxy. */
export interface WireExchange {
  n: number;
  /** Milliseconds since the proxy started, when the request arrived. */
  at: number;
  httpMethod: string;
  sessionId?: string;
  status?: number;
  contentType?: string;
  /** JSON-RPC messages in the request body (client → server). */
  sent: WireMessage[];
  /** JSON-RPC messages in the response body, JSON or SSE (server → client), with their arrival time. */
  received: { at: number; message: WireMessage; sseId?: string }[];
  /** SSE events with an id but empty `data:` (SDK 1.x priming events, sent when the server has an event store). */
  emptyEvents: number;
  /** SSE comment-only events (SDK 1.x `: keepalive`). */
  comments: number;
  ended: boolean;
  /** The client closed the connection before the response ended (e.g. it stopped reading a tasks/result stream). */
  abandoned: boolean;
  /** When the response ended or the client closed it (ms since the proxy started). */
  closedAt?: number;
}

export interface RecordingProxy {
  url: string;
  exchanges: WireExchange[];
  /** Every client → server message, with its exchange. */
  sent(): { exchange: WireExchange; message: WireMessage }[];
  /** Every server → client message, with its exchange. */
  received(): { exchange: WireExchange; message: WireMessage; at: number }[];
  /** One line per exchange, for failure messages and reports. */
  summary(): string;
  close(): Promise<void>;
}

const label = (m: WireMessage): string => {
  if (m.method) return `${m.id !== undefined ? 'req' : 'note'} ${m.method}${m.id !== undefined ? `#${m.id}` : ''}${brief(m.params)}`;
  if (m.error) return `error#${m.id} ${m.error.code} ${m.error.message}`;
  return `result#${m.id}${brief(m.result)}`;
};

function brief(value: any): string {
  if (!value || typeof value !== 'object') return '';
  const bits: string[] = [];
  const task = value.task ?? (typeof value.status === 'string' ? value : undefined);
  if (task?.status) bits.push(`status=${task.status}`);
  if (value.taskId && !task?.status) bits.push(`taskId=${String(value.taskId).slice(0, 8)}`);
  if (value.name) bits.push(`name=${value.name}`);
  if (value.action) bits.push(`action=${value.action}`);
  if (value._meta?.['io.modelcontextprotocol/related-task']) bits.push(`related-task=${JSON.stringify(value._meta['io.modelcontextprotocol/related-task'])}`);
  return bits.length ? ` (${bits.join(', ')})` : '';
}

function parseBody(text: string): WireMessage[] {
  if (!text.trim()) return [];
  try {
    const value = JSON.parse(text);
    return Array.isArray(value) ? value : [value];
  } catch {
    return [{ method: `<unparsable ${text.length} bytes>` }];
  }
}

/** Starts the proxy on 127.0.0.1 (ephemeral port); its `url` has the upstream's path. */
export async function startRecordingProxy(upstream: string): Promise<RecordingProxy> {
  const target = new URL(upstream);
  const started = Date.now();
  const exchanges: WireExchange[] = [];
  const server = createServer((req, res) => {
    const exchange: WireExchange = {
      n: exchanges.length + 1,
      at: Date.now() - started,
      httpMethod: req.method ?? '?',
      sessionId: header(req.headers, 'mcp-session-id'),
      sent: [],
      received: [],
      emptyEvents: 0,
      comments: 0,
      ended: false,
      abandoned: false,
    };
    exchanges.push(exchange);
    const body: Buffer[] = [];
    req.on('data', (chunk: Buffer) => body.push(chunk));
    req.on('end', () => {
      const payload = Buffer.concat(body);
      exchange.sent = parseBody(payload.toString('utf8'));
      const headers = { ...req.headers, host: target.host };
      // The body was buffered: send it with a length, never chunked.
      delete headers['content-length'];
      delete headers['transfer-encoding'];
      if (payload.length > 0) headers['content-length'] = String(payload.length);
      const upstreamReq = request({ host: target.hostname, port: target.port, method: req.method, path: req.url, headers }, (response) => {
        exchange.status = response.statusCode;
        exchange.contentType = header(response.headers, 'content-type');
        res.writeHead(response.statusCode ?? 502, response.headers);
        const sse = exchange.contentType?.includes('text/event-stream');
        let buffered = '';
        response.on('data', (chunk: Buffer) => {
          res.write(chunk);
          buffered += chunk.toString('utf8');
          if (sse) buffered = consumeSse(buffered, exchange, started);
        });
        response.on('end', () => {
          exchange.ended = true;
          if (!sse) for (const message of parseBody(buffered)) exchange.received.push({ at: Date.now() - started, message });
          else consumeSse(`${buffered}\n\n`, exchange, started);
          res.end();
        });
        response.on('error', () => res.destroy());
      });
      upstreamReq.on('error', () => {
        if (!res.headersSent) res.writeHead(502).end();
        else res.destroy();
      });
      res.on('close', () => {
        if (!exchange.ended) exchange.abandoned = true;
        exchange.closedAt ??= Date.now() - started;
        upstreamReq.destroy();
      });
      upstreamReq.end(payload);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}${target.pathname}${target.search}`,
    exchanges,
    sent: () => exchanges.flatMap((exchange) => exchange.sent.map((message) => ({ exchange, message }))),
    received: () => exchanges.flatMap((exchange) => exchange.received.map(({ message, at }) => ({ exchange, message, at }))),
    summary: () =>
      exchanges
        .map((e) => {
          const what = e.sent.length ? e.sent.map(label).join(' + ') : '(no body)';
          const back = e.received.map((r) => `${label(r.message)} @${r.at}ms`).join('; ');
          const kind = e.contentType?.includes('event-stream') ? 'SSE' : e.contentType?.includes('json') ? 'JSON' : (e.contentType ?? '-');
          return `#${e.n} @${e.at}ms ${e.httpMethod} ${what} -> ${e.status ?? '…'} ${kind}${e.emptyEvents ? ` [${e.emptyEvents} priming event(s)]` : ''}${back ? `: ${back}` : ''}${e.ended ? '' : e.abandoned ? ` (closed by the client @${e.closedAt}ms before the end)` : ' (open)'}`;
        })
        .join('\n'),
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

function header(headers: IncomingHttpHeaders, name: string): string | undefined {
  const value = headers[name];
  return Array.isArray(value) ? value[0] : value;
}

/** Takes every complete SSE event off `buffered`, records its JSON-RPC message, returns the rest. */
function consumeSse(buffered: string, exchange: WireExchange, started: number): string {
  const normalized = buffered.replace(/\r\n?/g, '\n');
  const events = normalized.split('\n\n');
  const rest = events.pop() ?? '';
  for (const event of events) {
    if (!event.trim()) continue;
    let data = '';
    let id: string | undefined;
    let fields = 0;
    for (const line of event.split('\n')) {
      if (line.startsWith(':')) continue;
      fields++;
      if (line.startsWith('data:')) data += (data ? '\n' : '') + line.slice(5).replace(/^ /, '');
      else if (line.startsWith('id:')) id = line.slice(3).trim();
    }
    if (fields === 0) {
      exchange.comments++;
      continue;
    }
    if (!data.trim()) {
      exchange.emptyEvents++;
      continue;
    }
    for (const message of parseBody(data)) exchange.received.push({ at: Date.now() - started, message, ...(id !== undefined && { sseId: id }) });
  }
  return rest;
}
