export * from './context.js';
export * from './runtime.js';
export * from './signals.js';
export { abortableDelay } from './delay.js';
