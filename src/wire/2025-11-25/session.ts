import type { Notification, Server, ServerContext } from '@modelcontextprotocol/server';
import { isTerminal } from '../../core/status.js';
import type { JsonObject } from '../../core/json.js';
import type { TaskRecord } from '../../core/task.js';
import type { TaskRuntime } from '../../runtime/runtime.js';
import { forwardQuestion } from './elicitation.js';
import { progressForwarder } from '../progress.js';
import { answerableQuestions, clientCanAnswer, unanswerableMessage } from '../input-kinds.js';
import { relatedTaskMeta, toTask2025 } from './task-object.js';

interface Watch {
  owner: string | null;
  /** Ends this session's subscription to the task's writes. */
  off: () => void;
  lastStatus?: string;
  /** Forwards progress to the creating request's progressToken (see `progressForwarder`). */
  progress?: (task: TaskRecord) => void;
}

interface Push {
  controller: AbortController;
}

/** How long a question pushed on the standalone GET stream may stay unanswered before it is re-sent on the next poll. */
const STANDALONE_PUSH_TIMEOUT_MS = 5 * 60_000;
/** A question on a `tasks/result` stream lives as long as that stream. */
const RESULT_STREAM_PUSH_TIMEOUT_MS = 24 * 3600_000;

/**
 * The 2025-11-25 view of one MCP connection (one `Server`) onto the shared task store.
 *
 * - Tracks the tasks this connection created or asked about ("watched"), and sends
 *   `notifications/tasks/status` when their status changes, `notifications/progress` (with the
 *   `progressToken` of the creating request) when their progress value grows — strictly
 *   increasing, never after the task ended — and `notifications/elicitation/complete` when a URL
 *   elicitation's out-of-band flow completes (`TaskRuntime.completeElicitation`).
 * - Delivers each outstanding question of a watched `input_required` task that this client
 *   declared it can answer (`clientCanAnswer`: elicitation form / URL mode, sampling, roots) as the
 *   matching server request (`elicitation/create`, `sampling/createMessage`, `roots/list`) carrying
 *   `io.modelcontextprotocol/related-task` (2025-11-25 "Input Required Status"):
 *   on an open `tasks/result` stream for that task when there is one, else on the standalone GET
 *   stream (the spec: clients SHOULD expect messages on any SSE stream). When a `tasks/result`
 *   request arrives for a question already pushed on the standalone stream, Streamable HTTP moves
 *   it to the `tasks/result` stream (a GET stream may not exist; the standalone push is aborted),
 *   while a single-pipe transport (stdio) leaves it where it is, so the client is asked once. The
 *   answer is written to the store, which resumes the task — wherever and whenever it runs. An
 *   answer that does not match the question's `requestedSchema` is refused by the store (nothing
 *   stored, the task stays `input_required`) and the same question is asked again at once on the
 *   same channel with a new `elicitation/create` (see `forwardQuestion`), not after a timeout.
 * - When a question is answered elsewhere, or the task ends, the pending request is aborted, so
 *   the SDK tells the client (`notifications/cancelled`) to stop asking.
 */
export class Session2025 {
  private readonly watched = new Map<string, Watch>();
  private readonly pushes = new Map<string, Push>();
  private readonly resultStreams = new Map<string, Set<ServerContext>>();
  private readonly unsubscribe: () => void;
  private disposed = false;
  /**
   * Whether the transport has separate streams per request (Streamable HTTP). On a single pipe
   * (stdio) a question already sent is in front of the client whatever request it came with.
   */
  private separateStreams = true;
  /** Whether the client holds the standalone GET stream open (see `standaloneStream`); undefined: never told. */
  private standalone: boolean | undefined;

  constructor(
    private readonly runtime: TaskRuntime,
    private readonly server: Server,
    private readonly onError: (error: unknown) => void,
  ) {
    this.unsubscribe = runtime.onElicitationComplete((task, elicitationId) => this.onElicitationComplete(task, elicitationId));
  }

  /** The client capabilities this connection declared in `initialize` (undefined before it). */
  clientCapabilities(): JsonObject | undefined {
    return this.server.getClientCapabilities() as JsonObject | undefined;
  }

  /**
   * The `statusMessage` a task shows this client when it cannot answer some outstanding question
   * (see `unanswerableMessage`), else undefined.
   */
  unanswerableStatus(task: TaskRecord, fallbackTools: boolean): string | undefined {
    if (task.status !== 'input_required') return undefined;
    const { unanswerable } = answerableQuestions(task, this.server.getClientCapabilities());
    return unanswerable.length > 0 ? unanswerableMessage(unanswerable, fallbackTools) : undefined;
  }

  /** Tells the session what it is connected to (see `separateStreams`). */
  connected(transport: object): void {
    this.separateStreams = typeof (transport as { handleRequest?: unknown }).handleRequest === 'function';
  }

  /** Starts watching `task` for this connection (idempotent). */
  watch(task: TaskRecord, owner: string | null, progressToken?: string | number): void {
    if (this.disposed || isTerminal(task.status)) return;
    const existing = this.watched.get(task.taskId);
    if (existing) {
      if (progressToken !== undefined) existing.progress = this.progressTo(task.taskId, progressToken);
      return;
    }
    const taskId = task.taskId;
    this.watched.set(taskId, {
      owner,
      // Only this task's writes reach this session: a write costs its own watchers, not every session.
      off: this.runtime.onTaskChange(taskId, (current) => (current ? this.onStoreChange(current) : this.unwatch(taskId))),
      lastStatus: task.status,
      ...(progressToken !== undefined && { progress: this.progressTo(task.taskId, progressToken) }),
    });
  }

  /**
   * Tells the session whether its client holds the standalone GET stream open (Streamable HTTP;
   * `startHttpServer` reports it). Without one, questions are not pushed on it: the SDK would drop
   * them while each stayed a pending request with a timer. When one opens, the questions of watched
   * `input_required` tasks not yet sent are sent on it; questions sent on a stream that closed stay
   * pending (the client has them and may answer by POST). Never told (other transports): open.
   */
  standaloneStream(open: boolean): void {
    if (this.disposed || this.standalone === open) return;
    this.standalone = open;
    // Questions already sent on a stream that closed stay pending: the client has them and may answer by POST.
    if (!open) return;
    for (const [taskId, watch] of this.watched) {
      if (watch.lastStatus !== 'input_required') continue;
      this.runtime.get(taskId, watch.owner).then(
        (task) => this.deliver(task, watch.owner),
        () => undefined, // gone meanwhile: nothing to ask
      );
    }
  }

  /** Registers an open `tasks/result` request for `taskId`; questions go there from now on. */
  openResultStream(taskId: string, ctx: ServerContext): void {
    let set = this.resultStreams.get(taskId);
    if (!set) this.resultStreams.set(taskId, (set = new Set()));
    set.add(ctx);
  }

  /** Unregisters a `tasks/result` request that ended, withdrawing the questions still pending on its stream. */
  closeResultStream(taskId: string, ctx: ServerContext): void {
    const set = this.resultStreams.get(taskId);
    set?.delete(ctx);
    if (set?.size === 0) this.resultStreams.delete(taskId);
    for (const [id, push] of this.pushes) if (id.startsWith(`${taskId}\0`) && id.endsWith(`\0${ctxKey(ctx)}`)) push.controller.abort();
  }

  /**
   * Sends every outstanding question of `task` not already pending on the chosen channel. Called on
   * store changes, on `tasks/get` (so a question lost with a dropped stream is asked again on the
   * next poll) and while a `tasks/result` request waits.
   */
  deliver(task: TaskRecord, owner: string | null): void {
    if (this.disposed || task.status !== 'input_required') return;
    const streams = this.resultStreams.get(task.taskId);
    const ctx = streams ? [...streams].at(-1) : undefined;
    if (!ctx && !this.pushable()) return; // nowhere to send it: asked when a stream opens or on tasks/result
    const capabilities = this.server.getClientCapabilities();
    for (const [key, question] of Object.entries(task.inputRequests)) {
      if (!clientCanAnswer(question, capabilities)) continue; // never sent to a client that did not declare it
      const id = `${task.taskId}\0${key}\0${ctx ? ctxKey(ctx) : 'standalone'}`;
      if (this.pushes.has(id)) continue;
      const standalone = this.pushes.get(`${task.taskId}\0${key}\0standalone`);
      if (ctx && standalone) {
        // One pipe: the client already has the question. Separate streams: a GET stream may not
        // exist (the push is then silently dropped), so move the question to the tasks/result stream.
        if (!this.separateStreams) continue;
        standalone.controller.abort();
      }
      const push: Push = { controller: new AbortController() };
      this.pushes.set(id, push);
      forwardQuestion(
        this.runtime,
        { taskId: task.taskId, key, question, principal: owner, meta: relatedTaskMeta(task.taskId) },
        { server: this.server, ctx, signal: push.controller.signal, timeoutMs: ctx ? RESULT_STREAM_PUSH_TIMEOUT_MS : STANDALONE_PUSH_TIMEOUT_MS },
      )
        .catch((error) => {
          if (!push.controller.signal.aborted && !this.disposed) this.onError(error);
        })
        .finally(() => {
          if (this.pushes.get(id) === push) this.pushes.delete(id);
        });
    }
  }

  /**
   * Whether this session holds nothing a new one would lack: no task watched, no question pushed,
   * no `tasks/result` stream open (so its connection may be rebuilt, see `SessionLimits.dormantAfterMs`).
   */
  quiet(): boolean {
    return this.watched.size === 0 && this.pushes.size === 0 && this.resultStreams.size === 0;
  }

  /** Stops all watching and aborts pending questions (connection closed). */
  dispose(): void {
    if (this.disposed) return;
    this.disposed = true;
    this.unsubscribe();
    for (const push of this.pushes.values()) push.controller.abort();
    this.pushes.clear();
    for (const watch of this.watched.values()) watch.off();
    this.watched.clear();
  }

  /** Stops watching `taskId` (ended or deleted). */
  private unwatch(taskId: string): void {
    this.watched.get(taskId)?.off();
    this.watched.delete(taskId);
  }

  private onStoreChange(task: TaskRecord): void {
    const watch = this.watched.get(task.taskId);
    if (!watch) return;
    for (const [id, push] of this.pushes) {
      const [taskId, key] = id.split('\0');
      if (taskId === task.taskId && !(key! in task.inputRequests)) push.controller.abort();
    }
    // Progress first: it belongs to the operation while it runs (see `progressForwarder`).
    watch.progress?.(task);
    if (watch.lastStatus !== task.status) {
      watch.lastStatus = task.status;
      this.notify({ method: 'notifications/tasks/status', params: toTask2025(task) });
    }
    if (isTerminal(task.status)) this.unwatch(task.taskId);
    else this.deliver(task, watch.owner);
  }

  /** Progress of task `taskId` to `progressToken` on this connection, with the related-task `_meta`. */
  private progressTo(taskId: string, progressToken: string | number): (task: TaskRecord) => void {
    return progressForwarder(
      progressToken,
      async (notification) => (this.pushable() ? this.server.notification(notification as Notification) : undefined),
      relatedTaskMeta(taskId),
    );
  }

  /** URL-mode elicitation completed (2025-11-25 "Elicitation": `notifications/elicitation/complete`), for watched tasks. */
  private onElicitationComplete(task: TaskRecord, elicitationId: string): void {
    if (!this.watched.has(task.taskId)) return;
    if (!clientCanAnswer({ kind: 'url', message: '', url: '', elicitationId }, this.server.getClientCapabilities())) return;
    this.notify({ method: 'notifications/elicitation/complete', params: { elicitationId, _meta: relatedTaskMeta(task.taskId) } });
  }

  /**
   * Whether a notification not tied to a request can reach the client: not on Streamable HTTP while
   * no standalone GET stream is open (the SDK's transport would validate it, then drop it: it keeps
   * no event store, so nothing is replayed later either).
   */
  private pushable(): boolean {
    return !(this.separateStreams && this.standalone === false);
  }

  private notify(notification: Notification): void {
    if (!this.pushable()) return;
    this.server.notification(notification).catch(() => {
      /* the client may be gone; status notifications are optional (2025-11-25 "Task Notifications") */
    });
  }
}

const ctxIds = new WeakMap<ServerContext, string>();
let nextCtxId = 0;
function ctxKey(ctx: ServerContext): string {
  let id = ctxIds.get(ctx);
  if (!id) ctxIds.set(ctx, (id = `result-${++nextCtxId}`));
  return id;
}
