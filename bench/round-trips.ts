/**
 * What a task lifecycle asks of a shared store, this checkout vs a baseline git ref, in one run:
 * PostgreSQL round trips, statements by kind and transactions, `LISTEN` notices; Redis round trips
 * and commands by name, pub/sub messages. Counted in the server process (bench/servers/ours.ts
 * with the preload bench/servers/count-io.ts), client side, per lifecycle of the `trivial` tool
 * (create → `tasks/get` every pollInterval → `tasks/result` in 2025-11-25; the result in
 * `tasks/get` in 2026-07-28), with 1 client (nothing to batch: the bare count) and 32 clients (the
 * bench's scenario 1, where one event-loop turn's calls share a statement).
 *
 * With ROUND_TRIPS_SECONDS > 0 it also times scenario 1 (32 clients) on both checkouts,
 * interleaved (baseline, this, baseline, this …), and prints medians of ROUND_TRIPS_REPEATS runs:
 * lifecycles/s and the server's CPU per lifecycle (from /proc), as ratios this/baseline. With
 * ROUND_TRIPS_POOLS (e.g. `2,4,10,20`) it then times this checkout's PostgreSQL store with each
 * connection pool size (`?max=N`), interleaved, as ratios to the default (10).
 *
 * Usage: node --import tsx bench/round-trips.ts
 * Env: ROUND_TRIPS_BASELINE (git ref, default `main`: a detached worktree is made for the run),
 * ROUND_TRIPS_STORES (postgres,redis), ROUND_TRIPS_ERAS (2025,2026), ROUND_TRIPS_CLIENTS (1,32),
 * ROUND_TRIPS_LIFECYCLES (per client, default 25), ROUND_TRIPS_SECONDS (0), ROUND_TRIPS_REPEATS (3), ROUND_TRIPS_POOLS (none),
 * COUNT_IO_TRACE=1 (print every SQL statement sent),
 * MCP_TASKS_TEST_POSTGRES / MCP_TASKS_TEST_REDIS. Not part of `npm test`.
 */
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { dropBenchData } from './cleanup.js';
import { LoadClient, type BenchEra } from './load-client.js';

const PG_URL = process.env.MCP_TASKS_TEST_POSTGRES ?? 'postgres://postgres@127.0.0.1:5432/test';
const REDIS_URL = process.env.MCP_TASKS_TEST_REDIS ?? 'redis://127.0.0.1:6379/0';
const BASELINE = process.env.ROUND_TRIPS_BASELINE ?? 'main';
const STORES = (process.env.ROUND_TRIPS_STORES ?? 'postgres,redis').split(',');
const ERAS = (process.env.ROUND_TRIPS_ERAS ?? '2025,2026').split(',') as BenchEra[];
const CLIENTS = (process.env.ROUND_TRIPS_CLIENTS ?? '1,32').split(',').map(Number);
const PER_CLIENT = Number(process.env.ROUND_TRIPS_LIFECYCLES ?? 25);
const SECONDS = Number(process.env.ROUND_TRIPS_SECONDS ?? 0);
const REPEATS = Number(process.env.ROUND_TRIPS_REPEATS ?? 3);
const POOLS = process.env.ROUND_TRIPS_POOLS ? process.env.ROUND_TRIPS_POOLS.split(',').map(Number) : [];
const repo = fileURLToPath(new URL('..', import.meta.url));
const work = mkdtempSync(join(tmpdir(), 'mcp-tasks-round-trips-'));
const run = randomBytes(3).toString('hex');
const schemas: string[] = [];
const prefixes: string[] = [];

/** Totals of bench/servers/count-io.ts. */
interface Counts {
  pg: { roundTrips: number; transactions: number; kinds: Record<string, number>; notices: number; connects: number };
  redis: { roundTrips: number; commands: number; names: Record<string, number>; messages: number };
}

interface Server {
  url: string;
  child: ChildProcess;
  counts(): Promise<Counts>;
  kill(): Promise<void>;
}

/** A fresh schema or key prefix of `store`; `pool`: the PostgreSQL pool size (`?max=`). */
function storeUrl(store: string, pool?: number): string {
  if (store === 'postgres') {
    const schema = `mcpt_rt_${run}_${schemas.length}`;
    schemas.push(schema);
    return `${PG_URL}${PG_URL.includes('?') ? '&' : '?'}schema=${schema}${pool ? `&max=${pool}` : ''}`;
  }
  const prefix = `mcpt-rt-${run}-${prefixes.length}`;
  prefixes.push(prefix);
  return `${REDIS_URL}${REDIS_URL.includes('?') ? '&' : '?'}prefix=${prefix}`;
}

/** bench/servers/ours.ts of the checkout at `root`, with this checkout's counting preload. */
async function startServer(root: string, url: string): Promise<Server> {
  const preload = join(repo, 'bench', 'servers', 'count-io.ts');
  const child = spawn(process.execPath, ['--import', 'tsx', '--import', preload, join(root, 'bench', 'servers', 'ours.ts'), url], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let err = '';
  const waiting: ((c: Counts) => void)[] = [];
  createInterface({ input: child.stderr! }).on('line', (line) => {
    if (line.startsWith('count-io ')) waiting.shift()?.(JSON.parse(line.slice(9)) as Counts);
    else if (line.startsWith('sql ')) console.error(line);
    else err += `${line}\n`;
  });
  const mcpUrl = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`server did not start: ${err}`)), 120_000);
    createInterface({ input: child.stdout! }).once('line', (line) => {
      clearTimeout(timer);
      resolve(line.trim());
    });
    child.once('exit', (code) => reject(new Error(`server exited ${code}: ${err}`)));
  });
  return {
    url: mcpUrl,
    child,
    counts: () =>
      new Promise<Counts>((resolve) => {
        waiting.push(resolve);
        child.kill('SIGUSR2');
      }),
    kill: () =>
      new Promise<void>((resolve) => {
        if (child.exitCode !== null || child.signalCode !== null) return resolve();
        child.once('exit', () => resolve());
        child.kill('SIGKILL');
      }),
  };
}

async function clientsOf(url: string, era: BenchEra, n: number): Promise<LoadClient[]> {
  return Promise.all(
    Array.from({ length: n }, async () => {
      const c = new LoadClient(url, era);
      await c.init();
      return c;
    }),
  );
}

/** `after - before`, per lifecycle, for every counter (nested records flattened with a `.`). */
function perLifecycle(before: Counts, after: Counts, lifecycles: number): Record<string, number> {
  const out: Record<string, number> = {};
  const walk = (a: any, b: any, path: string) => {
    for (const key of new Set([...Object.keys(a ?? {}), ...Object.keys(b ?? {})])) {
      const x = a?.[key] ?? 0;
      const y = b?.[key] ?? 0;
      if (typeof y === 'object') walk(x, y, `${path}${key}.`);
      else if (y - x !== 0) out[`${path}${key}`] = (y - x) / lifecycles;
    }
  };
  walk(before, after, '');
  return out;
}

/** Counts per lifecycle of `n` clients each running PER_CLIENT lifecycles (after one warm-up each). */
async function count(root: string, store: string, era: BenchEra, n: number): Promise<Record<string, number>> {
  const server = await startServer(root, storeUrl(store));
  try {
    const clients = await clientsOf(server.url, era, n);
    await Promise.all(clients.map((c) => c.lifecycle('trivial')));
    await new Promise((r) => setTimeout(r, 200));
    const before = await server.counts();
    await Promise.all(
      clients.map(async (c) => {
        for (let i = 0; i < PER_CLIENT; i++) await c.lifecycle('trivial');
      }),
    );
    await new Promise((r) => setTimeout(r, 200)); // the writes and notices of the last lifecycles
    const after = await server.counts();
    for (const c of clients) c.close();
    return perLifecycle(before, after, n * PER_CLIENT);
  } finally {
    await server.kill();
  }
}

function cpuMs(pid: number): number {
  const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
  return ((Number(fields[11]) + Number(fields[12])) * 1000) / 100;
}

/** Scenario 1 (32 clients, SECONDS): lifecycles/s and the server's CPU per lifecycle in µs. */
async function timed(root: string, store: string, era: BenchEra, pool?: number): Promise<{ rate: number; cpuUs: number }> {
  const server = await startServer(root, storeUrl(store, pool));
  try {
    const clients = await clientsOf(server.url, era, 32);
    await Promise.all(clients.map((c) => c.lifecycle('trivial')));
    let done = 0;
    const cpu0 = cpuMs(server.child.pid!);
    const deadline = Date.now() + SECONDS * 1000;
    await Promise.all(
      clients.map(async (c) => {
        while (Date.now() < deadline) {
          await c.lifecycle('trivial');
          done++;
        }
      }),
    );
    const cpu = cpuMs(server.child.pid!) - cpu0;
    for (const c of clients) c.close();
    return { rate: done / SECONDS, cpuUs: (cpu * 1000) / done };
  } finally {
    await server.kill();
  }
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
const fmt = (x: number | undefined) => (x === undefined ? '—' : x.toFixed(2));

async function main(): Promise<void> {
  const baseline = join(work, 'baseline');
  execFileSync('git', ['-C', repo, 'worktree', 'add', '--detach', baseline, BASELINE], { stdio: 'ignore' });
  symlinkSync(join(repo, 'node_modules'), join(baseline, 'node_modules'));
  const head = execFileSync('git', ['-C', repo, 'rev-parse', '--short', 'HEAD'], { encoding: 'utf8' }).trim();
  const dirty = execFileSync('git', ['-C', repo, 'status', '--porcelain', '--untracked-files=no'], { encoding: 'utf8' }).trim() !== '';
  const base = execFileSync('git', ['-C', baseline, 'rev-parse', '--short', 'HEAD'], { encoding: 'utf8' }).trim();
  const variants = [
    [`baseline ${BASELINE} (${base})`, baseline],
    [`this ${head}${dirty ? '+changes' : ''}`, repo],
  ] as const;
  console.log(`round trips per task lifecycle (trivial tool), ${new Date().toISOString()}, node ${process.version}`);
  console.log(`${PER_CLIENT} lifecycles per client after one warm-up each; counted in the server process (bench/servers/count-io.ts)\n`);
  try {
    for (const store of STORES)
      for (const era of ERAS)
        for (const n of CLIENTS) {
          const rows = [];
          for (const [label, root] of variants) rows.push([label, await count(root, store, era, n)] as const);
          const keys = [...new Set(rows.flatMap(([, c]) => Object.keys(c)))]
            .filter((k) => k.startsWith(store === 'postgres' ? 'pg.' : 'redis.'))
            .sort((a, b) => (a.split('.').length - b.split('.').length) * 100 + a.localeCompare(b));
          console.log(`${store} ${era === '2025' ? '2025-11-25' : '2026-07-28'}, ${n} client${n === 1 ? '' : 's'}: per lifecycle`);
          console.log(`   ${''.padEnd(28)} ${rows.map(([label]) => label.padStart(26)).join(' ')}`);
          for (const key of keys) console.log(`   ${key.padEnd(28)} ${rows.map(([, c]) => fmt(c[key]).padStart(26)).join(' ')}`);
          console.log('');
        }
    if (SECONDS > 0) {
      const runs = new Map<string, number[]>();
      const add = (key: string, v: number) => runs.set(key, [...(runs.get(key) ?? []), v]);
      for (let r = 0; r < REPEATS; r++)
        for (const store of STORES)
          for (const era of ERAS)
            for (const [label, root] of variants) {
              const { rate, cpuUs } = await timed(root, store, era);
              add(`${store}|${era}|${label}|rate`, rate);
              add(`${store}|${era}|${label}|cpu`, cpuUs);
            }
      console.log(`scenario 1 timed: 32 clients, ${SECONDS} s a run, interleaved, medians of ${REPEATS}`);
      for (const store of STORES)
        for (const era of ERAS) {
          const [b, t] = variants.map(([label]) => ({
            rate: median(runs.get(`${store}|${era}|${label}|rate`)!),
            cpu: median(runs.get(`${store}|${era}|${label}|cpu`)!),
          }));
          console.log(
            `   ${`${store} ${era}`.padEnd(14)} baseline ${b!.rate.toFixed(0).padStart(5)}/s ${b!.cpu.toFixed(0).padStart(5)} µs CPU   this ${t!.rate
              .toFixed(0)
              .padStart(
                5,
              )}/s ${t!.cpu.toFixed(0).padStart(5)} µs CPU   ratio lifecycles/s ${(t!.rate / b!.rate).toFixed(2)}  CPU/lifecycle ${(t!.cpu / b!.cpu).toFixed(2)}`,
          );
          console.log(
            `      runs: ${variants
              .map(
                ([label]) =>
                  `${label}: ${runs
                    .get(`${store}|${era}|${label}|rate`)!
                    .map((x) => x.toFixed(0))
                    .join(', ')}`,
              )
              .join('; ')}`,
          );
        }
    }
    if (POOLS.length > 0) {
      const runs = new Map<string, number[]>();
      const add = (key: string, v: number) => runs.set(key, [...(runs.get(key) ?? []), v]);
      for (let r = 0; r < REPEATS; r++)
        for (const era of ERAS)
          for (const pool of POOLS) {
            const { rate, cpuUs } = await timed(repo, 'postgres', era, pool);
            add(`${era}|${pool}|rate`, rate);
            add(`${era}|${pool}|cpu`, cpuUs);
          }
      console.log(`\nPostgreSQL pool size (this checkout): 32 clients, ${SECONDS} s a run, interleaved, medians of ${REPEATS}`);
      for (const era of ERAS) {
        const reference = POOLS.includes(10) ? 10 : POOLS[0]!;
        const ref = median(runs.get(`${era}|${reference}|rate`)!);
        for (const pool of POOLS) {
          const rate = median(runs.get(`${era}|${pool}|rate`)!);
          console.log(
            `   ${era} max=${String(pool).padEnd(3)} ${rate.toFixed(0).padStart(5)}/s ${median(runs.get(`${era}|${pool}|cpu`)!)
              .toFixed(0)
              .padStart(5)} µs CPU   ×max=${reference} ${(rate / ref).toFixed(2)}   runs ${runs
              .get(`${era}|${pool}|rate`)!
              .map((x) => x.toFixed(0))
              .join(', ')}`,
          );
        }
      }
    }
  } finally {
    execFileSync('git', ['-C', repo, 'worktree', 'remove', '--force', baseline], { stdio: 'ignore' });
    rmSync(work, { recursive: true, force: true });
    await dropBenchData(
      PG_URL,
      schemas,
      REDIS_URL,
      prefixes.map((prefix) => `${prefix}:`),
    );
  }
}

await main();
