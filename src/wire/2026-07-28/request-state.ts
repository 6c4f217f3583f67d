import { createHash, randomBytes } from 'node:crypto';
import { createRequestStateCodec, ProtocolError, ProtocolErrorCode, type ServerContext } from '@modelcontextprotocol/server';
import type { Json, JsonObject } from '../../core/json.js';
import { REQUEST_STATE_KEY } from '../../core/journal-keys.js';
import type { TaskRecord } from '../../core/task.js';
import type { TaskRuntime } from '../../runtime/runtime.js';
import { isStoreUnavailable } from '../errors.js';

/**
 * The `requestState` of 2026-07-28 multi round-trip requests served by a durable task (see
 * `mrtr.ts`): it names the task and is integrity-protected — the SDK's HMAC-SHA256 codec
 * (`createRequestStateCodec`, signed, with expiry) under a key of 32 random bytes kept in the task's
 * own journal (sealed at rest when the store has a `secretKey`), so every instance sharing the store
 * — and the same server after a restart — can verify it without configuration, and a state minted
 * for one task proves nothing about another. The state is bound (HMAC tag, not in clear) to the
 * principal, the tool and a digest of its arguments: presented by another principal, for another
 * tool or other arguments, tampered with or past its expiry it is refused with -32602 `Invalid or
 * expired requestState` (`data.reason: "invalid_request_state"`, as the SDK's own seam answers),
 * and nothing is written.
 */

/** How long a minted `requestState` stays valid, in seconds (24 h: a person may take a while to answer). */
export const REQUEST_STATE_TTL_SECONDS = 24 * 3600;

/** What a `requestState` is bound to: who called which tool with which arguments. */
export interface CallBinding {
  owner: string | null;
  tool: string;
  args: JsonObject;
}

/**
 * The `requestState` of a round of `task` for `binding` asking `questionKeys`:
 * `<taskId>.<SDK codec value>` (the keys are in the signed payload, so each round's state differs).
 */
export async function mintRequestState(runtime: TaskRuntime, task: TaskRecord, binding: CallBinding, questionKeys: string[]): Promise<string> {
  const codec = await codecFor(runtime, task.taskId, binding, true);
  return `${task.taskId}.${await codec!.mint({ q: questionKeys }, NO_CONTEXT)}`;
}

/**
 * The task a retried call's `requestState` names, once verified (see the module comment). Throws
 * -32602 `Invalid or expired requestState` for anything else — including a task that is unknown,
 * foreign or expired, so the error says nothing about other principals' tasks. A store outage is
 * thrown as it is (`StoreUnavailableError` → -32010): the state may well be valid.
 */
export async function openRequestState(runtime: TaskRuntime, state: unknown, binding: CallBinding): Promise<TaskRecord> {
  const refuse = () => new ProtocolError(ProtocolErrorCode.InvalidParams, 'Invalid or expired requestState', { reason: 'invalid_request_state' });
  if (typeof state !== 'string' || state.length > 4096) throw refuse();
  const dot = state.indexOf('.');
  const taskId = state.slice(0, dot);
  if (dot <= 0) throw refuse();
  let task: TaskRecord;
  try {
    task = await runtime.get(taskId, binding.owner);
  } catch (error) {
    if (isStoreUnavailable(error)) throw error; // not a verdict on the state: -32010, retry later
    throw refuse();
  }
  const codec = await codecFor(runtime, taskId, binding, false);
  try {
    if (!codec) throw new Error('no key');
    await codec.verify(state.slice(dot + 1), NO_CONTEXT);
  } catch {
    throw refuse();
  }
  return task;
}

/** The codec bound to `binding` under the task's key (created when `create` and missing). */
async function codecFor(runtime: TaskRuntime, taskId: string, binding: CallBinding, create: boolean) {
  const store = runtime.store;
  let entry = (await store.readJournal(taskId)).get(REQUEST_STATE_KEY);
  if (entry === undefined && create) {
    const fresh: Json = randomBytes(32).toString('base64url');
    await store.appendJournal(taskId, REQUEST_STATE_KEY, store.secrets ? store.secrets.seal(fresh) : fresh); // first write wins
    entry = (await store.readJournal(taskId)).get(REQUEST_STATE_KEY);
  }
  if (entry === undefined) return undefined;
  const key = store.secrets ? store.secrets.open<string>(entry) : (entry as string);
  const bound = bindingDigest(binding);
  return createRequestStateCodec<JsonObject>({ key: Buffer.from(key, 'base64url'), ttlSeconds: REQUEST_STATE_TTL_SECONDS, bind: () => bound });
}

/** The codec's `bind` reads nothing from the context: the binding is captured per codec. */
const NO_CONTEXT = {} as ServerContext;

/** SHA-256 of principal, tool and arguments (keys sorted, so a client re-serializing them still matches). */
function bindingDigest(binding: CallBinding): string {
  return createHash('sha256')
    .update(JSON.stringify([binding.owner, binding.tool, sortedJson(binding.args)]))
    .digest('base64url');
}

function sortedJson(value: Json): Json {
  if (Array.isArray(value)) return value.map(sortedJson);
  if (value === null || typeof value !== 'object') return value;
  return Object.fromEntries(
    Object.keys(value)
      .sort()
      .map((key) => [key, sortedJson(value[key]!)]),
  );
}
