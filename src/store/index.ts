export * from './backend.js';
export * from './memory-backend.js';
export * from './sqlite-backend.js';
export * from './postgres-backend.js';
export * from './redis-backend.js';
export * from './task-store.js';
export * from './open-store.js';
