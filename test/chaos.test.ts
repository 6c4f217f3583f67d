/** A bounded chaos run in the test suite (`npm run chaos` runs it bigger). */
import assert from 'node:assert/strict';
import { it } from 'node:test';
import { runChaos } from './helpers/chaos.js';
import { PG_URL } from './helpers/services.js';

it('random SIGKILLs and restarts: every task ends, every side effect exactly once, no illegal transition', { timeout: 240_000 }, async () => {
  const report = await runChaos({ pgUrl: PG_URL, instances: 3, tasks: 24, steps: 4, seconds: 10, leaseMs: 800, pauseMs: 150 });
  assert.ok(report.kills >= 3, `killed ${report.kills} instances`);
  assert.deepEqual(report.violations, []);
  assert.equal(report.terminal, report.tasks, 'every task is terminal');
  assert.deepEqual(report.unsuccessful, [], 'no task ended unsuccessfully');
  assert.equal(report.completed, report.tasks, 'every task completed with a successful result');
  assert.equal(report.duplicateEffects, 0, 'no side effect twice');
  assert.equal(report.missingEffects, 0, 'no side effect missing');
  assert.ok(report.polls > 50, `clients observed ${report.polls} states`);
});
