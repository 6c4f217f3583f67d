export * from './errors.js';
export * from './principal.js';
export * from './mcp-tasks.js';
export * from './rev2025/task-object.js';
export { Session2025, toInputResponse } from './rev2025/session.js';
