import { metrics, type Attributes, type Counter, type MeterProvider, type ObservableResult } from '@opentelemetry/api';
import { errorChain, StoreUnavailableError } from '../core/errors.js';
import type { Json } from '../core/json.js';
import type { Logger } from '../core/log.js';
import type { Fence, TaskRecord } from '../core/task.js';
import { isTransientError } from '../core/transient.js';
import type { ListQuery, OperatorListPage, OperatorListQuery, StatusCounts, StoreBackend } from './backend.js';
import type { OutboxDelivery } from './outbox.js';

/**
 * Whether a backend's error means the store cannot be used for now (an outage), rather than a
 * refusal of this one call (a duplicate key, a bad value): every transient error
 * (`isTransientError`: refused or reset connections, timeouts, SQLite busy, PostgreSQL connection
 * and shutdown SQLSTATEs, Redis loading/busy replies and closed connections), plus a full, failing
 * or read-only disk (`ENOSPC`, `EIO`, `EROFS`, `SQLITE_FULL`, `SQLITE_IOERR*`, `SQLITE_READONLY*`,
 * `SQLITE_CANTOPEN`), PostgreSQL out of resources or failing (classes 53 and 58), read-only after a
 * failover (`25006`) or its database gone (`57P04`, `57P05`), Redis out of memory or read-only, and
 * node-postgres's own words for a lost or unobtainable connection.
 */
export function isStoreOutage(error: unknown): boolean {
  if (error instanceof StoreUnavailableError || isTransientError(error)) return true;
  for (const e of errorChain(error)) {
    const code = typeof e.code === 'string' ? e.code : '';
    if (OUTAGE_CODES.has(code) || code.startsWith('SQLITE_IOERR') || code.startsWith('SQLITE_READONLY') || code.startsWith('SQLITE_CANTOPEN')) return true;
    if (/^(53|58)[0-9A-Z]{3}$/.test(code)) return true; // PostgreSQL: insufficient resources, system error
    if (typeof e.message === 'string' && OUTAGE_MESSAGES.test(e.message)) return true;
  }
  return false;
}

/** Codes of a store that cannot take writes (or any call) for now: disk, read-only after a failover, a database going away. */
const OUTAGE_CODES = new Set(['ENOSPC', 'EIO', 'EROFS', 'SQLITE_FULL', '25006', '57P04', '57P05']);

const OUTAGE_MESSAGES =
  /timeout exceeded when trying to connect|Connection terminated|Query read timeout|is not queryable|Client was closed|Cannot use a pool after calling end|OOM command not allowed|^READONLY /;

/** What a call does to the store: reads and writes fail and recover separately (a full disk still reads). */
type CallKind = 'read' | 'write';

/**
 * The availability of one task store as this process sees it, from the outcome of every backend
 * call (see `GuardedBackend`): an outage starts with the first call failing with an outage error
 * (`isStoreOutage`) and ends when every kind of call that failed (reads, writes) has succeeded
 * again. Each outage is logged twice — `task store unavailable` at error level when it starts (the
 * store's name, the cause's message and code), `task store available again` at warn level when it
 * ends (with `downMs`) — never once per failed call. Metrics (OpenTelemetry, when an SDK is
 * installed): the gauge `mcp_tasks.store.available` (1 or 0, attribute `mcp_tasks.store`) and the
 * counter `mcp_tasks.store.outages`.
 */
export class StoreHealth {
  private readonly down = new Map<CallKind, { since: number }>();
  private outageStart?: number;
  /** Outages seen by this process so far. */
  outages = 0;

  constructor(
    /** How logs and metrics name the store (`StoreBackend.describe`). */
    readonly name: string,
    private readonly log: Logger,
    /** The `retryAfterMs` of the `StoreUnavailableError`s it raises. */
    readonly retryAfterMs = 1000,
  ) {
    healthSources.add(this);
  }

  /** False during an outage. */
  get available(): boolean {
    return this.outageStart === undefined;
  }

  /** When the current outage started (ms since the epoch, local clock), if one is under way. */
  get unavailableSince(): number | undefined {
    return this.outageStart;
  }

  /**
   * Runs one backend call of `kind`. An outage error becomes a `StoreUnavailableError` (its `cause`
   * the driver's error; the message says only that the store is unavailable, so nothing about the
   * deployment reaches requestors); any other error passes through unchanged.
   */
  run<T>(kind: CallKind, call: () => Promise<T>): Promise<T> {
    // A synchronous throw of `call` becomes a rejection (the executor runs at once).
    const pending = new Promise<T>((resolve) => resolve(call()));
    // Plain callbacks rather than an async function: this wraps every store call.
    return pending.then(
      (value) => {
        if (this.down.size > 0) this.succeeded(kind);
        return value;
      },
      (error: unknown) => {
        if (!isStoreOutage(error)) throw error;
        this.failed(kind, error);
        if (error instanceof StoreUnavailableError) throw error;
        throw new StoreUnavailableError('The task store is temporarily unavailable; retry later', this.retryAfterMs, { cause: error });
      },
    );
  }

  /** Stops reporting this store's availability (the store closed). */
  close(): void {
    healthSources.delete(this);
  }

  private failed(kind: CallKind, error: unknown): void {
    if (!this.down.has(kind)) this.down.set(kind, { since: Date.now() });
    if (this.outageStart !== undefined) return;
    this.outageStart = Date.now();
    this.outages++;
    outageCounter()?.add(1, { [STORE_ATTR]: this.name });
    const cause = innermost(error);
    this.log.error(
      { store: this.name, calls: kind, cause: cause.message, ...(cause.code !== undefined && { code: cause.code }) },
      `task store unavailable: ${cause.message}; requests are answered as retryable (503) and task runs resume when it is back`,
    );
  }

  private succeeded(kind: CallKind): void {
    if (!this.down.delete(kind) || this.down.size > 0 || this.outageStart === undefined) return;
    const downMs = Date.now() - this.outageStart;
    this.outageStart = undefined;
    this.log.warn({ store: this.name, downMs }, `task store available again after ${(downMs / 1000).toFixed(1)} s`);
  }
}

/** The deepest message (and its code) of an error's `cause` chain: the driver's own words. */
function innermost(error: unknown): { message: string; code?: string } {
  let found: { message: string; code?: string } = { message: String(error) };
  for (const e of errorChain(error))
    if (typeof e.message === 'string' && e.message.length > 0) found = { message: e.message, ...(typeof e.code === 'string' && { code: e.code }) };
  return found;
}

const STORE_ATTR = 'mcp_tasks.store';
const healthSources = new Set<StoreHealth>();
const clockSources = new Set<{ name: string; offsetMs: () => number | undefined }>();
let meters: { provider: MeterProvider; outages: Counter<Attributes> } | undefined;

/** The outage counter of the current meter provider (instruments are made once per provider). */
function outageCounter(): Counter<Attributes> | undefined {
  const provider = metrics.getMeterProvider();
  if (meters?.provider === provider) return meters.outages;
  const meter = provider.getMeter('mcp-tasks');
  meter
    .createObservableGauge('mcp_tasks.store.available', { description: 'Whether the task store answers (1) or is in an outage (0)', unit: '1' })
    .addCallback((result: ObservableResult) => {
      for (const health of healthSources) result.observe(health.available ? 1 : 0, { [STORE_ATTR]: health.name });
    });
  meter
    .createObservableGauge('mcp_tasks.clock.offset', {
      description: "The store's clock minus this instance's, as last measured (ms); beyond maxClockSkewMs the instance takes no leases",
      unit: 'ms',
    })
    .addCallback((result: ObservableResult) => {
      for (const clock of clockSources) {
        const offset = clock.offsetMs();
        if (offset !== undefined) result.observe(offset, { [STORE_ATTR]: clock.name });
      }
    });
  meters = { provider, outages: meter.createCounter('mcp_tasks.store.outages', { description: 'Task store outages seen by this process', unit: '{outage}' }) };
  return meters.outages;
}

/**
 * Adds a store clock to the gauge `mcp_tasks.clock.offset` (its last measured offset, ms). Returns
 * the function removing it.
 */
export function registerClockSource(source: { name: string; offsetMs: () => number | undefined }): () => void {
  clockSources.add(source);
  outageCounter(); // the gauges exist once a provider is installed
  return () => clockSources.delete(source);
}

/**
 * A `StoreBackend` whose every call passes through a `StoreHealth` (`run`): outage errors become
 * `StoreUnavailableError`s and are counted once per outage. Everything else is the wrapped
 * backend's. `TaskStore` wraps the backend it is given in one of these.
 */
export class GuardedBackend implements StoreBackend {
  readonly exclusive: boolean;
  readonly countUnfinished?: (owner: string | null) => Promise<number>;
  readonly versionsOf?: (taskIds: string[]) => Promise<Map<string, number>>;
  readonly getAt?: (taskId: string) => Promise<{ task: TaskRecord | undefined; nowMs: number }>;
  readonly clock?: () => Promise<number>;
  readonly watch?: StoreBackend['watch'];
  readonly enqueueDeliveries?: StoreBackend['enqueueDeliveries'];
  readonly claimDeliveries?: StoreBackend['claimDeliveries'];
  readonly settleDelivery?: StoreBackend['settleDelivery'];
  readonly listDeliveries?: StoreBackend['listDeliveries'];
  readonly nextDeliveryAt?: StoreBackend['nextDeliveryAt'];

  constructor(
    readonly inner: StoreBackend,
    readonly health: StoreHealth,
  ) {
    this.exclusive = inner.exclusive;
    const read = <A extends unknown[], R>(f: ((...args: A) => Promise<R>) | undefined) => f && ((...args: A) => health.run('read', () => f.apply(inner, args)));
    this.countUnfinished = read(inner.countUnfinished);
    this.versionsOf = read(inner.versionsOf);
    this.getAt = read(inner.getAt);
    this.clock = read(inner.clock);
    this.watch = inner.watch?.bind(inner);
    const write = <A extends unknown[], R>(f: ((...args: A) => Promise<R>) | undefined) =>
      f && ((...args: A) => health.run('write', () => f.apply(inner, args)));
    this.enqueueDeliveries = write(inner.enqueueDeliveries);
    this.claimDeliveries = write(inner.claimDeliveries);
    this.settleDelivery = write(inner.settleDelivery);
    this.listDeliveries = read(inner.listDeliveries);
    this.nextDeliveryAt = read(inner.nextDeliveryAt);
  }

  describe(): string {
    return this.health.name;
  }
  insert(task: TaskRecord): Promise<TaskRecord | undefined> {
    return this.health.run('write', () => this.inner.insert(task));
  }
  findByIdempotency(scope: string, nowMs: number): Promise<TaskRecord | undefined> {
    return this.health.run('read', () => this.inner.findByIdempotency(scope, nowMs));
  }
  get(taskId: string): Promise<TaskRecord | undefined> {
    return this.health.run('read', () => this.inner.get(taskId));
  }
  replace(task: TaskRecord, expectedVersion: number, deliveries?: OutboxDelivery[]): Promise<boolean> {
    return this.health.run('write', () => this.inner.replace(task, expectedVersion, deliveries));
  }
  list(query: ListQuery): Promise<TaskRecord[]> {
    return this.health.run('read', () => this.inner.list(query));
  }
  listAll(query: OperatorListQuery): Promise<OperatorListPage> {
    return this.health.run('read', () => this.inner.listAll(query));
  }
  countByStatus(nowMs: number): Promise<StatusCounts> {
    return this.health.run('read', () => this.inner.countByStatus(nowMs));
  }
  listUnfinished(): Promise<TaskRecord[]> {
    return this.health.run('read', () => this.inner.listUnfinished());
  }
  purgeExpired(nowMs: number, limit: number): Promise<number> {
    return this.health.run('write', () => this.inner.purgeExpired(nowMs, limit));
  }
  delete(taskId: string): Promise<boolean> {
    return this.health.run('write', () => this.inner.delete(taskId));
  }
  readJournal(taskId: string): Promise<Map<string, Json>> {
    return this.health.run('read', () => this.inner.readJournal(taskId));
  }
  deleteJournal(taskId: string, keys: string[]): Promise<number> {
    return this.health.run('write', () => this.inner.deleteJournal(taskId, keys));
  }
  appendJournal(taskId: string, key: string, value: Json, fence?: Fence): Promise<boolean> {
    return this.health.run('write', () => this.inner.appendJournal(taskId, key, value, fence));
  }
  close(): Promise<void> {
    this.health.close();
    return this.inner.close();
  }
}
