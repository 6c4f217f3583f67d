/**
 * `conformance/run.sh` installs the official suite (and a Node 22) into a folder of the clone that
 * git ignores, not a fixed path outside the repository: what a fresh clone gets without setting
 * CONFORMANCE_TOOLS.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { relative, resolve } from 'node:path';
import { describe, it } from 'node:test';

const REPO = resolve('.');

describe('conformance/run.sh', () => {
  it('defaults its tools folder to .tools/conformance in the clone, which git ignores', () => {
    const script = readFileSync('conformance/run.sh', 'utf8');
    const line = /^TOOLS=.*$/m.exec(script)?.[0];
    assert.ok(line, 'run.sh sets TOOLS');
    // The default as bash expands it, with REPO as run.sh computes it and CONFORMANCE_TOOLS unset.
    const expanded = spawnSync(
      'bash',
      ['-c', `set -u; REPO=$(cd "$(dirname "$0")/.." && pwd); unset CONFORMANCE_TOOLS; ${line}; printf %s "$TOOLS"`, 'conformance/run.sh'],
      {
        encoding: 'utf8',
      },
    );
    assert.equal(expanded.status, 0, expanded.stderr);
    assert.equal(relative(REPO, expanded.stdout), '.tools/conformance');
    const ignored = spawnSync('git', ['check-ignore', '--no-index', '-q', '.tools/conformance/node_modules/x'], { encoding: 'utf8' });
    assert.equal(ignored.status, 0, '.gitignore covers .tools/conformance');
    // What CI passes is the same folder.
    assert.match(readFileSync('.ci/run', 'utf8'), /CONFORMANCE_TOOLS="\$PWD\/\.tools\/conformance" bash conformance\/run\.sh/);
  });
});
