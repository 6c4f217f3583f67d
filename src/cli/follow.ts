import type { TaskOutcome, ToolExecution } from '@modelcontextprotocol/ext-tasks/client';
import type { ClientJournal } from '../client/journal.js';

/** How one followed task ended, for printing and the exit code. */
export interface Followed {
  taskId?: string;
  outcome?: TaskOutcome<unknown>;
  /** Set when the CLI stopped following without the task ending (needs input, or interrupted). */
  detached?: string;
}

/**
 * Drives an ext-tasks execution to its end: prints each status change (`log`), mirrors it into the
 * client journal, and returns the outcome. When `stop` aborts (Ctrl-C, or a question nobody here can
 * answer) it detaches — the task goes on on the server — and reports `stop.reason` as why.
 */
export async function follow(execution: ToolExecution<unknown>, journal: ClientJournal, log: (line: string) => void, stop: AbortSignal): Promise<Followed> {
  const taskId = execution.kind === 'task' ? execution.handle.taskId : undefined;
  let last = '';
  const settled = execution.settle({
    signal: stop,
    close: false,
    onEvent: (event) => {
      if (event.type !== 'task') return;
      const { status, statusMessage } = event.task;
      const line = `${status}${statusMessage ? `: ${statusMessage}` : ''}`;
      // Journal first: a client killed right after printing a status has that status on disk.
      journal.update(event.task.taskId, { status, ...(statusMessage !== undefined && { statusMessage }) });
      if (line !== last) log(`[${event.task.taskId}] ${line}`);
      last = line;
    },
  });
  const stopped = new Promise<undefined>((resolve) => {
    if (stop.aborted) resolve(undefined);
    stop.addEventListener('abort', () => resolve(undefined), { once: true });
  });
  const outcome = await Promise.race([settled.then((s) => s.outcome), stopped]);
  if (!outcome) {
    settled.catch(() => undefined);
    await execution.detach().catch(() => undefined);
    // ext-tasks drops a detached execution from its session only when result() settles; closing the
    // session before that would close() the execution, and close() cancels unsettled tasks.
    await execution.result().catch(() => undefined);
    const reason = stop.reason instanceof Error ? stop.reason.message : 'stopped following';
    return { taskId, detached: reason };
  }
  if (taskId) {
    journal.update(taskId, {
      status: outcome.status,
      statusMessage: outcome.status === 'failed' ? outcome.error.message : undefined,
      outcome:
        outcome.status === 'completed'
          ? { status: 'completed', result: outcome.result }
          : outcome.status === 'failed'
            ? { status: 'failed', error: outcome.error.message }
            : { status: 'cancelled' },
    });
  }
  return { taskId, outcome };
}
