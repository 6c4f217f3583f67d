import { ENGINE_ACCESS } from '../../core/access.js';
import type { Actor } from '../../core/journal-keys.js';
import { overdueQuestions } from '../../core/question-deadline.js';
import type { TaskRecord } from '../../core/task.js';
import type { TaskStore } from '../../store/task-store.js';
import { html, type Html } from './html.js';

/**
 * The operator console's view of question deadlines (`AskOptions.timeoutMs` / `deadline`,
 * `onTimeout`, `remindEveryMs`): overdue questions listed first on the task list, "overdue" /
 * "escalated" badges, each pending question's deadline and reminders, and who acted ("the
 * deadline"). Rendering takes a `when` formatter (the views' relative `<time>`), so this file needs
 * nothing of `views.ts`.
 */

/** Most `input_required` tasks read to find the overdue ones for the top of the list (newest first). */
const OVERDUE_SCAN = 200;

/** How the console names who acted: `operator <name>`, `the engine`, `the deadline`, or the principal (`anonymous client`). */
export function actorLabel(actor: Actor): string {
  if (actor.role === 'operator') return `operator ${actor.name}`;
  if (actor.role === 'engine') return 'the engine';
  if (actor.role === 'deadline') return 'the deadline';
  return actor.name ?? 'anonymous client';
}

/**
 * The `input_required` tasks with a question whose deadline passed at `now` (ms since the epoch),
 * the earliest deadline first, among the newest `OVERDUE_SCAN` waiting tasks matching `filters`
 * (a tool, an owner: `null` for the anonymous principal). Operator access (`listAll`).
 */
export async function listOverdue(store: TaskStore, filters: { tool?: string; owner?: string | null }, now: number): Promise<TaskRecord[]> {
  const page = await store.listAll({ statuses: ['input_required'], ...filters, limit: OVERDUE_SCAN }, ENGINE_ACCESS);
  const overdue = page.tasks.map((task) => ({ task, first: overdueQuestions(task, now)[0] })).filter((entry) => entry.first !== undefined);
  return overdue.sort((a, b) => a.first!.dueAt - b.first!.dueAt).map((entry) => entry.task);
}

/** The badge of a task with an overdue question (`data-overdue`): `escalated` when one was escalated, else `overdue`; nothing otherwise. */
export function overdueBadge(task: TaskRecord, now: number): Html | string {
  const overdue = overdueQuestions(task, now);
  if (overdue.length === 0) return '';
  const escalated = overdue.some((q) => q.escalated);
  return html` <span class="badge s-failed" data-overdue="${escalated ? 'escalated' : 'overdue'}" title="A question's deadline passed unanswered"
    >${escalated ? 'escalated' : 'overdue'}</span
  >`;
}

/** The "Overdue questions" section over the task list: `tasks` (from `listOverdue`) with their late questions; nothing when none. */
export function overdueSection(tasks: TaskRecord[] | undefined, now: number, base: string, when: (iso: string) => Html): Html | string {
  if (!tasks || tasks.length === 0) return '';
  return html`<section class="overdue" aria-label="Overdue questions" data-overdue-list>
    <h2>Overdue questions</h2>
    <ul>
      ${tasks.map((task) =>
        overdueQuestions(task, now).map(
          (q) =>
            html`<li data-task-id="${task.taskId}">
              <a href="${base}/tasks/${task.taskId}"><strong>${task.request.tool}</strong> <code>${task.taskId.slice(0, 12)}…</code></a>
              <code>${q.key}</code> due ${when(new Date(q.dueAt).toISOString())}${overdueBadge(task, now)}
            </li>`,
        ),
      )}
    </ul>
  </section>`;
}

/** One line on a pending question's card: its deadline (due / passed, what happens then) and its reminders; nothing without. */
export function deadlineNote(task: TaskRecord, key: string, now: number, when: (iso: string) => Html): Html | string {
  const deadline = task.questionDeadlines?.[key];
  if (!deadline) return '';
  const policy =
    deadline.onTimeout === undefined
      ? ''
      : typeof deadline.onTimeout === 'string'
        ? { decline: 'declined', cancel: 'the task is cancelled', escalate: 'escalated to operators' }[deadline.onTimeout]
        : 'answered with its default';
  const passed = deadline.dueAt !== undefined && Date.parse(deadline.dueAt) <= now;
  return html`<p class="deadline" data-deadline="${deadline.escalatedAt ? 'escalated' : passed ? 'overdue' : 'pending'}">
    <small
      >${deadline.dueAt ? html`Deadline ${when(deadline.dueAt)}: ${passed && deadline.escalatedAt ? 'passed, escalated' : `then ${policy}`}.` : ''}
      ${deadline.remindEveryMs ? `Reminded ${deadline.reminders ?? 0} time${deadline.reminders === 1 ? '' : 's'} so far.` : ''}</small
    >
  </p>`;
}
