// The worker beside the serverless function: runs every task of the shared store (steps, timers,
// questions, retries), serves no HTTP. Run one or more: `node --import tsx examples/serverless/worker.ts`.
import { createTaskServer } from '../../src/index.js'; // in your project: from 'mcp-tasks'
import { registerGreetLater } from '../mount/greet-later.js';

const tasks = registerGreetLater(createTaskServer({ store: process.env.STORE ?? 'postgres://postgres@127.0.0.1:5432/test?schema=serverless' }));
const { resumed } = await tasks.serveWorker();
console.log(`worker running (${resumed} tasks resumed)`);
tasks.closeOnSignals();
