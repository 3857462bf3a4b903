/**
 * Notification delivery from the outbox. The alert service writes an outbox row (with its
 * delivery_id and the serialized body) in the same transaction as the transition that caused
 * it; this sender picks due rows, hands them to their channel and records each outcome on the
 * row and on the alert's timeline. Rows survive restarts: start() resumes every pending row
 * under its own delivery_id, so a crash between sending and recording can repeat a delivery
 * (receivers drop repeats by delivery_id) but never creates a second one for a notification.
 *
 * Order: for each (alert, channel, recipients) only the oldest pending row is in flight, so a
 * receiver sees firing before escalated before resolved even when an earlier one was retried.
 * Pending rows are indexed in memory (outbox-queue.ts): read once at start, then only new ones,
 * so the work of a pump is proportional to what it sends, also while a channel is down.
 *
 * In a cluster (`cluster` option) only the leader sends, and the store is shared: rows come from
 * every instance, and before each attempt the sender claims the row (or digest) in the store for
 * `claimTtlMs`, so two instances that both believe they lead never send one at the same time.
 * The index then re-reads every pending row at each look (see refresh()).
 *
 * Retries: network errors, timeouts, 408, 429 and 5xx (and providers' "busy" answers) are
 * retried with exponential backoff and jitter, honouring Retry-After, until the notification is
 * `max_age` old (or `max_attempts` were made); then it fails for good, like any other 4xx.
 *
 * Rate limits: a channel with `rate_limit` sends at most that many messages per window (per
 * channel for robots, per recipient for sms and e-mail). Notifications beyond it wait; when the
 * window has room for fewer than are waiting, the excess is merged into one digest message,
 * recorded (with its own delivery_id and its members) before it is sent, so a digest survives a
 * restart like any row and nothing is dropped or sent twice.
 * Slightly over 500 lines: the pump, its per-key ordering and the digest merge share the rows
 * in flight.
 */
import { randomUUID } from 'node:crypto';
import type { Clock } from '../lib/clock.js';
import type { Logger } from '../lib/logger.js';
import type { Counter, MetricsRegistry } from '../lib/metrics.js';
import type { AlertStore, DigestRow, NotificationEvent, OutboxRow } from './store.js';
import type { ContactConfig, RateLimit } from './config.js';
import { DueTimer } from './due-timer.js';
import { PendingOutbox, type PendingRow } from './outbox-queue.js';
import { RateLimiter } from './rate-limit.js';
import { DEFAULT_RETRY_OPTIONS, verdict, type RetryOptions, type Verdict } from './retry-policy.js';

export { DEFAULT_MAX_AGE_MS, DEFAULT_RETRY_OPTIONS, retryDelay, type RetryOptions } from './retry-policy.js';

/** One notification of an alert. */
export interface NotificationItem {
  deliveryId: string;
  alertId: string;
  event: NotificationEvent;
  tier: number;
  /** The alert event body (contract: Notifications), serialized once; send these exact bytes. */
  body: string;
}

/** One message as a channel sees it: a notification, or a digest of several. */
export interface Notification extends NotificationItem {
  channelId: string;
  /** The contacts this message is for (empty for a webhook without `to`). */
  recipients: ContactConfig[];
  /** 1 for the first attempt. */
  attempt: number;
  /**
   * Set for a digest: the merged notifications, oldest first. `deliveryId` is then the digest's
   * own; alertId, event, tier and body are those of the first item.
   */
  digest?: NotificationItem[];
}

export type DeliveryOutcome =
  | { outcome: 'delivered'; statusCode?: number }
  /**
   * Worth trying again later; retryAfterMs overrides the backoff (HTTP Retry-After), throttled
   * says the provider refused because of its rate limit (no sends to it until then).
   */
  | { outcome: 'retry'; error: string; statusCode?: number; retryAfterMs?: number; throttled?: boolean }
  | { outcome: 'failed'; error: string; statusCode?: number };

/** A notification channel: webhook, wecom, dingtalk, feishu, email, sms. */
export interface Channel {
  readonly id: string;
  readonly type: string;
  /** Attempts before a retryable failure becomes permanent (none: only maxAgeMs limits). */
  readonly maxAttempts?: number;
  /** Age after which a retryable failure becomes permanent (default 1h). */
  readonly maxAgeMs?: number;
  /** Send limits; beyond them notifications are merged into digests. */
  readonly rateLimits?: readonly RateLimit[];
  /** person: one notification per recipient, rate-limited per recipient (sms, e-mail). */
  readonly addressing?: 'group' | 'person';
  /** Sends one message. Never throws for delivery problems: they are outcomes. */
  send(notification: Notification, signal: AbortSignal): Promise<DeliveryOutcome>;
}

export const DELIVERIES_METRIC = 'watchpost_deliveries_total';
export const DIGESTS_METRIC = 'watchpost_digests_total';

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
  /** Called for every notification that failed for good, after that was recorded. */
  onFailed?: (row: OutboxRow, error: string) => void;
  /**
   * Before a row's first attempt: its recipients and body as of now (schedules resolved to who is
   * on call), stored before it is sent; undefined when nothing changes (recipients.ts).
   */
  resolve?: (row: OutboxRow, now: number) => { recipients: string[]; body: string } | undefined;
  /** Recipients of a digest as of now (schedules resolved). */
  resolveRecipients?: (ids: readonly string[], now: number) => string[];
  /** Set in a cluster: the owner name of claims, how long one lasts, how soon a refused one is tried again. */
  cluster?: { owner: string; claimTtlMs: number; retryMs: number };
}

interface InFlight {
  controller: AbortController;
  done: Promise<void>;
}

export class OutboxSender {
  private readonly retry: RetryOptions;
  private readonly timer: DueTimer;
  private readonly deliveries: Counter;
  private readonly digests: Counter;
  private readonly inFlight = new Map<string, InFlight>();
  private readonly limiters = new Map<string, RateLimiter>();
  private pending: PendingOutbox;
  /** Pending digests (few: at most one per rate-limit key in flight at a time). */
  private digestQueue: DigestRow[] = [];
  /** Rows were added since the index last read the store. */
  private added = true;
  /** The pending digests were read since start. */
  private loaded = false;
  /** In a cluster: when the index next re-reads every pending row. */
  private rescanAt = 0;
  private running = false;
  private kicked = false;

  constructor(private readonly options: OutboxSenderOptions) {
    this.retry = { ...DEFAULT_RETRY_OPTIONS, ...options.retry };
    this.timer = new DueTimer(options.clock, () => this.pump());
    this.deliveries = options.metrics.counter(DELIVERIES_METRIC, 'Notification delivery attempts by channel and outcome (delivered, retry, failed).');
    this.digests = options.metrics.counter(DIGESTS_METRIC, 'Digest messages formed because a channel hit its rate limit, by channel.');
    for (const [id, channel] of options.channels) this.limiters.set(id, new RateLimiter(channel.rateLimits ?? []));
    this.pending = this.newIndex();
  }

  private newIndex(): PendingOutbox {
    return new PendingOutbox((row) => this.rateKey(row.channelId, row.recipients));
  }

  /**
   * Resumes every pending row (and digest) as the store has them; rate limits remember the sends of
   * their last window (also those of other instances). Also after pause(): a new leader starts here.
   */
  start(): void {
    if (this.running) return;
    this.running = true;
    this.pending = this.newIndex();
    this.digestQueue = [];
    this.added = true;
    this.loaded = false;
    this.rescanAt = 0;
    for (const [id, channel] of this.options.channels) this.limiters.set(id, new RateLimiter(channel.rateLimits ?? []));
    try {
      const longest = Math.max(0, ...[...this.options.channels.values()].flatMap((c) => (c.rateLimits ?? []).map((l) => l.per)));
      if (longest > 0) {
        for (const sent of this.options.store.attemptsSince(this.options.clock.now() - longest)) {
          this.limiters.get(sent.channelId)?.record(this.rateKey(sent.channelId, sent.recipients), sent.at);
        }
      }
    } catch (error) {
      this.options.logger.error({ err: error }, 'reading recent deliveries for the rate limits failed');
    }
    this.kick();
  }

  /**
   * Sends nothing more until start() (this instance no longer leads); deliveries in flight finish
   * and are recorded, so the next leader does not send them again.
   */
  pause(): void {
    this.running = false;
    this.timer.clear();
  }

  /** Stops sending; deliveries in flight (after `graceMs` for them to finish) are aborted and stay pending for the next start. */
  async stop(graceMs = 0): Promise<void> {
    this.running = false;
    this.timer.clear();
    if (graceMs > 0 && this.inFlight.size > 0) {
      // In a cluster: deliveries that finish within the grace are recorded (their claims end), so
      // the next leader need not wait for the claims to run out before it sends what is left.
      let timer: ReturnType<typeof setTimeout> | undefined;
      const grace = new Promise<void>((resolve) => (timer = setTimeout(resolve, graceMs)));
      await Promise.race([Promise.allSettled([...this.inFlight.values()].map((f) => f.done)), grace]);
      clearTimeout(timer);
    }
    const inFlight = [...this.inFlight.values()];
    for (const f of inFlight) f.controller.abort(new Error('the alert stage is stopping'));
    await Promise.allSettled(inFlight.map((f) => f.done));
  }

  /** Channels were replaced or added (a configuration reload): their rate limits start afresh; due rows are looked for again. */
  channelsChanged(ids: readonly string[]): void {
    for (const id of [...this.limiters.keys()]) if (!this.options.channels.has(id)) this.limiters.delete(id);
    for (const id of ids) {
      const channel = this.options.channels.get(id);
      if (channel) this.limiters.set(id, new RateLimiter(channel.rateLimits ?? []));
    }
    this.kick();
  }

  /** New rows were written: look for due rows once the current task (and its commit) is done. */
  kick(): void {
    this.added = true;
    if (!this.running || this.kicked) return;
    this.kicked = true;
    queueMicrotask(() => {
      this.kicked = false;
      this.pump();
    });
  }

  /** Stored with a digest, so no NUL (PostgreSQL text refuses it): the unit separator cannot be in an id. */
  private rateKey(channelId: string, recipients: readonly string[]): string {
    return this.options.channels.get(channelId)?.addressing === 'person' ? `${channelId}\u001f${recipients.join(',')}` : channelId;
  }

  /** Reads rows added since the last read (and, on the first read, the pending digests). */
  private refresh(now: number): void {
    if (!this.added) return;
    const { store, cluster } = this.options;
    if (cluster && now >= this.rescanAt) {
      // A shared store takes a row's seq when it is inserted but shows the row only at its
      // commit, so rows of concurrent transactions on other instances can appear below the
      // highest seq already seen: reading only above it could miss one for good. So once per
      // poll the index reads all pending rows (without bodies; it skips those it has); a look-back
      // window by seq or time would need a bound on how long a transaction stays open, which
      // nothing gives. Between those, this instance's own commits are read above the last seq.
      this.rescanAt = now + cluster.retryMs / 2;
      this.mergeDigests(store.pendingDigests());
      this.pending.add(store.pendingOutboxRows(0));
    } else if (cluster) {
      this.pending.add(store.pendingOutboxRows(this.pending.lastSeq));
    } else {
      if (!this.loaded) this.digestQueue = store.pendingDigests();
      this.pending.add(store.pendingOutboxRows(this.pending.lastSeq));
    }
    this.loaded = true;
    this.added = false;
  }

  /** Takes pending digests read from a shared store: known ones keep their state here, settled ones not in flight go. */
  private mergeDigests(read: readonly DigestRow[]): void {
    const known = new Map(this.digestQueue.map((d) => [d.deliveryId, d]));
    const ids = new Set(read.map((d) => d.deliveryId));
    const kept = this.digestQueue.filter((d) => ids.has(d.deliveryId) || this.inFlight.has(d.deliveryId));
    for (const d of read) if (!known.has(d.deliveryId)) kept.push(d);
    this.digestQueue = kept;
  }

  /** In a cluster: claims the row or digest for this attempt; false when another instance holds it. */
  private claim(kind: 'row' | 'digest', deliveryId: string, now: number): boolean {
    const cluster = this.options.cluster;
    if (!cluster) return true;
    const until = now + cluster.claimTtlMs;
    return kind === 'row' ? this.options.store.claimOutbox(deliveryId, cluster.owner, now, until) : this.options.store.claimDigest(deliveryId, cluster.owner, now, until);
  }

  private pump(): void {
    if (!this.running) return;
    const { clock, logger } = this.options;
    const concurrency = this.options.concurrency ?? 8;
    const pending = this.pending;
    let nextAt: number | undefined;
    const later = (at: number) => {
      nextAt = nextAt === undefined ? at : Math.min(nextAt, at);
    };
    const now = clock.now();
    try {
      this.refresh(now);
      // Digests first: they hold the oldest notifications of their key.
      for (const digest of this.digestQueue) {
        if (this.inFlight.has(digest.deliveryId)) continue;
        if (digest.nextAttemptAt > now) {
          later(digest.nextAttemptAt);
          continue;
        }
        const limiter = this.limiters.get(digest.channelId);
        if (limiter && limiter.room(digest.rateKey, now) < 1) {
          later(limiter.nextFree(digest.rateKey, now));
          continue;
        }
        if (this.inFlight.size >= concurrency) continue;
        this.dispatchDigest(digest, now);
      }
      // At the limit, a finishing delivery pumps again.
      while (this.inFlight.size < concurrency) {
        const head = pending.takeDue(now);
        if (!head) break;
        const key = this.rateKey(head.channelId, head.recipients);
        const limiter = this.limiters.get(head.channelId);
        const room = limiter ? limiter.room(key, now) : Infinity;
        if (room === Infinity) {
          this.dispatchRow(head, now);
          continue;
        }
        const rows = [head, ...pending.takeDueOfKey(key, now)].sort((a, b) => a.seq - b.seq);
        if (room < 1) {
          const free = Math.max(limiter!.nextFree(key, now), now + 1);
          for (const row of rows) pending.wait(row, free);
          continue;
        }
        // Within the room each goes alone; the excess is merged into one digest using the last slot.
        const alone = rows.length <= room ? rows : rows.slice(0, room - 1);
        let sent = 0;
        for (; sent < alone.length && this.inFlight.size < concurrency; sent++) this.dispatchRow(alone[sent]!, now);
        for (const row of alone.slice(sent)) pending.wait(row, row.nextAttemptAt);
        if (rows.length <= room) continue;
        const excess = rows.slice(room - 1);
        if (this.inFlight.size >= concurrency) {
          for (const row of excess) pending.wait(row, row.nextAttemptAt);
          continue;
        }
        const digest = this.formDigest(key, head.channelId, excess, now);
        if (digest) this.dispatchDigest(digest, now);
        else for (const row of excess) pending.wait(row, now + this.retry.baseDelayMs);
      }
      const due = pending.nextDue();
      if (due !== undefined && (due > now || this.inFlight.size < concurrency)) later(due);
    } catch (error) {
      logger.error({ err: error }, 'reading the notification outbox failed');
      later(now + this.retry.baseDelayMs);
    }
    this.timer.arm(nextAt);
  }

  private recipientsOf(ids: readonly string[], deliveryId: string, channelId: string): ContactConfig[] {
    const recipients: ContactConfig[] = [];
    for (const id of ids) {
      const contact = this.options.contacts.get(id);
      if (contact) recipients.push(contact);
      else this.options.logger.warn({ channel: channelId, contact: id, delivery_id: deliveryId }, 'notification names an unknown contact; skipping that contact');
    }
    return recipients;
  }

  private dispatchRow(head: PendingRow, now: number): void {
    if (this.inFlight.has(head.deliveryId)) {
      // Still being sent from before a pause: its outcome is recorded, then the store says what is left.
      this.pending.wait(head, now + (this.options.cluster?.retryMs ?? this.retry.baseDelayMs));
      return;
    }
    let row: OutboxRow | undefined;
    try {
      row = this.options.store.getOutbox(head.deliveryId);
      if (this.options.cluster && row?.status === 'pending') {
        if (row.nextAttemptAt > now) {
          // Another instance attempted it since this index read it.
          head.attempts = row.attempts;
          head.nextAttemptAt = row.nextAttemptAt;
          this.pending.wait(head, row.nextAttemptAt);
          return;
        }
        if (!this.claim('row', row.deliveryId, now)) {
          this.pending.wait(head, now + this.options.cluster.retryMs);
          return;
        }
      }
    } catch (error) {
      this.options.logger.error({ err: error, delivery_id: head.deliveryId }, 'reading a notification from the outbox failed');
      this.pending.wait(head, now + this.retry.baseDelayMs);
      return;
    }
    if (!row || row.status !== 'pending') {
      this.pending.done(head);
      return;
    }
    if (row.attempts === 0 && this.options.resolve) {
      try {
        const resolved = this.options.resolve(row, now);
        if (resolved) {
          this.options.store.resolveOutbox(row.deliveryId, resolved.recipients, resolved.body);
          row = { ...row, recipients: resolved.recipients, body: resolved.body };
        }
      } catch (error) {
        this.options.logger.error({ err: error, delivery_id: head.deliveryId }, 'resolving the recipients of a notification failed');
        this.pending.wait(head, now + this.retry.baseDelayMs);
        return;
      }
    }
    const channel = this.options.channels.get(row.channelId);
    const attempt = row.attempts + 1;
    if (!channel) {
      this.settleRow(head, () => this.recordRow(row, attempt, { outcome: 'failed', error: `channel "${row.channelId}" is not configured` }, undefined), now);
      return;
    }
    this.limiters.get(row.channelId)?.record(this.rateKey(row.channelId, row.recipients), now);
    const notification: Notification = {
      deliveryId: row.deliveryId,
      alertId: row.alertId,
      channelId: row.channelId,
      event: row.event,
      tier: row.tier,
      body: row.body,
      recipients: this.recipientsOf(row.recipients, row.deliveryId, row.channelId),
      attempt,
    };
    this.send(channel, notification, (outcome) => this.settleRow(head, () => this.recordRow(row, attempt, outcome, channel), this.options.clock.now()));
  }

  /** Records an outcome and updates the index: the row waits for its retry, or its queue moves on. */
  private settleRow(head: PendingRow, record: () => Verdict, now: number): void {
    let v: Verdict;
    try {
      v = record();
      // Sent before a pause and a new start: the index of this start has the row as the store does.
      if (this.pending.get(head.deliveryId) !== head) return;
    } catch (err) {
      // Not recorded: it stays pending and is sent again under the same delivery_id.
      this.options.logger.error({ err, delivery_id: head.deliveryId }, 'recording a delivery outcome failed');
      this.pending.wait(head, now + this.retry.baseDelayMs);
      return;
    }
    if (v.status === 'pending') {
      head.attempts++;
      head.nextAttemptAt = v.nextAttemptAt;
      this.pending.wait(head, v.nextAttemptAt);
    } else this.pending.done(head);
  }

  /** Like settleRow, for a digest and its members. */
  private settleDigest(digest: DigestRow, record: () => Verdict, now: number): void {
    let v: Verdict;
    try {
      v = record();
      if (!this.digestQueue.includes(digest)) return;
    } catch (err) {
      this.options.logger.error({ err, delivery_id: digest.deliveryId }, 'recording a delivery outcome failed');
      digest.nextAttemptAt = now + this.retry.baseDelayMs;
      return;
    }
    if (v.status === 'pending') {
      digest.attempts++;
      digest.nextAttemptAt = v.nextAttemptAt;
      return;
    }
    this.digestQueue = this.digestQueue.filter((d) => d !== digest);
    for (const id of digest.members) {
      const member = this.pending.get(id);
      if (member) this.pending.done(member);
    }
  }

  private dispatchDigest(digest: DigestRow, now: number): void {
    try {
      if (!this.claim('digest', digest.deliveryId, now)) {
        digest.nextAttemptAt = now + this.options.cluster!.retryMs;
        return;
      }
    } catch (error) {
      this.options.logger.error({ err: error, delivery_id: digest.deliveryId }, 'claiming a digest failed');
      digest.nextAttemptAt = now + this.retry.baseDelayMs;
      return;
    }
    const channel = this.options.channels.get(digest.channelId);
    const members = digest.members.map((id) => this.options.store.getOutbox(id)).filter((r): r is OutboxRow => r !== undefined);
    const attempt = digest.attempts + 1;
    if (!channel || members.length === 0) {
      const error = channel ? 'the digest has no notifications' : `channel "${digest.channelId}" is not configured`;
      this.settleDigest(digest, () => this.recordDigest(digest, members, attempt, { outcome: 'failed', error }, undefined), now);
      return;
    }
    this.limiters.get(digest.channelId)?.record(digest.rateKey, now);
    const first = members[0]!;
    const notification: Notification = {
      deliveryId: digest.deliveryId,
      alertId: first.alertId,
      channelId: digest.channelId,
      event: first.event,
      tier: first.tier,
      body: first.body,
      recipients: this.recipientsOf(this.options.resolveRecipients ? this.options.resolveRecipients(digest.recipients, now) : digest.recipients, digest.deliveryId, digest.channelId),
      attempt,
      digest: members.map((m) => ({ deliveryId: m.deliveryId, alertId: m.alertId, event: m.event, tier: m.tier, body: m.body })),
    };
    this.send(channel, notification, (outcome) => this.settleDigest(digest, () => this.recordDigest(digest, members, attempt, outcome, channel), this.options.clock.now()));
  }

  private send(channel: Channel, notification: Notification, record: (outcome: DeliveryOutcome) => void): void {
    const controller = new AbortController();
    const done = channel
      .send(notification, controller.signal)
      .catch((error: unknown): DeliveryOutcome => ({ outcome: 'retry', error: error instanceof Error ? error.message : String(error) }))
      .then((outcome) => {
        this.inFlight.delete(notification.deliveryId);
        // Stopping: leave it pending; the next start sends it again under the same delivery_id.
        // Paused (no longer leading): record the outcome, so the next leader does not repeat it.
        if (controller.signal.aborted) return;
        if (outcome.outcome === 'retry' && outcome.throttled && outcome.retryAfterMs !== undefined) {
          const key = notification.digest
            ? this.options.store.getDigest(notification.deliveryId)?.rateKey
            : this.rateKey(
                notification.channelId,
                notification.recipients.map((r) => r.id),
              );
          if (key !== undefined) this.limiters.get(notification.channelId)?.block(key, this.options.clock.now() + outcome.retryAfterMs);
        }
        record(outcome);
        this.pump();
      });
    this.inFlight.set(notification.deliveryId, { controller, done });
  }

  /** Merges rows into a digest, recorded before it is sent. */
  private formDigest(key: string, channelId: string, rows: PendingRow[], now: number): DigestRow | undefined {
    const { store, logger } = this.options;
    const recipients: string[] = [];
    for (const row of rows) for (const r of row.recipients) if (!recipients.includes(r)) recipients.push(r);
    const digest: DigestRow = {
      deliveryId: randomUUID(),
      channelId,
      rateKey: key,
      recipients,
      members: rows.map((r) => r.deliveryId),
      status: 'pending',
      attempts: 0,
      nextAttemptAt: now,
      createdAt: now,
      updatedAt: now,
      lastError: null,
    };
    try {
      // In a cluster every member is claimed first: one another instance is sending stays out.
      if (this.options.cluster && !rows.every((row) => this.claim('row', row.deliveryId, now))) return undefined;
      store.transaction(() => {
        store.insertDigest(digest);
        for (const row of rows) {
          store.appendTimeline({
            alertId: row.alertId,
            at: now,
            kind: 'delivery',
            type: 'digested',
            level: null,
            state: null,
            tier: row.tier,
            channel: channelId,
            deliveryId: row.deliveryId,
            detail: { event: row.event, digest_id: digest.deliveryId, size: rows.length },
          });
        }
      });
    } catch (error) {
      logger.error({ err: error, channel: channelId }, 'forming a digest failed');
      return undefined;
    }
    this.pending.joinDigest(rows, digest.deliveryId);
    this.digestQueue.push(digest);
    this.digests.inc({ channel: channelId });
    logger.warn({ channel: channelId, digest_id: digest.deliveryId, size: rows.length }, 'channel rate limit reached; notifications merged into a digest');
    return digest;
  }

  private recordRow(row: OutboxRow, attempt: number, outcome: DeliveryOutcome, channel: Channel | undefined): Verdict {
    const { store, clock } = this.options;
    const now = clock.now();
    const v = verdict(attempt, outcome, channel, row.createdAt, now, row.nextAttemptAt, this.retry, this.options.random);
    store.transaction(() => {
      store.updateOutbox(row.deliveryId, { status: v.status, attempts: attempt, nextAttemptAt: v.nextAttemptAt, updatedAt: now, lastError: v.error });
      store.appendTimeline(this.timelineEntry(row, v, attempt, outcome, now, {}));
    });
    this.afterRecord(row, v, attempt, outcome, now, {});
    return v;
  }

  private recordDigest(digest: DigestRow, members: OutboxRow[], attempt: number, outcome: DeliveryOutcome, channel: Channel | undefined): Verdict {
    const { store, clock } = this.options;
    const now = clock.now();
    const createdAt = Math.min(digest.createdAt, ...members.map((m) => m.createdAt));
    const v = verdict(attempt, outcome, channel, createdAt, now, digest.nextAttemptAt, this.retry, this.options.random);
    const extra = { digest_id: digest.deliveryId };
    store.transaction(() => {
      store.updateDigest(digest.deliveryId, { status: v.status, attempts: attempt, nextAttemptAt: v.nextAttemptAt, updatedAt: now, lastError: v.error });
      for (const m of members) {
        // Members stay pending (and taken) while the digest is retried; its outcome is theirs.
        store.updateOutbox(m.deliveryId, { status: v.status, attempts: attempt, nextAttemptAt: v.nextAttemptAt, updatedAt: now, lastError: v.error });
        store.appendTimeline(this.timelineEntry(m, v, attempt, outcome, now, extra));
      }
    });
    for (const m of members) this.afterRecord(m, v, attempt, outcome, now, extra);
    return v;
  }

  private timelineEntry(row: OutboxRow, v: Verdict, attempt: number, outcome: DeliveryOutcome, now: number, extra: Record<string, unknown>) {
    const detail: Record<string, unknown> = { event: row.event, attempt, ...extra };
    if (outcome.statusCode !== undefined) detail.status_code = outcome.statusCode;
    if (v.error !== null) detail.error = v.error;
    if (v.status === 'pending') detail.next_attempt_at = new Date(v.nextAttemptAt).toISOString();
    return { alertId: row.alertId, at: now, kind: 'delivery' as const, type: v.type, level: null, state: null, tier: row.tier, channel: row.channelId, deliveryId: row.deliveryId, detail };
  }

  private afterRecord(row: OutboxRow, v: Verdict, attempt: number, outcome: DeliveryOutcome, now: number, extra: Record<string, unknown>): void {
    const { logger } = this.options;
    this.deliveries.inc({ channel: row.channelId, outcome: v.status === 'delivered' ? 'delivered' : v.status === 'pending' ? 'retry' : 'failed' });
    const fields = { alert_id: row.alertId, channel: row.channelId, delivery_id: row.deliveryId, event: row.event, attempt, status_code: outcome.statusCode, ...extra };
    if (v.type === 'delivered') logger.info(fields, 'notification delivered');
    else if (v.type === 'retry') logger.warn({ ...fields, error: v.error, next_attempt_at: v.nextAttemptAt }, 'notification delivery failed; will retry');
    else {
      logger.error({ ...fields, error: v.error }, 'notification delivery failed for good');
      this.options.onFailed?.({ ...row, status: v.status, attempts: attempt, updatedAt: now, lastError: v.error }, v.error ?? 'failed');
    }
  }
}
