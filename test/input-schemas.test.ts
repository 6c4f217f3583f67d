/**
 * `registerTool` takes every input schema the SDK's own `McpServer.registerTool` takes (issue 26 #6):
 * a zod object, a raw zod shape, a plain JSON Schema wrapped with the SDK's `fromJsonSchema`, any
 * other Standard Schema with JSON Schema output (here a hand-written async one) — and refuses what the
 * SDK refuses (a plain JSON Schema object) with the SDK's own words. Each is listed with its JSON
 * Schema by `tools/list`, validates arguments on the task-creating call (-32602 with the issues) and
 * hands the handler the schema's output.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { fromJsonSchema, McpServer, type StandardSchemaWithJSON } from '@modelcontextprotocol/server';
import * as z from 'zod';
import { createTaskServer, InvalidArgumentError, type TaskServer } from '../src/index.js';
import { ModernRawClient } from './helpers/modern-client.js';

const text = (t: string) => ({ content: [{ type: 'text' as const, text: t }] });

/** A Standard Schema that is neither zod nor the SDK's: validates asynchronously and trims `name`. */
const trimmedName: StandardSchemaWithJSON<{ name: string }, { name: string }> = {
  '~standard': {
    version: 1,
    vendor: 'hand-written',
    validate: async (value: unknown) => {
      await new Promise((resolve) => setImmediate(resolve));
      const name = (value as { name?: unknown } | null)?.name;
      return typeof name === 'string' && name.trim().length > 0
        ? { value: { name: name.trim() } }
        : { issues: [{ message: 'name must be a non-empty string', path: ['name'] }] };
    },
    jsonSchema: {
      input: () => ({ type: 'object', properties: { name: { type: 'string', minLength: 1 } }, required: ['name'] }),
      output: () => ({ type: 'object', properties: { name: { type: 'string' } }, required: ['name'] }),
    },
  },
};

describe('task tool input schemas', () => {
  let server: TaskServer;
  let url: string;

  before(async () => {
    server = createTaskServer({ store: 'memory:', logger: undefined, tasks: { onError: () => undefined } });
    server.registerTool('zod-object', { description: 'zod', inputSchema: z.object({ n: z.number().int() }), taskSupport: 'optional' }, async ({ n }) =>
      text(`n=${n + 1}`),
    );
    server.registerTool('zod-shape', { description: 'raw shape', inputSchema: { n: z.number().int() }, taskSupport: 'optional' }, async ({ n }) =>
      text(`n=${n * 2}`),
    );
    server.registerTool(
      'json-schema',
      {
        description: 'plain JSON Schema through fromJsonSchema',
        inputSchema: fromJsonSchema<{ city: string }>({ type: 'object', properties: { city: { type: 'string' } }, required: ['city'] }),
        taskSupport: 'optional',
      },
      async (args) => text(`city=${args.city}`),
    );
    server.registerTool('standard', { description: 'another Standard Schema', inputSchema: trimmedName, taskSupport: 'optional' }, async ({ name }) =>
      text(`name=[${name}]`),
    );
    url = (await server.listen({ port: 0 })).url;
  });
  after(() => server.close());

  const call = async (name: string, args: unknown) => {
    const client = new ModernRawClient(url);
    const created = await client.request('tools/call', { name, arguments: args });
    if (created.error) return { error: created.error };
    const taskId = (created.result as { taskId?: string }).taskId;
    assert.ok(taskId, JSON.stringify(created));
    for (let i = 0; i < 200; i++) {
      const got = await client.request('tasks/get', { taskId });
      const task = got.result as { status: string; result?: { content: { text: string }[] } };
      if (task.status === 'completed') return { text: task.result!.content[0]!.text };
      assert.ok(task.status === 'working', JSON.stringify(got));
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
    throw new Error(`task ${taskId} did not complete`);
  };

  it('lists each tool with the JSON Schema of its input', async () => {
    const listed = (await new ModernRawClient(url).request('tools/list')).result as { tools: { name: string; inputSchema: Record<string, unknown> }[] };
    const schemaOf = (name: string) => listed.tools.find((tool) => tool.name === name)!.inputSchema;
    assert.deepEqual((schemaOf('zod-object').properties as Record<string, unknown>).n, (schemaOf('zod-shape').properties as Record<string, unknown>).n);
    assert.deepEqual(schemaOf('json-schema').properties, { city: { type: 'string' } });
    assert.deepEqual(schemaOf('json-schema').required, ['city']);
    assert.deepEqual(schemaOf('standard').properties, { name: { type: 'string', minLength: 1 } });
  });

  it('runs each with the schema output as the handler arguments', async () => {
    assert.deepEqual(await call('zod-object', { n: 1 }), { text: 'n=2' });
    assert.deepEqual(await call('zod-shape', { n: 4 }), { text: 'n=8' });
    assert.deepEqual(await call('json-schema', { city: 'Lyon' }), { text: 'city=Lyon' });
    assert.deepEqual(await call('standard', { name: '  Ada ' }), { text: 'name=[Ada]' }, 'the async schema output (trimmed) reaches the handler');
  });

  it('refuses arguments that do not fit with -32602 naming each issue, storing nothing', async () => {
    for (const [name, args, issue] of [
      ['zod-object', { n: 1.5 }, /n/],
      ['zod-shape', { n: 'x' }, /n/],
      ['json-schema', { city: 7 }, /city must be string/],
      ['standard', { name: '   ' }, /name must be a non-empty string[\s\S]*at name/],
    ] as const) {
      const res = await call(name, args);
      assert.ok('error' in res, `${name}: ${JSON.stringify(res)}`);
      assert.equal(res.error!.code, -32602, name);
      assert.match(res.error!.message, new RegExp(`Invalid arguments for tool ${name}`));
      assert.match(res.error!.message, issue, name);
    }
    const listed = (await server.runtime.list(null)).tasks.filter((task) => task.status !== 'completed');
    assert.deepEqual(listed, [], 'no task was stored for refused arguments');
  });

  it('refuses a plain JSON Schema object with the SDK’s own error, and a hint', () => {
    const plain = { type: 'object', properties: { a: { type: 'string' } } };
    let sdkMessage = '';
    try {
      (new McpServer({ name: 'x', version: '1' }).registerTool as (...args: unknown[]) => unknown)(
        'plain',
        { description: 'd', inputSchema: plain },
        async () => text(''),
      );
    } catch (error) {
      sdkMessage = (error as Error).message;
    }
    assert.ok(sdkMessage.length > 0, 'the SDK refuses it too');
    assert.throws(
      () => server.registerTool('plain', { description: 'd', inputSchema: plain as never, taskSupport: 'optional' }, async () => text('')),
      (error: Error) => {
        assert.ok(error instanceof InvalidArgumentError);
        assert.ok(error.message.startsWith(sdkMessage), `${error.message} starts with the SDK's ${sdkMessage}`);
        assert.match(error.message, /fromJsonSchema/);
        return true;
      },
    );
    assert.equal(server.tasks.toolNames().includes('plain'), false, 'nothing was registered');
  });
});
