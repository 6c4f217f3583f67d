import type { JsonObject } from '../../core/json.js';
import { html, type Html } from './html.js';

/**
 * Form-mode elicitation in the operator console: a question's `requestedSchema` (MCP 2025-11-25
 * "Elicitation", "Requested Schema": a flat object of primitive properties — string, optionally
 * with `enum`/`oneOf` titles or a `format`; number/integer with bounds; boolean; arrays of enum
 * strings) rendered as an HTML form, and the submitted form read back into `content`. The console
 * checks nothing itself: the answer goes through the runtime, which validates it against the schema
 * exactly as for a client (-32602 problems are shown beside the form).
 */

interface Field {
  name: string;
  title: string;
  description?: string;
  required: boolean;
  type: 'string' | 'number' | 'integer' | 'boolean' | 'multi';
  options?: { value: string; title: string }[];
  format?: string;
  minimum?: number;
  maximum?: number;
  maxLength?: number;
  default?: unknown;
}

/** The fields of a `requestedSchema`, in property order. Properties of unknown shape become text fields. */
export function fieldsOf(schema: JsonObject): Field[] {
  const properties = (schema.properties ?? {}) as Record<string, Record<string, unknown>>;
  const required = new Set(Array.isArray(schema.required) ? (schema.required as string[]) : []);
  return Object.entries(properties).map(([name, p]) => {
    const base = {
      name,
      title: typeof p.title === 'string' ? p.title : name,
      ...(typeof p.description === 'string' && { description: p.description }),
      required: required.has(name),
      ...(p.default !== undefined && { default: p.default }),
    };
    if (p.type === 'array') {
      const items = (p.items ?? {}) as Record<string, unknown>;
      return { ...base, type: 'multi' as const, options: optionsOf(items) ?? [] };
    }
    if (p.type === 'boolean') return { ...base, type: 'boolean' as const };
    if (p.type === 'number' || p.type === 'integer')
      return {
        ...base,
        type: p.type,
        ...(typeof p.minimum === 'number' && { minimum: p.minimum }),
        ...(typeof p.maximum === 'number' && { maximum: p.maximum }),
      };
    const options = optionsOf(p);
    return {
      ...base,
      type: 'string' as const,
      ...(options && { options }),
      ...(typeof p.format === 'string' && { format: p.format }),
      ...(typeof p.maxLength === 'number' && { maxLength: p.maxLength }),
    };
  });
}

function optionsOf(p: Record<string, unknown>): { value: string; title: string }[] | undefined {
  if (Array.isArray(p.enum)) {
    const names = Array.isArray(p.enumNames) ? (p.enumNames as string[]) : [];
    return (p.enum as unknown[]).map((value, i) => ({ value: String(value), title: names[i] ?? String(value) }));
  }
  const choices = Array.isArray(p.oneOf) ? p.oneOf : Array.isArray(p.anyOf) ? p.anyOf : undefined;
  if (!choices) return undefined;
  return (choices as Record<string, unknown>[])
    .filter((c) => c.const !== undefined)
    .map((c) => ({ value: String(c.const), title: typeof c.title === 'string' ? c.title : String(c.const) }));
}

const INPUT_TYPES: Record<string, string> = { email: 'email', uri: 'url', date: 'date', 'date-time': 'datetime-local' };

/** The inputs of one field (named `field.<name>`), with the values of a refused submission kept. */
function renderField(field: Field, previous: Record<string, string[]>): Html {
  const name = `field.${field.name}`;
  const kept = previous[name] ?? (field.default !== undefined ? [String(field.default)].flat() : []);
  const hint = field.description ? html`<small>${field.description}</small>` : '';
  const label = html`${field.title}${field.required ? html` <span class="req" aria-label="required">*</span>` : ''}`;
  if (field.type === 'boolean')
    return html`<label><input type="checkbox" name="${name}" value="true" ${kept.includes('true') ? html`checked` : ''} /> ${label}</label>${hint}`;
  if (field.type === 'multi')
    return html`<fieldset>
      <legend>${label}</legend>
      ${field.options!.map(
        (o) => html`<label><input type="checkbox" name="${name}" value="${o.value}" ${kept.includes(o.value) ? html`checked` : ''} /> ${o.title}</label>`,
      )}${hint}
    </fieldset>`;
  if (field.options)
    return html`<fieldset>
      <legend>${label}</legend>
      ${field.options.map(
        (o) =>
          html`<label
            ><input type="radio" name="${name}" value="${o.value}" ${field.required ? html`required` : ''} ${kept.includes(o.value) ? html`checked` : ''} />
            ${o.title}</label
          >`,
      )}${hint}
    </fieldset>`;
  if (field.type === 'number' || field.type === 'integer')
    return html`<label
        >${label}<input
          type="number"
          name="${name}"
          step="${field.type === 'integer' ? '1' : 'any'}"
          ${field.minimum !== undefined ? html`min="${field.minimum}"` : ''}
          ${field.maximum !== undefined ? html`max="${field.maximum}"` : ''}
          value="${kept[0] ?? ''}"
          ${field.required ? html`required` : ''} /></label
      >${hint}`;
  const type = INPUT_TYPES[field.format ?? ''] ?? 'text';
  if (type === 'text' && (field.maxLength === undefined || field.maxLength > 120))
    return html`<label
        >${label}<textarea
          name="${name}"
          rows="2"
          ${field.maxLength !== undefined ? html`maxlength="${field.maxLength}"` : ''}
          ${field.required ? html`required` : ''}
        >
${kept[0] ?? ''}</textarea></label
      >${hint}`;
  return html`<label
      >${label}<input
        type="${type}"
        name="${name}"
        value="${kept[0] ?? ''}"
        ${field.maxLength !== undefined ? html`maxlength="${field.maxLength}"` : ''}
        ${field.required ? html`required` : ''} /></label
    >${hint}`;
}

/** The inputs of every field of `schema` (see `renderField`). */
export function renderFields(schema: JsonObject, previous: Record<string, string[]> = {}): Html {
  return html`${fieldsOf(schema).map((field) => renderField(field, previous))}`;
}

/**
 * The `content` of an accepted form, from the submitted fields (`field.<name>` → values): numbers
 * and integers parsed, booleans from the checkbox (unchecked = false), multi-selects as arrays;
 * empty optional fields left out. Values that do not parse are passed on as strings, so the
 * runtime's schema check names the problem.
 */
export function contentFromForm(schema: JsonObject, form: Record<string, string[]>): Record<string, unknown> {
  const content: Record<string, unknown> = {};
  for (const field of fieldsOf(schema)) {
    const values = form[`field.${field.name}`] ?? [];
    if (field.type === 'boolean') {
      content[field.name] = values.includes('true');
      continue;
    }
    if (field.type === 'multi') {
      if (values.length > 0 || field.required) content[field.name] = values;
      continue;
    }
    const value = values[0];
    if (value === undefined || value === '') continue;
    if (field.type === 'number' || field.type === 'integer') {
      const n = Number(value);
      content[field.name] = Number.isFinite(n) ? n : value;
    } else if (field.format === 'date-time' && /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2})?$/.test(value)) {
      content[field.name] = new Date(value).toISOString(); // datetime-local has no zone: the server's
    } else content[field.name] = value;
  }
  return content;
}
