/** An example server (`examples/…/*.ts`) run as a child process, the way its README runs it. */
import { spawn, type ChildProcess } from 'node:child_process';
import { createInterface } from 'node:readline';

/** A running example: the first line it printed (its MCP URL), the process, and its stderr so far (its log). */
export interface ExampleProcess {
  url: string;
  child: ChildProcess;
  log(): string;
}

/**
 * Starts `node --import tsx <file>` with `env` over this process's environment, pushes the child
 * onto `children` (the caller SIGKILLs them at the end), and resolves once the example prints its
 * first stdout line (trimmed: its URL). Rejects with the example's stderr when it exits first.
 */
export async function startExample(file: string, env: NodeJS.ProcessEnv, children: ChildProcess[]): Promise<ExampleProcess> {
  const child = spawn(process.execPath, ['--import', 'tsx', file], { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  children.push(child);
  let stderr = '';
  child.stderr!.on('data', (chunk) => (stderr += String(chunk)));
  const url = await new Promise<string>((resolve, reject) => {
    createInterface({ input: child.stdout! }).once('line', (line) => resolve(line.trim()));
    child.once('exit', (code) => reject(new Error(`${file} exited (${code}) before printing its URL:\n${stderr}`)));
  });
  return { url, child, log: () => stderr };
}
