#!/usr/bin/env node
import { randomUUID } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { Command, InvalidArgumentError, Option } from 'commander';
import { taskId as toTaskId } from '@modelcontextprotocol/ext-tasks/core';
import { KnownTasks, defaultKnownTasksDir, type KnownTask } from '../client/known-tasks.js';
import { checkEndpointUrl, jsonRpcCode, unavailableRetryMs } from '../client/errors.js';
import { noteOldTaskList } from './old-task-list.js';
import type { FollowResult } from '../client/follower.js';
import { EXIT, Run, emit, headersOf, type RunOptions } from './run.js';
import { statusText, summarizeArguments } from './render.js';
import type { ProtocolVersion } from '../core/protocol-version.js';
import { IDEMPOTENCY_META_KEY } from '../core/idempotency.js';

const EXIT_CODES_HELP = `
Exit codes:
  0  the task completed (or the command did what it was asked)
  1  the task failed, the tool reported an error, or the command failed (bad input, server refused)
  2  the task was cancelled
  3  detached: the task goes on or keeps waiting for input on the server (no terminal to ask,
     "decide later", Ctrl-C, server unreachable when you stopped); nothing was answered for you
`;

/**
 * The options several commands share. Each command declares those it takes (its `--help` lists
 * them); they are also accepted before the command (`mcp-tasks --journal DIR ls`): the program
 * parses them there (positional options) and `preAction` hands them to the command.
 */
const SHARED = {
  url: () => new Option('--url <url>', 'MCP endpoint URL (default: the one in the task list)'),
  journal: () =>
    new Option(
      '--journal <dir>',
      `folder of the client's task list, the tasks it started (default: $MCP_TASKS_JOURNAL, else the per-user state folder, here ${defaultKnownTasksDir()})`,
    ),
  json: () => new Option('--json', 'machine-readable output on stdout (one JSON document per task)'),
  header: () => new Option('-H, --header <header...>', 'extra HTTP header(s), "Name: value"'),
  token: () => new Option('--token <token>', 'bearer token (sets Authorization)'),
  protocol: () =>
    new Option(
      '--protocol <version>',
      "MCP protocol version: auto (2026-07-28 when the server offers it), 2025-11-25 or 2026-07-28; default: a known task's own version, else auto",
    ).choices(['auto', '2025-11-25', '2026-07-28']),
  answer: () =>
    new Option(
      '--answer <json>',
      'answer to the question(s) the task asks, checked against the question\'s schema: the form content (= accept), e.g. \'{"decision":"approve"}\', or a full ElicitResult, e.g. \'{"action":"decline"}\'',
    ),
};

const program = new Command();
program.enablePositionalOptions().optionsGroup('Options of the commands, also accepted before the command (each only where the command takes it):');
for (const [name, make] of Object.entries(SHARED)) {
  // Before the command, -H takes one header per flag (-H 'A: 1' -H 'B: 2'): a list would swallow the command's name.
  program.addOption(
    name === 'header'
      ? new Option('-H, --header <header>', 'extra HTTP header, "Name: value" (repeat -H for several)').argParser((value: string, previous: string[] = []) => [
          ...previous,
          value,
        ])
      : make(),
  );
}
program
  .optionsGroup('Options:')
  .name('mcp-tasks')
  .description(
    'Durable MCP Tasks client: call tools as tasks on any MCP server (2025-11-25 and 2026-07-28), answer their questions, follow them across disconnects and restarts.',
  )
  .version('0.1.0')
  .showHelpAfterError()
  .addHelpText(
    'after',
    `${EXIT_CODES_HELP}
Examples:
  mcp-tasks tools http://127.0.0.1:3000/mcp
  mcp-tasks call http://127.0.0.1:3000/mcp process_invoice --args-file invoice.json
  mcp-tasks pending
  mcp-tasks answer 3f2a… --answer '{"decision":"approve"}'
  mcp-tasks resume`,
  );

type Opts = RunOptions & { url?: string };

/** Options of every command that talks to a server. */
const connection = (command: Command, withUrl = true) => {
  if (withUrl) command.addOption(SHARED.url());
  return command.addOption(SHARED.journal()).addOption(SHARED.json()).addOption(SHARED.header()).addOption(SHARED.token()).addOption(SHARED.protocol());
};
/** The option of commands that may answer a task's questions. */
const answering = (command: Command) => command.addOption(SHARED.answer());

/**
 * Before each command runs: the shared options given before it become its own (refused, exit 1,
 * when it does not take them; given on both sides, the one after the command wins, headers add up),
 * and `--journal` gets its default (noting once a task list left in the old place).
 */
program.hook('preAction', (root, command) => {
  for (const option of root.options) {
    const key = option.attributeName();
    if (root.getOptionValueSource(key) !== 'cli') continue;
    if (!command.options.some((o) => o.attributeName() === key))
      command.error(`error: option '${option.long}' is not an option of '${command.name()}' (mcp-tasks ${command.name()} --help lists its options)`);
    const before = root.getOptionValue(key) as unknown;
    if (key === 'header')
      command.setOptionValueWithSource(key, [...(before as string[]), ...((command.getOptionValue(key) as string[] | undefined) ?? [])], 'cli');
    else if (command.getOptionValueSource(key) !== 'cli') command.setOptionValueWithSource(key, before, 'cli');
  }
  if (command.options.some((o) => o.attributeName() === 'journal') && command.getOptionValue('journal') === undefined) {
    const dir = defaultKnownTasksDir();
    command.setOptionValueWithSource('journal', dir, 'default');
    if (!process.env.MCP_TASKS_JOURNAL) noteOldTaskList(dir);
  }
});
const examples = (command: Command, ...lines: string[]) =>
  command.addHelpText('after', `\nExamples:\n${lines.map((l) => `  ${l}`).join('\n')}\n${EXIT_CODES_HELP}`);

examples(
  answering(
    connection(
      program
        .command('call <url> <tool>')
        .description('Call a tool, as a task where the tool supports one; follow it to its end, answering its questions, and print the result')
        .option('--args <json>', 'tool arguments as a JSON object', '{}')
        .option('--args-file <file>', 'read the tool arguments from a JSON file')
        .option('--ttl <ms>', 'requested task lifetime in ms (2025-11-25 only: 2026-07-28 servers decide it)', parsePositiveInt)
        .option('--no-task', 'call without asking for a task (a 2026-07-28 server may still run it as one; it is then journaled and followed)')
        .option(
          '--idempotency-key <key>',
          'send this idempotency key (default: a new UUID): the same command run again with the same key follows the task the first run created instead of starting another (servers declaring tools.idempotency)',
        ),
      false,
    ),
  ),
  `mcp-tasks call http://127.0.0.1:3000/mcp process_invoice --args-file invoice.json`,
  `mcp-tasks call http://127.0.0.1:3000/mcp process_invoice --args-file invoice.json --answer '{"decision":"approve"}' --json`,
  `mcp-tasks call http://127.0.0.1:3000/mcp process_invoice --args-file invoice.json --idempotency-key inv-2026-0042`,
).action(async (url: string, tool: string, opts: Opts & { args: string; argsFile?: string; ttl?: number; task: boolean; idempotencyKey?: string }) => {
  checkEndpointUrl(url);
  const args = parseJsonObject(opts.argsFile ? readFile(opts.argsFile) : opts.args, opts.argsFile ? `--args-file ${opts.argsFile}` : '--args');
  await Run.with(opts, async (run) => {
    const endpoint = run.endpoint(url, opts.protocol ?? 'auto');
    const tc = await run.whileBusy(`connecting to ${url}`, () => endpoint.connection(), { url, resend: 'safe' });
    if (!tc) return [{ kind: 'left', taskId: '-', reason: run.stopReason() } satisfies FollowResult];
    if (!tc.tools.has(tool)) throw new Error(`The server at ${url} has no tool named '${tool}' (it has: ${[...tc.tools.keys()].join(', ') || 'none'})`);
    if (opts.ttl !== undefined && tc.protocolVersion === '2026-07-28')
      run.log(`note: ${url} speaks 2026-07-28, where the server decides how long a task is kept; --ttl is not sent`);
    if (!opts.task && tc.protocolVersion === '2025-11-25' && tc.tools.get(tool)?.taskSupport === 'required') {
      throw new Error(`${tool} must run as a task (its execution.taskSupport is "required"); call it without --no-task`);
    }
    const summary = summarizeArguments(args);
    // Every attempt carries one idempotency key. Busy answers are retried (the server did nothing);
    // "temporarily unavailable" ones only when the server declared idempotency (a retry then returns
    // the task the first attempt created, if it did): see whileBusy. Lost replies are sent again by
    // the client library (see connectTaskClient's `callRetries`).
    const idempotencyKey = opts.idempotencyKey ?? randomUUID();
    if (opts.idempotencyKey !== undefined && !tc.idempotency)
      run.log(`note: ${url} does not declare tools.idempotency; --idempotency-key is sent, but the server may not honor it`);
    const call = run.whileBusy(
      `calling ${tool}`,
      () =>
        tc.session.callTool(tool, args, {
          task: {
            preference: opts.task ? 'prefer' : tc.protocolVersion === '2026-07-28' ? 'allow' : 'forbid',
            ...(opts.ttl !== undefined && tc.protocolVersion === '2025-11-25' && { retentionMs: opts.ttl }),
          },
          metadata: { [IDEMPOTENCY_META_KEY]: idempotencyKey },
        }),
      { url, resend: tc.idempotency ? 'idempotent' : 'creates' },
    );
    const execution = await run.untilStopped(call);
    if (!execution) return [{ kind: 'left', taskId: '-', reason: run.stopReason() } satisfies FollowResult];
    if (execution.kind !== 'task') {
      const outcome = await run.untilStopped(execution.result());
      return [outcome ? { kind: 'outcome', taskId: '', outcome } : { kind: 'left', taskId: '-', reason: run.stopReason() }];
    }
    const taskId = execution.handle.taskId;
    const now = new Date().toISOString();
    run.known.put({
      taskId,
      url,
      tool,
      startedAt: now,
      updatedAt: now,
      status: 'working',
      ...(summary && { summary }),
      reference: execution.serializeReference(),
    });
    // Follow it ourselves (see TaskFollower): release ext-tasks' own driver without touching the task.
    await execution.detach().catch(() => undefined);
    await execution.result().catch(() => undefined);
    run.log(`[${taskId}] task created for ${tool}${opts.task ? '' : ' (the server chose to run it as a task)'}; if this stops: npx mcp-tasks watch ${taskId}`);
    return [await run.follow(endpoint, taskId, { tool, summary, createdAt: now })];
  });
});

examples(
  answering(
    connection(
      program
        .command('resume [taskIds...]')
        .description('Follow every task in the journal the server has not reported ended (or the given ones), answering their questions'),
    ),
  ),
  'mcp-tasks resume',
  `mcp-tasks resume 3f2a… --answer '{"decision":"reject","comment":"duplicate"}'`,
).action(async (taskIds: string[], opts: Opts) => {
  const journal = new KnownTasks(opts.journal);
  const unfinished = taskIds.length > 0 ? [] : journal.list().filter((e) => !e.outcome && (!opts.url || e.url === opts.url));
  const entries =
    taskIds.length > 0 ? taskIds.map((id) => journal.get(id) ?? (opts.url ? undefined : missing(journal, id))) : unfinished.filter((e) => !e.gone);
  const gone = unfinished.filter((e) => e.gone);
  if (gone.length > 0) {
    process.stderr.write(
      `skipping ${gone.length} task(s) the server said it does not know (ls shows them as gone; \`npx mcp-tasks ls --refresh\` asks again, \`npx mcp-tasks resume <taskId>\` retries one)\n`,
    );
  }
  if (entries.length === 0) {
    emit(opts, { tasks: [] }, 'No unfinished tasks in the journal.');
    return;
  }
  await Run.with(opts, (run) =>
    Promise.all(
      entries.map((entry, i) => {
        const taskId = entry?.taskId ?? taskIds[i]!;
        const url = opts.url ?? entry!.url;
        run.log(`[${taskId}] resumed${entry ? ` (${entry.tool}${entry.status ? `, last known: ${entry.status}` : ''})` : ''}`);
        return run.follow(run.endpoint(url, protocolOf(entry, opts)), taskId, contextOf(entry));
      }),
    ),
  );
});

examples(
  answering(connection(program.command('watch <taskId>').description('Follow one task to its end, answering its questions'))),
  'mcp-tasks watch 3f2a…',
  'mcp-tasks watch 3f2a… --url http://127.0.0.1:3000/mcp --protocol 2025-11-25',
).action(async (taskId: string, opts: Opts) => followOne(taskId, opts, 'end'));

examples(
  answering(connection(program.command('result <taskId>').description('Wait for a task to end (answering its questions, like watch) and print its result'))),
  'mcp-tasks result 3f2a… --json',
).action(async (taskId: string, opts: Opts) => followOne(taskId, opts, 'end'));

examples(
  answering(
    connection(program.command('answer <taskId>').description('Answer the questions a task is waiting on (in the terminal, or with --answer), then stop')),
  ),
  'mcp-tasks answer 3f2a… --url http://127.0.0.1:3000/mcp',
  `mcp-tasks answer 3f2a… --answer '{"decision":"approve"}'`,
  `mcp-tasks answer 3f2a… --answer '{"action":"decline"}'`,
)
  .addHelpText(
    'after',
    `
A task that is not waiting for input gets nothing, and answer says so at once instead of waiting:
  exit 3 while it runs ("task … is not waiting for input (working: …)"; follow it with watch),
  exit 1 once it has ended ("task … is completed; nothing to answer"; its result: mcp-tasks result <taskId>).
`,
  )
  .action(async (taskId: string, opts: Opts) => followOne(taskId, opts, 'answered'));

examples(
  connection(program.command('get <taskId>').description('Show the current state of a task (tasks/get)')),
  'mcp-tasks get 3f2a…',
  'mcp-tasks get 3f2a… --url http://127.0.0.1:3000/mcp --json',
).action(async (taskId: string, opts: Opts) => {
  const { url, entry } = target(taskId, opts);
  await Run.with(opts, async (run) => {
    const endpoint = run.endpoint(url, protocolOf(entry, opts));
    const view = await run.whileBusy(`reading ${taskId}`, async () => (await endpoint.connection()).session.task(toTaskId(taskId)).snapshot(run.signal), {
      url,
      resend: 'safe',
    });
    if (!view) return [{ kind: 'left', taskId, reason: run.stopReason() } satisfies FollowResult];
    run.recordStatus(taskId, view);
    emit(opts, view.raw, `${view.taskId}  ${statusText(view)}`);
    return [];
  });
});

examples(connection(program.command('cancel <taskId>').description('Cancel a task (tasks/cancel)')), 'mcp-tasks cancel 3f2a…').action(
  async (taskId: string, opts: Opts) => {
    const { url, entry } = target(taskId, opts);
    await Run.with(opts, async (run) => {
      const controller = (await run.endpoint(url, protocolOf(entry, opts)).connection()).session.task(toTaskId(taskId));
      let unanswered = false; // an attempt the server could not answer: it may have cancelled the task all the same
      const cancelled = await run.whileBusy(
        `cancelling ${taskId}`,
        async () => {
          try {
            await controller.cancel(run.signal);
            return true;
          } catch (error) {
            // 2025-11-25 refuses to cancel an ended task: after an unanswered attempt, the snapshot below tells.
            if (unanswered && jsonRpcCode(error) === -32602) return true;
            if (unavailableRetryMs(error) !== undefined) unanswered = true;
            throw error;
          }
        },
        { url, resend: 'safe' },
      );
      if (cancelled === undefined) return [{ kind: 'left', taskId, reason: run.stopReason() } satisfies FollowResult];
      const view = await run.whileBusy(`reading ${taskId}`, () => controller.snapshot(run.signal), { url, resend: 'safe' });
      if (!view) return [{ kind: 'left', taskId, reason: run.stopReason() } satisfies FollowResult];
      run.recordStatus(taskId, view);
      emit(opts, view.raw, `${view.taskId}  ${view.status}`);
      return [];
    });
  },
);

examples(
  program
    .command('retry <consoleUrl> <taskId>')
    .description(
      'Operator: run a failed task again from a step (as a new task; the steps before it and the answers given are kept), or a stuck working one in place, through the operator console',
    )
    .option(
      '--from-step <name>',
      'the step the new run starts from: it and every later step run again (default: where the task stopped: its failed steps, or the one it is stuck in)',
    )
    .option('--from-start', 'run every step again')
    .option('--clear-answers', 'ask again the questions answered after that step (default: their answers are kept)')
    .addOption(SHARED.header())
    .addOption(SHARED.token())
    .addOption(SHARED.json()),
  'mcp-tasks retry http://127.0.0.1:3000/console 3f2a… --from-step pay:L2:1 --token $OPERATOR_TOKEN',
).action(
  async (
    consoleUrl: string,
    taskId: string,
    opts: { fromStep?: string; fromStart?: boolean; clearAnswers?: boolean; header?: string[]; token?: string; json?: boolean },
  ) => {
    const base = consoleUrl.replace(/\/+$/, '');
    let origin: string;
    try {
      origin = new URL(base).origin;
    } catch {
      throw new InvalidArgumentError(`not a URL: ${consoleUrl} (the operator console's, e.g. http://127.0.0.1:3000/console)`);
    }
    if (opts.fromStep !== undefined && opts.fromStart) throw new InvalidArgumentError('--from-step and --from-start exclude each other');
    const from = opts.fromStep !== undefined ? `step/${opts.fromStep}` : opts.fromStart ? 'start' : 'stopped';
    const body = new URLSearchParams({ confirm: 'yes', from, ...(opts.clearAnswers && { clearAnswers: 'yes' }) });
    const response = await fetch(`${base}/tasks/${encodeURIComponent(taskId)}/retry`, {
      method: 'POST',
      // A script, not a browser: it names the console's own origin, as the console's forms do.
      headers: { ...headersOf(opts), accept: 'application/json', 'content-type': 'application/x-www-form-urlencoded', origin },
      body,
      redirect: 'manual',
    }).catch((error: unknown) => {
      throw new Error(`cannot reach the operator console at ${base}: ${(error as Error).message}`);
    });
    const reply = (await response.json().catch(() => undefined)) as { taskId?: string; inPlace?: boolean; error?: string } | undefined;
    if (response.status === 401 || response.status === 403)
      throw new Error(`the operator console at ${base} refused: an operator token is needed (--token, see docs/console.md)`);
    if (!response.ok || typeof reply?.taskId !== 'string')
      throw new Error(`not run again: ${reply?.error ?? `HTTP ${response.status} from ${base} (is it the operator console's URL?)`}`);
    const where = opts.fromStep !== undefined ? `step ${opts.fromStep}` : opts.fromStart ? 'the start' : 'where it stopped';
    emit(opts, reply, reply.inPlace ? `${taskId} runs again from ${where}` : `${taskId} runs again from ${where} as task ${reply.taskId}`);
  },
);

examples(
  connection(
    program.command('pending').description("List the tasks waiting for your input: the journal's, and the server's listing (tasks/list) where it offers one"),
  ),
  'mcp-tasks pending',
  'mcp-tasks pending --url http://127.0.0.1:3000/mcp --token $TOKEN',
).action(async (opts: Opts) => {
  await Run.with(opts, async (run) => {
    const { tasks: waiting, complete } = await run.pending(opts.url);
    if (!complete) process.exitCode = 1;
    if (opts.json) process.stdout.write(`${JSON.stringify(waiting)}\n`);
    else if (waiting.length === 0) process.stdout.write('No task is waiting for input.\n');
    else
      for (const w of waiting)
        process.stdout.write(
          `${w.taskId}${w.tool ? `  ${w.tool}` : ''}${w.summary ? ` (${w.summary})` : ''}\n    ${w.question ?? w.statusMessage ?? 'waiting for input'}\n    answer: npx mcp-tasks answer ${w.taskId} --url ${w.url}${run.authFlags()}\n`,
        );
    return [];
  });
});

examples(
  program
    .command('ls')
    .description('List the tasks this client started, with the status the server last reported')
    .addOption(SHARED.journal())
    .option('--json', 'machine-readable output')
    .option('--refresh', 'ask each server for the current status of unfinished tasks first')
    .option('-H, --header <header...>', 'extra HTTP header(s) for --refresh, "Name: value"')
    .option('--token <token>', 'bearer token for --refresh'),
  'mcp-tasks ls',
  'mcp-tasks ls --refresh',
).action(async (opts: Opts & { refresh?: boolean }) => {
  let refreshed = true;
  if (opts.refresh) await Run.with(opts, async (run) => ((refreshed = await run.refresh()), []));
  if (!refreshed) process.exitCode = 1;
  const entries = new KnownTasks(opts.journal).list();
  if (opts.json)
    return void process.stdout.write(
      `${JSON.stringify(
        entries.map(({ reference: _r, ...e }) => e),
        null,
        2,
      )}\n`,
    );
  if (entries.length === 0) return void process.stdout.write('No tasks in the journal.\n');
  process.stdout.write(`${'TASK'.padEnd(34)}${'LAST KNOWN'.padEnd(16)}${'TOOL'.padEnd(24)}${'SEEN'.padEnd(26)}URL\n`);
  for (const e of entries) {
    const status = e.gone ? 'gone' : e.status;
    process.stdout.write(
      `${e.taskId.padEnd(34)}${status.padEnd(16)}${e.tool.padEnd(24)}${(e.seenAt ?? e.updatedAt).padEnd(26)}${e.url}${e.summary ? `\n    ${e.summary}` : ''}${e.gone ? `\n    ${e.gone}` : e.statusMessage ? `\n    ${e.statusMessage}` : ''}\n`,
    );
  }
  if (!opts.refresh || !refreshed) process.stdout.write('(statuses as last reported; --refresh asks the servers)\n');
});

examples(
  connection(program.command('tools <url>').description('List the tools of a server and whether each runs as a task'), false),
  'mcp-tasks tools http://127.0.0.1:3000/mcp',
).action(async (url: string, opts: Opts) => {
  checkEndpointUrl(url);
  await Run.with(opts, async (run) => {
    const tc = await run.endpoint(url, opts.protocol ?? 'auto').connection();
    const tools = [...tc.tools.values()];
    if (opts.json) process.stdout.write(`${JSON.stringify({ protocolVersion: tc.protocolVersion, tools })}\n`);
    else {
      process.stdout.write(`${url} speaks ${tc.protocolVersion}; ${tools.length} tool(s):\n`);
      for (const t of tools)
        process.stdout.write(
          `  ${t.name.padEnd(28)} task: ${(t.taskSupport ?? (tc.protocolVersion === '2026-07-28' ? 'server decides' : 'forbidden')).padEnd(14)} ${(t.description ?? '').split('\n')[0]!.slice(0, 80)}\n`,
        );
    }
    return [];
  });
});

async function followOne(taskId: string, opts: Opts, until: 'end' | 'answered'): Promise<void> {
  const { url, entry } = target(taskId, opts);
  await Run.with(opts, async (run) => [await run.follow(run.endpoint(url, protocolOf(entry, opts)), taskId, contextOf(entry), until)]);
}

/** Where a task lives: `--url`, else its journal entry's URL. */
function target(taskId: string, opts: Opts): { url: string; entry?: KnownTask } {
  const entry = new KnownTasks(opts.journal).get(taskId);
  const url = opts.url ?? entry?.url;
  if (!url) throw new Error(`Task ${taskId} is not in the journal at ${opts.journal}; pass --url <MCP endpoint>`);
  return { url: checkEndpointUrl(url), ...(entry && { entry }) };
}

/** `--protocol` when given, else a known task's own protocol version (the one it was created in), else `auto`. */
function protocolOf(entry: KnownTask | undefined, opts: Opts): 'auto' | ProtocolVersion {
  if (opts.protocol) return opts.protocol;
  if (!entry) return 'auto';
  return entry.reference.generation === 'v1' ? '2025-11-25' : '2026-07-28';
}

function contextOf(entry: KnownTask | undefined) {
  return entry ? { tool: entry.tool, createdAt: entry.startedAt, ...(entry.summary && { summary: entry.summary }) } : {};
}

function missing(journal: KnownTasks, taskId: string): never {
  throw new Error(`Task ${taskId} is not in the journal at ${journal.dir}; pass --url <MCP endpoint>`);
}

function readFile(file: string): string {
  try {
    return readFileSync(file, 'utf8');
  } catch (error) {
    throw new InvalidArgumentError(`cannot read --args-file ${file}: ${(error as Error).message}`);
  }
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
  process.exitCode = EXIT.failed;
});
