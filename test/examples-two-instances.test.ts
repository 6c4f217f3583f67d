/**
 * `examples/two-instances/server.ts` run the way a team runs it behind a load balancer: two instances
 * (child processes, port 0) on one PostgreSQL schema, driven by the official SDK v2 client
 * (`connectTaskClient`: the SDK's `Client` and the ext-tasks requester), in each protocol version.
 *
 * - A task created on A is read (`tasks/get`) on B, its question answered through B (2026-07-28:
 *   `tasks/update`; 2025-11-25: the `elicitation/create` B sends on its `tasks/result` stream), and
 *   its result fetched from A.
 * - A second task: the instance running it (its build step logged which) is SIGKILLed while the
 *   task waits on its durable timer; the other takes it over once the lease (1.5 s here) runs out,
 *   fires the timer, asks, and finishes it — the build step (which appends a line to a file) ran once.
 */
import assert from 'node:assert/strict';
import type { ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { after, before, describe, it } from 'node:test';
import { taskId as toTaskId } from '@modelcontextprotocol/ext-tasks/core';
import * as z from 'zod';
import { connectTaskClient, type TaskClient } from '../src/client/connect.js';
import { dropSchemas, PG_URL, withParam } from './helpers/services.js';
import { until } from './helpers/until.js';
import { startExample, type ExampleProcess } from './helpers/example-process.js';

const example = fileURLToPath(new URL('../examples/two-instances/server.ts', import.meta.url));
const dir = mkdtempSync(join(tmpdir(), 'mcp-tasks-two-instances-'));
const schema = `mcpt_two_${randomBytes(3).toString('hex')}`;
const store = withParam(PG_URL, 'schema', schema);
const buildLog = join(dir, 'builds.log');
const children: ChildProcess[] = [];
after(async () => {
  for (const child of children) child.kill('SIGKILL');
  rmSync(dir, { recursive: true, force: true });
  await dropSchemas(schema);
});

/** One instance of the example (see `ExampleProcess`), by name. */
type Instance = ExampleProcess & { name: string };

/** Starts one instance of the example on a free port over the test's schema; resolves once it listens. */
async function start(name: string): Promise<Instance> {
  const instance = await startExample(example, { STORE: store, PORT: '0', INSTANCE: name, LEASE_MS: '1500', BUILD_LOG: buildLog }, children);
  return { ...instance, name };
}

/** The lines the build steps appended for `version` (one per run of a build step). */
const builds = (version: string) => (existsSync(buildLog) ? readFileSync(buildLog, 'utf8').split('\n') : []).filter((line) => line.startsWith(`${version} `));

const APPROVE = { action: 'accept', content: { approve: true } } as const;

for (const version of ['2026-07-28', '2025-11-25'] as const)
  describe(`two instances on one PostgreSQL schema (${version})`, { timeout: 90_000 }, () => {
    let a: Instance;
    let b: Instance;
    let clientA: TaskClient;
    let clientB: TaskClient;
    const askedB: string[] = [];

    before(async () => {
      [a, b] = await Promise.all([start(`A-${version}`), start(`B-${version}`)]);
      // A's client never answers (it leaves every question pending); B's approves.
      clientA = await connectTaskClient(a.url, { protocolVersion: version, answer: async () => undefined });
      clientB = await connectTaskClient(b.url, {
        protocolVersion: version,
        answer: async (question) => {
          askedB.push(question.message);
          return APPROVE;
        },
      });
      assert.equal(clientA.protocolVersion, version);
      assert.equal(clientB.protocolVersion, version);
    });
    after(async () => {
      await clientA.close();
      await clientB.close();
      for (const instance of [a, b]) instance.child.kill('SIGKILL');
    });

    /** Starts a `deploy` task on A; resolves with its id. */
    async function deployOnA(release: string, windowSeconds: number): Promise<string> {
      const execution = await clientA.session.callTool('deploy', { version: release, windowSeconds }, { task: { preference: 'require' } });
      assert.equal(execution.kind, 'task');
      // Not followed from here: without this, ext-tasks' own driver of the execution would poll the
      // task and, as A's client leaves questions unanswered, answer `cancel` for it (2026-07-28).
      await execution.detach();
      await execution.result().catch(() => undefined);
      return execution.handle!.taskId;
    }

    /** Polls `tasks/get` through `client` until `ok(task)`. */
    function untilTask(client: TaskClient, taskId: string, ok: (task: { status: string; statusMessage?: string }) => boolean, what: string) {
      let last: unknown;
      return until(
        async () => {
          const view = await client.session.task(toTaskId(taskId)).snapshot();
          last = view.raw;
          return ok(view) && view;
        },
        { timeoutMs: 20_000, intervalMs: 50, what: () => `${what} (${client.url}): ${JSON.stringify(last)}` },
      );
    }

    /** Answers the task's approval question through B the way each version does it (B's client approves). */
    async function approveThroughB(taskId: string): Promise<void> {
      if (version === '2026-07-28') {
        const asking = await untilTask(clientB, taskId, (task) => task.status === 'input_required', 'the approval question');
        const [key] = Object.keys((asking.raw.inputRequests ?? {}) as object);
        assert.ok(key, JSON.stringify(asking.raw));
        await clientB.session.task(toTaskId(taskId)).update({ [key]: APPROVE });
      } else {
        // 2025-11-25: B sends the question as an `elicitation/create` on its tasks/result stream (or on
        // the client's GET stream, if that comes first), which B's client answers; the call ends with the task.
        await clientB.client.request({ method: 'tasks/result', params: { taskId } } as never, z.looseObject({}) as never);
        assert.match(askedB.at(-1) ?? '', /^Deploy v\d-2025-11-25\+/, "B's client was asked");
      }
    }

    /** The task's result text, fetched through `client`. */
    async function resultText(client: TaskClient, taskId: string): Promise<string> {
      const outcome = await client.session.task(toTaskId(taskId)).result<{ content: { type: string; text: string }[] }>();
      assert.equal(outcome.status, 'completed', JSON.stringify(outcome));
      return (outcome as { result: { content: { text: string }[] } }).result.content[0]!.text;
    }

    it('a task created on A is read on B, answered through B, and its result fetched from A', async () => {
      const release = `v1-${version}`;
      const taskId = await deployOnA(release, 1);
      await untilTask(clientB, taskId, (task) => task.status === 'working', 'B reads the task');
      await approveThroughB(taskId);
      assert.match(await resultText(clientA, taskId), new RegExp(`^Deployed ${release}\\+\\w+ \\(finished on A-${version}\\)$`));
      assert.deepEqual(builds(release), [`${release} built on A-${version}`]);
    });

    it('the instance running a task is SIGKILLed at its timer: the other takes it over after the lease and finishes it, the build step run once', async () => {
      const release = `v2-${version}`;
      const taskId = await deployOnA(release, 3);
      await untilTask(clientB, taskId, (task) => /^Waiting until/.test(task.statusMessage ?? ''), 'the task waits on its timer');
      assert.deepEqual(builds(release), [`${release} built on A-${version}`], 'A runs the task it created');
      await clientA.close();
      a.child.kill('SIGKILL');
      await new Promise((resolve) => (a.child.exitCode === null && a.child.signalCode === null ? a.child.once('exit', resolve) : resolve(undefined)));

      await approveThroughB(taskId);
      assert.match(await resultText(clientB, taskId), new RegExp(`^Deployed ${release}\\+\\w+ \\(finished on B-${version}\\)$`));
      assert.deepEqual(builds(release), [`${release} built on A-${version}`], 'the build step ran once: B replayed its journaled result');
      const takeover = b
        .log()
        .split('\n')
        .find((line) => line.includes('task taken over from an instance presumed dead'));
      assert.match(takeover ?? '', new RegExp(`"taskId":"${taskId}".*"previousHolder":"A-${version}"`), b.log());
      assert.doesNotMatch(b.log(), /"level":(50|60)/, 'B logged no error');
    });
  });
