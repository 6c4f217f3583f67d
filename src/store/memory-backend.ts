import { idempotencyScope } from '../core/idempotency.js';
import { askedKey, type AskedEntry } from '../core/journal-keys.js';
import type { Json } from '../core/json.js';
import { isExpired } from '../core/policy.js';
import type { Fence, TaskRecord } from '../core/task.js';
import {
  comparePositions,
  completedWithToolError,
  holdsFence,
  matchesOperatorQuery,
  oldestAsked,
  zeroCounts,
  type ListQuery,
  type OperatorListPage,
  type OperatorListQuery,
  type StatusCounts,
  type StoreBackend,
} from './backend.js';
import { newClaim, settled, type DeliverySettlement, type OutboxBackend, type OutboxDelivery } from './outbox.js';

/**
 * In-process backend (`memory:`). Nothing survives the process; for tests and ephemeral servers.
 * Records are held as JSON text so callers can never alias stored state.
 */
export class MemoryBackend implements StoreBackend, OutboxBackend {
  readonly exclusive = true;
  private readonly tasks = new Map<string, string>();
  private readonly journals = new Map<string, Map<string, string>>();
  /** Idempotency index (`idempotencyScope`) → the task id holding it. */
  private readonly keyed = new Map<string, string>();
  /** The webhook outbox: delivery id → delivery (as JSON text). */
  private readonly outbox = new Map<string, string>();

  async insert(task: TaskRecord): Promise<TaskRecord | undefined> {
    if (this.tasks.has(task.taskId)) throw new Error(`duplicate taskId ${task.taskId}`);
    // Checked and written in one synchronous stretch: nothing can come between the check and the insert.
    const scope = task.idempotency && idempotencyScope(task.owner, task.idempotency.key);
    if (scope !== undefined) {
      const holder = this.holding(scope, Date.parse(task.createdAt));
      if (holder) return holder;
      this.keyed.set(scope, task.taskId);
    }
    this.tasks.set(task.taskId, JSON.stringify(task));
    return undefined;
  }

  async findByIdempotency(scope: string, nowMs: number): Promise<TaskRecord | undefined> {
    return this.holding(scope, nowMs);
  }

  /** The retained task holding `scope` at `nowMs`, if any. */
  private holding(scope: string, nowMs: number): TaskRecord | undefined {
    const taskId = this.keyed.get(scope);
    const text = taskId === undefined ? undefined : this.tasks.get(taskId);
    const task = text === undefined ? undefined : (JSON.parse(text) as TaskRecord);
    return task && !isExpired(task, nowMs) ? task : undefined;
  }

  async get(taskId: string): Promise<TaskRecord | undefined> {
    const text = this.tasks.get(taskId);
    return text === undefined ? undefined : (JSON.parse(text) as TaskRecord);
  }

  async replace(task: TaskRecord, expectedVersion: number, deliveries?: OutboxDelivery[]): Promise<boolean> {
    // The check, the write and the outbox rows in one synchronous stretch.
    const text = this.tasks.get(task.taskId);
    if (text === undefined || (JSON.parse(text) as TaskRecord).version !== expectedVersion) return false;
    this.tasks.set(task.taskId, JSON.stringify(task));
    for (const delivery of deliveries ?? []) this.outbox.set(delivery.deliveryId, JSON.stringify(delivery));
    return true;
  }

  async enqueueDeliveries(deliveries: OutboxDelivery[]): Promise<void> {
    for (const delivery of deliveries) this.outbox.set(delivery.deliveryId, JSON.stringify(delivery));
  }

  async claimDeliveries(holder: string, nowMs: number, leaseMs: number, limit: number): Promise<OutboxDelivery[]> {
    const due = [...this.outbox.values()]
      .map((text) => JSON.parse(text) as OutboxDelivery)
      .filter((d) => d.state === 'pending' && d.nextAttemptAt <= nowMs)
      .sort((a, b) => a.nextAttemptAt - b.nextAttemptAt)
      .slice(0, limit);
    return due.map((d) => {
      const claimed: OutboxDelivery = { ...d, attempts: d.attempts + 1, nextAttemptAt: nowMs + leaseMs, claim: newClaim(holder) };
      this.outbox.set(d.deliveryId, JSON.stringify(claimed));
      return claimed;
    });
  }

  async settleDelivery(deliveryId: string, claim: string, settlement: DeliverySettlement): Promise<boolean> {
    const text = this.outbox.get(deliveryId);
    const delivery = text === undefined ? undefined : (JSON.parse(text) as OutboxDelivery);
    if (delivery?.claim !== claim) return false;
    this.outbox.set(deliveryId, JSON.stringify(settled(delivery, settlement)));
    return true;
  }

  async listDeliveries(taskId: string): Promise<OutboxDelivery[]> {
    return [...this.outbox.values()]
      .map((text) => JSON.parse(text) as OutboxDelivery)
      .filter((d) => d.taskId === taskId)
      .sort((a, b) => a.createdAt - b.createdAt);
  }

  async nextDeliveryAt(): Promise<number | undefined> {
    let next: number | undefined;
    for (const text of this.outbox.values()) {
      const d = JSON.parse(text) as OutboxDelivery;
      if (d.state === 'pending' && (next === undefined || d.nextAttemptAt < next)) next = d.nextAttemptAt;
    }
    return next;
  }

  async list(query: ListQuery): Promise<TaskRecord[]> {
    const out: TaskRecord[] = [];
    for (const text of this.tasks.values()) {
      const task = JSON.parse(text) as TaskRecord;
      if (task.owner !== query.owner) continue;
      if (query.after && comparePositions(task, query.after) <= 0) continue;
      out.push(task);
    }
    return out.sort(comparePositions).slice(0, query.limit);
  }

  /** Filters and sorts every record: O(n log n) per page, fine for the sizes a memory store holds. */
  async listAll(query: OperatorListQuery): Promise<OperatorListPage> {
    const out: TaskRecord[] = [];
    for (const text of this.tasks.values()) {
      const task = JSON.parse(text) as TaskRecord;
      if (matchesOperatorQuery(task, query)) out.push(task);
    }
    return { tasks: out.sort((a, b) => comparePositions(b, a)).slice(0, query.limit) };
  }

  async countByStatus(nowMs: number): Promise<StatusCounts> {
    const counts = zeroCounts();
    let toolErrors = 0;
    let oldestInputRequiredAt: string | undefined;
    for (const text of this.tasks.values()) {
      const task = JSON.parse(text) as TaskRecord;
      if (isExpired(task, nowMs)) continue;
      counts[task.status]++;
      if (completedWithToolError(task)) toolErrors++;
      if (task.status !== 'input_required') continue;
      const journal = this.journals.get(task.taskId);
      const asked = Object.keys(task.inputRequests).map((key) => {
        const entry = journal?.get(askedKey(key));
        return entry === undefined ? undefined : (JSON.parse(entry) as AskedEntry).at;
      });
      const since = oldestAsked(asked, task.lastUpdatedAt);
      if (oldestInputRequiredAt === undefined || since < oldestInputRequiredAt) oldestInputRequiredAt = since;
    }
    return {
      counts,
      ...(toolErrors > 0 && { completedWithToolError: toolErrors }),
      ...(oldestInputRequiredAt !== undefined && { oldestInputRequiredAt }),
    };
  }

  async listUnfinished(): Promise<TaskRecord[]> {
    return [...this.tasks.values()]
      .map((text) => JSON.parse(text) as TaskRecord)
      .filter((task) => task.status === 'working' || task.status === 'input_required')
      .sort(comparePositions);
  }

  async purgeExpired(nowMs: number, limit: number): Promise<number> {
    let deleted = 0;
    for (const text of [...this.tasks.values()]) {
      if (deleted >= limit) break;
      const task = JSON.parse(text) as TaskRecord;
      if (isExpired(task, nowMs) && (await this.delete(task.taskId))) deleted++;
    }
    return deleted;
  }

  async delete(taskId: string): Promise<boolean> {
    this.journals.delete(taskId);
    for (const [id, text] of this.outbox) if ((JSON.parse(text) as OutboxDelivery).taskId === taskId) this.outbox.delete(id);
    const text = this.tasks.get(taskId);
    const keyed = text === undefined ? undefined : (JSON.parse(text) as TaskRecord);
    if (keyed?.idempotency) {
      const scope = idempotencyScope(keyed.owner, keyed.idempotency.key);
      if (this.keyed.get(scope) === taskId) this.keyed.delete(scope);
    }
    return this.tasks.delete(taskId);
  }

  async readJournal(taskId: string): Promise<Map<string, Json>> {
    const entries = this.journals.get(taskId) ?? new Map<string, string>();
    return new Map([...entries].map(([key, text]) => [key, JSON.parse(text) as Json]));
  }

  async deleteJournal(taskId: string, keys: string[]): Promise<number> {
    const entries = this.journals.get(taskId);
    return entries ? keys.filter((key) => entries.delete(key)).length : 0;
  }

  async appendJournal(taskId: string, key: string, value: Json, fence?: Fence): Promise<boolean> {
    // Checked and written in one synchronous stretch: nothing can come between the check and the insert.
    const text = this.tasks.get(taskId);
    if (fence && !holdsFence(text === undefined ? undefined : (JSON.parse(text) as TaskRecord), fence)) return false;
    let entries = this.journals.get(taskId);
    if (!entries) this.journals.set(taskId, (entries = new Map()));
    if (entries.has(key)) return false;
    entries.set(key, JSON.stringify(value));
    return true;
  }

  async close(): Promise<void> {}
}
