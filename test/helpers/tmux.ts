/**
 * A real terminal for tests: a detached tmux session (its own server, `tmux -L <socket>`) running
 * one command, driven with real keystrokes (`send-keys`) and read back as a person sees it
 * (`capture-pane`). The command's exit code is echoed after it (`EXIT=<n>`) and the shell then
 * stays, so the last screen can still be read.
 */
import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { rmSync } from 'node:fs';

export interface TerminalOptions {
  /** Working directory of the command. */
  cwd: string;
  /** Extra environment for the command (`undefined` removes a variable). */
  env?: Record<string, string | undefined>;
  /** Terminal size (default 120 × 40). */
  width?: number;
  height?: number;
}

/** Quotes one argument for a POSIX shell. */
export function shellQuote(arg: string): string {
  return /^[A-Za-z0-9_@%+=:,./-]+$/.test(arg) ? arg : `'${arg.replace(/'/g, `'\\''`)}'`;
}

/** The one session (and its one pane) on each terminal's own tmux server. */
const SESSION = 'main';
const TARGET = `=${SESSION}:`;
const EXIT_LINE = /^EXIT=(\d+)$/m;

/** One tmux session (on its own tmux server) running one command. */
export class Terminal {
  private closed = false;
  /** The server's socket file (tmux leaves it behind after kill-server). */
  private socketPath: string | undefined;

  private constructor(
    /** The `-L` socket name of this terminal's tmux server. */
    readonly socket: string,
    private readonly env: NodeJS.ProcessEnv,
  ) {}

  /** Starts `argv` (run through `sh`, then `echo EXIT=$?`) in a new detached tmux session. */
  static start(argv: string[], options: TerminalOptions): Terminal {
    const socket = `mcp-tasks-test-${process.pid}-${randomBytes(6).toString('hex')}`;
    const env: NodeJS.ProcessEnv = { ...process.env, ...options.env };
    delete env.TMUX; // never talk to a tmux the tests themselves may run in
    delete env.TMUX_PANE;
    for (const [key, value] of Object.entries(options.env ?? {})) if (value === undefined) delete env[key];
    const terminal = new Terminal(socket, env);
    // The shell survives a Ctrl-C meant for the command (a trap, not an ignore: the command gets the
    // default disposition) and stays after it, so the last screen and the exit code stay readable.
    const command = `trap : INT; ${argv.map(shellQuote).join(' ')}; echo EXIT=$?; exec sleep 3600`;
    terminal.tmux([
      'new-session',
      '-d',
      '-s',
      SESSION,
      '-x',
      String(options.width ?? 120),
      '-y',
      String(options.height ?? 40),
      '-c',
      options.cwd,
      `exec /bin/sh -c ${shellQuote(command)}`,
    ]);
    terminal.socketPath = terminal.tmux(['display-message', '-p', '-t', TARGET, '#{socket_path}']).trim() || undefined;
    return terminal;
  }

  /** Runs a tmux command against this terminal's server; throws with tmux's stderr when it fails. */
  tmux(args: string[]): string {
    const res = spawnSync('tmux', ['-L', this.socket, '-f', '/dev/null', ...args], { encoding: 'utf8', env: this.env, timeout: 10_000 });
    if (res.error) throw res.error;
    if (res.status !== 0) throw new Error(`tmux ${args.join(' ')} failed (${res.status}): ${res.stderr}`);
    return res.stdout;
  }

  /** Presses keys, as tmux names them: `Enter`, `Down`, `Up`, `C-c`, `y`, … (each one a key press). */
  keys(...keys: string[]): void {
    for (const key of keys) this.tmux(['send-keys', '-t', TARGET, key]);
  }

  /** Types `text` literally (no key-name lookup). */
  type(text: string): void {
    this.tmux(['send-keys', '-t', TARGET, '-l', text]);
  }

  /**
   * What the terminal shows, scroll-back included, with wrapped lines joined (so a long line is one
   * line) and trailing blank lines dropped. Empty once the terminal is closed.
   */
  screen(): string {
    if (this.closed) return '';
    return this.tmux(['capture-pane', '-p', '-J', '-S', '-', '-t', TARGET]).replace(/\s+$/, '');
  }

  /** Whether the tmux session (the terminal window) still exists. */
  alive(): boolean {
    if (this.closed) return false;
    const res = spawnSync('tmux', ['-L', this.socket, '-f', '/dev/null', 'has-session'], { env: this.env, timeout: 10_000 });
    return res.status === 0;
  }

  /** Polls the screen until `pattern` matches it; rejects after `timeoutMs` with the last screen. */
  async waitFor(pattern: RegExp, timeoutMs = 20_000): Promise<RegExpMatchArray> {
    const deadline = Date.now() + timeoutMs;
    let last = '';
    for (;;) {
      last = this.screen();
      const match = pattern.exec(last);
      if (match) return match;
      if (Date.now() >= deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${pattern} on the terminal screen:\n${last}`);
      await sleep(50);
    }
  }

  /**
   * Polls until the screen has not changed for `quietMs` and `expected` (a pattern, or a test of the
   * whole screen; if given) holds, and returns that screen: for a prompt that has finished drawing
   * (and whatever replaces it quickly).
   */
  async settled(expected?: RegExp | ((screen: string) => boolean), quietMs = 800, timeoutMs = 20_000): Promise<string> {
    const holds = (screen: string) => !expected || (typeof expected === 'function' ? expected(screen) : expected.test(screen));
    const deadline = Date.now() + timeoutMs;
    let last = this.screen();
    let since = Date.now();
    for (;;) {
      await sleep(50);
      const now = this.screen();
      if (now !== last) {
        last = now;
        since = Date.now();
      } else if (Date.now() - since >= quietMs && holds(now)) {
        return now;
      }
      if (Date.now() >= deadline)
        throw new Error(`timed out after ${timeoutMs} ms waiting for a settled screen${expected ? ` matching ${expected}` : ''}:\n${last}`);
    }
  }

  /** Waits for the command to end and returns its exit code (from the `EXIT=<n>` line). */
  async exitCode(timeoutMs = 30_000): Promise<number> {
    return Number((await this.waitFor(EXIT_LINE, timeoutMs))[1]);
  }

  /** The exit code if the command has ended, else `undefined`. */
  exited(): number | undefined {
    const match = EXIT_LINE.exec(this.screen());
    return match ? Number(match[1]) : undefined;
  }

  /** The pids of the processes running in the pane (the shell and its children, e.g. the CLI). */
  processes(): number[] {
    const shell = Number(this.tmux(['display-message', '-p', '-t', TARGET, '#{pane_pid}']).trim());
    const ps = spawnSync('ps', ['-e', '-o', 'pid=,ppid='], { encoding: 'utf8' });
    const children = new Map<number, number[]>();
    for (const line of ps.stdout.split('\n')) {
      const [pid, ppid] = line.trim().split(/\s+/).map(Number);
      if (!pid || ppid === undefined) continue;
      children.set(ppid, [...(children.get(ppid) ?? []), pid]);
    }
    const all: number[] = [];
    const visit = (pid: number) => {
      all.push(pid);
      for (const child of children.get(pid) ?? []) visit(child);
    };
    visit(shell);
    return all;
  }

  /** Closes the terminal window under the running command (kill-pane: the processes get SIGHUP, as when a person closes it). */
  closeWindow(): void {
    this.tmux(['kill-pane', '-t', TARGET]);
  }

  /** Ends this terminal's tmux server and everything in it. Idempotent; never throws. */
  kill(): void {
    if (this.closed) return;
    this.closed = true;
    spawnSync('tmux', ['-L', this.socket, '-f', '/dev/null', 'kill-server'], { env: this.env, timeout: 10_000 });
    if (this.socketPath) rmSync(this.socketPath, { force: true });
  }
}

/** Whether process `pid` exists. */
export function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}

export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
