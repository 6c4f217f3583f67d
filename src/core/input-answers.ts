import * as z from 'zod';
import { checkAnswer } from './answer-schema.js';
import type { InputAnswer, InputRequest, InputResponse } from './task.js';

/**
 * The result of `checkInputAnswer`: the answer as it will be stored (normalized), or the problems
 * found (one readable sentence each, naming the field, never the value given).
 */
export type InputAnswerCheck = { valid: true; answer: InputAnswer; unchecked?: string } | { valid: false; problems: string[] };

const contentBlock = z.looseObject({ type: z.string().min(1) });
/** MCP `CreateMessageResult` (2025-11-25 / 2026-07-28 "Sampling"): what a `sampling` question accepts. */
const samplingResult = z.looseObject({
  role: z.literal('assistant'),
  content: z.union([contentBlock, z.array(contentBlock).min(1)]),
  model: z.string(),
  stopReason: z.string().optional(),
});
/** MCP `ListRootsResult` ("Roots"): root URIs are `file://` URIs. */
const rootsResult = z.looseObject({
  roots: z.array(z.looseObject({ uri: z.string().startsWith('file://', 'must be a file:// URI'), name: z.string().optional() })),
});

/**
 * Checks one answer against the question it answers, by the question's kind, and returns it in the
 * form the store keeps — the single rule every answer passes (`TaskStore.answerInputs`), whatever
 * wire carried it:
 * - `elicitation` (form): `checkAnswer` against `requestedSchema` (MCP "Elicitation": accepted
 *   content must match; forms are closed); `decline` / `cancel` keep no content.
 * - `url`: an `ElicitResult` whose `action` is accept | decline | cancel; any `content` is dropped
 *   (URL mode carries none).
 * - `sampling`: a `CreateMessageResult` (`role: "assistant"`, `content` block(s) with a `type`,
 *   `model` string, optional `stopReason`); kept as sent.
 * - `roots`: a `ListRootsResult` (`roots`: objects with a `file://` `uri`, optional `name`).
 * Never throws.
 */
export function checkInputAnswer(request: InputRequest, raw: unknown): InputAnswerCheck {
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) return { valid: false, problems: ['the answer must be an object'] };
  switch (request.kind) {
    case 'elicitation': {
      const response = raw as InputResponse;
      const check = checkAnswer(request.requestedSchema, response);
      if (!check.valid) return check;
      const answer: InputResponse =
        response.action === 'accept' && response.content !== undefined ? { action: 'accept', content: response.content } : { action: response.action };
      return { valid: true, answer, ...(check.unchecked && { unchecked: check.unchecked }) };
    }
    case 'url': {
      const check = checkAnswer({}, { action: (raw as InputResponse).action });
      return check.valid ? { valid: true, answer: { action: (raw as InputResponse).action } } : check;
    }
    case 'sampling':
      return parsed(samplingResult, raw);
    case 'roots':
      return parsed(rootsResult, raw);
  }
}

function parsed(schema: z.ZodType, raw: unknown): InputAnswerCheck {
  const result = schema.safeParse(raw);
  if (result.success) return { valid: true, answer: result.data as InputAnswer };
  return { valid: false, problems: result.error.issues.map((issue) => `${issue.path.map(String).join('.') || 'the answer'}: ${issue.message}`) };
}
