import { Ajv, type ErrorObject, type ValidateFunction } from 'ajv';
import formatsModule, { type FormatsPlugin } from 'ajv-formats';
import type { JsonObject } from './json.js';
import type { InputResponse } from './task.js';

/**
 * Checking answers against the question's `requestedSchema` (MCP "Elicitation", form mode: the
 * `ElicitResult` `content` of an `accept` MUST match the `requestedSchema` of `elicitation/create`;
 * 2025-11-25 and the 2026-07-28 Tasks extension's `inputRequests` / `tasks/update` use the same
 * shapes). The engine refuses non-conforming answers in `TaskStore.answerInputs`, the one place every
 * answer passes through, so `ctx.elicit` only ever returns accepted content that matches its schema.
 *
 * Rules (what "matches" means here):
 * - `decline` and `cancel` carry no content and always pass (content sent with them is dropped).
 * - `accept` is checked with ajv (JSON Schema draft-07 semantics, plus the `ajv-formats` formats:
 *   `email`, `uri`, `date`, `date-time`, …) on `content` (a missing `content` counts as `{}`), with
 *   every problem reported, not only the first. Non-standard annotations (`enumNames`, `title`, …)
 *   are ignored; `$schema` and `$id` of the top level are dropped (the restricted form is flat).
 * - Forms are closed: when the schema lists `properties` and says nothing about
 *   `additionalProperties`, fields it does not list are refused (MCP forms only have the fields the
 *   schema declares; a misspelt field would otherwise be dropped silently). A schema that sets
 *   `additionalProperties` itself keeps its own rule; a schema without `properties` (e.g. `{}`)
 *   constrains only what it says.
 * - A schema ajv cannot compile (a typo such as `type: "strng"`, an unknown `$ref`) cannot be
 *   checked: the answer is accepted and the result says why (`unchecked`), so the caller logs it at
 *   debug level. A server-side mistake in a tool's schema never makes its question unanswerable.
 *
 * Messages name the field and what it must be, never the value given (answers may be secrets and
 * messages are logged and returned to the requestor): `decision must be one of: approve, reject`,
 * `reply is required`, `unknown field 'decison' (the form has: decision, comment)`,
 * `amount must be an integer`, `email must be a valid email`, `colors[1] must be one of: red, blue`.
 */

/** The result of `checkAnswer`: valid (and whether it was really checked), or the problems found. */
export type AnswerCheck =
  | {
      valid: true;
      /** Why the content was not checked (the schema does not compile), when it was not. */
      unchecked?: string;
    }
  | {
      valid: false;
      /** One readable sentence per problem, naming the field (see the module comment). Never empty. */
      problems: string[];
    };

/** Most compiled schemas kept (least recently used ones are dropped first). */
export const ANSWER_SCHEMA_CACHE_SIZE = 256;

const ACTIONS: readonly string[] = ['accept', 'decline', 'cancel'];

/**
 * Checks one answer (an MCP `ElicitResult`: `action` accept | decline | cancel, `content` on accept)
 * against the question's `requestedSchema` (see the module comment for the rules). Pure apart from
 * the compiled-schema cache; never throws (an unusable schema yields `{ valid: true, unchecked }`).
 *
 * Returns `{ valid: true }`, `{ valid: true, unchecked: reason }` or `{ valid: false, problems }`.
 * A `response` that is not an object, has an unknown `action`, or `content` that is not an object
 * is invalid too.
 */
export function checkAnswer(requestedSchema: object, response: InputResponse): AnswerCheck {
  if (typeof response !== 'object' || response === null || Array.isArray(response)) return { valid: false, problems: ['the answer must be an object'] };
  if (!ACTIONS.includes(response.action)) return { valid: false, problems: [`action must be one of: ${ACTIONS.join(', ')}`] };
  if (response.action !== 'accept') return { valid: true };
  const content: unknown = response.content ?? {};
  if (typeof content !== 'object' || content === null || Array.isArray(content)) return { valid: false, problems: ['content must be an object'] };
  const compiled = compile(requestedSchema);
  if ('unusable' in compiled) return { valid: true, unchecked: compiled.unusable };
  if (compiled.validate(content)) return { valid: true };
  const problems = describe(compiled.validate.errors ?? []);
  return { valid: false, problems: problems.length > 0 ? problems : ['the answer does not match the requested schema'] };
}

/**
 * The problems of accepted form `content` against `requestedSchema` (the `accept` case of
 * `checkAnswer`, same rules and messages): an empty list when it matches — or when the schema
 * cannot be checked (it does not compile). For clients that check an answer before sending it;
 * the server checks it again either way. Never throws.
 */
export function answerProblems(requestedSchema: object, content: object): string[] {
  const check = checkAnswer(requestedSchema, { action: 'accept', content: content as InputResponse['content'] });
  return check.valid ? [] : check.problems;
}

type Compiled = { validate: ValidateFunction } | { unusable: string };

let ajv: Ajv | undefined;
const cache = new Map<string, Compiled>();

/** The one ajv instance: every error reported, annotations tolerated, nothing printed. */
function instance(): Ajv {
  if (ajv) return ajv;
  ajv = new Ajv({ allErrors: true, strict: false, verbose: true, logger: false });
  // ajv-formats is CommonJS (`module.exports = plugin`, `.default = plugin`): either shape works.
  const addFormats = ((formatsModule as unknown as { default?: FormatsPlugin }).default ?? formatsModule) as FormatsPlugin;
  addFormats(ajv);
  return ajv;
}

/** The compiled form of `schema`, from the cache (keyed by its JSON text) or compiled now. */
function compile(schema: object): Compiled {
  let key: string;
  try {
    key = JSON.stringify(schema) ?? 'undefined';
  } catch (error) {
    return { unusable: `the schema is not JSON (${(error as Error).message})` };
  }
  const hit = cache.get(key);
  if (hit) {
    cache.delete(key); // least recently used first: move to the end
    cache.set(key, hit);
    return hit;
  }
  let compiled: Compiled;
  if (typeof schema !== 'object' || schema === null || Array.isArray(schema)) {
    compiled = { unusable: 'the requestedSchema is not an object' };
  } else {
    const form = closedForm(schema as JsonObject);
    const ajv = instance();
    try {
      compiled = { validate: ajv.compile(form) };
    } catch (error) {
      compiled = { unusable: `the requestedSchema does not compile (${(error as Error).message})` };
    } finally {
      // The compiled function keeps working; ajv's own cache (keyed by schema object) must not grow.
      ajv.removeSchema(form);
    }
  }
  if (cache.size >= ANSWER_SCHEMA_CACHE_SIZE) cache.delete(cache.keys().next().value!);
  cache.set(key, compiled);
  return compiled;
}

/** A copy of `schema` as checked: top-level `$schema`/`$id` dropped, closed when it lists `properties`. */
function closedForm(schema: JsonObject): JsonObject {
  const { $schema: _schema, $id: _id, ...form } = schema;
  const properties = form.properties;
  const listsProperties = typeof properties === 'object' && properties !== null && !Array.isArray(properties);
  if (listsProperties && form.additionalProperties === undefined) form.additionalProperties = false;
  return form;
}

/** Readable sentences for ajv's errors (see the module comment), deduplicated, in ajv's order. */
function describe(errors: ErrorObject[]): string[] {
  // `oneOf` / `anyOf` of `const` options (titled enums) are reported once, as the list of options.
  const alternatives = errors.filter((e) => e.keyword === 'oneOf' || e.keyword === 'anyOf').map((e) => `${e.schemaPath}/`);
  const out = new Set<string>();
  for (const error of errors) {
    if (alternatives.some((prefix) => error.schemaPath.startsWith(prefix))) continue;
    const sentence = sentenceFor(error);
    if (sentence) out.add(sentence);
  }
  return [...out];
}

function sentenceFor(error: ErrorObject): string | undefined {
  const field = fieldName(error.instancePath);
  const params = error.params as Record<string, unknown>;
  const subject = field ?? 'the answer';
  switch (error.keyword) {
    case 'required':
      return `${join(field, String(params.missingProperty))} is required`;
    case 'additionalProperties': {
      const known = Object.keys(((error.parentSchema as JsonObject | undefined)?.properties as JsonObject | undefined) ?? {});
      const name = join(field, String(params.additionalProperty));
      return `unknown field '${name}' (${known.length > 0 ? `the form has: ${known.join(', ')}` : 'the form has no fields'})`;
    }
    case 'enum':
      return `${subject} must be one of: ${(params.allowedValues as unknown[]).map(show).join(', ')}`;
    case 'const':
      return `${subject} must be ${show(params.allowedValue)}`;
    case 'oneOf':
    case 'anyOf': {
      const options = (error.schema as unknown[] | undefined) ?? [];
      const consts = options.map((option) =>
        typeof option === 'object' && option !== null && 'const' in option ? (option as { const: unknown }).const : undefined,
      );
      if (options.length > 0 && consts.every((value) => value !== undefined)) return `${subject} must be one of: ${consts.map(show).join(', ')}`;
      return `${subject} does not match any of the allowed options`;
    }
    case 'type': {
      const types = String(params.type).split(',');
      return `${subject} must be ${types.map(typeName).join(' or ')}`;
    }
    case 'minLength':
      return `${subject} must be at least ${String(params.limit)} character${params.limit === 1 ? '' : 's'} long`;
    case 'maxLength':
      return `${subject} must be at most ${String(params.limit)} character${params.limit === 1 ? '' : 's'} long`;
    case 'minimum':
    case 'maximum':
    case 'exclusiveMinimum':
    case 'exclusiveMaximum':
      return `${subject} must be ${String(params.comparison)} ${String(params.limit)}`;
    case 'multipleOf':
      return `${subject} must be a multiple of ${String(params.multipleOf)}`;
    case 'format':
      return `${subject} must be a valid ${String(params.format)}`;
    case 'pattern':
      return `${subject} must match the pattern ${String(params.pattern)}`;
    case 'minItems':
      return `${subject} must have at least ${String(params.limit)} item${params.limit === 1 ? '' : 's'}`;
    case 'maxItems':
      return `${subject} must have at most ${String(params.limit)} item${params.limit === 1 ? '' : 's'}`;
    case 'uniqueItems':
      return `${subject} must not repeat items`;
    case 'if':
    case 'not':
    case 'allOf':
      return `${subject} ${error.message ?? 'is not allowed'}`;
    default:
      return `${subject} ${error.message ?? 'is invalid'}`;
  }
}

/** `decision` for `/decision`, `colors[1]` for `/colors/1`; undefined for the root. */
function fieldName(instancePath: string): string | undefined {
  if (instancePath === '') return undefined;
  let name = '';
  for (const raw of instancePath.slice(1).split('/')) {
    const part = raw.replace(/~1/g, '/').replace(/~0/g, '~');
    name += /^\d+$/.test(part) && name !== '' ? `[${part}]` : name === '' ? part : `.${part}`;
  }
  return name;
}

function join(parent: string | undefined, child: string): string {
  return parent === undefined ? child : `${parent}.${child}`;
}

function show(value: unknown): string {
  return typeof value === 'string' ? value : JSON.stringify(value);
}

function typeName(type: string): string {
  switch (type) {
    case 'integer':
      return 'an integer';
    case 'array':
      return 'a list';
    case 'object':
      return 'an object';
    case 'boolean':
      return 'true or false';
    case 'null':
      return 'null';
    default:
      return `a ${type}`;
  }
}
