#!/usr/bin/env node
import { readFileSync } from 'node:fs';
import { Command, InvalidArgumentError, Option } from 'commander';
import type { ApplicationElicitResult, TaskOutcome } from '@modelcontextprotocol/ext-tasks/client';
import { taskId as toTaskId } from '@modelcontextprotocol/ext-tasks/core';
import { connectTaskClient, type TaskClient } from '../client/connect.js';
import { ClientJournal, type JournalEntry } from '../client/journal.js';
import { parseAnswer, statusLine, terminalAnswerer } from '../client/prompt.js';
import { follow, type Followed } from './follow.js';

/** Exit codes: 0 completed, 1 failed or error, 2 cancelled, 3 detached (needs input or interrupted). */
const EXIT = { completed: 0, failed: 1, cancelled: 2, detached: 3 } as const;

interface ClientOptions {
  journal: string;
  era: 'auto' | 'legacy' | 'modern';
  json?: boolean;
  answer?: string;
  header?: string[];
  token?: string;
  url?: string;
}

const program = new Command();
program.name('mcp-tasks').description('Durable MCP Tasks client: call and follow tasks on any MCP server (both protocol eras).').version('0.1.0');

const withClientOptions = (command: Command) =>
  command
    .option('--journal <dir>', 'client journal directory', '.mcp-tasks')
    .option('--json', 'machine-readable output on stdout (one JSON document)')
    .option('--answer <json>', 'answer to the question(s) the task asks: an ElicitResult, or just its content (= accept)')
    .option('-H, --header <header...>', 'extra HTTP header(s), "Name: value"')
    .option('--token <token>', 'bearer token (sets Authorization)')
    .addOption(
      new Option('--era <era>', 'protocol era: auto (2026-07-28 when the server offers it), legacy (2025-11-25) or modern (2026-07-28)')
        .choices(['auto', 'legacy', 'modern'])
        .default('auto'),
    );

withClientOptions(
  program
    .command('call <url> <tool>')
    .description('Call a tool, as a task where the tool supports one; follow it to its end and print the result')
    .option('--args <json>', 'tool arguments as a JSON object', '{}')
    .option('--args-file <file>', 'read the tool arguments from a JSON file')
    .option('--ttl <ms>', 'requested task lifetime in ms', parsePositiveInt)
    .addOption(new Option('--no-task', 'call synchronously, never as a task')),
).action(async (url: string, tool: string, opts: ClientOptions & { args: string; argsFile?: string; ttl?: number; task: boolean }) => {
  const args = parseJsonObject(opts.argsFile ? readFileSync(opts.argsFile, 'utf8') : opts.args, opts.argsFile ? `--args-file ${opts.argsFile}` : '--args');
  await withClient(url, opts, async (tc, journal, stop, log) => {
    if (!tc.tools.has(tool)) throw new Error(`The server at ${url} has no tool named '${tool}' (it has: ${[...tc.tools.keys()].join(', ') || 'none'})`);
    const execution = await tc.session.callTool(tool, args, {
      task: { preference: opts.task ? 'prefer' : 'forbid', ...(opts.ttl !== undefined && { retentionMs: opts.ttl }) },
    });
    if (execution.kind === 'task') {
      const now = new Date().toISOString();
      journal.put({ taskId: execution.handle.taskId, url, tool, startedAt: now, updatedAt: now, status: 'working', reference: execution.serializeReference() });
      log(`[${execution.handle.taskId}] task created for ${tool} (resume with: mcp-tasks watch ${execution.handle.taskId})`);
    }
    return [await follow(execution, journal, log, stop)];
  });
});

withClientOptions(
  program.command('resume [taskIds...]').description('Pick up every unfinished task in the journal (or the given ones) and follow them to their end'),
).action(async (taskIds: string[], opts: ClientOptions) => {
  const journal = new ClientJournal(opts.journal);
  const entries = taskIds.length > 0 ? taskIds.map((id) => requireEntry(journal, id)) : journal.list().filter((e) => !e.outcome);
  if (entries.length === 0) {
    emit(opts, { tasks: [] }, 'No unfinished tasks in the journal.');
    return;
  }
  await resumeEntries(entries, opts);
});

withClientOptions(program.command('watch <taskId>').description('Follow one journaled task to its end (answering its questions)')).action(
  async (taskId: string, opts: ClientOptions) => {
    await resumeEntries([requireEntry(new ClientJournal(opts.journal), taskId)], opts);
  },
);

program
  .command('ls')
  .description('List the tasks this client started (from the journal)')
  .option('--journal <dir>', 'client journal directory', '.mcp-tasks')
  .option('--json', 'machine-readable output')
  .action((opts: { journal: string; json?: boolean }) => {
    const entries = new ClientJournal(opts.journal).list();
    if (opts.json)
      return void process.stdout.write(
        `${JSON.stringify(
          entries.map(({ reference: _r, ...e }) => e),
          null,
          2,
        )}\n`,
      );
    if (entries.length === 0) return void process.stdout.write('No tasks in the journal.\n');
    for (const e of entries)
      process.stdout.write(
        `${e.taskId}  ${e.status.padEnd(14)} ${e.tool.padEnd(24)} ${e.updatedAt}  ${e.url}${e.statusMessage ? `\n    ${e.statusMessage}` : ''}\n`,
      );
  });

for (const [name, description] of [
  ['get', 'Show the current state of a task (tasks/get)'],
  ['cancel', 'Cancel a task (tasks/cancel)'],
  ['result', 'Wait for a task to end and print its result (tasks/result)'],
] as const) {
  withClientOptions(program.command(`${name} <taskId>`).description(description).option('--url <url>', 'MCP endpoint (default: from the journal)')).action(
    async (taskId: string, opts: ClientOptions) => {
      const journal = new ClientJournal(opts.journal);
      const url = opts.url ?? journal.get(taskId)?.url;
      if (!url) throw new Error(`Task ${taskId} is not in the journal at ${opts.journal}; pass --url`);
      await withClient(url, opts, async (tc, _journal, stop) => {
        const controller = tc.session.task(toTaskId(taskId));
        if (name === 'get') {
          const view = await controller.snapshot(stop);
          journal.update(taskId, { status: view.status, ...(view.statusMessage !== undefined && { statusMessage: view.statusMessage }) });
          emit(opts, view.raw, `${view.taskId}  ${view.status}${view.statusMessage ? `: ${view.statusMessage}` : ''}`);
          return [];
        }
        if (name === 'cancel') {
          await controller.cancel(stop);
          const view = await controller.snapshot(stop);
          journal.update(taskId, { status: view.status, outcome: { status: 'cancelled' } });
          emit(opts, view.raw, `${view.taskId}  ${view.status}`);
          return [];
        }
        return [{ taskId, outcome: await controller.result({ signal: stop }) }];
      });
    },
  );
}

async function resumeEntries(entries: JournalEntry[], opts: ClientOptions): Promise<void> {
  const byUrl = new Map<string, JournalEntry[]>();
  for (const e of entries) byUrl.set(e.url, [...(byUrl.get(e.url) ?? []), e]);
  for (const [url, group] of byUrl) {
    await withClient(url, opts, async (tc, journal, stop, log) =>
      Promise.all(
        group.map(async (entry) => {
          const execution = await tc.session.resumeTask(entry.reference);
          log(`[${entry.taskId}] resumed (${entry.tool})`);
          return follow(execution, journal, log, stop);
        }),
      ),
    );
  }
}

/**
 * Connects, runs `work`, prints every outcome and sets the exit code. Ctrl-C detaches (tasks go on
 * on the server); a question that cannot be answered here detaches with instructions.
 */
async function withClient(
  url: string,
  opts: ClientOptions,
  work: (tc: TaskClient, journal: ClientJournal, stop: AbortSignal, log: (line: string) => void) => Promise<Followed[]>,
): Promise<void> {
  const journal = new ClientJournal(opts.journal);
  const log = statusLine;
  const stop = new AbortController();
  const onSigint = () => stop.abort(new Error('interrupted; the task goes on on the server'));
  process.once('SIGINT', onSigint);
  let fixed: ApplicationElicitResult | undefined;
  if (opts.answer !== undefined) {
    try {
      fixed = parseAnswer(opts.answer);
    } catch (error) {
      throw new InvalidArgumentError(`--answer: ${(error as Error).message}`);
    }
  }
  const answer = terminalAnswerer(fixed, log, (question) => {
    if (question.taskId) journal.update(question.taskId, { status: 'input_required', statusMessage: question.message });
    stop.abort(new Error(`the task needs input: ${question.message}\n  answer with: mcp-tasks resume ${question.taskId ?? '<taskId>'} --answer '{"…": "…"}'`));
  });
  const tc = await connectTaskClient(url, { answer, headers: headersOf(opts), era: opts.era, onError: () => undefined });
  try {
    const results = await work(tc, journal, stop.signal, log);
    for (const r of results) report(r, opts);
  } finally {
    process.off('SIGINT', onSigint);
    await tc.close();
  }
}

function report(r: Followed, opts: ClientOptions): void {
  if (r.detached) {
    emit(opts, { taskId: r.taskId, detached: r.detached }, `[${r.taskId ?? '-'}] detached: ${r.detached}`);
    process.exitCode = Math.max(Number(process.exitCode ?? 0), EXIT.detached);
    return;
  }
  const outcome = r.outcome as TaskOutcome<Record<string, unknown>>;
  if (outcome.status === 'completed') {
    const result = outcome.result;
    const text = Array.isArray(result.content)
      ? (result.content as { type: string; text?: string }[])
          .filter((c) => c.type === 'text')
          .map((c) => c.text)
          .join('\n')
      : '';
    const structured = result.structuredContent ? `\n${JSON.stringify(result.structuredContent, null, 2)}` : '';
    emit(opts, { taskId: r.taskId, status: 'completed', result }, `${text}${structured}`);
    if (result.isError === true) process.exitCode = Math.max(Number(process.exitCode ?? 0), EXIT.failed);
  } else if (outcome.status === 'failed') {
    emit(
      opts,
      { taskId: r.taskId, status: 'failed', error: outcome.error.message, ...(outcome.error.code !== undefined && { code: outcome.error.code }) },
      `failed: ${outcome.error.message}`,
    );
    process.exitCode = Math.max(Number(process.exitCode ?? 0), EXIT.failed);
  } else {
    emit(opts, { taskId: r.taskId, status: 'cancelled' }, `[${r.taskId}] cancelled`);
    process.exitCode = Math.max(Number(process.exitCode ?? 0), EXIT.cancelled);
  }
}

function emit(opts: { json?: boolean }, json: unknown, text: string): void {
  process.stdout.write(opts.json ? `${JSON.stringify(json)}\n` : `${text}\n`);
}

function requireEntry(journal: ClientJournal, taskId: string): JournalEntry {
  const entry = journal.get(taskId);
  if (!entry) throw new Error(`Task ${taskId} is not in the journal at ${journal.dir}`);
  return entry;
}

function headersOf(opts: ClientOptions): Record<string, string> {
  const headers: Record<string, string> = {};
  for (const h of opts.header ?? []) {
    const at = h.indexOf(':');
    if (at <= 0) throw new InvalidArgumentError(`--header must be "Name: value", got ${h}`);
    headers[h.slice(0, at).trim()] = h.slice(at + 1).trim();
  }
  if (opts.token) headers.Authorization = `Bearer ${opts.token}`;
  return headers;
}

function parseJsonObject(text: string, what: string): Record<string, never> {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (error) {
    throw new InvalidArgumentError(`${what} is not valid JSON: ${(error as Error).message}`);
  }
  if (value === null || typeof value !== 'object' || Array.isArray(value)) throw new InvalidArgumentError(`${what} must be a JSON object`);
  return value as Record<string, never>;
}

function parsePositiveInt(value: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n <= 0) throw new InvalidArgumentError('must be a positive integer');
  return n;
}

program.parseAsync(process.argv).catch((error: unknown) => {
  process.stderr.write(`mcp-tasks: ${error instanceof Error ? error.message : String(error)}\n`);
  process.exitCode = 1;
});
