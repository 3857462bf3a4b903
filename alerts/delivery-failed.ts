/**
 * A delivery that fails for good opens (or raises) a `delivery_failed` alert for (asset, channel)
 * that goes to the escalation named `fallback`; failures of those alerts' own deliveries are
 * recorded and logged only, so a broken fallback cannot loop.
 */
import type { Logger } from '../lib/logger.js';
import { levelRank } from '../lib/levels.js';
import { DELIVERY_FAILED_RULE, type AlertContext, type Effect } from './alert-types.js';
import { FALLBACK_ESCALATION, type Language } from './config.js';
import { eventName, levelName } from './message-format.js';
import { transition } from './state-machine.js';
import type { AlertRecord, AlertStore, OutboxRow } from './store.js';
import type { Transitions } from './transitions.js';

/** A notification that failed for good, waiting (with the alert stage's other work) to be recorded. */
export interface DeliveryFailure {
  kind: 'delivery_failed';
  row: OutboxRow;
  error: string;
  /** Platform time of the failure. */
  at: number;
  pointWritten: boolean;
}

export class DeliveryFailedAlerts {
  private readonly store: AlertStore;
  private readonly logger: Logger;

  constructor(
    private readonly ctx: AlertContext,
    private readonly transitions: Transitions,
  ) {
    this.store = ctx.store;
    this.logger = ctx.logger;
  }

  /**
   * Writes the alert_events point of the failure and raises the delivery_failed alert; throws
   * (to be retried) when alerts.db cannot store it.
   */
  apply(item: DeliveryFailure): void {
    const { row, error, at: now } = item;
    const failed = this.store.getAlert(row.alertId);
    if (!failed) return;
    if (!item.pointWritten) {
      item.pointWritten = true;
      try {
        this.ctx.options.writeAlertEvent({
          ruleId: failed.ruleId,
          assetId: failed.assetId,
          level: failed.level,
          event: 'delivery_failed',
          alertId: failed.id,
          value: failed.value,
          message: `${row.channelId} ${row.deliveryId}: ${error}`,
          ts: now,
        });
      } catch (err) {
        this.logger.error({ err, alert_id: row.alertId }, 'writing the delivery_failed alert event failed');
      }
    }
    if (failed.ruleId === DELIVERY_FAILED_RULE) return;
    this.transitions.commit((effects) => this.raise(failed, row, error, now, effects));
  }

  private raise(failed: AlertRecord, row: OutboxRow, error: string, now: number, effects: Effect[]): void {
    const channel = this.ctx.channelConfigs.get(row.channelId);
    const language: Language = channel && 'language' in channel ? channel.language : 'zh';
    const shortError = error.length > 300 ? `${error.slice(0, 300)}…` : error;
    const message =
      language === 'zh'
        ? `通知渠道 ${row.channelId} 投递失败：${failed.assetName}「${failed.ruleName}」${levelName(failed.level, 'zh')}的${eventName(row.event, 'zh')}通知未送达（${shortError}）`
        : `Channel ${row.channelId} failed to deliver the ${eventName(row.event, 'en').toLowerCase()} notification of ${levelName(failed.level, 'en')} alert "${failed.ruleName}" on ${failed.assetName} (${shortError})`;
    const detail = { alert_id: failed.id, delivery_id: row.deliveryId, channel: row.channelId, event: row.event, error: shortError };
    let alert = this.store.findOpenAlert(DELIVERY_FAILED_RULE, failed.assetId, row.channelId);
    if (!alert) {
      const policy = this.ctx.escalations.get(FALLBACK_ESCALATION);
      alert = this.transitions.openFrom(
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
      if (t) alert = this.transitions.applyTransition(alert, { ...t, alert: { ...t.alert, message } }, now, effects);
    }
    this.store.appendTimeline({
      alertId: alert.id,
      at: now,
      kind: 'event',
      type: 'delivery_failed',
      level: alert.level,
      state: alert.state,
      tier: null,
      channel: row.channelId,
      deliveryId: null,
      detail,
    });
  }
}
