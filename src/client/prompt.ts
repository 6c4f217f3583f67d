import { checkbox, confirm, input, number, select } from '@inquirer/prompts';
import type { ApplicationElicitResult } from '@modelcontextprotocol/ext-tasks/client';
import { answerProblems } from '../core/answer-schema.js';
import type { ElicitationQuestion } from './connect.js';
import { fieldsOf, howToAnswer } from './questions.js';

/** What a person (or `--answer`) made of a question. */
export type AskOutcome =
  /** Send this `ElicitResult`. */
  | { kind: 'answer'; result: ApplicationElicitResult }
  /**
   * Send nothing; the question stays pending on the server. `all`: stop following every task
   * (Ctrl-C, closed terminal); otherwise only this task ("decide later", nobody to ask). `error`: the
   * given `--answer` was refused (exit code 1 rather than 3).
   */
  | { kind: 'leave'; reason: string; all?: boolean; error?: boolean }
  /** The server withdrew the question before it was answered (answered elsewhere, or the task moved on). */
  | { kind: 'withdrawn' };

/** Who the question is from, for the header above a prompt. */
export interface QuestionContext {
  /** e.g. `process_invoice`. */
  tool?: string;
  /** A short summary of the task's arguments (e.g. `INV-2026-0087 · V-1001 · GBP`). */
  summary?: string;
  /** ISO 8601. */
  createdAt?: string;
  /** Endpoint URL, for the "how to answer later" command. */
  url?: string;
  /** Extra flags for that command, e.g. ` --token <token>` (never the secret itself). */
  flags?: string;
}

/** Asks questions one at a time. */
export interface Asker {
  /** Asks `question` (queued behind any question being asked); `signal` withdraws it. Never rejects. */
  ask(question: ElicitationQuestion, context: QuestionContext, signal?: AbortSignal): Promise<AskOutcome>;
}

/** Options of `terminalAsker`. */
export interface TerminalAskerOptions {
  /** `--answer`: used for every question; refused (nothing sent) when it does not match the question's schema. */
  fixed?: ApplicationElicitResult;
  /** Whether a person is at a terminal (stdin and stderr are TTYs). Without one, questions are left pending with instructions. */
  interactive: boolean;
  /** Status output (stderr). */
  log: (line: string) => void;
}

let promptOpen = false;
const held: string[] = [];

/**
 * Writes a status line to stderr, or holds it while an interactive prompt owns the terminal (so
 * background status updates do not garble the prompt) and prints it when the prompt closes.
 */
export function statusLine(line: string): void {
  if (promptOpen) held.push(line);
  else process.stderr.write(`${line}\n`);
}

/**
 * The CLI's asker. Never answers for a person:
 * - `fixed` (`--answer`) is checked against the question's `requestedSchema` (ajv) and refused with
 *   the schema error when it does not match;
 * - at a terminal, one question at a time under a header saying which task asks (tool, argument
 *   summary, age), with the real prompt library: Answer (each field, re-asked until it matches the
 *   schema), Decline and Cancel (each confirmed), or Decide later. Ctrl-C or a closed terminal
 *   leaves every question pending (`all`);
 * - without a terminal the question is left pending, with the exact fields, allowed values and a
 *   command that answers it.
 */
export function terminalAsker(options: TerminalAskerOptions): Asker {
  let queue: Promise<unknown> = Promise.resolve();
  let gaveUp: AskOutcome | undefined;
  return {
    ask(question, context, signal) {
      const turn = queue.then(async (): Promise<AskOutcome> => {
        if (signal?.aborted) return { kind: 'withdrawn' };
        if (options.fixed) return checkFixed(options.fixed, question, context, options.log);
        if (!options.interactive) return { kind: 'leave', reason: howToAnswer(question, context.url, context.flags) };
        if (gaveUp) return gaveUp;
        const outcome = await askPerson(question, context, signal);
        if (outcome.kind === 'leave' && outcome.all) gaveUp = outcome;
        return outcome;
      });
      queue = turn.catch(() => undefined);
      return turn;
    },
  };
}

function checkFixed(fixed: ApplicationElicitResult, question: ElicitationQuestion, context: QuestionContext, log: (line: string) => void): AskOutcome {
  const problems = problemsOf(question, fixed);
  if (problems.length > 0) {
    return {
      kind: 'leave',
      error: true,
      reason: `--answer does not fit the question (${problems.join('; ')}); nothing was sent, the task still waits.\n${howToAnswer(question, context.url, context.flags)}`,
    };
  }
  log(`? ${question.message}\n  answered from --answer: ${JSON.stringify(fixed)}`);
  return { kind: 'answer', result: fixed };
}

/** What is wrong with `result` as an answer to `question` (its `requestedSchema`, checked with ajv); empty when it fits. */
function problemsOf(question: ElicitationQuestion, result: ApplicationElicitResult): string[] {
  return result.action === 'accept' ? answerProblems(question.requestedSchema, result.content ?? {}) : [];
}

/** A prompt ended by Ctrl-C / a closed stdin (inquirer's ExitPromptError) or by the question's withdrawal (AbortPromptError). */
function promptEnd(error: unknown, signal: AbortSignal | undefined): AskOutcome {
  if (signal?.aborted) return { kind: 'withdrawn' };
  const name = (error as Error)?.name;
  if (name === 'ExitPromptError' || name === 'AbortPromptError' || name === 'CancelPromptError') {
    return { kind: 'leave', all: true, reason: 'interrupted; nothing was sent, the question still waits' };
  }
  throw error;
}

async function askPerson(question: ElicitationQuestion, context: QuestionContext, signal: AbortSignal | undefined): Promise<AskOutcome> {
  promptOpen = true;
  const ctx = signal ? { signal } : {};
  try {
    process.stderr.write(`\n${header(question, context)}\n? ${question.message}\n`);
    for (;;) {
      const choice = await select(
        {
          message: 'Your decision',
          choices: [
            { name: 'Answer', value: 'accept', description: 'fill in the form and send it' },
            { name: 'Decline…', value: 'decline', description: 'refuse to answer (asks to confirm)' },
            { name: 'Cancel…', value: 'cancel', description: 'dismiss the question without a choice (asks to confirm)' },
            { name: 'Decide later', value: 'later', description: 'send nothing; the task keeps waiting' },
          ],
        },
        ctx,
      );
      if (choice === 'later') return { kind: 'leave', reason: 'left for later; nothing was sent, the question still waits' };
      if (choice === 'decline' || choice === 'cancel') {
        const sure = await confirm(
          {
            message:
              choice === 'decline'
                ? 'Decline this request? The task goes on knowing you said no.'
                : 'Cancel this request without answering? The task goes on without your answer.',
            default: false,
          },
          ctx,
        );
        if (sure) return { kind: 'answer', result: { action: choice } };
        continue;
      }
      const content = await askFields(question, ctx);
      if (content === 'back') continue;
      return { kind: 'answer', result: { action: 'accept', content } };
    }
  } catch (error) {
    if (signal?.aborted) process.stderr.write('  (the server withdrew this question: answered elsewhere, or no longer needed)\n');
    return promptEnd(error, signal);
  } finally {
    promptOpen = false;
    for (const line of held.splice(0)) process.stderr.write(`${line}\n`);
  }
}

type Content = NonNullable<ApplicationElicitResult['content']>;

async function askFields(question: ElicitationQuestion, ctx: { signal?: AbortSignal }): Promise<Content | 'back'> {
  for (;;) {
    const content: Record<string, Content[string]> = {};
    for (const field of fieldsOf(question)) {
      const { schema } = field;
      if (field.choices && field.multiple) {
        content[field.name] = await checkbox({ message: field.label, choices: field.choices.map((c) => ({ name: c.title ?? c.value, value: c.value })) }, ctx);
      } else if (field.choices) {
        const choices = field.choices.map((c) => ({ name: c.title ? `${c.title} (${c.value})` : c.value, value: c.value }));
        if (!field.required) choices.push({ name: '(leave empty)', value: '\0' });
        const value = await select({ message: field.label, choices, ...(typeof schema.default === 'string' && { default: schema.default }) }, ctx);
        if (value !== '\0') content[field.name] = value;
      } else if (field.type === 'boolean') {
        content[field.name] = await confirm({ message: field.label, default: schema.default === true }, ctx);
      } else if (field.type === 'number' || field.type === 'integer') {
        const value = await number({ message: field.label, required: field.required, step: field.type === 'integer' ? 1 : 'any' }, ctx);
        if (value !== undefined) content[field.name] = value;
      } else {
        const value = await input(
          { message: field.label, required: field.required, ...(typeof schema.default === 'string' && { default: schema.default }) },
          ctx,
        );
        if (value !== '') content[field.name] = value;
      }
    }
    const problems = problemsOf(question, { action: 'accept', content });
    if (problems.length === 0) return content;
    process.stderr.write(`  That answer does not fit: ${problems.join('; ')}\n`);
    const again = await confirm({ message: 'Fill in the form again? (No goes back to the choices)', default: true }, ctx);
    if (!again) return 'back';
  }
}

function header(question: ElicitationQuestion, context: QuestionContext): string {
  const parts = [question.taskId ? `Task ${question.taskId}` : 'A tool call'];
  if (context.tool) parts.push(context.tool);
  if (context.summary) parts.push(context.summary);
  if (context.createdAt) parts.push(`created ${ago(context.createdAt)}`);
  const line = parts.join(' · ');
  return `── ${line} ${'─'.repeat(Math.max(0, 76 - line.length))}`;
}

/** `3 min ago`, `2 days ago`, for an ISO 8601 time. */
export function ago(iso: string, now = Date.now()): string {
  return `${span(now - Date.parse(iso))} ago`;
}

/** A duration in ms as a person says it: `12 s`, `3 min`, `5 h`, `41 days`. */
export function span(ms: number): string {
  const s = Math.max(0, Math.round(ms / 1000));
  if (s < 90) return `${s} s`;
  const min = Math.round(s / 60);
  if (min < 90) return `${min} min`;
  const h = Math.round(min / 60);
  if (h < 36) return `${h} h`;
  return `${Math.round(h / 24)} days`;
}
