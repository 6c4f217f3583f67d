/**
 * `node --import tsx bench/sessions.ts`: what an idle 2025-11-25 Streamable HTTP session costs the
 * server (issue 28), mcp-tasks (bench/servers/ours.ts on SQLite) against the peer (the official SDK
 * 1.x, bench/servers/baseline-v1.ts), in the same run. Not part of `npm test`.
 *
 * An idle session: the client sent `initialize` and `notifications/initialized`, then nothing, and
 * holds no connection (the bench's keep-alive sockets are destroyed before measuring). For each N
 * (SESSIONS_N, default `1000,10000`) and each repeat (SESSIONS_REPEATS, default 1), peer and ours
 * alternate, each in a fresh process started with `--expose-gc` and bench/mem-probe.ts preloaded
 * (it reports `process.memoryUsage()` after two full collections, and writes heap snapshots, over
 * IPC: no inspector, no change to the servers):
 *
 * 1. warm-up: SESSIONS_WARMUP (50) sessions, so what is built once (modules, schemas, caches) is in
 *    the baseline, SESSIONS_SETTLE_MS (8,000) of quiet, then the baseline figures (RSS, heapUsed, external);
 * 2. N sessions opened (SESSIONS_CONCURRENCY requests in flight, default 16), sockets closed:
 *    figures at once ("fresh"), and after SESSIONS_SETTLE_MS of quiet ("idle": longer than the
 *    5 s after which mcp-tasks puts a quiet session to sleep, `sessions.dormantAfterMs`; the same
 *    wait for both servers);
 * 3. N more sessions, SESSIONS_SETTLE_MS, figures ("2nd batch": a delta free of the start-up drift
 *    of RSS). Per session = delta / N (bytes, shown in KB = 1,000 bytes).
 *
 * With SESSIONS_SNAPSHOT_N (default 1000; 0 = none): one more pass per server with that many
 * sessions, a heap snapshot before and after. The objects of the second snapshot whose ids are not
 * in the first (what the sessions added; V8 keeps ids stable within a process) are summed by
 * constructor (objects, by their constructor name; closures, by function name; V8 internals by
 * kind: `(array)`, `(string)`, `(code)`, `(system)`…), shown per session: count and shallow bytes.
 * The snapshots are deleted afterwards (SESSIONS_KEEP_SNAPSHOTS=1 keeps them in the temp dir).
 *
 * SESSIONS_BASELINE_REF=<git ref>: a third server, `before` (bench/servers/ours.ts of that commit,
 * from a git worktree made for the run and removed after it), measured in the same run.
 *
 * Server caps raised through the env knobs bench/servers/ours.ts reads: SOAK_MAX_SESSIONS (2N + 1,000),
 * SOAK_SESSION_IDLE_MS (1 h: the sweep timer runs, nothing is closed). Ratios are ours / peer.
 */
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, symlinkSync } from 'node:fs';
import { Agent } from 'node:http';
import { cpus, loadavg, tmpdir, totalmem } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { postJson } from './load-client.js';

const NS = (process.env.SESSIONS_N ?? '1000,10000').split(',').map(Number);
const REPEATS = Number(process.env.SESSIONS_REPEATS ?? 1);
const WARMUP = Number(process.env.SESSIONS_WARMUP ?? 50);
const CONCURRENCY = Number(process.env.SESSIONS_CONCURRENCY ?? 16);
const SNAPSHOT_N = Number(process.env.SESSIONS_SNAPSHOT_N ?? 1000);
const KEEP_SNAPSHOTS = process.env.SESSIONS_KEEP_SNAPSHOTS === '1';
const SETTLE_MS = Number(process.env.SESSIONS_SETTLE_MS ?? 8000);
const here = fileURLToPath(new URL('.', import.meta.url));
const work = mkdtempSync(join(tmpdir(), 'mcp-tasks-sessions-'));
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** `before`: bench/servers/ours.ts of SESSIONS_BASELINE_REF (a git worktree made for the run). */
type ServerName = 'peer' | 'ours' | 'before';
const BASELINE_REF = process.env.SESSIONS_BASELINE_REF;
const baselineRoot = join(work, 'baseline');
const repo = join(here, '..');
const SERVERS: ServerName[] = BASELINE_REF ? ['peer', 'before', 'ours'] : ['peer', 'ours'];

/** `process.memoryUsage()` of the server after two full collections (bytes). */
interface Mem {
  rss: number;
  heapUsed: number;
  heapTotal: number;
  external: number;
  arrayBuffers: number;
}

/** A bench server child with its IPC channel to bench/mem-probe.ts. */
class Server {
  private constructor(
    readonly child: ChildProcess,
    readonly url: string,
  ) {}

  static async start(name: ServerName, maxSessions: number, run: number): Promise<Server> {
    const script =
      name === 'peer' ? join(here, 'servers', 'baseline-v1.ts') : join(name === 'before' ? join(baselineRoot, 'bench') : here, 'servers', 'ours.ts');
    const args = name === 'peer' ? [] : [`sqlite:${join(work, `${name}-${run}.db`)}`];
    const child = spawn(process.execPath, ['--expose-gc', '--import', 'tsx', '--import', join(here, 'mem-probe.ts'), script, ...args], {
      stdio: ['ignore', 'pipe', 'pipe', 'ipc'],
      env: { ...process.env, SOAK_MAX_SESSIONS: String(maxSessions), SOAK_SESSION_IDLE_MS: String(3_600_000) },
    });
    let stderr = '';
    child.stderr!.on('data', (chunk: Buffer) => void (stderr = (stderr + chunk.toString()).slice(-4000)));
    const url = await new Promise<string>((resolve, reject) => {
      const lines = createInterface({ input: child.stdout! });
      lines.once('line', (line) => resolve(line.trim()));
      child.once('exit', (code) => reject(new Error(`${name} server exited (${code}) before listening: ${stderr}`)));
    });
    return new Server(child, url);
  }

  private ask<T>(message: object, type: string): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      const onMessage = (reply: { type?: string }) => {
        if (reply.type !== type) return;
        this.child.off('message', onMessage);
        resolve(reply as T);
      };
      this.child.on('message', onMessage);
      this.child.send(message, (error) => error && reject(error));
    });
  }

  mem(): Promise<Mem> {
    return this.ask<Mem>({ type: 'mem' }, 'mem');
  }

  async snapshot(path: string): Promise<string> {
    await this.ask({ type: 'snapshot', path }, 'snapshot');
    return path;
  }

  async stop(): Promise<void> {
    const exited = new Promise((resolve) => this.child.once('exit', resolve));
    this.child.kill('SIGTERM');
    await Promise.race([exited, sleep(5000)]);
    if (this.child.exitCode === null) this.child.kill('SIGKILL');
  }
}

/**
 * Opens `count` idle 2025-11-25 sessions on `url` (`initialize`, then `notifications/initialized`;
 * nothing more), `CONCURRENCY` at a time, then closes every socket. Throws on any refusal.
 */
async function openSessions(url: string, count: number): Promise<void> {
  const target = new URL(url);
  const agent = new Agent({ keepAlive: true, maxSockets: CONCURRENCY });
  let next = 0;
  const worker = async () => {
    while (next < count) {
      next++;
      const init = await postJson(
        agent,
        target,
        {
          jsonrpc: '2.0',
          id: 1,
          method: 'initialize',
          params: { protocolVersion: '2025-11-25', capabilities: {}, clientInfo: { name: 'bench', version: '0' } },
        },
        {},
      );
      if (init.status !== 200 || !init.sessionId) throw new Error(`initialize: HTTP ${init.status} ${init.text.slice(0, 200)}`);
      const initialized = await postJson(
        agent,
        target,
        { jsonrpc: '2.0', method: 'notifications/initialized' },
        { 'mcp-session-id': init.sessionId, 'mcp-protocol-version': '2025-11-25' },
      );
      if (initialized.status !== 202) throw new Error(`notifications/initialized: HTTP ${initialized.status} ${initialized.text.slice(0, 200)}`);
    }
  };
  await Promise.all(Array.from({ length: CONCURRENCY }, worker));
  agent.destroy();
}

/**
 * Figures of one server: `base` after the warm-up, `fresh` right after N sessions were opened
 * (before mcp-tasks puts them to sleep: what a session costs in its first seconds; only meaningful
 * when opening took less than 5 s), `idle` after SETTLE_MS of quiet, `idle2` after N more sessions
 * and SETTLE_MS again (the second batch's delta is free of start-up drift: RSS still shrinking from
 * what loading the server left behind).
 */
interface Row {
  server: ServerName;
  n: number;
  base: Mem;
  fresh: Mem;
  idle: Mem;
  idle2: Mem;
  openMs: number;
}

async function measure(name: ServerName, n: number, run: number): Promise<Row> {
  const server = await Server.start(name, 2 * n + 1_000, run);
  try {
    await openSessions(server.url, WARMUP);
    await sleep(SETTLE_MS);
    const base = await server.mem();
    const t0 = performance.now();
    await openSessions(server.url, n);
    const openMs = performance.now() - t0;
    const fresh = await server.mem();
    await sleep(SETTLE_MS);
    const idle = await server.mem();
    await openSessions(server.url, n);
    await sleep(SETTLE_MS);
    const idle2 = await server.mem();
    return { server: name, n, base, fresh, idle, idle2, openMs };
  } finally {
    await server.stop();
  }
}

// ---------------------------------------------------------------------------------------------
// Heap snapshot comparison

interface Snapshot {
  snapshot: { meta: { node_fields: string[]; node_types: [string[], ...unknown[]] } };
  nodes: number[];
  strings: string[];
}

/** Per-constructor count and shallow bytes of the objects in `afterPath` that are not in `beforePath`. */
function newObjectsByConstructor(beforePath: string, afterPath: string): Map<string, { count: number; bytes: number }> {
  const idsOf = (s: Snapshot) => {
    const fields = s.snapshot.meta.node_fields;
    const width = fields.length;
    const idAt = fields.indexOf('id');
    const ids = new Set<number>();
    for (let i = 0; i < s.nodes.length; i += width) ids.add(s.nodes[i + idAt]!);
    return ids;
  };
  const before = idsOf(JSON.parse(readFileSync(beforePath, 'utf8')) as Snapshot);
  const after = JSON.parse(readFileSync(afterPath, 'utf8')) as Snapshot;
  const fields = after.snapshot.meta.node_fields;
  const width = fields.length;
  const [typeAt, nameAt, idAt, sizeAt] = ['type', 'name', 'id', 'self_size'].map((f) => fields.indexOf(f)) as [number, number, number, number];
  const types = after.snapshot.meta.node_types[0];
  const groups = new Map<string, { count: number; bytes: number }>();
  for (let i = 0; i < after.nodes.length; i += width) {
    if (before.has(after.nodes[i + idAt]!)) continue;
    const type = types[after.nodes[i + typeAt]!]!;
    const name = after.strings[after.nodes[i + nameAt]!]!;
    const key =
      type === 'object' || type === 'native'
        ? name
        : type === 'closure'
          ? `(closure) ${name || '(anonymous)'}`
          : type === 'hidden' || type === 'synthetic' || type === 'object shape'
            ? `(system) ${name.replace(/ \/ .*/, '').slice(0, 40)}`
            : `(${type})`;
    const group = groups.get(key) ?? { count: 0, bytes: 0 };
    group.count++;
    group.bytes += after.nodes[i + sizeAt]!;
    groups.set(key, group);
  }
  return groups;
}

async function retainers(name: ServerName, n: number): Promise<{ name: ServerName; n: number; groups: Map<string, { count: number; bytes: number }> }> {
  const server = await Server.start(name, n + 1_000, 99);
  let paths: string[] = [];
  try {
    await openSessions(server.url, WARMUP);
    await sleep(SETTLE_MS);
    const before = await server.snapshot(join(work, `${name}-before.heapsnapshot`));
    await openSessions(server.url, n);
    await sleep(SETTLE_MS);
    const after = await server.snapshot(join(work, `${name}-after.heapsnapshot`));
    paths = [before, after];
  } finally {
    await server.stop();
  }
  const groups = newObjectsByConstructor(paths[0]!, paths[1]!);
  if (!KEEP_SNAPSHOTS) for (const path of paths) rmSync(path, { force: true });
  return { name, n, groups };
}

// ---------------------------------------------------------------------------------------------

const kb = (bytes: number) => (bytes / 1000).toFixed(1);
const mb = (bytes: number) => (bytes / 1e6).toFixed(0);
const out = (line = '') => process.stdout.write(`${line}\n`);

out(`# bench/sessions.ts ${new Date().toISOString()}`);
out(`# ${cpus().length} × ${cpus()[0]?.model ?? '?'}, ${(totalmem() / 2 ** 30).toFixed(0)} GiB, Node ${process.version}, load ${loadavg()[0]!.toFixed(2)}`);
out(
  `# N ${NS.join(', ')}; repeats ${REPEATS}; warm-up ${WARMUP} sessions; ${CONCURRENCY} requests in flight; ${SETTLE_MS} ms quiet before measuring; KB = 1,000 bytes`,
);
if (BASELINE_REF)
  out(`# before = bench/servers/ours.ts at ${BASELINE_REF} (${execFileSync('git', ['-C', repo, 'rev-parse', '--short', BASELINE_REF]).toString().trim()})`);
out();

if (BASELINE_REF) {
  execFileSync('git', ['-C', repo, 'worktree', 'add', '--detach', baselineRoot, BASELINE_REF], { stdio: 'ignore' });
  symlinkSync(join(repo, 'node_modules'), join(baselineRoot, 'node_modules'));
}
const rows: Row[] = [];
const per = (row: Row, from: keyof Pick<Row, 'base' | 'idle'>, to: keyof Pick<Row, 'fresh' | 'idle' | 'idle2'>, field: keyof Mem) =>
  (row[to][field] - row[from][field]) / row.n;
for (let repeat = 0; repeat < REPEATS; repeat++) {
  for (const n of NS) {
    for (const name of SERVERS) {
      const row = await measure(name, n, rows.length);
      rows.push(row);
      out(
        `${name.padEnd(4)} N=${String(n).padStart(6)} (opened in ${(row.openMs / 1000).toFixed(1)} s): ` +
          `RSS MB base ${mb(row.base.rss)}, fresh ${mb(row.fresh.rss)}, idle ${mb(row.idle.rss)}, 2N idle ${mb(row.idle2.rss)}; ` +
          `heapUsed MB ${mb(row.base.heapUsed)}, ${mb(row.fresh.heapUsed)}, ${mb(row.idle.heapUsed)}, ${mb(row.idle2.heapUsed)}; ` +
          `per session KB: heap fresh ${kb(per(row, 'base', 'fresh', 'heapUsed'))}, idle ${kb(per(row, 'base', 'idle', 'heapUsed'))}, ` +
          `2nd batch ${kb(per(row, 'idle', 'idle2', 'heapUsed'))}; RSS idle ${kb(per(row, 'base', 'idle', 'rss'))}, 2nd batch ${kb(per(row, 'idle', 'idle2', 'rss'))}; ` +
          `external ${kb(per(row, 'base', 'idle', 'external'))}`,
      );
    }
  }
}

out();
out('## Summary (medians over repeats; ratio = ours / peer; per idle session, KB)');
const median = (values: number[]) => {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted.length % 2 ? sorted[(sorted.length - 1) / 2]! : (sorted[sorted.length / 2 - 1]! + sorted[sorted.length / 2]!) / 2;
};
for (const n of NS) {
  const of = (name: ServerName, pick: (row: Row) => number) => median(rows.filter((r) => r.server === name && r.n === n).map(pick));
  const figure = (label: string, pick: (row: Row) => number, format = kb) => {
    const [ours, peer] = [of('ours', pick), of('peer', pick)];
    const before = BASELINE_REF ? `, before ${format(of('before', pick))}` : '';
    return `${label} ours ${format(ours)}, peer ${format(peer)} (${(ours / peer).toFixed(2)})${before}`;
  };
  out(
    `N=${n}: ` +
      [
        figure('heap', (r) => per(r, 'base', 'idle', 'heapUsed')),
        figure('heap 2nd batch', (r) => per(r, 'idle', 'idle2', 'heapUsed')),
        figure('RSS', (r) => per(r, 'base', 'idle', 'rss')),
        figure('RSS 2nd batch', (r) => per(r, 'idle', 'idle2', 'rss')),
        figure('heap fresh', (r) => per(r, 'base', 'fresh', 'heapUsed')),
        figure('RSS MB with N idle sessions', (r) => r.idle.rss, mb),
      ].join('; '),
  );
}

if (SNAPSHOT_N > 0) {
  out();
  out(`## What a session adds to the heap (snapshots before/after ${SNAPSHOT_N} sessions; new objects by constructor, per session)`);
  for (const name of SERVERS) {
    const { groups } = await retainers(name, SNAPSHOT_N);
    const total = [...groups.values()].reduce((sum, g) => ({ count: sum.count + g.count, bytes: sum.bytes + g.bytes }), { count: 0, bytes: 0 });
    out();
    out(`${name}: ${(total.count / SNAPSHOT_N).toFixed(0)} objects, ${kb(total.bytes / SNAPSHOT_N)} KB shallow per session`);
    out(`  ${'constructor'.padEnd(48)} ${'count'.padStart(8)} ${'bytes'.padStart(9)}`);
    for (const [key, g] of [...groups].sort((a, b) => b[1].bytes - a[1].bytes).slice(0, 25))
      out(`  ${key.slice(0, 48).padEnd(48)} ${(g.count / SNAPSHOT_N).toFixed(1).padStart(8)} ${(g.bytes / SNAPSHOT_N).toFixed(0).padStart(9)}`);
  }
}

if (BASELINE_REF) execFileSync('git', ['-C', repo, 'worktree', 'remove', '--force', baselineRoot], { stdio: 'ignore' });
if (!KEEP_SNAPSHOTS) rmSync(work, { recursive: true, force: true });
else out(`\n(snapshots kept in ${work})`);
