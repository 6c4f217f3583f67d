/**
 * Chaos run: N worker instances on one shared store, many multi-step tasks, repeated random SIGKILLs
 * and restarts. At the end every task must be terminal (completed), every step's side effect must
 * have happened exactly once, and no poll may have observed an illegal transition (a terminal task
 * changing, or `lastUpdatedAt` going backwards).
 *
 * The test suite runs it small (test/chaos.test.ts); `npm run chaos` (bench/chaos.ts) runs it with
 * larger numbers. Everything stays on loopback and stops by itself.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import Database from 'better-sqlite3';
import pg from 'pg';
import { ModernRawClient } from './modern-client.js';
import { PG_URL, withParam } from './services.js';

export interface ChaosOptions {
  /** Shared store URL. Default: a fresh schema on PostgreSQL at `pgUrl`. */
  store?: string;
  /** Default: `PG_URL` of `services.ts`. */
  pgUrl?: string;
  instances: number;
  tasks: number;
  steps: number;
  /** How long instances keep being killed and restarted, in seconds. */
  seconds: number;
  leaseMs: number;
  /** Durable sleep between steps, in ms. */
  pauseMs: number;
  log?: (line: string) => void;
}

export interface ChaosReport {
  tasks: number;
  terminal: number;
  /** Completed with a successful tool result (not `isError`). */
  completed: number;
  /** Ended otherwise (failed, cancelled, or completed with an `isError` result), with the reason. */
  unsuccessful: string[];
  kills: number;
  polls: number;
  /** Step effects applied more than once (must be 0). */
  duplicateEffects: number;
  /** Step effects that never happened although their task completed (must be 0). */
  missingEffects: number;
  /** Illegal transitions observed by polling clients (must be empty). */
  violations: string[];
  /** From the first kill until every task was terminal, in ms. */
  drainMs: number;
}

interface Worker {
  id: string;
  child: ChildProcess;
  url: string;
}

/** One 2026-07-28 request (declaring the Tasks extension), abandoned after 10 s. */
async function rpc(url: string, method: string, params: Record<string, unknown>): Promise<any> {
  return new ModernRawClient(url, true, 10_000).request(method, params);
}

/** Runs one chaos experiment and returns what it observed. */
export async function runChaos(options: ChaosOptions): Promise<ChaosReport> {
  const log = options.log ?? (() => undefined);
  const dir = mkdtempSync(join(tmpdir(), 'mcp-tasks-chaos-'));
  const effects = join(dir, 'effects.db');
  const schema = `mcpt_chaos_${randomBytes(3).toString('hex')}`;
  const pgUrl = options.pgUrl ?? PG_URL;
  const store = options.store ?? withParam(pgUrl, 'schema', schema);
  const serverScript = fileURLToPath(new URL('../../examples/chaos/server.ts', import.meta.url));
  const workers = new Map<string, Worker>();
  const restarts = new Set<NodeJS.Timeout>();
  let stopping = false;

  const start = async (id: string): Promise<Worker> => {
    const child = spawn(process.execPath, ['--import', 'tsx', serverScript, store, effects, id, String(options.leaseMs)], {
      stdio: ['ignore', 'pipe', 'ignore'],
    });
    const url = await new Promise<string>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`worker ${id} did not start`)), 30_000);
      createInterface({ input: child.stdout! }).once('line', (line) => {
        clearTimeout(timer);
        resolve(line.trim());
      });
      child.once('exit', (code) => reject(new Error(`worker ${id} exited ${code}`)));
    });
    const worker = { id, child, url };
    workers.set(id, worker);
    if (stopping) await kill(worker); // started while the run was ending: no orphans
    return worker;
  };
  const kill = (worker: Worker) =>
    new Promise<void>((resolve) => {
      workers.delete(worker.id);
      if (worker.child.exitCode !== null || worker.child.signalCode !== null) return resolve();
      worker.child.once('exit', () => resolve());
      worker.child.kill('SIGKILL');
    });
  const alive = () => [...workers.values()];
  const pick = () => alive()[Math.floor(Math.random() * alive().length)];

  const report: ChaosReport = {
    tasks: options.tasks,
    terminal: 0,
    completed: 0,
    unsuccessful: [],
    kills: 0,
    polls: 0,
    duplicateEffects: 0,
    missingEffects: 0,
    violations: [],
    drainMs: 0,
  };
  const seen = new Map<string, { status: string; lastUpdatedAt: string }>();
  const observe = (task: any) => {
    if (!task?.taskId) return;
    report.polls++;
    const before = seen.get(task.taskId);
    if (before) {
      const terminal = ['completed', 'failed', 'cancelled'].includes(before.status);
      if (terminal && task.status !== before.status) report.violations.push(`${task.taskId}: ${before.status} → ${task.status}`);
      if (task.lastUpdatedAt < before.lastUpdatedAt)
        report.violations.push(`${task.taskId}: lastUpdatedAt went back ${before.lastUpdatedAt} → ${task.lastUpdatedAt}`);
    }
    seen.set(task.taskId, { status: task.status, lastUpdatedAt: task.lastUpdatedAt });
  };

  try {
    for (let i = 0; i < options.instances; i++) await start(`w${i}`);
    const ids: string[] = [];
    for (let i = 0; i < options.tasks; i++) {
      for (;;) {
        const worker = alive()[i % alive().length]!;
        const res = await rpc(worker.url, 'tools/call', { name: 'multi_step', arguments: { steps: options.steps, pauseMs: options.pauseMs } }).catch(
          () => undefined,
        );
        if (res?.result?.taskId) {
          ids.push(res.result.taskId);
          break;
        }
      }
    }
    log(`submitted ${ids.length} tasks to ${options.instances} instances`);

    let polling = true;
    const poller = (async () => {
      while (polling) {
        const worker = pick();
        const taskId = ids[Math.floor(Math.random() * ids.length)]!;
        if (worker) observe((await rpc(worker.url, 'tasks/get', { taskId }).catch(() => undefined))?.result);
        await new Promise((r) => setTimeout(r, 5));
      }
    })();

    const chaosStart = Date.now();
    let restartN = 0;
    while (Date.now() - chaosStart < options.seconds * 1000) {
      await new Promise((r) => setTimeout(r, 300 + Math.random() * 1200));
      const victim = pick();
      if (victim && alive().length > 1) {
        await kill(victim);
        report.kills++;
        const timer = setTimeout(() => {
          restarts.delete(timer);
          void start(`${victim.id.split('.')[0]}.${++restartN}`).catch(() => undefined);
        }, Math.random() * 1500);
        restarts.add(timer);
      }
    }
    for (const timer of restarts) clearTimeout(timer);
    restarts.clear();
    while (alive().length < options.instances) await start(`w-final-${++restartN}`);
    log(`chaos over after ${report.kills} kills; draining`);

    const drainDeadline = Date.now() + 120_000;
    let remaining = ids;
    while (remaining.length > 0 && Date.now() < drainDeadline) {
      const next: string[] = [];
      for (const taskId of remaining) {
        const task = (await rpc(pick()!.url, 'tasks/get', { taskId }).catch(() => undefined))?.result;
        observe(task);
        if (!task || !['completed', 'failed', 'cancelled'].includes(task.status)) next.push(taskId);
        else if (task.status === 'completed' && task.result?.isError !== true) report.completed++;
        else report.unsuccessful.push(`${taskId}: ${task.status}${task.statusMessage ? ` (${task.statusMessage})` : ''}`);
      }
      report.terminal += remaining.length - next.length;
      remaining = next;
      if (remaining.length > 0) await new Promise((r) => setTimeout(r, 200));
    }
    report.drainMs = Date.now() - chaosStart;
    polling = false;
    await poller;

    const db = new Database(effects, { readonly: true });
    const counts = db.prepare(`SELECT key, COUNT(*) AS n FROM effects GROUP BY key`).all() as { key: string; n: number }[];
    report.duplicateEffects = counts.filter((c) => c.n > 1).length;
    const applied = new Set(counts.map((c) => c.key));
    for (const taskId of ids)
      for (let i = 0; i < options.steps; i++)
        if (!applied.has(`${taskId}/${i}`)) {
          report.missingEffects++;
          log(`missing effect ${taskId}/${i}`);
        }
    db.close();
    return report;
  } finally {
    stopping = true;
    for (const timer of restarts) clearTimeout(timer);
    await Promise.all(alive().map(kill));
    if (process.env.CHAOS_KEEP) {
      log(`kept ${dir} and ${store}`);
      return report;
    }
    rmSync(dir, { recursive: true, force: true });
    if (!options.store) {
      const client = new pg.Client({ connectionString: pgUrl });
      await client.connect();
      await client.query(`DROP SCHEMA IF EXISTS ${schema} CASCADE`);
      await client.end();
    }
  }
}
