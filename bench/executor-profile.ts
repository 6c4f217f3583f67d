/**
 * Where an executor's time goes: runs the scenario-10 server (`bench/servers/executors.ts`) under a
 * CPU profile with 32 clients for 6 s, and prints PostgreSQL transactions per lifecycle
 * (`pg_stat_database` of the database `test`) and the profile's self time by package.
 *
 * Usage: node --import tsx bench/executor-profile.ts <embedded|dbos|restate> [trivial|stepped|timed]
 */
import { spawn } from 'node:child_process';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { readdirSync, readFileSync, rmSync, mkdirSync } from 'node:fs';
import { createInterface } from 'node:readline';
import pg from 'pg';
import { LoadClient } from './load-client.js';
import { freePort, startRestateServer } from '../test/helpers/restate-server.js';

const [executor, tool = 'trivial'] = process.argv.slice(2) as [string, string];
const dir = join(tmpdir(), `mcp-tasks-profile-${executor}-${tool}-${process.pid}`);
rmSync(dir, { recursive: true, force: true });
mkdirSync(dir, { recursive: true });
const schema = `prof_${executor}_${process.pid}`;
const restate = executor === 'restate' ? await startRestateServer() : undefined;
const engine =
  executor === 'dbos'
    ? { systemDatabaseUrl: 'postgres://postgres@127.0.0.1:5432/test', systemDatabaseSchemaName: `${schema}_dbos` }
    : restate
      ? { ingressUrl: restate.ingressUrl, adminUrl: restate.adminUrl, port: String(await freePort()) }
      : {};
const child = spawn(
  process.execPath,
  [
    '--cpu-prof',
    `--cpu-prof-dir=${dir}`,
    '--import',
    'tsx',
    fileURLToPath(new URL('servers/executors.ts', import.meta.url)),
    executor,
    `postgres://postgres@127.0.0.1:5432/test?schema=${schema}`,
    JSON.stringify(engine),
  ],
  { stdio: ['ignore', 'pipe', 'inherit'] },
);
const url = await new Promise<string>((resolve) => createInterface({ input: child.stdout! }).once('line', (l) => resolve(l.trim())));
const clients = await Promise.all(
  Array.from({ length: 32 }, async () => {
    const c = new LoadClient(url, '2026');
    await c.init();
    return c;
  }),
);
const db = new pg.Client({ connectionString: 'postgres://postgres@127.0.0.1:5432/test' });
await db.connect();
const xacts = async () => Number((await db.query("SELECT xact_commit + xact_rollback AS n FROM pg_stat_database WHERE datname = 'test'")).rows[0].n);
const x0 = await xacts();
const deadline = Date.now() + 6000;
let n = 0;
await Promise.all(
  clients.map(async (c) => {
    while (Date.now() < deadline) {
      await c.lifecycle(tool);
      n++;
    }
  }),
);
for (const c of clients) c.close();
await new Promise((r) => setTimeout(r, 600)); // pg_stat_database is updated at most every 500 ms
const x1 = await xacts();
await db.query(`DROP SCHEMA IF EXISTS ${schema} CASCADE`);
await db.query(`DROP SCHEMA IF EXISTS ${schema}_dbos CASCADE`);
await db.end();
child.kill('SIGTERM');
await new Promise((r) => child.once('exit', r));
await restate?.stop();
const file = readdirSync(dir).find((f) => f.endsWith('.cpuprofile'))!;
const prof = JSON.parse(readFileSync(`${dir}/${file}`, 'utf8')) as {
  nodes: { id: number; callFrame: { url: string; functionName: string } }[];
  samples: number[];
  timeDeltas: number[];
};
const byId = new Map(prof.nodes.map((node) => [node.id, node]));
const self = new Map<string, number>();
prof.samples.forEach((id, i) => {
  const frame = byId.get(id)!.callFrame;
  const m = /node_modules\/((?:@[^/]+\/)?[^/]+)/.exec(frame.url);
  const key = m
    ? m[1]!
    : frame.url.includes('/src/')
      ? `ours:${frame.url.split('/src/').at(-1)!.split('/')[0]}`
      : frame.url
        ? frame.url.startsWith('node:')
          ? 'node core'
          : 'other'
        : `(${frame.functionName || 'native'})`;
  self.set(key, (self.get(key) ?? 0) + prof.timeDeltas[i]!);
});
const total = [...self.values()].reduce((a, b) => a + b, 0);
console.log(
  `${executor} ${tool}: ${n} lifecycles; PostgreSQL transactions per lifecycle ${((x1 - x0) / n).toFixed(1)}; CPU profile self time by package (top 6):`,
);
for (const [k, v] of [...self].sort((a, b) => b[1] - a[1]).slice(0, 6)) console.log(`  ${k.padEnd(32)} ${((100 * v) / total).toFixed(1)} %`);
