/**
 * HTML building for the operator console: a tagged template that escapes every interpolated value
 * unless it is already `Html` (a fragment built the same way, or `raw` markup the console itself
 * wrote). Arrays are joined; `undefined`, `null` and `false` render as nothing.
 */

/** Markup that is safe to emit as is. */
export class Html {
  constructor(readonly value: string) {}
  toString(): string {
    return this.value;
  }
}

/** Escapes `&<>"'` for text and attribute values. */
export function escapeHtml(value: string): string {
  return value.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

/** Trusted markup (never user or task data). */
export const raw = (markup: string): Html => new Html(markup);

type Part = Html | string | number | boolean | null | undefined | readonly Part[];

function render(part: Part): string {
  if (part === undefined || part === null || part === false) return '';
  if (part instanceof Html) return part.value;
  if (Array.isArray(part)) return part.map(render).join('');
  return escapeHtml(String(part));
}

/** `html\`<p>${text}</p>\``: interpolations are escaped (see `Html`). */
export function html(strings: TemplateStringsArray, ...parts: Part[]): Html {
  let out = strings[0]!;
  for (let i = 0; i < parts.length; i++) out += render(parts[i]!) + strings[i + 1]!;
  return new Html(out);
}
