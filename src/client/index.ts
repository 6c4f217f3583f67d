/**
 * `mcp-tasks/client`: the client side of durable MCP Tasks.
 *
 * - `connectTaskClient(url, options)` connects the official SDK v2 `Client` over Streamable HTTP
 *   (2026-07-28 when the server offers it, else 2025-11-25) and wraps it in an
 *   `@modelcontextprotocol/ext-tasks` session: `session.callTool(name, args, { task: { preference } })`
 *   starts a task, `session.task(taskId)` reads, updates and cancels one.
 * - `Endpoint` keeps one reconnecting connection per URL; `TaskFollower` follows tasks to their end
 *   the way each protocol version's spec asks (2025-11-25: `tasks/result` on `input_required`; 2026-07-28:
 *   `inputRequests` answered with `tasks/update`), retrying transport failures and never turning one
 *   into a task's outcome; `Asker`/`terminalAsker` asks one question at a time and never answers for
 *   a person.
 * - `KnownTasks` remembers the tasks this client started on disk (one JSON file each, written
 *   atomically; by default in the per-user state folder, `defaultKnownTasksDir`) so a client that
 *   crashed can resume them, from any working folder.
 *
 * Nothing here loads the server side or a database driver.
 *
 * @module mcp-tasks/client
 */
export { connectTaskClient, type AnswerQuestion, type AnswerSent, type ConnectOptions, type ElicitationQuestion, type TaskClient } from './connect.js';
export { Endpoint } from './endpoint.js';
export { IDEMPOTENCY_META_KEY } from '../core/idempotency.js';
export { STORE_UNAVAILABLE, TransportError, busyRetryMs, checkEndpointUrl, describeError, isTransient, unavailableRetryMs } from './errors.js';
export { RETRY_DELAYS_MS, TaskFollower, type FollowEvent, type FollowOptions, type FollowResult } from './follower.js';
export { KnownTasks, defaultKnownTasksDir, type KnownTask, type StateDirContext } from './known-tasks.js';
export { terminalAsker, type AskOutcome, type Asker, type QuestionContext, type TerminalAskerOptions } from './prompt.js';
export { exampleAnswer, howToAnswer, parseAnswer } from './questions.js';
