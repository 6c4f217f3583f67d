/**
 * The operator console and stalled tasks (a tool's `stallAfterMs`) and deadlines: the "Stalled only"
 * filter lists exactly the flagged tasks, the badge marks them in the list and on the task page,
 * the page offers Cancel on a stalled task, and the timeline shows the stall (flagged → resumed) and
 * a deadline that ended a task. Plain HTTP, loopback console without operator tokens.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import * as z from 'zod';
import { ENGINE_ACCESS } from '../src/core/access.js';
import { silentLogger } from '../src/core/log.js';
import type { TaskContext } from '../src/runtime/context.js';
import { createTaskServer, type TaskServer } from '../src/server/task-server.js';
import { ConsoleHttp, rowIds } from './helpers/console-http.js';
import { until } from './helpers/until.js';

const text = (t: string) => ({ content: [{ type: 'text', text: t }] });
const soon = { timeoutMs: 8000, intervalMs: 20 };

describe('console: stalled tasks and deadlines', () => {
  let server: TaskServer;
  let ops: ConsoleHttp;
  const gates = new Map<string, () => void>();
  before(async () => {
    server = createTaskServer({ store: 'memory:', logger: silentLogger, console: true });
    server.registerTool(
      'fetcher',
      { description: 'Waits for a gate without activity', inputSchema: z.object({ gate: z.string() }), taskSupport: 'optional', stallAfterMs: 100 },
      async ({ gate }, ctx: TaskContext) => {
        await ctx.step('prepare', () => 'ready');
        await new Promise<void>((resolve) => gates.set(gate, resolve));
        await ctx.progress(1, 1, 'fetched');
        return text('done');
      },
    );
    server.registerTool(
      'budgeted',
      { description: 'Never returns', inputSchema: z.object({}), taskSupport: 'optional', deadlineMs: 200 },
      () => new Promise(() => undefined),
    );
    const http = await server.listen({ port: 0 });
    ops = new ConsoleHttp(new URL(http.url).origin);
  });
  after(() => server.close());

  it('filters and badges stalled tasks, offers Cancel on them, and draws flagged → resumed on the timeline', async () => {
    const submit = (gate: string) => server.runtime.submit({ owner: null, tool: 'fetcher', arguments: { gate }, errorResultStatus: 'failed' });
    const stuck = await submit('stuck');
    const released = await submit('released');
    for (const { taskId } of [stuck, released])
      await until(async () => (await server.store.get(taskId, ENGINE_ACCESS)).stalled, { ...soon, what: 'the stall flags' });
    gates.get('released')!();
    await server.runtime.waitForTerminal(released.taskId, null);

    const filtered = await ops.get('/console/?stalled=1');
    assert.equal(filtered.status, 200);
    assert.deepEqual(rowIds(filtered.text), [stuck.taskId], 'only the task still stalled');
    assert.match(filtered.text, /<input type="checkbox" name="stalled" value="1" checked/);
    const all = await ops.get('/console/');
    assert.deepEqual(new Set(rowIds(all.text)), new Set([stuck.taskId, released.taskId]));
    const row = (page: string, taskId: string) => new RegExp(`<tr data-task-id="${taskId}">[\\s\\S]*?</tr>`).exec(page)?.[0] ?? '';
    assert.match(row(all.text, stuck.taskId), /data-stalled/);
    assert.doesNotMatch(row(all.text, released.taskId), /data-stalled/, 'cleared by its activity');

    const page = await ops.get(`/console/tasks/${stuck.taskId}`);
    assert.match(page.text, /data-stalled title="no activity since/);
    assert.match(page.text, /data-stalled-since/);
    assert.match(page.text, /data-action="confirm-cancel"/, 'a stalled task can be cancelled');
    assert.match(page.text, /data-kind="stall" data-state="waiting"/);
    const resumedPage = await ops.get(`/console/tasks/${released.taskId}`);
    assert.match(resumedPage.text, /data-kind="stall" data-state="done"/);
    assert.match(resumedPage.text, /resumed with progress/);

    const cancelled = await ops.post(`/console/tasks/${stuck.taskId}/cancel`, { confirm: 'yes' });
    assert.equal(cancelled.status, 303);
    const after = await server.store.get(stuck.taskId, ENGINE_ACCESS);
    assert.equal(after.status, 'cancelled');
    assert.equal(after.stalled, undefined, 'an ended task is no longer stalled');
    assert.deepEqual(rowIds((await ops.get('/console/?stalled=1')).text), []);
  });

  it('shows the deadline, and the deadline that ended a task on its timeline', async () => {
    const task = await server.runtime.submit({ owner: null, tool: 'budgeted', arguments: {}, errorResultStatus: 'failed' });
    const live = await ops.get(`/console/tasks/${task.taskId}`);
    assert.match(live.text, /data-deadline/);
    assert.equal((await server.runtime.waitForTerminal(task.taskId, null))?.status, 'failed');
    const page = await ops.get(`/console/tasks/${task.taskId}`);
    assert.match(page.text, /data-kind="deadline" data-state="failed"/);
    assert.match(page.text, /deadline exceeded/);
  });
});
