// A Hono app on Node with durable MCP tasks mounted at /mcp through the web-standard handler:
// `node --import tsx examples/mount/hono.ts` (PORT, STORE env).
import { serve } from '@hono/node-server';
import { createMcpHonoApp } from '@modelcontextprotocol/hono';
import { createTaskServer } from '../../src/index.js'; // in your project: from 'mcp-tasks'
import { registerGreetLater } from './greet-later.js';

const tasks = registerGreetLater(createTaskServer({ store: process.env.STORE ?? 'sqlite:.mcp-tasks/hono.db' }));
await tasks.start();

const app = createMcpHonoApp(); // Host/Origin checks on loopback
app.get('/health', (c) => c.json({ ok: true })); // the app's own routes
const mcp = tasks.httpHandler();
app.all('/mcp', (c) => mcp.fetch(c.req.raw)); // a web-standard Request in, a Response out (SSE as a stream)

const http = serve({ fetch: app.fetch, hostname: '127.0.0.1', port: Number(process.env.PORT ?? 3000) }, ({ port }) => {
  console.log(`http://127.0.0.1:${port}/mcp`);
});
process.once('SIGTERM', () => http.close(() => void tasks.close()));
