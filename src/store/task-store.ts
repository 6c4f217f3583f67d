import {
  ConflictError,
  IdempotencyConflictError,
  IllegalTransitionError,
  InvalidAnswerError,
  InvalidArgumentError,
  InvalidCursorError,
  LeaseLostError,
  LimitExceededError,
  TaskNotFoundError,
} from '../core/errors.js';
import { ENGINE_ACCESS, mayAccess, type Access } from '../core/access.js';
import { actorOf } from '../core/history.js';
import {
  answeredKey,
  askedKey,
  CANCELLED_KEY,
  deadlineKey,
  inputKey,
  resumedKey,
  stalledKey,
  type Actor,
  type AnsweredEntry,
  type AskedEntry,
  type CancelledEntry,
  type DeadlineEntry,
  type ResumedEntry,
  type StalledEntry,
} from '../core/journal-keys.js';
import { onTimeoutKind, questionDeadlineOf, type DeadlineSpec, type QuestionDeadline } from '../core/question-deadline.js';
import { SecretBox } from '../core/secrets.js';
import { newTaskId } from '../core/ids.js';
import { checkIdempotencyKey, idempotencyScope, type TaskIdempotency } from '../core/idempotency.js';
import { copyJson, type Json, type JsonObject } from '../core/json.js';
import { silentLogger, type Logger } from '../core/log.js';
import { DEFAULT_LIFETIME_POLICY, isExpired, resolveTtl, ttlAtEnd, type LifetimePolicy } from '../core/policy.js';
import { canTransition, isTaskStatus, isTerminal, type TaskStatus } from '../core/status.js';
import {
  leasePlausible,
  type Fence,
  type InputAnswer,
  type InputRequest,
  type Lease,
  type StallMark,
  type TaskOutcome,
  type TaskRecord,
  type TaskRequest,
  type TraceContext,
} from '../core/task.js';
import { checkInputAnswer } from '../core/input-answers.js';
import { completedWithToolError, holdsFence, type ListPosition, type OperatorListQuery, type StatusCounts, type StoreBackend } from './backend.js';
import { GuardedBackend, registerClockSource, StoreHealth } from './store-health.js';
import { ChangeFeed, type AnnouncedVersion } from './change-feed.js';
import {
  deliveriesFor,
  eventOfWrite,
  eventPayload,
  WEBHOOK_EVENT_TYPES,
  type DeliverySettlement,
  type OutboxDelivery,
  type WebhookEventType,
  type WebhookRoute,
} from './outbox.js';

/** Options of a `TaskStore`. */
export interface TaskStoreOptions {
  /**
   * TTL, retention and polling policy (`defaultTtlMs`, `maxTtlMs`, `retainAfterEndMs`,
   * `pollIntervalMs`, all in ms); missing (or undefined) fields take `DEFAULT_LIFETIME_POLICY`. Throws
   * `InvalidArgumentError` when `retainAfterEndMs` is not a non-negative finite number.
   */
  policy?: Partial<LifetimePolicy>;
  /**
   * Clock in ms since the epoch (tests inject one). An injected clock is taken as the store's own:
   * no offset is measured against it (see `measureClock`).
   */
  now?: () => number;
  /**
   * The `retryAfterMs` suggested by the `StoreUnavailableError`s this store raises during an outage
   * (ms, default 1000; HTTP answers carry it as `Retry-After`).
   */
  unavailableRetryAfterMs?: number;
  /**
   * Most `working`/`input_required` tasks one principal may have at once (the anonymous principal
   * counts as one). `create` beyond it throws `LimitExceededError`. Default: unlimited.
   */
  maxLiveTasksPerOwner?: number;
  /**
   * Key for encryption at rest (AES-256-GCM; 32 bytes or a passphrase): elicitation answers and the
   * argument fields tools mark `sensitive` are stored sealed. Default: none (stored as given).
   */
  secretKey?: Buffer | string;
  /**
   * Logger for the store's own events: an answer accepted without a schema check because its
   * question's `requestedSchema` does not compile (debug level; never the answer). Default: silent.
   * `createTaskServer` passes its logger.
   */
  logger?: Logger;
  /**
   * Stores shared by several processes only: how often (ms, default 30000) the tasks someone in
   * this process waits on (`nextChange`, `onTaskChange`) are checked against the backend in one
   * batched read, and a change is announced for each whose version moved without a notice (a
   * shared SQLite file has no notices; a PostgreSQL `LISTEN` or Redis subscription may miss some
   * while it reconnects). One timer per store, running only while someone waits; waiting tasks
   * need no timer of their own. 0 disables it. See `ChangeFeed`.
   */
  recheckMs?: number;
}

/** What `create` needs. `ttl` is the requested lifetime in ms (clamped by the policy). */
export interface CreateTaskInput {
  owner: string | null;
  request: TaskRequest;
  ttl?: number | null;
  errorResultStatus: 'failed' | 'completed';
  statusMessage?: string;
  /** Runtime instance that will execute the task, holding its lease (epoch 1) for `leaseMs` from creation. */
  lease?: { holder: string; leaseMs: number };
  /** Trace context the task's runs continue (see `TaskRecord.traceContext`). */
  traceContext?: TraceContext;
  /**
   * The call's idempotency key and its request's fingerprint (SEP-3182; see `TaskIdempotency`,
   * `requestFingerprint`): `create` returns the retained task `owner` created with the same key
   * instead of a new one.
   */
  idempotency?: TaskIdempotency;
  /** The task this one runs again (operator retry; see `TaskRecord.retryOf`). */
  retryOf?: string;
  /**
   * The task's time budget in ms from `createdAt` (a positive finite number): stored as
   * `TaskRecord.deadline` (`createdAt` + this). Throws `InvalidArgumentError` otherwise.
   */
  deadlineMs?: number;
}

/** One page of `list`. `nextCursor` is opaque and present when more tasks may follow. */
export interface TaskPage {
  tasks: TaskRecord[];
  nextCursor?: string;
}

/**
 * What `TaskStore.listAll` takes: the filters of `OperatorListQuery` (all optional, combined with
 * AND), an opaque `cursor` (a `nextCursor` of the previous page) instead of `before`, and `limit`
 * (1–1000, default 50). `createdFrom` / `createdTo` are ISO 8601: a date (`2026-01-31`, midnight
 * UTC) or a date-time with a zone designator (`2026-01-31T08:00:00Z`, `…+02:00`).
 */
export type OperatorListOptions = Omit<OperatorListQuery, 'before' | 'limit'> & {
  cursor?: string;
  limit?: number;
  /**
   * Only tasks flagged stalled (`TaskRecord.stalled`; implies `statuses: ['working']`). Filtered
   * over the `working` page the backend returns, so a page may hold fewer than `limit` tasks (even
   * none) and still carry a `nextCursor`, as with expired tasks.
   */
  stalled?: boolean;
};

const MAX_CAS_ATTEMPTS = 64;
/** Marks the `input:<key>` value a `'cancel'` deadline stored (`claimQuestion`): not an answer anyone gave. */
const CANCEL_CLAIM = 'mcp-tasks/deadline-cancel';
const CURSOR_PREFIX = 'c1.';

/**
 * The one domain layer over every backend. It alone enforces the task lifecycle (MCP 2025-11-25
 * "Task Status Lifecycle"), ownership (2025-11-25 "Security Considerations": tasks are bound to the
 * authorization context), TTL (ms from `createdAt`; when a task ends its `ttl` is extended so the
 * result is kept at least `min(ttl, policy.retainAfterEndMs)` after the end, see `ttlAtEnd`),
 * answers matching their question's `requestedSchema` (see `answerInputs`) and optimistic
 * concurrency: each write is a
 * read-modify-compare-and-swap on `version`, retried on a lost race after re-checking the rules
 * against the fresh record. So `completed → working` is refused, and when cancel and complete race,
 * exactly one wins and the other gets `IllegalTransitionError`, whoever the callers are.
 *
 * Errors: `TaskNotFoundError` (unknown, foreign or expired task), `IllegalTransitionError`,
 * `InvalidCursorError`, `InvalidArgumentError` (`InvalidAnswerError` for answers that do not match
 * their schema), `ConflictError` (retries exhausted).
 *
 * Every successful write is announced on its change feed (`onChange`, `onTaskChange`,
 * `nextChange`; see `ChangeFeed` for what it guarantees), with other processes' writes on shared
 * stores.
 */
export class TaskStore {
  readonly policy: LifetimePolicy;
  /** The backend, behind the store's availability tracking (`health`; see `GuardedBackend`). */
  readonly backend: StoreBackend;
  /**
   * Availability of the backend as this process sees it (outages are logged and counted there).
   *
   * @internal Read by the server's start-up errors (its `name`); not an API of its own.
   */
  readonly health: StoreHealth;
  private readonly localNow: () => number;
  /** Whether `now` was injected (then it is the store's clock: no offset is measured). */
  private readonly clockInjected: boolean;
  /** The store's clock minus this process's, in ms, as last measured (undefined until then). */
  private offsetMs?: number;
  private readonly unregisterClock: () => void;
  /** The record of this store's last successful write per task (the CAS fast path; bounded). */
  private readonly lastWritten = new Map<string, TaskRecord>();
  /** Announces writes (this store's and, on shared stores, others') to listeners in this process. */
  private readonly feed: ChangeFeed;
  private readonly maxLive?: number;
  /** Seals values at rest when a `secretKey` is configured. */
  readonly secrets?: SecretBox;
  private readonly log: Logger;
  /** `onQuestionDeadline` listeners. */
  private readonly deadlineListeners = new Set<(task: TaskRecord, key: string) => void>();
  /** Webhook endpoints' routing (`routeWebhooks`); undefined = no webhooks: no outbox write at all. */
  private routes?: readonly WebhookRoute[];
  /** Called after this store enqueued deliveries (the local dispatcher's wake-up). */
  private readonly outboxListeners = new Set<() => void>();

  constructor(backend: StoreBackend, options: TaskStoreOptions = {}) {
    // A field given as undefined takes the default too (e.g. `{ pollIntervalMs: flags.pollInterval }`).
    const given = Object.entries(options.policy ?? {}).filter(([, value]) => value !== undefined);
    this.policy = { ...DEFAULT_LIFETIME_POLICY, ...Object.fromEntries(given) };
    const retain = this.policy.retainAfterEndMs;
    if (typeof retain !== 'number' || !Number.isFinite(retain) || retain < 0) {
      throw new InvalidArgumentError('policy.retainAfterEndMs must be a non-negative finite number of milliseconds');
    }
    this.log = options.logger ?? silentLogger;
    this.health = new StoreHealth(backend.describe?.() ?? backend.constructor.name, this.log, options.unavailableRetryAfterMs);
    this.backend = new GuardedBackend(backend, this.health);
    this.localNow = options.now ?? Date.now;
    this.clockInjected = options.now !== undefined;
    const name = this.health.name;
    this.unregisterClock = registerClockSource({ name, offsetMs: () => this.offsetMs });
    this.maxLive = options.maxLiveTasksPerOwner;
    this.secrets = options.secretKey === undefined ? undefined : new SecretBox(options.secretKey);
    this.feed = new ChangeFeed(this.backend, { recheckMs: options.recheckMs, logger: this.log });
  }

  /**
   * The store's clock, in ms since the epoch: this process's clock (or the injected `now`) plus the
   * offset last measured against the store (`measureClock`; 0 until then, and always 0 for
   * backends on this host's clock). Lease expiries, timer due times and task times are read on it.
   */
  now(): number {
    return this.localNow() + (this.offsetMs ?? 0);
  }

  /**
   * Measures the store's clock against this process's (shared backends with a clock: PostgreSQL
   * `clock_timestamp()`, Redis `TIME`): `samples` readings (default 3), the one with the shortest round trip kept;
   * the offset is the store's time minus the midpoint of the round trip. From then on `now()` reads
   * the store's clock. Returns the offset and round trip in ms (`{ offsetMs: 0, rttMs: 0 }` when the
   * backend has no clock of its own or `now` was injected). Throws `StoreUnavailableError` when the
   * store cannot be reached.
   */
  async measureClock(samples = 3): Promise<{ offsetMs: number; rttMs: number }> {
    const clock = this.backend.clock;
    if (!clock || this.clockInjected) return { offsetMs: 0, rttMs: 0 };
    let best: { offsetMs: number; rttMs: number } | undefined;
    for (let i = 0; i < Math.max(1, samples); i++) {
      const sent = Date.now();
      const storeMs = await clock();
      const received = Date.now();
      const reading = { offsetMs: Math.round(storeMs - (sent + received) / 2), rttMs: received - sent };
      if (!best || reading.rttMs < best.rttMs) best = reading;
    }
    this.offsetMs = best!.offsetMs;
    return best!;
  }

  /** Whether one process owns the data (see `StoreBackend.exclusive`). */
  get exclusive(): boolean {
    return this.backend.exclusive;
  }

  /**
   * Stores a new `working` task and returns it. The record is durable when this resolves, so a
   * `CreateTaskResult` built from it can be returned safely.
   *
   * With `input.idempotency` (SEP-3182 "Request Idempotency"): when a task `input.owner` created
   * with the same key is still retained (not expired), nothing is stored and `created` is false: that
   * task is returned as it is now — if its fingerprint matches; a different one throws
   * `IdempotencyConflictError` (-32602). The check and the insert are one atomic step in every
   * backend, so concurrent calls with one key (on any instances sharing the store) create one task.
   * Keys of other principals never match. Throws `InvalidArgumentError` for a malformed key.
   * A retry of a created task is answered even when the principal is at `maxLiveTasksPerOwner`.
   */
  async create(input: CreateTaskInput): Promise<TaskRecord> {
    return (await this.createOrFind(input)).task;
  }

  /**
   * `create`, also saying whether the task was `created` by this call (false: an earlier call with
   * the same idempotency key created it; see `create`).
   */
  async createOrFind(input: CreateTaskInput): Promise<{ task: TaskRecord; created: boolean }> {
    if (typeof input.request?.tool !== 'string' || input.request.tool.length === 0) throw new InvalidArgumentError('request.tool must be a non-empty string');
    if (input.ttl !== undefined && input.ttl !== null && (!Number.isFinite(input.ttl) || input.ttl < 0)) {
      throw new InvalidArgumentError('ttl must be a non-negative number of milliseconds or null');
    }
    const idempotency = input.idempotency && {
      key: checkIdempotencyKey(input.idempotency.key),
      fingerprint: String(input.idempotency.fingerprint),
    };
    if (this.maxLive !== undefined && idempotency) {
      // A retry of a task that exists is answered with it, whatever the count of live tasks.
      const holder = await this.backend.findByIdempotency(idempotencyScope(input.owner, idempotency.key), this.now());
      if (holder) return { task: sameRequest(holder, idempotency), created: false };
    }
    if (this.maxLive !== undefined) {
      const live = this.backend.countUnfinished
        ? await this.backend.countUnfinished(input.owner)
        : (await this.backend.listUnfinished()).filter((t) => t.owner === input.owner).length;
      if (live >= this.maxLive) {
        throw new LimitExceededError(
          `Too many live tasks: at most ${this.maxLive} may be working or waiting for input at once; wait for some to end or cancel them`,
          {
            limit: 'maxLiveTasksPerOwner',
            max: this.maxLive,
            current: live,
          },
        );
      }
    }
    const deadlineMs = input.deadlineMs;
    if (deadlineMs !== undefined && (typeof deadlineMs !== 'number' || !Number.isFinite(deadlineMs) || deadlineMs <= 0)) {
      throw new InvalidArgumentError('deadlineMs must be a positive number of milliseconds');
    }
    const created = this.now();
    const at = new Date(created).toISOString();
    const task: TaskRecord = {
      taskId: newTaskId(),
      owner: input.owner,
      status: 'working',
      ...(input.statusMessage !== undefined && { statusMessage: input.statusMessage }),
      createdAt: at,
      lastUpdatedAt: at,
      ttl: resolveTtl(input.ttl, this.policy),
      pollInterval: this.policy.pollIntervalMs,
      request: input.request,
      errorResultStatus: input.errorResultStatus,
      inputRequests: {},
      ...(input.lease && { lease: { holder: input.lease.holder, expiresAt: this.now() + input.lease.leaseMs, epoch: 1, ms: input.lease.leaseMs } }),
      ...(input.traceContext && { traceContext: input.traceContext }),
      ...(idempotency && { idempotency }),
      ...(input.retryOf !== undefined && { retryOf: input.retryOf }),
      ...(deadlineMs !== undefined && { deadline: new Date(created + deadlineMs).toISOString() }),
      version: 1,
    };
    let holder: TaskRecord | undefined;
    await this.feed.ownWrite(task, async () => {
      holder = await this.backend.insert(task);
      return holder === undefined;
    });
    if (holder) return { task: sameRequest(holder, idempotency!), created: false };
    this.remember(task);
    this.feed.announce(task);
    return { task, created: true };
  }

  /**
   * The task as `access` may see it (see `Access`; required). Throws `TaskNotFoundError` if unknown,
   * foreign (owned by another principal) or expired — one error for all three, so a task's existence
   * is not leaked; `InvalidArgumentError` when `access` is missing.
   */
  async get(taskId: string, access: Access): Promise<TaskRecord> {
    const task = await this.backend.get(taskId);
    return this.visible(taskId, task, access);
  }

  /**
   * One page of the requestor's tasks, oldest first. `cursor` must be a `nextCursor` from an
   * earlier page (else `InvalidCursorError`); `limit` is 1–1000 (default 50).
   */
  async list(owner: string | null, cursor?: string, limit = 50): Promise<TaskPage> {
    if (!Number.isInteger(limit) || limit < 1 || limit > 1000) throw new InvalidArgumentError('limit must be an integer from 1 to 1000');
    const after = cursor === undefined ? undefined : decodeCursor(cursor);
    const page = await this.backend.list({ owner, after, limit });
    const now = this.now();
    const tasks = page.filter((task) => !isExpired(task, now));
    const last = page.at(-1);
    return { tasks, ...(page.length === limit && last && { nextCursor: encodeCursor(last) }) };
  }

  /**
   * One page of every principal's tasks, newest first (`createdAt` descending, then `taskId`
   * descending), for operator tooling such as a console. Operator access only: `access` must be
   * `ENGINE_ACCESS` (a principal lists its own tasks with `list`). See `OperatorListOptions` for the
   * filters, cursor and limit. Expired tasks are skipped like `list` does, so a page may hold fewer
   * than `limit` tasks (even none) and still carry a `nextCursor`; follow it until it is absent. A
   * cursor is only meaningful with the filters of the query that produced it.
   *
   * Throws `InvalidArgumentError` when `access` is not `ENGINE_ACCESS`, a filter is malformed
   * (unknown status, non-string tool or owner, a time that is not ISO 8601 with a zone) or `limit`
   * is out of range; `InvalidCursorError` for a cursor this store did not issue.
   */
  async listAll(query: OperatorListOptions, access: typeof ENGINE_ACCESS): Promise<TaskPage> {
    assertOperator(access, 'listAll', 'a principal lists its own tasks with list');
    if (typeof query !== 'object' || query === null) throw new InvalidArgumentError('listAll needs a query object (use {} for every task)');
    const { toolErrorsAsFailed, tool, owner, createdFrom, createdTo, cursor, limit = 50, stalled } = query;
    if (stalled !== undefined && typeof stalled !== 'boolean') throw new InvalidArgumentError('stalled must be a boolean');
    // A stalled task is working (the flag is cleared when it asks a question or ends).
    const statuses = stalled ? (query.statuses ?? ['working']).filter((status) => status === 'working') : query.statuses;
    if (!Number.isInteger(limit) || limit < 1 || limit > 1000) throw new InvalidArgumentError('limit must be an integer from 1 to 1000');
    if (statuses !== undefined && (!Array.isArray(statuses) || !statuses.every(isTaskStatus))) {
      throw new InvalidArgumentError('statuses must be an array of working, input_required, completed, failed, cancelled');
    }
    if (toolErrorsAsFailed !== undefined && typeof toolErrorsAsFailed !== 'boolean') throw new InvalidArgumentError('toolErrorsAsFailed must be a boolean');
    if (tool !== undefined && typeof tool !== 'string') throw new InvalidArgumentError('tool must be a string');
    if (owner !== undefined && owner !== null && typeof owner !== 'string')
      throw new InvalidArgumentError('owner must be a string, or null for the anonymous principal');
    const before = cursor === undefined ? undefined : decodeCursor(cursor);
    const filters: OperatorListQuery = {
      ...(statuses !== undefined && { statuses: [...new Set(statuses)] }),
      ...(toolErrorsAsFailed && { toolErrorsAsFailed }),
      ...(tool !== undefined && { tool }),
      ...(owner !== undefined && { owner }),
      ...(createdFrom !== undefined && { createdFrom: canonicalInstant(createdFrom, 'createdFrom') }),
      ...(createdTo !== undefined && { createdTo: canonicalInstant(createdTo, 'createdTo') }),
      ...(before && { before }),
      limit,
    };
    const page = stalled && statuses!.length === 0 ? { tasks: [] } : await this.backend.listAll(filters);
    const now = this.now();
    const tasks = page.tasks.filter((task) => !isExpired(task, now) && (!stalled || task.stalled !== undefined));
    const next = page.scannedTo ?? (page.tasks.length === limit ? page.tasks.at(-1) : undefined);
    return { tasks, ...(next && { nextCursor: encodeCursor(next) }) };
  }

  /**
   * How many tasks there are per status over every principal (a terminal task counts until it
   * expires, like `listAll` shows it), how many completed with a tool error, and since when the
   * longest-waiting outstanding question waits (from its first ask: see `StatusCounts`).
   * Operator access only: throws `InvalidArgumentError` unless `access` is `ENGINE_ACCESS`.
   */
  async statusCounts(access: typeof ENGINE_ACCESS): Promise<StatusCounts> {
    assertOperator(access, 'statusCounts', "it counts every principal's tasks");
    return this.backend.countByStatus(this.now());
  }

  /** Tasks still `working` or `input_required`, for recovery after a restart. */
  listUnfinished(): Promise<TaskRecord[]> {
    return this.backend.listUnfinished();
  }

  /**
   * Cancels a live task (2025-11-25 "Task Cancellation": the task is `cancelled` before this
   * resolves) on behalf of `access` (required). `options.statusMessage` replaces the default
   * message; `options.actor` is who asked (default: the principal `access` names, or the engine),
   * journaled as `cancelled` (`CancelledEntry`) for the task's history. `options.onRevoked` is
   * called with the lease the cancel revoked (the task's holder at the moment it was cancelled), if
   * any. Throws `TaskNotFoundError` (unknown, foreign, expired) or `IllegalTransitionError` when the
   * task is already terminal.
   */
  async cancel(
    taskId: string,
    access: Access,
    options: { statusMessage?: string; actor?: Actor; onRevoked?: (lease: Lease) => void } = {},
  ): Promise<TaskRecord> {
    let revoked: Lease | undefined;
    const task = await this.mutate(taskId, access, (current) => {
      this.assertTransition(current, 'cancelled');
      revoked = current.lease; // the callback re-runs on a lost race: the last run's lease was revoked
      current.status = 'cancelled';
      current.statusMessage = options.statusMessage ?? 'The task was cancelled by request.';
      current.inputRequests = {};
      delete current.questionDeadlines;
      delete current.lease;
      delete current.stalled;
      return current;
    });
    if (revoked) options.onRevoked?.(revoked);
    const entry: CancelledEntry = { at: task.lastUpdatedAt, by: options.actor ?? actorOf(access) };
    // History only: the cancel is written and stands even if this entry cannot be (an outage now).
    await this.backend.appendJournal(taskId, CANCELLED_KEY, entry as unknown as Json).catch((error: unknown) => {
      this.log.debug({ taskId, err: error }, 'the cancellation was written, its history entry was not');
    });
    return task;
  }

  /**
   * Ends a live task `completed` or `failed` with its outcome. Throws `IllegalTransitionError` when
   * the task is already terminal (e.g. it was cancelled while its work was finishing), and
   * `LeaseLostError` when `holder` (a name, or a `Fence`) no longer holds it.
   */
  finish(taskId: string, status: 'completed' | 'failed', outcome: TaskOutcome, statusMessage?: string, holder?: Holder): Promise<TaskRecord> {
    return this.mutate(taskId, ENGINE_ACCESS, (task) => {
      this.assertTransition(task, status);
      assertHolder(task, holder);
      delete task.lease;
      delete task.stalled;
      task.status = status;
      task.outcome = outcome;
      task.inputRequests = {};
      delete task.questionDeadlines;
      if (statusMessage !== undefined) task.statusMessage = statusMessage;
      else delete task.statusMessage;
      return task;
    });
  }

  /**
   * Operator retry of an ended task: records on the `failed` (or tool-error `completed`) task
   * `taskId` that `successor` runs it again (`TaskRecord.retriedAs`). Status, outcome and TTL are
   * unchanged: a terminal status is final (2025-11-25 "Task Status Lifecycle"). Throws
   * `IllegalTransitionError` for a live, `cancelled` or successfully `completed` task, and
   * `InvalidArgumentError` when it was retried already (retry its successor instead).
   */
  markRetried(taskId: string, successor: string): Promise<TaskRecord> {
    return this.mutate(taskId, ENGINE_ACCESS, (task) => {
      if (!isTerminal(task.status) || task.status === 'cancelled' || (task.status === 'completed' && !completedWithToolError(task)))
        throw new IllegalTransitionError(taskId, task.status, 'working');
      if (task.retriedAs !== undefined && task.retriedAs !== successor)
        throw new InvalidArgumentError(`Task ${taskId} was already run again as task ${task.retriedAs}; retry that one instead`);
      task.retriedAs = successor;
      return task;
    });
  }

  /**
   * Operator retry of a `working` task in place (see `TaskRuntime.retry`): hands its lease to
   * `holder` (a name no runtime instance uses) for `holdMs`, keeping its epoch, so that the run now
   * holding it is fenced out at once (its writes and effects are refused; the runtime running it
   * aborts it) and no instance takes it over while its journal is trimmed; the retry then claims it
   * (epoch + 1) and starts it again. Sets `statusMessage`. Throws `IllegalTransitionError` unless the
   * task is `working`.
   */
  holdForRetry(taskId: string, holder: string, holdMs: number, statusMessage: string): Promise<TaskRecord> {
    return this.mutate(taskId, ENGINE_ACCESS, (task) => {
      if (task.status !== 'working') throw new IllegalTransitionError(taskId, task.status, 'working');
      task.lease = { holder, expiresAt: this.now() + holdMs, epoch: task.lease?.epoch ?? 0, ms: holdMs };
      task.statusMessage = statusMessage;
      return task;
    });
  }

  /**
   * Removes journal entries `keys` of task `taskId` (an operator retry drops the steps it runs
   * again; see `StoreBackend.deleteJournal`). Returns how many were removed.
   */
  deleteJournal(taskId: string, keys: string[]): Promise<number> {
    return this.backend.deleteJournal(taskId, keys);
  }

  /**
   * Updates `statusMessage` and/or progress of a live task without changing its status. Returns
   * whether anything was written: false for a terminal, unknown or unchanged task. With a `Fence`
   * as `holder`, a task that ended or is held under another lease throws `LeaseLostError` instead
   * (the run writing it must stop).
   */
  async report(taskId: string, update: { statusMessage?: string; progress?: { progress: number; total?: number } }, holder?: Holder): Promise<boolean> {
    let written = false;
    try {
      await this.mutate(taskId, ENGINE_ACCESS, (task) => {
        written = false; // the callback re-runs on a lost race; only the last attempt counts
        if (isTerminal(task.status) && typeof holder !== 'object') return undefined;
        assertHolder(task, holder);
        if (update.statusMessage === task.statusMessage && update.progress === undefined) return undefined;
        if (update.statusMessage !== undefined) task.statusMessage = update.statusMessage;
        if (update.progress !== undefined) task.progress = update.progress;
        written = true;
        return task;
      });
    } catch (error) {
      if (!(error instanceof TaskNotFoundError)) throw error;
      if (typeof holder === 'object') throw new LeaseLostError(taskId, holder.holder, 'ended');
    }
    return written;
  }

  /**
   * Flags a `working` task stalled (`TaskRecord.stalled = mark`) for the run holding `fence`, and
   * journals the episode (`stalled:<since>`, `StalledEntry`, first write wins). Lease-like
   * bookkeeping: `lastUpdatedAt` does not move (nothing the requestor sees changed). Returns false,
   * writing nothing, when the task is not `working` or already carries this episode's mark. Throws
   * `LeaseLostError` when `fence` no longer holds the task (it ended, was cancelled or taken over).
   */
  async markStalled(taskId: string, mark: StallMark, afterMs: number, fence?: Fence): Promise<boolean> {
    let written = false;
    let working = false;
    await this.mutate(
      taskId,
      ENGINE_ACCESS,
      (task) => {
        written = false;
        assertHolder(task, fence);
        working = task.status === 'working';
        if (!working || task.stalled?.since === mark.since) return undefined;
        task.stalled = { at: mark.at, since: mark.since };
        written = true;
        return task;
      },
      { touch: false },
    );
    if (!working) return false;
    const entry: StalledEntry = { at: mark.at, since: mark.since, afterMs };
    await this.appendJournal(taskId, stalledKey(mark.since), entry as unknown as Json, fence);
    return written;
  }

  /**
   * Clears the stall flag of a task (see `markStalled`) once it shows activity again, and journals
   * the episode's end (`resumed:<since>`, `ResumedEntry`, first write wins; `since` names the
   * episode). `lastUpdatedAt` does not move. A task without the flag (ended, cancelled: those clear
   * it) gets the entry only. Throws `LeaseLostError` when a live task is held by another `fence`.
   */
  async clearStalled(taskId: string, since: string, entry: ResumedEntry, fence?: Fence): Promise<void> {
    await this.mutate(
      taskId,
      ENGINE_ACCESS,
      (task) => {
        if (!task.stalled || isTerminal(task.status)) return undefined;
        assertHolder(task, fence);
        delete task.stalled;
        return task;
      },
      { touch: false },
    );
    await this.backend.appendJournal(taskId, resumedKey(since), entry as unknown as Json);
  }

  /**
   * Records an outstanding question under `key` (unique for the task's lifetime) and moves the task
   * to `input_required`; the first time, journals `asked:<key>` (`AskedEntry`) for the task's
   * history. With `deadline` (checked options, see `resolveDeadline`), the question's deadline and
   * reminders are counted from its first ask — the journal's `deadline:<key>` (`DeadlineEntry`, first
   * write wins, written before the question becomes outstanding) or, before it, `asked:<key>` — and
   * kept with the task (`TaskRecord.questionDeadlines[key]`) for the runtime's `QuestionDeadlines`;
   * this process's `onQuestionDeadline` listeners are told. Throws `IllegalTransitionError` when the
   * task is terminal, `LeaseLostError` when a `Fence` no longer holds.
   */
  async requestInput(taskId: string, key: string, request: InputRequest, statusMessage: string, holder?: Holder, deadline?: DeadlineSpec): Promise<TaskRecord> {
    const fence = typeof holder === 'object' ? holder : undefined;
    const timed = deadline ? await this.firstDeadline(taskId, key, deadline, fence) : undefined;
    const task = await this.mutate(taskId, ENGINE_ACCESS, (current) => {
      if (typeof holder === 'object') assertHolder(current, holder); // a fenced run learns why it must stop
      if (current.status !== 'input_required') this.assertTransition(current, 'input_required');
      assertHolder(current, holder);
      current.status = 'input_required';
      delete current.stalled; // asking is activity (and waiting for an answer is no stall)
      current.inputRequests[key] = request;
      current.statusMessage = statusMessage;
      if (timed && !current.questionDeadlines?.[key]) current.questionDeadlines = { ...current.questionDeadlines, [key]: timed };
      return current;
    });
    // A question with a deadline counts from the time its deadline was journaled with (the same first ask).
    const asked: AskedEntry = { at: timed?.askedAt ?? task.lastUpdatedAt, kind: request.kind, message: request.message };
    // First ask wins: a re-ask after a restart keeps it.
    await this.appendJournal(taskId, askedKey(key), asked as unknown as Json, fence);
    if (timed) for (const listener of this.deadlineListeners) listener(task, key);
    return task;
  }

  /**
   * The deadline of question `key` as first asked: from its `deadline:<key>` entry when there is one
   * (a re-ask), else counted from its first `asked:<key>` (or now) and journaled (first write wins).
   */
  private async firstDeadline(taskId: string, key: string, spec: DeadlineSpec, fence?: Fence): Promise<QuestionDeadline> {
    const journal = await this.backend.readJournal(taskId);
    const from = (entry: DeadlineEntry): QuestionDeadline => ({
      ...questionDeadlineOf(spec, entry.at),
      ...(entry.dueAt !== undefined ? { dueAt: entry.dueAt } : {}),
    });
    const known = journal.get(deadlineKey(key)) as DeadlineEntry | undefined;
    if (known) return from(known);
    const askedAt = (journal.get(askedKey(key)) as AskedEntry | undefined)?.at ?? new Date(this.now()).toISOString();
    const timed = questionDeadlineOf(spec, askedAt);
    const entry: DeadlineEntry = {
      at: askedAt,
      ...(timed.dueAt !== undefined && { dueAt: timed.dueAt }),
      ...(spec.onTimeout !== undefined && { onTimeout: onTimeoutKind(spec.onTimeout) }),
      ...(spec.remindEveryMs !== undefined && { remindEveryMs: spec.remindEveryMs }),
    };
    if (await this.appendJournal(taskId, deadlineKey(key), entry as unknown as Json, fence)) return timed;
    return from((await this.backend.readJournal(taskId)).get(deadlineKey(key)) as unknown as DeadlineEntry);
  }

  /**
   * Subscribes to the questions with a deadline or reminders this process asks (`requestInput` with
   * one): `listener` gets the task as written and the question's key. Returns the unsubscribe
   * function. How the runtime's `QuestionDeadlines` arms a timer for a question asked here.
   */
  onQuestionDeadline(listener: (task: TaskRecord, key: string) => void): () => void {
    this.deadlineListeners.add(listener);
    return () => this.deadlineListeners.delete(listener);
  }

  /**
   * Tells this process's `onQuestionDeadline` listeners of the pending questions of `taskId` that
   * have a deadline or reminders (one read of the record; nothing when it has none). For a run that
   * resumes a question without asking it again (an engine replaying its recorded ask step after a
   * takeover), so the instance running it arms the deadline too.
   */
  async announceQuestionDeadlines(taskId: string): Promise<void> {
    if (this.deadlineListeners.size === 0) return;
    const task = await this.backend.get(taskId);
    if (!task || task.status !== 'input_required' || !task.questionDeadlines) return;
    for (const key of Object.keys(task.questionDeadlines))
      if (Object.hasOwn(task.inputRequests, key)) for (const listener of this.deadlineListeners) listener(task, key);
  }

  /**
   * Records what a question's deadline did to it (`QuestionDeadline.escalatedAt`, `reminders`,
   * `remindedAt`) while `key` is still outstanding: one write that moves `lastUpdatedAt` (so pollers
   * and `notifications/tasks/status` subscribers see it). Returns the task as written, or undefined
   * (nothing written) when the question is no longer outstanding or has no deadline.
   */
  async markQuestion(taskId: string, key: string, mark: Pick<QuestionDeadline, 'escalatedAt' | 'reminders' | 'remindedAt'>): Promise<TaskRecord | undefined> {
    let written = false;
    const task = await this.mutate(taskId, ENGINE_ACCESS, (current) => {
      written = false;
      const deadline = current.questionDeadlines?.[key];
      if (isTerminal(current.status) || !Object.hasOwn(current.inputRequests, key) || !deadline) return undefined;
      current.questionDeadlines![key] = { ...deadline, ...mark };
      written = true;
      return current;
    });
    return written ? task : undefined;
  }

  /**
   * Takes question `key` for a `'cancel'` deadline, so no answer can be taken any more: journals
   * `input:<key>` (`{ action: 'cancel' }` marked as the claim, first write wins) and `answered:<key>` by `actor` with
   * `cancels: true` — which makes `inputAnswer` report no answer: the handler is never given it, it
   * sees the cancellation that follows. The question is not settled (the task is cancelled next).
   * Returns true when this call took it, or when a `'cancel'` deadline took it before (a cancel that
   * a crash interrupted, or another instance's: cancelling again is harmless); false when someone
   * answered first.
   */
  async claimQuestion(taskId: string, key: string, actor: Actor): Promise<boolean> {
    const answer: Json = { action: 'cancel', [CANCEL_CLAIM]: true };
    if (await this.backend.appendJournal(taskId, inputKey(key), this.secrets ? this.secrets.seal(answer) : answer)) {
      const answered: AnsweredEntry = { at: new Date(this.now()).toISOString(), by: actor, cancels: true };
      await this.backend.appendJournal(taskId, answeredKey(key), answered as unknown as Json);
      return true;
    }
    const journal = await this.backend.readJournal(taskId);
    const answered = journal.get(answeredKey(key)) as AnsweredEntry | undefined;
    if (answered) return answered.cancels === true;
    // No `answered:` entry yet (written right after the answer, or never: a crash in between): the stored answer tells.
    const stored = journal.get(inputKey(key));
    return (
      (this.secrets && stored !== undefined ? this.secrets.open<{ [CANCEL_CLAIM]?: unknown }>(stored) : (stored as { [CANCEL_CLAIM]?: unknown }))?.[
        CANCEL_CLAIM
      ] === true
    );
  }

  /**
   * The store's clock read now from the store itself (PostgreSQL `clock_timestamp()`, Redis `TIME`),
   * ms since the epoch; `now()` for backends on this host's clock or an injected clock. What a timer
   * that woke by this process's clock checks before it acts, so it never acts early by the store's.
   * Throws `StoreUnavailableError` when the store cannot be reached.
   */
  async clockNow(): Promise<number> {
    return this.backend.clock && !this.clockInjected ? this.backend.clock() : this.now();
  }

  /**
   * Delivers the answer to the outstanding question `key`: `answerInputs` with one answer. Returns
   * true when `key` was outstanding (the answer is durable), false, changing nothing, when it is not
   * (spec 2026-07-28 `tasks/update`: such answers are ignored). `access` is required (see `Access`).
   * Throws `TaskNotFoundError` for unknown or foreign tasks, and `InvalidAnswerError` (-32602 on the
   * wire), storing nothing, when the answer does not fit its question (see `checkInputAnswer`).
   */
  async answerInput(taskId: string, key: string, response: unknown, access: Access, actor?: Actor): Promise<boolean> {
    return (await this.answerInputs(taskId, { [key]: response }, access, actor)).length === 1;
  }

  /**
   * Delivers answers to outstanding questions, keyed by question key — the one place every answer
   * passes through, whatever wire carried it. Values are untrusted (`unknown`): each is checked
   * against the question it answers, by kind (`checkInputAnswer`: an `ElicitResult` matching the
   * form's `requestedSchema`, an `ElicitResult` for URL mode, a `CreateMessageResult` for sampling,
   * a `ListRootsResult` for roots).
   *
   * - Keys that are not outstanding (never asked, already answered, task ended) are ignored before
   *   their values are looked at, so junk under unknown keys never spoils valid answers sent with it
   *   (2026-07-28 Tasks extension "Task Update Requests"; MRTR "Error Handling": ignore what is not
   *   recognized).
   * - If any answer to an outstanding question does not fit, `InvalidAnswerError` (an
   *   `InvalidArgumentError`, -32602 on the wire) lists the problems of every failing key and
   *   nothing at all is written: the task stays `input_required` with the same questions. A form
   *   schema that does not compile cannot be checked: the answer is accepted (logged at debug level).
   * - Otherwise each answer is made durable (journal entry `input:<key>`, first answer wins; sealed
   *   with the `secretKey` if one is configured) before the task leaves `input_required`; the
   *   answered keys are then removed from `inputRequests` in one write, and the task goes back to
   *   `working` once no question is left.
   *
   * - Who answered (`actor`; default: the principal `access` names, or the engine) and when is
   *   journaled as `answered:<key>` (`AnsweredEntry`) for the task's history.
   *
   * Returns the keys whose answers were taken, in the order given — only those this call's answer
   * was the first for (of two concurrent answers to one question, one is taken). `access` is required (see
   * `Access`). Throws `TaskNotFoundError` for unknown, foreign or expired tasks.
   */
  async answerInputs(taskId: string, responses: { [key: string]: unknown }, access: Access, actor?: Actor): Promise<string[]> {
    const task = await this.get(taskId, access);
    const problems: { [key: string]: string[] } = {};
    const taken: [string, InputAnswer][] = [];
    for (const [key, response] of Object.entries(responses)) {
      if (!Object.hasOwn(task.inputRequests, key)) continue;
      const check = checkInputAnswer(task.inputRequests[key]!, response);
      if (!check.valid) {
        problems[key] = check.problems;
        continue;
      }
      if (check.unchecked) this.log.debug({ taskId, key, reason: check.unchecked }, 'answer accepted without a schema check');
      taken.push([key, check.answer]);
    }
    if (Object.keys(problems).length > 0) throw new InvalidAnswerError(taskId, problems);
    const answered: AnsweredEntry = { at: new Date(this.now()).toISOString(), by: actor ?? actorOf(access) };
    // First answer wins: a key another answer reached first (a concurrent request) is not this call's.
    const written: string[] = [];
    for (const [key, response] of taken) {
      const stored = response as unknown as Json;
      if (await this.backend.appendJournal(taskId, inputKey(key), this.secrets ? this.secrets.seal(stored) : stored)) {
        written.push(key);
        await this.backend.appendJournal(taskId, answeredKey(key), answered as unknown as Json);
      }
    }
    // Settled whoever answered first (idempotent) — except a question a 'cancel' deadline took: it
    // stays outstanding until the cancel that follows (see `claimQuestion`).
    let settle = taken.map(([key]) => key);
    if (written.length < settle.length) {
      const claimed = await Promise.all(settle.map(async (key) => !written.includes(key) && (await this.inputAnswer(taskId, key)) === undefined));
      settle = settle.filter((_, i) => !claimed[i]);
    }
    if (settle.length > 0) await this.settleInputs(taskId, settle);
    return written;
  }

  /**
   * Removes `key` from the outstanding questions once its answer is in the journal, and returns the
   * task to `working` when none is left. Idempotent; a no-op on terminal tasks — except with
   * `fence` (a run settling the answer it is about to use), which throws `LeaseLostError` when the
   * fence no longer holds.
   */
  async settleInput(taskId: string, key: string, fence?: Fence): Promise<void> {
    await this.settleInputs(taskId, [key], fence);
  }

  /** `settleInput` for several keys in one write. */
  private async settleInputs(taskId: string, keys: string[], fence?: Fence): Promise<void> {
    await this.mutate(taskId, ENGINE_ACCESS, (task) => {
      if (fence) assertHolder(task, fence);
      const settled = keys.filter((key) => Object.hasOwn(task.inputRequests, key));
      if (settled.length === 0 || isTerminal(task.status)) return undefined;
      for (const key of settled) {
        delete task.inputRequests[key];
        if (task.questionDeadlines) delete task.questionDeadlines[key];
      }
      if (task.questionDeadlines && Object.keys(task.questionDeadlines).length === 0) delete task.questionDeadlines;
      if (task.status === 'input_required' && Object.keys(task.inputRequests).length === 0) {
        task.status = 'working';
        task.statusMessage = 'Input received; working.';
      }
      return task;
    }).catch((error) => {
      if (!(error instanceof TaskNotFoundError)) throw error;
      if (fence) throw new LeaseLostError(taskId, fence.holder, 'ended');
    });
  }

  /**
   * Takes the lease of a live task for `holder` for `leaseMs` (from `now()`, the store's clock) when
   * it is free, expired, already `holder`'s, implausible (`leasePlausible`) when
   * `options.takeImplausible` is set (the caller watched it stay unrenewed), or `force` is set (a single-process runtime taking over
   * after a crash). Every claim starts a new lease epoch (the fencing token: the previous epoch plus
   * one), so writes fenced by an earlier run of the task — even one of the same holder — are
   * refused from then on. Returns the claimed task, or undefined when another live holder has it or
   * the task has ended.
   */
  async claim(taskId: string, holder: string, leaseMs: number, force = false, options: { takeImplausible?: boolean } = {}): Promise<TaskRecord | undefined> {
    let claimed = false;
    try {
      const task = await this.mutate(
        taskId,
        ENGINE_ACCESS,
        (current) => {
          claimed = false;
          if (isTerminal(current.status)) return undefined;
          const lease = current.lease;
          const now = this.now();
          const held = lease !== undefined && lease.holder !== holder && lease.expiresAt > now && !(options.takeImplausible && !leasePlausible(lease, now));
          if (!force && held) return undefined;
          current.lease = { holder, expiresAt: now + leaseMs, epoch: (lease?.epoch ?? 0) + 1, ms: leaseMs };
          claimed = true;
          return current;
        },
        { touch: false },
      );
      return claimed ? task : undefined;
    } catch (error) {
      if (error instanceof TaskNotFoundError) return undefined;
      throw error;
    }
  }

  /**
   * Extends `holder`'s lease of a live task to `leaseMs` from `now()` (a negative `leaseMs`
   * releases it for an immediate takeover), keeping its epoch. Throws `LeaseLostError` when another
   * instance holds it (this one was presumed dead) or, for a `Fence`, another epoch; once the task
   * has ended a `Fence` throws `LeaseLostError` (`ended` / `cancelled`) and a bare holder name is a
   * no-op. Returns the record as written (or as found, for that no-op).
   */
  async renew(taskId: string, holder: Holder, leaseMs: number): Promise<TaskRecord> {
    const name = typeof holder === 'string' ? holder : holder.holder;
    try {
      return await this.mutate(
        taskId,
        ENGINE_ACCESS,
        (task) => {
          if (isTerminal(task.status) && typeof holder !== 'object') return undefined;
          assertHolder(task, holder);
          const epoch = task.lease?.epoch ?? (typeof holder === 'object' ? holder.epoch : 0);
          task.lease = {
            holder: name,
            expiresAt: this.now() + leaseMs,
            epoch,
            ...(leaseMs > 0 ? { ms: leaseMs } : task.lease?.ms !== undefined && { ms: task.lease.ms }),
          };
          return task;
        },
        { touch: false },
      );
    } catch (error) {
      if (error instanceof TaskNotFoundError && typeof holder === 'object') throw new LeaseLostError(taskId, name, 'ended');
      throw error;
    }
  }

  /**
   * Confirms, from a fresh read of the record (never a cache), that `fence` still holds the task:
   * it is live, its lease names `fence.holder` under `fence.epoch`, and at least `minLeftMs` of the
   * lease remain on the store's clock — else the lease is renewed for `renewMs` first (a
   * compare-and-swap, so it cannot revive a lease someone else claimed). This is what a runtime asks
   * before it lets an effect begin (see `LeaseGuard`). Resolves with the store's clock at the read
   * (`nowMs`, ms since the epoch; from the backend's own clock where it has one) and the lease's
   * `expiresAt`. Throws `LeaseLostError` (reason `taken`, `cancelled` or `ended`) when the fence no
   * longer holds, `StoreUnavailableError` when the store cannot be reached.
   */
  async confirm(taskId: string, fence: Fence, renewMs: number, minLeftMs: number): Promise<{ nowMs: number; expiresAt: number }> {
    const { task, nowMs } =
      this.backend.getAt && !this.clockInjected ? await this.backend.getAt(taskId) : { task: await this.backend.get(taskId), nowMs: this.now() };
    assertHeld(taskId, task, fence);
    const expiresAt = task.lease!.expiresAt;
    if (expiresAt - nowMs >= minLeftMs) return { nowMs, expiresAt };
    const renewed = await this.renew(taskId, fence, renewMs);
    return { nowMs, expiresAt: renewed.lease!.expiresAt };
  }

  /**
   * The answer recorded for question `key`, if any. A question a `'cancel'` deadline took (see
   * `claimQuestion`) has none: its task is being cancelled, so whatever waits for the answer waits
   * for the cancellation instead.
   */
  async inputAnswer(taskId: string, key: string): Promise<InputAnswer | undefined> {
    const journal = await this.backend.readJournal(taskId);
    const value = journal.get(inputKey(key));
    if (value === undefined) return undefined;
    const answered = journal.get(answeredKey(key)) as AnsweredEntry | undefined;
    if (answered?.cancels) return undefined;
    const answer = this.secrets ? this.secrets.open<InputAnswer>(value) : (value as unknown as InputAnswer);
    // A claim whose `answered:` entry is not written yet (or never was: a crash in between).
    if (!answered && (answer as { [CANCEL_CLAIM]?: unknown })[CANCEL_CLAIM] === true) return undefined;
    return answer;
  }

  /** All journal entries of a task (steps, timers, answers), by key. */
  readJournal(taskId: string): Promise<Map<string, Json>> {
    return this.backend.readJournal(taskId);
  }

  /**
   * Adds a journal entry; first write wins (returns false if `key` existed). With `fence`, the entry
   * is written only while the fence holds the task (checked atomically with the write by the
   * backend); otherwise nothing is written and it throws `LeaseLostError` (`taken`, `cancelled` or
   * `ended`), so a run that lost its task cannot record anything for it — not even a failure its
   * own stale effect caused.
   */
  async appendJournal(taskId: string, key: string, value: Json, fence?: Fence): Promise<boolean> {
    if (await this.backend.appendJournal(taskId, key, value, fence)) return true;
    // Not written: the key existed, or the fence no longer holds (then say why).
    if (fence) assertHeld(taskId, await this.backend.get(taskId), fence);
    return false;
  }

  /**
   * Deletes up to `limit` expired tasks (terminal, `createdAt + ttl` passed, where a terminal task's
   * `ttl` includes its retention after the end, see `ttlAtEnd`) with their journals. Live tasks are
   * never purged. Returns how many were deleted (0 on Redis, whose keys expire by themselves at the
   * same instant).
   */
  purgeExpired(limit = 500): Promise<number> {
    return this.backend.purgeExpired(this.now(), limit);
  }

  /** Removes a task and its journal. */
  async delete(taskId: string): Promise<boolean> {
    this.lastWritten.delete(taskId);
    const deleted = await this.backend.delete(taskId);
    if (deleted) this.feed.announceDeleted(taskId);
    return deleted;
  }

  /**
   * The version, status and lease of the newest record of `taskId` this store has announced (its own
   * writes, and on shared stores others' it heard of), or undefined. Synchronous: how a runtime
   * starting a run from a record it just claimed learns that a later write (a cancel) overtook it.
   *
   * @internal The embedded executor's check; the change feed's bookkeeping is not an API.
   */
  lastSeen(taskId: string): AnnouncedVersion | undefined {
    return this.feed.lastSeen(taskId);
  }

  /**
   * Subscribes to every successful write in this process, and to other processes' writes this store
   * hears of (see `ChangeFeed`). Returns the unsubscribe function.
   */
  onChange(listener: (task: TaskRecord) => void): () => void {
    return this.feed.onChange(listener);
  }

  /**
   * Resolves with the task's next written state (undefined once it was deleted), or with undefined
   * when `timeoutMs` (ms; default: none) elapses or `signal` aborts first. Subscribe before checking state to never miss a write. Holds
   * no timer without `timeoutMs`, and nothing at all once it resolved.
   */
  nextChange(taskId: string, options: { signal?: AbortSignal; timeoutMs?: number } = {}): Promise<TaskRecord | undefined> {
    return this.feed.nextChange(taskId, options);
  }

  /**
   * Subscribes to the writes of one task only (in this process, and other processes' writes on
   * shared stores: by notice, or by the periodic `recheckMs` check). A write to a task calls only
   * its own listeners, however many tasks are watched. The listener gets undefined when the task
   * was deleted (`delete`, or found gone by the recheck). Returns the unsubscribe function.
   */
  onTaskChange(taskId: string, listener: (task: TaskRecord | undefined) => void): () => void {
    return this.feed.onTaskChange(taskId, listener);
  }

  /** How many tasks have listeners in this process (`nextChange` / `onTaskChange`), and how many listeners `onChange` has. */
  listenerCounts(): { tasks: number; taskListeners: number; changeListeners: number } {
    return this.feed.listenerCounts();
  }

  /**
   * Turns webhooks on: from now on, a write that moves a task into `input_required` or a terminal
   * status enqueues, in the same atomic write, one delivery per route whose `events` take the event
   * and whose `principal` (if any) owns the task (see `OutboxBackend`). Without routes (the
   * default) nothing is ever written to the outbox. Throws `InvalidArgumentError` when the backend
   * has no outbox (a custom backend without `OutboxBackend`'s methods).
   *
   * @internal Called by `createTaskServer({ webhooks })`; configure webhooks there.
   */
  routeWebhooks(routes: readonly WebhookRoute[]): void {
    const b = this.backend;
    if (!b.enqueueDeliveries || !b.claimDeliveries || !b.settleDelivery || !b.listDeliveries || !b.nextDeliveryAt) {
      throw new InvalidArgumentError(`webhooks need a store with an outbox; ${this.health.name} has none`);
    }
    this.routes = routes.length > 0 ? routes.map((route) => ({ ...route })) : undefined;
  }

  /**
   * Enqueues event `type` of task `taskId` for every webhook route that takes it (durable when this
   * resolves), with `detail` (JSON, no secrets: it is sent as it is) under `data.detail` of the
   * payload. For events that are not a status write of their own — `task.stalled`,
   * `task.question_overdue` — fed by other features. Returns the deliveries enqueued (none when no
   * webhooks are configured or no route takes the event). Throws `TaskNotFoundError` for an unknown
   * or expired task, `InvalidArgumentError` for an unknown type.
   */
  async emitTaskEvent(taskId: string, type: WebhookEventType, detail?: JsonObject): Promise<OutboxDelivery[]> {
    if (!WEBHOOK_EVENT_TYPES.includes(type)) throw new InvalidArgumentError(`unknown webhook event type '${String(type)}'`);
    const task = await this.get(taskId, ENGINE_ACCESS);
    if (!this.routes) return [];
    const deliveries = deliveriesFor(this.routes, task, type, eventPayload(task, type, new Date(this.now()).toISOString(), detail), this.now());
    if (deliveries.length === 0) return [];
    await this.backend.enqueueDeliveries!(deliveries);
    this.enqueued();
    return deliveries;
  }

  /** Whether webhooks are on (`routeWebhooks` was given routes). */
  get webhooksEnabled(): boolean {
    return this.routes !== undefined;
  }

  /**
   * Claims up to `limit` due deliveries for `holder` for `leaseMs` (ms) on the store's clock (see
   * `OutboxBackend.claimDeliveries`); [] on a store without an outbox.
   */
  claimDeliveries(holder: string, leaseMs: number, limit: number): Promise<OutboxDelivery[]> {
    return this.backend.claimDeliveries?.(holder, this.now(), leaseMs, limit) ?? Promise.resolve([]);
  }

  /** Records an attempt's outcome while `claim` holds (see `OutboxBackend.settleDelivery`); whether it wrote. */
  settleDelivery(deliveryId: string, claim: string, settlement: DeliverySettlement): Promise<boolean> {
    return this.backend.settleDelivery?.(deliveryId, claim, settlement) ?? Promise.resolve(false);
  }

  /** A task's webhook deliveries, oldest first ([] on a store without an outbox). Operator data: no access check. */
  deliveries(taskId: string): Promise<OutboxDelivery[]> {
    return this.backend.listDeliveries?.(taskId) ?? Promise.resolve([]);
  }

  /** ms since the epoch (store clock): when the next pending delivery is due, or undefined. */
  nextDeliveryAt(): Promise<number | undefined> {
    return this.backend.nextDeliveryAt?.() ?? Promise.resolve(undefined);
  }

  /** Calls `listener` after this store enqueued deliveries. Returns the unsubscribe function. */
  onDeliveries(listener: () => void): () => void {
    this.outboxListeners.add(listener);
    return () => this.outboxListeners.delete(listener);
  }

  private enqueued(): void {
    for (const listener of this.outboxListeners) listener();
  }

  /** Stops the change feed (its timer, notices and `onChange` listeners) and closes the backend. */
  close(): Promise<void> {
    this.unregisterClock();
    this.feed.close();
    return this.backend.close();
  }

  private visible(taskId: string, task: TaskRecord | undefined, access: Access): TaskRecord {
    // mayAccess refuses a missing access first, so an unknown id does not hide a forgotten argument.
    const allowed = mayAccess(access, task?.owner ?? null);
    if (!task || !allowed) throw new TaskNotFoundError(taskId);
    if (isExpired(task, this.now())) throw new TaskNotFoundError(taskId, 'expired');
    return task;
  }

  private assertTransition(task: TaskRecord, to: TaskStatus): void {
    if (!canTransition(task.status, to)) throw new IllegalTransitionError(task.taskId, task.status, to);
  }

  /**
   * Read, apply `change` to a copy, compare-and-swap; on a lost race re-read and re-apply, so rules
   * are always checked against the state actually overwritten. `change` returns undefined to write
   * nothing (the current record is returned), or throws to refuse.
   */
  private async mutate(
    taskId: string,
    access: Access,
    change: (task: TaskRecord) => TaskRecord | undefined,
    options: { touch?: boolean } = {},
  ): Promise<TaskRecord> {
    for (let attempt = 0; attempt < MAX_CAS_ATTEMPTS; attempt++) {
      // Fast path: try the compare-and-swap from the record of our own last write, saving a read.
      // Only a successful CAS may rely on it (the version check proves it current); a no-op or a
      // refusal decided on it is re-decided on a fresh read.
      const remembered = attempt === 0 ? this.lastWritten.get(taskId) : undefined;
      let current: TaskRecord;
      let next: TaskRecord | undefined;
      try {
        current = this.visible(taskId, remembered ?? (await this.backend.get(taskId)), access);
        next = change(copyJson(current));
      } catch (error) {
        if (remembered) continue;
        throw error;
      }
      if (next === undefined) {
        if (remembered) continue;
        return current;
      }
      next.version = current.version + 1;
      // Lease bookkeeping is invisible to requestors: it does not move lastUpdatedAt.
      if (options.touch !== false) next.lastUpdatedAt = new Date(Math.max(this.now(), Date.parse(current.lastUpdatedAt))).toISOString();
      // The write that ends a task fixes its lifetime: kept at least min(ttl, retainAfterEndMs) after
      // the end (terminal records are never written again, so this runs once per task).
      if (!isTerminal(current.status) && isTerminal(next.status)) {
        next.ttl = ttlAtEnd(next.ttl, Date.parse(next.createdAt), Date.parse(next.lastUpdatedAt), this.policy.retainAfterEndMs);
      }
      const written = next;
      // The transactional outbox: the deliveries this write's event implies go in the same atomic write.
      const event = this.routes && eventOfWrite(current, next);
      const deliveries = event ? deliveriesFor(this.routes!, next, event.type, eventPayload(next, event.type, event.at, event.detail), this.now()) : [];
      const outbox = deliveries.length > 0 ? deliveries : undefined;
      if (await this.feed.ownWrite(written, () => this.backend.replace(written, current.version, outbox))) {
        this.remember(next);
        this.feed.announce(next);
        if (outbox) this.enqueued();
        return next;
      }
      this.lastWritten.delete(taskId);
      if (attempt > 2) await new Promise((resolve) => setTimeout(resolve, Math.random() * attempt));
    }
    throw new ConflictError(taskId);
  }

  private remember(task: TaskRecord): void {
    if (this.lastWritten.size >= 10_000) this.lastWritten.clear();
    this.lastWritten.set(task.taskId, copyJson(task)); // a private copy: callers may mutate what they got
  }
}

/**
 * Who a runtime write is made for: an instance's name (refused once another instance holds the
 * lease), or a `Fence` (refused unless the task is live and held under exactly that holder and epoch).
 */
export type Holder = string | Fence;

/**
 * Fencing: refuses (`LeaseLostError`) a write on behalf of `holder`. A name is refused once another
 * instance holds the lease; a `Fence` once the task is terminal (`cancelled` / `ended`) or its
 * lease is missing or names another holder or epoch (`taken`).
 */
function assertHolder(task: TaskRecord, holder: Holder | undefined): void {
  if (holder === undefined) return;
  if (typeof holder === 'string') {
    if (task.lease !== undefined && task.lease.holder !== holder) throw new LeaseLostError(task.taskId, holder);
    return;
  }
  if (isTerminal(task.status)) throw new LeaseLostError(task.taskId, holder.holder, task.status === 'cancelled' ? 'cancelled' : 'ended');
  if (!holdsFence(task, holder)) throw new LeaseLostError(task.taskId, holder.holder, 'taken');
}

/** `assertHolder` for a record read to check `fence`: a task gone (deleted, purged) has `ended`. */
function assertHeld(taskId: string, task: TaskRecord | undefined, fence: Fence): asserts task is TaskRecord {
  if (!task) throw new LeaseLostError(taskId, fence.holder, 'ended');
  assertHolder(task, fence);
}

/** Refuses operator-only calls (`listAll`, `statusCounts`) made with anything but `ENGINE_ACCESS`. */
function assertOperator(access: unknown, method: string, why: string): void {
  if (access !== ENGINE_ACCESS) throw new InvalidArgumentError(`${method} is for operator access only (ENGINE_ACCESS): ${why}`);
}

/** ISO 8601 date, or date-time with a zone designator; groups: year, month, day, fraction. */
const ISO_INSTANT = /^(\d{4})-(\d{2})-(\d{2})(?:T\d{2}:\d{2}(?::\d{2}(?:\.(\d+))?)?(?:Z|[+-]\d{2}:\d{2}))?$/;

/**
 * `value` (an ISO 8601 date, midnight UTC, or date-time with a zone) in the stored form of
 * `createdAt` (`toISOString`, ms precision), so backends compare it as text. A fraction finer than
 * a millisecond rounds up, which keeps both `>= from` and `< to` exact for ms timestamps. Throws
 * `InvalidArgumentError` naming `field` for anything else, impossible dates (`2026-02-30`) included.
 */
function canonicalInstant(value: unknown, field: string): string {
  const match = typeof value === 'string' ? ISO_INSTANT.exec(value) : null;
  const ms = match ? Date.parse(value as string) : NaN;
  const [, year, month, day, fraction = ''] = match ?? [];
  const calendar = new Date(0);
  calendar.setUTCFullYear(Number(year), Number(month) - 1, Number(day)); // Date.UTC would read year 0–99 as 1900–1999
  if (!match || Number.isNaN(ms) || calendar.getUTCMonth() !== Number(month) - 1 || calendar.getUTCDate() !== Number(day)) {
    throw new InvalidArgumentError(`${field} must be an ISO 8601 date (2026-01-31) or date-time with a zone (2026-01-31T08:00:00Z)`);
  }
  return new Date(ms + (/[1-9]/.test(fraction.slice(3)) ? 1 : 0)).toISOString();
}

function encodeCursor(task: ListPosition): string {
  return CURSOR_PREFIX + Buffer.from(JSON.stringify([task.createdAt, task.taskId])).toString('base64url');
}

function decodeCursor(cursor: string): ListPosition {
  if (typeof cursor !== 'string' || !cursor.startsWith(CURSOR_PREFIX) || cursor.length > 1024) throw new InvalidCursorError();
  try {
    const value = JSON.parse(Buffer.from(cursor.slice(CURSOR_PREFIX.length), 'base64url').toString('utf8')) as unknown;
    if (Array.isArray(value) && value.length === 2 && typeof value[0] === 'string' && typeof value[1] === 'string' && !Number.isNaN(Date.parse(value[0]))) {
      return { createdAt: value[0], taskId: value[1] };
    }
  } catch {
    /* fall through */
  }
  throw new InvalidCursorError();
}

/**
 * `holder` (the retained task created with an idempotency key) when `idempotency` (a later call's
 * key and fingerprint) is the same request; else `IdempotencyConflictError`.
 */
function sameRequest(holder: TaskRecord, idempotency: TaskIdempotency): TaskRecord {
  if (holder.idempotency?.fingerprint !== idempotency.fingerprint) throw new IdempotencyConflictError(idempotency.key, holder.taskId);
  return holder;
}
