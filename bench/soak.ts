/**
 * `node --import tsx bench/soak.ts`: a bounded soak of one mcp-tasks server (bench/servers/ours.ts,
 * SQLite, loopback only) under steady traffic, to show that what it holds stays flat over time. Not
 * part of `npm test`. Prints one row per window and a verdict; writes the rows to
 * bench/results/soak-latest.json. Exits 0 whatever the verdict (it is a measurement), non-zero only
 * when the harness itself fails (seeding, server start, the server dying).
 *
 * 1. Seeds a fresh SQLite file with SOAK_COMPLETED completed tasks (through the store API, group commit).
 * 2. Starts the server on it with a session idle timeout and a session cap, reporting its own figures
 *    every 5 s (`stats` on stderr: RSS, heapUsed, active handles and timers, open sessions, requests).
 * 3. Creates SOAK_WAITS long waits: half `sleepy` (a durable 1 h timer, 2026-07-28), half `waits`
 *    (a question nobody answers, 2025-11-25).
 * 4. For SOAK_MINUTES, SOAK_CLIENTS closed-loop clients run lifecycles back to back: 2025-11-25 (create
 *    with `task` → `tasks/get` every pollInterval → `tasks/result`) and 2026-07-28 (create → `tasks/get`
 *    until the result is inline) of `trivial`, and every 8th client answers a question (2026-07-28:
 *    create `approve` → `tasks/get` until `input_required` → `tasks/update` with `inputResponses` →
 *    `tasks/get` until completed). Beside them, SOAK_VANISH_PER_S vanishing 2025-11-25 clients a
 *    second: `initialize`, one `tasks/get` of a seeded task, then the connection is dropped without
 *    `DELETE` (only the idle timeout or the cap can close their sessions).
 * 5. Every SOAK_REPORT_MS: lifecycles/s in the window (answered and vanished ones beside), the
 *    server's latest `stats` (RSS, heapUsed, active handles, of which timers, open sessions, requests
 *    in flight), the CPU the server and this load generator used in the window (% of one core: the
 *    server is one Node thread, so ~100 % means it is the bottleneck), and the 1-minute load average.
 * 6. Checks the long waits are all still waiting, then the verdict.
 *
 * Targets (issue): after warm-up (the first window ignored, the first two when there are ≥ 4) RSS,
 * handles and lifecycles/s flat — every window within ±10 % of their median (handles, a few dozen
 * including each client's socket, also pass within ±SOAK_CLIENTS of it) — and open sessions never
 * above the cap (checked on every `stats` sample, not only the window ends). Every client here is the
 * same anonymous principal, to which only the total cap (SOAK_MAX_SESSIONS) applies. Handles are
 * sampled at one instant: they include whatever short-lived timers the traffic holds at that moment.
 *
 * Env: SOAK_MINUTES (default 10; fractions allowed), SOAK_REPORT_MS (60000), SOAK_COMPLETED (100000),
 * SOAK_WAITS (10000), SOAK_CLIENTS (16), SOAK_VANISH_PER_S (50), SOAK_SESSION_IDLE_MS (60000),
 * SOAK_MAX_SESSIONS (2000). Quick check:
 *   SOAK_MINUTES=1.5 SOAK_REPORT_MS=20000 SOAK_COMPLETED=20000 SOAK_WAITS=2000 SOAK_SESSION_IDLE_MS=10000 node --import tsx bench/soak.ts
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { cpus, loadavg, tmpdir, totalmem } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { openStore } from '../src/store/open-store.js';
import { LoadClient } from './load-client.js';

const MINUTES = Number(process.env.SOAK_MINUTES ?? 10);
const REPORT_MS = Number(process.env.SOAK_REPORT_MS ?? 60_000);
const COMPLETED = Number(process.env.SOAK_COMPLETED ?? 100_000);
const WAITS = Number(process.env.SOAK_WAITS ?? 10_000);
const CLIENTS = Number(process.env.SOAK_CLIENTS ?? 16);
const VANISH_PER_S = Number(process.env.SOAK_VANISH_PER_S ?? 50);
const IDLE_MS = Number(process.env.SOAK_SESSION_IDLE_MS ?? 60_000);
const MAX_SESSIONS = Number(process.env.SOAK_MAX_SESSIONS ?? 2000);
const STATS_MS = 5000;
const TOLERANCE = 0.1;
const here = fileURLToPath(new URL('.', import.meta.url));
const work = mkdtempSync(join(tmpdir(), 'mcp-tasks-soak-'));

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  const m = Math.floor(s.length / 2);
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
};
const mb = (bytes: number) => bytes / 2 ** 20;

/** The server's own figures, as bench/servers/ours.ts writes them with SOAK_STATS_MS. */
interface Stats {
  rss: number;
  heapUsed: number;
  handles: number;
  timers: number;
  sessions: number;
  requests: number;
}

/** One report window. */
interface Row {
  minute: number;
  seconds: number;
  lifecyclesPerS: number;
  answeredPerS: number;
  vanishedPerS: number;
  errors: number;
  rssMb: number;
  heapMb: number;
  handles: number;
  timers: number;
  sessions: number;
  requests: number;
  /** Most open sessions in the window's `stats` samples. */
  maxSessions: number;
  /** CPU time of the server and of this load generator in the window, % of one core. */
  serverCpuPct: number;
  generatorCpuPct: number;
  load1: number;
}

interface Server {
  url: string;
  child: ChildProcess;
  /** Every `stats` line so far, with when it arrived (`performance.now()` here). */
  samples: { at: number; stats: Stats }[];
  latest: () => Stats | undefined;
  /** The last stderr lines that were not `stats` (for error messages). */
  tail: () => string;
  stop(): Promise<void>;
}

/** Spawns bench/servers/ours.ts on `storeUrl` with `env` added (as bench/run.ts does), resolving once it prints its URL. */
async function startServer(storeUrl: string, env: Record<string, string>): Promise<Server> {
  const child = spawn(process.execPath, ['--import', 'tsx', join(here, 'servers', 'ours.ts'), storeUrl], {
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...process.env, ...env },
  });
  const samples: { at: number; stats: Stats }[] = [];
  const other: string[] = [];
  createInterface({ input: child.stderr! }).on('line', (line) => {
    if (line.startsWith('stats ')) samples.push({ at: performance.now(), stats: JSON.parse(line.slice(6)) as Stats });
    else if (other.push(line) > 20) other.shift();
  });
  const url = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`server did not start: ${other.join('\n')}`)), 120_000);
    createInterface({ input: child.stdout! }).once('line', (line) => {
      clearTimeout(timer);
      resolve(line.trim());
    });
    child.once('exit', (code) => reject(new Error(`server exited ${code}: ${other.join('\n')}`)));
  });
  return {
    url,
    child,
    samples,
    latest: () => samples.at(-1)?.stats,
    tail: () => other.join('\n'),
    stop: () =>
      new Promise<void>((resolve) => {
        if (child.exitCode !== null || child.signalCode !== null) return resolve();
        const kill = setTimeout(() => child.kill('SIGKILL'), 10_000);
        child.once('exit', () => {
          clearTimeout(kill);
          resolve();
        });
        child.kill('SIGTERM');
      }),
  };
}

/** Step 1: `count` completed tasks in a new SQLite file, 500 at a time through the store (group commit). Returns their ids. */
async function seed(storeUrl: string, count: number): Promise<string[]> {
  const store = openStore(storeUrl);
  const ids: string[] = [];
  const outcome = { type: 'result' as const, result: { content: [{ type: 'text' as const, text: 'ok' }] } };
  for (let i = 0; i < count; i += 500)
    ids.push(
      ...(await Promise.all(
        Array.from({ length: Math.min(500, count - i) }, async () => {
          const task = await store.create({ owner: null, request: { tool: 'trivial', arguments: {} }, errorResultStatus: 'failed' });
          await store.finish(task.taskId, 'completed', outcome);
          return task.taskId;
        }),
      )),
    );
  await store.close();
  return ids;
}

/**
 * A 2026-07-28 `LoadClient` that declares form elicitation (a plain one declares only the tasks
 * extension: the server would refuse it a question, and holds each of its calls up to 2 s to find
 * out), for the `approve` lifecycles and creating the `sleepy` waits.
 */
class ModernClient extends LoadClient {
  constructor(url: string) {
    super(url, '2026', { elicitation: true });
  }

  /** Calls task tool `tool`: its `CreateTaskResult` (`taskId`, `pollIntervalMs`). */
  async create(tool: string): Promise<{ taskId: string; pollIntervalMs: number }> {
    const { taskId, pollInterval } = await this.createTask(tool);
    return { taskId, pollIntervalMs: pollInterval };
  }

  /** One lifecycle of a task that asks one question: create, poll until asked, answer, poll until completed. */
  async answerLifecycle(): Promise<void> {
    const { taskId, pollIntervalMs } = await this.create('approve');
    const poll = async (until: (task: any) => boolean) => {
      for (;;) {
        await sleep(pollIntervalMs);
        const got = await this.rpc('tasks/get', { taskId });
        if (!got.result) throw new Error(`tasks/get: ${JSON.stringify(got)}`);
        if (until(got.result)) return got.result;
        if (['completed', 'failed', 'cancelled'].includes(got.result.status)) throw new Error(`approve ended early: ${JSON.stringify(got.result)}`);
      }
    };
    const asked = await poll((t) => t.status === 'input_required' && Object.keys(t.inputRequests ?? {}).length > 0);
    const [key] = Object.keys(asked.inputRequests);
    const ack = await this.rpc('tasks/update', { taskId, inputResponses: { [key!]: { action: 'accept', content: { ok: true } } } });
    if (!ack.result) throw new Error(`tasks/update: ${JSON.stringify(ack)}`);
    const done = await poll((t) => t.status === 'completed');
    if (done.result?.content?.[0]?.text !== 'answered accept') throw new Error(`approve result: ${JSON.stringify(done)}`);
  }
}

/** Runs `fn(i)` for i in [0, n) with `width` at a time. */
async function pool<T>(n: number, width: number, fn: (i: number) => Promise<T>): Promise<T[]> {
  const out: T[] = new Array(n);
  let next = 0;
  await Promise.all(
    Array.from({ length: Math.min(width, n) }, async () => {
      while (next < n) {
        const i = next++;
        out[i] = await fn(i);
      }
    }),
  );
  return out;
}

/**
 * Step 3: `count` long waits, half `sleepy` over 2026-07-28, half `waits` over 2025-11-25 (whose
 * sessions are then abandoned, left to the idle timeout). Returns their ids.
 */
async function createWaits(url: string, count: number): Promise<string[]> {
  const clients = await Promise.all(
    Array.from({ length: 16 }, async (_, i) => {
      if (i % 2) return new ModernClient(url);
      const c = new LoadClient(url, '2025');
      await c.init();
      return c;
    }),
  );
  const sleepy = clients.filter((c) => c instanceof ModernClient);
  const waits = clients.filter((c) => c instanceof LoadClient);
  const half = Math.floor(count / 2);
  const ids = [
    ...(await pool(half, sleepy.length, (i) => sleepy[i % sleepy.length]!.create('sleepy'))).map((t) => t.taskId),
    ...(await pool(count - half, waits.length, (i) => waits[i % waits.length]!.createTask('waits'))).map((t) => t.taskId),
  ];
  for (const c of clients) c.close();
  return ids;
}

/** Step 6: the statuses of `ids` now (2026-07-28 `tasks/get`; tasks are the principal's, not the session's). */
async function statusesOf(url: string, ids: string[]): Promise<Record<string, number>> {
  const clients = Array.from({ length: 16 }, () => new LoadClient(url, '2026'));
  const counts: Record<string, number> = {};
  await pool(ids.length, clients.length, async (i) => {
    const res = await clients[i % clients.length]!.rpc('tasks/get', { taskId: ids[i]! });
    const status = res.result?.status ?? `error ${res.error?.code}`;
    counts[status] = (counts[status] ?? 0) + 1;
  });
  for (const c of clients) c.close();
  return counts;
}

/** The server's next `stats` line (at most STATS_MS away), shortly. */
async function figures(server: Server): Promise<string> {
  const seen = server.latest();
  for (let i = 0; i < 50 && server.latest() === seen; i++) await sleep(STATS_MS / 20);
  const s = server.latest();
  if (!s) throw new Error(`no stats from the server: ${server.tail()}`);
  return `server RSS ${mb(s.rss).toFixed(0)} MB, heapUsed ${mb(s.heapUsed).toFixed(0)} MB, ${s.handles} handles (${s.timers} timers), ${s.sessions} sessions`;
}

/** CPU time (user + system) of process `pid` so far, in ms (Linux /proc, as bench/run.ts reads it). */
function cpuMsOf(pid: number): number {
  const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
  return ((Number(fields[11]) + Number(fields[12])) * 1000) / 100; // utime, stime in clock ticks (USER_HZ = 100)
}

/** CPU time (user + system) of this process so far, in ms. */
function ownCpuMs(): number {
  const { user, system } = process.cpuUsage();
  return (user + system) / 1000;
}

/** Spread of `xs` around its median: the lowest and highest as fractions off it. */
function spread(xs: number[]): { median: number; low: number; high: number } {
  const m = median(xs);
  const off = (x: number) => (m === 0 ? (x === 0 ? 0 : Infinity) : x / m - 1);
  return { median: m, low: off(Math.min(...xs)), high: off(Math.max(...xs)) };
}

const pct = (x: number) => `${x >= 0 ? '+' : ''}${(x * 100).toFixed(1)} %`;

async function main(): Promise<number> {
  const machine = `${cpus().length} cores (${cpus()[0]?.model.trim()}), ${Math.round(totalmem() / 2 ** 30)} GiB, Node ${process.version}`;
  console.log(`mcp-tasks soak — ${machine}`);
  console.log(
    `${MINUTES} min (whole windows of ${REPORT_MS / 1000} s); ${CLIENTS} clients, ${VANISH_PER_S} vanishing sessions/s; session idle timeout ${IDLE_MS / 1000} s, cap ${MAX_SESSIONS}; SQLite`,
  );
  const storeUrl = `sqlite:${join(work, 'soak.db')}`;

  let t0 = performance.now();
  const seeded = await seed(storeUrl, COMPLETED);
  console.log(`seeded ${COMPLETED.toLocaleString('en-US')} completed tasks in ${((performance.now() - t0) / 1000).toFixed(1)} s`);

  t0 = performance.now();
  const server = await startServer(storeUrl, {
    SOAK_STATS_MS: String(STATS_MS),
    SOAK_SESSION_IDLE_MS: String(IDLE_MS),
    SOAK_MAX_SESSIONS: String(MAX_SESSIONS),
  });
  let died: Error | undefined;
  server.child.once('exit', (code, signal) => (died ??= new Error(`server exited (${code ?? signal}) during the soak: ${server.tail()}`)));
  try {
    console.log(`server up in ${((performance.now() - t0) / 1000).toFixed(1)} s at ${server.url}; ${await figures(server)}`);

    t0 = performance.now();
    const waits = await createWaits(server.url, WAITS);
    const before = await statusesOf(server.url, waits);
    console.log(`${WAITS.toLocaleString('en-US')} long waits created in ${((performance.now() - t0) / 1000).toFixed(1)} s: ${JSON.stringify(before)}`);
    console.log(`with the long waits: ${await figures(server)}`);

    // Step 4: steady traffic.
    let lifecycles = 0;
    let answered = 0;
    let vanished = 0;
    let errors = 0;
    const firstErrors: string[] = [];
    const fail = (error: unknown) => {
      errors++;
      if (firstErrors.length < 5) firstErrors.push(String((error as Error)?.message ?? error).slice(0, 300));
    };
    // Whole windows: the soak lasts `windows` × SOAK_REPORT_MS, the last row is taken as traffic stops.
    const windows = Math.max(1, Math.round((MINUTES * 60_000) / REPORT_MS));
    const started = performance.now();
    const deadline = Date.now() + windows * REPORT_MS;
    const running = () => Date.now() < deadline && !died;
    const loops = Array.from({ length: CLIENTS }, async (_, i) => {
      const answers = i % 8 === 7 || (CLIENTS < 8 && CLIENTS > 1 && i === CLIENTS - 1);
      const c = answers ? new ModernClient(server.url) : new LoadClient(server.url, i % 2 ? '2026' : '2025');
      if (c instanceof LoadClient) await c.init();
      while (running()) {
        try {
          if (c instanceof ModernClient) await c.answerLifecycle();
          else await c.lifecycle('trivial');
          lifecycles++;
          if (answers) answered++;
        } catch (error) {
          fail(error);
          await sleep(100);
        }
      }
      c.close();
    });
    const vanishing = (async () => {
      const inFlight = new Set<Promise<void>>();
      const gap = 1000 / VANISH_PER_S;
      for (let at = performance.now(); VANISH_PER_S > 0 && running();) {
        const one = (async () => {
          const c = new LoadClient(server.url, '2025');
          try {
            await c.init();
            const res = await c.rpc('tasks/get', { taskId: seeded[Math.floor(Math.random() * seeded.length)]! });
            if (res.result?.status !== 'completed') throw new Error(`vanishing tasks/get: ${JSON.stringify(res)}`);
            vanished++;
          } catch (error) {
            fail(error);
          } finally {
            c.close(); // the socket goes, the session stays: no DELETE
          }
        })();
        inFlight.add(one);
        void one.finally(() => inFlight.delete(one));
        if (inFlight.size >= 256) await Promise.race(inFlight); // the server is behind: do not pile up more
        at += gap;
        await sleep(Math.max(0, at - performance.now()));
      }
      await Promise.all(inFlight);
    })();

    // Step 5: one row per window.
    const rows: Row[] = [];
    console.log('\n min  lifecycles/s  answered/s  vanished/s  errors  RSS MB  heap MB  handles  timers  sessions  requests  srv CPU %  gen CPU %  load1');
    let last = { at: started, lifecycles: 0, answered: 0, vanished: 0, errors: 0, serverCpu: cpuMsOf(server.child.pid!), generatorCpu: ownCpuMs() };
    const report = () => {
      const now = performance.now();
      const seconds = (now - last.at) / 1000;
      const s = server.latest();
      if (!s) throw new Error(`no stats from the server: ${server.tail()}`);
      const serverCpu = cpuMsOf(server.child.pid!);
      const generatorCpu = ownCpuMs();
      const row: Row = {
        minute: Number(((now - started) / 60_000).toFixed(2)),
        seconds,
        lifecyclesPerS: (lifecycles - last.lifecycles) / seconds,
        answeredPerS: (answered - last.answered) / seconds,
        vanishedPerS: (vanished - last.vanished) / seconds,
        errors: errors - last.errors,
        rssMb: mb(s.rss),
        heapMb: mb(s.heapUsed),
        handles: s.handles,
        timers: s.timers,
        sessions: s.sessions,
        requests: s.requests,
        maxSessions: Math.max(...server.samples.filter((x) => x.at > last.at).map((x) => x.stats.sessions), s.sessions),
        serverCpuPct: (serverCpu - last.serverCpu) / seconds / 10,
        generatorCpuPct: (generatorCpu - last.generatorCpu) / seconds / 10,
        load1: loadavg()[0]!,
      };
      rows.push(row);
      last = { at: now, lifecycles, answered, vanished, errors, serverCpu, generatorCpu };
      console.log(
        `${row.minute.toFixed(1).padStart(4)} ${row.lifecyclesPerS.toFixed(0).padStart(13)} ${row.answeredPerS.toFixed(0).padStart(11)} ${row.vanishedPerS.toFixed(1).padStart(11)} ${String(row.errors).padStart(7)} ${row.rssMb.toFixed(0).padStart(7)} ${row.heapMb.toFixed(0).padStart(8)} ${String(row.handles).padStart(8)} ${String(row.timers).padStart(7)} ${String(row.sessions).padStart(9)} ${String(row.requests).padStart(9)} ${row.serverCpuPct.toFixed(0).padStart(10)} ${row.generatorCpuPct.toFixed(0).padStart(10)} ${row.load1.toFixed(2).padStart(6)}`,
      );
    };
    for (let w = 1; w <= windows && !died; w++) {
      await sleep(started + w * REPORT_MS - performance.now());
      if (!died) report();
    }
    await Promise.race([Promise.all([...loops, vanishing]), sleep(30_000)]);
    if (died) throw died;

    // Step 6: the long waits, and the verdict.
    const after = await statusesOf(server.url, waits);
    const stillWaiting = (after.working ?? 0) + (after.input_required ?? 0);
    const skip = rows.length >= 4 ? 2 : rows.length >= 2 ? 1 : 0;
    const steady = rows.slice(skip);
    const verdicts: { what: string; pass: boolean; detail: string }[] = [];
    // Handles are a point sample that includes each client's keep-alive socket: a few dozen at most,
    // so they also pass when every sample is within CLIENTS handles of the median (±10 % of 25 is 2.5).
    for (const [what, pick, slack] of [
      ['RSS', (r: Row) => r.rssMb, 0],
      ['handles', (r: Row) => r.handles, CLIENTS],
      ['lifecycles/s', (r: Row) => r.lifecyclesPerS, 0],
    ] as const) {
      const values = steady.map(pick);
      const s = spread(values);
      const within = values.every((v) => Math.abs(v - s.median) <= slack);
      verdicts.push({
        what: `${what} flat (±${TOLERANCE * 100} %${slack ? ` or ±${slack}` : ''})`,
        pass: (s.low >= -TOLERANCE && s.high <= TOLERANCE) || (slack > 0 && within),
        detail: `median ${s.median.toFixed(what === 'RSS' ? 0 : 1)}, min ${pct(s.low)}, max ${pct(s.high)}${slack ? ` (${Math.min(...values)}–${Math.max(...values)})` : ''}`,
      });
    }
    const timers = spread(steady.map((r) => r.timers));
    const peak = Math.max(...server.samples.map((x) => x.stats.sessions));
    verdicts.push({ what: `sessions ≤ cap ${MAX_SESSIONS}`, pass: peak <= MAX_SESSIONS, detail: `most open in any 5 s sample ${peak}` });
    verdicts.push({
      what: 'long waits still waiting',
      pass: stillWaiting === WAITS,
      detail: `${stillWaiting}/${WAITS} ${JSON.stringify(after)}`,
    });
    verdicts.push({
      what: 'no request errors',
      pass: errors === 0,
      detail: `${errors} errors${firstErrors.length ? `; first: ${firstErrors.join(' | ')}` : ''}`,
    });

    const total = rows.reduce((n, r) => n + r.lifecyclesPerS * r.seconds, 0);
    console.log(
      `\n${Math.round(total).toLocaleString('en-US')} lifecycles, ${vanished.toLocaleString('en-US')} vanished sessions; verdict over windows ${skip + 1}–${rows.length} (${skip} warm-up window${skip === 1 ? '' : 's'} ignored):`,
    );
    for (const v of verdicts) console.log(`   ${v.pass ? 'PASS' : 'MISS'}  ${v.what.padEnd(28)} ${v.detail}`);
    console.log(`   info  timers                       median ${timers.median}, min ${pct(timers.low)}, max ${pct(timers.high)}`);

    mkdirSync(join(here, 'results'), { recursive: true });
    writeFileSync(
      join(here, 'results', 'soak-latest.json'),
      JSON.stringify(
        {
          machine,
          at: new Date().toISOString(),
          config: {
            minutes: MINUTES,
            reportMs: REPORT_MS,
            completed: COMPLETED,
            waits: WAITS,
            clients: CLIENTS,
            vanishPerS: VANISH_PER_S,
            idleMs: IDLE_MS,
            maxSessions: MAX_SESSIONS,
          },
          rows,
          samples: server.samples.map((x) => ({ second: Number(((x.at - started) / 1000).toFixed(1)), ...x.stats })),
          warmupWindows: skip,
          peakSessions: peak,
          waitsBefore: before,
          waitsAfter: after,
          errors,
          firstErrors,
          verdicts,
        },
        null,
        2,
      ) + '\n',
    );
    return 0;
  } finally {
    await server.stop();
  }
}

let code = 1;
try {
  code = await main();
} catch (error) {
  console.error(error);
} finally {
  rmSync(work, { recursive: true, force: true });
}
process.exit(code);
