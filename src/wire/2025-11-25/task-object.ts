import type { TaskRecord } from '../../core/task.js';

/** `_meta` key that ties requests, notifications and results to a task (2025-11-25 "Associating Task-Related Messages"). */
export const RELATED_TASK = 'io.modelcontextprotocol/related-task';

/** The 2025-11-25 `Task` object (schema `Task`): what `tasks/get`, `tasks/cancel`, `tasks/list` and status notifications carry. */
export interface Task2025 {
  taskId: string;
  status: TaskRecord['status'];
  statusMessage?: string;
  /** ISO 8601. */
  createdAt: string;
  /** ISO 8601. */
  lastUpdatedAt: string;
  /**
   * ms from creation, or null for unlimited: the actual retention (2025-11-25 "TTL and Resource
   * Management": receivers MAY override the requested ttl and MUST report the actual value). For a
   * terminal task it is `expiry − createdAt`, the store having extended it when the task ended so
   * the result is kept at least `min(ttl, retainAfterEndMs)` after the end (see `ttlAtEnd`).
   */
  ttl: number | null;
  /** ms. */
  pollInterval?: number;
  [key: string]: unknown;
}

/** Projects a stored record onto the 2025-11-25 `Task` shape (`ttl`: the record's actual lifetime, see `Task2025.ttl`). */
export function toTask2025(task: TaskRecord): Task2025 {
  return {
    taskId: task.taskId,
    status: task.status,
    ...(task.statusMessage !== undefined && { statusMessage: task.statusMessage }),
    createdAt: task.createdAt,
    lastUpdatedAt: task.lastUpdatedAt,
    ttl: task.ttl,
    pollInterval: task.pollInterval,
  };
}

/** `{ [RELATED_TASK]: { taskId } }`. */
export function relatedTaskMeta(taskId: string): { [RELATED_TASK]: { taskId: string } } {
  return { [RELATED_TASK]: { taskId } };
}
