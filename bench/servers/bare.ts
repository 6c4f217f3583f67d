/**
 * The load generator's floor: a bare `node:http` server that reads each POST body and answers it
 * with a fixed JSON-RPC result shaped like the one the method expects (`initialize`, a
 * `CreateTaskResult`, a `Task`), doing no MCP work at all. Whatever latency the bench measures
 * against it is the generator's and the kernel's, on this machine, in the same run: no server can
 * answer faster through the same client. Prints the URL on stdout.
 */
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

const task = {
  taskId: 'bare',
  status: 'working',
  createdAt: '2026-01-01T00:00:00.000Z',
  lastUpdatedAt: '2026-01-01T00:00:00.000Z',
  ttl: 60000,
  pollInterval: 10,
};
const results: Record<string, unknown> = {
  initialize: { protocolVersion: '2025-11-25', capabilities: {}, serverInfo: { name: 'bare', version: '0' } },
  'tools/call': { task },
  'tasks/get': task,
};

const serve = async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
  const chunks: Buffer[] = [];
  for await (const c of req) chunks.push(c as Buffer);
  const body = JSON.parse(Buffer.concat(chunks).toString()) as { id?: string | number; method?: string };
  if (body.id === undefined) return void res.writeHead(202).end();
  res.writeHead(200, { 'content-type': 'application/json', 'mcp-session-id': 'bare' });
  res.end(JSON.stringify({ jsonrpc: '2.0', id: body.id, result: results[body.method ?? ''] ?? {} }));
};
const http = createServer((req, res) => {
  serve(req, res).catch((error: unknown) => {
    console.error(error);
    if (!res.headersSent) res.writeHead(500);
    res.end();
  });
});
http.keepAliveTimeout = 60_000;
http.listen(0, '127.0.0.1', () => console.log(`http://127.0.0.1:${(http.address() as AddressInfo).port}/mcp`));
process.on('SIGTERM', () => process.exit(0));
