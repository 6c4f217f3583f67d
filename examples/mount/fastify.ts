// A Fastify app with durable MCP tasks mounted at /mcp: `node --import tsx examples/mount/fastify.ts` (PORT, STORE env).
import { createMcpFastifyApp } from '@modelcontextprotocol/fastify';
import { createTaskServer } from '../../src/index.js'; // in your project: from 'mcp-tasks'
import { registerGreetLater } from './greet-later.js';

const tasks = registerGreetLater(createTaskServer({ store: process.env.STORE ?? 'sqlite:.mcp-tasks/fastify.db' }));
await tasks.start();

const app = createMcpFastifyApp(); // Host/Origin checks on loopback; Fastify parses JSON bodies itself
app.get('/health', async () => ({ ok: true })); // the app's own routes
const mcp = tasks.httpHandler();
app.all('/mcp', async (request, reply) => {
  reply.hijack(); // the handler writes the response (JSON or an SSE stream) itself
  await mcp.node(request.raw, reply.raw, request.body);
});

await app.listen({ host: '127.0.0.1', port: Number(process.env.PORT ?? 3000) });
console.log(`http://127.0.0.1:${(app.server.address() as { port: number }).port}/mcp`);
process.once('SIGTERM', () => void app.close().then(() => tasks.close()));
