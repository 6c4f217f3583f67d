/**
 * A 2025-11-25 session belongs to the principal that opened it: with alice's session id, bob (with
 * his own valid token) cannot read alice's GET stream, answer her approval question (with the real
 * id or a guessed one), call anything, or end the session — and alice's invoice stays unpaid.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { startInvoiceServer } from '../examples/invoice/server.js';
import { sseMessages } from '../src/client/sse.js';
import { silentLogger } from '../src/core/log.js';
import { RawMcpClient, type RpcMessage } from './helpers/raw-client.js';

const invoice = (id: string) => JSON.parse(readFileSync(join('examples/invoice/data/invoices', `${id}.json`), 'utf8'));

describe('sessions bound to their principal', () => {
  it("bob cannot use alice's session: no stream, no answer, no call, no delete; alice's invoice stays unpaid", { timeout: 60_000 }, async () => {
    const server = await startInvoiceServer({
      store: 'memory:',
      port: 0,
      tokens: { 'tok-alice': 'alice', 'tok-bob': 'bob' },
      policy: { pollIntervalMs: 50 },
      logger: silentLogger,
    });
    const url = server.url!;
    try {
      const alice = new RawMcpClient(url, { authorization: 'Bearer tok-alice' });
      await alice.initialize();
      const session = alice.sessionId!;
      const headers = (token: string, extra: Record<string, string> = {}) => ({
        authorization: `Bearer ${token}`,
        'mcp-session-id': session,
        'mcp-protocol-version': '2025-11-25',
        ...extra,
      });

      // Alice's standalone GET stream, where her task's question arrives.
      const stream = await fetch(url, { headers: headers('tok-alice', { accept: 'text/event-stream' }) });
      assert.equal(stream.status, 200);
      const messages = sseMessages<RpcMessage>(stream);
      const taskId = (await alice.request('tools/call', { name: 'process_invoice', arguments: { invoice: invoice('INV-2026-0003') }, task: {} })).result.task
        .taskId as string;
      let question: RpcMessage | undefined;
      for await (const message of messages) {
        if (message.method === 'elicitation/create') {
          question = message;
          break;
        }
      }
      assert.ok(question, 'alice is asked for approval on her stream');
      assert.equal(typeof question.id, 'string', 'server request ids are not small integers');
      assert.match(String(question.id), /^s-[A-Za-z0-9_-]{22}$/, '128 random bits');

      const bob = { authorization: 'Bearer tok-bob' };
      const approve = { action: 'accept', content: { decision: 'approve', comment: 'bob says yes' } };
      const asBob = async (init: RequestInit) => {
        const response = await fetch(url, {
          ...init,
          headers: { ...headers('tok-bob'), 'content-type': 'application/json', accept: 'application/json, text/event-stream' },
        });
        return { status: response.status, body: await response.text() };
      };
      const unknownSession = await fetch(url, {
        method: 'POST',
        headers: { ...bob, 'mcp-session-id': 'no-such-session', 'content-type': 'application/json', accept: 'application/json, text/event-stream' },
        body: JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'tools/list' }),
      });
      const unknownBody = await unknownSession.text();

      const attempts = {
        'GET stream': await fetch(url, { headers: headers('tok-bob', { accept: 'text/event-stream' }) }).then(async (r) => {
          if (r.status === 200) await r.body?.cancel(); // an open stream: the assertion below fails instead of hanging
          return { status: r.status, body: r.status === 200 ? '(stream)' : await r.text() };
        }),
        'answer with the real id': await asBob({ method: 'POST', body: JSON.stringify({ jsonrpc: '2.0', id: question.id, result: approve }) }),
        'answers with guessed ids': await asBob({
          method: 'POST',
          body: JSON.stringify([0, 1, 2, 3].map((id) => ({ jsonrpc: '2.0', id, result: approve }))),
        }),
        'tools/call': await asBob({
          method: 'POST',
          body: JSON.stringify({ jsonrpc: '2.0', id: 7, method: 'tools/call', params: { name: 'list_payments', arguments: {} } }),
        }),
        'tasks/get': await asBob({ method: 'POST', body: JSON.stringify({ jsonrpc: '2.0', id: 8, method: 'tasks/get', params: { taskId } }) }),
        DELETE: await asBob({ method: 'DELETE' }),
      };
      for (const [what, attempt] of Object.entries(attempts)) {
        assert.equal(attempt.status, 404, `${what}: answered as an unknown session`);
        assert.equal(attempt.body, unknownBody, `${what}: exactly the unknown-session answer, nothing leaks`);
      }

      // Alice's session still works, her task still waits, nothing was paid.
      assert.equal((await alice.request('tasks/get', { taskId })).result.status, 'input_required');
      const payments = await alice.request('tools/call', { name: 'list_payments', arguments: {} });
      assert.doesNotMatch(JSON.stringify(payments.result), /INV-2026-0003/, 'no payment for the invoice');

      // A response with a guessed id is dropped even on alice's own session; the real id is accepted.
      const guessed = await alice.post({ jsonrpc: '2.0', id: 0, result: approve });
      assert.ok(guessed.status < 500);
      assert.equal((await alice.request('tasks/get', { taskId })).result.status, 'input_required', 'a guessed id answers nothing');
      const real = await alice.post({ jsonrpc: '2.0', id: question.id, result: { action: 'accept', content: { decision: 'approve', comment: 'alice' } } });
      assert.equal(real.status, 202);
      const result = await alice.request('tasks/result', { taskId });
      assert.match(JSON.stringify(result.result), /approved \(alice\) and paid/);
    } finally {
      await server.close();
    }
  });

  it('without auth, a session is reachable by whoever holds its id (documented: its random id is the protection)', async () => {
    const server = await startInvoiceServer({ store: 'memory:', port: 0, policy: { pollIntervalMs: 50 }, logger: silentLogger });
    try {
      const first = new RawMcpClient(server.url!);
      await first.initialize();
      const second = new RawMcpClient(server.url!);
      second.sessionId = first.sessionId;
      assert.ok((await second.request('tools/list', {})).result.tools.length > 0);
    } finally {
      await server.close();
    }
  });
});
