import type { TaskView } from '@modelcontextprotocol/ext-tasks/client';
import { span } from '../client/prompt.js';
import { PROGRESS_META_KEY } from '../core/task.js';

/**
 * A short summary of tool arguments for headers and listings: identifying scalar fields (ids,
 * names, numbers, currency, totals) found up to two levels deep, at most four, e.g.
 * `invoiceId INV-2026-0087 · vendorId V-1001 · currency GBP`. Never more than 100 characters.
 */
export function summarizeArguments(args: Record<string, unknown>): string | undefined {
  const picked: string[] = [];
  const others: string[] = [];
  const visit = (value: unknown, depth: number) => {
    if (!value || typeof value !== 'object' || Array.isArray(value) || depth > 2) return;
    for (const [key, field] of Object.entries(value as Record<string, unknown>)) {
      if (typeof field === 'string' || typeof field === 'number') {
        const text = `${key} ${String(field).slice(0, 40)}`;
        (/(id|name|number|no|ref|currency|total|amount|vendor|customer)$/i.test(key) ? picked : others).push(text);
      } else visit(field, depth + 1);
    }
  };
  visit(args, 0);
  const parts = [...picked, ...others].slice(0, 4);
  if (parts.length === 0) return undefined;
  const line = parts.join(' · ');
  return line.length > 100 ? `${line.slice(0, 99)}…` : line;
}

/**
 * A status line for a task view: `working [██████░░░░] 2/3: Paid line 2 … · 12 s`, or `working:
 * Approved; waiting until 2026-12-01T09:00:00.000Z (in 9 days) · 12 s`. The bar (or a counter
 * without `total`) comes from the progress a server publishes in `_meta` (`PROGRESS_META_KEY`); ISO
 * 8601 times in the status message get a relative "in …"/"… ago"; the time since the task was
 * created ends the line.
 */
export function statusText(view: TaskView, now = Date.now()): string {
  const progress = progressOf(view);
  const bar = !progress || view.status !== 'working' ? '' : progress.total ? ` ${progressBar(progress.progress, progress.total)}` : ` (${progress.progress})`;
  const message = view.statusMessage ? `: ${withRelativeTimes(view.statusMessage, now)}` : '';
  const elapsed = view.createdAt ? ` · ${span(now - Date.parse(view.createdAt))}` : '';
  return `${view.status}${bar}${message}${elapsed}`;
}

/** `[██████░░░░] 2/3`: ten cells, filled in proportion (clamped to 0…total). */
export function progressBar(progress: number, total: number): string {
  const filled = Math.round(10 * Math.min(1, Math.max(0, progress / total)));
  return `[${'█'.repeat(filled)}${'░'.repeat(10 - filled)}] ${progress}/${total}`;
}

function progressOf(view: TaskView): { progress: number; total?: number } | undefined {
  const value = (view.raw._meta as Record<string, unknown> | undefined)?.[PROGRESS_META_KEY] as { progress?: unknown; total?: unknown } | undefined;
  if (typeof value?.progress !== 'number') return undefined;
  return { progress: value.progress, ...(typeof value.total === 'number' && value.total > 0 && { total: value.total }) };
}

/** Appends `(in 9 days)` / `(3 min ago)` after each ISO 8601 date-time in `text`. */
export function withRelativeTimes(text: string, now = Date.now()): string {
  return text.replace(/\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(?::\d{2}(?:\.\d+)?)?(?:Z|[+-]\d{2}:\d{2})/g, (iso) => {
    const at = Date.parse(iso);
    if (Number.isNaN(at)) return iso;
    return at >= now ? `${iso} (in ${span(at - now)})` : `${iso} (${span(now - at)} ago)`;
  });
}

/** The part of a status that changes only when something happened (not the elapsed time): for deciding whether to print. */
export function statusKey(view: TaskView): string {
  return `${view.status}\0${view.statusMessage ?? ''}\0${JSON.stringify(progressOf(view) ?? null)}`;
}
