export * from './errors.js';
export * from './principal.js';
export * from './mcp-tasks.js';
export * from './rev2025/task-object.js';
export { attachLegacyHandlers, resultOf } from './rev2025/attach.js';
export { Session2025, toInputResponse, clientCanElicit } from './rev2025/session.js';
export { TASKS_EXTENSION, toDetailedTask, toCreateTaskResult, declaresTasksExtension } from './rev2026/task-object.js';
export { attachModernHandlers, claimsModernCall, answerModernCall, type ModernTaskPolicy } from './rev2026/attach.js';
export { TaskSubscriptions, isTaskSubscription } from './rev2026/subscriptions.js';
