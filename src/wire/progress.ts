import { isTerminal } from '../core/status.js';
import type { TaskRecord } from '../core/task.js';

/**
 * Forwards a task's progress to a request's `_meta.progressToken` (`token`) as
 * `notifications/progress` sent with `notify` (MCP "Progress"): only values greater than the last
 * one sent, never once the task has ended, with the task's `statusMessage` as `message` and `meta`
 * (e.g. the 2025-11-25 related-task key) as `_meta`. Used for task-augmented calls (2025-11-25,
 * `Session2025`) and ordinary calls of task tools (both protocol versions). Returns a function to call with
 * every state the task passes through; a no-op without a progressToken (not a string or number). A
 * notification that cannot be sent is dropped (the client may be gone; progress is advisory).
 */
export function progressForwarder(
  token: unknown,
  notify: (notification: { method: string; params?: Record<string, unknown> }) => Promise<void>,
  meta?: Record<string, unknown>,
): (task: TaskRecord) => void {
  if (typeof token !== 'string' && typeof token !== 'number') return () => undefined;
  let last: number | undefined;
  return (task) => {
    const progress = task.progress;
    if (!progress || isTerminal(task.status) || (last !== undefined && progress.progress <= last)) return;
    last = progress.progress;
    notify({
      method: 'notifications/progress',
      params: {
        progressToken: token,
        progress: progress.progress,
        ...(progress.total !== undefined && { total: progress.total }),
        ...(task.statusMessage !== undefined && { message: task.statusMessage }),
        ...(meta && { _meta: meta }),
      },
    }).catch(() => undefined);
  };
}
