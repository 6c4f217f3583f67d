import { isTerminal } from './status.js';
import type { TaskRecord } from './task.js';

/**
 * Receiver-side limits for task lifetimes and polling (2025-11-25 "TTL and Resource Management":
 * receivers MAY override the requested `ttl` and MUST report the actual value; the 2026-07-28 Tasks extension's
 * `ttlMs` likewise). Configured with `TaskStoreOptions.policy` (e.g. `createTaskServer({ storeOptions:
 * { policy } })`); missing fields take `DEFAULT_LIFETIME_POLICY`.
 *
 * A task's lifetime: while it runs it never expires. Once it ends (`completed`, `failed`,
 * `cancelled`) it is kept until
 * `expiry = max(createdAt + ttl, endedAt + min(ttl, retainAfterEndMs))`, so a result is never
 * thrown away the moment it exists just because the work (or the wait for an answer) outlasted the
 * `ttl`. The store writes the resulting `ttl = expiry − createdAt` into the record when the task ends
 * (see `ttlAtEnd`), so every reader — the wire's `ttl` / `ttlMs`, `TaskStore.get`, every backend's
 * purge — uses that one value.
 */
export interface LifetimePolicy {
  /** `ttl` in ms when the requestor asks for none; `null` = unlimited. Default 7 days. */
  defaultTtlMs: number | null;
  /**
   * Upper bound in ms for a requested `ttl`; larger requests are clamped. `null` = no bound. Default
   * 30 days. It bounds the granted `ttl`, not the retention after a late end (`retainAfterEndMs`).
   */
  maxTtlMs: number | null;
  /** `pollInterval` in ms advertised to requestors. Default 1000. */
  pollIntervalMs: number;
  /**
   * Least time in ms a task's result is kept after the task ends, capped by its own `ttl`: a task
   * that ends after `createdAt + ttl − min(ttl, retainAfterEndMs)` expires at
   * `endedAt + min(ttl, retainAfterEndMs)` instead of `createdAt + ttl` (see `ttlAtEnd`). 0 restores
   * the plain `createdAt + ttl` rule (a task ending after its ttl then expires as it ends). A
   * non-negative finite number; default 24 hours. Applies to tasks ending from now on: the value is
   * fixed into each record's `ttl` when the task ends.
   */
  retainAfterEndMs: number;
}

export const DEFAULT_LIFETIME_POLICY: LifetimePolicy = {
  defaultTtlMs: 7 * 24 * 3600_000,
  maxTtlMs: 30 * 24 * 3600_000,
  pollIntervalMs: 1000,
  retainAfterEndMs: 24 * 3600_000,
};

/**
 * The `ttl` (ms) a new task actually gets: the requested value clamped to `maxTtlMs`, or the
 * default when none was requested. A requested `null` (unlimited) is clamped to `maxTtlMs` too.
 */
export function resolveTtl(requested: number | null | undefined, policy: LifetimePolicy): number | null {
  if (requested === undefined) return policy.defaultTtlMs;
  if (requested === null) return policy.maxTtlMs;
  const ttl = Math.max(0, Math.floor(requested));
  return policy.maxTtlMs === null ? ttl : Math.min(ttl, policy.maxTtlMs);
}

/**
 * The `ttl` (ms, from `createdAt`) a task gets at the moment it ends at `endedAtMs` (ms since the
 * epoch): `expiry − createdAt` with `expiry = max(createdAt + ttl, endedAt + min(ttl,
 * retainAfterEndMs))` — at least `min(ttl, retainAfterEndMs)` after the end, never less than the
 * `ttl` it had. `null` (unlimited) stays `null`. `TaskStore` applies it once, in the write that
 * makes a task terminal (terminal records are never written again), with `endedAt` = that write's
 * `lastUpdatedAt`; the wire then reports it as the actual `ttl` / `ttlMs` (2025-11-25 "TTL and
 * Resource Management": receivers MUST report the actual value) and every backend purges by
 * `createdAt + ttl`.
 */
export function ttlAtEnd(ttl: number | null, createdAtMs: number, endedAtMs: number, retainAfterEndMs: number): number | null {
  if (ttl === null) return null;
  const expiry = Math.max(createdAtMs + ttl, endedAtMs + Math.min(ttl, Math.max(0, retainAfterEndMs)));
  return expiry - createdAtMs;
}

/**
 * True when the task's lifetime (`createdAt + ttl`) has elapsed and it may be treated as gone.
 * A task that has not finished is never expired: its lifetime is kept alive while it runs, so no
 * work is ever lost under its worker; retention counts once the task is terminal, whose `ttl`
 * already includes the retention after its end (see `ttlAtEnd`).
 */
export function isExpired(task: Pick<TaskRecord, 'status' | 'createdAt' | 'ttl'>, nowMs: number): boolean {
  if (task.ttl === null || !isTerminal(task.status)) return false;
  return Date.parse(task.createdAt) + task.ttl <= nowMs;
}
