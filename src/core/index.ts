export * from './status.js';
export * from './errors.js';
export * from './ids.js';
export * from './json.js';
export * from './task.js';
export * from './policy.js';
export * from './secrets.js';
export * from './access.js';
