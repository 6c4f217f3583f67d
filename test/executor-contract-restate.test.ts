/** The executor contract (test/helpers/executor-contract.ts) on the Restate executor: a real restate-server from the npm package, a SQLite store. */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createRestateExecutor } from '../src/executors/restate/index.js';
import { executorContract } from './helpers/executor-contract.js';
import { freePort, startRestateServer } from './helpers/restate-server.js';

executorContract('Restate (restate-server, SQLite store)', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'mcp-tasks-contract-'));
  const server = await startRestateServer();
  const port = await freePort();
  return {
    storeUrl: `sqlite:${join(dir, 'tasks.db')}`,
    executor: () => createRestateExecutor({ ingressUrl: server.ingressUrl, adminUrl: server.adminUrl, endpoint: { port } }),
    teardown: async () => {
      await server.stop();
      rmSync(dir, { recursive: true, force: true });
    },
  };
});
