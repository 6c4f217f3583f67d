import type { Json, JsonObject } from './json.js';
import type { TaskIdempotency } from './idempotency.js';
import type { TaskStatus } from './status.js';

/**
 * The request a task executes, independent of the protocol version that carried it: a tool name and its
 * arguments (MCP `tools/call` params `name` / `arguments`).
 */
export interface TaskRequest {
  /** Name of the registered task tool. */
  tool: string;
  /** Tool arguments as received (already validated against the tool's input schema). */
  arguments: JsonObject;
  /**
   * The capabilities the requestor declared when it created the task (2025-11-25: its `initialize`
   * capabilities; 2026-07-28: the request's `io.modelcontextprotocol/clientCapabilities`), so a
   * handler can choose a question the creating client can answer (`TaskContext.clientCapabilities`).
   * Absent for tasks created without a wire (tests, the engine) or before this field existed.
   */
  clientCapabilities?: JsonObject;
}

/**
 * How a task ended. `result` holds the tool result exactly as the call would have returned it
 * (an MCP `CallToolResult` object, stored as opaque JSON); `error` holds a JSON-RPC error object
 * (`code`, `message`, optional `data`) that `tasks/result` must return as that same error.
 */
export type TaskOutcome = { type: 'result'; result: JsonObject } | { type: 'error'; error: { code: number; message: string; data?: Json } };

/**
 * A question the task is waiting on, by kind (each maps onto one MCP server-to-client request; the
 * wire layers translate):
 * - `elicitation`: form-mode elicitation (`elicitation/create` with `mode: "form"`, `message` plus
 *   a restricted JSON Schema `requestedSchema`); answered by an `InputResponse`.
 * - `url`: URL-mode elicitation (2025-11-25 "Elicitation", `mode: "url"`: the user is sent to `url`
 *   — a payment approval on a bank's page, an OAuth consent — so nothing sensitive passes through
 *   the client); `elicitationId` identifies the out-of-band flow, which reports its completion
 *   separately (`TaskRuntime.completeElicitation`). Answered by an `InputResponse` whose `action`
 *   says whether the user agreed to open the URL (no `content`).
 * - `sampling`: `sampling/createMessage` with `params` (messages, maxTokens, …) for the client's
 *   model; `message` is the human-readable line shown as the task's `statusMessage`. Answered by a
 *   `SamplingResponse` (a `CreateMessageResult`).
 * - `roots`: `roots/list`; answered by a `RootsResponse` (a `ListRootsResult`).
 */
export type InputRequest =
  | { kind: 'elicitation'; message: string; requestedSchema: JsonObject }
  | { kind: 'url'; message: string; url: string; elicitationId: string }
  | { kind: 'sampling'; message: string; params: JsonObject }
  | { kind: 'roots'; message: string };

/**
 * A pending question's deadline as stored with the task (`TaskRecord.questionDeadlines[key]`),
 * internal to the engine: the wire never shows it. Times are ISO 8601. Written from the question's
 * options (`AskOptions.timeoutMs` / `deadline`, `onTimeout`, `remindEveryMs`; see `resolveDeadline`
 * in `question-deadline.ts`).
 */
export interface QuestionDeadline {
  /** The question's first ask: what `timeoutMs` and `remindEveryMs` count from. */
  askedAt: string;
  /** When `onTimeout` applies (absent when the question only has reminders). */
  dueAt?: string;
  /** The `OnTimeout` policy as checked (a default answer as JSON). */
  onTimeout?: 'decline' | 'cancel' | 'escalate' | { default: Json };
  remindEveryMs?: number;
  /** The number of the last reminder sent (1, 2, …); absent before the first. */
  reminders?: number;
  /** When the last reminder was sent. */
  remindedAt?: string;
  /** When an `'escalate'` deadline marked the question escalated. */
  escalatedAt?: string;
}

/** The kinds of `InputRequest`. */
export type InputKind = InputRequest['kind'];

/**
 * The answer to an elicitation (`elicitation` or `url` kind): the MCP `ElicitResult` shape.
 * `action` is `accept`, `decline` or `cancel`; `content` is present on `accept` of a form (never
 * for URL mode).
 */
export interface InputResponse {
  action: 'accept' | 'decline' | 'cancel';
  content?: { [key: string]: string | number | boolean | string[] };
}

/**
 * The answer to a `sampling` question: an MCP `CreateMessageResult` (`role: "assistant"`,
 * `content` a content block or an array of them, `model` the model that produced it, optional
 * `stopReason`), stored as the JSON the client sent once its shape is checked.
 */
export interface SamplingResponse {
  role: 'assistant';
  content: JsonObject | JsonObject[];
  model: string;
  stopReason?: string;
  [key: string]: unknown;
}

/** The answer to a `roots` question: an MCP `ListRootsResult` (`roots`: `{ uri: "file://…", name? }[]`). */
export interface RootsResponse {
  roots: Array<{ uri: string; name?: string }>;
  [key: string]: unknown;
}

/** An answer to any `InputRequest` kind (see each kind for which one). */
export type InputAnswer = InputResponse | SamplingResponse | RootsResponse;

/**
 * The durable task record, shared by every store backend and both protocol versions.
 *
 * Times are ISO 8601 strings in UTC with milliseconds; `ttl` and `pollInterval` are milliseconds.
 * `version` increases by one on every write and is the optimistic-concurrency token.
 */
export interface TaskRecord {
  /** At least 128 bits from a CSPRNG (see `newTaskId`). */
  taskId: string;
  /** The principal the task is bound to, or `null` when the server authenticates nobody. */
  owner: string | null;
  status: TaskStatus;
  /** Human-readable description of the current state, e.g. what the task is waiting for. */
  statusMessage?: string;
  /** ISO 8601. */
  createdAt: string;
  /** ISO 8601; moves on every write. */
  lastUpdatedAt: string;
  /**
   * Lifetime in ms counted from `createdAt`, or `null` for unlimited: the granted value (the
   * requested one clamped by the policy) while the task lives; once it ends, the actual lifetime,
   * extended by the write that ended it so the result is kept at least `min(ttl,
   * retainAfterEndMs)` after the end (see `ttlAtEnd` in `policy.ts`).
   */
  ttl: number | null;
  /** Suggested polling interval in ms. */
  pollInterval: number;
  request: TaskRequest;
  /**
   * The status a tool result with `isError: true` ends the task in: `failed` for tasks created over
   * 2025-11-25 (spec: "the task should reach failed status"), `completed` for the 2026-07-28 extension.
   */
  errorResultStatus: 'failed' | 'completed';
  /** Outstanding questions keyed by a key unique for the task's lifetime; empty unless `input_required`. */
  inputRequests: { [key: string]: InputRequest };
  /**
   * Deadlines and reminders of outstanding questions, by question key (`AskOptions.timeoutMs`,
   * `deadline`, `onTimeout`, `remindEveryMs`; see `QuestionDeadline`). Internal to the engine: the
   * wire layers never show it. Absent when no pending question has one; an entry goes with its question.
   */
  questionDeadlines?: { [key: string]: QuestionDeadline };
  /**
   * Last progress reported by the handler (MCP progress semantics: `progress` grows, `total`
   * optional). `tasks/get` results of both protocol versions carry it as `_meta[PROGRESS_META_KEY]`.
   */
  progress?: { progress: number; total?: number };
  /** Set once the task is terminal (absent for `cancelled`). */
  outcome?: TaskOutcome;
  /**
   * Which runtime instance executes the task, until when (ms since the epoch, on the store's
   * clock), under which `epoch`. Present while a runtime holds the task; cleared when it ends.
   * Writes on behalf of a runtime are fenced by it (see `Fence`).
   */
  lease?: Lease;
  /**
   * W3C trace context (`traceparent`, optional `tracestate`) of the span that created the task, so
   * every run of it — after a restart, on another instance — continues the same trace (see
   * `src/runtime/telemetry.ts`). Absent when no OpenTelemetry SDK was recording at creation.
   */
  traceContext?: TraceContext;
  /**
   * The idempotency key the task was created with and the fingerprint of its request (SEP-3182; see
   * `TaskIdempotency`): while the task is retained, a `tools/call` of the same principal with the
   * same key returns this task instead of creating another. Absent for tasks created without a key.
   */
  idempotency?: TaskIdempotency;
  /**
   * Operator retry (see `TaskRuntime.retry`): the task this one runs again, from a chosen step
   * (its journal starts with the steps and answers kept from it). Absent for other tasks.
   */
  retryOf?: string;
  /**
   * Operator retry of an ended task: the task that runs it again (this one keeps its status and
   * outcome: terminal statuses are final, MCP 2025-11-25 "Task Status Lifecycle"). `tasks/get` and
   * `tasks/result` name it in `_meta["mcp-tasks/retriedAs"]`.
   */
  retriedAs?: string;
  /**
   * ISO 8601: when the task's time budget ends — `createdAt` + the tool's `deadlineMs` (lowered by
   * the call's `_meta["mcp-tasks/deadlineMs"]`, see `DEADLINE_META_KEY`), on the store's clock.
   * Past it, the runtime ends a live task `failed` with the JSON-RPC error `DEADLINE_EXCEEDED`
   * (-32011). Absent: no deadline. Stored with the task so it holds across restarts and takeovers.
   */
  deadline?: string;
  /**
   * Set while the instance running the task has flagged it stalled (`working`, no activity for its
   * tool's `stallAfterMs`): `at` when it was flagged, `since` the last activity seen (both ISO
   * 8601, store clock). Cleared by the next activity and when the task ends. A flag only: a stall
   * never changes the task's status (see `docs/operations.md`, "Stalled tasks").
   */
  stalled?: StallMark;
  version: number;
}

/** `TaskRecord.stalled`: flagged at `at`, no activity since `since` (ISO 8601). */
export interface StallMark {
  at: string;
  since: string;
}

/**
 * The `_meta` key of a `tools/call` (both protocol versions) that lowers the task's deadline for
 * this one call: a positive number of ms from creation. It can only lower the tool's own
 * `deadlineMs` (a larger value, or any value for a tool without one, is ignored). Vendor prefix, as
 * `PROGRESS_META_KEY`.
 */
export const DEADLINE_META_KEY = 'mcp-tasks/deadlineMs';

/**
 * A runtime instance's hold on a live task. `expiresAt` is ms since the epoch on the store's clock
 * (see `TaskStore.now`); `epoch` is the fencing token: it grows by one with every claim (a
 * takeover, a restart, a retried run), never with a renewal, so each run of a task has its own,
 * higher than every earlier run's. Records written before epochs existed have none (read as 0).
 */
export interface Lease {
  holder: string;
  expiresAt: number;
  epoch?: number;
  /**
   * The length the lease was granted for, in ms (absent on records written before it existed). A
   * lease with more than `ms` (+ `LEASE_CLOCK_SLACK_MS`) left by the reader's store clock was
   * written from a clock that had run ahead (see `leasePlausible`).
   */
  ms?: number;
}

/** How much more than its own length a lease may have left before it counts as written from a wrong clock (ms). */
export const LEASE_CLOCK_SLACK_MS = 1000;

/**
 * Whether `lease`, read at `nowMs` (the store's clock, ms since the epoch), ends no later than its
 * own length (`ms`) + `LEASE_CLOCK_SLACK_MS` from now. Only a holder whose clock had jumped ahead
 * — or a store clock that stepped back — writes one ending later. An implausible lease is not
 * expired: the runtime takes it over only once it has stayed unrenewed for its whole length by the
 * taker's own monotonic clock (a live holder renews it long before), so a clock step never keeps
 * the other instances from a task for the size of the step, nor lets them take a live one.
 */
export function leasePlausible(lease: Lease, nowMs: number): boolean {
  return lease.ms === undefined || lease.expiresAt - nowMs <= lease.ms + LEASE_CLOCK_SLACK_MS;
}

/**
 * What a runtime's writes are fenced by: the lease `holder` and the `epoch` it ran under. A write
 * carrying a fence is refused (`LeaseLostError`, nothing written) unless the task is live and its
 * lease still names this holder and epoch.
 */
export interface Fence {
  holder: string;
  epoch: number;
}

/** A W3C Trace Context carrier (https://www.w3.org/TR/trace-context/): `traceparent` and optional `tracestate`. */
export interface TraceContext {
  traceparent: string;
  tracestate?: string;
}

/**
 * The `_meta` key under which `tasks/get` results (2025-11-25 `GetTaskResult`, 2026-07-28
 * `DetailedTask`) carry the task's last progress `{ progress, total? }`, so a client that polls
 * (or resumed in another session, where `notifications/progress` of the creating request cannot
 * reach it) can show it. MCP "_meta": a vendor prefix, not one of the reserved `mcp` prefixes.
 */
export const PROGRESS_META_KEY = 'mcp-tasks/progress';

/**
 * The `_meta` key under which `tasks/get` (both protocol versions) and `tasks/result` (2025-11-25)
 * of a task an operator had run again (`TaskRecord.retriedAs`) carry `{ taskId }` of the task that
 * runs it again. A vendor prefix, not one of the reserved `mcp` prefixes.
 */
export const RETRIED_AS_META_KEY = 'mcp-tasks/retriedAs';
