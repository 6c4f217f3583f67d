/**
 * A small stand-in for `TaskRuntime` driving a `TaskExecutor` the way the runtime does (store write
 * first, then the executor's notification), for the Restate executor's tests; plus the handlers those
 * tests run, which log every side-effect attempt to a file (one JSON line each) so tests can count them.
 */
import { appendFileSync } from 'node:fs';
import { ENGINE_ACCESS } from '../../src/core/access.js';
import { IllegalTransitionError, LeaseLostError, TaskNotFoundError } from '../../src/core/errors.js';
import type { JsonObject } from '../../src/core/json.js';
import { silentLogger, type Logger } from '../../src/core/log.js';
import type { TaskRecord } from '../../src/core/task.js';
import type { ExecutorHost, RunEnd, TaskExecutor } from '../../src/runtime/executor.js';
import type { RegisteredHandler } from '../../src/runtime/runtime.js';
import type { TaskContext } from '../../src/runtime/context.js';
import type { TaskStore } from '../../src/store/task-store.js';

/** Drives `executor` over `store` as `TaskRuntime` does. */
export class MiniRuntime {
  private readonly handlers = new Map<string, RegisteredHandler>();
  constructor(
    readonly store: TaskStore,
    readonly executor: TaskExecutor,
    log: Logger = silentLogger,
  ) {
    const host: ExecutorHost = {
      store,
      log,
      now: () => store.now(),
      handler: (tool) => this.handlers.get(tool),
      openArguments: (args) => args,
      finish: (task, outcome, fence) => finish(store, task, outcome, fence),
      onError: (error, taskId) => log.error({ err: error, taskId }, 'executor error'),
    };
    executor.bind(host);
  }

  register(tool: string, handler: (args: any, ctx: TaskContext) => Promise<unknown>): void {
    this.handlers.set(tool, { parse: (args) => args, handler: handler as RegisteredHandler['handler'] });
  }

  async submit(tool: string, args: JsonObject): Promise<TaskRecord> {
    const lease = this.executor.leaseForNewTask();
    const task = await this.store.create({
      owner: null,
      request: { tool, arguments: args },
      ttl: 3_600_000,
      errorResultStatus: 'failed',
      ...(lease && { lease }),
    });
    await this.executor.start(task, performance.now());
    return task;
  }

  async answer(taskId: string, key: string, response: unknown): Promise<string[]> {
    const taken = await this.store.answerInputs(taskId, { [key]: response }, ENGINE_ACCESS);
    if (taken.length > 0) await this.executor.answered(taskId, taken);
    return taken;
  }

  async cancel(taskId: string): Promise<TaskRecord> {
    let revoked;
    const task = await this.store.cancel(taskId, ENGINE_ACCESS, { onRevoked: (lease) => (revoked = lease) });
    await this.executor.cancelled(task, revoked);
    return task;
  }

  get(taskId: string): Promise<TaskRecord> {
    return this.store.get(taskId, ENGINE_ACCESS);
  }

  recover(): Promise<number> {
    return this.executor.recover();
  }

  async close(): Promise<void> {
    await this.executor.close();
  }
}

/** `ExecutorHost.finish` as the runtime does it (results only; enough for these tests). */
async function finish(
  store: TaskStore,
  task: TaskRecord,
  outcome: { result: unknown } | { error: unknown },
  fence?: { holder: string; epoch: number },
): Promise<RunEnd> {
  try {
    if ('error' in outcome) {
      const message = outcome.error instanceof Error ? outcome.error.message : String(outcome.error);
      const result = { content: [{ type: 'text', text: message }], isError: true };
      return { kind: 'ended', task: await store.finish(task.taskId, 'failed', { type: 'result', result }, message, fence) };
    }
    const value = outcome.result as JsonObject;
    const result =
      value && typeof value === 'object' && 'content' in value ? value : { content: [{ type: 'text', text: JSON.stringify(value) }], structuredContent: value };
    return { kind: 'ended', task: await store.finish(task.taskId, 'completed', { type: 'result', result: result as JsonObject }, undefined, fence) };
  } catch (error) {
    if (error instanceof IllegalTransitionError || error instanceof LeaseLostError) return { kind: 'interrupted', reason: 'already_terminal' };
    if (error instanceof TaskNotFoundError) return { kind: 'interrupted', reason: 'deleted' };
    throw error;
  }
}

/** One line of the effects file: a side-effect attempt of `step` of task `taskId` under `token`. */
export interface Effect {
  taskId: string;
  step: string;
  at: number;
  token: number;
  value?: unknown;
}

/**
 * Registers the test tools, each logging its side-effect attempts to `effects`:
 * - `timed`: step `one`, `ctx.sleep(sleepMs)`, step `two`; returns `{ wokeAt }`.
 * - `ask`: asks question `approval` (elicitation), then step `after` with the answer; returns the answer.
 * - `slow`: step `slow` that waits `ms` (ending early on the signal), then step `done`.
 */
export function registerTestTools(runtime: MiniRuntime, effects: string): void {
  const effect = (ctx: TaskContext, step: string, value?: unknown) =>
    appendFileSync(
      effects,
      `${JSON.stringify({ taskId: ctx.taskId, step, at: Date.now(), token: ctx.fencingToken, ...(value !== undefined && { value }) })}\n`,
    );
  runtime.register('timed', async (args: { sleepMs: number }, ctx) => {
    await ctx.step('one', () => effect(ctx, 'one'));
    await ctx.sleep(args.sleepMs);
    const wokeAt = await ctx.step('two', () => {
      effect(ctx, 'two');
      return Date.now();
    });
    return { wokeAt };
  });
  runtime.register('ask', async (_args, ctx) => {
    const answer = await ctx.elicit('Approve?', { type: 'object', properties: { decision: { type: 'string' } }, required: ['decision'] }, { key: 'approval' });
    await ctx.step('after', () => effect(ctx, 'after', answer));
    return { answer };
  });
  runtime.register('slow', async (args: { ms: number }, ctx) => {
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
    return { ok: true };
  });
}
