/**
 * Logs an operator can trust: one bounded JSON line per event whatever a client sends, refused
 * client requests without stacks and below warn, and each invoice's lifecycle followable by taskId
 * — without arguments, answers or tokens.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { describe, it } from 'node:test';
import { startInvoiceServer } from '../examples/invoice/server.js';
import { createLogger, MAX_LOGGED_STRING } from '../src/core/log.js';
import { ModernRawClient } from './helpers/modern-client.js';
import { RawMcpClient } from './helpers/raw-client.js';
import { until } from './helpers/until.js';

const invoice = (id: string) => JSON.parse(readFileSync(join('examples/invoice/data/invoices', `${id}.json`), 'utf8'));

/** A logger at debug level whose output is kept as the raw chunks pino writes. */
function capturingLogger() {
  const chunks: string[] = [];
  const destination = new Writable({
    write(chunk, _encoding, done) {
      chunks.push(String(chunk));
      done();
    },
  });
  return { chunks, logger: createLogger({ level: 'debug', destination }) };
}

describe('structured logs', () => {
  it('hostile request values give one bounded, escaped line each; client errors log no stack and stay below warn', async () => {
    const { chunks, logger } = capturingLogger();
    const server = await startInvoiceServer({ store: 'memory:', port: 0, logger });
    try {
      const forged = 'abc\n{"level":60,"msg":"forged fatal line"}';
      const huge = 'x'.repeat(100_000);
      const legacy = new RawMcpClient(server.url!);
      await legacy.initialize();
      const modern = new ModernRawClient(server.url!);
      for (const taskId of [forged, huge]) {
        assert.equal((await legacy.request('tasks/get', { taskId })).error?.code, -32602);
        const viaModern = await modern.request('tasks/get', { taskId });
        // 100 kB in the Mcp-Name header is refused by Node's HTTP parser (431) before any JSON-RPC.
        assert.ok(viaModern.error?.code === -32602 || viaModern.httpStatus === 431, JSON.stringify(viaModern).slice(0, 200));
        // The SDK rejects a request whose Mcp-Name header disagrees with its body (-32020) and reports it.
        const mismatch = await modern.request('tasks/get', { taskId }, { 'mcp-name': 'other' });
        assert.ok(mismatch.error, 'header mismatch refused');
      }
      const probe = await fetch(new URL('/', server.url!));
      assert.equal(probe.status, 404, 'a readiness probe of / gets a plain 404');
      await probe.text();
      // Each refused request is logged before it is answered: the forged id's line is there by now, or soon.
      await until(() => chunks.some((c) => c.includes(JSON.stringify(forged).slice(1, 20))), { what: () => `the forged id logged:\n${chunks.join('')}` });

      assert.ok(chunks.length > 0, 'refused requests are logged (at debug)');
      for (const chunk of chunks) {
        assert.ok(chunk.endsWith('\n') && chunk.indexOf('\n') === chunk.length - 1, `one line per event: ${chunk.slice(0, 120)}`);
        assert.ok(chunk.length < 2_000, `bounded line (${chunk.length} chars)`);
        const line = JSON.parse(chunk);
        assert.notEqual(line.msg, 'forged fatal line');
        if (line.level >= 40) assert.fail(`a client error was logged at level ${line.level}: ${chunk.slice(0, 300)}`);
        assert.equal(line.err?.stack, undefined, 'no stack for a client error');
        for (const value of Object.values(line)) if (typeof value === 'string') assert.ok(value.length <= MAX_LOGGED_STRING + 20);
      }
      assert.ok(
        chunks.some((c) => c.includes(JSON.stringify(forged).slice(1, 20))),
        'the newline reaches the log escaped, inside one line',
      );
    } finally {
      await server.close();
    }
  });

  it('follows an invoice from creation to payment at info level, with taskId, tool and principal, never the answer or token', async () => {
    const { chunks, logger } = capturingLogger();
    const server = await startInvoiceServer({ store: 'memory:', port: 0, logger, tokens: { 's3cr3t-alice': 'alice' }, policy: { pollIntervalMs: 50 } });
    try {
      const alice = new RawMcpClient(server.url!, { authorization: 'Bearer s3cr3t-alice' });
      await alice.initialize();
      const taskId = (await alice.request('tools/call', { name: 'process_invoice', arguments: { invoice: invoice('INV-2026-0001') }, task: {} })).result.task
        .taskId as string;
      const result = await alice.request('tasks/result', { taskId }, async () => ({
        action: 'accept',
        content: { decision: 'approve', comment: 'private-remark-42' },
      }));
      assert.match(JSON.stringify(result.result), /paid/);
      await until(() => chunks.some((c) => c.includes('"msg":"task completed"') && c.includes(taskId)), {
        what: () => `the invoice's 'task completed' line:\n${chunks.join('')}`,
      });

      const lines = chunks.map((c) => JSON.parse(c));
      const events = lines.filter((l) => l.taskId === taskId && l.level === 30);
      assert.deepEqual(
        events.map((l) => l.msg),
        ['task created', 'task waiting for input', 'task input answered', 'task completed'],
      );
      for (const event of events.filter((l) => l.msg !== 'task input answered')) {
        assert.equal(event.tool, 'process_invoice');
        assert.equal(event.principal, 'alice');
      }
      assert.equal(events[2].by, 'alice', 'who answered');
      assert.equal(events[2].action, 'accept');
      const all = chunks.join('');
      assert.doesNotMatch(all, /private-remark-42/, 'answers are never logged');
      assert.doesNotMatch(all, /s3cr3t-alice/, 'tokens are never logged');
      assert.doesNotMatch(all, /Ergonomic office chairs|PO-2026-0417/, 'arguments are never logged');
    } finally {
      await server.close();
    }
  });
});
