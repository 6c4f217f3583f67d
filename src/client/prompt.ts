import { confirm, input, number, select } from '@inquirer/prompts';
import type { ApplicationElicitResult } from '@modelcontextprotocol/ext-tasks/client';
import type { AnswerQuestion, ElicitationQuestion } from './connect.js';

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
 * Parses `--answer JSON`: either a full `ElicitResult` (`{"action":"accept","content":{…}}`,
 * `{"action":"decline"}`) or just the content object, meaning accept. Throws on invalid JSON.
 */
export function parseAnswer(text: string): ApplicationElicitResult {
  const value = JSON.parse(text) as unknown;
  if (value === null || typeof value !== 'object' || Array.isArray(value)) throw new Error('--answer must be a JSON object');
  const record = value as Record<string, unknown>;
  if (record.action === 'accept' || record.action === 'decline' || record.action === 'cancel') return record as unknown as ApplicationElicitResult;
  return { action: 'accept', content: record as ApplicationElicitResult['content'] };
}

/**
 * Builds the CLI's question answerer: a fixed `--answer` when given, else an interactive prompt per
 * field of the requested schema (enum → select, boolean → confirm, number → number, string → input)
 * when stdin is a terminal. Otherwise `unanswerable(question)` is called (the CLI detaches and says how
 * to answer later) and the question is left pending, so the task stays `input_required`.
 */
export function terminalAnswerer(
  fixed: ApplicationElicitResult | undefined,
  log: (line: string) => void,
  unanswerable: (question: ElicitationQuestion) => void,
): AnswerQuestion {
  return async (question) => {
    if (fixed) {
      log(`? ${question.message}\n  answered from --answer: ${JSON.stringify(fixed)}`);
      return fixed;
    }
    if (!process.stdin.isTTY) {
      // Leave the question unanswered (a refusal would end the task in 2026-07-28 requesters) and
      // let the caller detach; the task stays input_required on the server.
      unanswerable(question);
      return new Promise<never>(() => undefined);
    }
    log(`? ${question.message}${question.taskId ? ` (task ${question.taskId})` : ''}`);
    promptOpen = true;
    try {
      return await askFields(question);
    } finally {
      promptOpen = false;
      for (const line of held.splice(0)) process.stderr.write(`${line}\n`);
    }
  };
}

async function askFields(question: ElicitationQuestion): Promise<ApplicationElicitResult> {
  const respond = await select({
    message: 'Respond?',
    choices: [
      { name: 'Answer', value: 'accept' },
      { name: 'Decline', value: 'decline' },
      { name: 'Cancel', value: 'cancel' },
    ],
  });
  if (respond !== 'accept') return { action: respond as 'decline' | 'cancel' };
  const content: Record<string, string | number | boolean> = {};
  const required = new Set(question.requestedSchema.required ?? []);
  for (const [name, field] of Object.entries(question.requestedSchema.properties ?? {})) {
    const label = String(field.title ?? name) + (field.description ? ` (${field.description})` : '');
    const isRequired = required.has(name);
    if (Array.isArray(field.enum)) {
      content[name] = await select({ message: label, choices: (field.enum as string[]).map((v) => ({ name: v, value: v })) });
    } else if (field.type === 'boolean') {
      content[name] = await confirm({ message: label, default: field.default === true });
    } else if (field.type === 'number' || field.type === 'integer') {
      const value = await number({ message: label, required: isRequired });
      if (value !== undefined) content[name] = value;
    } else {
      const value = await input({ message: label, required: isRequired });
      if (value !== '') content[name] = value;
    }
  }
  return { action: 'accept', content };
}
