import type { Json } from '../core/json.js';
import { isExpired } from '../core/policy.js';
import type { TaskRecord } from '../core/task.js';
import type { ListQuery, StoreBackend } from './backend.js';

const comparePosition = (a: { createdAt: string; taskId: string }, b: { createdAt: string; taskId: string }) =>
  a.createdAt < b.createdAt ? -1 : a.createdAt > b.createdAt ? 1 : a.taskId < b.taskId ? -1 : a.taskId > b.taskId ? 1 : 0;

/**
 * In-process backend (`memory:`). Nothing survives the process; for tests and ephemeral servers.
 * Records are held as JSON text so callers can never alias stored state.
 */
export class MemoryBackend implements StoreBackend {
  readonly exclusive = true;
  private readonly tasks = new Map<string, string>();
  private readonly journals = new Map<string, Map<string, string>>();

  async insert(task: TaskRecord): Promise<void> {
    if (this.tasks.has(task.taskId)) throw new Error(`duplicate taskId ${task.taskId}`);
    this.tasks.set(task.taskId, JSON.stringify(task));
  }

  async get(taskId: string): Promise<TaskRecord | undefined> {
    const text = this.tasks.get(taskId);
    return text === undefined ? undefined : (JSON.parse(text) as TaskRecord);
  }

  async replace(task: TaskRecord, expectedVersion: number): Promise<boolean> {
    const text = this.tasks.get(task.taskId);
    if (text === undefined || (JSON.parse(text) as TaskRecord).version !== expectedVersion) return false;
    this.tasks.set(task.taskId, JSON.stringify(task));
    return true;
  }

  async list(query: ListQuery): Promise<TaskRecord[]> {
    const out: TaskRecord[] = [];
    for (const text of this.tasks.values()) {
      const task = JSON.parse(text) as TaskRecord;
      if (task.owner !== query.owner) continue;
      if (query.after && comparePosition(task, query.after) <= 0) continue;
      out.push(task);
    }
    return out.sort(comparePosition).slice(0, query.limit);
  }

  async listUnfinished(): Promise<TaskRecord[]> {
    return [...this.tasks.values()]
      .map((text) => JSON.parse(text) as TaskRecord)
      .filter((task) => task.status === 'working' || task.status === 'input_required')
      .sort(comparePosition);
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
    return this.tasks.delete(taskId);
  }

  async readJournal(taskId: string): Promise<Map<string, Json>> {
    const entries = this.journals.get(taskId) ?? new Map<string, string>();
    return new Map([...entries].map(([key, text]) => [key, JSON.parse(text) as Json]));
  }

  async appendJournal(taskId: string, key: string, value: Json): Promise<boolean> {
    let entries = this.journals.get(taskId);
    if (!entries) this.journals.set(taskId, (entries = new Map()));
    if (entries.has(key)) return false;
    entries.set(key, JSON.stringify(value));
    return true;
  }

  async close(): Promise<void> {}
}
