import type { TaskView } from '@modelcontextprotocol/ext-tasks/client';
import { span } from '../client/prompt.js';

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
 * A status line for a task view: `working: Approved; waiting until 2026-12-01T09:00:00.000Z (in 9
 * days) · 12 s`. ISO 8601 times in the status message get a relative "in …"/"… ago"; the elapsed
 * time since the task was created ends the line.
 */
export function statusText(view: TaskView, now = Date.now()): string {
  const message = view.statusMessage ? `: ${withRelativeTimes(view.statusMessage, now)}` : '';
  const elapsed = view.createdAt ? ` · ${span(now - Date.parse(view.createdAt))}` : '';
  return `${view.status}${message}${elapsed}`;
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
  return `${view.status}\0${view.statusMessage ?? ''}`;
}
