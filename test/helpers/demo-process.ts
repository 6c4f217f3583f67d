import { spawn, type ChildProcess } from 'node:child_process';
import { createInterface } from 'node:readline';

/** A demo server running as a real child process (so tests can SIGKILL it). */
export interface DemoProcess {
  url: string;
  child: ChildProcess;
  /**
   * The pid of the demo's node process, as it logs it (pino's `pid`): `child.pid`, except under a
   * command prefix that forks (`faketime` runs node as its child) — then the pid signals must reach.
   */
  pid: number;
  /** stderr so far (the server's log). */
  log(): string;
  /** SIGKILL — no goodbye, no flush — and wait for the exit. */
  kill(): Promise<void>;
  /** SIGSTOP: the process freezes (timers, sockets, everything) until `cont()`. */
  stop(): void;
  /** SIGCONT: a stopped process runs on where it was. */
  cont(): void;
}

/** Extra options of `startDemo`. */
export interface DemoOptions {
  /** Environment variables added to the child's (`process.env` plus these). */
  env?: Record<string, string>;
  /** A command the node process runs under, e.g. `['faketime', '-f', '+2h']`: spawned as `prefix… node --import tsx …`. */
  prefix?: string[];
}

/** Starts the invoice demo (`examples/invoice/main.ts <args>`, as `npm start` does) and resolves with its MCP URL. */
export async function startDemo(args: string[], options: DemoOptions = {}): Promise<DemoProcess> {
  const command = [...(options.prefix ?? []), process.execPath, '--import', 'tsx', 'examples/invoice/main.ts', '--port', '0', ...args];
  const child = spawn(command[0]!, command.slice(1), {
    stdio: ['ignore', 'pipe', 'pipe'],
    ...(options.env && { env: { ...process.env, ...options.env } }),
  });
  let stderr = '';
  child.stderr!.on('data', (chunk) => (stderr += String(chunk)));
  const url = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`demo did not start in time:\n${stderr}`)), 30_000);
    createInterface({ input: child.stdout! }).once('line', (line) => {
      clearTimeout(timer);
      resolve(line.trim());
    });
    child.once('exit', (code) => reject(new Error(`demo exited with ${code}:\n${stderr}`)));
  });
  const pid = options.prefix?.length ? await loggedPid(() => stderr) : child.pid!;
  const exited = () => child.exitCode !== null || child.signalCode !== null;
  const signal = (name: NodeJS.Signals) => {
    if (exited()) return;
    try {
      process.kill(pid, name);
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'ESRCH') throw error;
    }
  };
  return {
    url,
    child,
    pid,
    log: () => stderr,
    kill: () =>
      new Promise<void>((resolve) => {
        if (exited()) return resolve();
        child.once('exit', () => resolve());
        if (pid !== child.pid) signal('SIGKILL'); // the node process under the prefix; the prefix exits with it
        child.kill('SIGKILL');
      }),
    stop: () => signal('SIGSTOP'),
    cont: () => signal('SIGCONT'),
  };
}

/** The `pid` of the demo's start-up log line (JSON, pino), once it is on stderr. */
async function loggedPid(stderr: () => string): Promise<number> {
  const deadline = Date.now() + 10_000;
  for (;;) {
    const match = /"pid":(\d+)/.exec(stderr());
    if (match) return Number(match[1]);
    if (Date.now() > deadline) throw new Error(`the demo logged no pid:\n${stderr()}`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}
