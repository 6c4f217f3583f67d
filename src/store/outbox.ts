import { randomBytes } from 'node:crypto';
import type { JsonObject } from '../core/json.js';
import { isTerminal, type TaskStatus } from '../core/status.js';
import type { TaskRecord } from '../core/task.js';

/**
 * The webhook event types (roadmap "Triggers & Events", spec issue #2451): a task started waiting
 * for input, ended, was flagged stalled (its tool's `stallAfterMs`), or a question of it passed an
 * `'escalate'` deadline unanswered (`task.question_overdue`). Each is enqueued by the store itself,
 * in the write that is the event (see `eventOfWrite`); `TaskStore.emitTaskEvent` enqueues one
 * without a write of its own.
 */
export type WebhookEventType = 'task.input_required' | 'task.completed' | 'task.failed' | 'task.cancelled' | 'task.stalled' | 'task.question_overdue';

/** Every `WebhookEventType`. */
export const WEBHOOK_EVENT_TYPES: readonly WebhookEventType[] = [
  'task.input_required',
  'task.completed',
  'task.failed',
  'task.cancelled',
  'task.stalled',
  'task.question_overdue',
];

/**
 * The body of a webhook (Standard Webhooks' recommended `{ type, timestamp, data }` shape), fixed when
 * the delivery is enqueued: every redelivery sends the same bytes. It never carries a task's
 * arguments, answers or result — only what a requestor's `tasks/get` shows of its lifecycle.
 */
export interface WebhookPayload {
  /** The event type. */
  type: WebhookEventType;
  /** ISO 8601: when the event happened (the task's `lastUpdatedAt` written with it, or the emit time). */
  timestamp: string;
  data: {
    taskId: string;
    status: TaskStatus;
    statusMessage?: string;
    /** ISO 8601. */
    createdAt: string;
    /** ISO 8601. */
    lastUpdatedAt: string;
    /** Extra fields of an emitted event (`emitTaskEvent`'s `data`), e.g. `{ questionKey }`. */
    detail?: JsonObject;
  };
}

/** Where a delivery is: waiting for (another) attempt, received by the endpoint (2xx), or given up. */
export type DeliveryState = 'pending' | 'delivered' | 'failed';

/** One webhook delivery in the outbox: one event for one endpoint. */
export interface OutboxDelivery {
  /** The Standard Webhooks `webhook-id` (`msg_` + 128 random bits, base64url): the same on every attempt. */
  deliveryId: string;
  /** The configured endpoint's `id`. */
  endpointId: string;
  taskId: string;
  type: WebhookEventType;
  payload: WebhookPayload;
  /** ms since the epoch: when it was enqueued (the give-up bound counts from here). */
  createdAt: number;
  /** Attempts begun so far (a claim begins one; a sender that crashed mid-attempt counts too). */
  attempts: number;
  /**
   * ms since the epoch: when the next attempt is due. While a sender holds a claim, the claim's
   * expiry: a crashed sender's delivery becomes due again then.
   */
  nextAttemptAt: number;
  state: DeliveryState;
  /** The last attempt's failure (HTTP status or network error), bounded to 500 characters. */
  lastError?: string;
  /** The token of the claim a sender holds (set by `claimDeliveries`), absent when unclaimed. */
  claim?: string;
}

/** What `settleDelivery` writes after an attempt. */
export type DeliverySettlement =
  { state: 'delivered' } | { state: 'pending'; nextAttemptAt: number; lastError: string } | { state: 'failed'; lastError: string };

/**
 * The outbox part of a backend (see `StoreBackend`): deliveries are enqueued with the task write that
 * is their event (`StoreBackend.replace`'s `deliveries`), or alone (`enqueueDeliveries`), and sent by
 * dispatchers that claim them under a lease. Backends without it cannot serve webhooks.
 */
export interface OutboxBackend {
  /** Stores `deliveries` (state `pending`) in one atomic write. */
  enqueueDeliveries(deliveries: OutboxDelivery[]): Promise<void>;
  /**
   * Claims up to `limit` pending deliveries due at `nowMs` (ms since the epoch; `nextAttemptAt <=
   * nowMs`), oldest due first, atomically across every process sharing the store: each claimed one
   * gets a fresh `claim` token, one more attempt, and `nextAttemptAt = nowMs + leaseMs` (so a
   * sender that dies holding it frees it when the lease ends). `holder` names the claimant in the token.
   */
  claimDeliveries(holder: string, nowMs: number, leaseMs: number, limit: number): Promise<OutboxDelivery[]>;
  /**
   * Records an attempt's outcome, only while `claim` is still the delivery's claim (a sender whose
   * lease ran out and was re-claimed writes nothing). Clears the claim. Returns whether it wrote.
   */
  settleDelivery(deliveryId: string, claim: string, settlement: DeliverySettlement): Promise<boolean>;
  /** A task's deliveries, oldest first (for the operator console). */
  listDeliveries(taskId: string): Promise<OutboxDelivery[]>;
  /** ms since the epoch: the earliest `nextAttemptAt` of a pending delivery, or undefined when none is pending. */
  nextDeliveryAt(): Promise<number | undefined>;
}

/** Which tasks' events one endpoint receives (the store's part of a webhook endpoint's configuration). */
export interface WebhookRoute {
  /** The endpoint's id. */
  id: string;
  /** Event types it receives; undefined = all. */
  events?: readonly WebhookEventType[];
  /** Only tasks of this principal; undefined = every task (an operator's endpoint). */
  principal?: string;
}

/** A new Standard Webhooks message id: `msg_` + 128 random bits (base64url). */
export function newDeliveryId(): string {
  return `msg_${randomBytes(16).toString('base64url')}`;
}

/**
 * The event a write from `before` to `after` is, if any, with its time (ISO 8601) and `detail`:
 * entering `input_required`, ending (`completed` / `failed` / `cancelled`), the stall flag set for a
 * new episode (`task.stalled`, detail `{ since, at }`: the last activity and when it was flagged),
 * or questions marked escalated by their deadline (`task.question_overdue`, detail `{ questions }`:
 * their keys). Other writes (progress, leases, a second question while already waiting, a stall
 * cleared) are no event.
 */
export function eventOfWrite(before: TaskRecord, after: TaskRecord): { type: WebhookEventType; at: string; detail?: JsonObject } | undefined {
  if (after.status !== before.status) {
    if (after.status === 'input_required') return { type: 'task.input_required', at: after.lastUpdatedAt };
    if (isTerminal(after.status) && !isTerminal(before.status)) return { type: `task.${after.status}` as WebhookEventType, at: after.lastUpdatedAt };
    return undefined;
  }
  if (after.stalled && after.stalled.since !== before.stalled?.since)
    return { type: 'task.stalled', at: after.stalled.at, detail: { since: after.stalled.since, at: after.stalled.at } };
  const escalated = Object.entries(after.questionDeadlines ?? {}).filter(
    ([key, d]) => d.escalatedAt !== undefined && !before.questionDeadlines?.[key]?.escalatedAt,
  );
  if (escalated.length > 0) return { type: 'task.question_overdue', at: escalated[0]![1].escalatedAt!, detail: { questions: escalated.map(([key]) => key) } };
  return undefined;
}

/** The payload of event `type` of `task` at `timestamp` (ISO 8601), with `detail` for emitted events. */
export function eventPayload(task: TaskRecord, type: WebhookEventType, timestamp: string, detail?: JsonObject): WebhookPayload {
  return {
    type,
    timestamp,
    data: {
      taskId: task.taskId,
      status: task.status,
      ...(task.statusMessage !== undefined && { statusMessage: task.statusMessage }),
      createdAt: task.createdAt,
      lastUpdatedAt: task.lastUpdatedAt,
      ...(detail !== undefined && { detail }),
    },
  };
}

/**
 * The deliveries event `type` of `task` implies: one per route that takes the type and whose
 * principal (if any) owns the task, each due at once (`nowMs`, ms since the epoch).
 */
export function deliveriesFor(
  routes: readonly WebhookRoute[],
  task: TaskRecord,
  type: WebhookEventType,
  payload: WebhookPayload,
  nowMs: number,
): OutboxDelivery[] {
  return routes
    .filter((route) => (route.events === undefined || route.events.includes(type)) && (route.principal === undefined || route.principal === task.owner))
    .map((route) => ({
      deliveryId: newDeliveryId(),
      endpointId: route.id,
      taskId: task.taskId,
      type,
      payload,
      createdAt: nowMs,
      attempts: 0,
      nextAttemptAt: nowMs,
      state: 'pending' as const,
    }));
}

/** A claim token: the holder's name and 64 random bits. */
export function newClaim(holder: string): string {
  return `${holder}/${randomBytes(8).toString('hex')}`;
}

/** `settlement` applied to `delivery` (for backends that rewrite whole records: memory). */
export function settled(delivery: OutboxDelivery, settlement: DeliverySettlement): OutboxDelivery {
  const next: OutboxDelivery = { ...delivery, state: settlement.state };
  delete next.claim;
  if (settlement.state === 'pending') next.nextAttemptAt = settlement.nextAttemptAt;
  if (settlement.state !== 'delivered') next.lastError = settlement.lastError.slice(0, 500);
  return next;
}
