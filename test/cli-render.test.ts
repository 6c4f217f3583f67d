/** What the CLI prints about a task and its questions: progress, relative times, argument summaries, how to answer. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { TaskView } from '@modelcontextprotocol/ext-tasks/client';
import { progressBar, statusText, summarizeArguments, withRelativeTimes } from '../src/cli/render.js';
import { exampleAnswer, howToAnswer, parseAnswer } from '../src/client/questions.js';
import { PROGRESS_META_KEY } from '../src/core/task.js';

const now = Date.parse('2026-11-21T12:00:00.000Z');
const view = (extra: Partial<TaskView> & { raw?: Record<string, unknown> }): TaskView =>
  ({ taskId: 't1', status: 'working', createdAt: '2026-11-21T11:59:48.000Z', retentionMs: null, ttl: null, raw: {}, extensions: {}, ...extra }) as TaskView;

const approval = {
  message: 'Approve invoice INV-1?',
  taskId: 'abc',
  requestedSchema: {
    type: 'object',
    properties: { decision: { type: 'string', enum: ['approve', 'reject'] }, comment: { type: 'string' } },
    required: ['decision'],
  },
};

describe('CLI rendering', () => {
  it('shows the progress a server publishes as a bar, and the time since creation', () => {
    const line = statusText(view({ statusMessage: 'Paid line 2', raw: { _meta: { [PROGRESS_META_KEY]: { progress: 2, total: 3 } } } }), now);
    assert.equal(line, 'working [███████░░░] 2/3: Paid line 2 · 12 s');
    assert.equal(statusText(view({ raw: { _meta: { [PROGRESS_META_KEY]: { progress: 5 } } } }), now), 'working (5) · 12 s');
    assert.equal(progressBar(7, 5), '[██████████] 7/5');
  });

  it('adds relative times to ISO 8601 times in status messages', () => {
    assert.equal(withRelativeTimes('waiting until 2026-12-31T12:00:00.000Z to pay', now), 'waiting until 2026-12-31T12:00:00.000Z (in 40 days) to pay');
    assert.equal(withRelativeTimes('since 2026-11-21T11:57:00Z', now), 'since 2026-11-21T11:57:00Z (3 min ago)');
    assert.equal(withRelativeTimes('no time here', now), 'no time here');
  });

  it('summarizes arguments by their identifying fields, bounded', () => {
    const summary = summarizeArguments({ invoice: { invoiceId: 'INV-1', issuedOn: '2026-11-20', vendorId: 'V-1', currency: 'EUR', lines: [{ amount: 3 }] } });
    assert.equal(summary, 'invoiceId INV-1 · vendorId V-1 · currency EUR · issuedOn 2026-11-20');
    assert.equal(summarizeArguments({}), undefined);
    assert.ok(summarizeArguments({ a: 'x'.repeat(500), b: 'y'.repeat(500), c: 'z'.repeat(500) })!.length <= 100);
  });

  it('says how to answer without a terminal: fields, allowed values, a command that works as printed', () => {
    const text = howToAnswer(approval, 'http://127.0.0.1:3000/mcp');
    assert.match(text, /decision: one of approve, reject/);
    assert.match(text, /comment \(optional\): string/);
    assert.ok(text.includes(`npx mcp-tasks answer abc --url http://127.0.0.1:3000/mcp --answer '{"decision":"approve"}'`), text);
    assert.deepEqual(exampleAnswer(approval), { decision: 'approve' });
    const quoted = howToAnswer({ ...approval, requestedSchema: { properties: { note: { type: 'string', enum: ["it's"] } }, required: ['note'] } }, undefined);
    assert.ok(quoted.includes(`--answer '{"note":"it'\\''s"}'`), quoted);
  });

  it('parses --answer as content (accept) or a whole ElicitResult, and refuses what is not an object', () => {
    assert.deepEqual(parseAnswer('{"decision":"approve"}'), { action: 'accept', content: { decision: 'approve' } });
    assert.deepEqual(parseAnswer('{"action":"decline"}'), { action: 'decline' });
    assert.throws(() => parseAnswer('[1]'), /must be a JSON object/);
    assert.throws(() => parseAnswer('{nope'), /not valid JSON/);
  });
});
