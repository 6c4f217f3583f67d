import { ENGINE_ACCESS, type Access } from './access.js';
import type { InputKind } from './task.js';

/**
 * What a task did, as the journal records it beside the entries execution replays: when each
 * question was asked and answered and by whom, each restart or takeover, a cancellation and who
 * asked for it. The operator console draws a task's timeline from these (with the step and timer
 * entries, which carry `startedAt`/`endedAt`); nothing replays them. All times are ISO 8601 (UTC,
 * milliseconds). Every key is written once (first write wins), like every journal entry.
 */

/** Who did something to a task: a principal (the requestor's identity, `null` when anonymous), an operator (by name), or the engine itself. */
export interface Actor {
  role: 'principal' | 'operator' | 'engine';
  /** The principal or operator name; `null` for the anonymous principal and the engine. */
  name: string | null;
}

/** Journal key `asked:<key>`: question `key` was first asked at `at`. */
export interface AskedEntry {
  at: string;
  kind: InputKind;
  message: string;
}

/** Journal key `answered:<key>`: question `key` was answered at `at` by `by` (the answer itself is `input:<key>`). */
export interface AnsweredEntry {
  at: string;
  by: Actor;
}

/**
 * Journal key `run:<at>:<holder>`: an execution started again after a restart (`recovery`), on
 * another instance (`takeover`), or after a store outage interrupted the previous one (`retry`).
 */
export interface RunEntry {
  at: string;
  holder: string;
  reason: 'recovery' | 'takeover' | 'retry';
  /** The instance that held the task before a takeover. */
  previousHolder?: string;
}

/** Journal key `until:<due>`: from `at`, the task waits until `due` (`ctx.sleepUntil`; `ctx.sleep` timers are `timer:<n>` steps). */
export interface UntilEntry {
  at: string;
  due: string;
}

/** Journal key `cancelled`: the task was cancelled at `at` by `by`. */
export interface CancelledEntry {
  at: string;
  by: Actor;
}

/** Journal key of `AskedEntry` for question `key`. */
export const askedKey = (key: string) => `asked:${key}`;
/** Journal key of `AnsweredEntry` for question `key`. */
export const answeredKey = (key: string) => `answered:${key}`;
/** Journal key of a `RunEntry`. */
export const runKey = (at: string, holder: string) => `run:${at}:${holder}`;
/** Journal key of an `UntilEntry` (`due` is ISO 8601). */
export const untilKey = (due: string) => `until:${due}`;
/** Journal key of the `CancelledEntry`. */
export const CANCELLED_KEY = 'cancelled';

/** The `Actor` a requestor's principal stands for. */
export const principalActor = (principal: string | null): Actor => ({ role: 'principal', name: principal });
/** The engine acting on its own (recovery, takeover, purge, a deadline). */
export const ENGINE_ACTOR: Actor = { role: 'engine', name: null };

/** The `Actor` an `Access` stands for: its principal, or the engine for `ENGINE_ACCESS`. */
export const actorOf = (access: Access): Actor => (access === ENGINE_ACCESS ? ENGINE_ACTOR : principalActor(access));
