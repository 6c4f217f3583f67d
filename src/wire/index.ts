// The wire layer's barrel: what src/index.ts and src/server take from it (src/index.ts names the
// public API one by one).
export * from './errors.js';
export * from './principal.js';
export * from './mcp-tasks.js';
export * from './fallback-tools.js';
export * from './poll-throttle.js';
export * from './protocol-version.js';
export { FastPath, type FastAnswer } from './fast-path.js';
export { TaskSubscriptions, isTaskSubscription, type SubscriptionSink } from './2026-07-28/subscriptions.js';
