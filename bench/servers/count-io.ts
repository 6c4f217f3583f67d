/**
 * Preload for bench/round-trips.ts (`node --import tsx --import ./bench/servers/count-io.ts …`):
 * counts what the server process asks of its store, client side, without changing it.
 *
 * - PostgreSQL (`pg`): every `Client.prototype.query` is one round trip (node-postgres does not
 *   pipeline); its statement is classified by kind (`select`, `insert`, `update`, `notify`, …, the
 *   first keyword after a leading `WITH … AS (…)` is the written table's verb); a transaction is a
 *   statement outside `BEGIN … COMMIT` or one such block. `LISTEN` notices received are counted too.
 * - Redis (`ioredis`): every command by name; a round trip is a command sent on its own or one
 *   pipeline / `MULTI … EXEC` (ioredis writes a pipeline's commands at once and waits for all).
 *   Pub/sub messages received are counted.
 *
 * On SIGUSR2 writes `count-io <json>` (one line, the totals since start) to stderr.
 */
import { createRequire } from 'node:module';

const require = createRequire(import.meta.url);

/** Totals since the process started. */
const counts = {
  pg: { roundTrips: 0, transactions: 0, kinds: {} as Record<string, number>, notices: 0, connects: 0 },
  redis: { roundTrips: 0, commands: 0, names: {} as Record<string, number>, messages: 0 },
};

const bump = (record: Record<string, number>, key: string) => (record[key] = (record[key] ?? 0) + 1);

/** The kind of a SQL statement: what it does to the task tables, roughly. */
function kindOf(text: string): string {
  const t = text.replace(/\s+/g, ' ').trim().toLowerCase();
  if (t.startsWith('begin') || t.startsWith('commit') || t.startsWith('rollback')) return t.split(' ')[0]!;
  if (t.startsWith('listen') || t === 'select 1') return 'listener';
  if (t.startsWith('with')) {
    // WITH x AS (UPDATE …), WITH ins AS (INSERT …): the first data-modifying verb names it.
    const verb = /\b(insert|update|delete)\b/.exec(t)?.[1];
    if (verb) return `${verb}${t.includes('pg_notify') ? '+notify' : ''}`;
    return 'select';
  }
  return t.split(' ')[0]!;
}

try {
  const pg = require('pg') as typeof import('pg');
  const proto = pg.Client.prototype as unknown as { query: (...args: unknown[]) => unknown; connect: (...args: unknown[]) => unknown };
  const query = proto.query;
  const connect = proto.connect;
  const inTx = new WeakSet<object>();
  proto.query = function (this: object, config: unknown, ...rest: unknown[]) {
    const text = typeof config === 'string' ? config : ((config as { text?: string } | null)?.text ?? '');
    const kind = kindOf(text);
    counts.pg.roundTrips++;
    if (process.env.COUNT_IO_TRACE) process.stderr.write(`sql ${text.replace(/\s+/g, ' ').slice(0, 100)}\n`);
    bump(counts.pg.kinds, kind);
    if (kind === 'begin') {
      inTx.add(this);
      counts.pg.transactions++;
    } else if (kind === 'commit' || kind === 'rollback') inTx.delete(this);
    else if (!inTx.has(this) && kind !== 'listener') counts.pg.transactions++;
    return query.call(this, config, ...rest);
  };
  proto.connect = function (this: { on: (e: string, f: () => void) => void }, ...args: unknown[]) {
    counts.pg.connects++;
    this.on('notification', () => counts.pg.notices++);
    return connect.apply(this, args);
  };
} catch {
  // no pg: nothing to count
}

try {
  const { Redis, Pipeline } = require('ioredis') as { Redis: { prototype: any }; Pipeline?: { prototype: any } };
  const send = Redis.prototype.sendCommand;
  Redis.prototype.sendCommand = function (this: unknown, command: { name: string }, stream?: unknown) {
    counts.redis.commands++;
    bump(counts.redis.names, command.name);
    // A command given a stream is part of a pipeline written at once (counted by exec below).
    if (!stream) counts.redis.roundTrips++;
    return send.call(this, command, stream);
  };
  const PipelineClass = Pipeline ?? (require('ioredis/built/Pipeline') as { default: { prototype: any } }).default;
  const exec = PipelineClass.prototype.exec;
  PipelineClass.prototype.exec = function (this: unknown, ...args: unknown[]) {
    counts.redis.roundTrips++;
    return exec.apply(this, args);
  };
  const emit = Redis.prototype.emit;
  Redis.prototype.emit = function (this: unknown, event: string, ...args: unknown[]) {
    if (event === 'message' || event === 'pmessage') counts.redis.messages++;
    return emit.call(this, event, ...args);
  };
} catch {
  // no ioredis: nothing to count
}

process.on('SIGUSR2', () => process.stderr.write(`count-io ${JSON.stringify(counts)}\n`));
