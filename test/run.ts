/**
 * `npm test` (after `pretest` has built and typechecked): every `test/*.test.ts`, each file in a
 * child process (`node --import tsx --test <file>`, as `node --test` runs them), `TEST_CONCURRENCY`
 * files at a time (default 6), then one closing line: `N passed, N failed, N skipped`.
 *
 * Files may run side by side: none shares a port (servers listen on port 0), a PostgreSQL schema or
 * a Redis key prefix (random per file), a temp dir (`mkdtemp`), a tmux server (a socket per
 * terminal) or a tmpfs mount (one per test), and none rebuilds `dist/` (test/consumer.test.ts packs
 * a copy of the checkout). Most of them mostly wait (for leases, timers, processes, screens), so
 * six at a time keep 2 cores busy; the long ones start first, so that the run does not end waiting
 * for one that started late.
 *
 * `npm test -- test/a.test.ts test/b.test.ts` runs only the files named.
 */
import { readdirSync } from 'node:fs';
import { join, relative } from 'node:path';
import type { Readable, Transform } from 'node:stream';
import { run } from 'node:test';
import { spec, tap } from 'node:test/reporters';
import { fileURLToPath } from 'node:url';

const TEST_DIR = fileURLToPath(new URL('.', import.meta.url));

/**
 * Files that take ten seconds or more, longest first (seconds each, alone on an idle 2-core
 * machine): started first, in this order; the other files follow in alphabetical order.
 */
const SLOW: [file: string, seconds: number][] = [
  ['terminal.test.ts', 176],
  ['faults-store-outage.test.ts', 111],
  ['faults-clock.test.ts', 78],
  ['cli.test.ts', 71],
  ['faults-pause.test.ts', 69],
  ['executor-dbos.test.ts', 60],
  ['e2e-invoice-dbos.test.ts', 40],
  ['executor-restate.test.ts', 36],
  ['executor-restate-faults.test.ts', 32],
  ['e2e-multi-instance.test.ts', 22],
  ['input-kinds.test.ts', 20],
  ['faults-cancel.test.ts', 18],
  ['e2e-invoice-restate.test.ts', 17],
  ['executor-contract-restate.test.ts', 12],
  ['executor-contract-dbos.test.ts', 12],
  ['store-contract.test.ts', 17],
  ['interop-peers.test.ts', 17],
  ['consumer.test.ts', 17],
  ['examples-serverless.test.ts', 17],
  ['examples-mount.test.ts', 12],
  ['e2e-ledger-locked.test.ts', 16],
  ['console-browser.test.ts', 15],
  ['faults-disk-full.test.ts', 13],
  ['chaos.test.ts', 13],
  ['examples-two-instances.test.ts', 13],
  ['e2e-invoice-crash.test.ts', 12],
  ['lifetime.test.ts', 10],
  ['store-outage.test.ts', 10],
  ['stdio.test.ts', 10],
];

/** A file that has not ended after this long fails (a handle left open would otherwise hold the run forever). */
const FILE_TIMEOUT_MS = 10 * 60_000;

const concurrency = Number(process.env.TEST_CONCURRENCY ?? 6);
const named = process.argv.slice(2).map((path) => relative(TEST_DIR, path));
const rank = (name: string) => {
  const at = SLOW.findIndex(([file]) => file === name);
  return at === -1 ? SLOW.length : at;
};
const files = (named.length > 0 ? named : readdirSync(TEST_DIR).filter((name) => name.endsWith('.test.ts'))).sort().sort((a, b) => rank(a) - rank(b));

const totals = { pass: 0, fail: 0, cancelled: 0, skipped: 0, todo: 0 };
/** Per file: when its process started and ended. */
const spans = new Map<string, { start: number; end?: number }>();

const started = Date.now();
const stream = run({ files: files.map((name) => join(TEST_DIR, name)), concurrency, timeout: FILE_TIMEOUT_MS });
stream.on('test:diagnostic', (data: { nesting: number; message: string }) => {
  const count = data.nesting === 0 && /^(pass|fail|cancelled|skipped|todo) (\d+)$/.exec(data.message);
  if (count) totals[count[1] as keyof typeof totals] += Number(count[2]);
});
// A file's own test (named by its path) is dequeued when its process starts, completed when it ends.
stream.on('test:dequeue', (data: { name: string; file?: string }) => {
  if (data.file && data.name === data.file) spans.set(relative(TEST_DIR, data.file), { start: Date.now() });
});
stream.on('test:complete', (data: { name: string; file?: string }) => {
  const span = data.file && data.name === data.file && spans.get(relative(TEST_DIR, data.file));
  if (span) span.end = Date.now();
});
// Reported as `node --test` does: spec on a terminal, TAP otherwise.
const output = stream.compose((process.stdout.isTTY ? new spec() : tap) as Transform) as Readable;
output.pipe(process.stdout, { end: false });
await new Promise<void>((resolve, reject) => output.on('end', resolve).on('error', reject));

const slowest = [...spans]
  .flatMap(([file, { start, end }]) => (end === undefined ? [] : [[file.replace(/\.test\.ts$/, ''), Math.round((end - start) / 1000)] as const]))
  .sort((a, b) => b[1] - a[1])
  .slice(0, 15);
const failed = totals.fail + totals.cancelled;
console.log(`\nslowest files: ${slowest.map(([file, seconds]) => `${file} ${seconds} s`).join(', ')}`);
console.log(`${files.length} test files, ${concurrency} at a time: ${Math.round((Date.now() - started) / 1000)} s`);
console.log(`${totals.pass} passed, ${failed} failed, ${totals.skipped + totals.todo} skipped`);
process.exitCode = failed > 0 ? 1 : 0;
