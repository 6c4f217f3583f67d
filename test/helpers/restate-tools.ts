/**
 * The task tools the Restate executor's tests run on a real `TaskRuntime`, each logging every
 * side-effect attempt to a file (one JSON line each) so tests can count them across processes.
 */
import { appendFileSync } from 'node:fs';
import type { TaskContext } from '../../src/runtime/context.js';
import type { TaskRuntime, TaskToolResult } from '../../src/runtime/runtime.js';

/** One line of the effects file: a side-effect attempt of `step` of task `taskId` under `token`. */
export interface Effect {
  taskId: string;
  step: string;
  at: number;
  token: number;
  value?: unknown;
}

/** A tool result carrying `value` as its structured content. */
function result(value: Record<string, unknown>): TaskToolResult {
  return { content: [{ type: 'text', text: JSON.stringify(value) }], structuredContent: value };
}

/**
 * Registers the test tools on `runtime`, each logging its side-effect attempts to `effects`:
 * - `timed`: step `one`, `ctx.sleep(sleepMs)`, step `two`; returns `{ wokeAt }`.
 * - `ask`: asks question `approval` (elicitation), then step `after` with the answer; returns the answer.
 * - `slow`: step `slow` that waits `ms` (ending early on the signal), then step `done`.
 */
export function registerTestTools(runtime: TaskRuntime, effects: string): void {
  const effect = (ctx: TaskContext, step: string, value?: unknown) =>
    appendFileSync(
      effects,
      `${JSON.stringify({ taskId: ctx.taskId, step, at: Date.now(), token: ctx.fencingToken, ...(value !== undefined && { value }) })}\n`,
    );
  const register = <A>(tool: string, handler: (args: A, ctx: TaskContext) => Promise<TaskToolResult>) =>
    runtime.register(tool, { parse: (args) => args, handler });
  register('timed', async (args: { sleepMs: number }, ctx) => {
    await ctx.step('one', () => effect(ctx, 'one'));
    await ctx.sleep(args.sleepMs);
    const wokeAt = await ctx.step('two', () => {
      effect(ctx, 'two');
      return Date.now();
    });
    return result({ wokeAt });
  });
  register('ask', async (_args, ctx) => {
    const answer = await ctx.elicit('Approve?', { type: 'object', properties: { decision: { type: 'string' } }, required: ['decision'] }, { key: 'approval' });
    await ctx.step('after', () => effect(ctx, 'after', answer));
    return result({ answer });
  });
  register('slow', async (args: { ms: number }, ctx) => {
    await ctx.step('slow', async (signal) => {
      effect(ctx, 'slow');
      await new Promise<void>((resolve, reject) => {
        const timer = setTimeout(resolve, args.ms);
        signal.addEventListener('abort', () => {
          clearTimeout(timer);
          reject(signal.reason as Error);
        });
      });
    });
    await ctx.step('done', () => effect(ctx, 'done'));
    return result({ ok: true });
  });
}
