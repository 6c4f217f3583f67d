/** The Restate executor's service process (`test/helpers/restate-child.ts`) as a real child process, for SIGKILL/SIGSTOP tests. */
import { spawn, type ChildProcess } from 'node:child_process';
import { readFileSync, existsSync } from 'node:fs';
import { createInterface } from 'node:readline';
import type { Effect } from './restate-tools.js';

/** A running service process and its control API. */
export interface ServiceProcess {
  /** Control API base URL. */
  url: string;
  child: ChildProcess;
  log(): string;
  /** POSTs `body` to the control API `path`; resolves with the JSON answer (rejects on a non-200). */
  post(path: string, body: unknown): Promise<any>;
  /** The task as stored. */
  task(taskId: string): Promise<any>;
  kill(): Promise<void>;
  stop(): void;
  cont(): void;
}

/** What the service process needs (see restate-child.ts). */
export interface ServiceOptions {
  /** A SQLite file (`storePath`) or any store URL (`storeUrl`). */
  storePath?: string;
  storeUrl?: string;
  effectsPath?: string;
  ingressUrl: string;
  adminUrl: string;
  endpointPort: number;
  /** The script to run (default test/helpers/restate-child.ts). */
  script?: string;
  /** More environment variables. */
  env?: Record<string, string>;
}

/** Starts the service process and resolves once it has recovered and serves its control API. */
export async function startService(options: ServiceOptions): Promise<ServiceProcess> {
  const child = spawn(process.execPath, ['--import', 'tsx', options.script ?? 'test/helpers/restate-child.ts'], {
    stdio: ['ignore', 'pipe', 'pipe'],
    env: {
      ...process.env,
      ...(options.storePath && { STORE_PATH: options.storePath }),
      ...(options.storeUrl && { STORE_URL: options.storeUrl }),
      ...(options.effectsPath && { EFFECTS_PATH: options.effectsPath }),
      RESTATE_INGRESS: options.ingressUrl,
      RESTATE_ADMIN: options.adminUrl,
      RESTATE_ENDPOINT_PORT: String(options.endpointPort),
      LOG_LEVEL: process.env.LOG_LEVEL ?? 'info',
      ...options.env,
    },
  });
  let stderr = '';
  child.stderr!.on('data', (chunk) => (stderr += String(chunk)));
  const url = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`service did not start in time:\n${stderr}`)), 30_000);
    createInterface({ input: child.stdout! }).once('line', (line) => {
      clearTimeout(timer);
      resolve(line.trim());
    });
    child.once('exit', (code) => reject(new Error(`service exited with ${code}:\n${stderr}`)));
  });
  const exited = () => child.exitCode !== null || child.signalCode !== null;
  const call = async (path: string, init?: RequestInit) => {
    const response = await fetch(`${url}${path}`, init);
    const text = await response.text();
    if (!response.ok) throw new Error(`${path}: ${response.status} ${text}`);
    return JSON.parse(text);
  };
  return {
    url,
    child,
    log: () => stderr,
    post: (path, body) => call(path, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) }),
    task: (taskId) => call(`/task?id=${encodeURIComponent(taskId)}`),
    kill: () =>
      new Promise<void>((resolve) => {
        if (exited()) return resolve();
        child.once('exit', () => resolve());
        child.kill('SIGKILL');
      }),
    stop: () => !exited() && child.kill('SIGSTOP'),
    cont: () => !exited() && child.kill('SIGCONT'),
  };
}

/** The side-effect attempts logged so far (see `registerTestTools`). */
export function readEffects(path: string): Effect[] {
  if (!existsSync(path)) return [];
  return readFileSync(path, 'utf8')
    .split('\n')
    .filter(Boolean)
    .map((line) => JSON.parse(line) as Effect);
}
