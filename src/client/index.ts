/**
 * `mcp-tasks/client`: the client side of durable MCP Tasks.
 *
 * - `connectTaskClient(url, options)` connects the official SDK v2 `Client` over Streamable HTTP
 *   (2026-07-28 when the server offers it, else 2025-11-25) and wraps it in an
 *   `@modelcontextprotocol/ext-tasks` session: `session.callTool(name, args, { task: { preference } })`
 *   starts a task, `execution.settle()` follows it (answering questions with `options.answer`) to its
 *   outcome, `session.resumeTask(reference)` picks it up again in another process.
 * - `ClientJournal` remembers started tasks on disk (one JSON file each, written atomically) so a
 *   client that crashed can resume them.
 *
 * Nothing here loads the server side or a database driver.
 */
export { connectTaskClient, type AnswerQuestion, type ConnectOptions, type ElicitationQuestion, type TaskClient } from './connect.js';
export { ClientJournal, type JournalEntry } from './journal.js';
