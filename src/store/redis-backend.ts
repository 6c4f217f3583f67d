/**
 * `mcp-tasks/store/redis`: the Redis backend that `openStore('redis://…')` builds, for several
 * server instances on one Redis; also how to run `reindex()` by hand after a rolling upgrade. Its
 * driver, `ioredis` (an optional peer dependency), is loaded by the first `RedisBackend`
 * constructed, not by the import.
 *
 * ```ts
 * import { createTaskServer, TaskStore } from 'mcp-tasks';
 * import { RedisBackend } from 'mcp-tasks/store/redis';
 * const store = new TaskStore(new RedisBackend({ url: 'redis://127.0.0.1:6379/0', prefix: 'tasks' }));
 * const server = createTaskServer({ store });
 * ```
 *
 * @module mcp-tasks/store/redis
 */
import type { Redis } from 'ioredis';
import { idempotencyScope } from '../core/idempotency.js';
import { askedKey, type AskedEntry } from '../core/journal-keys.js';
import type { Json } from '../core/json.js';
import { isTerminal, TERMINAL_STATUSES, type TaskStatus } from '../core/status.js';
import type { Fence, TaskRecord } from '../core/task.js';
import {
  comparePositions,
  completedWithToolError,
  matchesOperatorQuery,
  oldestAsked,
  parseChangeNotice,
  redactUrl,
  zeroCounts,
  type ListPosition,
  type ListQuery,
  type OperatorListPage,
  type OperatorListQuery,
  type StatusCounts,
  type StoreBackend,
} from './backend.js';
import { DEFAULT_ENDED_CACHE_BYTES, EndedCache } from './ended-cache.js';
import { loadDriver } from './load-driver.js';
import { newClaim, type DeliverySettlement, type DeliveryState, type OutboxBackend, type OutboxDelivery } from './outbox.js';

/** Options of the Redis backend. */
export interface RedisBackendOptions {
  /** e.g. `redis://127.0.0.1:6379/0`. */
  url: string;
  /** Prefix of every key and of the change channel. Default `mcp-tasks`. */
  prefix?: string;
  /** How long connecting may take before the attempt fails (ms, default 3000); ioredis keeps reconnecting. */
  connectTimeoutMs?: number;
  /**
   * How long one command may wait for its reply, including while the connection is down and it
   * sits in ioredis's offline queue (ms, default 5000): after it the call fails as unavailable.
   */
  commandTimeoutMs?: number;
  /**
   * Bytes of ended tasks' records kept in memory so the reads after a task's end (`tasks/get`,
   * `tasks/result`) need no round trip (see `EndedCache`: entries are dropped by the change notices
   * of later writes and whenever notices may have been missed). Default 16 MiB; 0 disables it.
   */
  endedCacheBytes?: number;
}

/** Whether `error` is Redis's answer to a command (a `ReplyError`), not a lost or timed-out connection. */
function isReplyError(error: unknown): boolean {
  return error instanceof Error && error.name === 'ReplyError';
}

/**
 * Lua storing one pending delivery (expressions: the outbox key prefix, task id, delivery id, fixed
 * part as JSON, due time in ms): its hash `outbox:d:<id>`, its place in `outbox:due` and in the
 * task's `outbox:task:<taskId>` (which lives at least as long as a settled delivery is kept).
 */
const ENQUEUE_ONE = (prefix: string, taskId: string, id: string, fixed: string, due: string) => `
  redis.call('HSET', ${prefix} .. 'd:' .. ${id}, 'b', ${fixed}, 's', 'pending', 'a', '0', 'n', ${due})
  redis.call('ZADD', ${prefix} .. 'due', ${due}, ${id})
  redis.call('ZADD', ${prefix} .. 'task:' .. ${taskId}, ${due}, ${id})
  redis.call('PEXPIRE', ${prefix} .. 'task:' .. ${taskId}, ${SETTLED_RETAIN_MS * 2})`;

/** How long a settled (delivered or failed) delivery is kept on Redis, for the console: 7 days, in ms. */
const SETTLED_RETAIN_MS = 7 * 24 * 3600_000;

// KEYS: task, ownerIndex, unfinished, all, ended, toolErrors, idem (a placeholder when the task has no key)
// ARGV: version, body, member, unfinished(0/1), channel, taskId, endedScore ('' = live), fence, toolError(0/1),
//       the task key prefix ('' = no idempotency key)
// Returns 1 inserted, 0 task id exists, or the id of the retained task holding the idempotency key
// (a task's hash exists exactly while it is retained: it expires at createdAt + ttl).
const INSERT = `
if redis.call('EXISTS', KEYS[1]) == 1 then return 0 end
if ARGV[10] ~= '' then
  local holder = redis.call('GET', KEYS[7])
  if holder and redis.call('EXISTS', ARGV[10] .. holder) == 1 then return holder end
  redis.call('SET', KEYS[7], ARGV[6])
end
redis.call('HSET', KEYS[1], 'v', ARGV[1], 'b', ARGV[2], 'f', ARGV[8])
redis.call('ZADD', KEYS[2], 0, ARGV[3])
redis.call('ZADD', KEYS[4], 0, ARGV[3])
if ARGV[4] == '1' then redis.call('SADD', KEYS[3], ARGV[6]) end
if ARGV[7] ~= '' then redis.call('ZADD', KEYS[5], ARGV[7], ARGV[3]) end
if ARGV[7] ~= '' and ARGV[9] == '1' then redis.call('ZADD', KEYS[6], ARGV[7], ARGV[3]) end
redis.call('PUBLISH', ARGV[5], ARGV[6] .. ' ' .. ARGV[1])
return 1`;

// KEYS: task, unfinished, journal, ended, toolErrors, idem (a placeholder when the task has no key)
// ARGV: expected, version, body, unfinished(0/1), expireAtMs(0 = none), channel, taskId, member, fence, toolError(0/1),
//       then the webhook outbox: the outbox key prefix, how many deliveries, and per delivery its id, fixed part (JSON)
//       and due time (ms) — written with the task, in this script, only when the swap succeeds.
// The idempotency key expires with the task it names (and is left alone once it names another).
const REPLACE = `
local current = redis.call('HGET', KEYS[1], 'v')
if current == false or current ~= ARGV[1] then return 0 end
redis.call('HSET', KEYS[1], 'v', ARGV[2], 'b', ARGV[3], 'f', ARGV[9])
if ARGV[4] == '1' then redis.call('SADD', KEYS[2], ARGV[7]) else redis.call('SREM', KEYS[2], ARGV[7]) end
local expireAt = tonumber(ARGV[5])
if expireAt > 0 then
  redis.call('PEXPIREAT', KEYS[1], expireAt)
  if redis.call('EXISTS', KEYS[3]) == 1 then redis.call('PEXPIREAT', KEYS[3], expireAt) end
  if redis.call('GET', KEYS[6]) == ARGV[7] then redis.call('PEXPIREAT', KEYS[6], expireAt) end
end
if ARGV[4] == '0' then
  local score = '+inf'
  if expireAt > 0 then score = expireAt end
  redis.call('ZADD', KEYS[4], score, ARGV[8])
  if ARGV[10] == '1' then redis.call('ZADD', KEYS[5], score, ARGV[8]) end
end
local deliveries = tonumber(ARGV[12] or '0')
for i = 0, deliveries - 1 do
  local at = 13 + i * 3
  ${ENQUEUE_ONE('ARGV[11]', 'ARGV[7]', 'ARGV[at]', 'ARGV[at + 1]', 'ARGV[at + 2]')}
end
redis.call('PUBLISH', ARGV[6], ARGV[7] .. ' ' .. ARGV[2])
return 1`;

// ARGV: the outbox key prefix, then per delivery its task id, id, fixed part (JSON) and due time (ms).
const ENQUEUE = `
for i = 2, #ARGV, 4 do
  ${ENQUEUE_ONE('ARGV[1]', 'ARGV[i]', 'ARGV[i + 1]', 'ARGV[i + 2]', 'ARGV[i + 3]')}
end
return 1`;

// Claims due deliveries. KEYS: due; ARGV: nowMs, limit, the lease's end (ms), claim prefix, outbox key prefix.
// Returns per claimed delivery its id and fields b (fixed part), a (attempts), e (last error), c (claim).
const CLAIM = `
local ids = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1], 'LIMIT', 0, tonumber(ARGV[2]))
local out = {}
for i, id in ipairs(ids) do
  local key = ARGV[5] .. 'd:' .. id
  if redis.call('HGET', key, 's') == 'pending' then
    local claim = ARGV[4] .. '/' .. i
    redis.call('HINCRBY', key, 'a', 1)
    redis.call('HSET', key, 'n', ARGV[3], 'c', claim)
    redis.call('ZADD', KEYS[1], ARGV[3], id)
    local f = redis.call('HMGET', key, 'b', 'a', 'e', 'c')
    out[#out + 1] = { id, f[1], f[2], f[3] or '', f[4] }
  else
    redis.call('ZREM', KEYS[1], id)
  end
end
return out`;

// Settles an attempt while the claim holds. KEYS: delivery, due; ARGV: claim, state, next (ms), error ('' = keep), id, retainMs.
const SETTLE = `
if redis.call('HGET', KEYS[1], 'c') ~= ARGV[1] then return 0 end
redis.call('HDEL', KEYS[1], 'c')
redis.call('HSET', KEYS[1], 's', ARGV[2])
if ARGV[4] ~= '' then redis.call('HSET', KEYS[1], 'e', ARGV[4]) end
if ARGV[2] == 'pending' then
  redis.call('HSET', KEYS[1], 'n', ARGV[3])
  redis.call('ZADD', KEYS[2], ARGV[3], ARGV[5])
else
  redis.call('ZREM', KEYS[2], ARGV[5])
  redis.call('PEXPIRE', KEYS[1], ARGV[6])
end
return 1`;

// A fenced journal append: written only while the task hash's fence field names the caller.
// KEYS: task, journal; ARGV: key, value, fence. Returns 1 written, 0 key exists, -1 fenced.
const APPEND_FENCED = `
if redis.call('HGET', KEYS[1], 'f') ~= ARGV[3] then return -1 end
return redis.call('HSETNX', KEYS[2], ARGV[1], ARGV[2])`;

// Deletes an idempotency key if it still names the task. KEYS: idem; ARGV: taskId.
const RELEASE_KEY = `
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0`;

/** The `f` field of a task hash: `holder\nepoch` while the task is live and leased, else empty. */
function fenceField(task: TaskRecord): string {
  return !isTerminal(task.status) && task.lease ? `${task.lease.holder}\n${task.lease.epoch ?? 0}` : '';
}

/**
 * Value of the `indexes` key once the global indexes (`all`, `ended:<status>`) cover every task, and
 * of `indexes:tool-error` once `ended:tool-error` (added later, under a key of its own so that
 * instances of the earlier version go on reading `indexes` as before) does too.
 */
const INDEXES_VERSION = '1';
/** Most index members one `listAll` call examines before returning a partial page (`scannedTo`). */
const MAX_SCANNED_PER_PAGE = 5000;
/** Index members fetched per round trip. */
const BATCH = 500;

/**
 * ioredis, loaded on first construction (an optional peer dependency: applications that never open
 * a `redis://` store need not install it). Throws naming `npm install ioredis` when it is missing.
 */
function driver(): typeof import('ioredis') {
  return loadDriver<typeof import('ioredis')>('ioredis', 'A redis:// store (RedisBackend)', 'an optional peer dependency of mcp-tasks');
}

type ScriptedRedis = Redis & {
  mcpInsert(
    task: string,
    owner: string,
    unfinished: string,
    all: string,
    ended: string,
    toolErrors: string,
    idem: string,
    ...argv: string[]
  ): Promise<number | string>;
  mcpReplace(task: string, unfinished: string, journal: string, ended: string, toolErrors: string, idem: string, ...argv: string[]): Promise<number>;
  mcpReleaseKey(idem: string, taskId: string): Promise<number>;
  mcpAppendFenced(task: string, journal: string, key: string, value: string, fence: string): Promise<number>;
  mcpEnqueue(...argv: string[]): Promise<number>;
  mcpClaim(due: string, ...argv: string[]): Promise<[string, string, string, string, string][]>;
  mcpSettle(delivery: string, due: string, ...argv: string[]): Promise<number>;
};

/** What a delivery's hash keeps in its `b` field: everything that never changes. */
type FixedPart = Pick<OutboxDelivery, 'deliveryId' | 'endpointId' | 'taskId' | 'type' | 'payload' | 'createdAt'>;

/** A delivery's fixed part, as stored in `b`. */
function fixedPart(d: OutboxDelivery): string {
  const fixed: FixedPart = { deliveryId: d.deliveryId, endpointId: d.endpointId, taskId: d.taskId, type: d.type, payload: d.payload, createdAt: d.createdAt };
  return JSON.stringify(fixed);
}

/** Index member of a task: `createdAt\0taskId`, which sorts by (createdAt, taskId). */
const memberOf = (task: ListPosition) => `${task.createdAt}\0${task.taskId}`;

/** The position an index member stands for. */
function positionOf(member: string): ListPosition {
  const at = member.indexOf('\0');
  return { createdAt: member.slice(0, at), taskId: member.slice(at + 1) };
}

/** `pattern` with the glob characters of `SCAN … MATCH` escaped. */
const escapeGlob = (pattern: string) => pattern.replace(/[*?[\]\\]/g, '\\$&');

/** The results of a pipeline or transaction; throws its first command error. */
function results(replies: [Error | null, unknown][] | null): unknown[] {
  return (replies ?? []).map(([error, value]) => {
    if (error) throw error;
    return value;
  });
}

/**
 * Shared backend (`redis://…`) on ioredis, for several server instances on one Redis.
 *
 * Keys (under the prefix): `task:<id>` (hash: `v` version, `b` record JSON, `f` the lease's
 * `holder\nepoch` while live, for fenced journal appends), `owner:<owner>`
 * (sorted set of `createdAt\0taskId`, listed with `ZRANGEBYLEX` for cursor pagination),
 * `unfinished` (set of live task ids), `journal:<id>` (hash; `HSETNX` = first write wins).
 * For operator tooling (`listAll`, `countByStatus`): `all` (the same members as the owner sets, for
 * every principal, read newest first with `ZREVRANGEBYLEX`), `ended:<status>` (per terminal status,
 * members `createdAt\0taskId` scored by expiry in ms, `+inf` for an unlimited ttl), the same for
 * tasks that completed with a tool error in `ended:tool-error`, and `indexes` (set once these cover
 * tasks created before they existed, see `reindex`).
 * Insert and compare-and-swap replace are Lua scripts, so each is atomic with its index updates
 * and its `PUBLISH` on `<prefix>:changes` (the cross-instance wake-up `watch` subscribes to).
 * Once a task is terminal its keys expire with its TTL (`PEXPIREAT createdAt + ttl`, set by the
 * write that ends it, whose `ttl` already includes the retention after the end — see `ttlAtEnd`);
 * a live task never expires under its worker. Index entries of expired tasks are dropped lazily
 * when listed, and from `all` / `ended:…` by `purgeExpired`.
 *
 * Import it from `mcp-tasks/store/redis` (or let `openStore('redis://…')` build it). The driver
 * `ioredis` is an optional peer dependency, loaded by the first constructor call, not by the import;
 * the constructor throws `Error` ("… needs 'ioredis' …: npm install ioredis") when it is not installed.
 */
export class RedisBackend implements StoreBackend, OutboxBackend {
  readonly exclusive = false;
  private readonly redis: ScriptedRedis;
  private subscriber?: Redis;
  private readonly prefix: string;
  private readonly channel: string;
  private readonly watchers = new Set<(taskId: string, version?: number) => void>();
  private readonly resyncs = new Set<() => void>();
  private closed = false;
  private readonly url: string;
  /** Ended tasks' records just read or written here (see `RedisBackendOptions.endedCacheBytes`). */
  private readonly ended: EndedCache;
  /** Settles once the global indexes are known to be complete (see `reindex`). */
  private indexed?: Promise<void>;

  constructor(options: RedisBackendOptions) {
    this.prefix = options.prefix ?? 'mcp-tasks';
    this.channel = `${this.prefix}:changes`;
    this.url = options.url;
    this.ended = new EndedCache(options.endedCacheBytes ?? DEFAULT_ENDED_CACHE_BYTES);
    this.redis = new (driver().Redis)(options.url, {
      maxRetriesPerRequest: 3,
      connectTimeout: Math.max(1, Math.floor(options.connectTimeoutMs ?? 3000)),
      commandTimeout: Math.max(1, Math.floor(options.commandTimeoutMs ?? 5000)),
      keepAlive: 5000,
    }) as ScriptedRedis;
    this.redis.on('error', () => undefined); // surfaced on the commands that fail
    this.redis.defineCommand('mcpInsert', { numberOfKeys: 7, lua: INSERT });
    this.redis.defineCommand('mcpReplace', { numberOfKeys: 6, lua: REPLACE });
    this.redis.defineCommand('mcpReleaseKey', { numberOfKeys: 1, lua: RELEASE_KEY });
    this.redis.defineCommand('mcpAppendFenced', { numberOfKeys: 2, lua: APPEND_FENCED });
    this.redis.defineCommand('mcpEnqueue', { numberOfKeys: 0, lua: ENQUEUE });
    this.redis.defineCommand('mcpClaim', { numberOfKeys: 1, lua: CLAIM });
    this.redis.defineCommand('mcpSettle', { numberOfKeys: 2, lua: SETTLE });
  }

  /** The store as logs name it: the URL without its password, and the key prefix. */
  describe(): string {
    return `${redactUrl(this.url)} (prefix ${this.prefix})`;
  }

  private key(...parts: string[]): string {
    return [this.prefix, ...parts].join(':');
  }

  private ownerKey(owner: string | null): string {
    return owner === null ? this.key('owner', '-') : this.key('owner', `=${Buffer.from(owner).toString('base64url')}`);
  }

  /** Key of the index of tasks that ended `status` (scored by expiry). */
  private endedKey(status: TaskStatus): string {
    return this.key('ended', status);
  }

  /** Key of the index of tasks that completed with a tool error (`completedWithToolError`), scored like `ended:<status>`. */
  private get toolErrorsKey(): string {
    return this.key('ended', 'tool-error');
  }

  /** Score of a terminal task in its `ended:<status>` index: its expiry in ms, or `+inf`. */
  private static endedScore(task: TaskRecord): string {
    return task.ttl === null ? '+inf' : String(Date.parse(task.createdAt) + task.ttl);
  }

  /**
   * Key of a task's idempotency index (`idem:<idempotencyScope>`, holding the task id), or a
   * placeholder (never written) for a task created without a key.
   */
  private idemKey(task: TaskRecord): string {
    return task.idempotency ? this.key('idem', idempotencyScope(task.owner, task.idempotency.key)) : this.key('idem', '-');
  }

  async insert(task: TaskRecord): Promise<TaskRecord | undefined> {
    const inserted = await this.redis.mcpInsert(
      this.key('task', task.taskId),
      this.ownerKey(task.owner),
      this.key('unfinished'),
      this.key('all'),
      this.endedKey(task.status),
      this.toolErrorsKey,
      this.idemKey(task),
      String(task.version),
      JSON.stringify(task),
      memberOf(task),
      isTerminal(task.status) ? '0' : '1',
      this.channel,
      task.taskId,
      isTerminal(task.status) ? RedisBackend.endedScore(task) : '',
      fenceField(task),
      completedWithToolError(task) ? '1' : '0',
      task.idempotency ? this.key('task', '') : '',
    );
    if (typeof inserted === 'string') {
      // The key's holder, retained when the script ran; if it expired since, this insert is tried again.
      return (await this.get(inserted)) ?? this.insert(task);
    }
    if (inserted !== 1) throw new Error(`duplicate taskId ${task.taskId}`);
    return undefined;
  }

  async findByIdempotency(scope: string): Promise<TaskRecord | undefined> {
    const taskId = await this.redis.get(this.key('idem', scope));
    return taskId === null ? undefined : this.get(taskId); // a task's hash exists exactly while it is retained
  }

  /**
   * The stored record: an ended task's from memory when this process read or wrote it last and no
   * newer write was heard of since (see `EndedCache`), else `HGET`.
   */
  async get(taskId: string): Promise<TaskRecord | undefined> {
    try {
      return await this.ended.read(taskId, () => this.readRecord(taskId));
    } catch (error) {
      if (!isReplyError(error)) this.ended.lost(true);
      throw error;
    }
  }

  /** The stored record (`HGET`), with its JSON as stored. */
  private async readRecord(taskId: string): Promise<{ task: TaskRecord | undefined; json?: string }> {
    const body = await this.redis.hget(this.key('task', taskId), 'b');
    return body === null ? { task: undefined } : { task: JSON.parse(body) as TaskRecord, json: body };
  }

  /**
   * The compare-and-swap script. A write that ends the task leaves its record in the cache of ended
   * tasks; one that lost (or failed) drops the task from it.
   */
  async replace(task: TaskRecord, expectedVersion: number, deliveries: OutboxDelivery[] = []): Promise<boolean> {
    const ticket = this.ended.begin(task.taskId);
    const json = JSON.stringify(task);
    let replaced = false;
    try {
      replaced = await this.replaceScript(task, json, expectedVersion, deliveries);
      return replaced;
    } catch (error) {
      if (!isReplyError(error)) this.ended.lost(true);
      throw error;
    } finally {
      this.ended.settleWrite(ticket, task, json, replaced);
    }
  }

  private async replaceScript(task: TaskRecord, json: string, expectedVersion: number, deliveries: OutboxDelivery[]): Promise<boolean> {
    const expireAt = isTerminal(task.status) && task.ttl !== null ? Date.parse(task.createdAt) + task.ttl : 0;
    const replaced = await this.redis.mcpReplace(
      this.key('task', task.taskId),
      this.key('unfinished'),
      this.key('journal', task.taskId),
      this.endedKey(task.status),
      this.toolErrorsKey,
      this.idemKey(task),
      String(expectedVersion),
      String(task.version),
      json,
      isTerminal(task.status) ? '0' : '1',
      String(Math.max(0, expireAt)),
      this.channel,
      task.taskId,
      memberOf(task),
      fenceField(task),
      completedWithToolError(task) ? '1' : '0',
      this.key('outbox', ''),
      String(deliveries.length),
      ...deliveries.flatMap((d) => [d.deliveryId, fixedPart(d), String(d.nextAttemptAt)]),
    );
    return replaced === 1;
  }

  async enqueueDeliveries(deliveries: OutboxDelivery[]): Promise<void> {
    await this.redis.mcpEnqueue(this.key('outbox', ''), ...deliveries.flatMap((d) => [d.taskId, d.deliveryId, fixedPart(d), String(d.nextAttemptAt)]));
  }

  /** One script: due ids from `outbox:due`, each claimed (moved to the lease's end) and returned. */
  async claimDeliveries(holder: string, nowMs: number, leaseMs: number, limit: number): Promise<OutboxDelivery[]> {
    const next = nowMs + leaseMs;
    const rows = await this.redis.mcpClaim(this.key('outbox', 'due'), String(nowMs), String(limit), String(next), newClaim(holder), this.key('outbox', ''));
    return rows.map(([, fixed, attempts, lastError, claim]) => ({
      ...(JSON.parse(fixed) as FixedPart),
      attempts: Number(attempts),
      nextAttemptAt: next,
      state: 'pending',
      ...(lastError !== '' && { lastError }),
      claim,
    }));
  }

  async settleDelivery(deliveryId: string, claim: string, settlement: DeliverySettlement): Promise<boolean> {
    const settledAt = await this.redis.mcpSettle(
      this.key('outbox', 'd', deliveryId),
      this.key('outbox', 'due'),
      claim,
      settlement.state,
      settlement.state === 'pending' ? String(settlement.nextAttemptAt) : '0',
      settlement.state === 'delivered' ? '' : settlement.lastError.slice(0, 500),
      deliveryId,
      String(SETTLED_RETAIN_MS),
    );
    return settledAt === 1;
  }

  async listDeliveries(taskId: string): Promise<OutboxDelivery[]> {
    const ids = await this.redis.zrange(this.key('outbox', 'task', taskId), 0, -1);
    if (ids.length === 0) return [];
    const fields = results(await this.redis.pipeline(ids.map((id) => ['hmget', this.key('outbox', 'd', id), 'b', 's', 'a', 'n', 'e', 'c'])).exec()) as (
      string | null
    )[][];
    return fields
      .filter(([fixed]) => fixed !== null)
      .map(([fixed, state, attempts, next, lastError, claim]) => ({
        ...(JSON.parse(fixed!) as FixedPart),
        state: state as DeliveryState,
        attempts: Number(attempts),
        nextAttemptAt: Number(next),
        ...(lastError !== null && { lastError }),
        ...(claim !== null && { claim }),
      }))
      .sort((a, b) => a.createdAt - b.createdAt);
  }

  async nextDeliveryAt(): Promise<number | undefined> {
    const [, score] = await this.redis.zrange(this.key('outbox', 'due'), 0, 0, 'WITHSCORES');
    return score === undefined ? undefined : Number(score);
  }

  /** The record and Redis's `TIME`, in one round trip (a pipeline). */
  async getAt(taskId: string): Promise<{ task: TaskRecord | undefined; nowMs: number }> {
    const [body, time] = results(await this.redis.pipeline().hget(this.key('task', taskId), 'b').time().exec()) as [string | null, [string, string]];
    return { task: body === null ? undefined : (JSON.parse(body) as TaskRecord), nowMs: timeMs(time) };
  }

  async clock(): Promise<number> {
    return timeMs((await this.redis.time()) as unknown as [string, string]);
  }

  async list(query: ListQuery): Promise<TaskRecord[]> {
    const index = this.ownerKey(query.owner);
    const out: TaskRecord[] = [];
    let min = query.after ? `(${query.after.createdAt}\0${query.after.taskId}` : '-';
    while (out.length < query.limit) {
      const members = await this.redis.zrangebylex(index, min, '+', 'LIMIT', 0, query.limit - out.length);
      if (members.length === 0) break;
      const bodies = await this.redis.pipeline(members.map((m) => ['hget', this.key('task', m.split('\0')[1]!), 'b'])).exec();
      const gone: string[] = [];
      members.forEach((member, i) => {
        const body = bodies?.[i]?.[1] as string | null;
        if (body === null || body === undefined) gone.push(member);
        else out.push(JSON.parse(body) as TaskRecord);
      });
      if (gone.length > 0) await this.redis.zrem(index, ...gone);
      min = `(${members.at(-1)!}`;
    }
    return out;
  }

  async listUnfinished(): Promise<TaskRecord[]> {
    const ids = await this.redis.smembers(this.key('unfinished'));
    if (ids.length === 0) return [];
    const bodies = await this.redis.pipeline(ids.map((id) => ['hget', this.key('task', id), 'b'])).exec();
    const tasks = (bodies ?? [])
      .map(([, body]) => body as string | null)
      .filter((b): b is string => typeof b === 'string')
      .map((b) => JSON.parse(b) as TaskRecord);
    return tasks.sort((a, b) => (a.createdAt < b.createdAt ? -1 : a.createdAt > b.createdAt ? 1 : a.taskId < b.taskId ? -1 : 1));
  }

  /**
   * One page of every principal's tasks, newest first (see `StoreBackend.listAll`):
   * - statuses all live (`working` / `input_required`): the `unfinished` set's tasks, filtered and
   *   sorted in process — exact, O(live tasks) per page;
   * - otherwise `ZREVRANGEBYLEX` over `all` (or the owner's own index when `owner` is given), with
   *   `before` / `createdFrom` / `createdTo` as the lex range and the other filters applied to the
   *   fetched records, in batches until `limit` match, the index is exhausted, or
   *   `MAX_SCANNED_PER_PAGE` (5000) members were examined — then `scannedTo` says where to go on.
   *   Members whose task hash expired are dropped from the index on the way (`ZREM`).
   * The first call waits for `reindex` when the indexes may miss older tasks.
   */
  async listAll(query: OperatorListQuery): Promise<OperatorListPage> {
    if (query.statuses?.length === 0) return { tasks: [] };
    await this.ensureIndexes();
    if (query.statuses?.every((status) => !isTerminal(status))) {
      const live = (await this.liveTasks()).filter((task) => matchesOperatorQuery(task, query));
      return { tasks: live.sort((a, b) => comparePositions(b, a)).slice(0, query.limit) };
    }
    const index = query.owner === undefined ? this.key('all') : this.ownerKey(query.owner);
    const bounds = [query.before && memberOf(query.before), query.createdTo].filter((b): b is string => b !== undefined);
    let max = bounds.length === 0 ? '+' : `(${bounds.reduce((a, b) => (a < b ? a : b))}`;
    const min = query.createdFrom === undefined ? '-' : `[${query.createdFrom}`;
    const filtered = query.statuses !== undefined || query.tool !== undefined;
    const tasks: TaskRecord[] = [];
    let scanned = 0;
    let last: string | undefined;
    while (tasks.length < query.limit) {
      if (scanned >= MAX_SCANNED_PER_PAGE) return { tasks, scannedTo: positionOf(last!) };
      const need = query.limit - tasks.length;
      const count = Math.min(filtered ? BATCH : need, BATCH, MAX_SCANNED_PER_PAGE - scanned);
      const members = await this.redis.zrevrangebylex(index, max, min, 'LIMIT', 0, count);
      if (members.length === 0) break;
      const bodies = await this.bodies(members.map((member) => positionOf(member).taskId));
      const gone: string[] = [];
      for (let i = 0; i < members.length && tasks.length < query.limit; i++) {
        scanned++;
        last = members[i]!;
        const body = bodies[i];
        if (body === null) gone.push(last);
        else {
          const task = JSON.parse(body!) as TaskRecord;
          if (matchesOperatorQuery(task, query)) tasks.push(task);
        }
      }
      if (gone.length > 0) await this.redis.zrem(index, ...gone);
      if (members.length < count) break;
      max = `(${last}`;
    }
    return { tasks };
  }

  /**
   * Counts without scanning terminal tasks: live statuses from the records of the `unfinished` set,
   * O(live tasks), with the first-ask times of the outstanding questions (`HMGET` of their `asked:`
   * journal entries, in the same pipeline as the rest); each terminal status by `ZCOUNT
   * ended:<status> (nowMs +inf`, and tool errors by the same on `ended:tool-error`, O(log n) — exact,
   * since a terminal task's expiry never changes. The first call waits for `reindex` when the
   * indexes may miss older tasks.
   */
  async countByStatus(nowMs: number): Promise<StatusCounts> {
    await this.ensureIndexes();
    const counts = zeroCounts();
    const waiting: TaskRecord[] = [];
    for (const task of await this.liveTasks()) {
      if (isTerminal(task.status)) continue;
      counts[task.status]++;
      if (task.status === 'input_required') waiting.push(task);
    }
    const terminal = [...TERMINAL_STATUSES];
    const pipeline = this.redis.pipeline();
    for (const status of terminal) pipeline.zcount(this.endedKey(status), `(${nowMs}`, '+inf');
    pipeline.zcount(this.toolErrorsKey, `(${nowMs}`, '+inf');
    const asking = waiting.filter((task) => Object.keys(task.inputRequests).length > 0);
    for (const task of asking) pipeline.hmget(this.key('journal', task.taskId), ...Object.keys(task.inputRequests).map(askedKey));
    const counted = results(await pipeline.exec());
    terminal.forEach((status, i) => {
      counts[status] = Number(counted[i]);
    });
    const toolErrors = Number(counted[terminal.length]);
    const asked = new Map(asking.map((task, i) => [task, counted[terminal.length + 1 + i] as (string | null)[]]));
    let oldestInputRequiredAt: string | undefined;
    for (const task of waiting) {
      const times = (asked.get(task) ?? []).map((entry) => (entry === null ? undefined : (JSON.parse(entry) as AskedEntry).at));
      const since = oldestAsked(times, task.lastUpdatedAt);
      if (oldestInputRequiredAt === undefined || since < oldestInputRequiredAt) oldestInputRequiredAt = since;
    }
    return {
      counts,
      ...(toolErrors > 0 && { completedWithToolError: toolErrors }),
      ...(oldestInputRequiredAt !== undefined && { oldestInputRequiredAt }),
    };
  }

  /**
   * Deletes no task: terminal tasks expire by themselves (`PEXPIREAT`), so this returns 0. It only
   * trims the operator indexes: up to `limit` members per round (at most 10 rounds) of each
   * `ended:<status>` (and `ended:tool-error`) whose expiry is at or before `nowMs` leave it and `all`. Owner index entries
   * are dropped lazily by `list`.
   */
  async purgeExpired(nowMs: number, limit: number): Promise<number> {
    const indexes = [...TERMINAL_STATUSES].map((status) => this.endedKey(status)).concat(this.toolErrorsKey);
    for (const ended of indexes) {
      for (let round = 0; round < 10; round++) {
        const members = await this.redis.zrangebyscore(ended, '-inf', nowMs, 'LIMIT', 0, limit);
        if (members.length > 0)
          results(
            await this.redis
              .multi()
              .zrem(ended, ...members)
              .zrem(this.key('all'), ...members)
              .exec(),
          );
        if (members.length < limit) break;
      }
    }
    return 0;
  }

  /**
   * Deletes the task's keys and index entries in one transaction, which also publishes a change
   * notice without a version (`<taskId>`), so other instances drop it from their cache of ended tasks.
   */
  async delete(taskId: string): Promise<boolean> {
    this.ended.drop(taskId);
    const { task } = await this.readRecord(taskId);
    if (!task) return false;
    const member = memberOf(task);
    const transaction = this.redis
      .multi()
      .del(this.key('task', taskId), this.key('journal', taskId))
      .zrem(this.ownerKey(task.owner), member)
      .zrem(this.key('all'), member)
      .srem(this.key('unfinished'), taskId);
    // Every ended index, not only the one of the status read: the task may have ended since.
    for (const status of TERMINAL_STATUSES) transaction.zrem(this.endedKey(status), member);
    transaction.zrem(this.toolErrorsKey, member);
    transaction.publish(this.channel, taskId);
    await transaction.exec();
    this.ended.drop(taskId);
    if (task.idempotency) await this.redis.mcpReleaseKey(this.idemKey(task), taskId);
    return true;
  }

  /**
   * Adds every stored task to the operator indexes (`all`, and `ended:<status>` for terminal ones,
   * `ended:tool-error` for those that completed with a tool error, `ZADD NX`), then records that they
   * are complete (keys `indexes` and `indexes:tool-error`). Runs by itself, once per data set, before
   * the first `listAll` / `countByStatus` of a backend finding either key missing (tasks
   * created before this version of mcp-tasks maintained those indexes). Run it again by hand after a
   * rolling upgrade: instances of an older version, still running after the first backfill, create
   * tasks the global indexes miss. Cost: one `SCAN … MATCH <prefix>:task:*` over the whole keyspace
   * and one read per task; concurrent writes are safe (indexes of deleted or expired tasks are
   * dropped lazily). Returns how many tasks it saw.
   */
  async reindex(): Promise<number> {
    const match = `${escapeGlob(this.key('task'))}:*`;
    let cursor = '0';
    let seen = 0;
    do {
      const [next, keys] = await this.redis.scan(cursor, 'MATCH', match, 'COUNT', 1000);
      cursor = next;
      if (keys.length === 0) continue;
      const bodies = results(await this.redis.pipeline(keys.map((key) => ['hget', key, 'b'])).exec()) as (string | null)[];
      const pipeline = this.redis.pipeline();
      for (const body of bodies) {
        if (body === null) continue;
        const task = JSON.parse(body) as TaskRecord;
        seen++;
        pipeline.zadd(this.key('all'), 'NX', 0, memberOf(task));
        if (isTerminal(task.status)) pipeline.zadd(this.endedKey(task.status), 'NX', RedisBackend.endedScore(task), memberOf(task));
        if (completedWithToolError(task)) pipeline.zadd(this.toolErrorsKey, 'NX', RedisBackend.endedScore(task), memberOf(task));
      }
      results(await pipeline.exec());
    } while (cursor !== '0');
    await this.redis.mset(this.key('indexes'), INDEXES_VERSION, this.key('indexes', 'tool-error'), INDEXES_VERSION);
    return seen;
  }

  /** Runs `reindex` unless the data set's indexes are already complete; once per backend. */
  private ensureIndexes(): Promise<void> {
    this.indexed ??= (async () => {
      const marks = await this.redis.mget(this.key('indexes'), this.key('indexes', 'tool-error'));
      if (marks.some((mark) => mark !== INDEXES_VERSION)) await this.reindex();
    })().catch((error: unknown) => {
      this.indexed = undefined; // retried by the next call
      throw error;
    });
    return this.indexed;
  }

  /** The `b` field of each task, in order (null when the task is gone). */
  private async bodies(taskIds: string[]): Promise<(string | null)[]> {
    if (taskIds.length === 0) return [];
    return results(await this.redis.pipeline(taskIds.map((id) => ['hget', this.key('task', id), 'b'])).exec()) as (string | null)[];
  }

  /** The records of the `unfinished` set, read with `SSCAN` and in batches of `BATCH`. */
  private async liveTasks(): Promise<TaskRecord[]> {
    const ids = new Set<string>();
    let cursor = '0';
    do {
      const [next, members] = await this.redis.sscan(this.key('unfinished'), cursor, 'COUNT', 1000);
      cursor = next;
      for (const id of members) ids.add(id);
    } while (cursor !== '0');
    const all = [...ids];
    const tasks: TaskRecord[] = [];
    for (let i = 0; i < all.length; i += BATCH) {
      for (const body of await this.bodies(all.slice(i, i + BATCH))) if (body !== null) tasks.push(JSON.parse(body) as TaskRecord);
    }
    return tasks;
  }

  async readJournal(taskId: string): Promise<Map<string, Json>> {
    const entries = await this.redis.hgetall(this.key('journal', taskId));
    return new Map(Object.entries(entries).map(([key, value]) => [key, JSON.parse(value) as Json]));
  }

  async deleteJournal(taskId: string, keys: string[]): Promise<number> {
    if (keys.length === 0) return 0;
    return this.redis.hdel(this.key('journal', taskId), ...keys);
  }

  async appendJournal(taskId: string, key: string, value: Json, fence?: Fence): Promise<boolean> {
    if (fence)
      return (
        (await this.redis.mcpAppendFenced(
          this.key('task', taskId),
          this.key('journal', taskId),
          key,
          JSON.stringify(value),
          `${fence.holder}\n${fence.epoch}`,
        )) === 1
      );
    return (await this.redis.hsetnx(this.key('journal', taskId), key, JSON.stringify(value))) === 1;
  }

  watch(listener: (taskId: string, version?: number) => void, resync?: () => void): () => void {
    this.watchers.add(listener);
    if (resync) this.resyncs.add(resync);
    if (!this.subscriber) {
      const subscriber = this.redis.duplicate();
      this.subscriber = subscriber;
      subscriber.on('error', () => undefined); // ioredis reconnects and re-subscribes by itself
      // Messages published while the subscriber was disconnected are lost: tell the watchers to re-read.
      let lost = false;
      subscriber.on('close', () => {
        lost = true;
        this.ended.lost(false);
      });
      subscriber.on('ready', () => {
        if (!lost) return;
        lost = false;
        // Subscribed again (ioredis re-subscribes on connect; this confirms it): notices flow.
        subscriber.subscribe(this.channel).then(
          () => subscriber.status === 'ready' && !lost && this.ended.listening(),
          () => undefined,
        );
        for (const callback of this.resyncs) callback();
      });
      subscriber.on('message', (channel: string, payload: string) => {
        if (channel !== this.channel) return;
        const { taskId, version } = parseChangeNotice(payload);
        this.ended.notice(taskId, version);
        for (const watcher of this.watchers) watcher(taskId, version);
      });
      subscriber.subscribe(this.channel).then(
        () => subscriber.status === 'ready' && !lost && this.ended.listening(),
        () => undefined,
      );
    }
    return () => {
      this.watchers.delete(listener);
      if (resync) this.resyncs.delete(resync);
    };
  }

  /** Closes both connections. Idempotent. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.ended.lost(false);
    this.subscriber?.disconnect();
    await this.redis.quit().catch(() => this.redis.disconnect());
  }
}

/** Redis `TIME` (`[seconds, microseconds]`) in ms since the epoch. */
function timeMs([seconds, micros]: [string, string]): number {
  return Number(seconds) * 1000 + Math.floor(Number(micros) / 1000);
}
