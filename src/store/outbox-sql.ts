/** The webhook outbox's SQL rows (SQLite, PostgreSQL): one mapping both backends share. */
import type { DeliverySettlement, DeliveryState, OutboxDelivery, WebhookEventType, WebhookPayload } from './outbox.js';

/** A row of the SQL outbox tables (SQLite, PostgreSQL): bigints may come back as strings, payloads as text or parsed JSON. */
export interface OutboxRow {
  delivery_id: string;
  task_id: string;
  endpoint_id: string;
  type: string;
  payload: string | WebhookPayload;
  created_at: number | string;
  attempts: number | string;
  next_attempt_at: number | string;
  state: string;
  last_error: string | null;
  claim: string | null;
}

/** The delivery an SQL outbox row holds. */
export function deliveryOfRow(row: OutboxRow): OutboxDelivery {
  return {
    deliveryId: row.delivery_id,
    endpointId: row.endpoint_id,
    taskId: row.task_id,
    type: row.type as WebhookEventType,
    payload: typeof row.payload === 'string' ? (JSON.parse(row.payload) as WebhookPayload) : row.payload,
    createdAt: Number(row.created_at),
    attempts: Number(row.attempts),
    nextAttemptAt: Number(row.next_attempt_at),
    state: row.state as DeliveryState,
    ...(row.last_error !== null && { lastError: row.last_error }),
    ...(row.claim !== null && { claim: row.claim }),
  };
}

/** The columns of an SQL outbox row, in `OUTBOX_COLUMNS` order, for an insert of `delivery`. */
export function rowValues(delivery: OutboxDelivery): unknown[] {
  return [
    delivery.deliveryId,
    delivery.taskId,
    delivery.endpointId,
    delivery.type,
    JSON.stringify(delivery.payload),
    delivery.createdAt,
    delivery.attempts,
    delivery.nextAttemptAt,
    delivery.state,
  ];
}

/** The columns `rowValues` fills, for SQL inserts. */
export const OUTBOX_COLUMNS = 'delivery_id, task_id, endpoint_id, type, payload, created_at, attempts, next_attempt_at, state';

/** The value of `last_error` a settlement writes (null when delivered), bounded to 500 characters. */
export function settlementError(settlement: DeliverySettlement): string | null {
  return settlement.state === 'delivered' ? null : settlement.lastError.slice(0, 500);
}
