import { spawn, type ChildProcess } from 'node:child_process';
import { createInterface } from 'node:readline';

/** A demo server running as a real child process (so tests can SIGKILL it). */
export interface DemoProcess {
  url: string;
  child: ChildProcess;
  /** stderr so far (the server's log). */
  log(): string;
  /** SIGKILL — no goodbye, no flush — and wait for the exit. */
  kill(): Promise<void>;
}

/** Starts the invoice demo (`examples/invoice/main.ts <args>`, as `npm start` does) and resolves with its MCP URL. */
export async function startDemo(args: string[]): Promise<DemoProcess> {
  const child = spawn(process.execPath, ['--import', 'tsx', 'examples/invoice/main.ts', '--port', '0', ...args], {
    stdio: ['ignore', 'pipe', 'pipe'],
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
  return {
    url,
    child,
    log: () => stderr,
    kill: () =>
      new Promise<void>((resolve) => {
        if (child.exitCode !== null || child.signalCode !== null) return resolve();
        child.once('exit', () => resolve());
        child.kill('SIGKILL');
      }),
  };
}
