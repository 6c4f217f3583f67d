import { isTerminal } from './status.js';
import type { TaskRecord } from './task.js';

/**
 * Receiver-side limits for task lifetimes (2025-11-25 "TTL and Resource Management": receivers MAY
 * override the requested `ttl` and MUST report the actual value).
 */
export interface TaskPolicy {
  /** `ttl` in ms when the requestor asks for none; `null` = unlimited. Default 7 days. */
  defaultTtlMs: number | null;
  /** Upper bound in ms for a requested `ttl`; larger requests are clamped. `null` = no bound. Default 30 days. */
  maxTtlMs: number | null;
  /** `pollInterval` in ms advertised to requestors. Default 1000. */
  pollIntervalMs: number;
}

export const DEFAULT_POLICY: TaskPolicy = {
  defaultTtlMs: 7 * 24 * 3600_000,
  maxTtlMs: 30 * 24 * 3600_000,
  pollIntervalMs: 1000,
};

/**
 * The `ttl` (ms) a new task actually gets: the requested value clamped to `maxTtlMs`, or the
 * default when none was requested. A requested `null` (unlimited) is clamped to `maxTtlMs` too.
 */
export function resolveTtl(requested: number | null | undefined, policy: TaskPolicy): number | null {
  if (requested === undefined) return policy.defaultTtlMs;
  if (requested === null) return policy.maxTtlMs;
  const ttl = Math.max(0, Math.floor(requested));
  return policy.maxTtlMs === null ? ttl : Math.min(ttl, policy.maxTtlMs);
}

/**
 * True when the task's lifetime (`createdAt + ttl`) has elapsed and it may be treated as gone.
 * A task that has not finished is never expired: its lifetime is kept alive while it runs, so no
 * work is ever lost under its worker; retention counts once the task is terminal.
 */
export function isExpired(task: Pick<TaskRecord, 'status' | 'createdAt' | 'ttl'>, nowMs: number): boolean {
  if (task.ttl === null || !isTerminal(task.status)) return false;
  return Date.parse(task.createdAt) + task.ttl <= nowMs;
}
