/** The executor contract (test/helpers/executor-contract.ts) on the embedded executor, over SQLite. */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { EmbeddedExecutor } from '../src/runtime/embedded-executor.js';
import { executorContract } from './helpers/executor-contract.js';

executorContract('embedded (SQLite)', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'mcp-tasks-contract-'));
  return {
    storeUrl: `sqlite:${join(dir, 'tasks.db')}`,
    executor: () => new EmbeddedExecutor({ instanceId: 'contract' }),
    teardown: async () => rmSync(dir, { recursive: true, force: true }),
  };
});
