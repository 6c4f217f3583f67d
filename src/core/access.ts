import { InvalidArgumentError } from './errors.js';

/**
 * A principal: the identity a task belongs to. A string names an authenticated principal (e.g. the
 * `principal` of a verified bearer token); `null` is the one shared principal of unauthenticated
 * requestors (2025-11-25 "Security Considerations": without an authorization context, task ids are
 * the only protection).
 */
export type Principal = string | null;

/**
 * The engine's own access to every task, for its internal work (execution, recovery, takeover,
 * purging, operator tooling). It is a distinct value, never a principal: a call that reads or
 * changes a task on behalf of a requestor passes that requestor's `Principal` instead.
 */
export const ENGINE_ACCESS: unique symbol = Symbol.for('mcp-tasks.engine-access');

/**
 * Who is asking, required on every read or change of a task through `TaskStore` and `TaskRuntime`:
 * a `Principal`, who must own the task, or `ENGINE_ACCESS`. There is no default: a forgotten
 * argument is a type error, and `undefined` at run time (plain JavaScript callers) is refused.
 */
export type Access = Principal | typeof ENGINE_ACCESS;

/**
 * Whether `access` may see a task owned by `owner`. Throws `InvalidArgumentError` when `access` is
 * neither a principal nor `ENGINE_ACCESS` (e.g. `undefined`): ownership fails closed.
 */
export function mayAccess(access: Access, owner: Principal): boolean {
  assertAccess(access);
  return access === ENGINE_ACCESS || access === owner;
}

/** Throws `InvalidArgumentError` unless `access` is a `Principal` or `ENGINE_ACCESS` (e.g. `undefined`). */
function assertAccess(access: Access): void {
  if (access !== ENGINE_ACCESS && access !== null && typeof access !== 'string') {
    throw new InvalidArgumentError('An explicit access (a principal, or ENGINE_ACCESS) is required');
  }
}
