/**
 * Where a lifecycle's server time goes: runs a bench server (`bench/servers/ours.ts` on a store, or
 * the SDK 1.x peer) under `--cpu-prof` with 32 load clients for BENCH_SECONDS (default 8), and prints
 * lifecycles, server CPU per lifecycle (µs, /proc), GC collections, pause and bytes allocated per
 * lifecycle (`bench/servers/gc-stats.ts`), and the profile's self time by package and by function.
 *
 * Usage: node --import tsx bench/profile.ts <2025|2026> <memory|sqlite|postgres|redis|peer> [top=30]
 * Env: BENCH_SECONDS, BENCH_LIB (`src`, default here, or `dist`: see bench/servers/ours.ts),
 * BENCH_PROFILE_DIR (keep the .cpuprofile there; default a temp dir, removed),
 * BENCH_CALLERS (a function name: print the stacks it runs under), BENCH_OP: `lifecycle` (default),
 * or one request alone, over and over, to price it: `get` (`tasks/get` of a completed task),
 * `result` (2025 `tasks/result` of one), `create` (a task-creating `tools/call` of `trivial`).
 */
import { spawn } from 'node:child_process';
import { mkdirSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import pg from 'pg';
import { LoadClient, type BenchEra } from './load-client.js';

const [era, store, topArg] = process.argv.slice(2) as [BenchEra, string, string | undefined];
const seconds = Number(process.env.BENCH_SECONDS ?? 8);
const top = Number(topArg ?? 30);
const keep = process.env.BENCH_PROFILE_DIR;
const dir = keep ?? join(tmpdir(), `mcp-tasks-profile-${process.pid}`);
mkdirSync(dir, { recursive: true });
const schema = `prof_${process.pid}`;
const storeUrl =
  store === 'sqlite'
    ? `sqlite:${join(dir, 'tasks.db')}`
    : store === 'postgres'
      ? `postgres://postgres@127.0.0.1:5432/test?schema=${schema}`
      : store === 'redis'
        ? `redis://127.0.0.1:6379/0?prefix=prof-${process.pid}`
        : 'memory:';
const script = fileURLToPath(new URL(store === 'peer' ? 'servers/baseline-v1.ts' : 'servers/ours.ts', import.meta.url));
const child = spawn(process.execPath, ['--cpu-prof', `--cpu-prof-dir=${dir}`, '--import', 'tsx', script, ...(store === 'peer' ? [] : [storeUrl])], {
  stdio: ['ignore', 'pipe', 'pipe'],
  env: { ...process.env, BENCH_GC: '1' },
});
let stderr = '';
child.stderr!.on('data', (d) => (stderr += String(d)));
const url = await new Promise<string>((resolve) => createInterface({ input: child.stdout! }).once('line', (l) => resolve(l.trim())));
const clients = await Promise.all(
  Array.from({ length: 32 }, async () => {
    const c = new LoadClient(url, era);
    await c.init();
    return c;
  }),
);
/** [user, system] CPU ms of the server so far (/proc, clock ticks of 10 ms). */
const cpuMs = () => {
  const fields = readFileSync(`/proc/${child.pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
  return [Number(fields[11]) * 10, Number(fields[12]) * 10] as const;
};
// Warm up (JIT, pools), then measure.
const op = process.env.BENCH_OP ?? 'lifecycle';
const done = op === 'lifecycle' ? [] : await Promise.all(clients.map(async (c) => (await c.createTask('trivial')).taskId));
await new Promise((r) => setTimeout(r, 200)); // the tasks end
const once = async (c: LoadClient, i: number): Promise<void> => {
  if (op === 'lifecycle') return c.lifecycle('trivial');
  if (op === 'create') return void (await c.createTask('trivial'));
  const res = await c.rpc(op === 'get' ? 'tasks/get' : 'tasks/result', { taskId: done[i]! });
  if (!res.result) throw new Error(`${op}: ${JSON.stringify(res)}`);
};
const drive = async (ms: number) => {
  const deadline = Date.now() + ms;
  let n = 0;
  await Promise.all(
    clients.map(async (c, i) => {
      while (Date.now() < deadline) {
        await once(c, i);
        n++;
      }
    }),
  );
  return n;
};
await drive(2000);
child.kill('SIGUSR2');
const cpu0 = cpuMs();
const n = await drive(seconds * 1000);
const [user, system] = [cpuMs()[0] - cpu0[0], cpuMs()[1] - cpu0[1]];
const cpu = user + system;
child.kill('SIGUSR2');
for (const c of clients) c.close();
await new Promise((r) => setTimeout(r, 300));
child.kill('SIGTERM');
await new Promise((r) => child.once('exit', r));
if (store === 'postgres') {
  const db = new pg.Client({ connectionString: 'postgres://postgres@127.0.0.1:5432/test' });
  await db.connect();
  await db.query(`DROP SCHEMA IF EXISTS ${schema} CASCADE`);
  await db.end();
}
const gc = JSON.parse(/gc (\{.*\})/.exec(stderr)?.[1] ?? '{}') as {
  count?: number;
  gcMs?: number;
  allocatedBytes?: number;
  scavenges?: number;
  markCompacts?: number;
};
console.log(
  `${store} ${era}: ${n} × ${op} in ${seconds} s (${(n / seconds).toFixed(0)}/s); server CPU ${((cpu * 1000) / n).toFixed(0)} µs each (user ${((user * 1000) / n).toFixed(0)}, system ${((system * 1000) / n).toFixed(0)}); ` +
    `GC ${gc.count} (${gc.scavenges} scavenges, ${gc.markCompacts} mark-compacts), ${(((gc.gcMs ?? 0) * 1000) / n).toFixed(0)} µs pause and ${((gc.allocatedBytes ?? 0) / n / 1024).toFixed(1)} KB allocated each`,
);

const file = readdirSync(dir).find((f) => f.endsWith('.cpuprofile'))!;
const prof = JSON.parse(readFileSync(join(dir, file), 'utf8')) as {
  nodes: { id: number; callFrame: { url: string; functionName: string; lineNumber: number } }[];
  samples: number[];
  timeDeltas: number[];
};
if (!keep) rmSync(dir, { recursive: true, force: true });
const byId = new Map(prof.nodes.map((node) => [node.id, node]));
const packages = new Map<string, number>();
const functions = new Map<string, number>();
const add = (m: Map<string, number>, k: string, v: number) => m.set(k, (m.get(k) ?? 0) + v);
prof.samples.forEach((id, i) => {
  const frame = byId.get(id)!.callFrame;
  const dt = prof.timeDeltas[i]!;
  if (frame.functionName === '(idle)') return;
  const m = /node_modules\/((?:@[^/]+\/)?[^/]+)/.exec(frame.url);
  const pkg = m
    ? m[1]!
    : frame.url.includes('/src/')
      ? `ours:${frame.url.split('/src/').at(-1)!.split('/')[0]}`
      : frame.url.startsWith('node:')
        ? 'node core'
        : frame.url
          ? 'other'
          : `(${frame.functionName || 'native'})`;
  add(packages, pkg, dt);
  const where = frame.url ? `${frame.url.replace(/.*\/(node_modules|src|bench)\//, '$1/')}:${frame.lineNumber + 1}` : '';
  add(functions, `${frame.functionName || '(anonymous)'} ${where}`, dt);
});
const busy = [...packages.values()].reduce((a, b) => a + b, 0);
console.log(`self time, non-idle (${(busy / 1000).toFixed(0)} ms sampled), by package:`);
for (const [k, v] of [...packages].sort((a, b) => b[1] - a[1]).slice(0, 14)) console.log(`  ${((100 * v) / busy).toFixed(1).padStart(5)} %  ${k}`);
console.log(`by function (top ${top}):`);
for (const [k, v] of [...functions].sort((a, b) => b[1] - a[1]).slice(0, top)) console.log(`  ${((100 * v) / busy).toFixed(1).padStart(5)} %  ${k}`);

// Inclusive (total) time of our own functions and the packages' entry points: each sample credits
// every distinct function on its stack once.
const parent = new Map<number, number>();
for (const node of prof.nodes as { id: number; children?: number[] }[]) for (const child of node.children ?? []) parent.set(child, node.id);
const total = new Map<string, number>();
prof.samples.forEach((id, i) => {
  const seen = new Set<string>();
  for (let at: number | undefined = id; at !== undefined; at = parent.get(at)) {
    const frame = byId.get(at)!.callFrame;
    if (!frame.url.includes('/src/') && !/node_modules\/(@modelcontextprotocol|zod|better-sqlite3|pg|ioredis)/.test(frame.url)) continue;
    const key = `${frame.functionName || '(anonymous)'} ${frame.url.replace(/.*\/(node_modules|src|bench)\//, '$1/')}`;
    if (seen.has(key)) continue;
    seen.add(key);
    total.set(key, (total.get(key) ?? 0) + prof.timeDeltas[i]!);
  }
});
console.log(`inclusive, ours and the SDK/zod/drivers (top ${top}):`);
for (const [k, v] of [...total].sort((a, b) => b[1] - a[1]).slice(0, top)) console.log(`  ${((100 * v) / busy).toFixed(1).padStart(5)} %  ${k}`);

// BENCH_CALLERS=<function name>: the stacks (our and the SDK's frames) under which that function spends its time.
const wanted = process.env.BENCH_CALLERS;
if (wanted) {
  const stacks = new Map<string, number>();
  prof.samples.forEach((id, i) => {
    const frames: string[] = [];
    let hit = false;
    for (let at: number | undefined = id; at !== undefined; at = parent.get(at)) {
      const frame = byId.get(at)!.callFrame;
      if (frame.functionName === wanted) hit = true;
      if (hit && frame.url && !frame.url.startsWith('node:')) frames.push(`${frame.functionName || '(anon)'}@${frame.url.split('/').at(-1)}`);
    }
    if (hit) stacks.set(frames.slice(0, 7).join(' < '), (stacks.get(frames.slice(0, 7).join(' < ')) ?? 0) + prof.timeDeltas[i]!);
  });
  console.log(`stacks of ${wanted}:`);
  for (const [k, v] of [...stacks].sort((a, b) => b[1] - a[1]).slice(0, 12)) console.log(`  ${((100 * v) / busy).toFixed(2).padStart(5)} %  ${k}`);
}
