/**
 * `examples/stdio-task/server.ts` run as an MCP host runs a stdio server (a command it starts), driven
 * by the official SDK v2 client in 2025-11-25: a task-augmented call, the question answered on the
 * `tasks/result` stream, the result; the process ends when the client closes stdin.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, it } from 'node:test';
import { Client } from '@modelcontextprotocol/client';
import { StdioClientTransport } from '@modelcontextprotocol/client/stdio';
import * as z from 'zod';

const dir = mkdtempSync(join(tmpdir(), 'mcp-tasks-stdio-example-'));
after(() => rmSync(dir, { recursive: true, force: true }));

it('serves a durable task to a host over stdio', { timeout: 60_000 }, async () => {
  const transport = new StdioClientTransport({
    command: process.execPath,
    args: ['--import', 'tsx', 'examples/stdio-task/server.ts'],
    env: { ...(process.env as Record<string, string>), STORE: `sqlite:${join(dir, 'stdio.db')}` },
    stderr: 'pipe',
  });
  const client = new Client({ name: 'host', version: '0' }, { capabilities: { elicitation: { form: {} } } });
  const asked: string[] = [];
  client.setRequestHandler('elicitation/create', async (request) => {
    asked.push((request.params as { message: string }).message);
    return { action: 'accept', content: { go: true } };
  });
  await client.connect(transport);
  try {
    const { tools } = await client.listTools();
    assert.deepEqual(
      tools.map((tool) => tool.name),
      ['count_to'],
    );
    const any = z.looseObject({});
    const created = (await client.request({ method: 'tools/call', params: { name: 'count_to', arguments: { n: 3 }, task: {} } } as never, any as never)) as {
      task: { taskId: string };
    };
    const result = (await client.request({ method: 'tasks/result', params: { taskId: created.task.taskId } } as never, any as never)) as {
      content: { text: string }[];
    };
    assert.equal(result.content[0]?.text, 'Counted to 3.');
    assert.deepEqual(asked, ['Count to 3?']);
  } finally {
    await client.close();
  }
});
