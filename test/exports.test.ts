/**
 * The package's public surface, as a consumer sees it: every entry point of package.json `exports`
 * and the exact names it exports, so an internal (a wire helper, `ExecutionContext`, a store
 * detail) cannot leak into the API again without this list changing on purpose.
 *
 * Names are checked three ways: the runtime exports of the built module reached through the
 * package's own name (`import('mcp-tasks/client')` from inside the package resolves through
 * `exports`, exactly as in a consumer's project), the runtime exports of its source module (so a
 * stale `dist/` is reported as such), and every exported name, types included, of the `.d.ts` the
 * `types` condition points at, read with the TypeScript checker. The built files come from
 * `npm run build` (`npm test` builds first).
 *
 * Drivers: importing any entry point loads no database driver (`pg`, `ioredis`, `better-sqlite3`
 * are loaded by the backend constructors), checked in a fresh Node process on `require.cache`.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { describe, it } from 'node:test';
import ts from 'typescript';
import { loadDriver } from '../src/store/load-driver.js';

const ROOT = fileURLToPath(new URL('..', import.meta.url));

/** Per entry point: runtime names (`values`) and type-only names (`types`), each sorted. */
const ENTRY_POINTS: Record<string, { values: string[]; types: string[] }> = {
  'mcp-tasks': {
    values: [
      'ConflictError',
      'DEFAULT_LIFETIME_POLICY',
      'ENGINE_ACCESS',
      'EmbeddedExecutor',
      'EngineContext',
      'ExecutorUnavailableError',
      'IDEMPOTENCY_META_KEY',
      'IdempotencyConflictError',
      'IllegalTransitionError',
      'InvalidAnswerError',
      'InvalidArgumentError',
      'InvalidCursorError',
      'LOG_LEVELS',
      'LeaseLostError',
      'LeaseLostSignal',
      'LimitExceededError',
      'MAX_IDEMPOTENCY_KEY_LENGTH',
      'McpTasks',
      'MemoryBackend',
      'NonRetryableError',
      'OperatorConsole',
      'STORE_UNAVAILABLE',
      'ShutdownSignal',
      'StepFailedError',
      'StoreUnavailableError',
      'StoreUnavailableSignal',
      'TASK_STATUSES',
      'TERMINAL_STATUSES',
      'TaskCancelledSignal',
      'TaskError',
      'TaskNotFoundError',
      'TaskRpcError',
      'TaskRuntime',
      'TaskServer',
      'TaskStore',
      'TaskSubscriptions',
      'TransientError',
      'WEBHOOK_EVENT_TYPES',
      'WebhookUrlRefusedError',
      'answerTopic',
      'completionTopic',
      'createLogger',
      'createMcpHttpHandler',
      'createTaskServer',
      'idempotencyKeyOf',
      'isTaskStatus',
      'isTerminal',
      'isTransientError',
      'loadTokenFile',
      'openBackend',
      'openStore',
      'principalOf',
      'runOnEngine',
      'settleStepName',
      'silentLogger',
      'startHttpServer',
      'startStdioServer',
      'staticTokenVerifier',
    ],
    types: [
      'Access',
      'ActivityKind',
      'ActivityMonitor',
      'Actor',
      'AskOptions',
      'BodyLimits',
      'ConsoleDeps',
      'ConsoleOptions',
      'ConsoleRequestContext',
      'CreateTaskInput',
      'DeadlineSpec',
      'DeliverySettlement',
      'DeliveryState',
      'DurableRun',
      'EmbeddedExecutorOptions',
      'EngineContextOptions',
      'ExecutorHost',
      'Fence',
      'HttpHandlerOptions',
      'HttpServerOptions',
      'InputAnswer',
      'InputKind',
      'InputRequest',
      'InputResponse',
      'Json',
      'JsonObject',
      'Lease',
      'LeaseLossReason',
      'LifetimePolicy',
      'ListPosition',
      'ListQuery',
      'ListenOptions',
      'LogLevel',
      'Logger',
      'LoggerOptions',
      'McpFetchOptions',
      'McpHttpHandler',
      'McpHttpHandlerOptions',
      'McpTasksOptions',
      'OnTimeout',
      'OperatorListOptions',
      'OperatorListPage',
      'OperatorListQuery',
      'OutboxBackend',
      'OutboxDelivery',
      'Principal',
      'ProtocolVersion',
      'QuestionDeadline',
      'QuestionDeadlineOptions',
      'RegisteredHandler',
      'ResumedEntry',
      'RetryFrom',
      'RootsResponse',
      'RunningHttpServer',
      'RunningStdioServer',
      'SamplingResponse',
      'SecretBox',
      'SessionLimits',
      'StallMark',
      'StallWatch',
      'StatusCounts',
      'StdioServerOptions',
      'StepOptions',
      'StoreBackend',
      'SubmitInput',
      'SubscriptionSink',
      'TaskContext',
      'TaskCreationPolicy',
      'TaskErrorKind',
      'TaskEvent',
      'TaskEventTask',
      'TaskExecutor',
      'TaskHandler',
      'TaskIdempotency',
      'TaskInputSchema',
      'TaskOutcome',
      'TaskPage',
      'TaskRecord',
      'TaskRequest',
      'TaskRuntimeOptions',
      'TaskServerOptions',
      'TaskStatus',
      'TaskStoreOptions',
      'TaskSupport',
      'TaskToolArgs',
      'TaskToolConfig',
      'TaskToolResult',
      'TraceContext',
      'UrlElicitOptions',
      'UrlElicitation',
      'WebhookEndpoint',
      'WebhookEventType',
      'WebhookPayload',
      'WebhookRetryPolicy',
      'WebhooksOptions',
    ],
  },
  'mcp-tasks/client': {
    values: [
      'Endpoint',
      'IDEMPOTENCY_META_KEY',
      'KnownTasks',
      'RETRY_DELAYS_MS',
      'STORE_UNAVAILABLE',
      'TaskFollower',
      'TransportError',
      'busyRetryMs',
      'checkEndpointUrl',
      'connectTaskClient',
      'defaultKnownTasksDir',
      'describeError',
      'exampleAnswer',
      'howToAnswer',
      'isTransient',
      'parseAnswer',
      'terminalAsker',
      'unavailableRetryMs',
    ],
    types: [
      'AnswerQuestion',
      'AnswerSent',
      'AskOutcome',
      'Asker',
      'ConnectOptions',
      'ElicitationQuestion',
      'FollowEvent',
      'FollowOptions',
      'FollowResult',
      'KnownTask',
      'QuestionContext',
      'StateDirContext',
      'TaskClient',
      'TerminalAskerOptions',
    ],
  },
  'mcp-tasks/store/sqlite': { values: ['SqliteBackend'], types: ['SqliteBackendOptions'] },
  'mcp-tasks/store/postgres': { values: ['PostgresBackend'], types: ['PostgresBackendOptions'] },
  'mcp-tasks/store/redis': { values: ['RedisBackend'], types: ['RedisBackendOptions'] },
  'mcp-tasks/executor/dbos': { values: ['DBOS_TASK_WORKFLOW', 'DbosExecutor', 'createDbosExecutor', 'isDbosError'], types: ['DbosExecutorOptions'] },
  'mcp-tasks/executor/restate': { values: ['RestateExecutor', 'createRestateExecutor'], types: ['RestateExecutorOptions', 'RestateRetryPolicy'] },
};

const pkg = JSON.parse(readFileSync(`${ROOT}/package.json`, 'utf8')) as {
  name: string;
  exports: Record<string, string | { types: string; import: string }>;
};

/** The `exports` entry of a specifier (`mcp-tasks/client` → `./client`). */
function target(specifier: string): { types: string; import: string } {
  const entry = pkg.exports[specifier === pkg.name ? '.' : `.${specifier.slice(pkg.name.length)}`];
  assert.ok(entry && typeof entry === 'object', `package.json exports has no conditions for ${specifier}`);
  return entry;
}

/** Runtime names of a module, sorted. */
async function runtimeNames(specifier: string): Promise<string[]> {
  return Object.keys(await import(specifier)).sort();
}

const sorted = (names: string[]) => [...names].sort();

describe('package entry points', () => {
  it('package.json exports exactly these entry points (plus ./package.json), each with types + import', () => {
    assert.deepEqual(
      Object.keys(pkg.exports).sort(),
      [...Object.keys(ENTRY_POINTS).map((s) => (s === pkg.name ? '.' : `.${s.slice(pkg.name.length)}`)), './package.json'].sort(),
    );
    for (const specifier of Object.keys(ENTRY_POINTS)) {
      const { types, import: js } = target(specifier);
      assert.deepEqual(Object.keys(target(specifier)), ['types', 'import'], `${specifier}: 'types' must come first`);
      assert.match(js, /^\.\/dist\/src\/.+\.js$/);
      assert.equal(types, js.replace(/\.js$/, '.d.ts'));
      assert.ok(existsSync(`${ROOT}/${js}`), `${js} is missing: run npm run build`);
      assert.ok(existsSync(`${ROOT}/${types}`), `${types} is missing: run npm run build`);
    }
  });

  for (const [specifier, expected] of Object.entries(ENTRY_POINTS)) {
    it(`${specifier}: the built module (through exports) and its source export exactly the listed values`, async () => {
      assert.deepEqual(await runtimeNames(specifier), expected.values, `${specifier} (dist, as consumers get it)`);
      const source = `../${target(specifier).import.replace(/^\.\/dist\//, '')}`; // ../src/….js, resolved to .ts by tsx
      assert.deepEqual(await runtimeNames(new URL(source, import.meta.url).href), expected.values, `${specifier} (source)`);
    });
  }

  it('every entry point declares exactly the listed names, types included (.d.ts via the TypeScript checker)', () => {
    const files = Object.keys(ENTRY_POINTS).map((specifier) => `${ROOT}/${target(specifier).types}`);
    const program = ts.createProgram(files, {
      module: ts.ModuleKind.NodeNext,
      moduleResolution: ts.ModuleResolutionKind.NodeNext,
      types: ['node'],
      skipLibCheck: true,
      noEmit: true,
    });
    const checker = program.getTypeChecker();
    Object.keys(ENTRY_POINTS).forEach((specifier, i) => {
      const file = program.getSourceFile(files[i]!);
      assert.ok(file, files[i]);
      const declared = checker.getExportsOfModule(checker.getSymbolAtLocation(file)!).map((symbol) => symbol.name);
      const { values, types } = ENTRY_POINTS[specifier]!;
      assert.deepEqual(sorted(declared), sorted([...values, ...types]), `${specifier} (.d.ts)`);
      const errors = ts.getPreEmitDiagnostics(program, file).map((d) => ts.flattenDiagnosticMessageText(d.messageText, '\n'));
      assert.deepEqual(errors, [], `${specifier}: its declarations must type-check`);
    });
  });
});

/** Runs `code` (an ES module) in a fresh Node process in the package root; returns its stdout. */
function runModule(code: string): string {
  const env = { ...process.env };
  delete env.NODE_OPTIONS; // no tsx or other loader: plain Node, as in a consumer's process
  const res = spawnSync(process.execPath, ['--input-type=module', '-e', code], { cwd: ROOT, env, encoding: 'utf8' });
  assert.equal(res.status, 0, res.stderr);
  return res.stdout;
}

/** Module code that prints the driver packages present in `require.cache` (one JSON array) after `body`. */
const driversAfter = (body: string) => `
import { createRequire } from 'node:module';
${body}
const cache = createRequire(process.cwd() + '/package.json').cache;
const drivers = new Set();
for (const path of Object.keys(cache)) {
  const m = /[\\\\/]node_modules[\\\\/](pg|ioredis|better-sqlite3)[\\\\/]/.exec(path);
  if (m) drivers.add(m[1]);
}
console.log(JSON.stringify([...drivers].sort()));`;

describe('database drivers are loaded lazily', () => {
  it('the check works: a CommonJS driver imported from ESM shows in require.cache (ESM static import of ioredis, pg)', () => {
    assert.deepEqual(JSON.parse(runModule(driversAfter(`await import('ioredis'); await import('pg');`))), ['ioredis', 'pg']);
  });

  it("importing 'mcp-tasks' loads no driver, nor does importing every other entry point but the engine executors'", () => {
    assert.deepEqual(JSON.parse(runModule(driversAfter(`await import('mcp-tasks');`))), []);
    // mcp-tasks/executor/dbos is DBOS on PostgreSQL: importing it loads the DBOS SDK and so pg, by choice.
    const all = Object.keys(ENTRY_POINTS)
      .filter((specifier) => !specifier.startsWith('mcp-tasks/executor/'))
      .map((specifier) => `await import('${specifier}');`)
      .join(' ');
    assert.deepEqual(JSON.parse(runModule(driversAfter(all))), []);
  });

  it("constructing a backend loads its driver, and only its driver (PostgresBackend from 'mcp-tasks/store/postgres' → pg)", () => {
    const pgOnly = driversAfter(`
      const { PostgresBackend } = await import('mcp-tasks/store/postgres');
      await new PostgresBackend({ connectionString: 'postgres://127.0.0.1:1/none' }).close(); // the pool connects lazily: no I/O`);
    assert.deepEqual(JSON.parse(runModule(pgOnly)), ['pg']);
    const viaUrl = driversAfter(`
      const { openStore } = await import('mcp-tasks');
      await openStore('sqlite::memory:').close();`);
    assert.deepEqual(JSON.parse(runModule(viaUrl)), ['better-sqlite3']);
  });

  it('a missing driver is named with its install command', () => {
    assert.throws(
      () => loadDriver('mcp-tasks-no-such-driver', 'A test store', 'an optional peer dependency of mcp-tasks'),
      (error: Error) => {
        assert.equal(
          error.message,
          "A test store needs 'mcp-tasks-no-such-driver' (an optional peer dependency of mcp-tasks), which is not installed: npm install mcp-tasks-no-such-driver",
        );
        assert.equal((error.cause as NodeJS.ErrnoException).code, 'MODULE_NOT_FOUND');
        return true;
      },
    );
  });
});
