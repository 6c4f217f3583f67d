/**
 * `npm run chaos`: the chaos run of the test suite (test/helpers/chaos.ts: N worker instances on one
 * shared store, many multi-step tasks, repeated random SIGKILLs and restarts), with larger numbers.
 * It prints the report and exits 1 unless every task completed, every side effect happened exactly
 * once and no poll saw an illegal transition.
 *
 * env: CHAOS_STORE (default a fresh PostgreSQL schema), CHAOS_INSTANCES (3), CHAOS_TASKS (200),
 * CHAOS_STEPS (5), CHAOS_SECONDS (45), CHAOS_LEASE_MS (1000), CHAOS_PAUSE_MS (200).
 */
import { runChaos } from '../test/helpers/chaos.js';

const env = (name: string, fallback: number) => Number(process.env[name] ?? fallback);
const report = await runChaos({
  store: process.env.CHAOS_STORE,
  instances: env('CHAOS_INSTANCES', 3),
  tasks: env('CHAOS_TASKS', 200),
  steps: env('CHAOS_STEPS', 5),
  seconds: env('CHAOS_SECONDS', 45),
  leaseMs: env('CHAOS_LEASE_MS', 1000),
  pauseMs: env('CHAOS_PAUSE_MS', 200),
  log: (line) => console.log(line),
});
console.log(JSON.stringify(report, null, 2));
const ok =
  report.terminal === report.tasks &&
  report.completed === report.tasks &&
  report.duplicateEffects === 0 &&
  report.missingEffects === 0 &&
  report.violations.length === 0;
console.log(ok ? 'chaos: OK' : 'chaos: FAILED');
process.exitCode = ok ? 0 : 1;
