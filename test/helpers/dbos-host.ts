import { IllegalTransitionError, LeaseLostError, TaskNotFoundError } from '../../src/core/errors.js';
import type { Json, JsonObject } from '../../src/core/json.js';
import { toJson } from '../../src/core/json.js';
import { silentLogger, type Logger } from '../../src/core/log.js';
import type { ExecutorHost, RunEnd } from '../../src/runtime/executor.js';
import type { RegisteredHandler, TaskToolResult } from '../../src/runtime/runtime.js';
import type { TaskStore } from '../../src/store/task-store.js';

/**
 * A minimal `ExecutorHost` for driving an executor without a `TaskRuntime` (the outcome rules of
 * `ExecutorHost.finish`: a result completes, `isError` uses `errorResultStatus`, a throw becomes an
 * `isError` result; a task already ended, deleted or taken over resolves `interrupted`).
 */
export function testHost(
  store: TaskStore,
  handlers: Record<string, RegisteredHandler['handler']>,
  log: Logger = silentLogger,
): ExecutorHost & { errors: unknown[] } {
  const errors: unknown[] = [];
  return {
    store,
    log,
    errors,
    now: () => store.now(),
    handler: (tool) => (handlers[tool] ? { parse: (args: JsonObject) => args, handler: handlers[tool]! } : undefined),
    openArguments: (args) => args,
    onError: (error) => {
      errors.push(error);
      log.error({ err: error }, 'executor error');
    },
    async finish(task, outcome, fence): Promise<RunEnd> {
      try {
        let written;
        if ('result' in outcome) {
          const result = toJson<JsonObject>(outcome.result as TaskToolResult);
          const status = result.isError === true ? task.errorResultStatus : 'completed';
          written = await store.finish(task.taskId, status, { type: 'result', result }, undefined, fence);
        } else {
          const message = outcome.error instanceof Error ? outcome.error.message : String(outcome.error);
          const result: JsonObject = { content: [{ type: 'text', text: message } as Json], isError: true };
          written = await store.finish(task.taskId, task.errorResultStatus, { type: 'result', result }, message, fence);
        }
        return { kind: 'ended', task: written };
      } catch (error) {
        if (error instanceof IllegalTransitionError) return { kind: 'interrupted', reason: 'already_terminal' };
        if (error instanceof TaskNotFoundError) return { kind: 'interrupted', reason: 'deleted' };
        if (error instanceof LeaseLostError) return { kind: 'interrupted', reason: error.reason === 'taken' ? 'lease_lost' : 'already_terminal' };
        throw error;
      }
    },
  };
}
