// An Express app with routes and auth of its own, durable MCP tasks mounted at /mcp and their operator
// console at /ops: `node --import tsx examples/mount/express.ts` (PORT, STORE env).
// Tokens: alice-token, bob-token (MCP clients), ops-token (the console).
import express from 'express';
import { localhostHostValidation, requireBearerAuth } from '@modelcontextprotocol/express';
import { createTaskServer, staticTokenVerifier } from '../../src/index.js'; // in your project: from 'mcp-tasks'
import { registerGreetLater } from './greet-later.js';

const tasks = registerGreetLater(createTaskServer({ store: process.env.STORE ?? 'sqlite:.mcp-tasks/express.db' }));
await tasks.start(); // resumes unfinished tasks; a store that cannot be reached stops the app here

const app = express();
app.use(localhostHostValidation()); // DNS-rebinding protection for a server on loopback
app.use('/ops', tasks.consoleHandler({ basePath: '/ops', operatorTokens: { 'ops-token': 'olivia' } }).node); // before body parsers
app.use(express.json({ limit: '4mb' }));
app.get('/health', (_req, res) => void res.json({ ok: true })); // the app's own routes
app.get('/api/greeting', (req, res) => void res.json({ greeting: `Hello, ${String(req.query.name ?? 'world')}!` }));

// The app's own authentication sets req.auth; its principal owns the tasks it creates.
const verifier = staticTokenVerifier({ 'alice-token': 'alice', 'bob-token': 'bob' });
const mcp = tasks.httpHandler();
app.all('/mcp', requireBearerAuth({ verifier }), (req, res) => void mcp.node(req, res, req.body));

const http = app.listen(Number(process.env.PORT ?? 3000), '127.0.0.1', () => {
  const { port } = http.address() as { port: number };
  console.log(`http://127.0.0.1:${port}/mcp`);
});
process.once('SIGTERM', () => http.close(() => void tasks.close()));
