import { SUBSCRIPTION_ID_META_KEY, type JSONRPCMessage, type JSONRPCRequest } from '@modelcontextprotocol/server';
import type { Principal } from '../../core/access.js';
import { isTerminal } from '../../core/status.js';
import type { TaskRuntime } from '../../runtime/runtime.js';
import { isStoreUnavailable, toErrorObject } from '../errors.js';
import { missingTasksCapability, readEnvelope } from './envelope.js';
import { toDetailedTask } from './task-object.js';

/** Largest number of task ids one subscription may watch. */
const MAX_TASK_IDS = 100;

/** True for a 2026-07-28 `subscriptions/listen` request that asks for task notifications. */
export function isTaskSubscription(message: unknown): message is JSONRPCRequest {
  const m = message as { method?: unknown; params?: { notifications?: { taskIds?: unknown } } } | undefined;
  return m?.method === 'subscriptions/listen' && Array.isArray(m.params?.notifications?.taskIds);
}

/**
 * Where one subscription's messages go, whatever the transport: Streamable HTTP frames them as one
 * SSE stream (a lone error response as a JSON body; see `startHttpServer`), stdio writes each as a
 * message on the connection (see `startStdioServer`).
 */
export interface SubscriptionSink {
  /**
   * Sends one JSON-RPC message of the subscription: notifications, then at most one response (the
   * final result or an error), which is always the last message. Must not throw.
   */
  send(message: JSONRPCMessage): void;
  /** Aborts when the subscriber went away (the HTTP response closed, `notifications/cancelled`, the connection ended): nothing more is sent. */
  signal: AbortSignal;
}

/**
 * `subscriptions/listen` with `notifications.taskIds` (2026-07-28 Tasks extension "Task Status
 * Notifications"; 2026-07-28 "Subscriptions"). The SDK's listen router does not know `taskIds`, so
 * requests carrying them are answered here, transport-neutrally (see `SubscriptionSink`):
 * - a client that did not declare the extension gets -32021 with `data.requiredCapabilities` (the
 *   only message sent);
 * - the acknowledgement (`notifications/subscriptions/acknowledged`, the first message) lists the
 *   task ids the requestor may see (unknown or foreign ids are left out, at most 100); other filters
 *   of the same request are not honored and are omitted from it;
 * - then `notifications/tasks` with the full `DetailedTask` — its current state at once, and again
 *   on every change a client can see — each carrying `io.modelcontextprotocol/subscriptionId` (the
 *   request's id);
 * - once every watched task is terminal (or deleted) the subscription ends gracefully with a
 *   `resultType: "complete"` response;
 * - the task store unavailable (`StoreUnavailableError`): before the acknowledgement, `serve`
 *   rejects with it (HTTP answers 503 + `Retry-After`, stdio the -32010 error); once acknowledged,
 *   the subscription ends with the -32010 error response (`data.retryable`) and the client
 *   subscribes again.
 */
export class TaskSubscriptions {
  /** Interval between keep-alive comments on an HTTP subscription's SSE stream, in ms (transport framing: stdio needs none). */
  readonly keepAliveMs: number;

  constructor(
    private readonly runtime: TaskRuntime,
    options: { keepAliveMs?: number } = {},
  ) {
    this.keepAliveMs = options.keepAliveMs ?? 15_000;
  }

  /**
   * Serves the subscription `message` (a request `isTaskSubscription` accepted) for `owner` (the
   * requestor's principal, see `principalOf`) into `sink`; resolves when it has ended: every task
   * ended, the subscriber left (`sink.signal`), or after the error response. Rejects only before
   * anything was sent (a store outage).
   */
  async serve(message: JSONRPCRequest, owner: Principal, sink: SubscriptionSink): Promise<void> {
    const params = message.params as { _meta?: unknown; notifications: { taskIds: unknown[] } };
    const envelope = readEnvelope(params._meta);
    if (!envelope.declaresTasks) {
      const error = missingTasksCapability();
      sink.send({ jsonrpc: '2.0', id: message.id, error: { code: error.code, message: error.message, data: error.data } });
      return;
    }
    const requested = [...new Set(params.notifications.taskIds.filter((id): id is string => typeof id === 'string'))].slice(0, MAX_TASK_IDS);
    const watched = new Set<string>();
    for (const taskId of requested) {
      try {
        await this.runtime.get(taskId, owner);
        watched.add(taskId);
      } catch (error) {
        if (isStoreUnavailable(error)) throw error; // unknown whether it is visible: retry later
        /* not visible to this requestor: not acknowledged */
      }
    }
    if (sink.signal.aborted) return;
    const meta = { [SUBSCRIPTION_ID_META_KEY]: message.id };
    sink.send({ jsonrpc: '2.0', method: 'notifications/subscriptions/acknowledged', params: { notifications: { taskIds: [...watched] }, _meta: meta } });

    let finished = false;
    let ended!: () => void;
    const done = new Promise<void>((resolve) => (ended = resolve));
    /** Ends the subscription: `true` with the final result, an error object with that error, `false` silently (the subscriber left). */
    const finish = (graceful: boolean | { code: number; message: string; data?: unknown }) => {
      if (finished) return;
      finished = true;
      off();
      sink.signal.removeEventListener('abort', left);
      if (graceful !== false && !sink.signal.aborted) {
        sink.send({ jsonrpc: '2.0', id: message.id, ...(graceful === true ? { result: { resultType: 'complete', _meta: meta } } : { error: graceful }) });
      }
      ended();
    };
    const left = () => finish(false);
    const lastSent = new Map<string, string>();
    const notify = (task: Parameters<typeof toDetailedTask>[0]) => {
      if (finished || !watched.has(task.taskId)) return;
      // Only what a client can see: lease renewals and other bookkeeping writes are not news.
      const visible = JSON.stringify([task.status, task.statusMessage, task.lastUpdatedAt, Object.keys(task.inputRequests), task.progress]);
      if (lastSent.get(task.taskId) === visible) return;
      lastSent.set(task.taskId, visible);
      sink.send({ jsonrpc: '2.0', method: 'notifications/tasks', params: { ...toDetailedTask(task, { capabilities: envelope.capabilities }), _meta: meta } });
      if (isTerminal(task.status)) watched.delete(task.taskId);
      if (watched.size === 0) finish(true);
    };
    // One subscription per watched task: other tasks' writes never reach this stream.
    const offs = [...watched].map((taskId) =>
      this.runtime.onTaskChange(taskId, (task) => {
        if (task) return notify(task);
        watched.delete(taskId); // deleted: nothing more to say about it
        if (watched.size === 0) finish(true);
      }),
    );
    const off = () => offs.forEach((unsubscribe) => unsubscribe());
    if (sink.signal.aborted) finish(false);
    else sink.signal.addEventListener('abort', left, { once: true });
    if (watched.size === 0) finish(true);
    for (const taskId of [...watched]) {
      if (finished) break;
      try {
        notify(await this.runtime.get(taskId, owner));
      } catch (error) {
        if (isStoreUnavailable(error)) {
          finish(toErrorObject(error));
          break;
        }
        watched.delete(taskId);
      }
    }
    if (watched.size === 0) finish(true);
    return done;
  }
}
