/**
 * Rows of the alert store's tables as SQLite returns them, and their conversion to and from the
 * store's records. The PostgreSQL store (../postgres) has the same columns and returns the same
 * values (BIGINT as numbers, JSON as text), so it maps its rows here too.
 */
import type { Level } from '../../lib/levels.js';
import type { Threshold } from '../../rules/types.js';
import type { CaseStatus, DismissReason } from '../case-machine.js';
import type { AlertState } from '../state-machine.js';
import type {
  AlertKey,
  AlertRecord,
  CaseRecord,
  DigestRow,
  EscalationSchedule,
  HeldNotice,
  NotificationEvent,
  OutboxRow,
  OutboxStatus,
  OverrideRecord,
  PendingRow,
  SilenceMatchers,
  SilenceRecord,
  TimelineEntry,
  TimelineEntryType,
  WorkOrderRecord,
  WorkOrderStatus,
} from '../store.js';

export interface AlertRow {
  id: string;
  rule_id: string;
  asset_id: string;
  sensor_id: string;
  metric: string;
  level: string;
  state: string;
  value: number;
  threshold: string | null;
  event_ts: number;
  started_at: number;
  updated_at: number;
  acknowledged_at: number | null;
  acknowledged_by: string | null;
  resolved_at: number | null;
  resolved_by: string | null;
  resolve_reason: string | null;
  rule_name: string;
  asset_name: string;
  asset_type: string;
  street: string;
  message: string;
  plan: string;
  escalation_policy: string | null;
  last_tier: number | null;
  held_notice: string | null;
}

export interface TimelineRow {
  seq: number;
  alert_id: string;
  at: number;
  kind: string;
  type: string;
  level: string | null;
  state: string | null;
  tier: number | null;
  channel: string | null;
  delivery_id: string | null;
  detail: string;
}

export interface OutboxDbRow {
  seq: number;
  delivery_id: string;
  alert_id: string;
  channel_id: string;
  recipients: string;
  event: string;
  tier: number;
  body: string;
  status: string;
  attempts: number;
  next_attempt_at: number;
  created_at: number;
  updated_at: number;
  last_error: string | null;
  digest_id: string | null;
}

export interface DigestDbRow {
  delivery_id: string;
  channel_id: string;
  rate_key: string;
  recipients: string;
  members: string;
  status: string;
  attempts: number;
  next_attempt_at: number;
  created_at: number;
  updated_at: number;
  last_error: string | null;
}

export interface SilenceDbRow {
  id: string;
  matchers: string;
  starts_at: number;
  ends_at: number;
  reason: string;
  created_by: string;
  created_at: number;
  deleted_at: number | null;
  deleted_by: string | null;
}

export interface ScheduleRow {
  alert_id: string;
  policy_id: string;
  anchor_at: number;
  next_tier: number;
  next_due_at: number;
  repeats: number;
}

export function toAlertRow(a: AlertRecord): AlertRow {
  return {
    id: a.id,
    rule_id: a.ruleId,
    asset_id: a.assetId,
    sensor_id: a.sensorId,
    metric: a.metric,
    level: a.level,
    state: a.state,
    value: a.value,
    threshold: a.threshold === null ? null : JSON.stringify(a.threshold),
    event_ts: a.eventTs,
    started_at: a.startedAt,
    updated_at: a.updatedAt,
    acknowledged_at: a.acknowledgedAt,
    acknowledged_by: a.acknowledgedBy,
    resolved_at: a.resolvedAt,
    resolved_by: a.resolvedBy,
    resolve_reason: a.resolveReason,
    rule_name: a.ruleName,
    asset_name: a.assetName,
    asset_type: a.assetType,
    street: a.street,
    message: a.message,
    plan: JSON.stringify(a.plan),
    escalation_policy: a.escalationPolicy,
    last_tier: a.lastTier,
    held_notice: a.heldNotice,
  };
}

export function fromAlertRow(r: AlertRow): AlertRecord {
  return {
    id: r.id,
    ruleId: r.rule_id,
    assetId: r.asset_id,
    sensorId: r.sensor_id,
    metric: r.metric,
    level: r.level as Level,
    state: r.state as AlertState,
    value: r.value,
    threshold: r.threshold === null ? null : (JSON.parse(r.threshold) as Threshold),
    eventTs: r.event_ts,
    startedAt: r.started_at,
    updatedAt: r.updated_at,
    acknowledgedAt: r.acknowledged_at,
    acknowledgedBy: r.acknowledged_by,
    resolvedAt: r.resolved_at,
    resolvedBy: r.resolved_by,
    resolveReason: r.resolve_reason,
    ruleName: r.rule_name,
    assetName: r.asset_name,
    assetType: r.asset_type,
    street: r.street,
    message: r.message,
    plan: JSON.parse(r.plan) as string[],
    escalationPolicy: r.escalation_policy,
    lastTier: r.last_tier,
    heldNotice: r.held_notice as HeldNotice | null,
  };
}

export function fromOutboxRow(r: OutboxDbRow): OutboxRow {
  return { ...fromPendingRow(r), body: r.body, status: r.status as OutboxStatus, updatedAt: r.updated_at, lastError: r.last_error };
}

export function fromDigestRow(r: DigestDbRow): DigestRow {
  return {
    deliveryId: r.delivery_id,
    channelId: r.channel_id,
    rateKey: r.rate_key,
    recipients: JSON.parse(r.recipients) as string[],
    members: JSON.parse(r.members) as string[],
    status: r.status as OutboxStatus,
    attempts: r.attempts,
    nextAttemptAt: r.next_attempt_at,
    createdAt: r.created_at,
    updatedAt: r.updated_at,
    lastError: r.last_error,
  };
}

export function fromSilenceRow(r: SilenceDbRow): SilenceRecord {
  return {
    id: r.id,
    matchers: JSON.parse(r.matchers) as SilenceMatchers,
    startsAt: r.starts_at,
    endsAt: r.ends_at,
    reason: r.reason,
    createdBy: r.created_by,
    createdAt: r.created_at,
    deletedAt: r.deleted_at,
    deletedBy: r.deleted_by,
  };
}

export function fromScheduleRow(r: ScheduleRow): EscalationSchedule {
  return { alertId: r.alert_id, policyId: r.policy_id, anchorAt: r.anchor_at, nextTier: r.next_tier, nextDueAt: r.next_due_at, repeats: r.repeats };
}

export function fromTimelineRow(r: TimelineRow): TimelineEntry {
  return {
    seq: r.seq,
    alertId: r.alert_id,
    at: r.at,
    kind: r.kind as TimelineEntry['kind'],
    type: r.type as TimelineEntryType,
    level: r.level as Level | null,
    state: r.state as AlertState | null,
    tier: r.tier,
    channel: r.channel,
    deliveryId: r.delivery_id,
    detail: JSON.parse(r.detail) as Record<string, unknown>,
  };
}

/** The columns of a pending outbox row that the outbox sender's index reads. */
export const PENDING_COLUMNS = 'seq, delivery_id, alert_id, channel_id, recipients, event, tier, attempts, next_attempt_at, created_at, digest_id';
export type PendingDbRow = Omit<OutboxDbRow, 'body' | 'status' | 'updated_at' | 'last_error'>;

export function fromPendingRow(r: PendingDbRow): PendingRow {
  return {
    seq: r.seq,
    deliveryId: r.delivery_id,
    alertId: r.alert_id,
    channelId: r.channel_id,
    recipients: JSON.parse(r.recipients) as string[],
    event: r.event as NotificationEvent,
    tier: r.tier,
    attempts: r.attempts,
    nextAttemptAt: r.next_attempt_at,
    createdAt: r.created_at,
    digestId: r.digest_id,
  };
}

/** Channel -> contact ids, in first-notified order, of an alert's outbox rows (oldest first). */
export function notifiedTargetsOf(rows: Array<{ channel_id: string; recipients: string }>): Array<{ channel: string; to: string[] }> {
  const byChannel = new Map<string, Set<string>>();
  for (const row of rows) {
    let to = byChannel.get(row.channel_id);
    if (!to) byChannel.set(row.channel_id, (to = new Set()));
    for (const contact of JSON.parse(row.recipients) as string[]) to.add(contact);
  }
  return [...byChannel].map(([channel, to]) => ({ channel, to: [...to] }));
}

export function fromAttemptRow(r: { channel_id: string; recipients: string; updated_at: number }): { channelId: string; recipients: string[]; at: number } {
  return { channelId: r.channel_id, recipients: JSON.parse(r.recipients) as string[], at: r.updated_at };
}

export interface FlappingRow {
  rule_id: string;
  asset_id: string;
  sensor_id: string;
  since: number;
}

export function fromFlappingRow(r: FlappingRow): AlertKey & { since: number } {
  return { ruleId: r.rule_id, assetId: r.asset_id, sensorId: r.sensor_id, since: r.since };
}

export interface CaseRow {
  alert_id: string;
  status: string;
  department: string | null;
  work_order_id: string | null;
  dismiss_reason: string | null;
  updated_at: number;
  ack_deadline: number | null;
}

export interface WorkOrderRow {
  id: string;
  alert_id: string;
  department: string;
  status: string;
  note: string | null;
  created_by: string;
  created_at: number;
  due_at: number;
  nonce: string;
  expires_at: number;
  arrived_at: number | null;
  closed_at: number | null;
  closed_by: string | null;
  outcome: string | null;
  overdue_at: number | null;
}

export interface OverrideRow {
  id: string;
  schedule_id: string;
  member: string;
  starts_at: number;
  ends_at: number;
  created_at: number;
  created_by: string;
}

export function fromCaseRow(r: CaseRow): CaseRecord {
  return {
    alertId: r.alert_id,
    status: r.status as CaseStatus,
    department: r.department,
    workOrderId: r.work_order_id,
    dismissReason: r.dismiss_reason as DismissReason | null,
    updatedAt: r.updated_at,
    ackDeadline: r.ack_deadline,
  };
}

export function fromWorkOrderRow(r: WorkOrderRow): WorkOrderRecord {
  return {
    id: r.id,
    alertId: r.alert_id,
    department: r.department,
    status: r.status as WorkOrderStatus,
    note: r.note,
    createdBy: r.created_by,
    createdAt: r.created_at,
    dueAt: r.due_at,
    nonce: r.nonce,
    expiresAt: r.expires_at,
    arrivedAt: r.arrived_at,
    closedAt: r.closed_at,
    closedBy: r.closed_by,
    outcome: r.outcome,
    overdueAt: r.overdue_at,
  };
}

/** A work order's values in the order of WORK_ORDER_COLUMNS (the id last, for `WHERE id = ?`). */
export const WORK_ORDER_COLUMNS = [
  'alert_id',
  'department',
  'status',
  'note',
  'created_by',
  'created_at',
  'due_at',
  'nonce',
  'expires_at',
  'arrived_at',
  'closed_at',
  'closed_by',
  'outcome',
  'overdue_at',
  'id',
] as const;

export function workOrderParams(w: WorkOrderRecord): unknown[] {
  return [w.alertId, w.department, w.status, w.note, w.createdBy, w.createdAt, w.dueAt, w.nonce, w.expiresAt, w.arrivedAt, w.closedAt, w.closedBy, w.outcome, w.overdueAt, w.id];
}

export function fromOverrideRow(r: OverrideRow): OverrideRecord {
  return { id: r.id, scheduleId: r.schedule_id, member: r.member, startsAt: r.starts_at, endsAt: r.ends_at, createdAt: r.created_at, createdBy: r.created_by };
}

/** The columns of an alert row in the order of alertParams. */
export const ALERT_COLUMNS = [
  'id',
  'rule_id',
  'asset_id',
  'sensor_id',
  'metric',
  'level',
  'state',
  'value',
  'threshold',
  'event_ts',
  'started_at',
  'updated_at',
  'acknowledged_at',
  'acknowledged_by',
  'resolved_at',
  'resolved_by',
  'resolve_reason',
  'rule_name',
  'asset_name',
  'asset_type',
  'street',
  'message',
  'plan',
  'escalation_policy',
  'last_tier',
  'held_notice',
] as const satisfies ReadonlyArray<keyof AlertRow>;

/** An alert's values in the order of ALERT_COLUMNS (for positional parameters). */
export function alertParams(a: AlertRecord): unknown[] {
  const row = toAlertRow(a);
  return ALERT_COLUMNS.map((c) => row[c]);
}
