/**
 * "Never act for a human", in the package's client (`connectTaskClient`): an `answer` callback that
 * resolves `undefined` ("decide later", Ctrl-C, nobody there) sends nothing, in either era — the
 * question stays pending on the server, untouched, until someone answers it; and closing the client
 * cancels nothing. (ext-tasks answers a 2026-07-28 task question whose handler throws with
 * `{ action: 'cancel' }`, and its `session.close()` cancels every unsettled execution: the client
 * must let neither happen.)
 */
import assert from 'node:assert/strict';
import { after, it } from 'node:test';
import * as z from 'zod';
import { connectTaskClient } from '../src/client/connect.js';
import { createTaskServer, silentLogger } from '../src/index.js';
import { until } from './helpers/until.js';

const server = createTaskServer({ store: 'memory:', logger: silentLogger }).registerTool(
  'approve',
  { description: 'Asks for an approval', inputSchema: z.object({}), taskSupport: 'optional' },
  async (_args, ctx) => {
    const answer = await ctx.elicit('Approve?', { type: 'object', properties: { ok: { type: 'boolean' } }, required: ['ok'] });
    return { content: [{ type: 'text', text: `${answer.action}:${String(answer.content?.ok)}` }] };
  },
);
const http = await server.listen({ port: 0 });
after(() => server.close());

for (const version of ['2026-07-28', '2025-11-25'] as const) {
  it(`${version}: an unanswered question stays pending, nothing is sent; a later answer completes the task`, async () => {
    let asked = 0;
    const later = await connectTaskClient(http.url, { protocolVersion: version, answer: async () => void asked++ });
    const execution = await later.session.callTool('approve', {}, { task: { preference: 'require' } });
    assert.equal(execution.kind, 'task');
    const taskId = (execution.handle as { taskId: string }).taskId;
    const settled = execution.settle().then(
      () => 'settled',
      () => 'settled',
    );
    await until(() => asked > 0, { what: 'the question to reach the client' });
    // Long enough for an answer sent on the user's behalf to reach the server (it would be at once).
    await new Promise((resolve) => setTimeout(resolve, 1500));
    const task = await server.runtime.get(taskId, null);
    assert.equal(task.status, 'input_required', `the question is still pending (status ${task.status})`);
    assert.equal(Object.keys(task.inputRequests).length, 1);
    // Closing the client (without settling, detaching or cancelling first) leaves the task alone too.
    await later.close();
    await settled;
    assert.equal((await server.runtime.get(taskId, null)).status, 'input_required', 'closing the client cancels nothing');

    const key = Object.keys((await server.runtime.get(taskId, null)).inputRequests)[0]!;
    assert.equal(await server.runtime.provideInput(taskId, key, { action: 'accept', content: { ok: true } }, null), true, 'the answer is the first');
    const done = await until(
      async () => {
        const t = await server.runtime.get(taskId, null);
        return t.status === 'completed' ? t : undefined;
      },
      { what: 'completion' },
    );
    assert.deepEqual(done.outcome, { type: 'result', result: { content: [{ type: 'text', text: 'accept:true' }] } });
  });
}
