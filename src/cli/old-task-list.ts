import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join, resolve, win32 } from 'node:path';
import { KnownTasks, OLD_KNOWN_TASKS_DIR } from '../client/known-tasks.js';
import { shellQuote } from '../client/questions.js';

/** The file (in the task list's folder) naming the old task lists the person was already told about. */
const NOTED_FILE = 'noted-old-task-lists.json';

/**
 * Tells the person, once per working folder, that the folder holds a task list from an older
 * mcp-tasks (`./.mcp-tasks/tasks/*.json`, the old default) that the CLI no longer reads, now that
 * the list lives in `dir` (the per-user state folder): how many tasks, the command that moves them
 * (POSIX shell, or `cmd` on Windows), and `--journal .mcp-tasks` to keep using it as it is. Written
 * on stderr; "once" is remembered in `dir/noted-old-task-lists.json` (absolute folder paths). Never
 * throws: a list it cannot read is not mentioned, a note it cannot remember is shown again next time.
 */
export function noteOldTaskList(dir: string, platform: NodeJS.Platform = process.platform): void {
  const old = resolve(OLD_KNOWN_TASKS_DIR);
  if (resolve(dir) === old) return;
  const count = new KnownTasks(old).count();
  if (count === 0) return;
  const notedFile = join(dir, NOTED_FILE);
  let noted: string[] = [];
  try {
    const parsed = JSON.parse(readFileSync(notedFile, 'utf8')) as unknown;
    if (Array.isArray(parsed)) noted = parsed.filter((p): p is string => typeof p === 'string');
  } catch {
    /* not noted yet */
  }
  if (noted.includes(old)) return;
  const move =
    platform === 'win32'
      ? `mkdir "${win32.join(dir, 'tasks')}" & move "${win32.join(old, 'tasks', '*.json')}" "${win32.join(dir, 'tasks')}\\"`
      : `mkdir -p ${shellQuote(join(dir, 'tasks'))} && mv ${shellQuote(join(old, 'tasks'))}/*.json ${shellQuote(join(dir, 'tasks'))}/`;
  process.stderr.write(
    `note: ${old} holds a task list of ${count} task(s) from an older mcp-tasks, which kept it in the working folder. ` +
      `The task list now lives in ${dir}, the same from every folder, and the one here is not read. To move those tasks there:\n` +
      `  ${move}\n` +
      `or keep using it as it is with --journal ${OLD_KNOWN_TASKS_DIR}. (This note is shown once for this folder.)\n`,
  );
  try {
    mkdirSync(dir, { recursive: true });
    writeFileSync(notedFile, JSON.stringify([...noted, old]));
  } catch {
    /* shown again next time */
  }
}
