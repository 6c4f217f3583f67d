/**
 * `npm run bench`: what mcp-tasks costs, measured side by side with what users would use instead,
 * in one run, on this machine. Prints a table (medians of BENCH_REPEATS runs) and writes the raw
 * figures to bench/results/latest.json. Not part of `npm test`.
 *
 * 1. Task lifecycles/s over Streamable HTTP on loopback (create with `task`, poll `tasks/get` at the
 *    advised interval, `tasks/result`), 32 concurrent clients: every mcp-tasks backend vs the SDK 1.x
 *    experimental tasks with `InMemoryTaskStore`.
 * 2. `tasks/get` latency p50/p99 with 100 concurrent pollers (no pause), mcp-tasks (SQLite) vs the baseline.
 * 3. Store writes/s (create + finish = 2 writes per task, one writer) vs the raw database doing the
 *    same row writes in the same run: better-sqlite3 (WAL, synchronous=FULL), plain pg, plain Redis.
 * 4. Recovery: 1,000 in-flight tasks, SIGKILL, restart: time until all have resumed.
 * 5. Scale: `tasks/get` p50 and server RSS with 1,000,000 finished tasks in SQLite vs 1,000.
 *
 * Env: BENCH_SECONDS (per load run, default 5), BENCH_REPEATS (3), BENCH_SCALE (1000000),
 * BENCH_ONLY (comma list of 1-5), MCP_TASKS_TEST_POSTGRES / MCP_TASKS_TEST_REDIS.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { cpus, tmpdir, totalmem } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import Database from 'better-sqlite3';
import pg from 'pg';
import { Redis } from 'ioredis';
import { SqliteBackend } from '../src/store/sqlite-backend.js';
import { openStore } from '../src/store/open-store.js';
import type { TaskRecord } from '../src/core/task.js';
import { RawMcpClient } from '../test/helpers/raw-client.js';

const SECONDS = Number(process.env.BENCH_SECONDS ?? 5);
const REPEATS = Number(process.env.BENCH_REPEATS ?? 3);
const SCALE = Number(process.env.BENCH_SCALE ?? 1_000_000);
const ONLY = new Set((process.env.BENCH_ONLY ?? '1,2,3,4,5').split(','));
const PG_URL = process.env.MCP_TASKS_TEST_POSTGRES ?? 'postgres://postgres@127.0.0.1:5432/test';
const REDIS_URL = process.env.MCP_TASKS_TEST_REDIS ?? 'redis://127.0.0.1:6379/0';
const here = fileURLToPath(new URL('.', import.meta.url));
const work = mkdtempSync(join(tmpdir(), 'mcp-tasks-bench-'));
const run = randomBytes(3).toString('hex');
const schemas: string[] = [];
const redisPrefixes: string[] = [];

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
const percentile = (xs: number[], p: number) => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))]!;
};

interface Server {
  url: string;
  child: ChildProcess;
  stderr: () => string;
  kill(): Promise<void>;
}

async function startServer(script: string, args: string[]): Promise<Server> {
  const child = spawn(process.execPath, ['--import', 'tsx', join(here, 'servers', script), ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  let err = '';
  child.stderr!.on('data', (d) => (err += String(d)));
  const url = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`${script} did not start: ${err}`)), 120_000);
    createInterface({ input: child.stdout! }).once('line', (line) => {
      clearTimeout(timer);
      resolve(line.trim());
    });
    child.once('exit', (code) => reject(new Error(`${script} exited ${code}: ${err}`)));
  });
  return {
    url,
    child,
    stderr: () => err,
    kill: () =>
      new Promise<void>((resolve) => {
        if (child.exitCode !== null || child.signalCode !== null) return resolve();
        child.once('exit', () => resolve());
        child.kill('SIGKILL');
      }),
  };
}

function storeUrls(): Record<string, () => string> {
  return {
    memory: () => 'memory:',
    sqlite: () => `sqlite:${join(work, `s-${randomBytes(3).toString('hex')}.db`)}`,
    // The same, committing each write on its own (no group commit): what group commit buys.
    'sqlite/1': () => `sqlite:${join(work, `s-${randomBytes(3).toString('hex')}.db`)}?groupCommit=off`,
    postgres: () => {
      const schema = `mcpt_bench_${run}_${schemas.length}`;
      schemas.push(schema);
      return `${PG_URL}${PG_URL.includes('?') ? '&' : '?'}schema=${schema}`;
    },
    redis: () => {
      const prefix = `mcpt-bench-${run}-${redisPrefixes.length}`;
      redisPrefixes.push(prefix);
      return `${REDIS_URL}${REDIS_URL.includes('?') ? '&' : '?'}prefix=${prefix}`;
    },
  };
}

/** Scenario 1: lifecycles per second with 32 clients for SECONDS. */
async function lifecycles(url: string): Promise<number> {
  const clients = await Promise.all(
    Array.from({ length: 32 }, async () => {
      const c = new RawMcpClient(url);
      await c.initialize({});
      return c;
    }),
  );
  let done = 0;
  const deadline = Date.now() + SECONDS * 1000;
  await Promise.all(
    clients.map(async (c) => {
      while (Date.now() < deadline) {
        const created = await c.request('tools/call', { name: 'trivial', arguments: {}, task: {} });
        const task = created.result?.task;
        if (!task) throw new Error(`no task: ${JSON.stringify(created)}`);
        let status = task.status;
        while (status !== 'completed' && status !== 'failed' && status !== 'cancelled') {
          await new Promise((r) => setTimeout(r, task.pollInterval ?? 10));
          status = (await c.request('tasks/get', { taskId: task.taskId })).result.status;
        }
        const result = await c.request('tasks/result', { taskId: task.taskId });
        if (!result.result) throw new Error(`no result: ${JSON.stringify(result)}`);
        done++;
      }
    }),
  );
  return done / SECONDS;
}

/** Scenario 2: tasks/get latencies with 100 pollers for SECONDS. */
async function getLatency(url: string): Promise<{ p50: number; p99: number; rps: number }> {
  const clients = await Promise.all(
    Array.from({ length: 100 }, async () => {
      const c = new RawMcpClient(url);
      await c.initialize({});
      const taskId = (await c.request('tools/call', { name: 'sleepy', arguments: {}, task: {} })).result.task.taskId as string;
      return { c, taskId };
    }),
  );
  const latencies: number[] = [];
  const deadline = Date.now() + SECONDS * 1000;
  await Promise.all(
    clients.map(async ({ c, taskId }) => {
      while (Date.now() < deadline) {
        const t0 = performance.now();
        const res = await c.request('tasks/get', { taskId });
        if (!res.result) throw new Error(`tasks/get failed: ${JSON.stringify(res)}`);
        latencies.push(performance.now() - t0);
      }
    }),
  );
  return { p50: percentile(latencies, 50), p99: percentile(latencies, 99), rps: latencies.length / SECONDS };
}

/** Scenario 3: writes/s through mcp-tasks vs the raw database, one writer, N tasks × 2 writes. */
let writesRun = 0;
async function storeWrites(): Promise<Record<string, { ours: number; raw: number }>> {
  const out: Record<string, { ours: number; raw: number }> = {};
  const tag = `${run}_${++writesRun}`;
  const body = (id: string) => JSON.stringify({ taskId: id, status: 'working', padding: 'x'.repeat(300) });
  const oursRate = async (url: string, n: number) => {
    const store = openStore(url);
    await store.create({ owner: null, request: { tool: 'warmup', arguments: {} }, errorResultStatus: 'failed' });
    const t0 = performance.now();
    for (let i = 0; i < n; i++) {
      const task = await store.create({ owner: null, request: { tool: 't', arguments: { i } }, errorResultStatus: 'failed' });
      await store.finish(task.taskId, 'completed', { type: 'result', result: { content: [{ type: 'text', text: 'ok' }] } });
    }
    const rate = (2 * n) / ((performance.now() - t0) / 1000);
    await store.close();
    return rate;
  };
  // SQLite
  {
    const n = 2000;
    const db = new Database(join(work, `raw-${tag}.db`));
    db.pragma('journal_mode = WAL');
    db.pragma('synchronous = FULL');
    db.exec(`CREATE TABLE t (id TEXT PRIMARY KEY, status TEXT, version INTEGER, body TEXT)`);
    const ins = db.prepare(`INSERT INTO t VALUES (?, 'working', 1, ?)`);
    const upd = db.prepare(`UPDATE t SET status = 'completed', version = 2, body = ? WHERE id = ? AND version = 1`);
    const t0 = performance.now();
    for (let i = 0; i < n; i++) {
      const id = `r${i}`;
      ins.run(id, body(id));
      upd.run(body(id), id);
    }
    const raw = (2 * n) / ((performance.now() - t0) / 1000);
    db.close();
    out.sqlite = { ours: await oursRate(storeUrls().sqlite!(), n), raw };
  }
  // PostgreSQL
  {
    const n = 2000;
    const schema = `mcpt_bench_raw_${tag}`;
    schemas.push(schema);
    const pool = new pg.Pool({ connectionString: PG_URL, max: 4 });
    await pool.query(`CREATE SCHEMA IF NOT EXISTS ${schema}; CREATE TABLE ${schema}.t (id TEXT PRIMARY KEY, status TEXT, version INTEGER, body JSONB)`);
    const t0 = performance.now();
    for (let i = 0; i < n; i++) {
      const id = `r${i}`;
      await pool.query(`INSERT INTO ${schema}.t VALUES ($1, 'working', 1, $2)`, [id, body(id)]);
      await pool.query(`UPDATE ${schema}.t SET status = 'completed', version = 2, body = $1 WHERE id = $2 AND version = 1`, [body(id), id]);
    }
    const raw = (2 * n) / ((performance.now() - t0) / 1000);
    await pool.end();
    out.postgres = { ours: await oursRate(storeUrls().postgres!(), n), raw };
  }
  // Redis
  {
    const n = 5000;
    const redis = new Redis(REDIS_URL);
    const prefix = `mcpt-bench-raw-${tag}`;
    redisPrefixes.push(prefix);
    const t0 = performance.now();
    for (let i = 0; i < n; i++) {
      const key = `${prefix}:t:r${i}`;
      await redis.hset(key, 'v', 1, 'b', body(key));
      await redis.hset(key, 'v', 2, 'b', body(key));
    }
    const raw = (2 * n) / ((performance.now() - t0) / 1000);
    await redis.quit();
    out.redis = { ours: await oursRate(storeUrls().redis!(), n), raw };
  }
  return out;
}

/** Scenario 4: 1,000 parked tasks, SIGKILL, restart; ms from spawn until every one has resumed. */
async function recovery(): Promise<{ startMs: number; resumedMs: number; inProcessMs: number }> {
  const url = storeUrls().sqlite!();
  const first = await startServer('ours.ts', [url]);
  const clients = await Promise.all(
    Array.from({ length: 20 }, async () => {
      const c = new RawMcpClient(first.url);
      await c.initialize({});
      return c;
    }),
  );
  await Promise.all(
    clients.map(async (c) => {
      for (let i = 0; i < 50; i++) await c.request('tools/call', { name: 'parked', arguments: {}, task: {} });
    }),
  );
  const store = openStore(url);
  for (let i = 0; i < 200 && (await store.listUnfinished()).filter((t) => t.statusMessage?.startsWith('Waiting')).length < 1000; i++)
    await new Promise((r) => setTimeout(r, 100));
  await store.close();
  await first.kill();
  const t0 = performance.now();
  const second = await startServer('ours.ts', [url, '1000']);
  const listening = performance.now() - t0;
  for (let i = 0; i < 600 && !/resumed-all/.test(second.stderr()); i++) await new Promise((r) => setTimeout(r, 50));
  const resumedMs = performance.now() - t0;
  const own = /resumed-all (\d+)/.exec(second.stderr());
  if (!own) throw new Error(`not all resumed: ${second.stderr()}`);
  await second.kill();
  return { startMs: listening, resumedMs, inProcessMs: Number(own[1]) };
}

/** Scenario 5: tasks/get p50 and RSS with `count` finished tasks in SQLite. */
async function scale(count: number): Promise<{ p50: number; rssMb: number; fillSeconds: number }> {
  const path = join(work, `scale-${count}.db`);
  const backend = new SqliteBackend(path, { synchronous: 'normal' });
  const ids: string[] = [];
  const t0 = performance.now();
  const db = new Database(path);
  const insert = db.prepare(`INSERT INTO tasks (task_id, owner, status, created_at, version, body) VALUES (?, NULL, 'completed', ?, 2, ?)`);
  const batch = db.transaction((from: number, to: number) => {
    for (let i = from; i < to; i++) {
      const id = randomBytes(16).toString('hex');
      if (i % Math.max(1, Math.floor(count / 2000)) === 0) ids.push(id);
      const at = new Date(Date.UTC(2026, 0, 1) + i).toISOString();
      const task: TaskRecord = {
        taskId: id,
        owner: null,
        status: 'completed',
        createdAt: at,
        lastUpdatedAt: at,
        ttl: null,
        pollInterval: 1000,
        request: { tool: 'trivial', arguments: {} },
        errorResultStatus: 'failed',
        inputRequests: {},
        outcome: { type: 'result', result: { content: [{ type: 'text', text: 'ok' }] } },
        version: 2,
      };
      insert.run(id, at, JSON.stringify(task));
    }
  });
  for (let i = 0; i < count; i += 50_000) batch(i, Math.min(count, i + 50_000));
  db.close();
  await backend.close();
  const fillSeconds = (performance.now() - t0) / 1000;
  const server = await startServer('ours.ts', [`sqlite:${path}`]);
  const clients = await Promise.all(
    Array.from({ length: 4 }, async () => {
      const c = new RawMcpClient(server.url);
      await c.initialize({});
      return c;
    }),
  );
  const latencies: number[] = [];
  await Promise.all(
    clients.map(async (c, k) => {
      for (let i = k; i < ids.length; i += clients.length) {
        const t = performance.now();
        const res = await c.request('tasks/get', { taskId: ids[i] });
        if (res.result?.status !== 'completed') throw new Error(`scale get failed: ${JSON.stringify(res)}`);
        latencies.push(performance.now() - t);
      }
    }),
  );
  const status = readFileSync(`/proc/${server.child.pid}/status`, 'utf8');
  const rssMb = Number(/VmRSS:\s+(\d+)/.exec(status)![1]) / 1024;
  await server.kill();
  rmSync(path, { force: true });
  return { p50: percentile(latencies, 50), rssMb, fillSeconds };
}

async function repeat<T>(fn: () => Promise<T>): Promise<T[]> {
  const out: T[] = [];
  for (let i = 0; i < REPEATS; i++) out.push(await fn());
  return out;
}

async function main() {
  const machine = `${cpus().length} cores (${cpus()[0]?.model.trim()}), ${Math.round(totalmem() / 2 ** 30)} GiB, Node ${process.version}`;
  console.log(`mcp-tasks benchmarks — ${machine}; medians of ${REPEATS} runs, ${SECONDS} s per load run\n`);
  const raw: Record<string, unknown> = { machine, seconds: SECONDS, repeats: REPEATS, at: new Date().toISOString() };

  if (ONLY.has('1')) {
    const rows: Record<string, number> = {};
    const baselineRuns: number[] = [];
    for (let r = 0; r < REPEATS; r++) {
      const s = await startServer('baseline-v1.ts', []);
      baselineRuns.push(await lifecycles(s.url));
      await s.kill();
    }
    rows['SDK 1.x InMemoryTaskStore (baseline)'] = median(baselineRuns);
    for (const [name, url] of Object.entries(storeUrls())) {
      const runs: number[] = [];
      for (let r = 0; r < REPEATS; r++) {
        const s = await startServer('ours.ts', [url()]);
        runs.push(await lifecycles(s.url));
        await s.kill();
      }
      rows[`mcp-tasks ${name}`] = median(runs);
    }
    raw.lifecycles = rows;
    console.log('1. Task lifecycles/s, 32 clients, Streamable HTTP (create → poll tasks/get → tasks/result)');
    const base = rows['SDK 1.x InMemoryTaskStore (baseline)']!;
    for (const [name, v] of Object.entries(rows)) console.log(`   ${name.padEnd(40)} ${v.toFixed(0).padStart(7)} /s   ours/baseline ${(v / base).toFixed(2)}`);
  }

  if (ONLY.has('2')) {
    const measure = async (script: string, args: string[]) =>
      repeat(async () => {
        const s = await startServer(script, args);
        const m = await getLatency(s.url);
        await s.kill();
        return m;
      });
    const base = await measure('baseline-v1.ts', []);
    const ours = await measure('ours.ts', [storeUrls().sqlite!()]);
    const summary = (runs: { p50: number; p99: number; rps: number }[]) => ({
      p50: median(runs.map((r) => r.p50)),
      p99: median(runs.map((r) => r.p99)),
      rps: median(runs.map((r) => r.rps)),
    });
    const b = summary(base);
    const o = summary(ours);
    raw.getLatency = { baseline: b, ours: o };
    console.log('\n2. tasks/get latency, 100 concurrent pollers');
    console.log(`   SDK 1.x InMemoryTaskStore (baseline)   p50 ${b.p50.toFixed(2)} ms  p99 ${b.p99.toFixed(2)} ms  ${b.rps.toFixed(0)} req/s`);
    console.log(
      `   mcp-tasks sqlite                       p50 ${o.p50.toFixed(2)} ms  p99 ${o.p99.toFixed(2)} ms  ${o.rps.toFixed(0)} req/s   p50 ours/baseline ${(o.p50 / b.p50).toFixed(2)}`,
    );
  }

  if (ONLY.has('3')) {
    const runs = await repeat(storeWrites);
    const rows = Object.fromEntries(
      Object.keys(runs[0]!).map((k) => [k, { ours: median(runs.map((r) => r[k]!.ours)), raw: median(runs.map((r) => r[k]!.raw)) }]),
    );
    raw.storeWrites = rows;
    console.log('\n3. Store writes/s (one writer; create + finish = 2 writes) vs the same row writes on the raw database');
    for (const [name, v] of Object.entries(rows))
      console.log(
        `   ${name.padEnd(10)} mcp-tasks ${v.ours.toFixed(0).padStart(7)} /s   raw ${v.raw.toFixed(0).padStart(7)} /s   ours/raw ${(v.ours / v.raw).toFixed(2)}`,
      );
  }

  if (ONLY.has('4')) {
    const runs = await repeat(recovery);
    const r = { startMs: median(runs.map((x) => x.startMs)), inProcessMs: median(runs.map((x) => x.inProcessMs)) };
    raw.recovery = r;
    console.log('\n4. Recovery of 1,000 in-flight tasks after SIGKILL (SQLite)');
    console.log(
      `   process start → all 1,000 resumed a step ${r.inProcessMs.toFixed(0)} ms;  spawn → listening ${r.startMs.toFixed(0)} ms (incl. loading Node + tsx)`,
    );
  }

  if (ONLY.has('5')) {
    const small = await scale(1000);
    const big = await scale(SCALE);
    raw.scale = { small, big, count: SCALE };
    console.log(`\n5. Scale: finished tasks in SQLite (filled in ${big.fillSeconds.toFixed(0)} s)`);
    console.log(`   1,000 tasks        tasks/get p50 ${small.p50.toFixed(2)} ms   server RSS ${small.rssMb.toFixed(0)} MB`);
    console.log(
      `   ${SCALE.toLocaleString('en-US').padEnd(18)} tasks/get p50 ${big.p50.toFixed(2)} ms   server RSS ${big.rssMb.toFixed(0)} MB   p50 ratio ${(big.p50 / small.p50).toFixed(2)}`,
    );
  }

  mkdirSync(join(here, 'results'), { recursive: true });
  writeFileSync(join(here, 'results', 'latest.json'), JSON.stringify(raw, null, 2) + '\n');
}

try {
  await main();
} finally {
  rmSync(work, { recursive: true, force: true });
  const client = new pg.Client({ connectionString: PG_URL });
  await client.connect();
  for (const schema of schemas) await client.query(`DROP SCHEMA IF EXISTS ${schema} CASCADE`);
  await client.end();
  const redis = new Redis(REDIS_URL);
  for (const prefix of redisPrefixes) {
    const keys = await redis.keys(`${prefix}*`);
    if (keys.length) await redis.del(...keys);
  }
  await redis.quit();
}
