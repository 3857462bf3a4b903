/**
 * The platform alert `platform-alerts-db` of an alerts.db outage: published on MQTT (and as an
 * alert_events point) when the first transaction fails, since it cannot be stored then; recorded
 * once alerts.db works again (firing at the first failure, resolved at the recovery, reason
 * `store_recovered`) and notified to the escalation named `fallback`.
 */
import { randomUUID } from 'node:crypto';
import type { Logger } from '../lib/logger.js';
import type { Counter } from '../lib/metrics.js';
import { alertTopic, errorText, newAlertId, PLATFORM_ASSET, STORE_FAILING_RULE, STORE_FAILURES_METRIC, type AlertContext, type Effect } from './alert-types.js';
import { AlertViews } from './alert-views.js';
import { FALLBACK_ESCALATION } from './config.js';
import { scheduleFrom } from './escalation.js';
import { openAlert, transition } from './state-machine.js';
import type { AlertRecord, AlertStore } from './store.js';
import type { Transitions } from './transitions.js';

/** The record of an outage, waiting (behind what waited during it) to be stored. */
export interface OutageRecord {
  kind: 'outage';
  alert: AlertRecord;
  until: number;
  stored: number;
}

export class StoreOutage {
  private readonly store: AlertStore;
  private readonly logger: Logger;
  private readonly storeFailures: Counter;
  /** The platform alert of the current outage, published and not yet stored. */
  private outage: AlertRecord | undefined;
  /** Views that read nothing from the store. */
  private readonly views: AlertViews;

  constructor(
    private readonly ctx: AlertContext,
    private readonly transitions: Transitions,
  ) {
    this.store = ctx.store;
    this.logger = ctx.logger;
    this.views = new AlertViews(ctx.options.publicUrl);
    this.storeFailures = ctx.options.metrics.counter(STORE_FAILURES_METRIC, 'Alert transactions that alerts.db failed to store (each is retried until stored).');
  }

  /** The first failure of a run: log, and publish the platform alert now (it is stored on recovery). */
  failing(error: unknown, since: number, waiting: number): void {
    this.storeFailures.inc();
    this.logger.error({ err: error, waiting }, 'alerts.db cannot store alert transitions; they wait in memory, in order, and are retried until stored');
    if (this.outage) return;
    const asset = this.ctx.options.assets(PLATFORM_ASSET);
    const { alert: core } = openAlert({ kind: 'rule', level: 'red', value: waiting, threshold: null, ts: since }, since);
    const policy = this.ctx.escalations.get(FALLBACK_ESCALATION);
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
    this.publishFiring(this.outage);
  }

  /**
   * Publishes the outage's `firing` on MQTT and as an alert_events point, built without reading
   * the store (which is failing; the alert has no case or notifications yet). Best effort.
   */
  private publishFiring(alert: AlertRecord): void {
    try {
      const payload = JSON.stringify(this.views.eventBody(randomUUID(), 'firing', 0, alert));
      const topic = alertTopic(alert.level, alert.assetId);
      if (topic) this.ctx.options.publish(topic, payload);
      this.ctx.options.writeAlertEvent({
        ruleId: alert.ruleId,
        assetId: alert.assetId,
        level: alert.level,
        event: 'firing',
        alertId: alert.id,
        value: alert.value,
        message: alert.message,
        ts: alert.startedAt,
      });
    } catch (error) {
      this.logger.error({ err: error, alert_id: alert.id }, 'publishing the alerts.db platform alert failed; it is recorded when alerts.db works again');
    }
  }

  /** A retry failed again. */
  stillFailing(error: unknown, since: number, waiting: number): void {
    this.storeFailures.inc();
    this.logger.warn({ err: error, waiting, failing_since: new Date(since).toISOString() }, 'alerts.db still cannot store alert transitions; retrying');
  }

  /** Everything that waited is stored: returns the outage's record, to be stored next. */
  recovered(since: number, stored: number): OutageRecord | undefined {
    this.logger.info({ stored, failing_since: new Date(since).toISOString() }, 'alerts.db stores alert transitions again; those that waited are stored');
    const alert = this.outage;
    this.outage = undefined;
    return alert ? { kind: 'outage', alert, until: this.ctx.clock.now(), stored } : undefined;
  }

  /** Stores an outage's record; throws (to be retried) when alerts.db cannot. */
  record(item: OutageRecord): void {
    this.transitions.commit((effects) => this.recordOutage(item.alert, item.until, item.stored, effects));
  }

  /** Records an outage's platform alert: firing when it began (already published), resolved at `until`; notified to `fallback`. */
  private recordOutage(alert: AlertRecord, until: number, stored: number, effects: Effect[]): void {
    this.store.insertAlert(alert);
    this.store.appendTimeline({
      alertId: alert.id,
      at: alert.startedAt,
      kind: 'event',
      type: 'firing',
      level: alert.level,
      state: alert.state,
      tier: null,
      channel: null,
      deliveryId: null,
      detail: { value: alert.value, reading_ts: new Date(alert.eventTs).toISOString() },
    });
    let current = alert;
    const policy = alert.escalationPolicy ? this.ctx.escalations.get(alert.escalationPolicy) : undefined;
    if (policy) current = this.transitions.escalate(current, policy, scheduleFrom(policy, alert.id, alert.startedAt, 0), until, effects);
    const t = transition(current, { kind: 'rule', level: null, value: stored, threshold: null, ts: until, reason: 'store_recovered' }, until);
    if (t) this.transitions.applyTransition(current, t, until, effects);
    const level = alert.level;
    effects.push(() => this.transitions.countFired(level));
    this.transitions.afterChange(effects);
  }
}
