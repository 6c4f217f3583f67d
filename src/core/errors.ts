/**
 * Domain errors of the task engine. They carry no JSON-RPC shape; `src/wire/errors.ts` maps each
 * `kind` to the error code the spec prescribes (2025-11-25 "Tasks › Error Handling"; 2026-07-28
 * extension "Error Handling"):
 *
 * | kind                 | meaning                                               | JSON-RPC code |
 * |----------------------|-------------------------------------------------------|---------------|
 * | `not_found`          | unknown, expired or foreign `taskId`                  | -32602        |
 * | `invalid_cursor`     | `tasks/list` cursor not issued by this store          | -32602        |
 * | `illegal_transition` | e.g. cancelling a terminal task, `completed → working`| -32602        |
 * | `conflict`           | optimistic-concurrency retries exhausted              | -32603        |
 * | `invalid_argument`   | malformed input to a store or runtime call, or an     | -32602        |
 * |                      | answer that does not match its `requestedSchema`, or  |               |
 * |                      | an idempotency key reused with other arguments        |               |
 * | `lease_lost`         | a runtime wrote for a task another instance now holds,| (internal)    |
 * |                      | or that ended or was cancelled meanwhile (fencing)    |               |
 * | `limit_exceeded`     | a configured limit (e.g. live tasks per principal)    | -32000        |
 * | `unavailable`        | the task store cannot be reached or refuses writes    | -32010, HTTP  |
 * |                      | for now (outage, timeout, disk full); retry later     | 503           |
 */
export type TaskErrorKind =
  'not_found' | 'invalid_cursor' | 'illegal_transition' | 'conflict' | 'invalid_argument' | 'lease_lost' | 'limit_exceeded' | 'unavailable';

/** Base class: `kind` says which rule was broken, `message` is safe to show to the requestor. */
export class TaskError extends Error {
  constructor(
    readonly kind: TaskErrorKind,
    message: string,
  ) {
    super(message);
    this.name = 'TaskError';
  }
}

/** The task does not exist for this principal, or its `ttl` has elapsed. Maps to -32602. */
export class TaskNotFoundError extends TaskError {
  constructor(taskId: string, reason: 'not found' | 'expired' = 'not found') {
    super('not_found', reason === 'expired' ? `Task has expired: ${taskId}` : `Task not found: ${taskId}`);
    this.name = 'TaskNotFoundError';
  }
}

/** The requested status change is not in the spec's lifecycle. Maps to -32602. */
export class IllegalTransitionError extends TaskError {
  constructor(
    readonly taskId: string,
    readonly from: string,
    readonly to: string,
  ) {
    super(
      'illegal_transition',
      from === 'completed' || from === 'failed' || from === 'cancelled'
        ? `Task ${taskId} is already in terminal status '${from}' and cannot become '${to}'`
        : `Task ${taskId} cannot move from '${from}' to '${to}'`,
    );
    this.name = 'IllegalTransitionError';
  }
}

/** A `tasks/list` cursor that this store did not issue. Maps to -32602. */
export class InvalidCursorError extends TaskError {
  constructor() {
    super('invalid_cursor', 'Invalid cursor');
    this.name = 'InvalidCursorError';
  }
}

/** Too many concurrent writers raced on one task; nothing was written. Maps to -32603. */
export class ConflictError extends TaskError {
  constructor(taskId: string) {
    super('conflict', `Too many concurrent updates to task ${taskId}; try again`);
    this.name = 'ConflictError';
  }
}

/**
 * Why a runtime instance may no longer act for a task (see `LeaseLostError`): `taken` — another
 * instance claimed it (this one was presumed dead, or its lease expired while it was paused);
 * `cancelled` — someone cancelled it; `ended` — it is terminal, or gone; `clock` — this instance's
 * clock is too far from the store's to hold leases (see `TaskStore.clock`).
 */
export type LeaseLossReason = 'taken' | 'cancelled' | 'ended' | 'clock';

/**
 * Fencing: a runtime instance wrote, or asked to start an effect, for a task it no longer holds
 * under the lease epoch it ran with (`reason`: another instance took it over, it was cancelled or
 * ended, or this instance's clock is off). The write was rejected and nothing changed; the
 * instance must stop executing the task. Internal to the engine (never a requestor's answer).
 */
export class LeaseLostError extends TaskError {
  constructor(
    readonly taskId: string,
    holder: string,
    readonly reason: LeaseLossReason = 'taken',
  ) {
    super(
      'lease_lost',
      reason === 'taken'
        ? `Instance ${holder} no longer holds the lease of task ${taskId}`
        : reason === 'clock'
          ? `Instance ${holder} may not hold the lease of task ${taskId}: its clock is too far from the store's`
          : `Task ${taskId} was ${reason === 'cancelled' ? 'cancelled' : 'ended'}; instance ${holder} may no longer act for it`,
    );
    this.name = 'LeaseLostError';
  }
}

/**
 * JSON-RPC code of a request the server could not serve because its task store is unavailable for
 * now (`StoreUnavailableError`): -32010, in the range the 2026-07-28 specification leaves to
 * implementations (-32000 to -32019). The error's `data` is `{ retryable: true, retryAfterMs }`;
 * over HTTP the response is a 503 with `Retry-After`. Defined here, in the one layer the server's
 * wire, its logs and the client all import.
 */
export const STORE_UNAVAILABLE = -32010;

/**
 * JSON-RPC code of the error a task ends with when its deadline passed (`TaskRecord.deadline`, the
 * tool's `deadlineMs`): -32011, in the implementation-defined range (-32000 to -32019) like
 * `STORE_UNAVAILABLE`. The task ends `failed` with this error in both protocol versions (2025-11-25
 * `tasks/result` returns it; 2026-07-28 `tasks/get` carries it as the task's `error`), with `data`
 * `{ deadline, deadlineMs }` (ISO 8601, ms from creation).
 */
export const DEADLINE_EXCEEDED = -32011;

/**
 * The task store could not be used for now: it refused or dropped the connection, did not answer
 * within its timeout, or could not write (disk full, locked beyond its busy timeout). Nothing is
 * known to have been written by the failed call; trying again later is safe. `cause` is the
 * driver's error (never shown to requestors); `retryAfterMs` the suggested wait in ms.
 *
 * On the wire: JSON-RPC -32010 (implementation-defined range) with `data: { retryable: true,
 * retryAfterMs }`, and over HTTP a 503 with `Retry-After` (see `src/wire/errors.ts`). It is never
 * a task's outcome: runs interrupted by it are resumed by the runtime with backoff.
 */
export class StoreUnavailableError extends TaskError {
  constructor(
    message: string,
    readonly retryAfterMs = 1000,
    options?: ErrorOptions,
  ) {
    super('unavailable', message);
    if (options?.cause !== undefined) (this as { cause?: unknown }).cause = options.cause;
    this.name = 'StoreUnavailableError';
  }
}

/**
 * A configured limit was reached (e.g. live tasks per principal). Nothing was stored. Maps to
 * -32000 (implementation-defined server error; the spec defines no code for quotas), with `data`.
 */
export class LimitExceededError extends TaskError {
  constructor(
    message: string,
    readonly data: { limit: string; max: number; current?: number },
  ) {
    super('limit_exceeded', message);
    this.name = 'LimitExceededError';
  }
}

/** Malformed input to a store or runtime call. Maps to -32602. */
export class InvalidArgumentError extends TaskError {
  constructor(message: string) {
    super('invalid_argument', message);
    this.name = 'InvalidArgumentError';
  }
}

/**
 * Answers that do not match their question's `requestedSchema` (MCP "Elicitation": accepted
 * `content` must match the requested schema; see `checkAnswer` in `answer-schema.ts`). Thrown by
 * `TaskStore.answerInputs` / `answerInput` (and so `TaskRuntime.provideInput(s)`) before anything is
 * written: the task stays `input_required` with the same questions. An `InvalidArgumentError`, so it
 * maps to -32602 (Invalid params) with this message and `data` `{ problems }`.
 *
 * `problems` maps each refused question key to its problems, one readable sentence each, naming the
 * field and what it must be but never the value given (e.g. `decision must be one of: approve,
 * reject`). The message reads "The answer to question 'elicit-1' does not match its requestedSchema:
 * decision must be one of: approve, reject", one sentence per refused key.
 */
export class InvalidAnswerError extends InvalidArgumentError {
  constructor(
    readonly taskId: string,
    readonly problems: { [key: string]: string[] },
  ) {
    super(
      Object.entries(problems)
        .map(([key, list]) => `The answer to question '${key}' does not match its requestedSchema: ${list.join('; ')}.`)
        .join(' '),
    );
    this.name = 'InvalidAnswerError';
  }

  /** `{ problems }`: the JSON-RPC error `data` of the -32602 this error maps to. */
  get data(): { problems: { [key: string]: string[] } } {
    return { problems: this.problems };
  }
}

/**
 * An idempotency key (SEP-3182 "Request Idempotency", see `src/core/idempotency.ts`) reused by the
 * same principal for a different request: another tool, or other arguments, than the call that
 * created task `taskId` with it. Nothing was created. An `InvalidArgumentError`, so it maps to
 * -32602 (Invalid params) with `data` `{ reason: "idempotencyKeyConflict", idempotencyKey, taskId }`:
 * the key's owner may read that task, and a client that meant a new request sends a new key.
 */
export class IdempotencyConflictError extends InvalidArgumentError {
  constructor(
    readonly idempotencyKey: string,
    readonly taskId: string,
  ) {
    super(
      `idempotencyKey '${idempotencyKey}' was already used for a different request (another tool or other arguments) that created task ${taskId}; send a new key for a new request`,
    );
    this.name = 'IdempotencyConflictError';
  }

  /** The JSON-RPC error `data` of the -32602 this error maps to. */
  get data(): { reason: 'idempotencyKeyConflict'; idempotencyKey: string; taskId: string } {
    return { reason: 'idempotencyKeyConflict', idempotencyKey: this.idempotencyKey, taskId: this.taskId };
  }
}

/**
 * A JSON-RPC error that a task handler deliberately ends its task with. The task becomes `failed`
 * and `tasks/result` answers with exactly this error (2025-11-25 "Result Retrieval": "return that
 * same JSON-RPC error"). `code` is a JSON-RPC error code (e.g. -32602), `data` any JSON value.
 */
export class TaskRpcError extends Error {
  constructor(
    readonly code: number,
    message: string,
    readonly data?: unknown,
  ) {
    super(message);
    this.name = 'TaskRpcError';
  }
}

/** What `errorChain` yields: the fields the engine's error classifications read. */
export type ErrorLink = {
  name?: unknown;
  message?: unknown;
  code?: unknown;
  transient?: unknown;
  status?: unknown;
  statusCode?: unknown;
  cause?: unknown;
  errors?: unknown;
};

/**
 * Walks `error`, then its `cause` chain — or, where an error has no `cause`, an `AggregateError`'s
 * first error — at most 8 deep, yielding each object met. The one walk every classification of
 * wrapped errors uses (transient, outage, retryable answers, log levels, start-up advice).
 */
export function* errorChain(error: unknown): Generator<ErrorLink> {
  let e = error as ErrorLink | undefined;
  for (let depth = 0; e !== null && e !== undefined && typeof e === 'object' && depth < 8; depth++) {
    yield e;
    e = (e.cause ?? (Array.isArray(e.errors) ? e.errors[0] : undefined)) as ErrorLink | undefined;
  }
}
