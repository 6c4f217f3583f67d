import type { IncomingMessage, ServerResponse } from 'node:http';
import { SUBSCRIPTION_ID_META_KEY, type AuthInfo, type JSONRPCRequest } from '@modelcontextprotocol/server';
import { isTerminal } from '../../core/status.js';
import type { TaskRuntime } from '../../runtime/runtime.js';
import { isStoreUnavailable, toErrorObject } from '../errors.js';
import { principalOf } from '../principal.js';
import { declaresTasksExtension, missingTasksCapability, requestCapabilities, toDetailedTask } from './task-object.js';

/** Largest number of task ids one subscription may watch. */
const MAX_TASK_IDS = 100;

/** True for a 2026-07-28 `subscriptions/listen` request that asks for task notifications. */
export function isTaskSubscription(message: unknown): message is JSONRPCRequest {
  const m = message as { method?: unknown; params?: { notifications?: { taskIds?: unknown } } } | undefined;
  return m?.method === 'subscriptions/listen' && Array.isArray(m.params?.notifications?.taskIds);
}

/**
 * `subscriptions/listen` with `notifications.taskIds` (2026-07-28 Tasks extension "Task Status
 * Notifications"; 2026-07-28 "Subscriptions"), served as one SSE stream. The SDK's listen router does
 * not know `taskIds`, so requests carrying them are answered here:
 * - a client that did not declare the extension gets -32021 with `data.requiredCapabilities`;
 * - the acknowledgement (`notifications/subscriptions/acknowledged`, first on the stream) lists the
 *   task ids the requestor may see (unknown or foreign ids are left out, at most 100); other filters
 *   of the same request are not honored and are omitted from it;
 * - then `notifications/tasks` with the full `DetailedTask` — its current state at once, and again
 *   on every change — each carrying `io.modelcontextprotocol/subscriptionId` (the request's id);
 * - once every watched task is terminal the subscription ends gracefully with a `resultType:
 *   "complete"` response; a comment line every `keepAliveMs` keeps proxies from closing it;
 * - the task store unavailable (`StoreUnavailableError`): before the stream opens, `serve` rejects
 *   with it (`startHttpServer` answers 503 + `Retry-After`, stdio the -32010 error); once open, the
 *   stream ends with the -32010 error response (`data.retryable`) and the client subscribes again.
 */
export class TaskSubscriptions {
  private readonly keepAliveMs: number;

  constructor(
    private readonly runtime: TaskRuntime,
    options: { keepAliveMs?: number } = {},
  ) {
    this.keepAliveMs = options.keepAliveMs ?? 15_000;
  }

  /** Serves one subscription until every task ends or the client goes away. */
  async serve(req: IncomingMessage, res: ServerResponse, message: JSONRPCRequest, authInfo?: AuthInfo): Promise<void> {
    const params = message.params as { _meta?: unknown; notifications: { taskIds: unknown[] } };
    if (!declaresTasksExtension(params._meta)) {
      const error = missingTasksCapability();
      res
        .writeHead(200, { 'content-type': 'application/json' })
        .end(JSON.stringify({ jsonrpc: '2.0', id: message.id, error: { code: error.code, message: error.message, data: error.data } }));
      return;
    }
    const owner = principalOf(authInfo);
    const viewerCapabilities = requestCapabilities(params._meta);
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
    const meta = { [SUBSCRIPTION_ID_META_KEY]: message.id };
    res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache', connection: 'keep-alive' });
    const write = (payload: unknown) => res.write(`event: message\ndata: ${JSON.stringify(payload)}\n\n`);
    write({ jsonrpc: '2.0', method: 'notifications/subscriptions/acknowledged', params: { notifications: { taskIds: [...watched] }, _meta: meta } });

    let finished = false;
    /** Ends the subscription: `true` with the final result, an error object with that error, `false` silently (the client left). */
    const finish = (graceful: boolean | { code: number; message: string; data?: unknown }) => {
      if (finished) return;
      finished = true;
      off();
      clearInterval(keepAlive);
      if (graceful !== false && !res.writableEnded) {
        write({ jsonrpc: '2.0', id: message.id, ...(graceful === true ? { result: { resultType: 'complete', _meta: meta } } : { error: graceful }) });
        res.end();
      }
    };
    const lastSent = new Map<string, string>();
    const notify = (task: Parameters<typeof toDetailedTask>[0]) => {
      if (finished || !watched.has(task.taskId)) return;
      // Only what a client can see: lease renewals and other bookkeeping writes are not news.
      const visible = JSON.stringify([task.status, task.statusMessage, task.lastUpdatedAt, Object.keys(task.inputRequests), task.progress]);
      if (lastSent.get(task.taskId) === visible) return;
      lastSent.set(task.taskId, visible);
      write({ jsonrpc: '2.0', method: 'notifications/tasks', params: { ...toDetailedTask(task, { capabilities: viewerCapabilities }), _meta: meta } });
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
    const keepAlive = setInterval(() => res.write(': keep-alive\n\n'), this.keepAliveMs);
    // The response's close over HTTP (the request body was read before: its close has fired already);
    // the request's on stdio, where a stand-in request closes when the subscription is cancelled.
    res.once('close', () => finish(false));
    req.once('close', () => finish(false));
    if (watched.size === 0) return finish(true);
    for (const taskId of [...watched]) {
      try {
        notify(await this.runtime.get(taskId, owner));
      } catch (error) {
        if (isStoreUnavailable(error)) return finish(toErrorObject(error));
        watched.delete(taskId);
      }
    }
    if (watched.size === 0) finish(true);
  }
}
