import { request as httpRequest, type IncomingMessage } from 'node:http';
import { request as httpsRequest } from 'node:https';
import { Webhook } from 'standardwebhooks';
import { InvalidArgumentError } from '../../core/errors.js';
import type { Logger } from '../../core/log.js';
import { WEBHOOK_EVENT_TYPES, type DeliverySettlement, type OutboxDelivery, type WebhookEventType, type WebhookRoute } from '../../store/outbox.js';
import type { TaskStore } from '../../store/task-store.js';
import { checkResolved, checkWebhookUrl, guardedLookup } from './ssrf.js';

/** One webhook endpoint a server sends events to. */
export interface WebhookEndpoint {
  /** Stable name of the endpoint (1–64 of `A–Z a–z 0–9 _ . -`): stored with each delivery, shown in the console. */
  id: string;
  /** Where events are POSTed: `https:` (or `http:` to loopback with `allowPrivateAddresses`); see the SSRF rules in docs/webhooks.md. */
  url: string;
  /**
   * The signing secret, Standard Webhooks form: `whsec_` + base64 of 24–64 random bytes (the
   * receiver verifies with the same string). Never logged.
   */
  secret: string;
  /** Event types it receives; default all (`WEBHOOK_EVENT_TYPES`). */
  events?: WebhookEventType[];
  /**
   * Only tasks of this principal (with authentication on). Omitted: every task, whoever owns it —
   * an operator's endpoint.
   */
  principal?: string;
}

/** Retry policy of a delivery (all ms). */
export interface WebhookRetryPolicy {
  /** Delay before the second attempt (default 5000); doubles per attempt, with ±25 % jitter. */
  initialDelayMs?: number;
  /** Longest delay between attempts (default 3 600 000, 1 h); a longer `Retry-After` is cut to it. */
  maxDelayMs?: number;
  /** A delivery is given up (state `failed`) when its next attempt would come later than this after the event (default 86 400 000, 24 h). */
  giveUpAfterMs?: number;
}

/** `createTaskServer({ webhooks })`: where events go and how they are sent. */
export interface WebhooksOptions {
  endpoints: WebhookEndpoint[];
  /**
   * Allow endpoints on private networks, loopback and carrier-grade NAT (never link-local such as
   * 169.254.169.254, multicast or reserved ranges), and `http:` URLs to loopback. Default false:
   * public unicast addresses over `https:` only.
   */
  allowPrivateAddresses?: boolean;
  /**
   * Whether this instance sends deliveries (default true). Instances that only create tasks (a
   * serverless front) may set false: their events are still enqueued, and other instances send them.
   */
  dispatch?: boolean;
  /** One attempt's time limit, connect to last byte, ms (default 10 000). */
  timeoutMs?: number;
  retry?: WebhookRetryPolicy;
  /** How long a sender's claim on a delivery lasts, ms (default 60 000); after it another instance may send it. */
  claimMs?: number;
  /** Deliveries claimed per round (default 20), sent concurrently. */
  batchSize?: number;
  /**
   * Longest sleep between looks at the outbox when nothing is due (ms, default 30 000): how soon
   * this instance notices deliveries another instance enqueued and did not send (it crashed, or
   * does not dispatch). Its own events wake it at once.
   */
  idleCheckMs?: number;
}

const ENDPOINT_ID = /^[A-Za-z0-9_.-]{1,64}$/;

/**
 * Checks `options` (ids unique and well-formed, URLs by `checkWebhookUrl`, secrets accepted by the
 * `standardwebhooks` library, known event types) and returns the store's routes. Throws
 * `InvalidArgumentError` (`WebhookUrlRefusedError` for a URL).
 */
export function webhookRoutes(options: WebhooksOptions): WebhookRoute[] {
  if (!Array.isArray(options?.endpoints)) throw new InvalidArgumentError('webhooks.endpoints must be an array');
  const ids = new Set<string>();
  return options.endpoints.map((endpoint) => {
    if (typeof endpoint.id !== 'string' || !ENDPOINT_ID.test(endpoint.id))
      throw new InvalidArgumentError(`webhook endpoint id ${JSON.stringify(endpoint.id)}: use 1–64 of A–Z a–z 0–9 _ . -`);
    if (ids.has(endpoint.id)) throw new InvalidArgumentError(`webhook endpoint id '${endpoint.id}' is used twice`);
    ids.add(endpoint.id);
    checkWebhookUrl(endpoint.url, options.allowPrivateAddresses === true);
    try {
      new Webhook(endpoint.secret);
    } catch (error) {
      throw new InvalidArgumentError(
        `webhook endpoint '${endpoint.id}': the secret is not a Standard Webhooks secret (whsec_ + base64): ${(error as Error).message}`,
      );
    }
    for (const type of endpoint.events ?? [])
      if (!WEBHOOK_EVENT_TYPES.includes(type)) throw new InvalidArgumentError(`webhook endpoint '${endpoint.id}': unknown event type '${type}'`);
    return {
      id: endpoint.id,
      ...(endpoint.events && { events: [...endpoint.events] }),
      ...(endpoint.principal !== undefined && { principal: endpoint.principal }),
    };
  });
}

/** The outcome of one HTTP attempt. */
interface Attempt {
  /** HTTP status, absent on a network error or timeout. */
  status?: number;
  /** `Retry-After` in ms, when the response had one. */
  retryAfterMs?: number;
  error?: string;
}

/**
 * Sends the outbox's deliveries: claims due ones (a lease per delivery, so two instances never send
 * one at once and a crashed sender's claim expires), POSTs each signed per Standard Webhooks
 * (`webhook-id` = the delivery id, the same on every attempt; `webhook-timestamp`;
 * `webhook-signature` v1 HMAC-SHA256, by the `standardwebhooks` library), and records the outcome:
 * 2xx delivered; network errors, timeouts, 408, 429 and 5xx retried with exponential backoff and
 * jitter (`Retry-After` honored up to `maxDelayMs`) until `giveUpAfterMs` after the event; any other
 * status (redirects are not followed) failed at once. Woken by this store's enqueues and a timer for
 * the next due delivery (at most `idleCheckMs` away); no polling loop. Never touches a task's writes.
 */
export class WebhookDispatcher {
  private readonly endpoints = new Map<string, { url: URL; webhook: Webhook }>();
  private readonly allowPrivate: boolean;
  private readonly timeoutMs: number;
  private readonly claimMs: number;
  private readonly batchSize: number;
  private readonly idleCheckMs: number;
  private readonly retry: Required<WebhookRetryPolicy>;
  private timer?: NodeJS.Timeout;
  private running?: Promise<void>;
  private again = false;
  private closed = false;
  private unsubscribe?: () => void;

  constructor(
    private readonly store: TaskStore,
    options: WebhooksOptions,
    private readonly holder: string,
    private readonly log: Logger,
  ) {
    this.allowPrivate = options.allowPrivateAddresses === true;
    for (const endpoint of options.endpoints)
      this.endpoints.set(endpoint.id, { url: checkWebhookUrl(endpoint.url, this.allowPrivate), webhook: new Webhook(endpoint.secret) });
    this.timeoutMs = positive(options.timeoutMs, 10_000);
    this.claimMs = Math.max(positive(options.claimMs, 60_000), this.timeoutMs * 2);
    this.batchSize = Math.floor(positive(options.batchSize, 20));
    this.idleCheckMs = positive(options.idleCheckMs, 30_000);
    this.retry = {
      initialDelayMs: positive(options.retry?.initialDelayMs, 5000),
      maxDelayMs: positive(options.retry?.maxDelayMs, 3_600_000),
      giveUpAfterMs: positive(options.retry?.giveUpAfterMs, 86_400_000),
    };
  }

  /**
   * Checks every endpoint's host by DNS (a name that resolves to a refused address stops the start;
   * one that does not resolve now is logged and retried at send time), then starts sending.
   */
  async start(): Promise<void> {
    if (this.unsubscribe) return; // started already (a server start retried after a later step failed)
    for (const [id, { url }] of this.endpoints) {
      await checkResolved(url, this.allowPrivate).catch((error: NodeJS.ErrnoException) => {
        if (error.name === 'WebhookUrlRefusedError') throw error;
        this.log.warn({ endpoint: id, host: url.hostname, cause: error.message }, 'webhook endpoint does not resolve now; deliveries to it wait and retry');
      });
    }
    this.unsubscribe = this.store.onDeliveries(() => this.wake());
    this.wake();
  }

  /** Stops the timer and waits for the round under way (its claims expire if it cannot settle them). */
  async close(): Promise<void> {
    this.closed = true;
    this.unsubscribe?.();
    if (this.timer) clearTimeout(this.timer);
    await this.running;
  }

  /** Runs a round now, or right after the one under way. */
  private wake(): void {
    if (this.closed) return;
    if (this.running) {
      this.again = true;
      return;
    }
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    this.running = this.round().finally(() => {
      this.running = undefined;
      if (this.again) {
        this.again = false;
        this.wake();
      }
    });
  }

  /** Claims and sends batches until none is due, then sleeps until the next due delivery (at most `idleCheckMs`). */
  private async round(): Promise<void> {
    let sleepMs = this.idleCheckMs;
    try {
      for (;;) {
        const claimed = await this.store.claimDeliveries(this.holder, this.claimMs, this.batchSize);
        await Promise.all(claimed.map((delivery) => this.deliver(delivery)));
        if (claimed.length < this.batchSize || this.closed) break;
      }
      const next = await this.store.nextDeliveryAt();
      if (next !== undefined) sleepMs = Math.min(sleepMs, Math.max(0, next - this.store.now()));
    } catch (error) {
      this.log.warn({ err: error }, 'webhook outbox unavailable; trying again later');
    }
    if (this.closed) return;
    this.timer = setTimeout(() => this.wake(), Math.max(sleepMs, 10));
    this.timer.unref();
  }

  /** One attempt of one claimed delivery, and its bookkeeping. */
  private async deliver(delivery: OutboxDelivery): Promise<void> {
    const endpoint = this.endpoints.get(delivery.endpointId);
    const attempt: Attempt = endpoint ? await this.send(endpoint, delivery) : { error: `endpoint '${delivery.endpointId}' is not configured here` };
    const settlement = this.settlementOf(delivery, attempt, endpoint !== undefined);
    const fields = {
      deliveryId: delivery.deliveryId,
      endpoint: delivery.endpointId,
      taskId: delivery.taskId,
      event: delivery.type,
      attempt: delivery.attempts,
    };
    if (settlement.state === 'delivered') this.log.debug(fields, 'webhook delivered');
    else if (settlement.state === 'failed') this.log.warn({ ...fields, cause: settlement.lastError }, 'webhook delivery failed for good');
    else
      this.log.info(
        { ...fields, cause: settlement.lastError, nextAttemptAt: new Date(settlement.nextAttemptAt).toISOString() },
        'webhook delivery will be retried',
      );
    try {
      if (!(await this.store.settleDelivery(delivery.deliveryId, delivery.claim!, settlement)))
        this.log.info(fields, 'webhook delivery claim expired before its outcome was recorded');
    } catch (error) {
      this.log.warn({ ...fields, err: error }, 'webhook outcome not recorded (store unavailable); the delivery will be sent again');
    }
  }

  /** What an attempt means for the delivery (see the class doc). */
  private settlementOf(delivery: OutboxDelivery, attempt: Attempt, known: boolean): DeliverySettlement {
    const { status } = attempt;
    if (status !== undefined && status >= 200 && status < 300) return { state: 'delivered' };
    const lastError = attempt.error ?? `HTTP ${status}`;
    const retryable = known && (status === undefined || status === 408 || status === 429 || status >= 500);
    if (!retryable) return { state: 'failed', lastError };
    const backoff = Math.min(this.retry.maxDelayMs, this.retry.initialDelayMs * 2 ** Math.min(30, delivery.attempts - 1));
    const delay = Math.min(this.retry.maxDelayMs, attempt.retryAfterMs ?? backoff * (0.75 + Math.random() / 2));
    const nextAttemptAt = this.store.now() + delay;
    if (nextAttemptAt > delivery.createdAt + this.retry.giveUpAfterMs)
      return { state: 'failed', lastError: `gave up after ${delivery.attempts} attempts: ${lastError}` };
    return { state: 'pending', nextAttemptAt, lastError };
  }

  /** POSTs the delivery's payload, signed; never follows a redirect; connects only to addresses the SSRF guard passed. */
  private async send(endpoint: { url: URL; webhook: Webhook }, delivery: OutboxDelivery): Promise<Attempt> {
    const body = JSON.stringify(delivery.payload);
    const at = new Date();
    const headers = {
      'content-type': 'application/json',
      'user-agent': 'mcp-tasks-webhooks',
      'webhook-id': delivery.deliveryId,
      'webhook-timestamp': String(Math.floor(at.getTime() / 1000)),
      'webhook-signature': endpoint.webhook.sign(delivery.deliveryId, at, body),
    };
    const { url } = endpoint;
    try {
      checkWebhookUrl(url.href, this.allowPrivate); // IP literals (names are checked by the lookup, at connect)
    } catch (error) {
      return { error: (error as Error).message };
    }
    const request = url.protocol === 'https:' ? httpsRequest : httpRequest;
    return new Promise<Attempt>((resolve) => {
      const req = request(
        url,
        { method: 'POST', headers, timeout: this.timeoutMs, lookup: guardedLookup(this.allowPrivate, url.protocol === 'http:') as never },
        (res: IncomingMessage) => {
          res.resume(); // the body is not read: only the status counts
          res.on('end', () => resolve({ status: res.statusCode, ...retryAfter(res.headers['retry-after']) }));
          res.on('error', (error) => resolve({ error: error.message }));
        },
      );
      const deadline = setTimeout(() => req.destroy(new Error(`no answer within ${this.timeoutMs} ms`)), this.timeoutMs);
      req.on('close', () => clearTimeout(deadline));
      req.on('timeout', () => req.destroy(new Error(`no answer within ${this.timeoutMs} ms`)));
      req.on('error', (error: NodeJS.ErrnoException) => resolve({ error: `${error.message}${error.code ? ` (${error.code})` : ''}` }));
      req.end(body);
    });
  }
}

/** `Retry-After` (delay-seconds or an HTTP date) as `{ retryAfterMs }`, or {} when absent or unreadable. */
function retryAfter(value: string | undefined): { retryAfterMs?: number } {
  if (value === undefined) return {};
  const seconds = Number(value);
  if (Number.isFinite(seconds) && seconds >= 0) return { retryAfterMs: seconds * 1000 };
  const date = Date.parse(value);
  return Number.isNaN(date) ? {} : { retryAfterMs: Math.max(0, date - Date.now()) };
}

function positive(value: number | undefined, fallback: number): number {
  return typeof value === 'number' && Number.isFinite(value) && value > 0 ? value : fallback;
}
