/**
 * Notification delivery from the outbox. The alert service writes an outbox row (with its
 * delivery_id and the serialized body) in the same transaction as the transition that caused
 * it; this sender picks due rows, hands them to their channel and records each outcome on the
 * row and on the alert's timeline. Rows survive restarts: start() resumes every pending row
 * under its own delivery_id, so a crash between sending and recording can repeat a delivery
 * (receivers drop repeats by delivery_id) but never creates a second one for a notification.
 *
 * Order: for each (alert, channel) only the oldest pending row is in flight, so a receiver sees
 * firing before escalated before resolved even when an earlier delivery had to be retried.
 */
import type { Clock } from '../lib/clock.js';
import type { Logger } from '../lib/logger.js';
import type { Counter, MetricsRegistry } from '../lib/metrics.js';
import type { AlertStore, NotificationEvent, OutboxRow } from './alert-store.js';
import type { ContactConfig } from './config.js';
import { DueTimer } from './due-timer.js';

/** One notification as a channel sees it. */
export interface Notification {
  deliveryId: string;
  alertId: string;
  channelId: string;
  event: NotificationEvent;
  tier: number;
  /** The alert event body (contract: Notifications), serialized once; send these exact bytes. */
  body: string;
  /** The contacts this notification is for (empty for a webhook without `to`). */
  recipients: ContactConfig[];
  /** 1 for the first attempt. */
  attempt: number;
}

export type DeliveryOutcome =
  | { outcome: 'delivered'; statusCode?: number }
  /** Worth trying again later; retryAfterMs overrides the backoff (HTTP Retry-After). */
  | { outcome: 'retry'; error: string; statusCode?: number; retryAfterMs?: number }
  | { outcome: 'failed'; error: string; statusCode?: number };

/** A notification channel. Only webhook exists now; sms, wecom, dingtalk, feishu and email implement the same. */
export interface Channel {
  readonly id: string;
  readonly type: string;
  /** Attempts before a retryable failure becomes permanent. */
  readonly maxAttempts: number;
  /** Sends one notification. Never throws for delivery problems: they are outcomes. */
  send(notification: Notification, signal: AbortSignal): Promise<DeliveryOutcome>;
}

export interface RetryOptions {
  /** Delay after the first failed attempt; doubles with every further attempt. */
  baseDelayMs: number;
  maxDelayMs: number;
  /** Fraction of the delay that is random (0 = none, 1 = anywhere between 0 and the delay). */
  jitter: number;
  /** Upper bound for a receiver's Retry-After. */
  maxRetryAfterMs: number;
}

export const DEFAULT_RETRY_OPTIONS: RetryOptions = {
  baseDelayMs: 1_000,
  maxDelayMs: 5 * 60_000,
  jitter: 0.5,
  maxRetryAfterMs: 60 * 60_000,
};

/** Delay before attempt `attempt + 1`, after `attempt` attempts failed. */
export function retryDelay(attempt: number, options: RetryOptions, random: () => number = Math.random, retryAfterMs?: number): number {
  if (retryAfterMs !== undefined) return Math.min(Math.max(0, retryAfterMs), options.maxRetryAfterMs);
  const exponential = Math.min(options.maxDelayMs, options.baseDelayMs * 2 ** Math.max(0, attempt - 1));
  return Math.round(exponential * (1 - options.jitter * random()));
}

export const DELIVERIES_METRIC = 'watchpost_deliveries_total';

export interface OutboxSenderOptions {
  store: AlertStore;
  clock: Clock;
  logger: Logger;
  metrics: MetricsRegistry;
  channels: ReadonlyMap<string, Channel>;
  contacts: ReadonlyMap<string, ContactConfig>;
  retry?: Partial<RetryOptions>;
  /** Deliveries in flight at once. */
  concurrency?: number;
  random?: () => number;
  /** Called after a delivery failed for good and that was recorded. */
  onFailed?: (row: OutboxRow, error: string) => void;
}

interface InFlight {
  controller: AbortController;
  done: Promise<void>;
}

export class OutboxSender {
  private readonly retry: RetryOptions;
  private readonly timer: DueTimer;
  private readonly deliveries: Counter;
  private readonly inFlight = new Map<string, InFlight>();
  private running = false;
  private kicked = false;

  constructor(private readonly options: OutboxSenderOptions) {
    this.retry = { ...DEFAULT_RETRY_OPTIONS, ...options.retry };
    this.timer = new DueTimer(options.clock, () => this.pump());
    this.deliveries = options.metrics.counter(DELIVERIES_METRIC, 'Notification delivery attempts by channel and outcome (delivered, retry, failed).');
  }

  /** Resumes every pending row. */
  start(): void {
    if (this.running) return;
    this.running = true;
    this.kick();
  }

  /** Stops sending; deliveries in flight are aborted and stay pending for the next start. */
  async stop(): Promise<void> {
    this.running = false;
    this.timer.clear();
    const inFlight = [...this.inFlight.values()];
    for (const f of inFlight) f.controller.abort(new Error('the alert stage is stopping'));
    await Promise.allSettled(inFlight.map((f) => f.done));
  }

  /** New rows were written: look for due rows once the current task (and its commit) is done. */
  kick(): void {
    if (!this.running || this.kicked) return;
    this.kicked = true;
    queueMicrotask(() => {
      this.kicked = false;
      this.pump();
    });
  }

  private pump(): void {
    if (!this.running) return;
    const { store, clock, logger } = this.options;
    let nextAt: number | undefined;
    try {
      const now = clock.now();
      const concurrency = this.options.concurrency ?? 8;
      for (const row of store.pendingOutboxHeads()) {
        if (this.inFlight.has(row.deliveryId)) continue;
        if (row.nextAttemptAt > now) {
          nextAt = nextAt === undefined ? row.nextAttemptAt : Math.min(nextAt, row.nextAttemptAt);
          continue;
        }
        // At the limit, a finishing delivery pumps again.
        if (this.inFlight.size >= concurrency) continue;
        this.dispatch(row);
      }
    } catch (error) {
      logger.error({ err: error }, 'reading the notification outbox failed');
      nextAt = clock.now() + this.retry.baseDelayMs;
    }
    this.timer.arm(nextAt);
  }

  private dispatch(row: OutboxRow): void {
    const { channels, contacts, logger } = this.options;
    const channel = channels.get(row.channelId);
    const attempt = row.attempts + 1;
    if (!channel) {
      this.record(row, attempt, { outcome: 'failed', error: `channel "${row.channelId}" is not configured` }, 1);
      return;
    }
    const recipients: ContactConfig[] = [];
    for (const id of row.recipients) {
      const contact = contacts.get(id);
      if (contact) recipients.push(contact);
      else logger.warn({ channel: row.channelId, contact: id, delivery_id: row.deliveryId }, 'notification names an unknown contact; skipping that contact');
    }
    const controller = new AbortController();
    const notification: Notification = {
      deliveryId: row.deliveryId,
      alertId: row.alertId,
      channelId: row.channelId,
      event: row.event,
      tier: row.tier,
      body: row.body,
      recipients,
      attempt,
    };
    const done = channel
      .send(notification, controller.signal)
      .catch((error: unknown): DeliveryOutcome => ({ outcome: 'retry', error: error instanceof Error ? error.message : String(error) }))
      .then((outcome) => {
        this.inFlight.delete(row.deliveryId);
        // Stopping: leave the row pending; the next start sends it again under the same delivery_id.
        if (controller.signal.aborted || !this.running) return;
        this.record(row, attempt, outcome, channel.maxAttempts);
        this.pump();
      });
    this.inFlight.set(row.deliveryId, { controller, done });
  }

  private record(row: OutboxRow, attempt: number, outcome: DeliveryOutcome, maxAttempts: number): void {
    const { store, clock, logger } = this.options;
    const now = clock.now();
    let status: OutboxRow['status'];
    let nextAttemptAt = row.nextAttemptAt;
    let error: string | null = null;
    let metricOutcome: 'delivered' | 'retry' | 'failed';
    let type: 'delivered' | 'retry' | 'delivery_failed';
    if (outcome.outcome === 'delivered') {
      status = 'delivered';
      metricOutcome = type = 'delivered';
    } else if (outcome.outcome === 'retry' && attempt < maxAttempts) {
      status = 'pending';
      metricOutcome = type = 'retry';
      error = outcome.error;
      nextAttemptAt = now + retryDelay(attempt, this.retry, this.options.random, outcome.retryAfterMs);
    } else {
      status = 'failed';
      metricOutcome = 'failed';
      type = 'delivery_failed';
      error = outcome.outcome === 'retry' ? `${outcome.error} (gave up after ${attempt} attempts)` : outcome.error;
    }
    const detail: Record<string, unknown> = { event: row.event, attempt };
    if (outcome.statusCode !== undefined) detail.status_code = outcome.statusCode;
    if (error !== null) detail.error = error;
    if (status === 'pending') detail.next_attempt_at = new Date(nextAttemptAt).toISOString();
    try {
      store.transaction(() => {
        store.updateOutbox(row.deliveryId, { status, attempts: attempt, nextAttemptAt, updatedAt: now, lastError: error });
        store.appendTimeline({
          alertId: row.alertId,
          at: now,
          kind: 'delivery',
          type,
          level: null,
          state: null,
          tier: row.tier,
          channel: row.channelId,
          deliveryId: row.deliveryId,
          detail,
        });
      });
    } catch (err) {
      // Not recorded: the row stays pending and is sent again under the same delivery_id.
      logger.error({ err, delivery_id: row.deliveryId }, 'recording a delivery outcome failed');
      return;
    }
    this.deliveries.inc({ channel: row.channelId, outcome: metricOutcome });
    const fields = { alert_id: row.alertId, channel: row.channelId, delivery_id: row.deliveryId, event: row.event, attempt, status_code: outcome.statusCode };
    if (type === 'delivered') logger.info(fields, 'notification delivered');
    else if (type === 'retry') logger.warn({ ...fields, error, next_attempt_at: nextAttemptAt }, 'notification delivery failed; will retry');
    else {
      logger.error({ ...fields, error }, 'notification delivery failed for good');
      this.options.onFailed?.({ ...row, status, attempts: attempt, updatedAt: now, lastError: error }, error ?? 'failed');
    }
  }
}
