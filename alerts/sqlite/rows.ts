/** Rows of alerts.db as SQLite returns them, and their conversion to and from the store's records. */
import type { Level } from '../../lib/levels.js';
import type { Threshold } from '../../rules/types.js';
import type { AlertState } from '../state-machine.js';
import type { AlertRecord, DigestRow, EscalationSchedule, HeldNotice, NotificationEvent, OutboxRow, OutboxStatus, SilenceMatchers, SilenceRecord } from '../store.js';

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
  return {
    seq: r.seq,
    deliveryId: r.delivery_id,
    alertId: r.alert_id,
    channelId: r.channel_id,
    recipients: JSON.parse(r.recipients) as string[],
    event: r.event as NotificationEvent,
    tier: r.tier,
    body: r.body,
    status: r.status as OutboxStatus,
    attempts: r.attempts,
    nextAttemptAt: r.next_attempt_at,
    createdAt: r.created_at,
    updatedAt: r.updated_at,
    lastError: r.last_error,
    digestId: r.digest_id,
  };
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
