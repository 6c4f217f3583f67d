/**
 * The store contract: every backend, behind the one TaskStore domain layer, must behave the same.
 * Later backends (postgres, redis) join `backends` below.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { after, describe, it } from 'node:test';
import pg from 'pg';
import Database from 'better-sqlite3';
import { Redis } from 'ioredis';
import { ENGINE_ACCESS } from '../src/core/access.js';
import {
  IdempotencyConflictError,
  IllegalTransitionError,
  InvalidAnswerError,
  InvalidArgumentError,
  InvalidCursorError,
  LeaseLostError,
  LimitExceededError,
  TaskNotFoundError,
} from '../src/core/errors.js';
import { requestFingerprint } from '../src/core/idempotency.js';
import { MemoryBackend } from '../src/store/memory-backend.js';
import { SqliteBackend } from '../src/store/sqlite-backend.js';
import { TaskStore } from '../src/store/task-store.js';
import { openBackend, openStore } from '../src/store/open-store.js';
import type { StoreBackend } from '../src/store/backend.js';
import type { TaskRecord } from '../src/core/task.js';
import { PG_URL, REDIS_URL, withParam } from './helpers/services.js';
import { until } from './helpers/until.js';

const dir = mkdtempSync(join(tmpdir(), 'mcp-tasks-contract-'));
after(() => rmSync(dir, { recursive: true, force: true }));

const run = randomBytes(3).toString('hex');
const pgSchemas: string[] = [];
after(async () => {
  const client = new pg.Client({ connectionString: PG_URL });
  await client.connect();
  for (const schema of pgSchemas) await client.query(`DROP SCHEMA IF EXISTS ${schema} CASCADE`);
  await client.end();
  const redis = new Redis(REDIS_URL);
  const keys = await redis.keys(`mcpt-${run}-*`);
  if (keys.length > 0) await redis.del(...keys);
  await redis.quit();
});

interface BackendFactory {
  name: string;
  /** A fresh, empty backend, its store URL, and `twin` to open a second connection to the same data. */
  open(): { backend: StoreBackend; url?: string; twin?: () => StoreBackend };
}

let counter = 0;
const backends: BackendFactory[] = [
  { name: 'memory', open: () => ({ backend: new MemoryBackend() }) },
  {
    name: 'sqlite',
    open: () => {
      const path = join(dir, `contract-${++counter}.db`);
      return { backend: new SqliteBackend(path), url: `sqlite:${path}?shared=true`, twin: () => new SqliteBackend(path) };
    },
  },
  {
    name: 'postgres',
    open: () => {
      const schema = `mcpt_${run}_${++counter}`;
      pgSchemas.push(schema);
      const url = withParam(PG_URL, 'schema', schema);
      return { backend: openBackend(url), url, twin: () => openBackend(url) };
    },
  },
  {
    name: 'redis',
    open: () => {
      const url = withParam(REDIS_URL, 'prefix', `mcpt-${run}-${++counter}`);
      return { backend: openBackend(url), url, twin: () => openBackend(url) };
    },
  },
];

const request = { tool: 'demo', arguments: { n: 1 } };
const ids = (tasks: TaskRecord[]) => tasks.map((t) => t.taskId);
/** Newest first: createdAt, then taskId, descending. */
const newestFirstOf = (a: TaskRecord, b: TaskRecord) => (a.createdAt !== b.createdAt ? (a.createdAt < b.createdAt ? 1 : -1) : a.taskId < b.taskId ? 1 : -1);

for (const factory of backends) {
  describe(`store contract: ${factory.name}`, () => {
    const opened: StoreBackend[] = [];
    after(() => Promise.all(opened.map((backend) => backend.close())));
    const fresh = (options?: ConstructorParameters<typeof TaskStore>[1]) => {
      const { backend, url, twin } = factory.open();
      opened.push(backend);
      const tracked = twin
        ? () => {
            const another = twin();
            opened.push(another);
            return another;
          }
        : undefined;
      return { store: new TaskStore(backend, options), url, twin: tracked };
    };

    it('versionsOf reads stored versions in one call; a waiter wakes on a write through another connection', async () => {
      const { store, twin } = fresh({ recheckMs: 100 });
      const a = await store.create({ owner: 'alice', request, errorResultStatus: 'failed' });
      const b = await store.create({ owner: 'alice', request, errorResultStatus: 'failed' });
      await store.report(a.taskId, { statusMessage: 'moved' });
      const reported = await store.get(a.taskId, 'alice');
      assert.ok(reported.version > a.version);
      const versionsOf = store.backend.versionsOf?.bind(store.backend);
      if (versionsOf) {
        const versions = await versionsOf([a.taskId, b.taskId, 'f'.repeat(32)]);
        assert.deepEqual(Object.fromEntries(versions), { [a.taskId]: reported.version, [b.taskId]: b.version }, 'unknown ids are left out');
      }
      if (!twin || store.exclusive) return store.close(); // one process: its own writes wake its waiters
      const elsewhere = new TaskStore(twin());
      const woke = store.nextChange(b.taskId);
      await elsewhere.report(b.taskId, { statusMessage: 'written elsewhere' });
      assert.equal((await woke)?.statusMessage, 'written elsewhere');
      await store.close();
    });

    it('creates a working task with spec fields', async () => {
      const { store } = fresh({ policy: { pollIntervalMs: 250 } });
      const task = await store.create({ owner: 'alice', request, ttl: 60_000, errorResultStatus: 'failed' });
      assert.match(task.taskId, /^[0-9a-f]{32}$/, 'taskId carries 128 random bits as hex');
      assert.equal(task.status, 'working');
      assert.equal(task.ttl, 60_000);
      assert.equal(task.pollInterval, 250);
      assert.equal(task.createdAt, task.lastUpdatedAt);
      assert.equal(new Date(task.createdAt).toISOString(), task.createdAt, 'createdAt is ISO 8601');
      assert.deepEqual(await store.get(task.taskId, 'alice'), task);
      await store.close();
    });

    it('clamps ttl to the policy maximum and applies the default', async () => {
      const { store } = fresh({ policy: { maxTtlMs: 1000, defaultTtlMs: 500 } });
      assert.equal((await store.create({ owner: null, request, ttl: 5000, errorResultStatus: 'failed' })).ttl, 1000);
      assert.equal((await store.create({ owner: null, request, errorResultStatus: 'failed' })).ttl, 500);
      assert.equal((await store.create({ owner: null, request, ttl: null, errorResultStatus: 'failed' })).ttl, 1000);
      await store.close();
    });

    it('hides tasks from other principals and reports unknown ids as not found', async () => {
      const { store } = fresh();
      const task = await store.create({ owner: 'alice', request, errorResultStatus: 'failed' });
      await assert.rejects(store.get(task.taskId, 'mallory'), TaskNotFoundError);
      await assert.rejects(store.get(task.taskId, null), TaskNotFoundError);
      await assert.rejects(store.cancel(task.taskId, 'mallory'), TaskNotFoundError);
      await assert.rejects(store.get('no-such-task', ENGINE_ACCESS), TaskNotFoundError);
      assert.equal((await store.get(task.taskId, 'alice')).status, 'working', 'foreign attempts changed nothing');
      await store.close();
    });

    it('fails closed when the access argument is missing (plain JavaScript callers)', async () => {
      const { store } = fresh();
      const task = await store.create({ owner: 'alice', request, errorResultStatus: 'failed' });
      const missing = undefined as unknown as string;
      await assert.rejects(store.get(task.taskId, missing), InvalidArgumentError);
      await assert.rejects(store.get('no-such-task', missing), InvalidArgumentError);
      await assert.rejects(store.cancel(task.taskId, missing), InvalidArgumentError);
      await assert.rejects(store.answerInput(task.taskId, 'k', { action: 'accept' }, missing), InvalidArgumentError);
      assert.equal((await store.get(task.taskId, ENGINE_ACCESS)).owner, 'alice', 'the engine sees every task');
      assert.equal((await store.get(task.taskId, 'alice')).status, 'working', 'nothing changed');
      await store.close();
    });

    it('enforces the lifecycle: terminal is final, cancel of terminal is refused', async () => {
      const { store } = fresh();
      const task = await store.create({ owner: null, request, errorResultStatus: 'failed' });
      await store.requestInput(task.taskId, 'q1', { kind: 'elicitation', message: 'ok?', requestedSchema: { type: 'object', properties: {} } }, 'ok?');
      assert.equal((await store.get(task.taskId, ENGINE_ACCESS)).status, 'input_required');
      const done = await store.finish(task.taskId, 'completed', { type: 'result', result: { content: [] } });
      assert.equal(done.status, 'completed');
      assert.deepEqual(done.inputRequests, {});
      await assert.rejects(store.finish(task.taskId, 'failed', { type: 'result', result: { content: [] } }), IllegalTransitionError);
      await assert.rejects(store.cancel(task.taskId, ENGINE_ACCESS), IllegalTransitionError);
      await assert.rejects(store.requestInput(task.taskId, 'q2', { kind: 'elicitation', message: 'x', requestedSchema: {} }, 'x'), IllegalTransitionError);
      assert.equal(await store.report(task.taskId, { statusMessage: 'late' }), false);
      const after = await store.get(task.taskId, ENGINE_ACCESS);
      assert.equal(after.status, 'completed');
      assert.equal(after.version, done.version, 'refused writes changed nothing');
    });

    it('keeps a cancelled task cancelled when its work finishes later', async () => {
      const { store } = fresh();
      const task = await store.create({ owner: null, request, errorResultStatus: 'failed' });
      const cancelled = await store.cancel(task.taskId, ENGINE_ACCESS);
      assert.equal(cancelled.status, 'cancelled');
      await assert.rejects(store.finish(task.taskId, 'completed', { type: 'result', result: { content: [] } }), IllegalTransitionError);
      assert.equal((await store.get(task.taskId, ENGINE_ACCESS)).status, 'cancelled');
    });

    it('records answers durably, ignores answers to keys not outstanding, resumes working when all are answered', async () => {
      const { store } = fresh();
      const task = await store.create({ owner: 'alice', request, errorResultStatus: 'failed' });
      const q = { kind: 'elicitation' as const, message: 'm', requestedSchema: {} };
      await store.requestInput(task.taskId, 'a', q, 'm');
      await store.requestInput(task.taskId, 'b', q, 'm');
      assert.equal(await store.answerInput(task.taskId, 'zzz', { action: 'accept', content: {} }, 'alice'), false);
      await assert.rejects(store.answerInput(task.taskId, 'a', { action: 'accept' }, 'mallory'), TaskNotFoundError);
      assert.equal(await store.answerInput(task.taskId, 'a', { action: 'accept', content: { x: 1 } }, 'alice'), true);
      let now = await store.get(task.taskId, ENGINE_ACCESS);
      assert.equal(now.status, 'input_required', 'partial answers leave the task input_required');
      assert.deepEqual(Object.keys(now.inputRequests), ['b']);
      assert.equal(await store.answerInput(task.taskId, 'b', { action: 'decline' }, 'alice'), true);
      now = await store.get(task.taskId, ENGINE_ACCESS);
      assert.equal(now.status, 'working');
      assert.deepEqual(await store.inputAnswer(task.taskId, 'a'), { action: 'accept', content: { x: 1 } });
      assert.equal(await store.answerInput(task.taskId, 'a', { action: 'decline' }, 'alice'), false, 'a second answer is ignored');
      assert.deepEqual(await store.inputAnswer(task.taskId, 'a'), { action: 'accept', content: { x: 1 } });
    });

    it('calls issued together (one batch on PostgreSQL) keep every rule of calls issued alone', async () => {
      const { store } = fresh();
      const backend = store.backend;
      const at = new Date().toISOString();
      const record = (taskId: string, version = 1, note = ''): TaskRecord => ({
        taskId,
        owner: null,
        status: 'working',
        statusMessage: note,
        createdAt: at,
        lastUpdatedAt: at,
        ttl: 60_000,
        pollInterval: 10,
        request,
        errorResultStatus: 'failed',
        inputRequests: {},
        version,
      });
      const [a, b, c] = ['a', 'b', 'c'].map((x) => x.repeat(32)) as [string, string, string];
      // Inserts: a task id given twice is stored once; the other call fails, alone.
      const inserted = await Promise.allSettled([
        backend.insert(record(a)),
        backend.insert(record(b)),
        backend.insert(record(a, 1, 'dup')),
        backend.insert(record(c)),
      ]);
      assert.deepEqual(
        inserted.map((r) => r.status),
        ['fulfilled', 'fulfilled', 'rejected', 'fulfilled'],
      );
      assert.equal((await backend.get(a))?.statusMessage, '', 'the first insert of a is the one stored');
      // Compare-and-swap: of two calls racing from version 1 exactly one wins, and what is stored is the winner's.
      const swapped = await Promise.all([
        backend.replace(record(a, 2, 'first'), 1),
        backend.replace(record(a, 2, 'second'), 1),
        backend.replace(record(b, 2, 'stale'), 7),
        backend.replace(record(c, 2, 'moved'), 1),
        backend.replace(record('f'.repeat(32), 2), 1),
      ]);
      assert.equal(swapped[0]! !== swapped[1]!, true, 'exactly one of the racing writers won');
      assert.deepEqual(swapped.slice(2), [false, true, false]);
      assert.equal((await backend.get(a))?.statusMessage, swapped[0] ? 'first' : 'second');
      // Reads of one task together are independent copies.
      const [one, two, none] = await Promise.all([backend.get(a), backend.get(a), backend.get('e'.repeat(32))]);
      assert.equal(none, undefined);
      assert.notEqual(one, two);
      one!.statusMessage = 'mutated';
      assert.notEqual(two!.statusMessage, 'mutated');
      assert.equal((await backend.get(c))?.version, 2);
      // Journal appends: the first call for a key wins; the value stored is its value.
      const appended = await Promise.all([
        backend.appendJournal(a, 'k', 1),
        backend.appendJournal(a, 'k', 2),
        backend.appendJournal(b, 'k', 3),
        backend.appendJournal(a, 'k2', { x: [1] }),
      ]);
      assert.deepEqual(appended, [true, false, true, true]);
      assert.deepEqual(Object.fromEntries(await backend.readJournal(a)), { k: 1, k2: { x: [1] } });
      if (factory.name === 'postgres') {
        // A value PostgreSQL refuses (NUL in jsonb) fails its own call only.
        const mixed = await Promise.allSettled([backend.appendJournal(c, 'ok', 'fine'), backend.appendJournal(c, 'bad', 'nul\u0000here')]);
        assert.deepEqual(
          mixed.map((r) => r.status),
          ['fulfilled', 'rejected'],
        );
        assert.deepEqual(Object.fromEntries(await backend.readJournal(c)), { ok: 'fine' });
      }
    });

    it('journal: first write wins', async () => {
      const { store } = fresh();
      const task = await store.create({ owner: null, request, errorResultStatus: 'failed' });
      assert.equal(await store.appendJournal(task.taskId, 'step:a', { ok: true, value: 1 }), true);
      assert.equal(await store.appendJournal(task.taskId, 'step:a', { ok: true, value: 2 }), false);
      assert.deepEqual((await store.readJournal(task.taskId)).get('step:a'), { ok: true, value: 1 });
    });

    it('paginates per owner with opaque cursors and rejects forged ones', async () => {
      const { store } = fresh();
      const mine: string[] = [];
      for (let i = 0; i < 7; i++) {
        mine.push((await store.create({ owner: 'alice', request, errorResultStatus: 'failed' })).taskId);
        await store.create({ owner: 'bob', request, errorResultStatus: 'failed' });
      }
      const seen: string[] = [];
      let cursor: string | undefined;
      let pages = 0;
      do {
        const page = await store.list('alice', cursor, 3);
        seen.push(...page.tasks.map((t) => t.taskId));
        cursor = page.nextCursor;
        pages++;
      } while (cursor);
      assert.deepEqual(new Set(seen), new Set(mine));
      assert.equal(seen.length, 7);
      assert.equal(pages, 3);
      await assert.rejects(store.list('alice', 'not-a-cursor'), InvalidCursorError);
      await assert.rejects(store.list('alice', 'c1.' + Buffer.from('{"x":1}').toString('base64url')), InvalidCursorError);
      assert.equal((await store.list(null)).tasks.length, 0);
    });

    it('treats a finished task past its ttl as expired', async () => {
      let clock = Date.parse('2026-01-01T00:00:00.000Z');
      const { store } = fresh({ now: () => clock, policy: { retainAfterEndMs: 0 } });
      const task = await store.create({ owner: null, request, ttl: 1000, errorResultStatus: 'failed' });
      clock += 5000;
      assert.equal((await store.get(task.taskId, ENGINE_ACCESS)).status, 'working', 'a live task is never expired under its worker');
      await store.finish(task.taskId, 'completed', { type: 'result', result: { content: [] } });
      await assert.rejects(
        store.get(task.taskId, ENGINE_ACCESS),
        TaskNotFoundError,
        'gone: reported expired, or already purged by a backend whose keys expire',
      );
      assert.equal((await store.list(null)).tasks.length, 0);
    });

    it('keeps a result that outlived its ttl min(ttl, retainAfterEndMs) after the end, then purges it', { timeout: 30_000 }, async () => {
      const ttl = 600; // shorter than the default retainAfterEndMs (24 h): kept ttl ms after the end
      const { store } = fresh();
      const task = await store.create({ owner: null, request, ttl, errorResultStatus: 'failed' });
      await store.appendJournal(task.taskId, 'step:a', { ok: true });
      await until(() => Date.now() > Date.parse(task.createdAt) + ttl + 50, { what: 'the ttl to pass while the task runs' });
      assert.equal((await store.get(task.taskId, ENGINE_ACCESS)).status, 'working', 'a live task outlives its ttl');
      const done = await store.finish(task.taskId, 'completed', { type: 'result', result: { content: [{ type: 'text', text: 'late' }] } });
      const ended = Date.parse(done.lastUpdatedAt);
      assert.equal(done.ttl, ended - Date.parse(done.createdAt) + ttl, 'ttl = expiry − createdAt, expiry = end + min(ttl, retainAfterEndMs)');
      assert.ok(done.ttl! > ttl, 'the actual ttl grew past the granted one');
      // Within the retention (the record says until when): readable with its result, not purged.
      assert.equal(await store.purgeExpired(), 0, 'purging uses the same rule');
      const kept = await store.get(task.taskId, ENGINE_ACCESS);
      assert.deepEqual(kept.outcome, { type: 'result', result: { content: [{ type: 'text', text: 'late' }] } });
      assert.equal(kept.ttl, done.ttl, 'the stored record carries the actual ttl');
      // After it: gone from the backend too (purged, or expired by itself on Redis), journal included.
      await until(
        async () => {
          await store.purgeExpired();
          return (await store.backend.get(task.taskId)) === undefined;
        },
        { what: 'the task to be purged after its retention' },
      );
      assert.ok(Date.now() >= ended + ttl, 'not before its expiry');
      await assert.rejects(store.get(task.taskId, ENGINE_ACCESS), TaskNotFoundError);
      assert.equal((await store.backend.readJournal(task.taskId)).size, 0, 'the journal goes too');
    });

    it('ends a task within its ttl at createdAt + ttl, and a cancelled one the same way', async () => {
      let clock = Date.parse('2026-01-01T00:00:00.000Z');
      const { store } = fresh({ now: () => clock, policy: { retainAfterEndMs: 60_000, maxTtlMs: null } });
      const early = await store.create({ owner: null, request, ttl: 600_000, errorResultStatus: 'failed' });
      const late = await store.create({ owner: null, request, ttl: 10_000, errorResultStatus: 'failed' });
      const unlimited = await store.create({ owner: null, request, ttl: null, errorResultStatus: 'failed' });
      clock += 20_000;
      assert.equal((await store.finish(early.taskId, 'completed', { type: 'result', result: { content: [] } })).ttl, 600_000, 'ended early: unchanged');
      assert.equal((await store.cancel(late.taskId, ENGINE_ACCESS)).ttl, 20_000 + 10_000, 'ended late: kept min(ttl, retain) = 10 s after the end');
      assert.equal((await store.cancel(unlimited.taskId, ENGINE_ACCESS)).ttl, null, 'unlimited stays unlimited');
    });

    it('refuses answers that do not match their requestedSchema and stores nothing, all or none', async () => {
      const { store } = fresh();
      const task = await store.create({ owner: 'alice', request, errorResultStatus: 'failed' });
      const approval = {
        kind: 'elicitation' as const,
        message: 'Approve?',
        requestedSchema: { type: 'object', properties: { decision: { type: 'string', enum: ['approve', 'reject'] } }, required: ['decision'] },
      };
      const name = { kind: 'elicitation' as const, message: 'Name?', requestedSchema: { type: 'object', properties: { name: { type: 'string' } } } };
      await store.requestInput(task.taskId, 'a', approval, 'Approve?');
      await store.requestInput(task.taskId, 'b', name, 'Name?');
      const before = await store.get(task.taskId, ENGINE_ACCESS);
      const refused = await store
        .answerInputs(task.taskId, { a: { action: 'accept', content: { decision: 'yes' } }, b: { action: 'accept', content: { name: 'Ada' } } }, 'alice')
        .catch((error: unknown) => error);
      assert.ok(refused instanceof InvalidAnswerError, String(refused));
      assert.ok(refused instanceof InvalidArgumentError, 'an InvalidArgumentError (-32602 on the wire)');
      assert.deepEqual(refused.problems, { a: ['decision must be one of: approve, reject'] });
      await assert.rejects(store.answerInput(task.taskId, 'a', { action: 'accept', content: {} }, 'alice'), /decision is required/);
      await assert.rejects(store.answerInput(task.taskId, 'b', { action: 'accept', content: { name: 'Ada', age: 3 } }, 'alice'), /unknown field 'age'/);
      const after = await store.get(task.taskId, ENGINE_ACCESS);
      assert.deepEqual(after, before, 'the record is untouched: same version, status and questions');
      assert.deepEqual(
        [...(await store.readJournal(task.taskId)).keys()].filter((key) => key.startsWith('input:') || key.startsWith('answered:')),
        [],
        'not even the valid answer of the refused batch was journaled',
      );
      assert.equal(await store.inputAnswer(task.taskId, 'b'), undefined);
      // Keys never asked are ignored, not refused; valid answers then go through together.
      const taken = await store.answerInputs(
        task.taskId,
        { a: { action: 'accept', content: { decision: 'approve' } }, b: { action: 'decline' }, zzz: { action: 'accept', content: { junk: 1 } } },
        'alice',
      );
      assert.deepEqual(taken, ['a', 'b']);
      const answered = await store.get(task.taskId, ENGINE_ACCESS);
      assert.equal(answered.status, 'working');
      assert.equal(answered.version, before.version + 1, 'both questions settled in one write');
      assert.deepEqual(await store.inputAnswer(task.taskId, 'a'), { action: 'accept', content: { decision: 'approve' } });
      assert.deepEqual(await store.inputAnswer(task.taskId, 'b'), { action: 'decline' });
    });

    it('lets exactly one of many racing terminal writers win', async () => {
      const { store, twin } = fresh();
      const other = twin ? new TaskStore(twin()) : store;
      for (let round = 0; round < 10; round++) {
        const task = await store.create({ owner: null, request, errorResultStatus: 'failed' });
        const attempts = [
          store.cancel(task.taskId, ENGINE_ACCESS),
          other.finish(task.taskId, 'completed', { type: 'result', result: { content: [{ type: 'text', text: 'done' }] } }),
          other.cancel(task.taskId, ENGINE_ACCESS),
          store.finish(task.taskId, 'failed', { type: 'result', result: { content: [], isError: true } }),
        ];
        const settled = await Promise.allSettled(attempts);
        const won = settled.filter((s) => s.status === 'fulfilled');
        assert.equal(won.length, 1, 'exactly one terminal write succeeds');
        for (const lost of settled.filter((s) => s.status === 'rejected')) {
          assert.ok((lost as PromiseRejectedResult).reason instanceof IllegalTransitionError);
        }
        const final = await store.get(task.taskId, ENGINE_ACCESS);
        assert.equal(final.status, (won[0] as PromiseFulfilledResult<{ status: string }>).value.status);
      }
      if (other !== store) await other.close();
    });

    it('never loses concurrent non-terminal updates (compare-and-swap retries)', async () => {
      const { store, twin } = fresh();
      const other = twin ? new TaskStore(twin()) : store;
      const task = await store.create({ owner: null, request, errorResultStatus: 'failed' });
      const keys = Array.from({ length: 20 }, (_, i) => `k${i}`);
      await Promise.all(
        keys.map((key, i) => (i % 2 ? store : other).requestInput(task.taskId, key, { kind: 'elicitation', message: key, requestedSchema: {} }, key)),
      );
      const final = await store.get(task.taskId, ENGINE_ACCESS);
      assert.deepEqual(Object.keys(final.inputRequests).sort(), [...keys].sort());
      assert.equal(final.version, 1 + keys.length);
      if (other !== store) await other.close();
    });

    it('leases: claim, renew, fencing of a stale holder, takeover after expiry', async () => {
      let clock = Date.parse('2026-01-01T00:00:00.000Z');
      const { store } = fresh({ now: () => clock });
      const task = await store.create({ owner: null, request, errorResultStatus: 'failed', lease: { holder: 'A', leaseMs: 1000 } });
      assert.equal(task.lease?.holder, 'A');
      assert.equal(await store.claim(task.taskId, 'B', 1000), undefined, 'a live lease is not taken');
      const updatedAt = (await store.get(task.taskId, ENGINE_ACCESS)).lastUpdatedAt;
      clock += 500;
      await store.renew(task.taskId, 'A', 1000);
      assert.equal((await store.get(task.taskId, ENGINE_ACCESS)).lastUpdatedAt, updatedAt, 'a renewal does not look like an update to requestors');
      clock += 1500;
      const taken = await store.claim(task.taskId, 'B', 1000);
      assert.equal(taken?.lease?.holder, 'B', 'an expired lease is taken over');
      await assert.rejects(store.renew(task.taskId, 'A', 1000), LeaseLostError);
      await assert.rejects(store.report(task.taskId, { statusMessage: 'stale' }, 'A'), LeaseLostError);
      await assert.rejects(store.finish(task.taskId, 'completed', { type: 'result', result: { content: [] } }, undefined, 'A'), LeaseLostError);
      assert.equal((await store.get(task.taskId, ENGINE_ACCESS)).status, 'working', 'the stale holder changed nothing');
      const done = await store.finish(task.taskId, 'completed', { type: 'result', result: { content: [] } }, undefined, 'B');
      assert.equal(done.lease, undefined, 'an ended task holds no lease');
      assert.equal(await store.claim(task.taskId, 'C', 1000, true), undefined, 'an ended task cannot be claimed');
    });

    it('fencing: every claim starts a new lease epoch; fenced writes and journal appends of an older epoch change nothing', async () => {
      let clock = Date.now(); // near real time: Redis expires ended tasks by its own clock
      const { store } = fresh({ now: () => clock });
      const task = await store.create({ owner: null, request, errorResultStatus: 'failed', lease: { holder: 'A', leaseMs: 1000 } });
      assert.equal(task.lease?.epoch, 1, 'a created task is held under epoch 1');
      const first = { holder: 'A', epoch: 1 };
      assert.equal(await store.appendJournal(task.taskId, 'step:one', { ok: true, value: 1 }, first), true);
      assert.equal(await store.appendJournal(task.taskId, 'step:one', { ok: true, value: 2 }, first), false, 'first write wins under a fence too');
      assert.equal((await store.confirm(task.taskId, first, 1000, 100)).expiresAt, clock + 1000);
      assert.equal((await store.renew(task.taskId, first, 1000)).lease?.epoch, 1, 'a renewal keeps the epoch');

      // The same holder claiming again (a restart, a retried run) starts a new epoch: the old run is fenced off.
      const again = await store.claim(task.taskId, 'A', 1000, true);
      assert.equal(again?.lease?.epoch, 2);
      await assert.rejects(
        store.appendJournal(task.taskId, 'step:two', { ok: true }, first),
        (e: unknown) => e instanceof LeaseLostError && e.reason === 'taken',
      );
      await assert.rejects(store.report(task.taskId, { statusMessage: 'stale' }, first), LeaseLostError);
      await assert.rejects(store.requestInput(task.taskId, 'q', { kind: 'roots', message: 'roots?' }, 'roots?', first), LeaseLostError);
      await assert.rejects(store.confirm(task.taskId, first, 1000, 100), LeaseLostError);
      await assert.rejects(store.renew(task.taskId, first, 1000), LeaseLostError);
      assert.equal((await store.readJournal(task.taskId)).has('step:two'), false, 'the stale append wrote nothing');

      // Another instance takes the expired lease over: epoch 3.
      clock += 1500;
      const taken = await store.claim(task.taskId, 'B', 1000);
      assert.deepEqual([taken?.lease?.holder, taken?.lease?.epoch], ['B', 3]);
      const second = { holder: 'A', epoch: 2 };
      await assert.rejects(store.appendJournal(task.taskId, 'step:two', { ok: true }, second), LeaseLostError);
      const third = { holder: 'B', epoch: 3 };
      assert.equal(await store.appendJournal(task.taskId, 'step:two', { ok: true }, third), true);
      assert.equal(await store.appendJournal(task.taskId, 'note', { unfenced: true }), true, 'an unfenced append is not checked');

      // A lease with little left is renewed by the confirmation (a compare-and-swap under the same epoch).
      clock += 950;
      const confirmed = await store.confirm(task.taskId, third, 1000, 100);
      assert.equal(confirmed.expiresAt, clock + 1000, 'less than minLeftMs left: renewed');

      // Cancelled: every fenced write and confirmation says so; nothing is appended.
      await store.cancel(task.taskId, null);
      await assert.rejects(
        store.appendJournal(task.taskId, 'step:three', { ok: true }, third),
        (e: unknown) => e instanceof LeaseLostError && e.reason === 'cancelled',
      );
      await assert.rejects(store.confirm(task.taskId, third, 1000, 100), (e: unknown) => e instanceof LeaseLostError && e.reason === 'cancelled');
      await assert.rejects(
        store.report(task.taskId, { statusMessage: 'late' }, third),
        (e: unknown) => e instanceof LeaseLostError && e.reason === 'cancelled',
      );
      await assert.rejects(store.renew(task.taskId, third, 1000), LeaseLostError);
      assert.equal((await store.readJournal(task.taskId)).has('step:three'), false);
      assert.equal(await store.report(task.taskId, { statusMessage: 'late' }, 'B'), false, 'a bare holder name keeps the old no-op on ended tasks');

      // Ended (completed) and deleted tasks: `ended`.
      const other = await store.create({ owner: null, request, errorResultStatus: 'failed', lease: { holder: 'C', leaseMs: 1000 } });
      const fence = { holder: 'C', epoch: 1 };
      await store.finish(other.taskId, 'completed', { type: 'result', result: { content: [] } }, undefined, fence);
      await assert.rejects(store.appendJournal(other.taskId, 'late', { ok: true }, fence), (e: unknown) => e instanceof LeaseLostError && e.reason === 'ended');
      await store.delete(other.taskId);
      await assert.rejects(store.confirm(other.taskId, fence, 1000, 100), (e: unknown) => e instanceof LeaseLostError && e.reason === 'ended');
    });

    it('fenced appends from several holders at once: only the current epoch writes (one batch on PostgreSQL)', async () => {
      const { store } = fresh();
      const tasks = await Promise.all(
        Array.from({ length: 4 }, () => store.create({ owner: null, request, errorResultStatus: 'failed', lease: { holder: 'A', leaseMs: 60_000 } })),
      );
      await store.claim(tasks[1]!.taskId, 'B', 60_000, true); // tasks[1] moved on to B, epoch 2
      const outcomes = await Promise.allSettled(
        tasks.flatMap((t) => [
          store.appendJournal(t.taskId, 'k', { by: 'A1' }, { holder: 'A', epoch: 1 }),
          store.appendJournal(t.taskId, 'k', { by: 'B2' }, { holder: 'B', epoch: 2 }),
        ]),
      );
      const journals = await Promise.all(tasks.map((t) => store.readJournal(t.taskId)));
      assert.deepEqual(
        journals.map((j) => j.get('k')),
        [{ by: 'A1' }, { by: 'B2' }, { by: 'A1' }, { by: 'A1' }],
      );
      assert.deepEqual(
        outcomes.map((o) => (o.status === 'fulfilled' ? o.value : (o.reason as Error).name)),
        ['fulfilled', 'rejected', 'rejected', 'fulfilled', 'fulfilled', 'rejected', 'fulfilled', 'rejected'].map((s) =>
          s === 'fulfilled' ? true : 'LeaseLostError',
        ),
      );
    });

    it('tells every store on the same data about every write (cross-instance wake-ups)', async () => {
      const { store, twin } = fresh();
      if (!twin) return; // a memory store is its own only instance
      const other = new TaskStore(twin());
      const task = await store.create({ owner: null, request, errorResultStatus: 'failed' });
      if (!store.backend.watch) {
        await other.close();
        return; // sqlite: one process per file by default, in-process events suffice
      }
      const seen = new Promise<string | undefined>((resolve) => {
        const timer = setTimeout(() => resolve(undefined), 5000);
        const off = other.onChange((t) => {
          if (t.taskId !== task.taskId || t.status !== 'cancelled') return; // earlier notices (the insert) may arrive first
          clearTimeout(timer);
          off();
          resolve(t.status);
        });
      });
      // The listener is connected once the other instance sees a write: write other tasks until it does.
      let connected = false;
      const offProbe = other.onChange((t) => {
        if (t.taskId !== task.taskId) connected = true;
      });
      await until(
        async () => {
          if (!connected) await store.create({ owner: null, request, errorResultStatus: 'failed' });
          return connected;
        },
        { what: 'the listener connected' },
      );
      offProbe();
      await store.cancel(task.taskId, ENGINE_ACCESS);
      assert.equal(await seen, 'cancelled', 'the other instance saw the cancel');
      await other.close();
    });

    describe('operator listing (listAll, statusCounts)', () => {
      const done = { type: 'result' as const, result: { content: [] } };
      const ask = { kind: 'elicitation' as const, message: 'ok?', requestedSchema: {} };
      const statuses = ['working', 'input_required', 'completed', 'failed', 'cancelled'] as const;

      /**
       * 12 tasks of 3 owners (alice, bob, anonymous), 2 tools and all 5 statuses, created at
       * base + [0,1,2,3,4,5,5,5,5,6,7,8] s (four share one createdAt), near real time so that
       * Redis does not expire them; returned as stored, newest first.
       */
      const seed = async () => {
        let clock = Math.floor(Date.now() / 1000) * 1000;
        const base = clock;
        const { store } = fresh({ now: () => clock });
        const seconds = [0, 1, 2, 3, 4, 5, 5, 5, 5, 6, 7, 8];
        for (const [i, s] of seconds.entries()) {
          clock = base + s * 1000;
          const owner = ['alice', 'bob', null][i % 3]!;
          const task = await store.create({ owner, request: { tool: i % 2 ? 'beta' : 'alpha', arguments: { i } }, errorResultStatus: 'failed' });
          const status = statuses[i % 5]!;
          if (status === 'input_required') await store.requestInput(task.taskId, 'q', ask, 'ok?');
          if (status === 'completed' || status === 'failed') await store.finish(task.taskId, status, done);
          if (status === 'cancelled') await store.cancel(task.taskId, ENGINE_ACCESS);
        }
        clock = base + 60_000;
        const all = (await store.listAll({}, ENGINE_ACCESS)).tasks;
        return { store, base, all, at: (s: number) => new Date(base + s * 1000).toISOString() };
      };

      it('lists every principal newest first, with each filter alone and combined', async () => {
        const { store, all, at } = await seed();
        assert.equal(all.length, 12);
        assert.deepEqual(ids(all), ids([...all].sort(newestFirstOf)), 'createdAt desc, then taskId desc');
        assert.deepEqual(new Set(all.map((t) => t.owner)), new Set(['alice', 'bob', null]), 'every principal');
        for (const t of all) assert.deepEqual(t, await store.get(t.taskId, ENGINE_ACCESS), 'the stored records');
        const expect = async (query: Parameters<TaskStore['listAll']>[0], keep: (t: TaskRecord) => boolean, what: string) => {
          const expected = all.filter(keep);
          assert.ok(expected.length > 0, `${what}: the seed has matches`);
          assert.deepEqual(ids((await store.listAll(query, ENGINE_ACCESS)).tasks), ids(expected), what);
        };
        await expect({ statuses: ['completed', 'failed'] }, (t) => t.status === 'completed' || t.status === 'failed', 'terminal statuses');
        await expect({ statuses: ['input_required'] }, (t) => t.status === 'input_required', 'a live status');
        await expect({ statuses: ['working', 'input_required'] }, (t) => !['completed', 'failed', 'cancelled'].includes(t.status), 'live statuses');
        await expect({ tool: 'beta' }, (t) => t.request.tool === 'beta', 'tool');
        await expect({ owner: 'alice' }, (t) => t.owner === 'alice', 'owner');
        await expect({ owner: null }, (t) => t.owner === null, 'the anonymous principal only');
        await expect({ createdFrom: at(5) }, (t) => t.createdAt >= at(5), 'createdFrom is inclusive');
        await expect({ createdTo: at(5) }, (t) => t.createdAt < at(5), 'createdTo is exclusive');
        await expect({ createdFrom: at(3), createdTo: at(6) }, (t) => t.createdAt >= at(3) && t.createdAt < at(6), 'a time window');
        await expect(
          { createdFrom: at(3).replace('Z', '+00:00').replace('.000', '') },
          (t) => t.createdAt >= at(3),
          'another ISO 8601 spelling of the same instant',
        );
        await expect(
          { owner: 'bob', tool: 'alpha', statuses: ['working', 'failed', 'cancelled'], createdFrom: at(1) },
          (t) => t.owner === 'bob' && t.request.tool === 'alpha' && ['working', 'failed', 'cancelled'].includes(t.status) && t.createdAt >= at(1),
          'filters combined',
        );
        await expect(
          { statuses: ['input_required'], owner: 'bob', tool: 'beta' },
          (t) => t.status === 'input_required' && t.owner === 'bob' && t.request.tool === 'beta',
          'live status combined',
        );
        assert.deepEqual((await store.listAll({ tool: 'nope' }, ENGINE_ACCESS)).tasks, []);
        assert.deepEqual((await store.listAll({ owner: 'carol' }, ENGINE_ACCESS)).tasks, []);
        assert.deepEqual(await store.listAll({ statuses: [] }, ENGINE_ACCESS), { tasks: [] }, 'no status: nothing');
        assert.deepEqual((await store.listAll({ createdFrom: at(6), createdTo: at(3) }, ENGINE_ACCESS)).tasks, [], 'an empty window');
        assert.deepEqual(ids((await store.listAll({ limit: 3 }, ENGINE_ACCESS)).tasks), ids(all.slice(0, 3)), 'limit');
        await store.close();
      });

      it('paginates over 3 pages without duplicates or gaps, across equal createdAt', async () => {
        const { store, all } = await seed();
        const collect = async (query: Parameters<TaskStore['listAll']>[0], limit: number) => {
          const pages: TaskRecord[][] = [];
          let cursor: string | undefined;
          do {
            const page = await store.listAll({ ...query, limit, ...(cursor !== undefined && { cursor }) }, ENGINE_ACCESS);
            pages.push(page.tasks);
            cursor = page.nextCursor;
            assert.ok(pages.length < 20, 'the cursor moves on');
          } while (cursor);
          return pages;
        };
        const pages = await collect({}, 5);
        assert.deepEqual(
          pages.map((p) => p.length),
          [5, 5, 2],
        );
        assert.equal(pages[0]!.at(-1)!.createdAt, pages[1]![0]!.createdAt, 'the page boundary falls inside tasks sharing one createdAt');
        assert.deepEqual(ids(pages.flat()), ids(all), 'every task once, in order');
        const terminal = all.filter((t) => ['completed', 'failed', 'cancelled'].includes(t.status));
        const filtered = await collect({ statuses: ['completed', 'failed', 'cancelled'] }, 2);
        assert.equal(filtered.length, Math.ceil(terminal.length / 2) + (terminal.length % 2 === 0 ? 1 : 0));
        assert.deepEqual(ids(filtered.flat()), ids(terminal), 'filtered pages too');
        const mine = all.filter((t) => t.owner === 'alice');
        assert.deepEqual(ids((await collect({ owner: 'alice' }, 1)).flat()), ids(mine), 'one per page');
        await store.close();
      });

      it('counts tasks per status, and the oldest question waiting', async () => {
        const { store, all } = await seed();
        const counts = await store.statusCounts(ENGINE_ACCESS);
        for (const status of statuses) assert.equal(counts.counts[status], all.filter((t) => t.status === status).length, status);
        const waiting = all.filter((t) => t.status === 'input_required').map((t) => t.lastUpdatedAt);
        assert.equal(counts.oldestInputRequiredAt, [...waiting].sort()[0]);
        const { store: empty } = fresh();
        assert.deepEqual(await empty.statusCounts(ENGINE_ACCESS), { counts: { working: 0, input_required: 0, completed: 0, failed: 0, cancelled: 0 } });
        await store.close();
        await empty.close();
      });

      it('skips and does not count expired tasks', async () => {
        let clock = Math.floor(Date.now() / 1000) * 1000;
        const { store } = fresh({ now: () => clock, policy: { retainAfterEndMs: 0 } });
        const short = await store.create({ owner: 'alice', request, ttl: 1000, errorResultStatus: 'failed' });
        clock += 10;
        const kept = await store.create({ owner: 'alice', request, ttl: 3_600_000, errorResultStatus: 'failed' });
        clock += 10;
        const live = await store.create({ owner: 'bob', request, ttl: 1000, errorResultStatus: 'failed' });
        await store.finish(short.taskId, 'completed', done);
        await store.finish(kept.taskId, 'completed', done);
        clock += 5000;
        const page = await store.listAll({}, ENGINE_ACCESS);
        assert.deepEqual(ids(page.tasks), [live.taskId, kept.taskId], 'the expired one is skipped; a live one past its ttl is not expired');
        assert.deepEqual(
          (await store.listAll({ statuses: ['completed'] }, ENGINE_ACCESS)).tasks.map((t) => t.taskId),
          [kept.taskId],
        );
        const counts = await store.statusCounts(ENGINE_ACCESS);
        assert.equal(counts.counts.completed, 1, 'the expired one is not counted');
        assert.equal(counts.counts.working, 1);
        assert.equal(counts.oldestInputRequiredAt, undefined);
        // Pagination over an expired task: pages may be short, the cursor still leads on.
        const seen: string[] = [];
        let cursor: string | undefined;
        do {
          const next = await store.listAll({ limit: 1, ...(cursor !== undefined && { cursor }) }, ENGINE_ACCESS);
          seen.push(...ids(next.tasks));
          cursor = next.nextCursor;
        } while (cursor);
        assert.deepEqual(seen, [live.taskId, kept.taskId]);
        await store.close();
      });

      it('is operator access only and validates its arguments', async () => {
        const { store } = fresh();
        await store.create({ owner: 'alice', request, errorResultStatus: 'failed' });
        const principal: typeof ENGINE_ACCESS = 'alice' as unknown as typeof ENGINE_ACCESS;
        await assert.rejects(store.listAll({}, principal), InvalidArgumentError, 'a principal is refused, even for its own tasks');
        await assert.rejects(store.listAll({ owner: 'alice' }, principal), InvalidArgumentError);
        await assert.rejects(store.listAll({}, null as unknown as typeof ENGINE_ACCESS), InvalidArgumentError, 'the anonymous principal too');
        await assert.rejects(store.listAll({}, undefined as unknown as typeof ENGINE_ACCESS), InvalidArgumentError, 'a missing access too');
        await assert.rejects(store.statusCounts(principal), InvalidArgumentError);
        await assert.rejects(store.statusCounts(undefined as unknown as typeof ENGINE_ACCESS), InvalidArgumentError);
        const bad: [string, unknown][] = [
          ['statuses', ['working', 'done']],
          ['statuses', 'working'],
          ['tool', 3],
          ['owner', 7],
          ['createdFrom', 'yesterday'],
          ['createdFrom', '2026-01-01T00:00:00'], // no zone: ambiguous
          ['createdTo', '2026-02-30'],
          ['createdTo', 1767225600000],
          ['limit', 0],
          ['limit', 1001],
          ['limit', 2.5],
        ];
        for (const [field, value] of bad) {
          await assert.rejects(store.listAll({ [field]: value } as never, ENGINE_ACCESS), InvalidArgumentError, `${field}: ${JSON.stringify(value)}`);
        }
        await assert.rejects(store.listAll(undefined as never, ENGINE_ACCESS), InvalidArgumentError);
        await assert.rejects(store.listAll({ cursor: 'not-a-cursor' }, ENGINE_ACCESS), InvalidCursorError);
        assert.equal((await store.listAll({ createdFrom: '2026-01-01', createdTo: '2999-12-31T23:59:59.999999+14:00' }, ENGINE_ACCESS)).tasks.length, 1);
        await store.close();
      });
    });

    it('idempotency keys: a retry returns the first task as it is now, other arguments are refused, keys are per principal, racing creates make one task', async () => {
      const { store, twin } = fresh();
      const keyed = (on: TaskStore, owner: string | null, key: string, args: { n: number } = { n: 1 }) =>
        on.createOrFind({
          owner,
          request: { tool: 'demo', arguments: args },
          errorResultStatus: 'failed',
          idempotency: { key, fingerprint: requestFingerprint('demo', args) },
        });
      const first = await keyed(store, 'alice', 'key-1');
      assert.equal(first.created, true);
      assert.deepEqual(first.task.idempotency, { key: 'key-1', fingerprint: requestFingerprint('demo', { n: 1 }) });
      await store.report(first.task.taskId, { statusMessage: 'moved on' });
      const again = await keyed(store, 'alice', 'key-1');
      assert.equal(again.created, false);
      assert.equal(again.task.taskId, first.task.taskId);
      assert.equal(again.task.statusMessage, 'moved on', 'the retry sees the task as it is now');
      await assert.rejects(
        keyed(store, 'alice', 'key-1', { n: 2 }),
        (e: unknown) => e instanceof IdempotencyConflictError && e.taskId === first.task.taskId && e.data.reason === 'idempotencyKeyConflict',
      );
      const bob = await keyed(store, 'bob', 'key-1');
      const anonymous = await keyed(store, null, 'key-1');
      assert.ok(bob.created && anonymous.created, "another principal's key never finds alice's task");
      assert.equal(new Set([first.task.taskId, bob.task.taskId, anonymous.task.taskId]).size, 3);
      assert.equal((await store.list('alice')).tasks.length, 1, 'the retry and the refused call stored nothing');

      const racers = await Promise.all(Array.from({ length: 8 }, () => keyed(store, 'carol', 'race')));
      assert.equal(new Set(racers.map((r) => r.task.taskId)).size, 1, 'one task for eight concurrent calls with one key');
      assert.equal(racers.filter((r) => r.created).length, 1);
      if (twin && !store.exclusive) {
        const elsewhere = new TaskStore(twin());
        const both = await Promise.all([keyed(store, 'dave', 'two-instances'), keyed(elsewhere, 'dave', 'two-instances')]);
        assert.equal(both[0].task.taskId, both[1].task.taskId, 'two instances on one store, one task');
        assert.equal(both.filter((r) => r.created).length, 1);
        await elsewhere.close();
      }
      for (const bad of ['', 'x'.repeat(256), 'line\nbreak']) await assert.rejects(keyed(store, 'alice', bad), InvalidArgumentError);
      await store.close();
    });

    it('idempotency keys: an expired task gives its key up; maxLiveTasksPerOwner never refuses a retry of a task that exists', async () => {
      let clock = Date.parse('2026-01-01T00:00:00.000Z');
      const { store } = fresh({ now: () => clock, policy: { retainAfterEndMs: 0 }, maxLiveTasksPerOwner: 1 });
      const keyed = (key: string) =>
        store.createOrFind({
          owner: 'erin',
          request,
          ttl: 1000,
          errorResultStatus: 'failed',
          idempotency: { key, fingerprint: requestFingerprint(request.tool, request.arguments) },
        });
      const first = await keyed('k');
      const retry = await keyed('k');
      assert.equal(retry.created, false, 'at the limit, the retry is answered with the task it created');
      await assert.rejects(keyed('other'), LimitExceededError, 'a new key at the limit is refused');
      await store.finish(first.task.taskId, 'completed', { type: 'result', result: { content: [] } });
      clock += 5000;
      const after = await keyed('k');
      assert.equal(after.created, true, 'the expired task no longer holds the key');
      assert.notEqual(after.task.taskId, first.task.taskId);
      await store.close();
    });

    it('concurrent writers from two processes lose no update', { timeout: 60_000 }, async (t) => {
      const { store, url } = fresh();
      if (!url) return t.skip('an in-memory store cannot be shared between processes');
      const task = await store.create({ owner: null, request, errorResultStatus: 'failed' });
      const spawnWriter = (prefix: string) =>
        new Promise<void>((resolve, reject) => {
          const child = spawn(process.execPath, ['--import', 'tsx', 'test/fixtures/writer.ts', url, task.taskId, prefix, '15'], {
            stdio: ['ignore', 'ignore', 'pipe'],
          });
          let stderr = '';
          child.stderr.on('data', (d) => (stderr += String(d)));
          child.on('exit', (code) => (code === 0 ? resolve() : reject(new Error(`writer ${prefix} exited ${code}: ${stderr}`))));
        });
      await Promise.all([spawnWriter('p1'), spawnWriter('p2')]);
      const final = await store.get(task.taskId, ENGINE_ACCESS);
      assert.equal(Object.keys(final.inputRequests).length, 30);
      assert.equal(final.version, 31, 'every write landed exactly once');
    });
  });
}

describe('operator listing on data written before it existed', () => {
  const V1_TASKS = `
    CREATE TABLE tasks (task_id TEXT PRIMARY KEY, owner TEXT, status TEXT NOT NULL, created_at TEXT NOT NULL, version INTEGER NOT NULL, body TEXT NOT NULL);
    CREATE INDEX tasks_by_owner ON tasks (owner, created_at, task_id);
    CREATE INDEX tasks_unfinished ON tasks (status) WHERE status IN ('working', 'input_required');`;

  /** Records of three owners, one completed, made in a memory store; oldest first. */
  const records = async () => {
    let clock = Math.floor(Date.now() / 1000) * 1000;
    const store = new TaskStore(new MemoryBackend(), { now: () => clock });
    const made: TaskRecord[] = [];
    for (const owner of ['alice', 'bob', null]) {
      made.push(await store.create({ owner, request, errorResultStatus: 'failed' }));
      clock += 1000;
    }
    made[1] = await store.finish(made[1]!.taskId, 'completed', { type: 'result', result: { content: [] } });
    return made;
  };

  it('sqlite: a schema v1 file is migrated to the current version (4) and lists every task by the new index', async () => {
    const path = join(dir, 'v1.db');
    const made = await records();
    const raw = new Database(path);
    raw.exec(`CREATE TABLE mcp_tasks_meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
      INSERT INTO mcp_tasks_meta VALUES ('schema_version', '1');
      ${V1_TASKS}
      CREATE TABLE journal (task_id TEXT NOT NULL, key TEXT NOT NULL, value TEXT NOT NULL, PRIMARY KEY (task_id, key)) WITHOUT ROWID;`);
    const insert = raw.prepare('INSERT INTO tasks VALUES (?, ?, ?, ?, ?, ?)');
    for (const t of made) insert.run(t.taskId, t.owner, t.status, t.createdAt, t.version, JSON.stringify(t));
    raw.close();

    const store = new TaskStore(new SqliteBackend(path));
    assert.deepEqual((await store.listAll({}, ENGINE_ACCESS)).tasks, [...made].reverse(), 'newest first');
    assert.equal((await store.statusCounts(ENGINE_ACCESS)).counts.completed, 1);
    assert.equal((await store.list('alice')).tasks.length, 1, 'the old listing still works');
    await store.close();

    const check = new Database(path);
    assert.deepEqual(check.prepare(`SELECT value FROM mcp_tasks_meta WHERE key = 'schema_version'`).get(), { value: '4' });
    const plan = check
      .prepare('EXPLAIN QUERY PLAN SELECT body FROM tasks WHERE (created_at, task_id) < (?, ?) ORDER BY created_at DESC, task_id DESC LIMIT 5')
      .all('x', 'y');
    assert.match(JSON.stringify(plan), /tasks_by_created/, 'newest first by the (created_at, task_id) index');
    check.prepare(`UPDATE mcp_tasks_meta SET value = '5' WHERE key = 'schema_version'`).run();
    check.close();
    assert.throws(() => new SqliteBackend(path), /schema version 5 is newer/);
  });

  it('postgres: a schema at migration 1 gains migrations 2 to 4, lists every task and takes idempotency keys', async () => {
    const schema = `mcpt_${run}_v1`;
    pgSchemas.push(schema);
    const made = await records();
    const client = new pg.Client({ connectionString: PG_URL });
    await client.connect();
    await client.query(`CREATE SCHEMA ${schema};
      CREATE TABLE ${schema}.mcp_tasks_migrations (version INTEGER PRIMARY KEY, applied_at TIMESTAMPTZ NOT NULL DEFAULT now());
      INSERT INTO ${schema}.mcp_tasks_migrations (version) VALUES (1);
      ${V1_TASKS.replaceAll(' tasks ', ` ${schema}.tasks `).replace('body TEXT', 'body JSONB')}
      CREATE TABLE ${schema}.journal (task_id TEXT NOT NULL, key TEXT NOT NULL, value JSONB NOT NULL, PRIMARY KEY (task_id, key));`);
    for (const t of made)
      await client.query(`INSERT INTO ${schema}.tasks VALUES ($1, $2, $3, $4, $5, $6)`, [
        t.taskId,
        t.owner,
        t.status,
        t.createdAt,
        t.version,
        JSON.stringify(t),
      ]);
    const store = new TaskStore(openBackend(withParam(PG_URL, 'schema', schema)));
    try {
      assert.deepEqual((await store.listAll({}, ENGINE_ACCESS)).tasks, [...made].reverse());
      const { rows } = await client.query(`SELECT MAX(version) AS v FROM ${schema}.mcp_tasks_migrations`);
      assert.equal(rows[0].v, 4);
      const keyed = () =>
        store.createOrFind({ owner: 'alice', request, errorResultStatus: 'failed', idempotency: { key: 'after-migration', fingerprint: 'f' } });
      assert.equal((await keyed()).created, true);
      assert.equal((await keyed()).created, false);
      const index = await client.query(`SELECT indexdef FROM pg_indexes WHERE schemaname = $1 AND indexname = 'tasks_by_created'`, [schema]);
      assert.match(index.rows[0]?.indexdef ?? '', /\(created_at, task_id\)/);
    } finally {
      await store.close();
      await client.end();
    }
  });

  it('redis: tasks missing from the global indexes are backfilled once, on first use', async () => {
    const prefix = `mcpt-${run}-backfill`;
    const url = withParam(REDIS_URL, 'prefix', prefix);
    const writer = new TaskStore(openBackend(url));
    const made: TaskRecord[] = [];
    for (const owner of ['alice', 'bob', null, 'alice']) made.push(await writer.create({ owner, request, errorResultStatus: 'failed' }));
    made[2] = await writer.cancel(made[2]!.taskId, ENGINE_ACCESS);
    await writer.close();
    // Drop what an older mcp-tasks never wrote: the data set now looks as it did before.
    const redis = new Redis(REDIS_URL);
    await redis.del(`${prefix}:all`, `${prefix}:indexes`, `${prefix}:ended:completed`, `${prefix}:ended:failed`, `${prefix}:ended:cancelled`);
    const store = new TaskStore(openBackend(url));
    try {
      const listed = (await store.listAll({}, ENGINE_ACCESS)).tasks;
      assert.deepEqual(new Set(ids(listed)), new Set(ids(made)), 'every old task listed');
      assert.deepEqual(ids(listed), ids([...listed].sort(newestFirstOf)));
      const counts = await store.statusCounts(ENGINE_ACCESS);
      assert.deepEqual(counts.counts, { working: 3, input_required: 0, completed: 0, failed: 0, cancelled: 1 });
      assert.equal(await redis.get(`${prefix}:indexes`), '1', 'recorded: the next backend does not scan again');
      assert.equal(await redis.zcard(`${prefix}:all`), 4);
      await store.delete(made[0]!.taskId);
      await store.delete(made[2]!.taskId);
      assert.equal(await redis.zcard(`${prefix}:all`), 2, 'delete leaves no index entry');
      assert.equal(await redis.zcard(`${prefix}:ended:cancelled`), 0);
    } finally {
      await store.close();
      await redis.quit();
    }
  });

  it('redis: a filter matching few tasks returns bounded partial pages whose cursor leads on', { timeout: 60_000 }, async () => {
    const url = withParam(REDIS_URL, 'prefix', `mcpt-${run}-bounded`);
    const backend = openBackend(url);
    const store = new TaskStore(backend);
    try {
      const rare = await store.create({ owner: 'alice', request: { tool: 'rare', arguments: {} }, errorResultStatus: 'failed' });
      const base = Date.parse(rare.createdAt) + 1000;
      const filler = 5100;
      for (let i = 0; i < filler; i += 500) {
        await Promise.all(
          Array.from({ length: Math.min(500, filler - i) }, (_, j) =>
            backend.insert({
              ...rare,
              taskId: `f${String(i + j).padStart(31, '0')}`,
              createdAt: new Date(base + i + j).toISOString(),
              request: { tool: 'common', arguments: {} },
            }),
          ),
        );
      }
      const first = await store.listAll({ tool: 'rare' }, ENGINE_ACCESS);
      assert.deepEqual(first.tasks, [], 'the scan stopped at its bound, before the rare task');
      assert.ok(first.nextCursor, 'and says where to go on');
      const second = await store.listAll({ tool: 'rare', cursor: first.nextCursor }, ENGINE_ACCESS);
      assert.deepEqual(ids(second.tasks), [rare.taskId]);
      assert.equal(second.nextCursor, undefined);
      assert.equal(
        (await store.listAll({ tool: 'rare', owner: 'alice', statuses: ['working'] }, ENGINE_ACCESS)).tasks.length,
        1,
        'live statuses: read from the unfinished set',
      );
      assert.equal((await store.statusCounts(ENGINE_ACCESS)).counts.working, filler + 1);
    } finally {
      await store.close();
    }
  });
});

describe('change notices on shared stores', () => {
  /**
   * A memory backend posing as shared: its notices are sent by the test, and `beforeReplace` runs
   * inside the next compare-and-swap, before it touches the data (another process's write landing
   * while ours is on its way, its notice arriving before our reply).
   */
  class SharedMemory extends MemoryBackend {
    override readonly exclusive = false as true;
    notice: (taskId: string, version?: number) => void = () => undefined;
    beforeReplace?: () => Promise<void>;
    watch(listener: (taskId: string, version?: number) => void): () => void {
      this.notice = listener;
      return () => undefined;
    }
    override async replace(task: TaskRecord, expectedVersion: number): Promise<boolean> {
      const hook = this.beforeReplace;
      this.beforeReplace = undefined;
      await hook?.();
      return super.replace(task, expectedVersion);
    }
  }

  it('a notice of our own write reads nothing; one that overtook a compare-and-swap lost to another process is still announced', async () => {
    const backend = new SharedMemory();
    const store = new TaskStore(backend, { recheckMs: 0 });
    const task = await store.create({ owner: null, request, errorResultStatus: 'failed' });
    const seen: string[] = [];
    store.onTaskChange(task.taskId, (t) => seen.push(`${t?.version} ${t?.statusMessage}`));
    let reads = 0;
    const get = backend.get.bind(backend);
    backend.get = (id) => {
      reads++;
      return get(id);
    };
    // Our own write, its notice before and after our reply: no read, announced once.
    backend.beforeReplace = async () => backend.notice(task.taskId, 2);
    await store.report(task.taskId, { statusMessage: 'ours' });
    backend.notice(task.taskId, 2);
    await new Promise((resolve) => setImmediate(resolve));
    assert.deepEqual(seen, ['2 ours']);
    assert.equal(reads, 0, 'a notice of our own write is not read back');
    // Another process writes version 3 while our write of version 3 is on its way; its notice
    // arrives first. Ours loses, is retried as version 4, and version 3 is announced too.
    backend.beforeReplace = async () => {
      const current = (await get(task.taskId))!;
      assert.equal(await MemoryBackend.prototype.replace.call(backend, { ...current, version: 3, statusMessage: 'theirs' }, 2), true);
      backend.notice(task.taskId, 3);
    };
    await store.report(task.taskId, { statusMessage: 'ours again' });
    await until(() => seen.length === 3, { what: 'both writes announced' });
    assert.deepEqual(seen, ['2 ours', '3 theirs', '4 ours again']);
    await store.close();
  });
});

describe('openStore', () => {
  it('opens memory: and sqlite: URLs and rejects others', async () => {
    const path = join(dir, 'open.db');
    const store = openStore(`sqlite:${path}`);
    const task = await store.create({ owner: null, request, errorResultStatus: 'failed' });
    await store.close();
    const again = openStore(`sqlite:${path}`);
    assert.equal((await again.get(task.taskId, ENGINE_ACCESS)).status, 'working', 'sqlite survives reopening');
    await again.close();
    await openStore('memory:').close();
    assert.throws(() => openStore('mysql://x'), /Unsupported store URL/);
  });

  it('takes timeouts from the URL, refuses malformed ones, and keeps them from the driver', async () => {
    assert.throws(() => openStore(`sqlite:${join(dir, 't.db')}?busyTimeoutMs=0`), /busyTimeoutMs must be a positive integer/);
    assert.throws(() => openStore(`${PG_URL}?queryTimeoutMs=soon`), /queryTimeoutMs must be a positive integer/);
    assert.throws(() => openStore(`${REDIS_URL}?commandTimeoutMs=-1`), /commandTimeoutMs must be a positive integer/);
    // A PostgreSQL query that outlasts queryTimeoutMs fails as unavailable, promptly, and the store works after.
    const schema = `mcpt_${run}_timeout`;
    pgSchemas.push(schema);
    const store = openStore(`${PG_URL}?schema=${schema}&queryTimeoutMs=300`);
    const task = await store.create({ owner: null, request, errorResultStatus: 'failed' });
    const locker = new pg.Client({ connectionString: PG_URL });
    await locker.connect();
    await locker.query('BEGIN');
    await locker.query(`SELECT 1 FROM ${schema}.tasks WHERE task_id = $1 FOR UPDATE`, [task.taskId]);
    await assert.rejects(store.report(task.taskId, { statusMessage: 'blocked by a lock' }), (e: Error) => e.name === 'StoreUnavailableError');
    await locker.query('ROLLBACK');
    await locker.end();
    assert.equal(await store.report(task.taskId, { statusMessage: 'free again' }), true);
    await store.close();
  });
});
