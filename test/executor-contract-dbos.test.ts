/** The executor contract (test/helpers/executor-contract.ts) on the DBOS executor, over PostgreSQL (store and DBOS in schemas of their own). */
import { randomBytes } from 'node:crypto';
import pg from 'pg';
import { createDbosExecutor } from '../src/executors/dbos/index.js';
import { executorContract } from './helpers/executor-contract.js';

const DATABASE_URL = 'postgres://postgres@127.0.0.1:5432/test';

executorContract('DBOS (PostgreSQL)', async () => {
  const suffix = randomBytes(4).toString('hex');
  const storeSchema = `contract_tasks_${suffix}`;
  const dbosSchema = `contract_dbos_${suffix}`;
  return {
    storeUrl: `${DATABASE_URL}?schema=${storeSchema}`,
    executor: () =>
      createDbosExecutor({ systemDatabaseUrl: DATABASE_URL, systemDatabaseSchemaName: dbosSchema, executorId: `contract-${suffix}`, leaseMs: 3000 }),
    teardown: async () => {
      const client = new pg.Client({ connectionString: DATABASE_URL });
      await client.connect();
      try {
        await client.query(`DROP SCHEMA IF EXISTS ${storeSchema} CASCADE`);
        await client.query(`DROP SCHEMA IF EXISTS ${dbosSchema} CASCADE`);
      } finally {
        await client.end();
      }
    },
  };
});
