/**
 * Start-up errors name what failed and what to do: the SQLite file, the store URL (never its
 * password), the driver's words and code — in the library's errors and in the demo's exit message.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { silentLogger } from '../src/core/log.js';
import { openStore } from '../src/store/open-store.js';
import { createTaskServer } from '../src/server/task-server.js';

const dir = mkdtempSync(join(tmpdir(), 'mcp-tasks-startup-'));
after(() => rmSync(dir, { recursive: true, force: true }));

describe('start-up errors', () => {
  it('a corrupted SQLite file: the error names the file and what to do, in the library and from the demo', () => {
    const path = join(dir, 'garbage.db');
    writeFileSync(path, 'this is not a database, but it is long enough to have a header '.repeat(64));
    assert.throws(
      () => openStore(`sqlite:${path}`),
      (error: Error) => error.message.includes(path) && /SQLITE_NOTADB/.test(error.message) && /What to do: .*backup/.test(error.message),
    );
    const demo = spawnSync(process.execPath, ['--import', 'tsx', 'examples/invoice/main.ts', '--port', '0', '--store', `sqlite:${path}`], {
      encoding: 'utf8',
      timeout: 60_000,
    });
    assert.equal(demo.status, 1);
    assert.match(demo.stderr, new RegExp(`invoice-demo: Cannot open the SQLite task store file ${path.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&')}`));
  });

  it('a directory that cannot be created: the error names the path', () => {
    const blocker = join(dir, 'a-file');
    writeFileSync(blocker, 'x');
    assert.throws(
      () => openStore(`sqlite:${join(blocker, 'sub', 'tasks.db')}`),
      (error: Error) => error.message.includes(join(blocker, 'sub', 'tasks.db')) && /What to do:/.test(error.message),
    );
  });

  for (const [name, url, shown] of [
    ['PostgreSQL', 'postgres://postgres:s3cret@127.0.0.1:1/test', 'postgres://postgres:***@127.0.0.1:1/test'],
    ['Redis', 'redis://:s3cret@127.0.0.1:1/0', 'redis://:***@127.0.0.1:1/0'],
  ] as const) {
    it(`${name} unreachable: listen fails naming the URL without its password and what to do`, async () => {
      const server = createTaskServer({ store: url, logger: silentLogger });
      await assert.rejects(
        server.listen({ port: 0 }),
        (error: Error) => error.message.includes(shown) && !error.message.includes('s3cret') && /What to do: /.test(error.message),
      );
      await server.close().catch(() => undefined);
    });
  }
});
