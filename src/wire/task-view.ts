import type { JsonObject } from '../core/json.js';
import { PROGRESS_META_KEY, RETRIED_AS_META_KEY, type TaskRecord } from '../core/task.js';

/**
 * A task's own fields as the 2026-07-28 Tasks extension's `Task` lists them: `taskId`, `status`,
 * `statusMessage` (when set), `createdAt` and `lastUpdatedAt` (ISO 8601), `ttlMs` and
 * `pollIntervalMs` (suggested poll interval) in ms. `ttlMs` is the actual lifetime from `createdAt`
 * (`null` = unlimited): for a terminal task `expiry − createdAt`, which the store extended when the
 * task ended so its result is kept at least `min(ttl, retainAfterEndMs)` after the end (see
 * `ttlAtEnd`; 2026-07-28 Tasks extension `ttlMs`, as 2025-11-25 "TTL and Resource Management": the
 * receiver reports the actual value). The 2026-07-28 task
 * objects (`DetailedTask`, `CreateTaskResult`) build on it, and the fallback tools show the same
 * view in both protocol versions.
 */
export function taskFields(task: TaskRecord): JsonObject {
  return {
    taskId: task.taskId,
    status: task.status,
    ...(task.statusMessage !== undefined && { statusMessage: task.statusMessage }),
    createdAt: task.createdAt,
    lastUpdatedAt: task.lastUpdatedAt,
    ttlMs: task.ttl,
    pollIntervalMs: task.pollInterval,
  };
}

/**
 * The `_meta` a `tasks/get` result of `task` carries besides the spec's fields, in both protocol
 * versions, or undefined when none: its last progress under `"mcp-tasks/progress"` (`{ progress,
 * total? }`), and, for a task an operator had run again, the task that runs it again under
 * `"mcp-tasks/retriedAs"` (`{ taskId }`; see `TaskRuntime.retry`).
 */
export function taskMeta(task: TaskRecord): JsonObject | undefined {
  if (!task.progress && task.retriedAs === undefined) return undefined;
  return {
    ...(task.progress && { [PROGRESS_META_KEY]: task.progress }),
    ...(task.retriedAs !== undefined && { [RETRIED_AS_META_KEY]: { taskId: task.retriedAs } }),
  };
}
