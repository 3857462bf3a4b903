/**
 * The alert stage's durable state, behind one interface so that a second backend (PostgreSQL)
 * can stand in for the SQLite one (sqlite/sqlite-alert-store.ts) and pass the same behavioural
 * tests: alerts, their timeline (every event and every delivery attempt), the notification
 * outbox and its digests, the escalation schedule, silences, flapping holds, used
 * acknowledgement links and settings.
 *
 * The alert stage writes a transition, its timeline event, its outbox rows and its schedule in
 * one `transaction()` before any effect (outbox pattern). A backend must give: every write in
 * `transaction(fn)` commits together or not at all, and transactions are serialized; at most one
 * open (not resolved) alert per (rule, asset, sensor), enforced by the backend; `seq` of timeline
 * and outbox rows increasing in insertion order; a method that cannot do its work throws.
 */
import type { Level } from '../lib/levels.js';
import type { CaseEventType, CaseStatus, DismissReason } from './case-machine.js';
import type { AlertCore, AlertEventType, AlertState } from './state-machine.js';

/** Events a notification can carry (contract: Notifications). */
export type NotificationEvent = 'firing' | 'level_raised' | 'escalated' | 'repeated' | 'acknowledged' | 'resolved' | CaseEventType;

/** One alert as stored: the state machine's part plus what was known about rule and asset when it fired. */
export interface AlertRecord extends AlertCore {
  id: string;
  ruleId: string;
  assetId: string;
  sensorId: string;
  metric: string;
  /** Platform time the alert opened; escalation tiers count from here. */
  startedAt: number;
  ruleName: string;
  assetName: string;
  assetType: string;
  street: string;
  message: string;
  plan: string[];
  /** The escalation policy in force (chosen for the level when it fired or was last raised). */
  escalationPolicy: string | null;
  /** The highest escalation tier notified so far, null before the first notification. */
  lastTier: number | null;
  /**
   * A transition notification (level_raised, acknowledged, resolved) that was held back while the
   * alert was silenced or flapping; sent, reflecting the alert's state then, once the hold ends.
   */
  heldNotice: HeldNotice | null;
}

export type HeldNotice = 'level_raised' | 'acknowledged' | 'resolved';

export type DeliveryEntryType = 'queued' | 'digested' | 'delivered' | 'retry' | 'delivery_failed';
export type TimelineEntryType = AlertEventType | CaseEventType | 'escalated' | 'repeated' | 'ack_timeout' | 'held' | 'released' | 'delivery_failed' | DeliveryEntryType;

export interface TimelineEntry {
  seq: number;
  alertId: string;
  /** Platform time, epoch ms. */
  at: number;
  kind: 'event' | 'delivery';
  type: TimelineEntryType;
  level: Level | null;
  state: AlertState | null;
  tier: number | null;
  channel: string | null;
  deliveryId: string | null;
  /** Everything else: by, note, reason, value, threshold, previous_level, attempt, status_code, error, ... */
  detail: Record<string, unknown>;
}

export type OutboxStatus = 'pending' | 'delivered' | 'failed';

/** A pending outbox row without its body (read when it is sent). */
export type PendingRow = Omit<OutboxRow, 'body' | 'status' | 'updatedAt' | 'lastError'>;

export interface OutboxRow {
  seq: number;
  deliveryId: string;
  alertId: string;
  channelId: string;
  /** Contact ids this notification is for (empty for channels such as a webhook). */
  recipients: string[];
  event: NotificationEvent;
  tier: number;
  /** The notification body, serialized once; every attempt sends exactly these bytes. */
  body: string;
  status: OutboxStatus;
  attempts: number;
  nextAttemptAt: number;
  createdAt: number;
  updatedAt: number;
  lastError: string | null;
  /** Set while the row is part of a digest (rate limit); the digest's delivery decides its outcome. */
  digestId: string | null;
}

/** Several outbox rows of one channel merged into one message because of a rate limit. */
export interface DigestRow {
  deliveryId: string;
  channelId: string;
  /** The rate-limit key the digest was formed for. */
  rateKey: string;
  recipients: string[];
  /** delivery_ids of the merged rows, oldest first. */
  members: string[];
  status: OutboxStatus;
  attempts: number;
  nextAttemptAt: number;
  createdAt: number;
  updatedAt: number;
  lastError: string | null;
}

export interface SilenceMatchers {
  asset_id?: string[];
  rule_id?: string[];
  street?: string[];
  level?: Level[];
  asset_type?: string[];
}

export interface SilenceRecord {
  id: string;
  matchers: SilenceMatchers;
  startsAt: number;
  endsAt: number;
  reason: string;
  createdBy: string;
  createdAt: number;
  deletedAt: number | null;
  deletedBy: string | null;
}

export interface AlertKey {
  ruleId: string;
  assetId: string;
  sensorId: string;
}

export interface EscalationSchedule {
  alertId: string;
  policyId: string;
  /** Tier n is due at anchorAt + tiers[n].after. */
  anchorAt: number;
  /** The next tier to notify; tiers.length once every tier was notified (then only repeats follow). */
  nextTier: number;
  nextDueAt: number;
  repeats: number;
}

export interface AlertFilter {
  state?: AlertState;
  level?: Level;
  assetId?: string;
  limit?: number;
}

export const DEFAULT_LIST_LIMIT = 100;
export const MAX_LIST_LIMIT = 1000;

/** A change of an outbox row or digest after an attempt. */
export interface AttemptChange {
  status: OutboxStatus;
  attempts: number;
  nextAttemptAt: number;
  updatedAt: number;
  lastError: string | null;
}

/**
 * insertAlert refused the alert: an open alert of the same (rule, asset, sensor) exists (in a
 * cluster, another instance may have committed it after this transaction looked). Recognised by
 * its `code`, so an error rebuilt across a worker thread still counts.
 */
export class OpenAlertExistsError extends Error {
  readonly code = 'open_alert_exists';
  constructor(key: AlertKey) {
    super(`an open alert of (${key.ruleId}, ${key.assetId}, ${key.sensorId}) exists already`);
    this.name = 'OpenAlertExistsError';
  }
}

export function isOpenAlertExists(error: unknown): boolean {
  return typeof error === 'object' && error !== null && (error as { code?: unknown }).code === 'open_alert_exists';
}

/** Alerts and their timelines. */
export interface AlertRepository {
  /** Throws OpenAlertExistsError when an open alert of the same (rule, asset, sensor) exists. */
  insertAlert(a: AlertRecord): void;
  /** Throws when the alert does not exist. */
  updateAlert(a: AlertRecord): void;
  getAlert(id: string): AlertRecord | undefined;
  findOpenAlert(ruleId: string, assetId: string, sensorId: string): AlertRecord | undefined;
  /** Alerts newest first (by started_at, then insertion), at most `limit` (clamped to 1..MAX_LIST_LIMIT). */
  listAlerts(filter?: AlertFilter): AlertRecord[];
  /** Open (firing or acknowledged) alerts, newest first; of one rule when ruleId is given. */
  openAlerts(ruleId?: string): AlertRecord[];
  /** Alerts (open or resolved) with a held transition notification, oldest update first. */
  alertsWithHeldNotice(): AlertRecord[];
  openCountsByLevel(): Map<string, number>;
  /** Appends to an alert's timeline; returns the entry's seq. */
  appendTimeline(entry: Omit<TimelineEntry, 'seq'>): number;
  timeline(alertId: string): TimelineEntry[];
  /**
   * Deletes up to `limit` alerts resolved before `before`, oldest first, with their timeline,
   * outbox rows and schedule, in one transaction; alerts with a pending notification are kept.
   * Then up to `limit` settled digests last updated before `before`.
   */
  pruneResolved(before: number, limit: number): { alerts: number; digests: number };
}

/** The notification outbox and its digests. */
export interface OutboxRepository {
  insertOutbox(row: Omit<OutboxRow, 'seq' | 'status' | 'attempts' | 'updatedAt' | 'lastError' | 'digestId'>): void;
  getOutbox(deliveryId: string): OutboxRow | undefined;
  outboxForAlert(alertId: string): OutboxRow[];
  /**
   * Pending rows that are next in line: for each (alert, channel, recipients) only the oldest
   * pending row, so one receiver gets an alert's notifications in the order they happened. Rows
   * taken into a digest are not heads (the digest is), but still hold back later rows.
   * Ordered by next attempt, then seq.
   */
  pendingOutboxHeads(): OutboxRow[];
  /** Pending rows with a seq above `afterSeq`, oldest first, without their bodies (the outbox sender's index). */
  pendingOutboxRows(afterSeq?: number): PendingRow[];
  pendingOutboxCount(): number;
  /**
   * Claims a pending row for one attempt by `owner` (an instance id) until `untilMs`: true when the
   * row is pending and unclaimed, claimed by `owner` already, or its claim ended at or before `now`;
   * false otherwise (gone, settled, or claimed by another owner). Atomic: of two instances that
   * both believe they lead, at most one sends a row at a time.
   */
  claimOutbox(deliveryId: string, owner: string, now: number, untilMs: number): boolean;
  /** Records the outcome of one attempt on the outbox row, and ends its claim. */
  updateOutbox(deliveryId: string, change: AttemptChange): void;
  /** Sets the recipients and body of a row not attempted yet (schedules resolved when it is first sent). */
  resolveOutbox(deliveryId: string, recipients: string[], body: string): void;
  /** Everyone an alert has been notified to so far: channel -> contact ids, in first-notified order. */
  notifiedTargets(alertId: string): Array<{ channel: string; to: string[] }>;
  /** Records a digest and marks its members as taken into it, all or nothing; throws when a member is not a pending row outside a digest. */
  insertDigest(d: Omit<DigestRow, 'status' | 'attempts' | 'updatedAt' | 'lastError'>): void;
  /** Pending digests by next attempt, then creation. */
  pendingDigests(): DigestRow[];
  getDigest(deliveryId: string): DigestRow | undefined;
  /** claimOutbox for a pending digest. */
  claimDigest(deliveryId: string, owner: string, now: number, untilMs: number): boolean;
  /** Records the outcome of one attempt on the digest, and ends its claim. */
  updateDigest(deliveryId: string, change: AttemptChange): void;
  /** Attempts made since `since` (platform time), by channel and recipients: seeds the rate limits after a restart. */
  attemptsSince(since: number): Array<{ channelId: string; recipients: string[]; at: number }>;
}

/** Silences and flapping holds. */
export interface HoldRepository {
  insertSilence(s: SilenceRecord): void;
  getSilence(id: string): SilenceRecord | undefined;
  /** Silences not deleted whose end is after `since`, by start time, then id. */
  silencesEndingAfter(since: number): SilenceRecord[];
  /** Silences not deleted that ended at or before `now`, newest end first (at most `limit`, default 1000). */
  expiredSilences(now: number, limit?: number): SilenceRecord[];
  /** Marks a silence deleted; false when there is no such silence not yet deleted. */
  deleteSilence(id: string, at: number, by: string): boolean;
  /** Records (since = when) or clears (null) the flapping hold of a key; recording an existing one keeps its since. */
  setFlapping(key: AlertKey, since: number | null): void;
  flappingKeys(): Array<AlertKey & { since: number }>;
}

/** The escalation schedule: one row per alert with tiers or repeats to come. */
export interface ScheduleRepository {
  /** Inserts or replaces the alert's schedule. */
  putSchedule(s: EscalationSchedule): void;
  getSchedule(alertId: string): EscalationSchedule | undefined;
  deleteSchedule(alertId: string): void;
  /** Schedules due at `now`, by due time, then alert id. */
  dueSchedules(now: number): EscalationSchedule[];
  /** The earliest due time after `now`. */
  nextScheduleDueAfter(now: number): number | undefined;
  nextScheduleDue(): number | undefined;
}

/** Used acknowledgement links and settings. */
export interface SettingsRepository {
  /** Records a used link nonce; false when it was used before. */
  useAckLink(nonce: string, alertId: string, usedAt: number, expiresAt: number): boolean;
  ackLinkUsed(nonce: string): boolean;
  /** Forgets used nonces of links that expired before `now` (they are refused as expired anyway). */
  pruneAckLinks(now: number): void;
  /** A setting, created with `init()` on first use and kept from then on (also when two instances race). */
  meta(key: string, init: () => string): string;
}

/** The case of an alert in the disposal loop (case-machine.ts); an alert without one is `new`. */
export interface CaseRecord {
  alertId: string;
  status: CaseStatus;
  department: string | null;
  workOrderId: string | null;
  dismissReason: DismissReason | null;
  updatedAt: number;
  /** While acknowledged and neither dispatched nor closed: when ack_timeout escalates again. */
  ackDeadline: number | null;
}

export const WORK_ORDER_STATUSES = ['dispatched', 'on_site', 'closed'] as const;
export type WorkOrderStatus = (typeof WORK_ORDER_STATUSES)[number];

/** A work order: an alert dispatched to a department, with a due time and a signed phone link. */
export interface WorkOrderRecord {
  id: string;
  alertId: string;
  department: string;
  status: WorkOrderStatus;
  note: string | null;
  createdBy: string;
  createdAt: number;
  dueAt: number;
  /** The nonce of its link (work-order-token.ts); a link must carry it. */
  nonce: string;
  /** When its link expires. */
  expiresAt: number;
  arrivedAt: number | null;
  closedAt: number | null;
  closedBy: string | null;
  outcome: string | null;
  /** When it was found overdue (and its department and authorities told), once. */
  overdueAt: number | null;
}

export interface WorkOrderFilter {
  department?: string;
  status?: WorkOrderStatus;
  limit?: number;
}

/** A temporary swap in an on-call schedule. */
export interface OverrideRecord {
  id: string;
  scheduleId: string;
  member: string;
  startsAt: number;
  endsAt: number;
  createdAt: number;
  createdBy: string;
}

/** Cases, work orders and on-call overrides. */
export interface CaseRepository {
  getCase(alertId: string): CaseRecord | undefined;
  /** The cases of several alerts in one read (alerts without a case are absent from the map). */
  getCases(alertIds: readonly string[]): Map<string, CaseRecord>;
  /** Inserts or replaces the alert's case. */
  putCase(c: CaseRecord): void;
  /** Cases whose ack deadline is at or before `now`, by deadline. */
  dueAckDeadlines(now: number): CaseRecord[];
  nextAckDeadline(): number | undefined;
  insertWorkOrder(w: WorkOrderRecord): void;
  /** Throws when the work order does not exist. */
  updateWorkOrder(w: WorkOrderRecord): void;
  getWorkOrder(id: string): WorkOrderRecord | undefined;
  /** Work orders newest first, at most `limit` (clamped to 1..MAX_LIST_LIMIT). */
  listWorkOrders(filter?: WorkOrderFilter): WorkOrderRecord[];
  /** Work orders not closed, due at or before `now` and not yet found overdue, by due time. */
  dueWorkOrders(now: number): WorkOrderRecord[];
  /** The earliest due time of a work order not closed and not yet found overdue. */
  nextWorkOrderDue(): number | undefined;
  insertOverride(o: OverrideRecord): void;
  /** Overrides ending after `since`, of one schedule or all, by creation. */
  overrides(since: number, scheduleId?: string): OverrideRecord[];
}

/** One state-changing HTTP request (server/audit.ts): who, what, how it ended. Never a secret or a link's token. */
export interface AuditRecord {
  seq: number;
  /** Platform time the answer was sent, epoch ms. */
  at: number;
  /** The API token's name, `link:<alert or department>` for a link page, null when not authenticated. */
  actor: string | null;
  method: string;
  /** The path without the query, link tokens replaced by REDACTED. */
  path: string;
  /** The HTTP status answered. */
  outcome: number;
}

export interface AuditFilter {
  /** Entries at or after this time (epoch ms). */
  since?: number;
  /** Entries with a seq below this (the next page of a newest-first listing). */
  beforeSeq?: number;
  limit?: number;
}

/** The audit log of state-changing HTTP requests. */
export interface AuditRepository {
  /** Appends an entry; returns its seq. */
  appendAudit(entry: Omit<AuditRecord, 'seq'>): number;
  /** Entries newest first, at most `limit` (clamped to 1..MAX_LIST_LIMIT). */
  auditEntries(filter?: AuditFilter): AuditRecord[];
  /** Deletes up to `limit` entries older than `before`, oldest first; returns how many. */
  pruneAudit(before: number, limit: number): number;
}

/** What the measures of the disposal loop read (alerts/report.ts, alerts/case-metrics.ts). */
export interface ReportRepository {
  /** Alerts (open or resolved) that started in [from, to), oldest first. */
  alertsStartedBetween(from: number, to: number): AlertRecord[];
  /**
   * Open cases (neither closed nor dismissed) by status; an alert without a case record is
   * `acknowledged` once acknowledged, else `new`.
   */
  openCaseCounts(): Map<CaseStatus, number>;
}

export interface AlertStore extends AlertRepository, OutboxRepository, HoldRepository, ScheduleRepository, SettingsRepository, CaseRepository, AuditRepository, ReportRepository {
  /** Runs fn in one transaction; everything it writes commits together or not at all. */
  transaction<T>(fn: () => T): T;
  readonly isOpen: boolean;
  close(): void;
}

/** The row limit of a list: the default when absent, clamped to 1..MAX_LIST_LIMIT. */
export function clampLimit(limit: number | undefined): number {
  if (limit === undefined || !Number.isFinite(limit)) return DEFAULT_LIST_LIMIT;
  return Math.min(Math.max(1, Math.floor(limit)), MAX_LIST_LIMIT);
}
