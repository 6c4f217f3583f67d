/**
 * Bounded fuzzing of the task surface in both eras: thousands of malformed `tasks/*` and `tools/call`
 * requests (wrong types, huge strings, unknown ids, wrong states, garbage bodies). Each must get the
 * spec's error code, the server must stay up, and stored tasks must be unchanged.
 */
import assert from 'node:assert/strict';
import { it } from 'node:test';
import { ModernRawClient } from './helpers/modern-client.js';
import { RawMcpClient, type RpcMessage } from './helpers/raw-client.js';
import { prng } from './helpers/prng.js';
import { startTestServer } from './helpers/test-server.js';
import { until } from './helpers/until.js';

it('thousands of malformed task requests get the spec error codes and change nothing', { timeout: 180_000 }, async () => {
  const seed = Number(process.env.FUZZ_SEED ?? Date.now() % 1_000_000);
  const random = prng(seed);
  const pick = <T>(items: readonly T[]): T => items[Math.floor(random() * items.length)]!;
  const server = await startTestServer('memory:');
  try {
    const legacy = new RawMcpClient(server.url);
    await legacy.initialize();
    const modern = new ModernRawClient(server.url);
    // Real tasks in every state, to aim wrong-state requests at.
    const done = (await legacy.request('tools/call', { name: 'echo', arguments: { text: 'x' }, task: {} })).result.task.taskId;
    await legacy.request('tasks/result', { taskId: done });
    const waiting = (await legacy.request('tools/call', { name: 'ask', arguments: { question: 'q' }, task: {} })).result.task.taskId;
    const cancelled = (await legacy.request('tools/call', { name: 'slow', arguments: { ms: 60_000 }, task: {} })).result.task.taskId;
    await legacy.request('tasks/cancel', { taskId: cancelled });
    await until(async () => (await legacy.request('tasks/get', { taskId: waiting })).result.status === 'input_required', {
      intervalMs: 10,
      what: 'the ask task to be input_required',
    });
    // What requestors can see; lease renewals by the runtime's heartbeat are bookkeeping, not changes.
    const snapshot = async () =>
      JSON.stringify(
        (await server.store.list(null, undefined, 1000)).tasks.map((t) => [t.taskId, t.status, t.statusMessage, t.lastUpdatedAt, t.inputRequests, t.outcome]),
      );
    const before = await snapshot();

    const huge = 'x'.repeat(200_000);
    const badIds = [42, null, true, {}, [], '', huge, 'no-such-task', '../../etc/passwd', '\u0000', -1, 1e308];
    const badValues = [42, null, true, 'str', [], {}, huge, -1, { nested: { deep: [1, 2, 3] } }];
    let checked = 0;
    const expect = (label: string, res: RpcMessage, codes: number[]) => {
      checked++;
      assert.ok(res.error, `${label}: expected an error, got ${String(JSON.stringify(res.result)).slice(0, 200)} (seed ${seed})`);
      assert.ok(codes.includes(res.error.code), `${label}: code ${res.error.code} not in ${codes} — ${res.error.message.slice(0, 200)} (seed ${seed})`);
    };

    const cases: (() => Promise<void>)[] = [
      async () => {
        const method = pick(['tasks/get', 'tasks/result', 'tasks/cancel']);
        const taskId = pick(badIds);
        expect(`2025 ${method} ${JSON.stringify(taskId).slice(0, 40)}`, await legacy.request(method, { taskId }), [-32602]);
      },
      async () => expect('2025 tasks/cancel of an ended task', await legacy.request('tasks/cancel', { taskId: pick([done, cancelled]) }), [-32602]),
      async () => expect('2025 tasks/result of a cancelled task', await legacy.request('tasks/result', { taskId: cancelled }), [-32602]),
      async () => expect('2025 tasks/list', await legacy.request('tasks/list', { cursor: pick(badValues) }), [-32601, -32602]),
      async () => {
        // echo and ask have required string fields, so none of badValues is valid for them.
        const params = { name: pick(['echo', 'ask']), arguments: pick(badValues), task: {} };
        expect(`2025 tools/call bad arguments ${JSON.stringify(params.arguments).slice(0, 40)}`, await legacy.request('tools/call', params), [-32602]);
      },
      async () => {
        const task = pick(badValues.filter((v) => v !== null && typeof v !== 'object'));
        expect(
          `2025 tools/call bad task ${JSON.stringify(task).slice(0, 40)}`,
          await legacy.request('tools/call', { name: 'echo', arguments: { text: 'x' }, task }),
          [-32602],
        );
      },
      async () =>
        expect(
          '2025 tools/call bad ttl',
          await legacy.request('tools/call', { name: 'echo', arguments: { text: 'x' }, task: { ttl: pick(['soon', -5, {}, [], true]) } }),
          [-32602],
        ),
      async () => expect('2025 tools/call bad name', await legacy.request('tools/call', { name: pick(badValues), arguments: {}, task: {} }), [-32602, -32601]),
      async () => expect('2025 tools/call non-task tool with task', await legacy.request('tools/call', { name: 'plain', arguments: {}, task: {} }), [-32601]),
      async () => expect('2025 required tool without task', await legacy.request('tools/call', { name: 'report', arguments: {} }), [-32601]),
      async () => expect('2025 unknown method', await legacy.request(`tasks/${pick(['delete', 'purge', 'update', 'x'])}`, { taskId: waiting }), [-32601]),
      async () => {
        const method = pick(['tasks/get', 'tasks/cancel', 'tasks/update']);
        const taskId = pick(badIds.filter((id) => id !== huge)); // a 200 kB Mcp-Name header is refused by HTTP (431) before MCP
        const res = await modern.request(method, { taskId, inputResponses: {} });
        expect(`2026 ${method} ${JSON.stringify(taskId).slice(0, 40)}`, res, [-32602, -32020]);
      },
      async () => {
        // Not objects at all, a non-object answer, or an answer with an invalid action. (An empty object, or an
        // answer to an unknown key, is valid and acknowledged: unknown keys are ignored by the spec.)
        const notObjects = badValues.filter((v) => typeof v !== 'object' || v === null || Array.isArray(v));
        const responses = pick([{ 'elicit-1': pick(notObjects) }, { 'elicit-1': { action: pick(['maybe', 1, null]) } }, pick(notObjects)]);
        const res = await modern.request('tasks/update', { taskId: waiting, inputResponses: responses as never });
        expect(`2026 tasks/update bad inputResponses ${JSON.stringify(responses).slice(0, 60)}`, res, [-32602]);
      },
      async () => expect('2026 tasks/result', await modern.request('tasks/result', { taskId: pick([done, waiting, 'x']) }), [-32601]),
      async () => expect('2026 tasks/list', await modern.request('tasks/list', {}), [-32601]),
      async () =>
        expect('2026 tools/call bad arguments', await modern.request('tools/call', { name: pick(['echo', 'ask']), arguments: pick(badValues) }), [-32602]),
      async () => {
        checked++;
        const garbage = pick(['{', 'null', '[]', '{"jsonrpc":"2.0"}', huge.slice(0, 5000), '{"jsonrpc":"2.0","id":1,"method":5}']);
        const res = await legacy.post(garbage);
        assert.ok(res.status >= 400 || (await res.text()).includes('"error"'), `garbage ${garbage.slice(0, 20)} → ${res.status} (seed ${seed})`);
      },
    ];

    const rounds = Number(process.env.FUZZ_ROUNDS ?? 2000);
    for (let i = 0; i < rounds; i++) await pick(cases)();
    assert.ok(checked >= rounds);

    assert.equal(await snapshot(), before, `stored tasks are unchanged (seed ${seed})`);
    assert.equal((await legacy.request('tasks/get', { taskId: waiting })).result.status, 'input_required');
    assert.equal(
      (await legacy.request('tools/call', { name: 'echo', arguments: { text: 'still up' } })).result.content[0].text,
      'still up',
      'the server is still up',
    );
  } finally {
    await server.close();
  }
});
