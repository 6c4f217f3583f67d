/** `ctx.signal.reason` when the task was cancelled (`tasks/cancel` or `TaskRuntime.cancel`). */
export class TaskCancelledSignal extends Error {
  constructor(taskId: string) {
    super(`Task ${taskId} was cancelled`);
    this.name = 'TaskCancelledSignal';
  }
}

/** `ctx.signal.reason` when the runtime shuts down; the task is resumed on the next start. */
export class ShutdownSignal extends Error {
  constructor() {
    super('The task runtime is shutting down; the task will resume on the next start');
    this.name = 'ShutdownSignal';
  }
}

/**
 * `ctx.signal.reason` when this instance may no longer run the task: another instance took it over
 * (this one was presumed dead, or paused past its lease), or this instance's clock is too far from
 * the store's to hold leases (then `taskId` is `'clock'` and every run stops).
 */
export class LeaseLostSignal extends Error {
  constructor(taskId: string) {
    super(taskId === 'clock' ? "This instance's clock is too far from the store's to run tasks" : `Another instance took over task ${taskId}`);
    this.name = 'LeaseLostSignal';
  }
}

/**
 * `ctx.signal.reason` when the task store became unavailable while the task ran: the run stops and
 * the runtime starts it again (from its journal) once the store answers; never the task's outcome.
 */
export class StoreUnavailableSignal extends Error {
  constructor(taskId: string) {
    super(`The task store is unavailable; task ${taskId} resumes when it answers again`);
    this.name = 'StoreUnavailableSignal';
  }
}

/**
 * `ctx.signal.reason` when the task's deadline passed (`TaskRecord.deadline`, the tool's
 * `deadlineMs`): the task has ended (or is ending) `failed` with `DEADLINE_EXCEEDED`; stop its work.
 */
export class DeadlineExceededSignal extends Error {
  constructor(taskId: string, deadline: string) {
    super(`Task ${taskId} passed its deadline (${deadline})`);
    this.name = 'DeadlineExceededSignal';
  }
}
