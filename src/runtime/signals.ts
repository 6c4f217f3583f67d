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

/** `ctx.signal.reason` when another instance took over the task (this one was presumed dead). */
export class LeaseLostSignal extends Error {
  constructor(taskId: string) {
    super(`Another instance took over task ${taskId}`);
    this.name = 'LeaseLostSignal';
  }
}
