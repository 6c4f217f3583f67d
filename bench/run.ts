/**
 * `npm run bench`: what mcp-tasks costs, measured side by side with what users would use instead,
 * in one run, on this machine. Prints a table (medians of BENCH_REPEATS runs) and writes the raw
 * figures to bench/results/latest.json. Not part of `npm test`.
 *
 * 1. Task lifecycles/s and the server's CPU per lifecycle (/proc) over Streamable HTTP on loopback
 *    (create with `task`, poll `tasks/get` at the advised interval, `tasks/result`), 32 concurrent
 *    clients, both eras: every mcp-tasks backend vs the SDK 1.x experimental tasks with
 *    `InMemoryTaskStore` (the peer).
 * 2. `tasks/get` latency p50/p99 and req/s with 100 concurrent pollers (no pause), SQLite vs the peer,
 *    and vs a bare `node:http` server answering a fixed JSON (the floor of this client and machine).
 * 3. Store writes/s, one writer and 32 concurrent writers, vs the raw database in the same run.
 * 4. Lifecycle latency p50/p99 at 32, 128 and 512 clients, ours and the peer's.
 * 5. RSS and idle CPU with 10,000 tasks waiting for input (BENCH_WAITING).
 * 6. Recovery: 1,000 in-flight tasks beside BENCH_RECOVERY_STORED (100,000) finished ones, SIGKILL,
 *    restart: time until all have resumed.
 * 7. Scale: `tasks/get` p50 and server RSS with 1,000,000 finished tasks in SQLite vs 1,000.
 * 8. Connection burst: 448 new 2025-11-25 clients connect at once to a server kept saturated by 64
 *    clients; how long until each gets its first answer (or a 503), ours and the peer's.
 * 9. This checkout vs a baseline commit (BENCH_BASELINE_REF, default eaac0a9, the commit before
 *    fencing: a git worktree made for the run), interleaved: lifecycles/s and server CPU per
 *    lifecycle (32 clients, 2026-07-28) of a trivial tool, a tool with four steps and one with a
 *    1 ms timer and a step, on SQLite, PostgreSQL and Redis.
 * 10. What each executor costs: the same three tools, 32 clients, 2026-07-28, on a PostgreSQL store,
 *    run by the embedded executor, DBOS (its system tables in the same PostgreSQL) and Restate (a
 *    restate-server from the npm package, started for the run): lifecycles/s, the server process's
 *    CPU per lifecycle, and restate-server's own CPU per lifecycle (PostgreSQL's is not counted).
 *
 * Env: BENCH_SECONDS (per load run, default 5), BENCH_REPEATS (3), BENCH_SCALE (1000000),
 * BENCH_ONLY (comma list of 1-10), BENCH_STORES (comma list: which stores' rows), BENCH_BASELINE_REF (scenario 9),
 * BENCH_RECOVERY_STORED (scenario 6), BENCH_LIB (`dist`, default, or `src`), MCP_TASKS_TEST_POSTGRES / MCP_TASKS_TEST_REDIS.
 */
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { cpus, loadavg, tmpdir, totalmem } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import Database from 'better-sqlite3';
import pg from 'pg';
import { Redis } from 'ioredis';
import { SqliteBackend } from '../src/store/sqlite-backend.js';
import { openStore } from '../src/store/open-store.js';
import type { TaskRecord } from '../src/core/task.js';
import { ENGINE_ACCESS } from '../src/core/access.js';
import { dropBenchData } from './cleanup.js';
import { LoadClient, type BenchEra } from './load-client.js';
import { freePort, startRestateServer } from '../test/helpers/restate-server.js';

const SECONDS = Number(process.env.BENCH_SECONDS ?? 5);
const REPEATS = Number(process.env.BENCH_REPEATS ?? 3);
const SCALE = Number(process.env.BENCH_SCALE ?? 1_000_000);
const RECOVERY_STORED = Number(process.env.BENCH_RECOVERY_STORED ?? 100_000);
/**
 * What `bench/servers/ours.ts` runs: `dist` (default: the package as published, tsc's output, built
 * at the start of the run) or `src` (the sources through tsx, whose transform adds a `__name` call
 * to every function it names: about 5 % more CPU per lifecycle). Scenarios 9 and 10 run sources.
 */
const LIB = process.env.BENCH_LIB === 'src' ? 'src' : 'dist';
const ONLY = new Set((process.env.BENCH_ONLY ?? '1,2,3,4,5,6,7,8,9,10').split(','));
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
  const child = spawn(process.execPath, ['--import', 'tsx', join(here, 'servers', script), ...args], {
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...process.env, BENCH_LIB: LIB },
  });
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

/** Machine load when a measurement starts: the 1-minute load average over the core count (1.0 = every core busy). */
const load = () => (loadavg()[0]! / cpus().length).toFixed(2);

/** `n` connected load clients of `era` on `url`. */
async function clientsOf(url: string, era: BenchEra, n: number): Promise<LoadClient[]> {
  const clients: LoadClient[] = [];
  for (let i = 0; i < n; i += 64)
    clients.push(
      ...(await Promise.all(
        Array.from({ length: Math.min(64, n - i) }, async () => {
          const c = new LoadClient(url, era);
          await c.init();
          return c;
        }),
      )),
    );
  return clients;
}

/**
 * Scenario 1 and 4: `n` clients each run lifecycles of `trivial` back to back for SECONDS (create →
 * `tasks/get` every `pollInterval` → `tasks/result` in 2025-11-25; result inline in 2026-07-28).
 * Returns lifecycles/s and the lifecycle latency percentiles in ms.
 */
async function lifecycles(url: string, era: BenchEra, n = 32, tool = 'trivial'): Promise<{ rate: number; p50: number; p99: number }> {
  const clients = await clientsOf(url, era, n);
  const latencies: number[] = [];
  const deadline = Date.now() + SECONDS * 1000;
  await Promise.all(
    clients.map(async (c) => {
      while (Date.now() < deadline) {
        const t0 = performance.now();
        await c.lifecycle(tool);
        latencies.push(performance.now() - t0);
      }
    }),
  );
  for (const c of clients) c.close();
  return { rate: latencies.length / SECONDS, p50: percentile(latencies, 50), p99: percentile(latencies, 99) };
}

/** Scenario 2: `tasks/get` latencies with 100 pollers (no pause) on a task that waits, for SECONDS. */
async function getLatency(url: string, era: BenchEra): Promise<{ p50: number; p99: number; rps: number }> {
  const clients = await clientsOf(url, era, 100);
  const tasks = await Promise.all(clients.map(async (c) => ({ c, taskId: (await c.createTask('sleepy')).taskId })));
  const latencies: number[] = [];
  const deadline = Date.now() + SECONDS * 1000;
  await Promise.all(
    tasks.map(async ({ c, taskId }) => {
      while (Date.now() < deadline) {
        const t0 = performance.now();
        const res = await c.rpc('tasks/get', { taskId });
        if (!res.result) throw new Error(`tasks/get failed: ${JSON.stringify(res)}`);
        latencies.push(performance.now() - t0);
      }
    }),
  );
  for (const c of clients) c.close();
  return { p50: percentile(latencies, 50), p99: percentile(latencies, 99), rps: latencies.length / SECONDS };
}

/** Scenario 3: writes/s through mcp-tasks vs the raw database, one writer, N tasks × 2 writes. */
let writesRun = 0;
async function storeWrites(): Promise<Record<string, { ours: number; raw: number }>> {
  const out: Record<string, { ours: number; raw: number }> = {};
  const tag = `${run}_${++writesRun}`;
  const body = (id: string) => JSON.stringify({ taskId: id, status: 'working', padding: 'x'.repeat(300) });
  const oursRate = (url: string, n: number) => concurrentWrites(url, 1, n);
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

/** Scenario 6: 1,000 parked tasks, SIGKILL, restart; ms from spawn until every one has resumed. */
async function recovery(): Promise<{ startMs: number; resumedMs: number; inProcessMs: number }> {
  const url = storeUrls().sqlite!();
  await fillFinished(url.slice('sqlite:'.length), RECOVERY_STORED);
  const first = await startServer('ours.ts', [url]);
  const clients = await clientsOf(first.url, '2025', 20);
  await Promise.all(
    clients.map(async (c) => {
      for (let i = 0; i < 50; i++) await c.createTask('parked');
    }),
  );
  for (const c of clients) c.close();
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

/**
 * Writes `count` completed tasks (no TTL) straight into the SQLite file at `path` (created and
 * migrated by a `SqliteBackend`), in transactions of 50,000; returns every
 * `count / 2000`-th id (a sample to read back).
 */
async function fillFinished(path: string, count: number): Promise<string[]> {
  const backend = new SqliteBackend(path, { synchronous: 'normal' });
  await backend.close();
  const ids: string[] = [];
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
  return ids;
}

/** Scenario 7: tasks/get p50 and RSS with `count` finished tasks in SQLite. */
async function scale(count: number): Promise<{ p50: number; rssMb: number; fillSeconds: number }> {
  const path = join(work, `scale-${count}.db`);
  const t0 = performance.now();
  const ids = await fillFinished(path, count);
  const fillSeconds = (performance.now() - t0) / 1000;
  const server = await startServer('ours.ts', [`sqlite:${path}`]);
  const clients = await clientsOf(server.url, '2025', 4);
  const latencies: number[] = [];
  await Promise.all(
    clients.map(async (c, k) => {
      for (let i = k; i < ids.length; i += clients.length) {
        const t = performance.now();
        const res = await c.rpc('tasks/get', { taskId: ids[i]! });
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

/** Scenario 8's figures: ms from connecting to the first answer, and how many were answered 503. */
interface Burst {
  p50: number;
  p99: number;
  max: number;
  busy: number;
}

/**
 * Scenario 8: 64 clients run lifecycles back to back (the server saturated); after 1 s, 448 new
 * clients each open a connection and `initialize` at the same moment. Measures, per new client, the
 * time to its first answer (a 503 counts as an answer: the client knows to come back).
 */
async function burst(url: string): Promise<Burst> {
  const steady = await clientsOf(url, '2025', 64);
  let running = true;
  const load = Promise.all(
    steady.map(async (c) => {
      while (running) await c.lifecycle('trivial');
    }),
  );
  await new Promise((r) => setTimeout(r, 1000));
  let busy = 0;
  const fresh = Array.from({ length: 448 }, () => new LoadClient(url, '2025'));
  const times = await Promise.all(
    fresh.map(async (c) => {
      const t0 = performance.now();
      await c.init().catch((error: Error) => {
        if (!/busy/i.test(error.message)) throw error;
        busy++;
      });
      return performance.now() - t0;
    }),
  );
  running = false;
  await load;
  for (const c of [...steady, ...fresh]) c.close();
  return { p50: percentile(times, 50), p99: percentile(times, 99), max: Math.max(...times), busy };
}

async function repeat<T>(fn: () => Promise<T>): Promise<T[]> {
  const out: T[] = [];
  for (let i = 0; i < REPEATS; i++) out.push(await fn());
  return out;
}

/** Scenario 3: `writers` concurrent writers (create + finish each) on SQLite through mcp-tasks, for `n` tasks in all. */
async function concurrentWrites(url: string, writers: number, n: number): Promise<number> {
  const store = openStore(url);
  await store.create({ owner: null, request: { tool: 'warmup', arguments: {} }, errorResultStatus: 'failed' });
  let next = 0;
  const t0 = performance.now();
  await Promise.all(
    Array.from({ length: writers }, async () => {
      while (next++ < n) {
        const task = await store.create({ owner: null, request: { tool: 't', arguments: {} }, errorResultStatus: 'failed' });
        await store.finish(task.taskId, 'completed', { type: 'result', result: { content: [{ type: 'text', text: 'ok' }] } });
      }
    }),
  );
  const rate = (2 * n) / ((performance.now() - t0) / 1000);
  await store.close();
  return rate;
}

/** CPU time (user + system) of process `pid` so far, in ms. */
function cpuMs(pid: number): number {
  const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
  return ((Number(fields[11]) + Number(fields[12])) * 1000) / 100; // utime, stime in clock ticks (USER_HZ = 100)
}

const rssMbOf = (pid: number) => Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))![1]) / 1024;

/**
 * Scenario 5: `count` tasks waiting for an answer nobody gives (2025-11-25 clients that cannot
 * answer), SQLite. RSS before and after, and the server's CPU while nothing happens for 10 s.
 */
async function waiting(count: number): Promise<{ idleMb: number; waitingMb: number; cpuPct: number; createSeconds: number }> {
  const url = storeUrls().sqlite!();
  const server = await startServer('ours.ts', [url]);
  const pid = server.child.pid!;
  const clients = await clientsOf(server.url, '2025', 16);
  await new Promise((r) => setTimeout(r, 1000));
  const idleMb = rssMbOf(pid);
  const t0 = performance.now();
  let next = 0;
  await Promise.all(
    clients.map(async (c) => {
      while (next++ < count) await c.createTask('waits');
    }),
  );
  const store = openStore(url);
  for (let i = 0; i < 600 && (await store.statusCounts(ENGINE_ACCESS)).counts.input_required < count; i++) await new Promise((r) => setTimeout(r, 100));
  const createSeconds = (performance.now() - t0) / 1000;
  await store.close();
  await new Promise((r) => setTimeout(r, 2000));
  const before = cpuMs(pid);
  await new Promise((r) => setTimeout(r, 10_000));
  const cpuPct = (cpuMs(pid) - before) / 100;
  const waitingMb = rssMbOf(pid);
  for (const c of clients) c.close();
  await server.kill();
  return { idleMb, waitingMb, cpuPct, createSeconds };
}

const LIFECYCLE_ROWS: [label: string, script: string, store: string | undefined, era: BenchEra][] = [
  ['SDK 1.x InMemoryTaskStore (peer)', 'baseline-v1.ts', undefined, '2025'],
  ['mcp-tasks memory     2025-11-25', 'ours.ts', 'memory', '2025'],
  ['mcp-tasks memory     2026-07-28', 'ours.ts', 'memory', '2026'],
  ['mcp-tasks sqlite     2025-11-25', 'ours.ts', 'sqlite', '2025'],
  ['mcp-tasks sqlite     2026-07-28', 'ours.ts', 'sqlite', '2026'],
  ['mcp-tasks sqlite/1   2025-11-25', 'ours.ts', 'sqlite/1', '2025'],
  ['mcp-tasks postgres   2025-11-25', 'ours.ts', 'postgres', '2025'],
  ['mcp-tasks postgres   2026-07-28', 'ours.ts', 'postgres', '2026'],
  ['mcp-tasks redis      2025-11-25', 'ours.ts', 'redis', '2025'],
  ['mcp-tasks redis      2026-07-28', 'ours.ts', 'redis', '2026'],
];

async function main() {
  const machine = `${cpus().length} cores (${cpus()[0]?.model.trim()}), ${Math.round(totalmem() / 2 ** 30)} GiB, Node ${process.version}`;
  if (LIB === 'dist') execFileSync('npm', ['run', 'build'], { cwd: join(here, '..'), stdio: 'ignore' });
  console.log(`mcp-tasks benchmarks — ${machine}; medians of ${REPEATS} runs (interleaved), ${SECONDS} s per load run; mcp-tasks from ${LIB}`);
  console.log("load = 1-min load average / cores when the row's first run started (1.00 = every core busy)\n");
  const raw: Record<string, unknown> = { machine, seconds: SECONDS, repeats: REPEATS, at: new Date().toISOString() };
  const urls = storeUrls();
  const only = process.env.BENCH_STORES?.split(',');
  const measureOn = async <T>(script: string, store: string | undefined, fn: (url: string, server: Server) => Promise<T>) => {
    const s = await startServer(script, store ? [urls[store]!()] : []);
    try {
      return await fn(s.url, s);
    } finally {
      await s.kill();
    }
  };

  if (ONLY.has('1')) {
    const rows = LIFECYCLE_ROWS.filter(([, , store]) => !store || !only || only.includes(store));
    const runs = new Map<string, number[]>();
    const cpu = new Map<string, number[]>();
    const loads = new Map<string, string>();
    for (let r = 0; r < REPEATS; r++)
      for (const [label, script, store, era] of rows) {
        if (!loads.has(label)) loads.set(label, load());
        const { rate, cpuUs } = await measureOn(script, store, async (url, server) => {
          const cpu0 = cpuMs(server.child.pid!);
          const { rate } = await lifecycles(url, era);
          return { rate, cpuUs: ((cpuMs(server.child.pid!) - cpu0) * 1000) / (rate * SECONDS) };
        });
        runs.set(label, [...(runs.get(label) ?? []), rate]);
        cpu.set(label, [...(cpu.get(label) ?? []), cpuUs]);
      }
    const result = Object.fromEntries([...runs].map(([k, v]) => [k, median(v)]));
    const cpuResult = Object.fromEntries([...cpu].map(([k, v]) => [k, median(v)]));
    raw.lifecycles = result;
    raw.lifecycleCpuUs = cpuResult;
    console.log(
      '1. Task lifecycles/s and server CPU per lifecycle (µs, /proc), 32 clients, Streamable HTTP (create → tasks/get every pollInterval → tasks/result; 2026: result in tasks/get)',
    );
    const peer = result[rows[0]![0]]!;
    const peerCpu = cpuResult[rows[0]![0]]!;
    for (const [label, , , era] of rows) {
      const v = result[label]!;
      const c = cpuResult[label]!;
      const twin = era === '2026' ? result[label.replace('2026-07-28', '2025-11-25')] : undefined;
      console.log(
        `   ${label.padEnd(34)} ${v.toFixed(0).padStart(6)} /s ${c.toFixed(0).padStart(5)} µs   ×peer ${(v / peer).toFixed(2)} /s, ${(c / peerCpu).toFixed(2)} CPU${twin ? `   2026/2025 ${(v / twin).toFixed(2)}` : ''}   load ${loads.get(label)}`,
      );
    }
  }

  if (ONLY.has('2')) {
    const rows: [string, string, string | undefined, BenchEra][] = [
      ['SDK 1.x InMemoryTaskStore (peer)', 'baseline-v1.ts', undefined, '2025'],
      ['mcp-tasks sqlite     2025-11-25', 'ours.ts', 'sqlite', '2025'],
      ['mcp-tasks sqlite     2026-07-28', 'ours.ts', 'sqlite', '2026'],
      // No MCP work at all: the floor this client and machine allow (see bench/servers/bare.ts).
      ['bare node:http (floor)', 'bare.ts', undefined, '2025'],
    ];
    const runs = new Map<string, { p50: number; p99: number; rps: number }[]>();
    const loads = new Map<string, string>();
    for (let r = 0; r < REPEATS; r++)
      for (const [label, script, store, era] of rows) {
        if (!loads.has(label)) loads.set(label, load());
        runs.set(label, [...(runs.get(label) ?? []), await measureOn(script, store, (url) => getLatency(url, era))]);
      }
    const summary = (xs: { p50: number; p99: number; rps: number }[]) => ({
      p50: median(xs.map((x) => x.p50)),
      p99: median(xs.map((x) => x.p99)),
      rps: median(xs.map((x) => x.rps)),
    });
    const result = Object.fromEntries([...runs].map(([k, v]) => [k, summary(v)]));
    raw.getLatency = result;
    console.log('\n2. tasks/get, 100 concurrent pollers (no pause)');
    const peer = result[rows[0]![0]]!;
    for (const [label] of rows) {
      const v = result[label]!;
      console.log(
        `   ${label.padEnd(34)} p50 ${v.p50.toFixed(2).padStart(6)} ms  p99 ${v.p99.toFixed(2).padStart(7)} ms  ${v.rps.toFixed(0).padStart(6)} req/s   p50 ×peer ${(v.p50 / peer.p50).toFixed(2)}   req/s ×peer ${(v.rps / peer.rps).toFixed(2)}   load ${loads.get(label)}`,
      );
    }
  }

  if (ONLY.has('3')) {
    const runs = await repeat(storeWrites);
    const rows = Object.fromEntries(
      Object.keys(runs[0]!).map((k) => [k, { ours: median(runs.map((r) => r[k]!.ours)), raw: median(runs.map((r) => r[k]!.raw)) }]),
    );
    const concurrent: Record<string, number> = {};
    for (const name of Object.keys(rows)) concurrent[name] = median(await repeat(() => concurrentWrites(urls[name]!(), 32, 4000)));
    raw.storeWrites = { ...rows, concurrent };
    console.log('\n3. Store writes/s (create + finish = 2 writes) vs the same row writes on the raw database, one transaction each');
    for (const [name, v] of Object.entries(rows))
      console.log(
        `   ${name.padEnd(10)} 1 writer    mcp-tasks ${v.ours.toFixed(0).padStart(7)} /s   raw ${v.raw.toFixed(0).padStart(7)} /s   ours/raw ${(v.ours / v.raw).toFixed(2)}`,
      );
    for (const [name, v] of Object.entries(rows))
      console.log(
        `   ${name.padEnd(10)} 32 writers  mcp-tasks ${concurrent[name]!.toFixed(0).padStart(7)} /s   raw ${v.raw.toFixed(0).padStart(7)} /s   ours/raw ${(concurrent[name]! / v.raw).toFixed(2)}`,
      );
    console.log('   (32 writers: SQLite group commit, PostgreSQL batching; the raw figure is one writer, one transaction per write)');
  }

  if (ONLY.has('4')) {
    const sizes = [32, 128, 512];
    const rows: [string, string, string | undefined][] = [
      ['SDK 1.x InMemoryTaskStore (peer)', 'baseline-v1.ts', undefined],
      ['mcp-tasks sqlite     2025-11-25', 'ours.ts', 'sqlite'],
    ];
    const runs = new Map<string, { rate: number; p50: number; p99: number }[]>();
    for (let r = 0; r < REPEATS; r++)
      for (const [label, script, store] of rows)
        for (const n of sizes) {
          const key = `${label}|${n}`;
          runs.set(key, [...(runs.get(key) ?? []), await measureOn(script, store, (url) => lifecycles(url, '2025', n))]);
        }
    const result = Object.fromEntries(
      [...runs].map(([k, v]) => [k, { rate: median(v.map((x) => x.rate)), p50: median(v.map((x) => x.p50)), p99: median(v.map((x) => x.p99)) }]),
    );
    raw.tail = result;
    console.log(`\n4. Lifecycle latency by concurrent clients (2025-11-25)   load ${load()} after`);
    for (const [label] of rows) {
      const base = result[`${label}|32`]!;
      for (const n of sizes) {
        const v = result[`${label}|${n}`]!;
        console.log(
          `   ${label.padEnd(34)} ${String(n).padStart(3)} clients  ${v.rate.toFixed(0).padStart(6)} /s  p50 ${v.p50.toFixed(0).padStart(5)} ms  p99 ${v.p99.toFixed(0).padStart(5)} ms   p99 ×p99@32 ${(v.p99 / base.p99).toFixed(1)}`,
        );
      }
    }
  }

  if (ONLY.has('5')) {
    const count = Number(process.env.BENCH_WAITING ?? 10_000);
    const w = await waiting(count);
    raw.waiting = { count, ...w };
    console.log(`\n5. ${count.toLocaleString('en-US')} tasks waiting for input (SQLite; created in ${w.createSeconds.toFixed(0)} s)`);
    console.log(
      `   server RSS idle ${w.idleMb.toFixed(0)} MB → ${w.waitingMb.toFixed(0)} MB (${(((w.waitingMb - w.idleMb) * 1024) / count).toFixed(1)} KB per waiting task);  CPU over 10 s with nothing happening ${w.cpuPct.toFixed(1)} % of a core`,
    );
  }

  if (ONLY.has('6')) {
    const runs = await repeat(recovery);
    const r = { startMs: median(runs.map((x) => x.startMs)), inProcessMs: median(runs.map((x) => x.inProcessMs)) };
    raw.recovery = r;
    console.log(`\n6. Recovery of 1,000 in-flight tasks beside ${RECOVERY_STORED.toLocaleString('en-US')} finished ones after SIGKILL (SQLite)`);
    console.log(
      `   process start → all 1,000 resumed a step ${r.inProcessMs.toFixed(0)} ms;  spawn → listening ${r.startMs.toFixed(0)} ms (incl. loading Node + tsx)`,
    );
  }

  if (ONLY.has('7')) {
    const small = await scale(1000);
    const big = await scale(SCALE);
    raw.scale = { small, big, count: SCALE };
    console.log(`\n7. Scale: finished tasks in SQLite (filled in ${big.fillSeconds.toFixed(0)} s)`);
    console.log(`   1,000 tasks        tasks/get p50 ${small.p50.toFixed(2)} ms   server RSS ${small.rssMb.toFixed(0)} MB`);
    console.log(
      `   ${SCALE.toLocaleString('en-US').padEnd(18)} tasks/get p50 ${big.p50.toFixed(2)} ms   server RSS ${big.rssMb.toFixed(0)} MB   p50 ratio ${(big.p50 / small.p50).toFixed(2)}`,
    );
  }

  if (ONLY.has('8')) {
    const rows: [string, string, string | undefined][] = [
      ['SDK 1.x InMemoryTaskStore (peer)', 'baseline-v1.ts', undefined],
      ['mcp-tasks sqlite     2025-11-25', 'ours.ts', 'sqlite'],
    ];
    const result: Record<string, Burst> = {};
    for (const [label, script, store] of rows) {
      const runs = await repeat(() => measureOn(script, store, (url) => burst(url)));
      result[label] = {
        p50: median(runs.map((r) => r.p50)),
        p99: median(runs.map((r) => r.p99)),
        max: median(runs.map((r) => r.max)),
        busy: median(runs.map((r) => r.busy)),
      };
    }
    raw.burst = result;
    console.log(`\n8. Connection burst: 448 new clients at once, 64 saturating (2025-11-25)   load ${load()} after`);
    for (const [label, r] of Object.entries(result))
      console.log(
        `   ${label.padEnd(34)} first answer p50 ${r.p50.toFixed(0).padStart(5)} ms  p99 ${r.p99.toFixed(0).padStart(5)} ms  max ${r.max.toFixed(0).padStart(5)} ms   busy (503) ${r.busy}`,
      );
  }

  if (ONLY.has('9')) {
    const ref = process.env.BENCH_BASELINE_REF ?? 'eaac0a9';
    const baseline = join(work, 'baseline');
    const repo = join(here, '..');
    execFileSync('git', ['-C', repo, 'worktree', 'add', '--detach', baseline, ref], { stdio: 'ignore' });
    symlinkSync(join(repo, 'node_modules'), join(baseline, 'node_modules'));
    try {
      const variants = [
        ['baseline', baseline],
        ['this checkout', repo],
      ] as const;
      const stores = ['sqlite', 'postgres', 'redis'].filter((store) => !only || only.includes(store));
      const runs = new Map<string, number[]>();
      for (let r = 0; r < REPEATS; r++)
        for (const store of stores)
          for (const tool of ['trivial', 'stepped', 'timed'])
            for (const [variant, root] of variants) {
              const s = await startServer('fenced.ts', [root, urls[store]!()]);
              try {
                const key = `${store}|${tool}|${variant}`;
                const cpu0 = cpuMs(s.child.pid!);
                const { rate } = await lifecycles(s.url, '2026', 32, tool);
                const cpuUs = ((cpuMs(s.child.pid!) - cpu0) * 1000) / (rate * SECONDS);
                runs.set(key, [...(runs.get(key) ?? []), rate]);
                runs.set(`${key}|cpu`, [...(runs.get(`${key}|cpu`) ?? []), cpuUs]);
              } finally {
                await s.kill();
              }
            }
      const result = Object.fromEntries([...runs].map(([k, v]) => [k, median(v)]));
      raw.versusBaseline = { baseline: ref, ...result };
      console.log(
        `\n9. This checkout vs ${ref}${ref === 'eaac0a9' ? ' (before fencing)' : ''}: lifecycles/s and server CPU per lifecycle, 32 clients, 2026-07-28, interleaved   load ${load()} after`,
      );
      for (const store of stores)
        for (const tool of ['trivial', 'stepped', 'timed']) {
          const [before, after] = [result[`${store}|${tool}|baseline`]!, result[`${store}|${tool}|this checkout`]!];
          const [cpuBefore, cpuAfter] = [result[`${store}|${tool}|baseline|cpu`]!, result[`${store}|${tool}|this checkout|cpu`]!];
          console.log(
            `   ${store.padEnd(9)} ${tool.padEnd(8)} baseline ${before.toFixed(0).padStart(6)} /s ${cpuBefore.toFixed(0).padStart(5)} µs   this checkout ${after.toFixed(0).padStart(6)} /s ${cpuAfter.toFixed(0).padStart(5)} µs   ×baseline ${(after / before).toFixed(3)} /s, ${(cpuAfter / cpuBefore).toFixed(3)} CPU`,
          );
        }
    } finally {
      execFileSync('git', ['-C', repo, 'worktree', 'remove', '--force', baseline], { stdio: 'ignore' });
    }
  }

  if (ONLY.has('10')) {
    const restate = await startRestateServer();
    try {
      const tools = ['trivial', 'stepped', 'timed'];
      const executors = ['embedded', 'dbos', 'restate'];
      const runs = new Map<string, number[]>();
      const add = (key: string, value: number) => runs.set(key, [...(runs.get(key) ?? []), value]);
      for (let r = 0; r < REPEATS; r++)
        for (const executor of executors) {
          const dbosSchema = `mcpt_bench_dbos_${run}_${r}`;
          if (executor === 'dbos') schemas.push(dbosSchema);
          const engine =
            executor === 'dbos'
              ? { systemDatabaseUrl: PG_URL, systemDatabaseSchemaName: dbosSchema }
              : executor === 'restate'
                ? { ingressUrl: restate.ingressUrl, adminUrl: restate.adminUrl, port: String(await freePort()) }
                : {};
          const s = await startServer('executors.ts', [executor, urls.postgres!(), JSON.stringify(engine)]);
          try {
            for (const tool of tools) {
              const key = `${executor}|${tool}`;
              const cpu0 = cpuMs(s.child.pid!);
              const engineCpu0 = cpuMs(restate.child.pid!);
              const { rate } = await lifecycles(s.url, '2026', 32, tool);
              add(key, rate);
              add(`${key}|cpu`, ((cpuMs(s.child.pid!) - cpu0) * 1000) / (rate * SECONDS));
              add(`${key}|engine`, executor === 'restate' ? ((cpuMs(restate.child.pid!) - engineCpu0) * 1000) / (rate * SECONDS) : 0);
            }
          } finally {
            await s.kill();
          }
        }
      const result = Object.fromEntries([...runs].map(([k, v]) => [k, median(v)]));
      raw.executors = result;
      console.log(`\n10. What each executor costs: lifecycles/s and CPU per lifecycle, 32 clients, 2026-07-28, PostgreSQL store   load ${load()} after`);
      for (const tool of tools)
        for (const executor of executors) {
          const rate = result[`${executor}|${tool}`]!;
          const cpu = result[`${executor}|${tool}|cpu`]!;
          const engineCpu = result[`${executor}|${tool}|engine`]!;
          const base = result[`embedded|${tool}`]!;
          const baseCpu = result[`embedded|${tool}|cpu`]!;
          console.log(
            `   ${tool.padEnd(8)} ${executor.padEnd(9)} ${rate.toFixed(0).padStart(6)} /s  server ${cpu.toFixed(0).padStart(6)} µs${executor === 'restate' ? `  + restate-server ${engineCpu.toFixed(0).padStart(6)} µs` : ''}   ×embedded ${(rate / base).toFixed(3)} /s, ${((cpu + engineCpu) / baseCpu).toFixed(3)} CPU`,
          );
        }
    } finally {
      await restate.stop();
    }
  }

  mkdirSync(join(here, 'results'), { recursive: true });
  writeFileSync(join(here, 'results', 'latest.json'), JSON.stringify(raw, null, 2) + '\n');
}

try {
  await main();
} finally {
  rmSync(work, { recursive: true, force: true });
  await dropBenchData(PG_URL, schemas, REDIS_URL, redisPrefixes);
}
