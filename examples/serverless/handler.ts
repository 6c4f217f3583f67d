// A serverless function serving durable MCP tasks: any request may land on a fresh instance, so
// nothing lives in the process. The shared store holds every task; the worker (worker.ts) runs them.
// Export shape: `{ fetch(request) => Response }` (Cloudflare Workers, Bun, Deno, Vercel/Netlify
// functions; AWS Lambda through a Request/Response adapter such as Hono's `hono/aws-lambda`).
import { createTaskServer } from '../../src/index.js'; // in your project: from 'mcp-tasks'
import { registerGreetLater } from '../mount/greet-later.js';

const tasks = registerGreetLater(
  createTaskServer({
    store: process.env.STORE ?? 'postgres://postgres@127.0.0.1:5432/test?schema=serverless',
    runtime: { runTasks: false }, // this instance creates tasks and stores answers; the worker runs them
    tasks: { fallbackTools: true }, // 2025-11-25 clients answer questions with answer_task_input (no sessions here)
  }),
);
const mcp = tasks.httpHandler({ stateless: true }); // no Mcp-Session-Id, no per-client state

export default { fetch: (request: Request): Promise<Response> => mcp.fetch(request) };
