import { mkdirSync, readdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { isAbsolute, join, win32 } from 'node:path';
import type { SerializedTaskReference } from '@modelcontextprotocol/ext-tasks/client';

/** What the client remembers about one task it started: enough to find and resume it after a crash. */
export interface KnownTask {
  taskId: string;
  /** MCP endpoint URL the task lives on. */
  url: string;
  tool: string;
  /** ISO 8601. */
  startedAt: string;
  /** ISO 8601, last time this entry changed. */
  updatedAt: string;
  /** The last status the server reported (a transport failure never changes it). */
  status: string;
  statusMessage?: string;
  /** A short summary of the arguments (e.g. `INV-2026-0087 · V-1001 · GBP`), for prompts and listings. */
  summary?: string;
  /** ISO 8601: when the server last answered about this task. */
  seenAt?: string;
  /** Set when the server said it does not know the task (expired, purged): why. */
  gone?: string;
  /** The ext-tasks reference `resumeTask` takes (endpoint, protocol generation, taskId, operation). */
  reference: SerializedTaskReference;
  /** Final outcome, only once the server reported the task terminal: the tool result, or the failure message. */
  outcome?: { status: 'completed' | 'failed' | 'cancelled'; result?: unknown; error?: string };
}

/** Where `defaultKnownTasksDir` looks: the platform, the environment and the home folder (default: this process's). */
export interface StateDirContext {
  /** `process.platform` values: `linux`, `darwin`, `win32`, … */
  platform?: NodeJS.Platform;
  env?: Record<string, string | undefined>;
  home?: string;
}

/**
 * The folder of the client's task list (the `--journal` default), per user rather than per working
 * folder, so `ls` shows the same tasks from anywhere:
 *
 * - `MCP_TASKS_JOURNAL` when set (and not empty), as given;
 * - Linux and other Unixes: `$XDG_STATE_HOME/mcp-tasks` (XDG Base Directory: state that should
 *   persist across restarts but is not worth backing up), `~/.local/state/mcp-tasks` when
 *   `XDG_STATE_HOME` is unset or not an absolute path (the specification says to ignore it then);
 * - macOS: `~/Library/Application Support/mcp-tasks`;
 * - Windows: `%LOCALAPPDATA%\mcp-tasks`, `~\AppData\Local\mcp-tasks` without `LOCALAPPDATA`.
 *
 * Pure: reads only `context` (defaults: `process.platform`, `process.env`, `os.homedir()`); creates nothing.
 */
export function defaultKnownTasksDir(context: StateDirContext = {}): string {
  const { platform = process.platform, env = process.env } = context;
  const home = context.home ?? homedir();
  if (env.MCP_TASKS_JOURNAL) return env.MCP_TASKS_JOURNAL;
  if (platform === 'win32') return win32.join(env.LOCALAPPDATA || win32.join(home, 'AppData', 'Local'), 'mcp-tasks');
  if (platform === 'darwin') return join(home, 'Library', 'Application Support', 'mcp-tasks');
  const xdg = env.XDG_STATE_HOME;
  return join(xdg && isAbsolute(xdg) ? xdg : join(home, '.local', 'state'), 'mcp-tasks');
}

/** Where task lists were kept before they moved to `defaultKnownTasksDir`: `.mcp-tasks` in the working folder. */
export const OLD_KNOWN_TASKS_DIR = '.mcp-tasks';

/**
 * The tasks this client started (what `mcp-tasks ls` lists; not a task's replay journal on the
 * server): one JSON file per task under `<dir>/tasks/`, written atomically (temp file + rename), so
 * a killed client never leaves a torn entry and concurrent clients never overwrite each other's
 * tasks. Reads never throw (a missing folder is an empty list; unreadable files are skipped);
 * writes throw the file system's errors (`EACCES`, `ENOSPC`, …).
 */
export class KnownTasks {
  private readonly tasksDir: string;

  /** `dir` defaults to the per-user state folder (`defaultKnownTasksDir()`). */
  constructor(readonly dir = defaultKnownTasksDir()) {
    this.tasksDir = join(dir, 'tasks');
  }

  /** Every entry, oldest first. */
  list(): KnownTask[] {
    let files: string[];
    try {
      files = readdirSync(this.tasksDir).filter((f) => f.endsWith('.json'));
    } catch {
      return [];
    }
    const entries: KnownTask[] = [];
    for (const file of files) {
      try {
        entries.push(JSON.parse(readFileSync(join(this.tasksDir, file), 'utf8')) as KnownTask);
      } catch {
        /* skip unreadable entries */
      }
    }
    return entries.sort((a, b) => a.startedAt.localeCompare(b.startedAt));
  }

  /** The entry of `taskId`, or undefined when this list does not know it. */
  get(taskId: string): KnownTask | undefined {
    try {
      return JSON.parse(readFileSync(this.file(taskId), 'utf8')) as KnownTask;
    } catch {
      return undefined;
    }
  }

  /** Creates or replaces an entry. */
  put(entry: KnownTask): void {
    mkdirSync(this.tasksDir, { recursive: true });
    const target = this.file(entry.taskId);
    const temp = `${target}.${process.pid}.tmp`;
    writeFileSync(temp, JSON.stringify(entry, null, 2));
    renameSync(temp, target);
  }

  /** Applies `patch` to an existing entry (no-op if unknown). */
  update(taskId: string, patch: Partial<KnownTask>): KnownTask | undefined {
    const entry = this.get(taskId);
    if (!entry) return undefined;
    const next = { ...entry, ...patch, updatedAt: new Date().toISOString() };
    this.put(next);
    return next;
  }

  /** How many entries the folder holds (without reading them). */
  count(): number {
    try {
      return readdirSync(this.tasksDir).filter((f) => f.endsWith('.json')).length;
    } catch {
      return 0;
    }
  }

  private file(taskId: string): string {
    return join(this.tasksDir, `${Buffer.from(taskId).toString('base64url')}.json`);
  }
}
