/**
 * The tools of bench scenarios 9 and 10, registered on a `TaskServer` of whichever checkout the
 * server script loaded (so typed structurally): `trivial` answers at once; `stepped` runs four
 * journaled steps; `timed` waits on a 1 ms durable timer, then runs a step.
 */
import * as z from 'zod';

interface StepContext {
  step<T>(name: string, fn: () => T): Promise<T>;
  sleep(ms: number): Promise<void>;
}
interface ToolHost {
  registerTool(
    name: string,
    config: { description: string; inputSchema: z.ZodObject; taskSupport: 'optional' },
    handler: (args: Record<string, unknown>, ctx: StepContext) => Promise<{ content: { type: 'text'; text: string }[] }>,
  ): unknown;
}

export function registerStepTools(server: ToolHost): void {
  server.registerTool('trivial', { description: 'answers at once', inputSchema: z.object({}), taskSupport: 'optional' }, async () => ({
    content: [{ type: 'text', text: 'ok' }],
  }));
  server.registerTool('stepped', { description: 'four steps', inputSchema: z.object({}), taskSupport: 'optional' }, async (_a, ctx) => {
    let sum = 0;
    for (const step of ['a', 'b', 'c', 'd']) sum += await ctx.step(step, () => 1);
    return { content: [{ type: 'text', text: String(sum) }] };
  });
  server.registerTool('timed', { description: 'a 1 ms durable timer, then a step', inputSchema: z.object({}), taskSupport: 'optional' }, async (_a, ctx) => {
    await ctx.sleep(1);
    const one = await ctx.step('after', () => 1);
    return { content: [{ type: 'text', text: String(one) }] };
  });
}
