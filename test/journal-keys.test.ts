/**
 * The journal's vocabulary (`src/core/journal-keys.ts`): every kind of key round-trips through its
 * builder and `parseJournalKey`, each is spelled exactly as existing databases hold it, and nothing
 * outside the module spells one.
 */
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import {
  answeredKey,
  askedKey,
  asksUrlElicitation,
  CANCELLED_KEY,
  elicitationCompleteKey,
  elicitationIdKey,
  formatJournalKey,
  inputKey,
  parseJournalKey,
  REQUEST_STATE_KEY,
  RETRY_OF_KEY,
  retriedKey,
  resumedKey,
  runKey,
  stalledKey,
  stepKey,
  timerKey,
  untilKey,
  deadlineKey,
  remindedKey,
  escalatedKey,
  type JournalKey,
  type JournalKeyKind,
} from '../src/core/journal-keys.js';
import type { Json } from '../src/core/json.js';

const at = '2026-12-04T08:15:30.123Z';
/**
 * For every kind (the `Record` makes the compiler insist on each): keys built by its builder, the
 * parts it must parse back to, and the key as stored by every version so far (byte for byte).
 */
const samples: Record<JournalKeyKind, { built: string; parsed: JournalKey; stored: string }[]> = {
  step: [
    { built: stepKey('charge'), parsed: { kind: 'step', name: 'charge' }, stored: 'step:charge' },
    { built: stepKey('asked:x:y'), parsed: { kind: 'step', name: 'asked:x:y' }, stored: 'step:asked:x:y' },
    { built: stepKey('zahlung prüfen ✓'), parsed: { kind: 'step', name: 'zahlung prüfen ✓' }, stored: 'step:zahlung prüfen ✓' },
  ],
  timer: [
    { built: timerKey(1), parsed: { kind: 'timer', n: 1 }, stored: 'timer:1' },
    { built: timerKey(42), parsed: { kind: 'timer', n: 42 }, stored: 'timer:42' },
  ],
  'elicitation-id': [{ built: elicitationIdKey('url-3'), parsed: { kind: 'elicitation-id', question: 'url-3' }, stored: 'elicitation-id:url-3' }],
  'elicitation-complete': [
    {
      built: elicitationCompleteKey('0f8c2d6e-6a8e-4f7b-9a55-1f0b6b9c2a11'),
      parsed: { kind: 'elicitation-complete', elicitationId: '0f8c2d6e-6a8e-4f7b-9a55-1f0b6b9c2a11' },
      stored: 'elicitation-complete:0f8c2d6e-6a8e-4f7b-9a55-1f0b6b9c2a11',
    },
  ],
  input: [
    { built: inputKey('approval'), parsed: { kind: 'input', question: 'approval' }, stored: 'input:approval' },
    { built: inputKey('elicit-1'), parsed: { kind: 'input', question: 'elicit-1' }, stored: 'input:elicit-1' },
  ],
  asked: [{ built: askedKey('approval'), parsed: { kind: 'asked', question: 'approval' }, stored: 'asked:approval' }],
  answered: [{ built: answeredKey('a:b'), parsed: { kind: 'answered', question: 'a:b' }, stored: 'answered:a:b' }],
  deadline: [{ built: deadlineKey('approval'), parsed: { kind: 'deadline', question: 'approval' }, stored: 'deadline:approval' }],
  reminded: [
    { built: remindedKey('approval', 1), parsed: { kind: 'reminded', question: 'approval', n: 1 }, stored: 'reminded:approval:1' },
    { built: remindedKey('a:7', 12), parsed: { kind: 'reminded', question: 'a:7', n: 12 }, stored: 'reminded:a:7:12' },
  ],
  escalated: [{ built: escalatedKey('a:b'), parsed: { kind: 'escalated', question: 'a:b' }, stored: 'escalated:a:b' }],
  run: [
    { built: runKey(at, 'host-4711-ab12cd34'), parsed: { kind: 'run', at, holder: 'host-4711-ab12cd34' }, stored: `run:${at}:host-4711-ab12cd34` },
    { built: runKey(at, 'pod:Z:9'), parsed: { kind: 'run', at, holder: 'pod:Z:9' }, stored: `run:${at}:pod:Z:9` },
    {
      built: runKey('+275760-09-13T00:00:00.000Z', 'h'),
      parsed: { kind: 'run', at: '+275760-09-13T00:00:00.000Z', holder: 'h' },
      stored: 'run:+275760-09-13T00:00:00.000Z:h',
    },
  ],
  until: [{ built: untilKey(at), parsed: { kind: 'until', due: at }, stored: `until:${at}` }],
  cancelled: [{ built: CANCELLED_KEY, parsed: { kind: 'cancelled' }, stored: 'cancelled' }],
  stalled: [{ built: stalledKey(at), parsed: { kind: 'stalled', since: at }, stored: `stalled:${at}` }],
  resumed: [{ built: resumedKey(at), parsed: { kind: 'resumed', since: at }, stored: `resumed:${at}` }],
  'request-state-key': [{ built: REQUEST_STATE_KEY, parsed: { kind: 'request-state-key' }, stored: 'mrtr:request-state-key' }],
  retried: [{ built: retriedKey(at), parsed: { kind: 'retried', at }, stored: `retried:${at}` }],
  'retry-of': [{ built: RETRY_OF_KEY, parsed: { kind: 'retry-of' }, stored: 'retry-of-task' }],
};

describe('journal keys', () => {
  for (const [kind, cases] of Object.entries(samples)) {
    it(`${kind}: built as stored, parsed back into its parts, formatted back into the same key`, () => {
      for (const { built, parsed, stored } of cases) {
        assert.equal(built, stored, 'the spelling existing databases hold');
        assert.deepEqual(parseJournalKey(built), parsed);
        assert.equal(formatJournalKey(parsed), built);
      }
    });
  }

  it('leaves keys of no known kind unparsed', () => {
    for (const key of [
      '',
      'steps:x',
      'cancelled:x',
      'Cancelled',
      'mrtr:other',
      'timer:',
      'timer:x',
      'timer:1.5',
      'timer:01',
      'run:',
      'run:no-instant',
      'later:x',
    ]) {
      assert.equal(parseJournalKey(key), undefined, key);
    }
  });

  it('asksUrlElicitation finds the id an elicitation-id step recorded, and nothing else', () => {
    const journal = new Map<string, Json>([
      [elicitationIdKey('url-1'), { ok: true, value: 'flow-1' }],
      [elicitationIdKey('url-2'), { ok: false, error: { name: 'Error', message: 'flow-2' } }],
      [stepKey('elsewhere'), { ok: true, value: 'flow-3' }],
    ]);
    assert.equal(asksUrlElicitation(journal, 'flow-1'), true);
    assert.equal(asksUrlElicitation(journal, 'flow-2'), false, 'a failed step recorded no id');
    assert.equal(asksUrlElicitation(journal, 'flow-3'), false, 'only elicitation-id steps count');
  });

  it('is the only place that spells a key: no string literal elsewhere in src/ starts like one', () => {
    // A key's part follows its colon at once; `answered: …` (a space) is text for people, not a key.
    const literal =
      /(['"`])(?:step|timer|elicitation-id|elicitation-complete|input|asked|answered|run|until|retried|stalled|resumed):(?!\s)|(['"`])(?:mrtr:request-state-key|retry-of-task)\2/;
    const files = (dir: string): string[] =>
      readdirSync(dir, { withFileTypes: true }).flatMap((entry) =>
        entry.isDirectory() ? files(join(dir, entry.name)) : entry.name.endsWith('.ts') ? [join(dir, entry.name)] : [],
      );
    const found: string[] = [];
    for (const file of files('src')) {
      if (file === join('src', 'core', 'journal-keys.ts')) continue;
      // Comments may name keys (`asked:<key>`); code may not.
      const code = readFileSync(file, 'utf8')
        .replace(/\/\*[\s\S]*?\*\//g, (comment) => comment.replace(/[^\n]/g, ''))
        .replace(/(^|\s)\/\/.*$/gm, '$1');
      code.split('\n').forEach((line, i) => {
        if (literal.test(line)) found.push(`${file}:${i + 1}: ${line.trim()}`);
      });
    }
    assert.deepEqual(found, []);
  });
});
