/**
 * The 2025-11-25 task input flow done by hand with the official SDK **1.x** `Client` (`sdk-v1`), as a
 * reference requestor for interop peers: call the tool as a task (`params.task`), poll `tasks/get`,
 * and on `input_required` call `tasks/result` (spec "Input Required Status", step 3); the server's
 * queued `elicitation/create` arrives on that call's stream and is answered by the elicitation
 * handler; polling `tasks/get` goes on until the task ends. `callTasksResult: false` only polls
 * (what a client that never calls `tasks/result` sees).
 */
import { Client } from 'sdk-v1/client/index.js';
import { StreamableHTTPClientTransport } from 'sdk-v1/client/streamableHttp.js';
import { CallToolResultSchema, CreateTaskResultSchema, ElicitRequestSchema, GetTaskResultSchema, RELATED_TASK_META_KEY } from 'sdk-v1/types.js';

export interface ReferenceFlowOptions {
  url: string;
  tool: string;
  args: Record<string, unknown>;
  /** The ElicitResult to answer with; undefined = decline if asked (and note it). */
  answer?: { action: 'accept' | 'decline' | 'cancel'; content?: Record<string, unknown> };
  /** Call tasks/result on input_required (default true). */
  callTasksResult?: boolean;
  /** Stop polling after this long (default 30 000 ms). */
  maxMs?: number;
  ttl?: number;
}

export interface ReferenceFlowReport {
  taskId: string;
  /** Each step with its time since the tools/call was sent. */
  steps: { at: number; what: string }[];
  statuses: string[];
  elicitations: { at: number; message: string; relatedTask: unknown; requestedSchema: unknown }[];
  finalStatus: string;
  result?: any;
  /** The client's session id (SDK 1.x tasks are bound to it). */
  sessionId?: string;
}

export async function runReferenceFlow(options: ReferenceFlowOptions): Promise<ReferenceFlowReport> {
  const { url, tool, args, answer, callTasksResult = true, maxMs = 30_000, ttl = 120_000 } = options;
  const client = new Client({ name: 'sdk-v1-reference-requestor', version: '1.0.0' }, { capabilities: { elicitation: { form: {} } } });
  const started = Date.now();
  const report: ReferenceFlowReport = { taskId: '', steps: [], statuses: [], elicitations: [], finalStatus: '' };
  const step = (what: string) => report.steps.push({ at: Date.now() - started, what });
  client.setRequestHandler(ElicitRequestSchema, async (request) => {
    const params = request.params as any;
    report.elicitations.push({
      at: Date.now() - started,
      message: params.message,
      relatedTask: params._meta?.[RELATED_TASK_META_KEY],
      requestedSchema: params.requestedSchema,
    });
    step(
      `elicitation/create received (related-task ${JSON.stringify(params._meta?.[RELATED_TASK_META_KEY])}); answering ${JSON.stringify(answer ?? { action: 'decline' })}`,
    );
    return (answer ?? { action: 'decline' }) as any;
  });
  const transport = new StreamableHTTPClientTransport(new URL(url));
  await client.connect(transport);
  report.sessionId = transport.sessionId;
  try {
    const created = await client.request({ method: 'tools/call', params: { name: tool, arguments: args, task: { ttl } } }, CreateTaskResultSchema);
    const taskId = created.task.taskId;
    report.taskId = taskId;
    step(`tools/call -> CreateTaskResult ${created.task.status} (pollInterval ${created.task.pollInterval})`);
    let resultCall: Promise<any> | undefined;
    let status = created.task.status as string;
    while (Date.now() - started < maxMs) {
      const task = await client.request({ method: 'tasks/get', params: { taskId } }, GetTaskResultSchema);
      if (task.status !== report.statuses.at(-1)) {
        report.statuses.push(task.status);
        step(`tasks/get -> ${task.status}${task.statusMessage ? `: ${task.statusMessage}` : ''}`);
      }
      status = task.status;
      if (status === 'input_required' && callTasksResult && !resultCall) {
        step('tasks/result sent (input_required)');
        resultCall = client.request({ method: 'tasks/result', params: { taskId } }, CallToolResultSchema, { timeout: maxMs }).then(
          (r) => (step('tasks/result returned'), r),
          (e) => (step(`tasks/result failed: ${e.message}`), undefined),
        );
      }
      if (status === 'completed' || status === 'failed' || status === 'cancelled') break;
      await new Promise((r) => setTimeout(r, Math.min(task.pollInterval ?? 500, 500)));
    }
    report.finalStatus = status;
    if (status === 'completed' || status === 'failed') {
      report.result = resultCall
        ? await resultCall
        : await client.request({ method: 'tasks/result', params: { taskId } }, CallToolResultSchema).then((r) => (step('tasks/result returned'), r));
    }
    return report;
  } finally {
    await client.close().catch(() => undefined);
  }
}
