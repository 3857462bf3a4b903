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
 * - Cluster mode (`cluster` option): several instances share one store. Any instance applies rule
 *   events and API actions; the escalation schedule, ack deadlines, overdue work orders, ends of
 *   holds, the outbox and retention run on the leader only, which takes them from the store when it
 *   becomes leader. Silences and flapping marks are re-read every poll; the sender claims each row
 *   before an attempt (store.claimOutbox); an alert another instance opened first is found and
 *   changed instead (Transitions.commit).
 *
 * The parts: transitions.ts (state machine, records, commit), notifier.ts (timeline, MQTT and
 * outbox rows), holds.ts (silences, flapping), escalation-runner.ts (the timer), ack-links.ts,
 * delivery-failed.ts, store-outage.ts and transition-queue.ts (alerts.db failing),
 * alert-views.ts (API views), retention.ts; this class builds them and is the stage's API.
 */
import type { Clock } from '../lib/clock.js';
import type { Logger } from '../lib/logger.js';
import { createChannel as createConfiguredChannel } from './channels/index.js';
import type { RuleEvent } from '../rules/types.js';
import { AckLinks, type AckLinkResult, type AckLinkState } from './ack-links.js';
import {
  DEFAULT_CLAIM_TTL_MS,
  DEFAULT_CLUSTER_POLL_MS,
  errorText,
  TRANSITIONS_WAITING_METRIC,
  type AlertClusterOptions,
  type AlertContext,
  type AlertServiceOptions,
  type AlertStoreHealth,
  type OperatorAction,
} from './alert-types.js';
import { AlertViews, timelineView, type AlertDetail, type AlertView } from './alert-views.js';
import type { ChannelConfig, ContactConfig, DepartmentConfig, EscalationConfig, ScheduleConfig } from './config.js';
import { DeliveryFailedAlerts, type DeliveryFailure } from './delivery-failed.js';
import { DueTimer } from './due-timer.js';
import { AlertError } from './errors.js';
import { EscalationRunner } from './escalation-runner.js';
import { Holds } from './holds.js';
import { Notifier } from './notifier.js';
import { OutboxSender, type Channel } from './outbox.js';
import { AlertRetention, DEFAULT_ALERT_RETENTION_MS } from './retention.js';
import {
  Cases,
  type CloseInput,
  type DispatchInput,
  type OnCallView,
  type OverrideView,
  type StepInput,
  type WorkOrderAction,
  type WorkOrderLinkResult,
  type WorkOrderLinkState,
  type WorkOrderView,
} from './cases.js';
import type { DismissReason } from './case-machine.js';
import type { WorkOrderFilter } from './store.js';
import type { SilenceState, SilenceView } from './silences.js';
import type { ResolveReason } from './state-machine.js';
import { StoreOutage, type OutageRecord } from './store-outage.js';
import type { AlertFilter, AlertKey, AlertRecord, AlertStore, OutboxRow } from './store.js';
import { TransitionQueue } from './transition-queue.js';
import { Transitions } from './transitions.js';

export type { AlertBody, AlertEventBody } from './event-body.js';
export type { AckLinkResult, AckLinkState } from './ack-links.js';
export { DEFAULT_ACK_LINK_TTL_MS } from './ack-links.js';
export * from './alert-types.js';
export type { AlertDetail, AlertView, TimelineEntryView } from './alert-views.js';

/** Cluster mode: how long stop() lets deliveries in flight finish, so their claims end with their outcome. */
const STOP_GRACE_MS = 5000;

/** The promise of one handle() call: settled once its last event is stored, or rejected at stop. */
interface Settle {
  resolve: () => void;
  reject: (error: Error) => void;
}

/**
 * Work waiting for alerts.db: a rule event (with the platform time it arrived; the last of a
 * handle() call carries that call's promise), a failed delivery, or the record of an outage.
 */
type Queued = { kind: 'rule'; event: RuleEvent; at: number; applied: boolean; settle?: Settle } | DeliveryFailure | OutageRecord;

/** The parts of the configuration the alert stage reads at each notification; a reload replaces them (`updateConfig`). */
export interface AlertConfigUpdate {
  escalations: readonly EscalationConfig[];
  channels: readonly ChannelConfig[];
  contacts: readonly ContactConfig[];
  departments: readonly DepartmentConfig[];
  schedules: readonly ScheduleConfig[];
}

/** Fills `map` with `items` by id, in place: the parts that hold the map see the new contents. */
function refill<T extends { id: string }>(map: ReadonlyMap<string, T>, items: readonly T[]): void {
  const target = map as Map<string, T>;
  target.clear();
  for (const item of items) target.set(item.id, item);
}

export class AlertService {
  private readonly store: AlertStore;
  private readonly clock: Clock;
  private readonly logger: Logger;
  private readonly channels: Map<string, Channel>;
  private readonly ctx: AlertContext;
  private readonly createChannel: (config: ChannelConfig) => Channel;
  private readonly outbox: OutboxSender;
  private readonly views: AlertViews;
  private readonly holds: Holds;
  private readonly notifier: Notifier;
  private readonly transitions: Transitions;
  private readonly escalationRunner: EscalationRunner;
  private readonly ackLinks: AckLinks;
  private readonly cases: Cases;
  private readonly deliveryFailures: DeliveryFailedAlerts;
  private readonly outage: StoreOutage;
  private readonly queue: TransitionQueue<Queued>;
  private readonly retention: AlertRetention;
  /** A flapping hold ended while applying rule events: held notifications are due. */
  private holdEnded = false;
  private readonly cluster: AlertClusterOptions | undefined;
  /** Cluster mode: re-reads the shared store's holds and due times, checks leadership. */
  private readonly pollTimer: DueTimer;
  private started = false;
  /** Running the leader's work (always, without a cluster, once started). */
  private leading = false;
  /** Promises of handle() calls whose events are not stored yet. */
  private readonly unsettled = new Set<Settle>();

  constructor(options: AlertServiceOptions) {
    const logger = options.logger.child({ module: 'alerts' });
    const ctx: AlertContext = {
      options,
      store: options.store,
      clock: options.clock,
      logger,
      escalations: new Map(options.escalations.map((e) => [e.id, e])),
      channelConfigs: new Map(options.channels.map((c) => [c.id, c])),
      contacts: new Map(options.contacts.map((c) => [c.id, c])),
      departments: new Map((options.departments ?? []).map((d) => [d.id, d])),
      schedules: new Map((options.schedules ?? []).map((s) => [s.id, s])),
    };
    this.ctx = ctx;
    this.store = options.store;
    this.clock = options.clock;
    this.logger = logger;
    const createChannel = options.createChannel ?? ((config: ChannelConfig) => createConfiguredChannel(config, { clock: options.clock }));
    this.createChannel = createChannel;
    this.channels = new Map(options.channels.map((c) => [c.id, createChannel(c)]));
    this.cluster = options.cluster;
    this.pollTimer = new DueTimer(options.clock, () => this.poll());
    const cluster = options.cluster;
    const pollMs = cluster?.pollIntervalMs ?? DEFAULT_CLUSTER_POLL_MS;
    const longestTimeout = Math.max(0, ...options.channels.map((c) => c.timeout));
    this.outbox = new OutboxSender({
      store: options.store,
      clock: options.clock,
      logger: logger.child({ part: 'outbox' }),
      metrics: options.metrics,
      channels: this.channels,
      contacts: ctx.contacts,
      ...(options.retry ? { retry: options.retry } : {}),
      onFailed: (row, error) => this.onDeliveryFailed(row, error),
      resolve: (row, now) => this.notifier.recipients.resolveRow(row, now),
      resolveRecipients: (ids, now) => this.notifier.recipients.resolve(ids, now),
      ...(cluster ? { cluster: { owner: cluster.instanceId, claimTtlMs: cluster.claimTtlMs ?? Math.max(DEFAULT_CLAIM_TTL_MS, 2 * longestTimeout), retryMs: pollMs } } : {}),
    });
    this.views = new AlertViews(options.publicUrl, (alertId) => options.store.getCase(alertId));
    this.holds = new Holds(options.store, options.clock, logger, () => this.escalationRunner.run());
    this.notifier = new Notifier(
      ctx,
      this.views,
      (claims, now) => this.ackLinks.url(claims, now),
      () => this.outbox.kick(),
    );
    this.transitions = new Transitions(ctx, this.holds, this.notifier, () => this.escalationRunner.arm());
    this.escalationRunner = new EscalationRunner(ctx, this.transitions, this.holds, this.notifier);
    this.ackLinks = new AckLinks(ctx, this.views, this.transitions);
    this.cases = new Cases(ctx, this.transitions, this.notifier, () => this.ackLinks.ackKey);
    this.transitions.onAcknowledged = (alert, now, effects) => this.cases.acknowledged(alert, now, effects);
    this.deliveryFailures = new DeliveryFailedAlerts(ctx, this.transitions);
    this.outage = new StoreOutage(ctx, this.transitions);
    this.queue = new TransitionQueue<Queued>({
      clock: options.clock,
      apply: (item) => this.applyQueued(item),
      onFailing: (error, since, waiting) => this.outage.failing(error, since, waiting),
      onStillFailing: (error, since, waiting) => this.outage.stillFailing(error, since, waiting),
      onRecovered: (since, stored) => {
        const record = this.outage.recovered(since, stored);
        if (record) this.queue.push([record]);
      },
      afterRun: () => this.releaseEndedHolds(),
      ...(options.maxQueuedTransitions !== undefined ? { maxItems: options.maxQueuedTransitions } : {}),
      ...options.storeRetry,
    });
    options.metrics.gauge(TRANSITIONS_WAITING_METRIC, 'Rule events waiting in memory for alerts.db to store them.').collect(() => [[{}, this.queue.size]]);
    this.retention = new AlertRetention(options.store, options.clock, logger.child({ part: 'retention' }), options.metrics, options.retention ?? { maxAgeMs: DEFAULT_ALERT_RETENTION_MS });
  }

  /**
   * Resumes pending notifications and escalation timers (overdue tiers are notified now). In a
   * cluster only the leader does that (now, or when it becomes leader); every instance polls.
   */
  start(): void {
    this.started = true;
    this.transitions.refreshOpenCounts();
    this.holds.load();
    if (!this.cluster) {
      this.startLeading();
      return;
    }
    this.leadershipChanged();
    this.pollTimer.arm(this.clock.now() + this.pollInterval());
  }

  /**
   * Cluster mode: leadership may have changed (the lease holder calls this at once; the poll
   * also checks isLeader() every pollIntervalMs). A new leader takes everything from the store:
   * pending notifications, due tiers, deadlines, holds; one that lost it stops sending (deliveries
   * in flight finish and are recorded) and stops its timers.
   */
  leadershipChanged(): void {
    if (!this.cluster || !this.started) return;
    let leader = false;
    try {
      leader = this.cluster.isLeader();
    } catch (error) {
      this.logger.error({ err: error }, 'asking for the cluster leadership failed; acting as a follower');
    }
    if (leader === this.leading) return;
    this.logger.info(
      { instance_id: this.cluster.instanceId, leader },
      leader ? 'leading the alert stage: escalation, deadlines and notifications run here' : 'no longer leading the alert stage',
    );
    if (leader) {
      this.holds.load();
      this.startLeading();
    } else this.stopLeading();
  }

  /** Whether this instance runs the cluster's once-only work now (always true without a cluster, once started). */
  isLeading(): boolean {
    return this.leading;
  }

  private startLeading(): void {
    this.leading = true;
    try {
      this.store.pruneAckLinks(this.clock.now());
    } catch (error) {
      this.logger.warn({ err: error }, 'pruning used acknowledgement links failed');
    }
    this.outbox.start();
    this.escalationRunner.start();
    this.cases.start();
    this.retention.start();
  }

  private stopLeading(): void {
    this.leading = false;
    this.escalationRunner.stop();
    this.cases.stop();
    this.retention.stop();
    this.outbox.pause();
  }

  private pollInterval(): number {
    return Math.max(10, this.cluster?.pollIntervalMs ?? DEFAULT_CLUSTER_POLL_MS);
  }

  /**
   * Cluster mode, every pollIntervalMs: silences and flapping marks as the store has them (so a
   * silence set on another instance holds here), the open counts, the leadership; the leader
   * then looks for what other instances wrote: outbox rows, schedules, deadlines, ended holds.
   */
  private poll(): void {
    if (!this.started) return;
    try {
      const ended = this.holds.load();
      this.transitions.refreshOpenCounts();
      this.leadershipChanged();
      if (this.leading) {
        if (ended) this.escalationRunner.run();
        else this.escalationRunner.arm();
        this.cases.arm();
        this.outbox.kick();
      }
    } catch (error) {
      this.logger.error({ err: error }, 'polling the shared alert store failed');
    }
    this.pollTimer.arm(this.clock.now() + this.pollInterval());
  }

  /** Releases timers; deliveries in flight stay pending for the next start. */
  async stop(): Promise<void> {
    this.started = false;
    this.leading = false;
    this.pollTimer.clear();
    this.escalationRunner.stop();
    this.cases.stop();
    this.retention.stop();
    // A last attempt for what waits for alerts.db; what still fails is judged again from the next start's readings.
    this.queue.flush();
    if (this.queue.size > 0) this.logger.error({ waiting: this.queue.size }, 'stopping with alert transitions that alerts.db did not store');
    for (const settle of [...this.unsettled]) settle.reject(new Error('the alert stage stopped before it stored these rule events'));
    this.unsettled.clear();
    await this.outbox.stop(this.cluster ? STOP_GRACE_MS : 0);
    for (const channel of this.channels.values()) (channel as Channel & { close?: () => void }).close?.();
  }

  /**
   * Applies rule events in order; each is its own transaction. A rule event may carry the rules
   * stage's flapping mark: `started` and `flapping` hold the notifications of its (rule, asset,
   * sensor) from this event on; `ended` (stable for one window) releases them after the event.
   * An event alerts.db cannot store waits, with all later ones, until it can (transition-queue.ts).
   * The promise resolves once every one of these events is stored (committed); it rejects when the
   * stage stops first. Ignoring it is safe: the events are applied all the same.
   */
  handle(events: readonly RuleEvent[]): Promise<void> {
    if (events.length === 0) return Promise.resolve();
    const at = this.clock.now();
    let settle!: Settle;
    const stored = new Promise<void>((resolve, reject) => {
      settle = {
        resolve: () => {
          this.unsettled.delete(settle);
          resolve();
        },
        reject,
      };
    });
    // A caller that does not wait must not see an unhandled rejection at stop.
    stored.catch(() => undefined);
    this.unsettled.add(settle);
    const items: Queued[] = events.map((event) => ({ kind: 'rule', event, at, applied: false }));
    (items[items.length - 1] as Queued & { kind: 'rule' }).settle = settle;
    this.queue.push(items);
    return stored;
  }

  /** False while so many rule events wait for alerts.db that readings should not be acknowledged. */
  accepting(): boolean {
    return this.queue.accepting();
  }

  /** Set while rule events wait for alerts.db. */
  storeHealth(): AlertStoreHealth | undefined {
    const since = this.queue.since;
    if (since === undefined) return undefined;
    return { waiting: this.queue.size, failing_since: new Date(since).toISOString(), error: errorText(this.queue.error) };
  }

  /** Stores one queued item; throws (to be retried, unchanged) when alerts.db cannot. */
  private applyQueued(item: Queued): void {
    if (item.kind === 'outage') {
      this.outage.record(item);
      return;
    }
    if (item.kind === 'delivery_failed') {
      this.deliveryFailures.apply(item);
      return;
    }
    const { event, at } = item;
    const mark = event.flapping;
    if (!item.applied) {
      if (mark === 'started' || mark === 'flapping') this.holds.recordFlapping(event, true, at);
      this.transitions.commit((effects) => this.transitions.applyRuleEvent(event, at, effects));
      item.applied = true;
    }
    if (mark === 'ended' && this.holds.recordFlapping(event, false, at) === 'ended') this.holdEnded = true;
    item.settle?.resolve();
  }

  private releaseEndedHolds(): void {
    if (!this.holdEnded) return;
    this.holdEnded = false;
    this.escalationRunner.run();
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
      change = this.holds.recordFlapping(key, flapping, this.clock.now());
    } catch (error) {
      this.logger.error({ err: error, rule_id: key.ruleId, asset_id: key.assetId, sensor_id: key.sensorId }, 'recording flapping failed');
      return;
    }
    if (change === 'ended') this.escalationRunner.run();
  }

  isFlapping(key: AlertKey): boolean {
    return this.holds.isFlapping(key);
  }

  // ---- silences ----

  /** Silences, newest first: active and pending by default, or those of one state. */
  listSilences(state?: SilenceState): SilenceView[] {
    return this.holds.listSilences(state);
  }

  /** Creates a silence from the API body; throws invalid_request with the reason. */
  createSilence(input: unknown, by: string): SilenceView {
    return this.holds.createSilence(input, by);
  }

  /** Ends a silence now; what it held is sent. Throws silence_not_found. */
  deleteSilence(id: string, by: string): void {
    this.holds.deleteSilence(id, by);
  }

  // ---- acknowledgement links ----

  /** What the page of an ack_url shows. */
  ackLink(token: string): AckLinkState {
    return this.ackLinks.page(token);
  }

  /** Acknowledges through an ack_url; the link is used up by this, also when it finds the alert acknowledged. */
  acknowledgeByLink(token: string, note?: string): AckLinkResult {
    return this.ackLinks.acknowledge(token, note);
  }

  // ---- operator actions and views ----

  acknowledge(id: string, action: OperatorAction): AlertView {
    checkAction(action);
    const alert = this.transitions.commit((effects) => this.transitions.operatorTransition(id, { kind: 'acknowledge', by: action.by, ...noteOf(action) }, effects));
    return this.views.view(alert);
  }

  resolve(id: string, action: OperatorAction): AlertView {
    checkAction(action);
    const alert = this.transitions.commit((effects) => this.transitions.operatorTransition(id, { kind: 'resolve', by: action.by, reason: 'operator', ...noteOf(action) }, effects));
    return this.views.view(alert);
  }

  /**
   * Takes a reloaded configuration's escalations, channels, contacts, departments and schedules:
   * the next notification, escalation step or work order uses them. Open alerts, their escalation
   * schedules and pending outbox rows are kept; a changed channel gets a new sender (its old one
   * finishes the delivery in flight), a removed one is closed (its pending rows fail as for an
   * unknown channel).
   */
  updateConfig(next: AlertConfigUpdate): void {
    const before = this.ctx.channelConfigs;
    const changed: string[] = [];
    for (const [id, channel] of [...this.channels]) {
      const config = next.channels.find((c) => c.id === id);
      if (config && JSON.stringify(config) === JSON.stringify(before.get(id))) continue;
      (channel as Channel & { close?: () => void }).close?.();
      this.channels.delete(id);
    }
    for (const config of next.channels) {
      if (this.channels.has(config.id)) continue;
      this.channels.set(config.id, this.createChannel(config));
      changed.push(config.id);
    }
    refill(this.ctx.escalations, next.escalations);
    refill(this.ctx.channelConfigs, next.channels);
    refill(this.ctx.contacts, next.contacts);
    refill(this.ctx.departments, next.departments);
    refill(this.ctx.schedules, next.schedules);
    this.outbox.channelsChanged(changed);
    this.escalationRunner.arm();
  }

  /** Resolves every open alert of an asset that is no longer configured (reason `asset_removed`); returns how many. */
  resolveForRemovedAsset(assetId: string, options: { note?: string } = {}): number {
    let count = 0;
    for (const open of this.store.openAlerts()) {
      if (open.assetId !== assetId) continue;
      try {
        this.transitions.commit((effects) =>
          this.transitions.operatorTransition(open.id, { kind: 'resolve', by: 'system', reason: 'asset_removed', ...(options.note ? { note: options.note } : {}) }, effects),
        );
        count++;
      } catch (error) {
        // Another instance of a cluster, reloading the same configuration, resolved it first.
        if (error instanceof AlertError && error.code === 'alert_resolved') continue;
        this.logger.error({ err: error, alert_id: open.id, asset_id: assetId }, 'resolving an alert of a removed asset failed');
      }
    }
    return count;
  }

  /** Resolves every open alert of a rule that is no longer configured; returns how many. */
  resolveForRemovedRule(ruleId: string, options: { reason?: ResolveReason; note?: string } = {}): number {
    let count = 0;
    for (const open of this.store.openAlerts(ruleId)) {
      try {
        this.transitions.commit((effects) =>
          this.transitions.operatorTransition(open.id, { kind: 'resolve', by: 'system', reason: options.reason ?? 'rule_removed', ...(options.note ? { note: options.note } : {}) }, effects),
        );
        count++;
      } catch (error) {
        if (error instanceof AlertError && error.code === 'alert_resolved') continue;
        this.logger.error({ err: error, alert_id: open.id, rule_id: ruleId }, 'resolving an alert of a removed rule failed');
      }
    }
    return count;
  }

  // ---- the disposal loop (cases.ts) ----

  verify(id: string, action: StepInput): AlertView {
    checkAction(action);
    return this.views.view(this.cases.verify(id, action));
  }

  dismiss(id: string, reason: DismissReason, action: StepInput): AlertView {
    checkAction(action);
    return this.views.view(this.cases.dismiss(id, reason, action));
  }

  dispatch(id: string, input: DispatchInput): { alert: AlertView; work_order: WorkOrderView } {
    checkAction(input);
    const { alert, workOrder } = this.cases.dispatch(id, input);
    return { alert: this.views.view(alert), work_order: workOrder };
  }

  close(id: string, input: CloseInput): AlertView {
    checkAction(input);
    return this.views.view(this.cases.close(id, input));
  }

  workOrders(filter: WorkOrderFilter = {}): WorkOrderView[] {
    return this.cases.listWorkOrders(filter);
  }

  onCall(): OnCallView[] {
    return this.cases.onCall();
  }

  createOverride(scheduleId: string, input: { member: string; starts_at: string; ends_at: string }, by: string): OverrideView {
    return this.cases.createOverride(scheduleId, input, by);
  }

  /** What the phone page of a work-order link shows. */
  workOrderLink(token: string): WorkOrderLinkState {
    return this.cases.linkPage(token);
  }

  /** arrive, feedback or close through a work-order link. */
  actOnWorkOrder(token: string, action: WorkOrderAction, note?: string): WorkOrderLinkResult {
    if (note !== undefined && note.length > 2000) throw new AlertError('invalid_request', '"note" must be a string of at most 2000 characters');
    return this.cases.actByLink(token, action, note);
  }

  list(filter: AlertFilter = {}): AlertView[] {
    return this.viewsOf(this.store.listAlerts(filter));
  }

  /** API views of many alerts, their cases read in one query (not one per alert: a round trip each in PostgreSQL). */
  private viewsOf(alerts: readonly AlertRecord[]): AlertView[] {
    const cases = this.store.getCases(alerts.map((a) => a.id));
    return alerts.map((a) => this.views.view(a, cases.get(a.id)));
  }

  /** One alert with its whole timeline; throws alert_not_found. */
  get(id: string): AlertDetail {
    const alert = this.store.getAlert(id);
    if (!alert) throw new AlertError('alert_not_found', `no alert with id "${id}"`);
    return { ...this.views.view(alert), timeline: this.store.timeline(id).map(timelineView) };
  }

  openAlerts(): AlertView[] {
    return this.viewsOf(this.store.openAlerts());
  }

  /**
   * A delivery failed for good: recorded on its alert by the outbox already; the alert_events
   * point and the delivery_failed alert (delivery-failed.ts) queue behind waiting rule events, so
   * an alerts.db failure delays them instead of losing them.
   */
  private onDeliveryFailed(row: OutboxRow, error: string): void {
    this.queue.push([{ kind: 'delivery_failed', row, error, at: this.clock.now(), pointWritten: false }]);
  }
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
