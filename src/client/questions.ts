import type { ApplicationElicitResult } from '@modelcontextprotocol/ext-tasks/client';
import type { ElicitationQuestion } from './connect.js';

/** One field of a form question, as a person reads it. */
interface FieldView {
  name: string;
  label: string;
  required: boolean;
  /** Allowed values (`enum`, or `oneOf`/`anyOf` `const`s), with their titles when the schema has them. */
  choices?: { value: string; title?: string }[];
  type: string;
  /** For arrays of choices (multi-select). */
  multiple: boolean;
  schema: Record<string, unknown>;
}

/** The fields of a form question's `requestedSchema`, in schema order. */
export function fieldsOf(question: ElicitationQuestion): FieldView[] {
  const required = new Set(question.requestedSchema.required ?? []);
  return Object.entries(question.requestedSchema.properties ?? {}).map(([name, schema]) => {
    const multiple = schema.type === 'array';
    const source = (multiple ? (schema.items as Record<string, unknown> | undefined) : schema) ?? {};
    return {
      name,
      label: String(schema.title ?? name) + (schema.description ? ` (${String(schema.description)})` : ''),
      required: required.has(name),
      choices: choicesOf(source),
      type: String(source.type ?? schema.type ?? 'string'),
      multiple,
      schema,
    };
  });
}

function choicesOf(schema: Record<string, unknown>): { value: string; title?: string }[] | undefined {
  if (Array.isArray(schema.enum)) {
    const names = Array.isArray(schema.enumNames) ? (schema.enumNames as unknown[]) : [];
    return schema.enum.map((v, i) => ({ value: String(v), ...(names[i] !== undefined && { title: String(names[i]) }) }));
  }
  const options = (schema.oneOf ?? schema.anyOf) as { const?: unknown; title?: unknown }[] | undefined;
  if (Array.isArray(options) && options.every((o) => o && typeof o === 'object' && 'const' in o)) {
    return options.map((o) => ({ value: String(o.const), ...(o.title !== undefined && { title: String(o.title) }) }));
  }
  return undefined;
}

/**
 * How to answer `question` without a terminal: one line per field with its allowed values, and a
 * command that works as printed (`npx mcp-tasks answer <taskId> --url <url> --answer '<json>'`)
 * with an example answer built from the schema (first choice, placeholder text); `flags` are added
 * to it (e.g. ` --token <token>`).
 */
export function howToAnswer(question: ElicitationQuestion, url: string | undefined, flags = ''): string {
  const lines = [`the task needs input: ${question.message}`];
  for (const field of fieldsOf(question)) {
    const allowed = field.choices ? `one of ${field.choices.map((c) => c.value).join(', ')}` : field.type;
    lines.push(`  ${field.name}${field.required ? '' : ' (optional)'}: ${field.multiple ? `list of ${allowed}` : allowed}`);
  }
  const example = shellQuote(JSON.stringify(exampleAnswer(question)));
  if (question.taskId) {
    const target = `answer ${question.taskId}${url ? ` --url ${url}` : ''}${flags}`;
    lines.push(`  answer with: npx mcp-tasks ${target} --answer ${example}`);
    lines.push(`  or decline:  npx mcp-tasks ${target} --answer '{"action":"decline"}'`);
  } else {
    lines.push(`  this call is not a task: run it again in a terminal, or with --answer ${example}`);
  }
  return lines.join('\n');
}

/** An example content object for `question`: required fields first, each with a plausible value. */
export function exampleAnswer(question: ElicitationQuestion): Record<string, unknown> {
  const content: Record<string, unknown> = {};
  for (const field of fieldsOf(question)) {
    if (!field.required && Object.keys(content).length > 0) continue;
    if (field.choices) content[field.name] = field.multiple ? [field.choices[0]!.value] : field.choices[0]!.value;
    else if (field.type === 'boolean') content[field.name] = true;
    else if (field.type === 'number' || field.type === 'integer') content[field.name] = Number(field.schema.minimum ?? 1);
    else content[field.name] = '…';
  }
  return content;
}

/**
 * Parses `--answer JSON`: either a full `ElicitResult` (`{"action":"accept","content":{…}}`,
 * `{"action":"decline"}`) or just the content object, meaning accept. Throws on invalid JSON or a
 * value that is not an object.
 */
export function parseAnswer(text: string): ApplicationElicitResult {
  let value: unknown;
  try {
    value = JSON.parse(text) as unknown;
  } catch (error) {
    throw new Error(`--answer is not valid JSON: ${(error as Error).message}`);
  }
  if (value === null || typeof value !== 'object' || Array.isArray(value)) throw new Error('--answer must be a JSON object');
  const record = value as Record<string, unknown>;
  if (record.action === 'accept' || record.action === 'decline' || record.action === 'cancel') return record as unknown as ApplicationElicitResult;
  if ('action' in record) throw new Error(`--answer: action must be accept, decline or cancel (or give just the form's content)`);
  return { action: 'accept', content: record as ApplicationElicitResult['content'] };
}

/** `text` as one POSIX shell word: in single quotes, each `'` written `'\\''`. */
export function shellQuote(text: string): string {
  return `'${text.replace(/'/g, `'\\''`)}'`;
}
