import { ENGINE_ACCESS, type Access } from './access.js';
import type { Actor } from './journal-keys.js';

/**
 * Who did something to a task, as the journal's history entries record it (`by` of `answered:` and
 * `cancelled`; see `journal-keys.ts` for every entry, its key and its value).
 */

/** The `Actor` a requestor's principal stands for. */
export const principalActor = (principal: string | null): Actor => ({ role: 'principal', name: principal });
/** The engine acting on its own (recovery, takeover, purge). */
export const ENGINE_ACTOR: Actor = { role: 'engine', name: null };

/** A question's deadline applying the `onTimeout` policy its tool's author chose (see `OnTimeout`). */
export const DEADLINE_ACTOR: Actor = { role: 'deadline', name: null };

/** The `Actor` an `Access` stands for: its principal, or the engine for `ENGINE_ACCESS`. */
export const actorOf = (access: Access): Actor => (access === ENGINE_ACCESS ? ENGINE_ACTOR : principalActor(access));
