/**
 * The records and effects of a transition: its timeline event, its MQTT event and alert_events
 * point (effects, after the commit), and its notifications as outbox rows. Person channels (sms,
 * e-mail) get one outbox row per contact; group channels one per step. Each row's body carries
 * its own signed, single-use `ack_url` (see ack-token.ts).
 */
import { randomUUID } from 'node:crypto';
import type { AlertEventPoint } from '../ingest/storage.js';
import type { Logger } from '../lib/logger.js';
import { newNonce, type AckClaims } from './ack-token.js';
import { alertTopic, type AlertContext, type Effect } from './alert-types.js';
import type { AlertViews } from './alert-views.js';
import { channelAddressing, recipientRef, requiredContactField, type ChannelConfig, type NotifyTarget } from './config.js';
import type { AlertEventBody, WorkOrderBody } from './event-body.js';
import { Recipients } from './recipients.js';
import type { AlertEvent } from './state-machine.js';
import type { AlertRecord, AlertStore, NotificationEvent } from './store.js';

export class Notifier {
  private readonly store: AlertStore;
  private readonly logger: Logger;
  readonly recipients: Recipients;

  constructor(
    private readonly ctx: AlertContext,
    private readonly views: AlertViews,
    /** A signed acknowledgement link for the claims (ack-links.ts). */
    private readonly ackLinkUrl: (claims: AckClaims, now: number) => string,
    /** New outbox rows were written: the sender looks for them after the commit. */
    private readonly kick: () => void,
  ) {
    this.store = ctx.store;
    this.logger = ctx.logger;
    this.recipients = new Recipients(ctx);
  }

  recordEvent(alert: AlertRecord, event: AlertEvent, effects: Effect[]): void {
    const detail: Record<string, unknown> = {};
    if (event.previousLevel !== undefined) detail.previous_level = event.previousLevel;
    if (event.previousState !== undefined) detail.previous_state = event.previousState;
    if (event.value !== undefined) detail.value = event.value;
    if (event.threshold !== undefined) detail.threshold = event.threshold;
    if (event.ts !== undefined) detail.reading_ts = new Date(event.ts).toISOString();
    if (event.by !== undefined) detail.by = event.by;
    if (event.note !== undefined) detail.note = event.note;
    if (event.reason !== undefined) detail.reason = event.reason;
    this.store.appendTimeline({
      alertId: alert.id,
      at: event.at,
      kind: 'event',
      type: event.type,
      level: event.level,
      state: event.state,
      tier: null,
      channel: null,
      deliveryId: null,
      detail,
    });
    // An operator's acknowledge or resolve names who did it on the alert_events point; the rules and the platform do not.
    const actor = event.by !== undefined && event.by !== 'rule' && event.by !== 'system' ? event.by : undefined;
    this.publishEvent(alert, event.type, alert.lastTier ?? 0, event.ts ?? event.at, effects, actor);
  }

  /** escalated / repeated: timeline events without a state change. */
  recordNotificationEvent(alert: AlertRecord, type: 'escalated' | 'repeated', tier: number, now: number, effects: Effect[], detail: Record<string, unknown>): void {
    this.store.appendTimeline({ alertId: alert.id, at: now, kind: 'event', type, level: alert.level, state: alert.state, tier, channel: null, deliveryId: null, detail });
    this.publishEvent(alert, type, tier, now, effects);
  }

  publishEvent(alert: AlertRecord, type: AlertEventBody['event'], tier: number, ts: number, effects: Effect[], actor?: string): void {
    const payload = JSON.stringify(this.views.eventBody(randomUUID(), type, tier, alert));
    const topic = alertTopic(alert.level, alert.assetId);
    const point: AlertEventPoint = {
      ruleId: alert.ruleId,
      assetId: alert.assetId,
      level: alert.level,
      event: type,
      alertId: alert.id,
      value: alert.value,
      message: alert.message,
      ts,
      ...(actor !== undefined ? { actor } : {}),
    };
    effects.push(() => {
      if (topic) this.ctx.options.publish(topic, payload);
      else this.logger.warn({ alert_id: alert.id, asset_id: alert.assetId }, 'asset id cannot be an MQTT topic level; alert event not published');
    });
    effects.push(() => this.ctx.options.writeAlertEvent(point));
  }

  /**
   * Writes the outbox rows of one notification: one per group channel, one per contact on person
   * channels (sms, e-mail), each with its own delivery_id, serialized body and ack_url.
   * Departments are expanded here; a schedule is one recipient until the row is sent (recipients.ts).
   * Work-order notifications carry the work order (with the department's phone link).
   */
  enqueue(alert: AlertRecord, event: NotificationEvent, tier: number, targets: readonly NotifyTarget[], now: number, effects: Effect[], extra: { workOrder?: WorkOrderBody } = {}): void {
    let queued = 0;
    const write = (channel: ChannelConfig, recipients: string[]) => {
      const deliveryId = randomUUID();
      const language = 'language' in channel ? channel.language : 'zh';
      const single = recipients.length === 1 && channelAddressing(channel.type) === 'person' && recipientRef(recipients[0])?.kind === 'contact';
      const ackUrl = this.ackLinkUrl({ alertId: alert.id, expiresAt: now, nonce: newNonce(), language, channel: channel.id, ...(single ? { contact: recipients[0]! } : {}) }, now);
      const to = this.recipients.toBody(recipients.filter((id) => recipientRef(id)?.kind === 'contact'));
      const body = JSON.stringify(this.views.eventBody(deliveryId, event, tier, alert, ackUrl, { to, ...(extra.workOrder ? { workOrder: extra.workOrder } : {}) }));
      this.store.insertOutbox({ deliveryId, alertId: alert.id, channelId: channel.id, recipients, event, tier, body, nextAttemptAt: now, createdAt: now });
      this.store.appendTimeline({
        alertId: alert.id,
        at: now,
        kind: 'delivery',
        type: 'queued',
        level: alert.level,
        state: alert.state,
        tier,
        channel: channel.id,
        deliveryId,
        detail: { event, recipients },
      });
      queued++;
    };
    for (const target of this.recipients.expand(targets)) {
      const channel = this.ctx.channelConfigs.get(target.channel);
      if (!channel) {
        this.logger.warn({ alert_id: alert.id, channel: target.channel }, 'escalation names an unknown channel; skipping it');
        continue;
      }
      if (channelAddressing(channel.type) === 'group') {
        write(channel, target.to);
        continue;
      }
      const field = requiredContactField(channel.type)!;
      for (const contactId of target.to) {
        if (recipientRef(contactId)?.kind === 'schedule') {
          write(channel, [contactId]);
          continue;
        }
        const contact = this.ctx.contacts.get(contactId);
        if (!contact?.[field]) {
          this.logger.warn({ alert_id: alert.id, channel: channel.id, contact: contactId }, `contact has no ${field}; skipping it on this channel`);
          continue;
        }
        write(channel, [contactId]);
      }
    }
    if (queued > 0) effects.push(() => this.kick());
  }
}
