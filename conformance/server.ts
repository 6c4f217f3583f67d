/**
 * Fixture server for the official MCP conformance suite (`@modelcontextprotocol/conformance`),
 * scenarios `tasks-*` (extension `io.modelcontextprotocol/tasks`, protocol 2026-07-28) and
 * `input-required-result-*` (SEP-2322 multi round-trip requests).
 *
 * Built only on mcp-tasks' public API (`src/index.ts`, the package's entry point) plus the SDK's
 * `McpServer` it composes with, as a user of the package would: `openStore('memory:')`,
 * `TaskRuntime`, `McpTasks.registerTool`, `McpTasks.attach`, `startHttpServer`,
 * `TaskSubscriptions`. The tool names and behaviours are the ones the scenarios require (see
 * conformance/README.md).
 *
 * Listens on 127.0.0.1, port `CONFORMANCE_PORT` (default 0 = a free port), and prints
 * `CONFORMANCE_SERVER_URL=<url>` on stdout once it accepts requests. Stops on SIGTERM/SIGINT.
 * `CONFORMANCE_POLL_INTERVAL_MS` sets the advertised pollInterval (default 250).
 *
 * `CONFORMANCE_MRTR=sdk` (diagnostic only, not the default): serve the `input-required-result-*`
 * tools and prompt with the SDK's own multi round-trip support (`inputRequired()`, plain
 * `McpServer.registerTool`) instead of mcp-tasks task tools, to separate what the SDK + our HTTP
 * serving already pass from what McpTasks does not do yet.
 */
import { acceptedContent, createRequestStateCodec, inputRequired, inputResponse, McpServer, type ServerContext } from '@modelcontextprotocol/server';
import * as z from 'zod';
import { serve } from '@hono/node-server';
import { createMcpHonoApp } from '@modelcontextprotocol/hono';
import {
  createMcpHttpHandler,
  McpTasks,
  openStore,
  startHttpServer,
  TaskRpcError,
  TaskRuntime,
  TaskSubscriptions,
  type TaskContext,
  type McpHttpHandlerOptions,
  type TaskExecutor,
} from '../src/index.js';

const mrtrMode = process.env.CONFORMANCE_MRTR === 'sdk' ? 'sdk' : 'project';
const port = Number(process.env.CONFORMANCE_PORT ?? 0);
// The suite polls tasks/get every 100-200 ms; McpTasks holds back polls faster than half the
// advertised pollInterval, so the default 250 keeps runs fast without disabling that throttle.
const pollIntervalMs = Number(process.env.CONFORMANCE_POLL_INTERVAL_MS ?? 250);
const log = (line: string) => process.stderr.write(`[fixture] ${line}\n`);
const text = (t: string) => ({ content: [{ type: 'text' as const, text: t }] });

// CONFORMANCE_EXECUTOR=dbos|restate runs the task fixtures on an engine: the wire must not be able to
// tell. DBOS: CONFORMANCE_DBOS_DATABASE (default postgres://postgres@127.0.0.1:5432/test). Restate:
// CONFORMANCE_RESTATE_INGRESS / _ADMIN (a running restate-server), CONFORMANCE_RESTATE_ENDPOINT_PORT.
// CONFORMANCE_STORE: the task store (default memory:).
const executorName = process.env.CONFORMANCE_EXECUTOR ?? 'embedded';
/** What stopping the server cleans up after the runtime closed (an engine's scratch schema). */
const cleanups: (() => Promise<void>)[] = [];
const store = openStore(process.env.CONFORMANCE_STORE ?? 'memory:', { policy: { pollIntervalMs } });
const runtime = new TaskRuntime(store, {
  onError: (error, taskId) => log(`runtime ${taskId ?? ''}: ${String(error)}`),
  ...(executorName !== 'embedded' && { executor: await engineExecutor(executorName) }),
});

async function engineExecutor(name: string): Promise<TaskExecutor> {
  if (name === 'dbos') {
    const { createDbosExecutor } = await import('../src/executors/dbos/index.js');
    // DBOS's tables in a schema of this run's own, dropped when it stops (the memory store's tasks die with it).
    const systemDatabaseUrl = process.env.CONFORMANCE_DBOS_DATABASE ?? 'postgres://postgres@127.0.0.1:5432/test';
    const systemDatabaseSchemaName = `conformance_dbos_${process.pid}`;
    cleanups.push(async () => {
      const pg = (await import('pg')).default;
      const client = new pg.Client({ connectionString: systemDatabaseUrl });
      await client.connect();
      await client.query(`DROP SCHEMA IF EXISTS ${systemDatabaseSchemaName} CASCADE`).finally(() => client.end());
    });
    return createDbosExecutor({ systemDatabaseUrl, systemDatabaseSchemaName });
  }
  if (name === 'restate') {
    const { createRestateExecutor } = await import('../src/executors/restate/index.js');
    return createRestateExecutor({
      ingressUrl: process.env.CONFORMANCE_RESTATE_INGRESS ?? 'http://127.0.0.1:8080',
      adminUrl: process.env.CONFORMANCE_RESTATE_ADMIN ?? 'http://127.0.0.1:9070',
      endpoint: { port: Number(process.env.CONFORMANCE_RESTATE_ENDPOINT_PORT ?? 9080) },
    });
  }
  throw new Error(`CONFORMANCE_EXECUTOR must be embedded, dbos or restate, not ${name}`);
}
const tasks = new McpTasks(runtime, { onError: (error) => log(`mcp-tasks: ${String(error)}`) });

// ---------------------------------------------------------------------------------------------
// tasks-* fixtures (SEP-2663). `greet` is an ordinary (sync-only) tool, registered per McpServer.
// ---------------------------------------------------------------------------------------------

/** Sleeps `seconds` (durable timer; cancelled through ctx.signal), then returns a result. */
tasks.registerTool(
  'slow_compute',
  {
    description: 'Task-supporting: sleeps `seconds` seconds, then returns a result (seconds: 0 = immediate).',
    inputSchema: z.object({ seconds: z.number().min(0), label: z.string().optional() }),
    taskSupport: 'optional',
  },
  async ({ seconds, label }, ctx) => {
    await ctx.sleep(seconds * 1000);
    return text(`computed${label ? ` ${label}` : ''} after ${seconds}s`);
  },
);

/** `required` task support (tasks-required-task-error); a tool execution error (isError) after ~1 s. */
tasks.registerTool(
  'failing_job',
  { description: 'Task-required: reports a tool execution error after about 1 s.', inputSchema: z.object({}), taskSupport: 'required' },
  async (_args, ctx) => {
    await ctx.sleep(1000);
    return { ...text('failing_job: the job failed'), isError: true };
  },
);

/** Fails with a protocol-level (JSON-RPC) error: the package's way is to throw a `TaskRpcError`. */
tasks.registerTool(
  'protocol_error_job',
  { description: 'Task-supporting: fails with a JSON-RPC internal error.', inputSchema: z.object({}), taskSupport: 'optional' },
  async () => {
    throw new TaskRpcError(-32603, 'protocol_error_job: simulated internal failure');
  },
);

/** Parks for one elicitation, then completes. */
tasks.registerTool(
  'confirm_delete',
  { description: 'Task-supporting: asks for confirmation, then "deletes" the file.', inputSchema: z.object({ filename: z.string() }), taskSupport: 'optional' },
  async ({ filename }, ctx) => {
    const answer = await ctx.elicit(`Delete ${filename}?`, { type: 'object', properties: { confirm: { type: 'boolean' } }, required: ['confirm'] });
    const confirmed = answer.action === 'accept' && answer.content?.confirm === true;
    return text(confirmed ? `Deleted ${filename}` : `Kept ${filename} (${answer.action})`);
  },
);

/** Two elicitations in parallel, so two input requests are outstanding at once. */
tasks.registerTool(
  'multi_input',
  { description: 'Task-supporting: asks two questions at once.', inputSchema: z.object({}), taskSupport: 'optional' },
  async (_args, ctx) => {
    const schema = { type: 'object', properties: { name: { type: 'string' }, confirm: { type: 'boolean' } } };
    const [first, second] = await Promise.all([ctx.elicit('First question', schema), ctx.elicit('Second question', schema)]);
    return text(`answers: ${String(first.content?.name ?? first.action)}, ${String(second.content?.name ?? second.action)}`);
  },
);

/**
 * tasks-mrtr-composition: round 1 is an InputRequiredResult (MRTR on tools/call, no taskId), the
 * retry carrying the answer gets the CreateTaskResult of the same task (`askBeforeTask`).
 */
tasks.registerTool(
  'test_tool_with_task',
  {
    description: 'Task-required: asks for a name (MRTR before the task), then greets it.',
    inputSchema: z.object({}),
    taskSupport: 'required',
    askBeforeTask: true,
  },
  async (_args, ctx) => text(`Hello, ${await askName(ctx, 'What is your name?', 'user_name')}!`),
);

async function askName(ctx: TaskContext, message: string, key?: string): Promise<string> {
  const answer = await ctx.elicit(message, { type: 'object', properties: { name: { type: 'string' } }, required: ['name'] }, { key });
  return answer.action === 'accept' ? String(answer.content?.name ?? '') : `(${answer.action})`;
}

// ---------------------------------------------------------------------------------------------
// input-required-result-* fixtures (SEP-2322) as mcp-tasks task tools (default mode): called by a
// client without the Tasks extension, a task tool asks its questions with InputRequiredResult
// rounds and each retry resumes the same durable task. Question keys are the ones the scenarios
// name (AskOptions.key), so answers sent ahead of the question are used too.
// ---------------------------------------------------------------------------------------------

if (mrtrMode === 'project') {
  const optional = (description: string) => ({ description, inputSchema: z.object({}), taskSupport: 'optional' as const });
  const capital = { messages: [{ role: 'user', content: { type: 'text', text: 'What is the capital of France?' } }], maxTokens: 100 };
  const sampledText = (result: { content: unknown }) => {
    const block = (Array.isArray(result.content) ? result.content[0] : result.content) as { text?: unknown } | undefined;
    return typeof block?.text === 'string' ? block.text : '';
  };
  tasks.registerTool('test_input_required_result_elicitation', optional('SEP-2322 A1: asks for a name (elicitation).'), async (_args, ctx) =>
    text(`Hello, ${await askName(ctx, 'What is your name?', 'user_name')}!`),
  );
  tasks.registerTool('test_input_required_result_sampling', optional('SEP-2322 A2: asks the client model (sampling).'), async (_args, ctx) =>
    text(`sampled: ${sampledText(await ctx.sample(capital, { key: 'capital_question' }))}`),
  );
  tasks.registerTool('test_input_required_result_list_roots', optional('SEP-2322 A3: asks for the client roots.'), async (_args, ctx) => {
    const { roots } = await ctx.listRoots({ key: 'client_roots' });
    return text(`roots: ${roots.map((root) => root.uri).join(', ')}`);
  });
  for (const name of ['test_input_required_result_request_state', 'test_input_required_result_tampered_state']) {
    tasks.registerTool(name, optional('SEP-2322 A4/A12: asks for confirmation (requestState round trip).'), async (_args, ctx) => {
      const answer = await ctx.elicit('Please confirm', { type: 'object', properties: { ok: { type: 'boolean' } }, required: ['ok'] }, { key: 'confirm' });
      return text(answer.action === 'accept' && answer.content?.ok === true ? 'state-ok' : `not confirmed (${answer.action})`);
    });
  }
  tasks.registerTool('test_input_required_result_multiple_inputs', optional('SEP-2322 A5: elicitation + sampling + roots at once.'), async (_args, ctx) => {
    const [name, greeting, roots] = await Promise.all([
      askName(ctx, 'What is your name?', 'user_name'),
      ctx.sample({ messages: [{ role: 'user', content: { type: 'text', text: 'Generate a greeting' } }], maxTokens: 50 }, { key: 'greeting' }),
      ctx.listRoots({ key: 'client_roots' }),
    ]);
    return text(`all inputs received for ${name}: ${sampledText(greeting)} (${roots.roots.length} roots)`);
  });
  tasks.registerTool('test_input_required_result_multi_round', optional('SEP-2322 A6: two rounds of elicitation.'), async (_args, ctx) => {
    const name = await askName(ctx, 'Step 1: What is your name?', 'step1');
    const color = await ctx.elicit(
      'Step 2: What is your favorite color?',
      { type: 'object', properties: { color: { type: 'string' } }, required: ['color'] },
      { key: 'step2' },
    );
    return text(`${name} likes ${String(color.content?.color ?? color.action)}`);
  });
  tasks.registerTool('test_input_required_result_capabilities', optional('SEP-2322 A13: asks what the creating client can answer.'), async (_args, ctx) => {
    if (ctx.clientCapabilities?.elicitation) await askName(ctx, 'What is your name?', 'answer');
    else if (ctx.clientCapabilities?.sampling)
      await ctx.sample({ messages: [{ role: 'user', content: { type: 'text', text: 'Pick a name' } }], maxTokens: 20 }, { key: 'answer' });
    return text('done');
  });
}

/**
 * A9 (prompts/get): prompts are not tasks, so the fixture serves its prompt the way a user of the
 * package would, with the SDK's own stateless MRTR helpers on the same McpServer.
 */
function registerPromptFixture(mcp: McpServer): void {
  mcp.registerPrompt('test_input_required_result_prompt', { description: 'SEP-2322 A9' }, async (ctx) => {
    const context = acceptedContent(ctx.mcpReq.inputResponses, 'user_context')?.context;
    if (typeof context !== 'string')
      return inputRequired({
        inputRequests: {
          user_context: inputRequired.elicit({
            message: 'What context should the prompt use?',
            requestedSchema: { type: 'object', properties: { context: { type: 'string' } }, required: ['context'] },
          }),
        },
      });
    return { messages: [{ role: 'user', content: { type: 'text', text: `Use this context: ${context}` } }] };
  });
}

// ---------------------------------------------------------------------------------------------
// Diagnostic baseline (CONFORMANCE_MRTR=sdk): the same SEP-2322 fixtures with the SDK's own MRTR.
// ---------------------------------------------------------------------------------------------

const requestStateCodec = createRequestStateCodec<{ round: number }>({ key: 'conformance-fixture-request-state-key-0123456789' });

function registerSdkMrtrFixtures(mcp: McpServer): void {
  const nameQuestion = (message: string) =>
    inputRequired.elicit({ message, requestedSchema: { type: 'object', properties: { name: { type: 'string' } }, required: ['name'] } });
  const isElicit = (v: ReturnType<typeof inputResponse>) => v.kind === 'elicit';
  const samplingQuestion = (prompt: string, maxTokens: number) =>
    inputRequired.createMessage({ messages: [{ role: 'user', content: { type: 'text', text: prompt } }], maxTokens });

  mcp.registerTool('test_input_required_result_elicitation', { description: 'SEP-2322 A1', inputSchema: z.object({}) }, async (_a, ctx) => {
    const name = acceptedContent(ctx.mcpReq.inputResponses, 'user_name')?.name;
    if (typeof name !== 'string') return inputRequired({ inputRequests: { user_name: nameQuestion('What is your name?') } });
    return text(`Hello, ${name}!`);
  });
  mcp.registerTool('test_input_required_result_sampling', { description: 'SEP-2322 A2', inputSchema: z.object({}) }, async (_a, ctx) => {
    const answer = inputResponse(ctx.mcpReq.inputResponses, 'capital_question');
    if (answer.kind !== 'sampling') return inputRequired({ inputRequests: { capital_question: samplingQuestion('What is the capital of France?', 100) } });
    const content = answer.result.content as { type: string; text?: string };
    return text(`sampled: ${content.text ?? ''}`);
  });
  mcp.registerTool('test_input_required_result_list_roots', { description: 'SEP-2322 A3', inputSchema: z.object({}) }, async (_a, ctx) => {
    const answer = inputResponse(ctx.mcpReq.inputResponses, 'client_roots');
    if (answer.kind !== 'roots') return inputRequired({ inputRequests: { client_roots: inputRequired.listRoots() } });
    return text(`roots: ${answer.roots.map((r) => r.uri).join(', ')}`);
  });
  const confirmFlow = async (ctx: ServerContext) => {
    const state = ctx.mcpReq.requestState<{ round: number }>();
    const ok = acceptedContent(ctx.mcpReq.inputResponses, 'confirm')?.ok;
    if (state?.round !== 1 || ok !== true)
      return inputRequired({
        inputRequests: {
          confirm: inputRequired.elicit({
            message: 'Please confirm',
            requestedSchema: { type: 'object', properties: { ok: { type: 'boolean' } }, required: ['ok'] },
          }),
        },
        requestState: await requestStateCodec.mint({ round: 1 }),
      });
    return text('state-ok');
  };
  mcp.registerTool('test_input_required_result_request_state', { description: 'SEP-2322 A4', inputSchema: z.object({}) }, async (_a, ctx) => confirmFlow(ctx));
  mcp.registerTool('test_input_required_result_tampered_state', { description: 'SEP-2322 A12', inputSchema: z.object({}) }, async (_a, ctx) =>
    confirmFlow(ctx),
  );
  mcp.registerTool('test_input_required_result_multiple_inputs', { description: 'SEP-2322 A5', inputSchema: z.object({}) }, async (_a, ctx) => {
    const r = ctx.mcpReq.inputResponses;
    const done =
      isElicit(inputResponse(r, 'user_name')) && inputResponse(r, 'greeting').kind === 'sampling' && inputResponse(r, 'client_roots').kind === 'roots';
    if (!done || ctx.mcpReq.requestState() === undefined)
      return inputRequired({
        inputRequests: {
          user_name: nameQuestion('What is your name?'),
          greeting: samplingQuestion('Generate a greeting', 50),
          client_roots: inputRequired.listRoots(),
        },
        requestState: await requestStateCodec.mint({ round: 1 }),
      });
    return text(`all inputs received for ${String(acceptedContent(r, 'user_name')?.name)}`);
  });
  mcp.registerTool('test_input_required_result_multi_round', { description: 'SEP-2322 A6', inputSchema: z.object({}) }, async (_a, ctx) => {
    const round = ctx.mcpReq.requestState<{ round: number }>()?.round ?? 0;
    const r = ctx.mcpReq.inputResponses;
    if (round === 1 && typeof acceptedContent(r, 'step1')?.name === 'string')
      return inputRequired({
        inputRequests: {
          step2: inputRequired.elicit({
            message: 'Step 2: What is your favorite color?',
            requestedSchema: { type: 'object', properties: { color: { type: 'string' } }, required: ['color'] },
          }),
        },
        requestState: await requestStateCodec.mint({ round: 2 }),
      });
    if (round === 2 && typeof acceptedContent(r, 'step2')?.color === 'string') return text(`favorite color: ${String(acceptedContent(r, 'step2')?.color)}`);
    return inputRequired({ inputRequests: { step1: nameQuestion('Step 1: What is your name?') }, requestState: await requestStateCodec.mint({ round: 1 }) });
  });
  mcp.registerTool('test_input_required_result_capabilities', { description: 'SEP-2322 A13', inputSchema: z.object({}) }, async (_a, ctx) => {
    const caps = (ctx.mcpReq.envelope as { clientCapabilities?: { elicitation?: unknown; sampling?: unknown } } | undefined)?.clientCapabilities;
    if (inputResponse(ctx.mcpReq.inputResponses, 'answer').kind !== 'missing') return text('done');
    if (caps?.elicitation) return inputRequired({ inputRequests: { answer: nameQuestion('What is your name?') } });
    return inputRequired({ inputRequests: { answer: samplingQuestion('Pick a name', 20) } });
  });
}

// ---------------------------------------------------------------------------------------------
// Serving
// ---------------------------------------------------------------------------------------------

// CONFORMANCE_HOST=hono: the endpoint mounted in a Hono app on Node through the web-standard handler
// (createMcpHttpHandler(...).fetch) instead of startHttpServer's node:http server.
const endpoint: McpHttpHandlerOptions = {
  taskSubscriptions: new TaskSubscriptions(runtime),
  // The fast path, as createTaskServer serves by default (CONFORMANCE_FAST_PATH=off: every request through the SDK).
  ...(process.env.CONFORMANCE_FAST_PATH !== 'off' && { fastPath: tasks.fastPath }),
  onError: (error) => log(`http: ${String(error)}`),
  createMcpServer: ({ protocolVersion }) => {
    const mcp = new McpServer(
      { name: 'mcp-tasks-conformance-fixture', version: '0.1.0' },
      mrtrMode === 'sdk' ? { requestState: { verify: requestStateCodec.verify } } : undefined,
    );
    tasks.attach(mcp, { protocolVersion });
    mcp.registerTool('greet', { description: 'Sync-only: returns "Hello, {name}!"', inputSchema: z.object({ name: z.string() }) }, async ({ name }) =>
      text(`Hello, ${name}!`),
    );
    if (mrtrMode === 'sdk') registerSdkMrtrFixtures(mcp);
    registerPromptFixture(mcp);
    return mcp;
  },
};
const http =
  process.env.CONFORMANCE_HOST === 'hono' ? await serveOnHono(createMcpHttpHandler(endpoint)) : await startHttpServer({ host: '127.0.0.1', port, ...endpoint });

/** Serves `handler` at /mcp of a Hono app (the SDK's createMcpHonoApp: Host/Origin checks) on 127.0.0.1:`port`. */
async function serveOnHono(handler: ReturnType<typeof createMcpHttpHandler>): Promise<{ url: string; close(): Promise<void> }> {
  const app = createMcpHonoApp();
  app.all('/mcp', (c) => handler.fetch(c.req.raw));
  const server = await new Promise<ReturnType<typeof serve>>((resolve) => {
    const started = serve({ fetch: app.fetch, hostname: '127.0.0.1', port }, () => resolve(started));
  });
  const { port: bound } = server.address() as { port: number };
  return {
    url: `http://127.0.0.1:${bound}/mcp`,
    close: async () => {
      await handler.close();
      await new Promise((resolve) => server.close(resolve));
    },
  };
}
await runtime.recover();
log(
  `listening on ${http.url} (store ${process.env.CONFORMANCE_STORE ?? 'memory:'}, executor ${executorName}, host ${process.env.CONFORMANCE_HOST ?? 'node:http'}, MRTR fixtures: ${mrtrMode})`,
);
process.stdout.write(`CONFORMANCE_SERVER_URL=${http.url}\n`);

let stopping = false;
const stop = async () => {
  if (stopping) return;
  stopping = true;
  await http.close();
  await runtime.close();
  await store.close();
  for (const cleanup of cleanups) await cleanup().catch((error: unknown) => log(`cleanup: ${String(error)}`));
  process.exit(0);
};
process.on('SIGTERM', () => void stop());
process.on('SIGINT', () => void stop());
