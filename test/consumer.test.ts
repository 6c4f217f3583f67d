/**
 * The package as a user gets it: `npm pack` (which cleans and builds `dist/`) in a copy of this
 * checkout (its sources and package files, node_modules linked: the other test files, which may run
 * at the same time, read this checkout's `dist/` and must not see it deleted), then a fresh project
 * in a temporary directory (`"type": "module"`) that runs `npm install <tarball>` plus what a
 * TypeScript user adds themselves: `zod` (tool input schemas are zod objects; mcp-tasks does not
 * re-export zod), `typescript` and `@types/node` (ranges taken from this package.json, so the npm
 * cache serves them). Neither `pg` nor `ioredis` is installed: they are optional peer dependencies.
 *
 * In that project a ~10-line server on `createTaskServer` ('mcp-tasks', `memory:` store, one task
 * tool), `examples/hello-task/server.ts` copied with its import of '../../src/index.js' rewritten to
 * 'mcp-tasks' (the edit its comment tells users to make; its default SQLite store, so the installed
 * better-sqlite3 is used), and a client on `connectTaskClient` ('mcp-tasks/client') are compiled with
 * `tsc` (strict, NodeNext, so the `types` conditions of `exports` are exercised) and run as child
 * processes: a server listens on port 0 and prints its URL, the client calls a tool as a task in each
 * protocol version, answers the question it asks (hello-task's, after its durable timer) and prints
 * the outcome. The installed package is exactly the tarball's files: installing it ran no build and
 * no install script of mcp-tasks: not even `prepare`, which npm 11 lists as an install script for consumers
 * to approve (`npm pack` builds `dist/` in `prepack`; a clone runs its sources through `bin/mcp-tasks.js`).
 *
 * Cost: the install would compile better-sqlite3 (a dependency) from source, as it does wherever
 * its prebuilt binary cannot be downloaded (no network but the npm registry here), about 80 s. It
 * takes a prebuilt binary instead, as it does for users with network access: the one this
 * checkout's own install built for the same version, offered to better-sqlite3's `prebuild-install`
 * as a local prebuild (when the versions differ, it compiles as before). The rest takes about 20 s
 * (measured on a loaded 2-core machine: pack 7–12 s, install 6–8 s, tsc 9–12 s; the hello-task
 * example ~4 s, its two eras side by side: a 1 s timer, then the client's polls at the server's
 * suggested 1 s interval).
 * Needs the npm registry (or a warm npm cache: installs run with `--prefer-offline`).
 */
import assert from 'node:assert/strict';
import { execFile, execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { cpSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, realpathSync, rmSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { after, before, describe, it } from 'node:test';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const pkg = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as {
  name: string;
  version: string;
  dependencies: Record<string, string>;
  devDependencies: Record<string, string>;
};

/**
 * The environment for child `npm` and `node` processes: this one's, less what `npm test` sets to
 * describe *this* project (npm_package_*, npm_lifecycle_*, the local prefix), so the child npm works
 * on the temporary project as if a user typed the command there; and no NODE_OPTIONS (no tsx).
 */
function childEnv(): NodeJS.ProcessEnv {
  const env = { ...process.env };
  for (const key of Object.keys(env))
    if (/^npm_(package|lifecycle)_/.test(key) || ['npm_command', 'npm_config_local_prefix', 'INIT_CWD', 'NODE_OPTIONS'].includes(key)) delete env[key];
  return env;
}

/** Runs a command to its end; resolves with its stdout, rejects with its output on a non-zero exit. */
function run(command: string, args: string[], cwd: string, timeoutMs = 5 * 60_000, env: NodeJS.ProcessEnv = {}): Promise<{ stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    execFile(command, args, { cwd, env: { ...childEnv(), ...env }, timeout: timeoutMs, maxBuffer: 64 * 1024 * 1024 }, (error, stdout, stderr) => {
      if (error) reject(new Error(`${command} ${args.join(' ')} failed: ${error.message}\n--- stdout\n${stdout}\n--- stderr\n${stderr}`));
      else resolve({ stdout, stderr });
    });
  });
}

/** What the user writes: a task server in ~10 lines. */
const SERVER_TS = `import * as z from 'zod';
import { createTaskServer } from 'mcp-tasks';

const server = createTaskServer({ store: 'memory:' });
server.registerTool(
  'greet',
  { description: 'Greets someone, durably', inputSchema: z.object({ name: z.string() }), taskSupport: 'optional' },
  async ({ name }, ctx) => {
    const greeting = await ctx.step('compose', () => \`Hello, \${name}!\`);
    return { content: [{ type: 'text', text: greeting }] };
  },
);
const http = await server.listen({ port: 0 });
console.log(http.url);
server.closeOnSignals();
`;

/**
 * …and a client that calls a tool as a task (`client.js <url> <version> <tool> <args JSON> [<answer JSON>]`),
 * answers its questions with the answer given (accept; decline without one) and prints what it was
 * asked and the outcome as JSON.
 */
const CLIENT_TS = `import { connectTaskClient } from 'mcp-tasks/client';

const [url, version, tool, args, answer] = process.argv.slice(2) as [string, '2025-11-25' | '2026-07-28', string, string, string | undefined];
const asked: string[] = [];
const tc = await connectTaskClient(url, {
  protocolVersion: version,
  answer: async (question) => {
    asked.push(question.message);
    return answer ? { action: 'accept', content: JSON.parse(answer) } : { action: 'decline' };
  },
});
const execution = await tc.session.callTool(tool, JSON.parse(args), { task: { preference: 'require' } });
const { outcome } = await execution.settle();
console.log(JSON.stringify({ version: tc.protocolVersion, kind: execution.kind, asked, outcome }));
await tc.close();
`;

/** `examples/hello-task/server.ts` as a user copies it into their project: the import edited as its comment says. */
function helloTask(): string {
  const source = readFileSync(join(ROOT, 'examples', 'hello-task', 'server.ts'), 'utf8');
  const edited = source.replace("from '../../src/index.js'", "from 'mcp-tasks'");
  assert.notEqual(edited, source, "examples/hello-task/server.ts imports '../../src/index.js'");
  assert.doesNotMatch(edited, /from '\.\.?\//, 'no other relative import is left');
  return edited;
}

/**
 * Packs the better-sqlite3 binary of this checkout's node_modules as a prebuild (the archive
 * `prebuild-install` would download: `build/Release/better_sqlite3.node` in
 * `<name>-v<version>-node-v<abi>-<platform>-<arch>.tar.gz`) into `dir`; returns the environment
 * that makes `prebuild-install` look there first.
 */
function localPrebuild(dir: string): NodeJS.ProcessEnv {
  const module = realpathSync(join(ROOT, 'node_modules', 'better-sqlite3'));
  const { name, version } = JSON.parse(readFileSync(join(module, 'package.json'), 'utf8')) as { name: string; version: string };
  mkdirSync(dir, { recursive: true });
  const archive = join(dir, `${name}-v${version}-node-v${process.versions.modules}-${process.platform}-${process.arch}.tar.gz`);
  execFileSync('tar', ['-czf', archive, '-C', module, 'build/Release/better_sqlite3.node']);
  return { npm_config_better_sqlite3_local_prebuilds: dir };
}

/** The user's tsconfig: what `tsc --init` suggests for a Node ESM project. */
const TSCONFIG = {
  compilerOptions: { target: 'ES2022', module: 'NodeNext', moduleResolution: 'NodeNext', strict: true, outDir: 'dist', types: ['node'] },
  include: ['server.ts', 'client.ts', 'hello-task.ts'],
};

describe('consumer: npm pack → npm install in a fresh project → a server and a client on the public API', { timeout: 15 * 60_000 }, () => {
  const dir = mkdtempSync(join(tmpdir(), 'mcp-tasks-consumer-'));
  const checkout = join(dir, 'checkout');
  const app = join(dir, 'app');
  let packed: string[] = [];
  const servers: ChildProcess[] = [];

  /** Starts `node <script>` in the project; resolves with the URL it prints and its log so far. */
  async function startServer(script: string): Promise<{ url: string; child: ChildProcess; log: () => string }> {
    const child = spawn(process.execPath, [script], { cwd: app, env: { ...childEnv(), PORT: '0' }, stdio: ['ignore', 'pipe', 'pipe'] });
    servers.push(child);
    let log = '';
    child.stderr!.on('data', (chunk) => (log += chunk));
    const url = await new Promise<string>((resolve, reject) => {
      let out = '';
      child.stdout!.on('data', (chunk) => {
        out += chunk;
        if (out.includes('\n')) resolve(out.split('\n')[0]!.trim());
      });
      child.once('exit', (code) => reject(new Error(`${script} exited (${code}) before listening:\n${log}`)));
    });
    assert.match(url, /^http:\/\/127\.0\.0\.1:\d+\/mcp$/);
    return { url, child, log: () => log };
  }

  /** Runs the project's client (see CLIENT_TS) once; resolves with what it printed. */
  async function callAsTask(url: string, version: string, tool: string, args: object, answer?: object) {
    const { stdout } = await run(
      process.execPath,
      ['dist/client.js', url, version, tool, JSON.stringify(args), ...(answer ? [JSON.stringify(answer)] : [])],
      app,
      60_000,
    );
    return JSON.parse(stdout) as {
      version: string;
      kind: string;
      asked: string[];
      outcome: { status: string; result?: { content: { type: string; text: string }[] } };
    };
  }

  /** SIGTERM: the server closes and exits 0. */
  async function stopServer(server: { child: ChildProcess; log: () => string }): Promise<void> {
    const exited = new Promise<number | null>((resolve) => server.child.once('exit', resolve));
    server.child.kill('SIGTERM');
    assert.equal(await exited, 0, server.log());
  }

  before(async () => {
    const started = Date.now();
    // Everything but what is installed, built or kept locally (.gitignore's folders) and git's own.
    const local = new Set(['node_modules', 'dist', '.git', '.tools', '.mcp-tasks'].map((name) => join(ROOT, name)));
    cpSync(ROOT, checkout, { recursive: true, filter: (source) => !local.has(source) });
    symlinkSync(realpathSync(join(ROOT, 'node_modules')), join(checkout, 'node_modules'), 'dir');
    const pack = await run('npm', ['pack', '--json', '--pack-destination', dir], checkout);
    const [info] = JSON.parse(pack.stdout) as { filename: string; files: { path: string }[] }[];
    packed = info!.files.map((file) => file.path);
    const packedMs = Date.now() - started;

    mkdirSync(app);
    writeFileSync(
      join(app, 'package.json'),
      JSON.stringify({ name: 'consumer', version: '1.0.0', private: true, type: 'module', allowScripts: { 'better-sqlite3': true } }, null, 2),
    );
    await run(
      'npm',
      [
        'install',
        '--no-audit',
        '--no-fund',
        '--prefer-offline',
        join(dir, info!.filename),
        `zod@${pkg.dependencies.zod}`,
        `typescript@${pkg.devDependencies.typescript}`,
        `@types/node@${pkg.devDependencies['@types/node']}`,
      ],
      app,
      10 * 60_000,
      localPrebuild(join(dir, 'prebuilds')),
    );
    console.error(`consumer project: npm pack ${(packedMs / 1000).toFixed(1)} s, npm install ${((Date.now() - started - packedMs) / 1000).toFixed(1)} s`);
  });

  after(() => {
    for (const child of servers) child.kill('SIGKILL');
    rmSync(dir, { recursive: true, force: true });
  });

  it('the tarball holds only what a user needs: package.json, README.md, CHANGELOG.md, LICENSE, the command and the built .js / .d.ts', () => {
    const unexpected = packed.filter((path) => !/^(package\.json|README\.md|CHANGELOG\.md|LICENSE|bin\/mcp-tasks\.js|dist\/src\/.+\.(js|d\.ts))$/.test(path));
    assert.deepEqual(unexpected, []);
    for (const path of ['LICENSE', 'CHANGELOG.md', 'dist/src/index.js', 'dist/src/index.d.ts', 'dist/src/client/index.js', 'dist/src/cli/main.js'])
      assert.ok(packed.includes(path), `${path} is missing from the tarball`);
    // `npm pack` cleaned and rebuilt the checkout's dist/: `npx mcp-tasks` must still run there.
    assert.ok(statSync(join(checkout, 'dist/src/cli/main.js')).mode & 0o100, "the checkout's CLI is executable after the build");
  });

  it('installs the mcp-tasks command, which runs the built CLI (no sources, no tsx in a consumer project)', () => {
    const version = execFileSync(join(app, 'node_modules', '.bin', 'mcp-tasks'), ['--version'], { cwd: app, encoding: 'utf8', env: childEnv() });
    assert.equal(version.trim(), pkg.version);
  });

  it("installs without the optional peer dependencies pg, ioredis and the engines' SDKs", () => {
    assert.ok(existsSync(join(app, 'node_modules', pkg.name, 'package.json')));
    assert.equal(existsSync(join(app, 'node_modules', 'pg')), false);
    assert.equal(existsSync(join(app, 'node_modules', 'ioredis')), false);
    assert.equal(existsSync(join(app, 'node_modules', '@dbos-inc', 'dbos-sdk')), false);
    assert.equal(existsSync(join(app, 'node_modules', '@restatedev', 'restate-sdk')), false);
  });

  it('the TypeScript server and client compile against the installed declarations (strict, NodeNext)', async () => {
    writeFileSync(join(app, 'server.ts'), SERVER_TS);
    writeFileSync(join(app, 'client.ts'), CLIENT_TS);
    writeFileSync(join(app, 'hello-task.ts'), helloTask());
    writeFileSync(join(app, 'tsconfig.json'), JSON.stringify(TSCONFIG, null, 2));
    // Library checking stays on, so mistakes in mcp-tasks' own .d.ts files (e.g. a type import of a
    // package users do not have) are reported; other packages' declaration errors are not ours.
    const tsc = await run(process.execPath, ['node_modules/typescript/bin/tsc', '-p', '.'], app).catch((error: Error) => ({
      stdout: error.message,
      stderr: '',
    }));
    const ours = tsc.stdout
      .split('\n')
      .filter((line) => /^\S+\(\d+,\d+\): error/.test(line))
      .filter((line) => !line.startsWith('node_modules/') || line.startsWith(`node_modules/${pkg.name}/`));
    assert.deepEqual(ours, []);
    for (const file of ['server.js', 'client.js', 'hello-task.js']) assert.ok(existsSync(join(app, 'dist', file)), `${file}: ${tsc.stdout}`);
  });

  it('the server answers a task call from connectTaskClient in both eras, then shuts down on SIGTERM', async () => {
    const server = await startServer('dist/server.js');
    for (const version of ['2025-11-25', '2026-07-28'] as const) {
      const printed = await callAsTask(server.url, version, 'greet', { name: 'Ada' });
      assert.equal(printed.version, version);
      assert.equal(printed.kind, 'task');
      assert.equal(printed.outcome.status, 'completed', JSON.stringify(printed));
      assert.deepEqual(printed.outcome.result?.content, [{ type: 'text', text: 'Hello, Ada!' }]);
    }
    await stopServer(server);
    assert.match(server.log(), /"msg":"task completed"/);
  });

  it('examples/hello-task runs from the install: greet_later asks after its durable timer, is answered, says hello (both eras)', async () => {
    const server = await startServer('dist/hello-task.js');
    const versions = ['2025-11-25', '2026-07-28'] as const;
    // Side by side: each waits out the example's 1 s timer.
    const runs = await Promise.all(versions.map((version) => callAsTask(server.url, version, 'greet_later', { name: 'Ada' }, { send: true })));
    for (const [i, printed] of runs.entries()) {
      assert.equal(printed.version, versions[i]);
      assert.equal(printed.kind, 'task');
      assert.deepEqual(printed.asked, ['Send "Hello, Ada!"?']);
      assert.equal(printed.outcome.status, 'completed', JSON.stringify(printed));
      assert.deepEqual(printed.outcome.result?.content, [{ type: 'text', text: 'Hello, Ada!' }]);
    }
    await stopServer(server);
    assert.ok(existsSync(join(app, '.mcp-tasks', 'hello.db')), "the example's default store: SQLite in the project's .mcp-tasks/");
  });

  it('installing the tarball ran no script of mcp-tasks: no install-time scripts (prepare included), and the installed files are exactly the packed ones (dist/ not rebuilt)', () => {
    const installed = join(app, 'node_modules', pkg.name);
    const { scripts = {} } = JSON.parse(readFileSync(join(installed, 'package.json'), 'utf8')) as { scripts?: Record<string, string> };
    assert.deepEqual(
      ['preinstall', 'install', 'postinstall', 'prepare'].filter((name) => name in scripts),
      [],
    );
    assert.equal(existsSync(join(installed, 'binding.gyp')), false, 'no binding.gyp (npm would run node-gyp rebuild)');
    // A build (tsc, with source maps) would have added .js.map files.
    const files = readdirSync(installed, { recursive: true, encoding: 'utf8' })
      .filter((path) => !path.startsWith('node_modules') && statSync(join(installed, path)).isFile()) // node_modules/: dependencies npm nested there
      .sort();
    assert.deepEqual(files, [...packed].sort());
  });

  it('store drivers: sqlite loads from the install; postgres and redis name the missing peer dependency (no credentials in the message)', async () => {
    const script = `
      import { openStore } from 'mcp-tasks';
      for (const url of ['postgres://app:hunter2@127.0.0.1:1/db', 'redis://:hunter2@127.0.0.1:1', 'sqlite:./data/tasks.db']) {
        try { await openStore(url).close(); console.log('opened ' + url.split(':')[0]); } catch (error) { console.log(error.message); }
      }`;
    const { stdout } = await run(process.execPath, ['--input-type=module', '-e', script], app);
    assert.deepEqual(stdout.trim().split('\n'), [
      "A postgres:// store (PostgresBackend) needs 'pg' (an optional peer dependency of mcp-tasks), which is not installed: npm install pg",
      "A redis:// store (RedisBackend) needs 'ioredis' (an optional peer dependency of mcp-tasks), which is not installed: npm install ioredis",
      'opened sqlite',
    ]);
  });

  it('the mcp-tasks bin runs', async () => {
    const { stdout } = await run(join(app, 'node_modules', '.bin', 'mcp-tasks'), ['--version'], app);
    assert.equal(stdout.trim(), pkg.version);
  });
});
