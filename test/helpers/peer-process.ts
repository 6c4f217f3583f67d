/**
 * Third-party MCP task servers ("peers") run as child processes for interop tests:
 * - the SDK 1.x fixture (test/fixtures/sdk-v1-task-server.mjs), which prints its URL on stdout;
 * - @modelcontextprotocol/server-everything in its Streamable HTTP mode (`index.js streamableHttp`,
 *   port from `PORT`, listening on every interface), which only logs "listening on port N" on stderr.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { createServer } from 'node:net';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { createInterface } from 'node:readline';

export interface PeerProcess {
  url: string;
  child: ChildProcess;
  /** stdout + stderr so far. */
  log(): string;
  /** SIGKILL and wait for the exit (no-op when already gone). */
  kill(): Promise<void>;
}

const START_TIMEOUT_MS = 30_000;

function wrap(child: ChildProcess, url: string, output: () => string): PeerProcess {
  return {
    url,
    child,
    log: output,
    kill: () =>
      new Promise<void>((resolve) => {
        if (child.exitCode !== null || child.signalCode !== null) return resolve();
        child.once('exit', () => resolve());
        child.kill('SIGKILL');
      }),
  };
}

function collect(child: ChildProcess): () => string {
  let out = '';
  child.stdout?.on('data', (chunk) => (out += String(chunk)));
  child.stderr?.on('data', (chunk) => (out += String(chunk)));
  return () => out;
}

/** Starts the SDK 1.x task server fixture on an ephemeral 127.0.0.1 port. */
export async function startSdkV1Peer(env: Record<string, string> = {}): Promise<PeerProcess> {
  const child = spawn(process.execPath, ['test/fixtures/sdk-v1-task-server.mjs', '--port', '0'], {
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...process.env, ...env },
  });
  const output = collect(child);
  const url = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`sdk-v1 peer did not start in time:\n${output()}`)), START_TIMEOUT_MS);
    createInterface({ input: child.stdout! }).once('line', (line) => {
      clearTimeout(timer);
      resolve(line.trim());
    });
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`sdk-v1 peer exited with ${code}:\n${output()}`));
    });
  });
  return wrap(child, url, output);
}

/** A TCP port free on every interface right now (server-everything cannot be told to use port 0 and report it). */
export async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, () => resolve());
  });
  const { port } = server.address() as { port: number };
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

/** The installed server-everything entry point (its package exports no subpaths, so resolve package.json's directory). */
export function serverEverythingEntry(): string {
  const require = createRequire(import.meta.url);
  return join(dirname(require.resolve('@modelcontextprotocol/server-everything/package.json')), 'dist', 'index.js');
}

/** Starts `server-everything streamableHttp` on a free port; retries on a port lost to a race. */
export async function startEverythingPeer(): Promise<PeerProcess> {
  let lastError: unknown;
  for (let attempt = 0; attempt < 3; attempt++) {
    const port = await freePort();
    const child = spawn(process.execPath, [serverEverythingEntry(), 'streamableHttp'], {
      stdio: ['ignore', 'pipe', 'pipe'],
      env: { ...process.env, PORT: String(port) },
    });
    const output = collect(child);
    try {
      await new Promise<void>((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error(`server-everything did not start in time:\n${output()}`)), START_TIMEOUT_MS);
        const onData = () => {
          if (/listening on port/i.test(output())) {
            clearTimeout(timer);
            child.stderr!.off('data', onData);
            resolve();
          }
        };
        child.stderr!.on('data', onData);
        child.once('exit', (code) => {
          clearTimeout(timer);
          reject(new Error(`server-everything exited with ${code}:\n${output()}`));
        });
      });
      return wrap(child, `http://127.0.0.1:${port}/mcp`, output);
    } catch (error) {
      lastError = error;
      if (child.exitCode === null) child.kill('SIGKILL');
    }
  }
  throw lastError;
}
