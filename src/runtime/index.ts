export * from './context.js';
export * from './runtime.js';
export * from './signals.js';
export { abortableDelay } from './delay.js';
export * from './executor.js';
export { EmbeddedExecutor, type EmbeddedExecutorOptions } from './embedded-executor.js';
export { EngineContext, runOnEngine, answerTopic, completionTopic, settleStepName, type EngineContextOptions } from './engine-context.js';
