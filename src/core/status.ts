/**
 * Task statuses and the legal transitions between them.
 *
 * Implements MCP 2025-11-25 "Tasks › Task Status Lifecycle" (unchanged in the 2026-07-28
 * `io.modelcontextprotocol/tasks` extension): a task starts `working`; `working` may move to
 * `input_required`, `completed`, `failed` or `cancelled`; `input_required` may move to `working`,
 * `completed`, `failed` or `cancelled`; the three terminal statuses never change again.
 */

/** One of the five statuses the spec defines, spelled exactly as on the wire. */
export type TaskStatus = 'working' | 'input_required' | 'completed' | 'failed' | 'cancelled';

/** Every status, in lifecycle order. */
export const TASK_STATUSES: readonly TaskStatus[] = ['working', 'input_required', 'completed', 'failed', 'cancelled'];

/** The statuses after which a task never changes again. */
export const TERMINAL_STATUSES: ReadonlySet<TaskStatus> = new Set(['completed', 'failed', 'cancelled']);

const ALLOWED: Record<TaskStatus, ReadonlySet<TaskStatus>> = {
  working: new Set(['input_required', 'completed', 'failed', 'cancelled']),
  input_required: new Set(['working', 'completed', 'failed', 'cancelled']),
  completed: new Set(),
  failed: new Set(),
  cancelled: new Set(),
};

/** True when `status` is `completed`, `failed` or `cancelled`. */
export function isTerminal(status: TaskStatus): boolean {
  return TERMINAL_STATUSES.has(status);
}

/**
 * True when the spec allows a task in `from` to move to `to`. A "move" to the same non-terminal
 * status is not a transition and is reported as not allowed; callers that only patch fields of a
 * live task do not ask this question.
 */
export function canTransition(from: TaskStatus, to: TaskStatus): boolean {
  return ALLOWED[from].has(to);
}

/** Type guard for untrusted strings (store rows, CLI input). */
export function isTaskStatus(value: unknown): value is TaskStatus {
  return typeof value === 'string' && (TASK_STATUSES as readonly string[]).includes(value);
}
