/**
 * Baseline: the official TypeScript SDK 1.x (`@modelcontextprotocol/sdk`, installed here as
 * `sdk-v1`) with its experimental tasks and `InMemoryTaskStore` — what users have without
 * mcp-tasks. Same tools as bench/servers/ours.ts (`trivial`, `sleepy`), Streamable HTTP sessions,
 * pollInterval 10 ms. Prints the MCP URL on stdout.
 */
import './gc-stats.js';
import { randomUUID } from 'node:crypto';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { McpServer } from 'sdk-v1/server/mcp.js';
import { StreamableHTTPServerTransport } from 'sdk-v1/server/streamableHttp.js';
import { isInitializeRequest } from 'sdk-v1/types.js';
import { InMemoryTaskMessageQueue, InMemoryTaskStore } from 'sdk-v1/experimental/tasks/stores/in-memory.js';

const taskStore = new InMemoryTaskStore();
const make = () => {
  const server = new McpServer(
    { name: 'bench-baseline', version: '0' },
    { capabilities: { tasks: { requests: { tools: { call: {} } } } }, taskStore, taskMessageQueue: new InMemoryTaskMessageQueue() },
  );
  const register = (name: string, work: (taskId: string) => void) =>
    server.experimental.tasks.registerToolTask(
      name,
      { description: name, inputSchema: {}, execution: { taskSupport: 'optional' } } as never,
      {
        async createTask(_args: unknown, { taskStore: store, taskRequestedTtl }: any) {
          const task = await store.createTask({ ttl: taskRequestedTtl, pollInterval: 10 });
          work(task.taskId);
          return { task };
        },
        async getTask(_args: unknown, { taskId, taskStore: store }: any) {
          return store.getTask(taskId);
        },
        async getTaskResult(_args: unknown, { taskId, taskStore: store }: any) {
          return store.getTaskResult(taskId);
        },
      } as never,
    );
  // The work runs after CreateTaskResult is sent, as a task's work does (mcp-tasks starts it once the task
  // is stored): BENCH_PEER_SYNC=1 completes it inside createTask instead, so the client sees `completed`
  // at creation and skips polling (the shape of this bench before 2026-11-22).
  const complete = (taskId: string) => void taskStore.storeTaskResult(taskId, 'completed', { content: [{ type: 'text', text: 'ok' }] });
  register('trivial', process.env.BENCH_PEER_SYNC === '1' ? complete : (taskId) => setImmediate(complete, taskId));
  register('sleepy', () => undefined);
  return server;
};

const sessions = new Map<string, StreamableHTTPServerTransport>();
const serve = async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
  const chunks: Buffer[] = [];
  for await (const c of req) chunks.push(c as Buffer);
  const body = chunks.length ? JSON.parse(Buffer.concat(chunks).toString()) : undefined;
  const sid = req.headers['mcp-session-id'] as string | undefined;
  let transport = sid ? sessions.get(sid) : undefined;
  if (!transport) {
    if (!isInitializeRequest(body)) return void res.writeHead(400).end();
    const t: StreamableHTTPServerTransport = new StreamableHTTPServerTransport({
      sessionIdGenerator: () => randomUUID(),
      onsessioninitialized: (id) => void sessions.set(id, t),
    });
    transport = t;
    await make().connect(t);
  }
  await transport.handleRequest(req, res, body);
};
const http = createServer((req, res) => {
  serve(req, res).catch((error: unknown) => {
    console.error(error);
    if (!res.headersSent) res.writeHead(500);
    res.end();
  });
});
http.listen(0, '127.0.0.1', () => process.stdout.write(`http://127.0.0.1:${(http.address() as AddressInfo).port}/mcp\n`));
process.on('SIGTERM', () => process.exit(0)); // lets --cpu-prof write its profile
