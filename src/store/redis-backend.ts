import type { Redis } from 'ioredis';
import type { Json } from '../core/json.js';
import { isTerminal } from '../core/status.js';
import type { TaskRecord } from '../core/task.js';
import type { ListQuery, StoreBackend } from './backend.js';
import { loadDriver } from './load-driver.js';

/** Options of the Redis backend. */
export interface RedisBackendOptions {
  /** e.g. `redis://127.0.0.1:6379/0`. */
  url: string;
  /** Prefix of every key and of the change channel. Default `mcp-tasks`. */
  prefix?: string;
}

// KEYS: task, ownerIndex, unfinished   ARGV: version, body, member, unfinished(0/1), channel, taskId
const INSERT = `
if redis.call('EXISTS', KEYS[1]) == 1 then return 0 end
redis.call('HSET', KEYS[1], 'v', ARGV[1], 'b', ARGV[2])
redis.call('ZADD', KEYS[2], 0, ARGV[3])
if ARGV[4] == '1' then redis.call('SADD', KEYS[3], ARGV[6]) end
redis.call('PUBLISH', ARGV[5], ARGV[6])
return 1`;

// KEYS: task, unfinished, journal   ARGV: expected, version, body, unfinished(0/1), expireAtMs(0 = none), channel, taskId
const REPLACE = `
local current = redis.call('HGET', KEYS[1], 'v')
if current == false or current ~= ARGV[1] then return 0 end
redis.call('HSET', KEYS[1], 'v', ARGV[2], 'b', ARGV[3])
if ARGV[4] == '1' then redis.call('SADD', KEYS[2], ARGV[7]) else redis.call('SREM', KEYS[2], ARGV[7]) end
local expireAt = tonumber(ARGV[5])
if expireAt > 0 then
  redis.call('PEXPIREAT', KEYS[1], expireAt)
  if redis.call('EXISTS', KEYS[3]) == 1 then redis.call('PEXPIREAT', KEYS[3], expireAt) end
end
redis.call('PUBLISH', ARGV[6], ARGV[7])
return 1`;

/**
 * ioredis, loaded on first construction (an optional peer dependency: applications that never open
 * a `redis://` store need not install it). Throws naming `npm install ioredis` when it is missing.
 */
function driver(): typeof import('ioredis') {
  return loadDriver<typeof import('ioredis')>('ioredis', 'A redis:// store (RedisBackend)', 'an optional peer dependency of mcp-tasks');
}

type ScriptedRedis = Redis & {
  mcpInsert(task: string, owner: string, unfinished: string, ...argv: string[]): Promise<number>;
  mcpReplace(task: string, unfinished: string, journal: string, ...argv: string[]): Promise<number>;
};

/**
 * Shared backend (`redis://…`) on ioredis, for several server instances on one Redis.
 *
 * Keys (under the prefix): `task:<id>` (hash: `v` version, `b` record JSON), `owner:<owner>`
 * (sorted set of `createdAt\0taskId`, listed with `ZRANGEBYLEX` for cursor pagination),
 * `unfinished` (set of live task ids), `journal:<id>` (hash; `HSETNX` = first write wins).
 * Insert and compare-and-swap replace are Lua scripts, so each is atomic with its index updates
 * and its `PUBLISH` on `<prefix>:changes` (the cross-instance wake-up `watch` subscribes to).
 * Once a task is terminal its keys expire with its TTL (`PEXPIREAT createdAt + ttl`, set by the
 * write that ends it, whose `ttl` already includes the retention after the end — see `ttlAtEnd`);
 * a live task never expires under its worker. Index entries of expired tasks are dropped lazily
 * when listed.
 *
 * Import it from `mcp-tasks/store/redis` (or let `openStore('redis://…')` build it). The driver
 * `ioredis` is an optional peer dependency, loaded by the first constructor call, not by the import;
 * the constructor throws `Error` ("… needs 'ioredis' …: npm install ioredis") when it is not installed.
 */
export class RedisBackend implements StoreBackend {
  readonly exclusive = false;
  private readonly redis: ScriptedRedis;
  private subscriber?: Redis;
  private readonly prefix: string;
  private readonly channel: string;
  private readonly watchers = new Set<(taskId: string) => void>();
  private closed = false;

  constructor(private readonly options: RedisBackendOptions) {
    this.prefix = options.prefix ?? 'mcp-tasks';
    this.channel = `${this.prefix}:changes`;
    this.redis = new (driver().Redis)(options.url, { maxRetriesPerRequest: 3 }) as ScriptedRedis;
    this.redis.on('error', () => undefined); // surfaced on the commands that fail
    this.redis.defineCommand('mcpInsert', { numberOfKeys: 3, lua: INSERT });
    this.redis.defineCommand('mcpReplace', { numberOfKeys: 3, lua: REPLACE });
  }

  private key(...parts: string[]): string {
    return [this.prefix, ...parts].join(':');
  }

  private ownerKey(owner: string | null): string {
    return owner === null ? this.key('owner', '-') : this.key('owner', `=${Buffer.from(owner).toString('base64url')}`);
  }

  async insert(task: TaskRecord): Promise<void> {
    const inserted = await this.redis.mcpInsert(
      this.key('task', task.taskId),
      this.ownerKey(task.owner),
      this.key('unfinished'),
      String(task.version),
      JSON.stringify(task),
      `${task.createdAt}\0${task.taskId}`,
      isTerminal(task.status) ? '0' : '1',
      this.channel,
      task.taskId,
    );
    if (inserted !== 1) throw new Error(`duplicate taskId ${task.taskId}`);
  }

  async get(taskId: string): Promise<TaskRecord | undefined> {
    const body = await this.redis.hget(this.key('task', taskId), 'b');
    return body === null ? undefined : (JSON.parse(body) as TaskRecord);
  }

  async replace(task: TaskRecord, expectedVersion: number): Promise<boolean> {
    const expireAt = isTerminal(task.status) && task.ttl !== null ? Date.parse(task.createdAt) + task.ttl : 0;
    const replaced = await this.redis.mcpReplace(
      this.key('task', task.taskId),
      this.key('unfinished'),
      this.key('journal', task.taskId),
      String(expectedVersion),
      String(task.version),
      JSON.stringify(task),
      isTerminal(task.status) ? '0' : '1',
      String(Math.max(0, expireAt)),
      this.channel,
      task.taskId,
    );
    return replaced === 1;
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

  /** Terminal tasks expire by themselves (`PEXPIREAT`); index entries are dropped lazily by `list`. */
  async purgeExpired(): Promise<number> {
    return 0;
  }

  async delete(taskId: string): Promise<boolean> {
    const task = await this.get(taskId);
    if (!task) return false;
    await this.redis
      .multi()
      .del(this.key('task', taskId), this.key('journal', taskId))
      .zrem(this.ownerKey(task.owner), `${task.createdAt}\0${taskId}`)
      .srem(this.key('unfinished'), taskId)
      .exec();
    return true;
  }

  async readJournal(taskId: string): Promise<Map<string, Json>> {
    const entries = await this.redis.hgetall(this.key('journal', taskId));
    return new Map(Object.entries(entries).map(([key, value]) => [key, JSON.parse(value) as Json]));
  }

  async appendJournal(taskId: string, key: string, value: Json): Promise<boolean> {
    return (await this.redis.hsetnx(this.key('journal', taskId), key, JSON.stringify(value))) === 1;
  }

  watch(listener: (taskId: string) => void): () => void {
    this.watchers.add(listener);
    if (!this.subscriber) {
      const subscriber = this.redis.duplicate();
      this.subscriber = subscriber;
      subscriber.on('error', () => undefined); // ioredis reconnects and re-subscribes by itself
      subscriber.on('message', (channel: string, taskId: string) => {
        if (channel === this.channel) for (const watcher of this.watchers) watcher(taskId);
      });
      void subscriber.subscribe(this.channel).catch(() => undefined);
    }
    return () => {
      this.watchers.delete(listener);
    };
  }

  /** Closes both connections. Idempotent. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.subscriber?.disconnect();
    await this.redis.quit().catch(() => this.redis.disconnect());
  }
}
