/**
 * How alerts look outside the stage: the alert event body (MQTT, notifications), the API's alert
 * and timeline views. API views and MQTT events carry the alert's API resource as ack_url (which
 * viewers and observers read: a signed link there would let any of them acknowledge);
 * notifications carry their own signed link.
 */
import type { AlertBody, AlertEventBody, CaseBody, RecipientBody, WorkOrderBody } from './event-body.js';
import type { AlertRecord, CaseRecord, TimelineEntry } from './store.js';

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
  dismiss_reason: string | null;
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

export class AlertViews {
  constructor(
    private readonly publicUrl: string,
    /** The alert's case (absent: `new`). */
    private readonly caseOf: (alertId: string) => CaseRecord | undefined = () => undefined,
  ) {}

  /**
   * The alert's API resource: the ack_url of API views and MQTT events, which viewers and
   * observers read (a signed link there would let any of them acknowledge).
   */
  private apiUrl(id: string): string {
    return `${this.publicUrl.replace(/\/+$/, '')}/api/v1/alerts/${encodeURIComponent(id)}`;
  }

  eventBody(
    deliveryId: string,
    event: AlertEventBody['event'],
    tier: number,
    alert: AlertRecord,
    ackUrl?: string,
    extra: { to?: RecipientBody[]; workOrder?: WorkOrderBody } = {},
  ): AlertEventBody {
    return { delivery_id: deliveryId, event, tier, to: extra.to ?? [], ...(extra.workOrder ? { work_order: extra.workOrder } : {}), alert: this.alertBody(alert, ackUrl) };
  }

  /** `c`: the alert's case when the caller read it already (a list reads them in one go). */
  caseBody(alertId: string, c: CaseRecord | undefined = this.caseOf(alertId)): CaseBody {
    return { status: c?.status ?? 'new', department: c?.department ?? null, work_order_id: c?.workOrderId ?? null };
  }

  alertBody(a: AlertRecord, ackUrl?: string, c: CaseRecord | undefined = this.caseOf(a.id)): AlertBody {
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
      case: this.caseBody(a.id, c),
    };
  }

  view(a: AlertRecord, c: CaseRecord | undefined = this.caseOf(a.id)): AlertView {
    return {
      ...this.alertBody(a, undefined, c),
      updated_at: new Date(a.updatedAt).toISOString(),
      acknowledged_at: isoOrNull(a.acknowledgedAt),
      acknowledged_by: a.acknowledgedBy,
      resolved_at: isoOrNull(a.resolvedAt),
      resolved_by: a.resolvedBy,
      resolve_reason: a.resolveReason,
      escalation: a.escalationPolicy,
      tier: a.lastTier,
      dismiss_reason: c?.dismissReason ?? null,
    };
  }
}

export function timelineView(e: TimelineEntry): TimelineEntryView {
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
