// The task tool the mount examples share: a journaled step, a durable timer, a question.
import * as z from 'zod';
import type { TaskServer } from '../../src/index.js'; // in your project: from 'mcp-tasks'

export function registerGreetLater(server: TaskServer): TaskServer {
  return server.registerTool(
    'greet_later',
    { description: 'Greets someone after a durable wait and a question', inputSchema: z.object({ name: z.string() }), taskSupport: 'optional' },
    async ({ name }, ctx) => {
      const greeting = await ctx.step('compose', () => `Hello, ${name}!`);
      await ctx.sleep(200);
      const answer = await ctx.elicit(`Send "${greeting}"?`, { type: 'object', properties: { send: { type: 'boolean' } }, required: ['send'] });
      const sent = answer.action === 'accept' && answer.content?.send === true;
      return { content: [{ type: 'text', text: sent ? greeting : 'Not sent.' }] };
    },
  );
}
