import { mkdirSync, readdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { SerializedTaskReference } from '@modelcontextprotocol/ext-tasks/client';

/** What the client remembers about one task it started: enough to find and resume it after a crash. */
export interface JournalEntry {
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

/**
 * The client's local task journal: one JSON file per task under `<dir>/tasks/`, written atomically
 * (temp file + rename), so a killed client never leaves a torn entry and concurrent clients never
 * overwrite each other's tasks.
 */
export class ClientJournal {
  private readonly tasksDir: string;

  /** `dir` defaults to `.mcp-tasks` in the working directory. */
  constructor(readonly dir = '.mcp-tasks') {
    this.tasksDir = join(dir, 'tasks');
  }

  /** Every entry, oldest first. */
  list(): JournalEntry[] {
    let files: string[];
    try {
      files = readdirSync(this.tasksDir).filter((f) => f.endsWith('.json'));
    } catch {
      return [];
    }
    const entries: JournalEntry[] = [];
    for (const file of files) {
      try {
        entries.push(JSON.parse(readFileSync(join(this.tasksDir, file), 'utf8')) as JournalEntry);
      } catch {
        /* skip unreadable entries */
      }
    }
    return entries.sort((a, b) => a.startedAt.localeCompare(b.startedAt));
  }

  get(taskId: string): JournalEntry | undefined {
    try {
      return JSON.parse(readFileSync(this.file(taskId), 'utf8')) as JournalEntry;
    } catch {
      return undefined;
    }
  }

  /** Creates or replaces an entry. */
  put(entry: JournalEntry): void {
    mkdirSync(this.tasksDir, { recursive: true });
    const target = this.file(entry.taskId);
    const temp = `${target}.${process.pid}.tmp`;
    writeFileSync(temp, JSON.stringify(entry, null, 2));
    renameSync(temp, target);
  }

  /** Applies `patch` to an existing entry (no-op if unknown). */
  update(taskId: string, patch: Partial<JournalEntry>): JournalEntry | undefined {
    const entry = this.get(taskId);
    if (!entry) return undefined;
    const next = { ...entry, ...patch, updatedAt: new Date().toISOString() };
    this.put(next);
    return next;
  }

  private file(taskId: string): string {
    return join(this.tasksDir, `${Buffer.from(taskId).toString('base64url')}.json`);
  }
}
