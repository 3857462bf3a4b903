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
 * - Holds: while a silence matches an alert, or the rules stage reports its (rule, asset, sensor)
 *   as flapping, its notifications are held. Escalation steps that come due wait (the schedule is
 *   kept); a raise, acknowledgement or resolve is remembered as the alert's held notice. When the
 *   hold ends, the held notice is sent once, reflecting the alert's state then (`resolved` to those
 *   notified before, `acknowledged`, or `level_raised` to those notified plus the new level's tier
 *   0 — `firing` if nobody was notified yet), then every tier that came due, once each, in order.
 *   An alert that opened and resolved within a hold is recorded, and notified to nobody.
 * - Person channels (sms, e-mail) get one outbox row per contact; group channels one per step.
 *   Each row's body carries its own signed, single-use `ack_url` (see ack-token.ts).
 * - A delivery that fails for good opens (or raises) a `delivery_failed` alert for (asset, channel)
 *   that goes to the escalation named `fallback`; failures of those alerts' own deliveries are
 *   recorded and logged only, so a broken fallback cannot loop.
 * - A rule event whose transaction fails (disk full, I/O error, busy) is not dropped: it waits in
 *   memory with every later one, in order, and is retried with backoff until stored (see
 *   transition-queue.ts). While that lasts the platform alert `platform-alerts-db` is published
 *   on MQTT at once; when alerts.db works again it is recorded (firing at the first failure,
 *   resolved at the recovery) and notified to `fallback`.
 */
import { topics } from '../ingest/topics.js';
import { randomBytes, randomUUID } from 'node:crypto';
import { signAckToken, newNonce, verifyAckToken, type AckClaims } from './ack-token.js';
import { createChannel as createConfiguredChannel } from './channels/index.js';
import type { Clock } from '../lib/clock.js';
import { isValidId } from '../lib/ids.js';
import { LEVEL_NAMES_ZH, LEVELS, levelRank, type Level } from '../lib/levels.js';
import type { Logger } from '../lib/logger.js';
import type { Counter, MetricsRegistry } from '../lib/metrics.js';
import type { AlertEventPoint } from '../ingest/storage.js';
import type { EscalationRef } from '../rules/config.js';
import type { RuleEvent } from '../rules/types.js';
import type { AlertFilter, AlertKey, AlertRecord, AlertStore, EscalationSchedule, HeldNotice, NotificationEvent, OutboxRow, SilenceRecord, TimelineEntry } from './store.js';
import { channelAddressing, FALLBACK_ESCALATION, requiredContactField, type ChannelConfig, type ContactConfig, type EscalationConfig, type Language, type NotifyTarget } from './config.js';
import { DueTimer } from './due-timer.js';
import { AlertError } from './errors.js';
import { dueSteps, mergeTargets, planRaise, scheduleFrom, selectPolicyId, type EscalationStep } from './escalation.js';
import type { AlertBody, AlertEventBody } from './event-body.js';
import { levelName, eventName } from './message-format.js';
import { OutboxSender, type Channel, type RetryOptions } from './outbox.js';
import { newSilenceId, silenceHold, silenceInputSchema, silenceState, silenceView, MAX_SILENCE_MS, type SilenceState, type SilenceSubject, type SilenceView } from './silences.js';
import { openAlert, transition, type AlertEvent, type AlertInput, type ResolveReason, type Transition } from './state-machine.js';
import { AlertRetention, DEFAULT_ALERT_RETENTION_MS, type RetentionOptions } from './retention.js';
import { TransitionQueue } from './transition-queue.js';

export type { AlertBody, AlertEventBody } from './event-body.js';

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
  /** Builds the sender of a configured channel (default: channels/index.ts). Tests plug in here. */
  createChannel?: (config: ChannelConfig) => Channel;
  retry?: Partial<RetryOptions>;
  /** How long an ack_url stays valid (default 24h); every repeat or escalation carries a fresh one. */
  ackLinkTtlMs?: number;
  /** Rule events that may wait for alerts.db before readings are refused (default 10,000). */
  maxQueuedTransitions?: number;
  /** Retry delays while alerts.db fails (default 500 ms doubling to 30 s). */
  storeRetry?: { baseDelayMs?: number; maxDelayMs?: number };
  /** How long resolved alerts are kept (default 400 days; see retention.ts). */
  retention?: RetentionOptions;
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

/** The rule id of the alerts raised when a delivery fails for good. */
export const DELIVERY_FAILED_RULE = 'delivery_failed';

/** The platform alert raised while alerts.db cannot store transitions, on the platform's pseudo-asset. */
export const STORE_FAILING_RULE = 'platform-alerts-db';
export const PLATFORM_ASSET = 'watchpost';

export const TRANSITIONS_WAITING_METRIC = 'watchpost_alert_transitions_waiting';
export const STORE_FAILURES_METRIC = 'watchpost_alert_store_failures_total';

/** What the alert stage reports for /healthz while transitions wait for alerts.db. */
export interface AlertStoreHealth {
  waiting: number;
  failing_since: string;
  error: string;
}

export const DEFAULT_ACK_LINK_TTL_MS = 24 * 3_600_000;

/** What the acknowledgement page shows for a link. */
export type AckLinkState =
  | { kind: 'invalid' }
  | { kind: 'expired'; language: Language }
  | { kind: 'used'; language: Language; alert: AlertView }
  | { kind: 'valid'; language: Language; alert: AlertView; timeline: TimelineEntryView[] };

/** The outcome of acknowledging through a link. */
export type AckLinkResult =
  | { kind: 'invalid' }
  | { kind: 'expired'; language: Language }
  | { kind: 'used'; language: Language; alert: AlertView }
  | { kind: 'resolved'; language: Language; alert: AlertView }
  | { kind: 'acknowledged'; language: Language; alert: AlertView; already: boolean };

/** Why an alert's notifications are held. */
interface Hold {
  reason: 'silence' | 'flapping';
  /** When the hold ends on its own (silences); undefined for flapping. */
  until?: number;
  silenceIds?: string[];
}

/** What an alert is opened from: a rule event, or the platform itself (delivery_failed). */
interface OpenSpec {
  ruleId: string;
  assetId: string;
  sensorId: string;
  metric: string;
  level: Level;
  value: number;
  threshold: AlertRecord['threshold'];
  ts: number;
  ruleName: string;
  assetName: string;
  assetType: string;
  street: string;
  /** Fixed message; undefined renders the rule's template. */
  message?: string;
  plan: string[];
  policy: EscalationConfig | undefined;
}

function keyString(k: AlertKey): string {
  return `${k.ruleId}\u0000${k.assetId}\u0000${k.sensorId}`;
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

/** Work waiting for alerts.db: a rule event (with the platform time it arrived), or the record of an outage. */
type Queued =
  | { kind: 'rule'; event: RuleEvent; at: number; applied: boolean }
  | { kind: 'delivery_failed'; row: OutboxRow; error: string; at: number; pointWritten: boolean }
  | { kind: 'outage'; alert: AlertRecord; until: number; stored: number };

function errorText(error: unknown): string {
  const text = error instanceof Error ? error.message : String(error);
  return text.length > 300 ? `${text.slice(0, 300)}…` : text;
}

export class AlertService {
  private readonly store: AlertStore;
  private readonly clock: Clock;
  private readonly logger: Logger;
  private readonly escalations: Map<string, EscalationConfig>;
  private readonly channelConfigs: Map<string, ChannelConfig>;
  private readonly contacts: Map<string, ContactConfig>;
  private readonly channels: Map<string, Channel>;
  private readonly outbox: OutboxSender;
  private readonly escalationTimer: DueTimer;
  private readonly fired: Counter;
  private ackKeyCache: Buffer | undefined;
  private openCounts = new Map<string, number>();
  /** Silences not deleted that had not ended when last loaded. */
  private silences: SilenceRecord[] = [];
  private flapping = new Set<string>();
  private running = false;
  private readonly transitions: TransitionQueue<Queued>;
  private readonly retention: AlertRetention;
  private readonly storeFailures: Counter;
  /** The platform alert of the current alerts.db outage, published and not yet stored. */
  private outage: AlertRecord | undefined;
  /** A flapping hold ended while applying rule events: held notifications are due. */
  private holdEnded = false;

  constructor(private readonly options: AlertServiceOptions) {
    this.store = options.store;
    this.clock = options.clock;
    this.logger = options.logger.child({ module: 'alerts' });
    this.escalations = new Map(options.escalations.map((e) => [e.id, e]));
    this.channelConfigs = new Map(options.channels.map((c) => [c.id, c]));
    this.contacts = new Map(options.contacts.map((c) => [c.id, c]));
    const createChannel = options.createChannel ?? ((config: ChannelConfig) => createConfiguredChannel(config, { clock: options.clock }));
    this.channels = new Map(options.channels.map((c) => [c.id, createChannel(c)]));
    this.outbox = new OutboxSender({
      store: options.store,
      clock: options.clock,
      logger: this.logger.child({ part: 'outbox' }),
      metrics: options.metrics,
      channels: this.channels,
      contacts: this.contacts,
      ...(options.retry ? { retry: options.retry } : {}),
      onFailed: (row, error) => this.onDeliveryFailed(row, error),
    });
    this.escalationTimer = new DueTimer(options.clock, () => this.runEscalations());
    this.transitions = new TransitionQueue<Queued>({
      clock: options.clock,
      apply: (item) => this.applyQueued(item),
      onFailing: (error, since, waiting) => this.storeFailing(error, since, waiting),
      onStillFailing: (error, since, waiting) => {
        this.storeFailures.inc();
        this.logger.warn({ err: error, waiting, failing_since: new Date(since).toISOString() }, 'alerts.db still cannot store alert transitions; retrying');
      },
      onRecovered: (since, stored) => this.storeRecovered(since, stored),
      afterRun: () => this.releaseEndedHolds(),
      ...(options.maxQueuedTransitions !== undefined ? { maxItems: options.maxQueuedTransitions } : {}),
      ...options.storeRetry,
    });
    this.retention = new AlertRetention(options.store, options.clock, this.logger.child({ part: 'retention' }), options.metrics, options.retention ?? { maxAgeMs: DEFAULT_ALERT_RETENTION_MS });
    this.storeFailures = options.metrics.counter(STORE_FAILURES_METRIC, 'Alert transactions that alerts.db failed to store (each is retried until stored).');
    options.metrics.gauge(TRANSITIONS_WAITING_METRIC, 'Rule events waiting in memory for alerts.db to store them.').collect(() => [[{}, this.transitions.size]]);
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
    this.loadHolds();
    try {
      this.store.pruneAckLinks(this.clock.now());
    } catch (error) {
      this.logger.warn({ err: error }, 'pruning used acknowledgement links failed');
    }
    this.outbox.start();
    this.runEscalations();
    this.retention.start();
  }

  /** The key that signs acknowledgement links: made once per data directory, kept in alerts.db. */
  private get ackKey(): Buffer {
    this.ackKeyCache ??= Buffer.from(this.store.meta('ack_link_key', () => randomBytes(32).toString('base64')), 'base64');
    return this.ackKeyCache;
  }

  /** Releases timers; deliveries in flight stay pending for the next start. */
  async stop(): Promise<void> {
    this.running = false;
    this.escalationTimer.clear();
    // A last attempt for what waits for alerts.db; what still fails is judged again from the next start's readings.
    this.retention.stop();
    this.transitions.flush();
    if (this.transitions.size > 0) this.logger.error({ waiting: this.transitions.size }, 'stopping with alert transitions that alerts.db did not store');
    await this.outbox.stop();
    for (const channel of this.channels.values()) (channel as Channel & { close?: () => void }).close?.();
  }

  /**
   * Applies rule events in order; each is its own transaction. A rule event may carry the rules
   * stage's flapping mark: `started` and `flapping` hold the notifications of its (rule, asset,
   * sensor) from this event on; `ended` (stable for one window) releases them after the event.
   * An event alerts.db cannot store waits, with all later ones, until it can (see the module comment).
   */
  handle(events: readonly RuleEvent[]): void {
    const at = this.clock.now();
    this.transitions.push(events.map((event) => ({ kind: 'rule', event, at, applied: false })));
  }

  /** False while so many rule events wait for alerts.db that readings should not be acknowledged. */
  accepting(): boolean {
    return this.transitions.accepting();
  }

  /** Set while rule events wait for alerts.db. */
  storeHealth(): AlertStoreHealth | undefined {
    const since = this.transitions.since;
    if (since === undefined) return undefined;
    return { waiting: this.transitions.size, failing_since: new Date(since).toISOString(), error: errorText(this.transitions.error) };
  }

  /** Stores one queued item; throws (to be retried, unchanged) when alerts.db cannot. */
  private applyQueued(item: Queued): void {
    if (item.kind === 'outage') {
      this.commit((effects) => this.recordOutage(item.alert, item.until, item.stored, effects));
      return;
    }
    if (item.kind === 'delivery_failed') {
      this.deliveryFailed(item);
      return;
    }
    const { event, at } = item;
    const mark = event.flapping;
    if (!item.applied) {
      if (mark === 'started' || mark === 'flapping') this.recordFlapping(event, true, at);
      this.commit((effects) => this.applyRuleEvent(event, at, effects));
      item.applied = true;
    }
    if (mark === 'ended' && this.recordFlapping(event, false, at) === 'ended') this.holdEnded = true;
  }

  private releaseEndedHolds(): void {
    if (!this.holdEnded) return;
    this.holdEnded = false;
    this.runEscalations();
  }

  /**
   * The rules stage reports that the alerts of (rule, asset, sensor) are flapping (true) or have
   * been stable for a window again (false). While flapping, their notifications are held; when it
   * ends, one notification per alert reflecting its state then is sent (see the module comment).
   * Kept in alerts.db, so a restart keeps holding.
   */
  setFlapping(key: AlertKey, flapping: boolean): void {
    let change: 'started' | 'ended' | 'unchanged';
    try {
      change = this.recordFlapping(key, flapping, this.clock.now());
    } catch (error) {
      this.logger.error({ err: error, rule_id: key.ruleId, asset_id: key.assetId, sensor_id: key.sensorId }, 'recording flapping failed');
      return;
    }
    if (change === 'ended') this.runEscalations();
  }

  isFlapping(key: AlertKey): boolean {
    return this.flapping.has(keyString(key));
  }

  /** Records a flapping hold starting or ending; throws when alerts.db cannot. */
  private recordFlapping(key: AlertKey, flapping: boolean, at: number): 'started' | 'ended' | 'unchanged' {
    const k = keyString(key);
    if (this.flapping.has(k) === flapping) return 'unchanged';
    this.store.setFlapping({ ruleId: key.ruleId, assetId: key.assetId, sensorId: key.sensorId }, flapping ? at : null);
    if (flapping) this.flapping.add(k);
    else this.flapping.delete(k);
    this.logger.info({ rule_id: key.ruleId, asset_id: key.assetId, sensor_id: key.sensorId, flapping }, flapping ? 'alert is flapping; notifications held' : 'alert is stable again; held notifications released');
    return flapping ? 'started' : 'ended';
  }

  private loadHolds(): void {
    try {
      this.silences = this.store.silencesEndingAfter(this.clock.now());
      this.flapping = new Set(this.store.flappingKeys().map(keyString));
    } catch (error) {
      this.logger.error({ err: error }, 'reading silences and flapping state failed');
    }
  }

  // ---- silences ----

  /** Silences, newest first: active and pending by default, or those of one state. */
  listSilences(state?: SilenceState): SilenceView[] {
    const now = this.clock.now();
    const rows = state === 'expired' ? this.store.expiredSilences(now) : this.store.silencesEndingAfter(now).filter((s) => state === undefined || silenceState(s, now) === state);
    return rows.sort((a, b) => b.createdAt - a.createdAt || (a.id < b.id ? 1 : -1)).map((s) => silenceView(s, now));
  }

  /** Creates a silence from the API body; throws invalid_request with the reason. */
  createSilence(input: unknown, by: string): SilenceView {
    const parsed = silenceInputSchema.safeParse(input);
    if (!parsed.success) {
      const first = parsed.error.issues[0]!;
      throw new AlertError('invalid_request', `body${first.path.length ? `.${first.path.join('.')}` : ''}: ${first.message}`);
    }
    const now = this.clock.now();
    const startsAt = parsed.data.starts_at !== undefined ? Date.parse(parsed.data.starts_at) : now;
    const endsAt = Date.parse(parsed.data.ends_at);
    if (endsAt <= startsAt) throw new AlertError('invalid_request', 'body.ends_at: must be after starts_at');
    if (endsAt <= now) throw new AlertError('invalid_request', 'body.ends_at: must be in the future');
    if (endsAt - startsAt > MAX_SILENCE_MS) throw new AlertError('invalid_request', `body.ends_at: a silence may last at most ${MAX_SILENCE_MS / 86_400_000} days`);
    const silence: SilenceRecord = {
      id: newSilenceId(),
      matchers: parsed.data.matchers,
      startsAt,
      endsAt,
      reason: parsed.data.reason,
      createdBy: by,
      createdAt: now,
      deletedAt: null,
      deletedBy: null,
    };
    this.store.insertSilence(silence);
    this.silences.push(silence);
    this.logger.info({ silence_id: silence.id, matchers: silence.matchers, starts_at: new Date(startsAt).toISOString(), ends_at: new Date(endsAt).toISOString(), by }, 'silence created');
    return silenceView(silence, now);
  }

  /** Ends a silence now; what it held is sent. Throws silence_not_found. */
  deleteSilence(id: string, by: string): void {
    if (!this.store.deleteSilence(id, this.clock.now(), by)) throw new AlertError('silence_not_found', `no silence with id "${id}"`);
    this.silences = this.silences.filter((s) => s.id !== id);
    this.logger.info({ silence_id: id, by }, 'silence deleted');
    this.runEscalations();
  }

  // ---- acknowledgement links ----

  /** What the page of an ack_url shows. */
  ackLink(token: string): AckLinkState {
    const check = verifyAckToken(this.ackKey, token, this.clock.now());
    if (!check.ok) return check.reason === 'expired' ? { kind: 'expired', language: check.claims!.language } : { kind: 'invalid' };
    const { claims } = check;
    const alert = this.store.getAlert(claims.alertId);
    if (!alert) return { kind: 'invalid' };
    if (this.store.ackLinkUsed(claims.nonce)) return { kind: 'used', language: claims.language, alert: this.view(alert) };
    return { kind: 'valid', language: claims.language, alert: this.view(alert), timeline: this.store.timeline(alert.id).filter((e) => e.kind === 'event').map(timelineView) };
  }

  /** Acknowledges through an ack_url; the link is used up by this, also when it finds the alert acknowledged. */
  acknowledgeByLink(token: string, note?: string): AckLinkResult {
    const now = this.clock.now();
    const check = verifyAckToken(this.ackKey, token, now);
    if (!check.ok) return check.reason === 'expired' ? { kind: 'expired', language: check.claims!.language } : { kind: 'invalid' };
    const { claims } = check;
    const language = claims.language;
    const current = this.store.getAlert(claims.alertId);
    if (!current) return { kind: 'invalid' };
    if (current.state === 'resolved') return { kind: 'resolved', language, alert: this.view(current) };
    const by = `link:${claims.channel}${claims.contact ? `/${claims.contact}` : ''}`;
    const cleanNote = note?.trim().slice(0, 2000) || undefined;
    let used = false;
    const alert = this.commit((effects) => {
      if (!this.store.useAckLink(claims.nonce, claims.alertId, now, claims.expiresAt)) {
        used = true;
        return current;
      }
      return this.operatorTransition(claims.alertId, { kind: 'acknowledge', by, ...(cleanNote ? { note: cleanNote } : {}) }, effects);
    });
    if (used) return { kind: 'used', language, alert: this.view(this.store.getAlert(claims.alertId) ?? current) };
    this.logger.info({ alert_id: alert.id, by }, 'alert acknowledged through its link');
    return { kind: 'acknowledged', language, alert: this.view(alert), already: current.state === 'acknowledged' };
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
    this.runEffects(effects);
    return result;
  }

  private runEffects(effects: readonly Effect[]): void {
    for (const effect of effects) {
      try {
        effect();
      } catch (error) {
        this.logger.error({ err: error }, 'an alert effect failed after the transition was recorded');
      }
    }
  }

  /** Applies a rule event as of `now`, the platform time it reached the alert stage. */
  private applyRuleEvent(event: RuleEvent, now: number, effects: Effect[]): void {
    const open = this.store.findOpenAlert(event.ruleId, event.assetId, event.sensorId);
    if (!open) {
      if (event.level !== null) this.open(event as RuleEvent & { level: Level }, now, effects);
      return;
    }
    const t = transition(open, { kind: 'rule', level: event.level, value: event.value, threshold: event.threshold, ts: event.ts, ...(event.reason ? { reason: event.reason } : {}) }, now);
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
    this.openFrom(
      {
        ruleId: event.ruleId,
        assetId: event.assetId,
        sensorId: event.sensorId,
        metric: event.metric,
        level: event.level,
        value: event.value,
        threshold: event.threshold,
        ts: event.ts,
        ruleName: rule?.name ?? event.ruleId,
        assetName: asset?.name ?? event.assetId,
        assetType: asset?.type ?? '',
        street: asset?.street ?? '',
        plan: [...(rule?.plan ?? [])],
        policy: this.policyFor(rule?.escalation, event.level, event.ruleId),
      },
      now,
      effects,
      rule,
    );
  }

  private openFrom(spec: OpenSpec, now: number, effects: Effect[], rule?: RuleInfo): AlertRecord {
    const { alert: core, event: firing } = openAlert({ kind: 'rule', level: spec.level, value: spec.value, threshold: spec.threshold, ts: spec.ts }, now);
    let alert: AlertRecord = {
      ...core,
      id: newAlertId(),
      ruleId: spec.ruleId,
      assetId: spec.assetId,
      sensorId: spec.sensorId,
      metric: spec.metric,
      startedAt: now,
      ruleName: spec.ruleName,
      assetName: spec.assetName,
      assetType: spec.assetType,
      street: spec.street,
      message: spec.message ?? '',
      plan: spec.plan,
      escalationPolicy: spec.policy?.id ?? null,
      lastTier: null,
      heldNotice: null,
    };
    if (spec.message === undefined) alert.message = this.renderMessage(alert, rule);
    this.store.insertAlert(alert);
    this.recordEvent(alert, firing, effects);
    const hold = this.holdOf(alert, now);
    if (hold) this.recordHeld(alert, hold, 'firing', now);
    if (spec.policy) alert = this.escalate(alert, spec.policy, scheduleFrom(spec.policy, alert.id, now, 0), now, effects);
    const level = alert.level;
    effects.push(() => this.fired.inc({ level }));
    this.afterChange(effects);
    return alert;
  }

  private applyTransition(before: AlertRecord, t: Transition<AlertRecord>, now: number, effects: Effect[]): AlertRecord {
    let alert = t.alert;
    const event = t.event;
    if ((event.type === 'level_raised' || event.type === 'level_dropped') && alert.ruleId !== DELIVERY_FAILED_RULE) {
      alert = { ...alert, message: this.renderMessage(alert, this.options.rules(alert.ruleId)) };
    }
    const hold = this.holdOf(alert, now);
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
        if (hold) {
          // Sent when the hold ends, to those notified by then plus the new level's tier 0.
          alert = { ...alert, escalationPolicy: plan.policyId, heldNotice: 'level_raised' };
          this.store.updateAlert(alert);
          this.recordEvent(alert, event, effects);
          this.recordHeld(alert, hold, 'level_raised', now);
        } else {
          alert = { ...alert, escalationPolicy: plan.policyId, lastTier: plan.targets.length > 0 ? tier : alert.lastTier, heldNotice: null };
          this.store.updateAlert(alert);
          this.recordEvent(alert, event, effects);
          this.enqueue(alert, 'level_raised', tier, plan.targets, now, effects);
        }
        const policy = plan.policyId ? this.escalations.get(plan.policyId) : undefined;
        if (policy) alert = this.escalate(alert, policy, plan.schedule, now, effects);
        else this.putSchedule(alert.id, undefined, effects);
        break;
      }
      case 'acknowledged':
      case 'resolved': {
        const notified = this.store.notifiedTargets(alert.id);
        if (hold) {
          // Those notified before the hold hear of it when the hold ends; nobody else needs to.
          alert = { ...alert, heldNotice: notified.length > 0 ? event.type : null };
          this.store.updateAlert(alert);
          this.recordEvent(alert, event, effects);
          if (notified.length > 0) this.recordHeld(alert, hold, event.type, now);
          this.putSchedule(alert.id, undefined, effects);
          break;
        }
        alert = { ...alert, heldNotice: null };
        this.store.updateAlert(alert);
        this.recordEvent(alert, event, effects);
        this.putSchedule(alert.id, undefined, effects);
        this.enqueue(alert, event.type, alert.lastTier ?? 0, notified, now, effects);
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
    if (this.holdOf(alert, now)) {
      // Held: due steps wait for the end of the hold; the schedule is kept as it is.
      this.putSchedule(alert.id, schedule, effects);
      return alert;
    }
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
    effects.push(() => this.armEscalationTimer());
  }

  /**
   * Escalation timer: releases held notifications whose hold ended, notifies every due tier and
   * repeat of alerts not held, then re-arms for the next due time or the end of a hold.
   */
  private runEscalations(): void {
    if (!this.running) return;
    const now = this.clock.now();
    let wake: number | undefined;
    const wakeAt = (at: number | undefined) => {
      if (at !== undefined) wake = wake === undefined ? at : Math.min(wake, at);
    };
    this.silences = this.silences.filter((s) => s.endsAt > now && s.deletedAt === null);
    try {
      for (const held of this.store.alertsWithHeldNotice()) {
        const hold = this.holdOf(held, now);
        if (hold) {
          wakeAt(hold.until);
          continue;
        }
        try {
          this.commit((effects) => this.release(held.id, now, effects));
        } catch (error) {
          this.logger.error({ err: error, alert_id: held.id }, 'releasing a held notification failed');
        }
      }
    } catch (error) {
      this.logger.error({ err: error }, 'reading held notifications failed');
    }
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
          const hold = this.holdOf(alert, now);
          if (hold) {
            wakeAt(hold.until);
            return;
          }
          this.escalate(alert, policy, schedule, now, effects);
        });
      } catch (error) {
        this.logger.error({ err: error, alert_id: schedule.alertId }, 'escalating an alert failed');
      }
    }
    try {
      wakeAt(this.store.nextScheduleDueAfter(now));
      this.escalationTimer.arm(wake);
    } catch (error) {
      this.logger.error({ err: error }, 'reading the escalation schedule failed');
    }
  }

  /**
   * Arms the escalation timer for the next due step or the next end of a silence (when held
   * notifications may be released); runEscalations() then works out exactly what is due.
   */
  private armEscalationTimer(): void {
    if (!this.running) return;
    const now = this.clock.now();
    let wake = this.store.nextScheduleDue();
    for (const s of this.silences) if (s.endsAt > now && (wake === undefined || s.endsAt < wake)) wake = s.endsAt;
    this.escalationTimer.arm(wake);
  }

  /** Sends an alert's held notice, reflecting its state now (see the module comment). */
  private release(alertId: string, now: number, effects: Effect[]): void {
    const current = this.store.getAlert(alertId);
    if (!current || current.heldNotice === null) return;
    const notified = this.store.notifiedTargets(current.id);
    let event: NotificationEvent;
    let targets: NotifyTarget[];
    if (current.state === 'firing') {
      const policy = current.escalationPolicy ? this.escalations.get(current.escalationPolicy) : undefined;
      targets = mergeTargets(notified, policy?.tiers[0]?.notify ?? []);
      event = notified.length > 0 ? 'level_raised' : 'firing';
    } else {
      targets = notified;
      event = current.state;
    }
    const alert: AlertRecord = { ...current, heldNotice: null, lastTier: targets.length > 0 ? Math.max(current.lastTier ?? 0, 0) : current.lastTier, updatedAt: current.updatedAt };
    this.store.updateAlert(alert);
    this.store.appendTimeline({
      alertId: alert.id,
      at: now,
      kind: 'event',
      type: 'released',
      level: alert.level,
      state: alert.state,
      tier: null,
      channel: null,
      deliveryId: null,
      detail: { held: current.heldNotice, event },
    });
    if (targets.length > 0) this.enqueue(alert, event, alert.lastTier ?? 0, targets, now, effects);
  }

  /** Why the alert's notifications are held at `now`, if they are. */
  private holdOf(alert: AlertRecord, now: number): Hold | undefined {
    if (this.flapping.has(keyString(alert))) return { reason: 'flapping' };
    const hold = silenceHold(this.silences, subjectOf(alert), now);
    return hold ? { reason: 'silence', until: hold.until, silenceIds: hold.silenceIds } : undefined;
  }

  private recordHeld(alert: AlertRecord, hold: Hold, notice: HeldNotice | 'firing', now: number): void {
    const detail: Record<string, unknown> = { reason: hold.reason, notice };
    if (hold.silenceIds) detail.silence_ids = hold.silenceIds;
    if (hold.until !== undefined) detail.until = new Date(hold.until).toISOString();
    this.store.appendTimeline({ alertId: alert.id, at: now, kind: 'event', type: 'held', level: alert.level, state: alert.state, tier: null, channel: null, deliveryId: null, detail });
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

  /**
   * Writes the outbox rows of one notification: one per group channel, one per contact on person
   * channels (sms, e-mail), each with its own delivery_id, serialized body and ack_url.
   */
  private enqueue(alert: AlertRecord, event: NotificationEvent, tier: number, targets: readonly NotifyTarget[], now: number, effects: Effect[]): void {
    let queued = 0;
    const write = (channel: ChannelConfig, recipients: string[]) => {
      const deliveryId = randomUUID();
      const language = 'language' in channel ? channel.language : 'zh';
      const ackUrl = this.ackLinkUrl({ alertId: alert.id, expiresAt: now, nonce: newNonce(), language, channel: channel.id, ...(recipients.length === 1 && channelAddressing(channel.type) === 'person' ? { contact: recipients[0]! } : {}) }, now);
      const body = JSON.stringify(this.eventBody(deliveryId, event, tier, alert, ackUrl));
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
    for (const target of mergeTargets(targets)) {
      const channel = this.channelConfigs.get(target.channel);
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
        const contact = this.contacts.get(contactId);
        if (!contact?.[field]) {
          this.logger.warn({ alert_id: alert.id, channel: channel.id, contact: contactId }, `contact has no ${field}; skipping it on this channel`);
          continue;
        }
        write(channel, [contactId]);
      }
    }
    if (queued > 0) effects.push(() => this.outbox.kick());
  }

  private afterChange(effects: Effect[]): void {
    effects.push(() => this.refreshOpenCounts());
  }

  private refreshOpenCounts(): void {
    this.openCounts = this.store.openCountsByLevel();
  }

  /**
   * A delivery failed for good: recorded on its alert by the outbox already; here the
   * alert_events point, and the delivery_failed alert for (asset, channel) to `fallback`. It
   * queues behind waiting rule events, so an alerts.db failure delays it instead of losing it.
   */
  private onDeliveryFailed(row: OutboxRow, error: string): void {
    this.transitions.push([{ kind: 'delivery_failed', row, error, at: this.clock.now(), pointWritten: false }]);
  }

  private deliveryFailed(item: Queued & { kind: 'delivery_failed' }): void {
    const { row, error, at: now } = item;
    const failed = this.store.getAlert(row.alertId);
    if (!failed) return;
    if (!item.pointWritten) {
      item.pointWritten = true;
      try {
        this.options.writeAlertEvent({ ruleId: failed.ruleId, assetId: failed.assetId, level: failed.level, event: 'delivery_failed', alertId: failed.id, value: failed.value, message: `${row.channelId} ${row.deliveryId}: ${error}`, ts: now });
      } catch (err) {
        this.logger.error({ err, alert_id: row.alertId }, 'writing the delivery_failed alert event failed');
      }
    }
    if (failed.ruleId === DELIVERY_FAILED_RULE) return;
    this.commit((effects) => this.raiseDeliveryFailed(failed, row, error, now, effects));
  }

  private raiseDeliveryFailed(failed: AlertRecord, row: OutboxRow, error: string, now: number, effects: Effect[]): void {
    const channel = this.channelConfigs.get(row.channelId);
    const language: Language = channel && 'language' in channel ? channel.language : 'zh';
    const shortError = error.length > 300 ? `${error.slice(0, 300)}…` : error;
    const message =
      language === 'zh'
        ? `通知渠道 ${row.channelId} 投递失败：${failed.assetName}「${failed.ruleName}」${levelName(failed.level, 'zh')}的${eventName(row.event, 'zh')}通知未送达（${shortError}）`
        : `Channel ${row.channelId} failed to deliver the ${eventName(row.event, 'en').toLowerCase()} notification of ${levelName(failed.level, 'en')} alert "${failed.ruleName}" on ${failed.assetName} (${shortError})`;
    const detail = { alert_id: failed.id, delivery_id: row.deliveryId, channel: row.channelId, event: row.event, error: shortError };
    let alert = this.store.findOpenAlert(DELIVERY_FAILED_RULE, failed.assetId, row.channelId);
    if (!alert) {
      const policy = this.escalations.get(FALLBACK_ESCALATION);
      alert = this.openFrom(
        {
          ruleId: DELIVERY_FAILED_RULE,
          assetId: failed.assetId,
          sensorId: row.channelId,
          metric: 'delivery',
          level: failed.level,
          value: 1,
          threshold: null,
          ts: now,
          ruleName: language === 'zh' ? '通知投递失败' : 'Notification delivery failed',
          assetName: failed.assetName,
          assetType: failed.assetType,
          street: failed.street,
          message,
          plan:
            language === 'zh'
              ? [`检查通知渠道 ${row.channelId} 的配置（地址、密钥、签名、关键词）与服务商状态`, '用其他方式通知原告警的值班人员']
              : [`Check channel ${row.channelId}: URL, secret, signature, keywords, provider status`, 'Reach the duty staff of the original alert another way'],
          policy,
        },
        now,
        effects,
      );
      if (!policy) this.logger.warn({ alert_id: alert.id, channel: row.channelId }, 'no escalation named "fallback": the delivery_failed alert is recorded and published, not notified');
    } else if (levelRank(failed.level) > levelRank(alert.level)) {
      const t = transition(alert, { kind: 'rule', level: failed.level, value: alert.value + 1, threshold: null, ts: now }, now);
      if (t) alert = this.applyTransition(alert, { ...t, alert: { ...t.alert, message } }, now, effects);
    }
    this.store.appendTimeline({ alertId: alert.id, at: now, kind: 'event', type: 'delivery_failed', level: alert.level, state: alert.state, tier: null, channel: row.channelId, deliveryId: null, detail });
  }

  // ---- alerts.db outages ----

  /** The first failure of a run: log, and publish the platform alert now (it is stored on recovery). */
  private storeFailing(error: unknown, since: number, waiting: number): void {
    this.storeFailures.inc();
    this.logger.error({ err: error, waiting }, 'alerts.db cannot store alert transitions; they wait in memory, in order, and are retried until stored');
    if (this.outage) return;
    const asset = this.options.assets(PLATFORM_ASSET);
    const { alert: core } = openAlert({ kind: 'rule', level: 'red', value: waiting, threshold: null, ts: since }, since);
    const policy = this.escalations.get(FALLBACK_ESCALATION);
    this.outage = {
      ...core,
      id: newAlertId(),
      ruleId: STORE_FAILING_RULE,
      assetId: PLATFORM_ASSET,
      sensorId: 'alerts-db',
      metric: 'transitions_waiting',
      startedAt: since,
      ruleName: 'Watchpost 告警库写入失败',
      assetName: asset?.name ?? PLATFORM_ASSET,
      assetType: asset?.type ?? '',
      street: asset?.street ?? '',
      message: `Watchpost 无法写入告警库 alerts.db（${errorText(error)}）：告警状态变化暂存于内存，按顺序重试，恢复后补记并通知`,
      plan: ['检查 data_dir 所在磁盘的空间、权限与 I/O 错误（Watchpost 日志、/healthz 的 alerts）', '暂存过多时 Watchpost 暂停确认设备数据，设备将重发'],
      escalationPolicy: policy?.id ?? null,
      lastTier: null,
      heldNotice: null,
    };
    const effects: Effect[] = [];
    this.publishEvent(this.outage, 'firing', 0, since, effects);
    this.runEffects(effects);
  }

  private storeRecovered(since: number, stored: number): void {
    this.logger.info({ stored, failing_since: new Date(since).toISOString() }, 'alerts.db stores alert transitions again; those that waited are stored');
    const alert = this.outage;
    this.outage = undefined;
    if (alert) this.transitions.push([{ kind: 'outage', alert, until: this.clock.now(), stored }]);
  }

  /** Records an outage's platform alert: firing when it began (already published), resolved at `until`; notified to `fallback`. */
  private recordOutage(alert: AlertRecord, until: number, stored: number, effects: Effect[]): void {
    this.store.insertAlert(alert);
    this.store.appendTimeline({ alertId: alert.id, at: alert.startedAt, kind: 'event', type: 'firing', level: alert.level, state: alert.state, tier: null, channel: null, deliveryId: null, detail: { value: alert.value, reading_ts: new Date(alert.eventTs).toISOString() } });
    let current = alert;
    const policy = alert.escalationPolicy ? this.escalations.get(alert.escalationPolicy) : undefined;
    if (policy) current = this.escalate(current, policy, scheduleFrom(policy, alert.id, alert.startedAt, 0), until, effects);
    const t = transition(current, { kind: 'rule', level: null, value: stored, threshold: null, ts: until, reason: 'store_recovered' }, until);
    if (t) this.applyTransition(current, t, until, effects);
    const level = alert.level;
    effects.push(() => this.fired.inc({ level }));
    this.afterChange(effects);
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

  /**
   * The alert's API resource: the ack_url of API views and MQTT events, which viewers and
   * observers read (a signed link there would let any of them acknowledge).
   */
  private apiUrl(id: string): string {
    return `${this.options.publicUrl.replace(/\/+$/, '')}/api/v1/alerts/${encodeURIComponent(id)}`;
  }

  /** A signed, single-use acknowledgement link (`expiresAt` is set from now and the TTL). */
  private ackLinkUrl(claims: AckClaims, now: number): string {
    const expiresAt = Math.floor((now + (this.options.ackLinkTtlMs ?? DEFAULT_ACK_LINK_TTL_MS)) / 1000) * 1000;
    return `${this.options.publicUrl.replace(/\/+$/, '')}/ack/${signAckToken(this.ackKey, { ...claims, expiresAt })}`;
  }

  private eventBody(deliveryId: string, event: AlertEventBody['event'], tier: number, alert: AlertRecord, ackUrl?: string): AlertEventBody {
    return { delivery_id: deliveryId, event, tier, alert: this.alertBody(alert, ackUrl) };
  }

  private alertBody(a: AlertRecord, ackUrl?: string): AlertBody {
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
      ack_url: ackUrl ?? this.apiUrl(a.id),
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

function subjectOf(a: AlertRecord): SilenceSubject {
  return { asset_id: a.assetId, rule_id: a.ruleId, street: a.street, level: a.level, asset_type: a.assetType };
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
