/**
 * The alert stage: turns rule events and operator actions into alert transitions, persists each
 * transition with its timeline event, its outbox rows and its escalation schedule in one
 * transaction, and only then has effects (MQTT publish, alert_events point, metrics, delivery).
 *
 * Semantics (see state-machine.ts and escalation.ts for the details):
 * - One open alert per (rule, asset, sensor); a rule event at the level the alert already has is
 *   ignored, so a restarted rules stage does not fire twice.
 * - started_at is the platform time the alert opened; escalation counts from it.
 * - Acknowledge: stops escalation, notifies everyone notified so far (`acknowledged`).
 *   Acknowledged alerts still follow level changes and still resolve on their own.
 *   A raise after an acknowledgement makes the alert `firing` again and re-arms escalation.
 * - Resolve (by rule, operator or a removed rule): notifies everyone notified so far (`resolved`).
 * - Every timeline event (firing, level_raised, level_dropped, escalated, repeated, acknowledged,
 *   resolved) is published on `alerts/{level}/{asset_id}` and written as an alert_events point.
 *   Publishing and the point are best effort after the commit; notifications go through the
 *   durable outbox.
 */
import { topics } from '../ingest/topics.js';
import { randomBytes, randomUUID } from 'node:crypto';
import type { Clock } from '../lib/clock.js';
import { isValidId } from '../lib/ids.js';
import { LEVEL_NAMES_ZH, LEVELS, type Level } from '../lib/levels.js';
import type { Logger } from '../lib/logger.js';
import type { Counter, MetricsRegistry } from '../lib/metrics.js';
import type { AlertEventPoint } from '../ingest/storage.js';
import type { EscalationRef } from '../rules/config.js';
import type { RuleEvent, Threshold } from '../rules/types.js';
import type { AlertFilter, AlertRecord, AlertStore, EscalationSchedule, NotificationEvent, TimelineEntry } from './alert-store.js';
import type { ChannelConfig, ContactConfig, EscalationConfig, NotifyTarget } from './config.js';
import { DueTimer } from './due-timer.js';
import { AlertError } from './errors.js';
import { dueSteps, mergeTargets, planRaise, scheduleFrom, selectPolicyId, type EscalationStep } from './escalation.js';
import { OutboxSender, type Channel, type RetryOptions } from './outbox.js';
import { openAlert, transition, type AlertEvent, type AlertInput, type AlertState, type ResolveReason, type Transition } from './state-machine.js';
import { WebhookChannel } from './webhook-channel.js';

/** What the alert stage needs to know about a rule; the rules stage provides a compatible object. */
export interface RuleInfo {
  id: string;
  name?: string;
  message?: string;
  plan: readonly string[];
  escalation?: EscalationRef;
}

export interface AssetInfo {
  id: string;
  name: string;
  type: string;
  street: string;
}

/** Placeholders for a rule's message template. */
export type MessageVars = Record<string, string | number>;

export interface AlertServiceOptions {
  store: AlertStore;
  clock: Clock;
  logger: Logger;
  metrics: MetricsRegistry;
  rules: (ruleId: string) => RuleInfo | undefined;
  assets: (assetId: string) => AssetInfo | undefined;
  units: (metric: string) => string;
  renderMessage: (template: string | undefined, vars: MessageVars) => string;
  escalations: EscalationConfig[];
  channels: ChannelConfig[];
  contacts: ContactConfig[];
  /** Base of ack_url links, e.g. https://watchpost.example.org */
  publicUrl: string;
  /** MQTT publish of `alerts/{level}/{asset_id}`; payload is the alert event body JSON. */
  publish: (topic: string, payload: string) => void;
  writeAlertEvent: (point: AlertEventPoint) => void;
  /** Builds the sender of a configured channel (default: WebhookChannel). Tests and new channel types plug in here. */
  createChannel?: (config: ChannelConfig) => Channel;
  retry?: Partial<RetryOptions>;
}

/** The alert object of the alert event body (contract: Notifications), in its key order. */
export interface AlertBody {
  id: string;
  rule_id: string;
  rule_name: string;
  level: Level;
  state: AlertState;
  asset_id: string;
  asset_name: string;
  asset_type: string;
  street: string;
  sensor_id: string;
  metric: string;
  value: number;
  threshold: Threshold | null;
  started_at: string;
  message: string;
  plan: string[];
  ack_url: string;
}

/** The alert event body: webhook body and MQTT payload. */
export interface AlertEventBody {
  delivery_id: string;
  event: NotificationEvent | 'level_dropped';
  tier: number;
  alert: AlertBody;
}

/** An alert as the API shows it: the body's alert plus its lifecycle. */
export interface AlertView extends AlertBody {
  updated_at: string;
  acknowledged_at: string | null;
  acknowledged_by: string | null;
  resolved_at: string | null;
  resolved_by: string | null;
  resolve_reason: string | null;
  escalation: string | null;
  tier: number | null;
}

export interface TimelineEntryView {
  seq: number;
  at: string;
  kind: 'event' | 'delivery';
  type: string;
  [field: string]: unknown;
}

export interface AlertDetail extends AlertView {
  timeline: TimelineEntryView[];
}

export interface OperatorAction {
  by: string;
  note?: string;
}

export const ALERTS_FIRED_METRIC = 'watchpost_alerts_fired_total';
export const ALERTS_OPEN_METRIC = 'watchpost_alerts_open';

/** The MQTT topic of an alert event, or undefined when the asset id cannot be a topic level. */
export function alertTopic(level: Level, assetId: string): string | undefined {
  return isValidId(assetId) ? topics.alerts(level, assetId) : undefined;
}

export function newAlertId(): string {
  return `al_${randomBytes(10).toString('hex')}`;
}

/** Effects of a committed transaction; run only after the commit. */
type Effect = () => void;

export class AlertService {
  private readonly store: AlertStore;
  private readonly clock: Clock;
  private readonly logger: Logger;
  private readonly escalations: Map<string, EscalationConfig>;
  private readonly channelConfigs: Map<string, ChannelConfig>;
  private readonly outbox: OutboxSender;
  private readonly escalationTimer: DueTimer;
  private readonly fired: Counter;
  private openCounts = new Map<string, number>();
  private running = false;

  constructor(private readonly options: AlertServiceOptions) {
    this.store = options.store;
    this.clock = options.clock;
    this.logger = options.logger.child({ module: 'alerts' });
    this.escalations = new Map(options.escalations.map((e) => [e.id, e]));
    this.channelConfigs = new Map(options.channels.map((c) => [c.id, c]));
    const createChannel = options.createChannel ?? ((config: ChannelConfig) => new WebhookChannel(config, { clock: options.clock }));
    this.outbox = new OutboxSender({
      store: options.store,
      clock: options.clock,
      logger: this.logger.child({ part: 'outbox' }),
      metrics: options.metrics,
      channels: new Map(options.channels.map((c) => [c.id, createChannel(c)])),
      contacts: new Map(options.contacts.map((c) => [c.id, c])),
      ...(options.retry ? { retry: options.retry } : {}),
      onFailed: (row, error) => this.onDeliveryFailed(row.alertId, row.channelId, row.deliveryId, error),
    });
    this.escalationTimer = new DueTimer(options.clock, () => this.runEscalations());
    this.fired = options.metrics.counter(ALERTS_FIRED_METRIC, 'Alerts opened, by the level they opened at.');
    options.metrics
      .gauge(ALERTS_OPEN_METRIC, 'Alerts currently open (firing or acknowledged), by level.')
      .collect(() => LEVELS.map((level) => [{ level }, this.openCounts.get(level) ?? 0]));
  }

  /** Resumes pending notifications and escalation timers (overdue tiers are notified now). */
  start(): void {
    if (this.running) return;
    this.running = true;
    this.refreshOpenCounts();
    this.outbox.start();
    this.runEscalations();
  }

  /** Releases timers; deliveries in flight stay pending for the next start. */
  async stop(): Promise<void> {
    this.running = false;
    this.escalationTimer.clear();
    await this.outbox.stop();
  }

  /** Applies rule events in order; each is its own transaction. */
  handle(events: readonly RuleEvent[]): void {
    for (const event of events) {
      try {
        this.commit((effects) => this.applyRuleEvent(event, effects));
      } catch (error) {
        this.logger.error({ err: error, rule_id: event.ruleId, asset_id: event.assetId, sensor_id: event.sensorId }, 'applying a rule event failed');
      }
    }
  }

  acknowledge(id: string, action: OperatorAction): AlertView {
    checkAction(action);
    const alert = this.commit((effects) => this.operatorTransition(id, { kind: 'acknowledge', by: action.by, ...noteOf(action) }, effects));
    return this.view(alert);
  }

  resolve(id: string, action: OperatorAction): AlertView {
    checkAction(action);
    const alert = this.commit((effects) => this.operatorTransition(id, { kind: 'resolve', by: action.by, reason: 'operator', ...noteOf(action) }, effects));
    return this.view(alert);
  }

  /** Resolves every open alert of a rule that is no longer configured; returns how many. */
  resolveForRemovedRule(ruleId: string, options: { reason?: ResolveReason; note?: string } = {}): number {
    let count = 0;
    for (const open of this.store.openAlerts(ruleId)) {
      try {
        this.commit((effects) =>
          this.operatorTransition(open.id, { kind: 'resolve', by: 'system', reason: options.reason ?? 'rule_removed', ...(options.note ? { note: options.note } : {}) }, effects),
        );
        count++;
      } catch (error) {
        this.logger.error({ err: error, alert_id: open.id, rule_id: ruleId }, 'resolving an alert of a removed rule failed');
      }
    }
    return count;
  }

  list(filter: AlertFilter = {}): AlertView[] {
    return this.store.listAlerts(filter).map((a) => this.view(a));
  }

  /** One alert with its whole timeline; throws alert_not_found. */
  get(id: string): AlertDetail {
    const alert = this.store.getAlert(id);
    if (!alert) throw new AlertError('alert_not_found', `no alert with id "${id}"`);
    return { ...this.view(alert), timeline: this.store.timeline(id).map(timelineView) };
  }

  openAlerts(): AlertView[] {
    return this.store.openAlerts().map((a) => this.view(a));
  }

  // ---- transitions ----

  /** Runs fn in one transaction, then its effects. */
  private commit<T>(fn: (effects: Effect[]) => T): T {
    const effects: Effect[] = [];
    const result = this.store.transaction(() => fn(effects));
    for (const effect of effects) {
      try {
        effect();
      } catch (error) {
        this.logger.error({ err: error }, 'an alert effect failed after the transition was recorded');
      }
    }
    return result;
  }

  private applyRuleEvent(event: RuleEvent, effects: Effect[]): void {
    const now = this.clock.now();
    const open = this.store.findOpenAlert(event.ruleId, event.assetId, event.sensorId);
    if (!open) {
      if (event.level !== null) this.open(event as RuleEvent & { level: Level }, now, effects);
      return;
    }
    const t = transition(open, { kind: 'rule', level: event.level, value: event.value, threshold: event.threshold, ts: event.ts }, now);
    if (t) this.applyTransition(open, t, now, effects);
  }

  private operatorTransition(id: string, input: AlertInput, effects: Effect[]): AlertRecord {
    const now = this.clock.now();
    const alert = this.store.getAlert(id);
    if (!alert) throw new AlertError('alert_not_found', `no alert with id "${id}"`);
    const t = transition(alert, input, now);
    if (!t) return alert;
    return this.applyTransition(alert, t, now, effects);
  }

  private open(event: RuleEvent & { level: Level }, now: number, effects: Effect[]): void {
    const rule = this.options.rules(event.ruleId);
    const asset = this.options.assets(event.assetId);
    const { alert: core, event: firing } = openAlert({ kind: 'rule', level: event.level, value: event.value, threshold: event.threshold, ts: event.ts }, now);
    const policy = this.policyFor(rule?.escalation, event.level, event.ruleId);
    let alert: AlertRecord = {
      ...core,
      id: newAlertId(),
      ruleId: event.ruleId,
      assetId: event.assetId,
      sensorId: event.sensorId,
      metric: event.metric,
      startedAt: now,
      ruleName: rule?.name ?? event.ruleId,
      assetName: asset?.name ?? event.assetId,
      assetType: asset?.type ?? '',
      street: asset?.street ?? '',
      message: '',
      plan: [...(rule?.plan ?? [])],
      escalationPolicy: policy?.id ?? null,
      lastTier: null,
    };
    alert.message = this.renderMessage(alert, rule);
    this.store.insertAlert(alert);
    this.recordEvent(alert, firing, effects);
    if (policy) alert = this.escalate(alert, policy, scheduleFrom(policy, alert.id, now, 0), now, effects);
    effects.push(() => this.fired.inc({ level: alert.level }));
    this.afterChange(effects);
  }

  private applyTransition(before: AlertRecord, t: Transition<AlertRecord>, now: number, effects: Effect[]): AlertRecord {
    let alert = t.alert;
    const event = t.event;
    if (event.type === 'level_raised' || event.type === 'level_dropped') {
      alert = { ...alert, message: this.renderMessage(alert, this.options.rules(alert.ruleId)) };
    }
    switch (event.type) {
      case 'level_raised': {
        const rule = this.options.rules(alert.ruleId);
        const currentPolicy = before.escalationPolicy ? this.escalations.get(before.escalationPolicy) : undefined;
        const plan = planRaise({
          alertId: alert.id,
          now,
          wasAcknowledged: before.state === 'acknowledged',
          currentPolicy,
          currentSchedule: this.store.getSchedule(alert.id),
          newPolicy: rule ? this.policyFor(rule.escalation, alert.level, alert.ruleId) : undefined,
          notifiedSoFar: this.store.notifiedTargets(alert.id),
        });
        const tier = plan.rearmed ? 0 : Math.max(alert.lastTier ?? 0, 0);
        alert = { ...alert, escalationPolicy: plan.policyId, lastTier: plan.targets.length > 0 ? tier : alert.lastTier };
        this.store.updateAlert(alert);
        this.recordEvent(alert, event, effects);
        this.enqueue(alert, 'level_raised', tier, plan.targets, now, effects);
        const policy = plan.policyId ? this.escalations.get(plan.policyId) : undefined;
        if (policy) alert = this.escalate(alert, policy, plan.schedule, now, effects);
        else this.putSchedule(alert.id, undefined, effects);
        break;
      }
      case 'acknowledged':
      case 'resolved': {
        this.store.updateAlert(alert);
        this.recordEvent(alert, event, effects);
        this.putSchedule(alert.id, undefined, effects);
        this.enqueue(alert, event.type, alert.lastTier ?? 0, this.store.notifiedTargets(alert.id), now, effects);
        break;
      }
      case 'level_dropped':
        this.store.updateAlert(alert);
        this.recordEvent(alert, event, effects);
        break;
      case 'firing':
        throw new Error('an open alert cannot fire again');
    }
    this.afterChange(effects);
    return alert;
  }

  /** Notifies every step of the schedule that is due now and stores what remains. */
  private escalate(alert: AlertRecord, policy: EscalationConfig, schedule: EscalationSchedule | undefined, now: number, effects: Effect[]): AlertRecord {
    const { steps, next } = dueSteps(policy, schedule, now);
    let current = alert;
    for (const step of steps) current = this.notifyStep(current, step, now, effects);
    if (steps.length > 0) this.store.updateAlert(current);
    this.putSchedule(alert.id, next, effects);
    return current;
  }

  private notifyStep(alert: AlertRecord, step: EscalationStep, now: number, effects: Effect[]): AlertRecord {
    const next = { ...alert, lastTier: Math.max(alert.lastTier ?? 0, step.tier) };
    if (step.event !== 'firing') {
      this.recordNotificationEvent(next, step.event, step.tier, now, effects, { due_at: new Date(step.dueAt).toISOString() });
    }
    this.enqueue(next, step.event, step.tier, step.targets, now, effects);
    return next;
  }

  private putSchedule(alertId: string, schedule: EscalationSchedule | undefined, effects: Effect[]): void {
    if (schedule) this.store.putSchedule(schedule);
    else this.store.deleteSchedule(alertId);
    effects.push(() => {
      if (this.running) this.escalationTimer.arm(this.store.nextScheduleDue());
    });
  }

  /** Escalation timer: notifies every due tier and repeat, then re-arms for the next due time. */
  private runEscalations(): void {
    if (!this.running) return;
    const now = this.clock.now();
    let due: EscalationSchedule[] = [];
    try {
      due = this.store.dueSchedules(now);
    } catch (error) {
      this.logger.error({ err: error }, 'reading the escalation schedule failed');
    }
    for (const schedule of due) {
      try {
        this.commit((effects) => {
          const alert = this.store.getAlert(schedule.alertId);
          if (!alert || alert.state !== 'firing') {
            this.store.deleteSchedule(schedule.alertId);
            return;
          }
          const policy = this.escalations.get(schedule.policyId);
          if (!policy) {
            this.logger.warn({ alert_id: alert.id, escalation: schedule.policyId }, 'escalation policy no longer configured; escalation of this alert stops');
            this.store.deleteSchedule(schedule.alertId);
            return;
          }
          this.escalate(alert, policy, schedule, now, effects);
        });
      } catch (error) {
        this.logger.error({ err: error, alert_id: schedule.alertId }, 'escalating an alert failed');
      }
    }
    try {
      this.escalationTimer.arm(this.store.nextScheduleDue());
    } catch (error) {
      this.logger.error({ err: error }, 'reading the escalation schedule failed');
    }
  }

  // ---- records and effects ----

  private recordEvent(alert: AlertRecord, event: AlertEvent, effects: Effect[]): void {
    const detail: Record<string, unknown> = {};
    if (event.previousLevel !== undefined) detail.previous_level = event.previousLevel;
    if (event.previousState !== undefined) detail.previous_state = event.previousState;
    if (event.value !== undefined) detail.value = event.value;
    if (event.threshold !== undefined) detail.threshold = event.threshold;
    if (event.ts !== undefined) detail.reading_ts = new Date(event.ts).toISOString();
    if (event.by !== undefined) detail.by = event.by;
    if (event.note !== undefined) detail.note = event.note;
    if (event.reason !== undefined) detail.reason = event.reason;
    this.store.appendTimeline({ alertId: alert.id, at: event.at, kind: 'event', type: event.type, level: event.level, state: event.state, tier: null, channel: null, deliveryId: null, detail });
    this.publishEvent(alert, event.type, alert.lastTier ?? 0, event.ts ?? event.at, effects);
  }

  /** escalated / repeated: timeline events without a state change. */
  private recordNotificationEvent(alert: AlertRecord, type: 'escalated' | 'repeated', tier: number, now: number, effects: Effect[], detail: Record<string, unknown>): void {
    this.store.appendTimeline({ alertId: alert.id, at: now, kind: 'event', type, level: alert.level, state: alert.state, tier, channel: null, deliveryId: null, detail });
    this.publishEvent(alert, type, tier, now, effects);
  }

  private publishEvent(alert: AlertRecord, type: AlertEventBody['event'], tier: number, ts: number, effects: Effect[]): void {
    const payload = JSON.stringify(this.eventBody(randomUUID(), type, tier, alert));
    const topic = alertTopic(alert.level, alert.assetId);
    const point: AlertEventPoint = { ruleId: alert.ruleId, assetId: alert.assetId, level: alert.level, event: type, alertId: alert.id, value: alert.value, message: alert.message, ts };
    effects.push(() => {
      if (topic) this.options.publish(topic, payload);
      else this.logger.warn({ alert_id: alert.id, asset_id: alert.assetId }, 'asset id cannot be an MQTT topic level; alert event not published');
    });
    effects.push(() => this.options.writeAlertEvent(point));
  }

  /** Writes one outbox row per channel, each with its own delivery_id and serialized body. */
  private enqueue(alert: AlertRecord, event: NotificationEvent, tier: number, targets: readonly NotifyTarget[], now: number, effects: Effect[]): void {
    let queued = 0;
    for (const target of mergeTargets(targets)) {
      if (!this.channelConfigs.has(target.channel)) {
        this.logger.warn({ alert_id: alert.id, channel: target.channel }, 'escalation names an unknown channel; skipping it');
        continue;
      }
      const deliveryId = randomUUID();
      const body = JSON.stringify(this.eventBody(deliveryId, event, tier, alert));
      this.store.insertOutbox({ deliveryId, alertId: alert.id, channelId: target.channel, recipients: target.to, event, tier, body, nextAttemptAt: now, createdAt: now });
      this.store.appendTimeline({
        alertId: alert.id,
        at: now,
        kind: 'delivery',
        type: 'queued',
        level: alert.level,
        state: alert.state,
        tier,
        channel: target.channel,
        deliveryId,
        detail: { event, recipients: target.to },
      });
      queued++;
    }
    if (queued > 0) effects.push(() => this.outbox.kick());
  }

  private afterChange(effects: Effect[]): void {
    effects.push(() => this.refreshOpenCounts());
  }

  private refreshOpenCounts(): void {
    this.openCounts = this.store.openCountsByLevel();
  }

  private onDeliveryFailed(alertId: string, channel: string, deliveryId: string, error: string): void {
    try {
      const alert = this.store.getAlert(alertId);
      if (!alert) return;
      this.options.writeAlertEvent({ ruleId: alert.ruleId, assetId: alert.assetId, level: alert.level, event: 'delivery_failed', alertId, value: alert.value, message: `${channel} ${deliveryId}: ${error}`, ts: this.clock.now() });
    } catch (err) {
      this.logger.error({ err, alert_id: alertId }, 'writing the delivery_failed alert event failed');
    }
  }

  // ---- helpers ----

  private policyFor(ref: EscalationRef | undefined, level: Level, ruleId: string): EscalationConfig | undefined {
    const id = selectPolicyId(ref, level);
    if (id === undefined) return undefined;
    const policy = this.escalations.get(id);
    if (!policy) this.logger.warn({ rule_id: ruleId, escalation: id }, 'rule names an unknown escalation; the alert is recorded but not notified');
    return policy;
  }

  private renderMessage(alert: AlertRecord, rule: RuleInfo | undefined): string {
    const vars: MessageVars = {
      rule_id: alert.ruleId,
      rule_name: alert.ruleName,
      asset_id: alert.assetId,
      asset_name: alert.assetName,
      asset_type: alert.assetType,
      street: alert.street,
      sensor_id: alert.sensorId,
      metric: alert.metric,
      value: alert.value,
      unit: this.options.units(alert.metric),
      level: alert.level,
      level_name: LEVEL_NAMES_ZH[alert.level],
      threshold: alert.threshold === null ? '' : Array.isArray(alert.threshold) ? `${alert.threshold[0]}~${alert.threshold[1]}` : alert.threshold,
    };
    try {
      return this.options.renderMessage(rule?.message, vars);
    } catch (error) {
      this.logger.warn({ err: error, rule_id: alert.ruleId }, 'rendering the alert message failed; using a plain one');
      return `${alert.ruleName}: ${alert.assetName} ${alert.sensorId} ${alert.metric}=${alert.value}`;
    }
  }

  private ackUrl(id: string): string {
    // The alert resource itself; operators acknowledge with POST {ack_url}/ack.
    return `${this.options.publicUrl.replace(/\/+$/, '')}/api/v1/alerts/${encodeURIComponent(id)}`;
  }

  private eventBody(deliveryId: string, event: AlertEventBody['event'], tier: number, alert: AlertRecord): AlertEventBody {
    return { delivery_id: deliveryId, event, tier, alert: this.alertBody(alert) };
  }

  private alertBody(a: AlertRecord): AlertBody {
    return {
      id: a.id,
      rule_id: a.ruleId,
      rule_name: a.ruleName,
      level: a.level,
      state: a.state,
      asset_id: a.assetId,
      asset_name: a.assetName,
      asset_type: a.assetType,
      street: a.street,
      sensor_id: a.sensorId,
      metric: a.metric,
      value: a.value,
      threshold: a.threshold,
      started_at: new Date(a.startedAt).toISOString(),
      message: a.message,
      plan: a.plan,
      ack_url: this.ackUrl(a.id),
    };
  }

  private view(a: AlertRecord): AlertView {
    return {
      ...this.alertBody(a),
      updated_at: new Date(a.updatedAt).toISOString(),
      acknowledged_at: isoOrNull(a.acknowledgedAt),
      acknowledged_by: a.acknowledgedBy,
      resolved_at: isoOrNull(a.resolvedAt),
      resolved_by: a.resolvedBy,
      resolve_reason: a.resolveReason,
      escalation: a.escalationPolicy,
      tier: a.lastTier,
    };
  }
}

function timelineView(e: TimelineEntry): TimelineEntryView {
  const view: TimelineEntryView = { seq: e.seq, at: new Date(e.at).toISOString(), kind: e.kind, type: e.type };
  if (e.level !== null) view.level = e.level;
  if (e.state !== null) view.state = e.state;
  if (e.tier !== null) view.tier = e.tier;
  if (e.channel !== null) view.channel = e.channel;
  if (e.deliveryId !== null) view.delivery_id = e.deliveryId;
  return { ...view, ...e.detail };
}

function isoOrNull(ms: number | null): string | null {
  return ms === null ? null : new Date(ms).toISOString();
}

function checkAction(action: OperatorAction): void {
  if (typeof action.by !== 'string' || action.by.length === 0 || action.by.length > 200) {
    throw new AlertError('invalid_request', '"by" must name who acts (1-200 characters)');
  }
  if (action.note !== undefined && (typeof action.note !== 'string' || action.note.length > 2000)) {
    throw new AlertError('invalid_request', '"note" must be a string of at most 2000 characters');
  }
}

function noteOf(action: OperatorAction): { note?: string } {
  return action.note ? { note: action.note } : {};
}
