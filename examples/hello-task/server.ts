// The smallest durable task server: `node --import tsx examples/hello-task/server.ts` (PORT, STORE env).
import * as z from 'zod';
import { createTaskServer } from '../../src/index.js'; // in your project: from 'mcp-tasks'

const server = createTaskServer({ store: process.env.STORE ?? 'sqlite:.mcp-tasks/hello.db' });

server.registerTool(
  'greet_later',
  { description: 'Greets someone after a durable wait and a question', inputSchema: z.object({ name: z.string() }), taskSupport: 'optional' },
  async ({ name }, ctx) => {
    const greeting = await ctx.step('compose', () => `Hello, ${name}!`); // journaled: never re-run once done
    await ctx.sleep(1_000); // a durable timer: survives a restart
    const answer = await ctx.elicit(`Send "${greeting}"?`, { type: 'object', properties: { send: { type: 'boolean' } }, required: ['send'] });
    const sent = answer.action === 'accept' && answer.content?.send === true;
    return { content: [{ type: 'text', text: sent ? greeting : 'Not sent.' }] };
  },
);

const http = await server.listen({ port: Number(process.env.PORT ?? 3000) });
console.log(http.url);
server.closeOnSignals();
