// Prints a per-scenario summary of conformance results: node summary.mjs <resultsDir> <scenario>...
// Reads <resultsDir>/server-<scenario>-<timestamp>/checks.json (the newest per scenario).
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';

const [dir, ...scenarios] = process.argv.slice(2);
const entries = (() => {
  try {
    return readdirSync(dir).sort();
  } catch {
    return [];
  }
})();

let passed = 0;
let failed = 0;
const failures = [];
console.log('\n=== SUMMARY (checks per scenario) ===');
for (const scenario of scenarios) {
  const runs = entries.filter(
    (name) => name.startsWith(`server-${scenario}-`) && /\d{4}-\d\d-\d\dT/.test(name.slice(`server-${scenario}-`.length, `server-${scenario}-`.length + 11)),
  );
  const latest = runs.at(-1);
  if (!latest) {
    console.log(`? ${scenario}: no results`);
    failed++;
    failures.push({ scenario, id: '(no results)', message: 'the suite wrote no checks.json; see the scenario log' });
    continue;
  }
  const checks = JSON.parse(readFileSync(join(dir, latest, 'checks.json'), 'utf8'));
  const count = (status) => checks.filter((c) => c.status === status).length;
  const [ok, bad, warn, skip, info] = [count('SUCCESS'), count('FAILURE'), count('WARNING'), count('SKIPPED'), count('INFO')];
  passed += ok;
  failed += bad;
  const extra = [warn && `${warn} warning`, skip && `${skip} skipped`, info && `${info} info`].filter(Boolean).join(', ');
  console.log(`${bad === 0 ? '✓' : '✗'} ${scenario}: ${ok} passed, ${bad} failed${extra ? ` (${extra})` : ''}`);
  for (const c of checks)
    if (c.status === 'FAILURE' || c.status === 'WARNING') failures.push({ scenario, id: c.id, status: c.status, message: c.errorMessage ?? '' });
}
if (failures.length > 0) {
  console.log('\n=== FAILURES AND WARNINGS ===');
  for (const f of failures) console.log(`- ${f.scenario} / ${f.id}${f.status === 'WARNING' ? ' (warning)' : ''}: ${f.message}`);
}
console.log(`\n${passed} passed, ${failed} failed`);
