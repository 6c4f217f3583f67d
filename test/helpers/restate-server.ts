/**
 * A real `restate-server` (the `@restatedev/restate-server` npm package's binary) for tests: started
 * on loopback in a temp dir, on free ports, and stopped (SIGKILL, then the dir removed) by the test.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { createRequire } from 'node:module';
import { createServer } from 'node:net';
import { arch, platform, tmpdir } from 'node:os';
import { join } from 'node:path';
import { until } from './until.js';

/** A running restate-server. */
export interface RestateServer {
  /** Ingress base URL, e.g. `http://127.0.0.1:41234`. */
  ingressUrl: string;
  /** Admin API base URL. */
  adminUrl: string;
  /** Its base dir (a temp dir, removed by `stop`). */
  dir: string;
  child: ChildProcess;
  /** stdout + stderr so far. */
  log(): string;
  /** SIGKILLs the server, waits for its exit and removes its dir. */
  stop(): Promise<void>;
}

/** The platform binary the `restate-server` npm package runs (spawned directly, so a SIGKILL reaches it). */
export function restateServerBinary(): string {
  return createRequire(import.meta.url).resolve(`@restatedev/restate-server-${platform()}-${arch()}/bin/restate-server`);
}

/** A TCP port free on 127.0.0.1 right now (the OS's pick). */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as { port: number };
      server.close(() => resolve(port));
    });
  });
}

/**
 * Starts restate-server on 127.0.0.1 (TCP only; ingress, admin and node-to-node ports picked free)
 * with its data in a new temp dir, and resolves once its admin API answers `/health` and its
 * ingress `/restate/health` (within `timeoutMs`, default 30 000 ms). Telemetry off, 4 partitions,
 * small RocksDB memory: fit for a 2-core test machine.
 */
export async function startRestateServer(options: { timeoutMs?: number } = {}): Promise<RestateServer> {
  const dir = mkdtempSync(join(tmpdir(), 'mcp-tasks-restate-'));
  const [ingress, admin, node] = [await freePort(), await freePort(), await freePort()];
  const child = spawn(restateServerBinary(), ['--listen-mode', 'tcp', '--base-dir', dir, '--no-logo'], {
    stdio: ['ignore', 'pipe', 'pipe'],
    env: {
      ...process.env,
      RESTATE_BIND_IP: '127.0.0.1',
      RESTATE_ADVERTISED_HOST: '127.0.0.1',
      RESTATE_INGRESS__BIND_ADDRESS: `127.0.0.1:${ingress}`,
      RESTATE_ADMIN__BIND_ADDRESS: `127.0.0.1:${admin}`,
      RESTATE_BIND_ADDRESS: `127.0.0.1:${node}`,
      RESTATE_DISABLE_TELEMETRY: 'true',
      RESTATE_DEFAULT_NUM_PARTITIONS: '4',
      RESTATE_ROCKSDB_TOTAL_MEMORY_SIZE: '256MiB',
      RESTATE_LOG_FORMAT: 'compact',
      RESTATE_LOG_DISABLE_ANSI_CODES: 'true',
    },
  });
  let output = '';
  child.stdout!.on('data', (chunk) => (output += String(chunk)));
  child.stderr!.on('data', (chunk) => (output += String(chunk)));
  const exited = () => child.exitCode !== null || child.signalCode !== null;
  const server: RestateServer = {
    ingressUrl: `http://127.0.0.1:${ingress}`,
    adminUrl: `http://127.0.0.1:${admin}`,
    dir,
    child,
    log: () => output,
    stop: async () => {
      if (!exited()) {
        const gone = new Promise((resolve) => child.once('exit', resolve));
        child.kill('SIGKILL');
        await gone;
      }
      rmSync(dir, { recursive: true, force: true });
    },
  };
  try {
    await until(
      async () => {
        if (exited()) throw new Error(`restate-server exited (${child.exitCode ?? child.signalCode}):\n${output}`);
        const ok = async (url: string) => (await fetch(url).catch(() => undefined))?.ok === true;
        return (await ok(`${server.adminUrl}/health`)) && (await ok(`${server.ingressUrl}/restate/health`));
      },
      { timeoutMs: options.timeoutMs ?? 30_000, intervalMs: 100, what: () => `restate-server to be healthy:\n${output}` },
    );
  } catch (error) {
    await server.stop();
    throw error;
  }
  return server;
}
