/**
 * Durable state of the alert stage in `${dataDir}/alerts.db` (SQLite, WAL, synchronous=FULL):
 * alerts, their timeline (every event and every delivery attempt), the notification outbox and
 * the escalation schedule. The alert stage writes a transition, its timeline event, its outbox
 * rows and its schedule in one `transaction()` before any effect (outbox pattern).
 *
 * Every statement uses bound parameters; nothing from the outside is spliced into SQL.
 */
import fs from 'node:fs';
import path from 'node:path';
import Database from 'better-sqlite3';
import type { Level } from '../lib/levels.js';
import type { Threshold } from '../rules/types.js';
import type { AlertCore, AlertEventType, AlertState } from './state-machine.js';

/** Events a notification can carry (contract: Notifications). */
export type NotificationEvent = 'firing' | 'level_raised' | 'escalated' | 'repeated' | 'acknowledged' | 'resolved';

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
export type TimelineEntryType = AlertEventType | 'escalated' | 'repeated' | 'held' | 'released' | 'delivery_failed' | DeliveryEntryType;

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

const SCHEMA_VERSION = 2;

const SCHEMA = `
CREATE TABLE IF NOT EXISTS alerts (
  id TEXT PRIMARY KEY,
  rule_id TEXT NOT NULL,
  asset_id TEXT NOT NULL,
  sensor_id TEXT NOT NULL,
  metric TEXT NOT NULL,
  level TEXT NOT NULL,
  state TEXT NOT NULL CHECK (state IN ('firing', 'acknowledged', 'resolved')),
  value REAL NOT NULL,
  threshold TEXT,
  event_ts INTEGER NOT NULL,
  started_at INTEGER NOT NULL,
  updated_at INTEGER NOT NULL,
  acknowledged_at INTEGER,
  acknowledged_by TEXT,
  resolved_at INTEGER,
  resolved_by TEXT,
  resolve_reason TEXT,
  rule_name TEXT NOT NULL,
  asset_name TEXT NOT NULL,
  asset_type TEXT NOT NULL,
  street TEXT NOT NULL,
  message TEXT NOT NULL,
  plan TEXT NOT NULL,
  escalation_policy TEXT,
  last_tier INTEGER,
  held_notice TEXT
);
-- One open alert per (rule, asset, sensor), enforced by the database itself.
CREATE UNIQUE INDEX IF NOT EXISTS alerts_one_open ON alerts (rule_id, asset_id, sensor_id) WHERE state <> 'resolved';
CREATE INDEX IF NOT EXISTS alerts_started ON alerts (started_at);
CREATE INDEX IF NOT EXISTS alerts_asset ON alerts (asset_id, started_at);
CREATE INDEX IF NOT EXISTS alerts_resolved ON alerts (resolved_at) WHERE state = 'resolved';

CREATE TABLE IF NOT EXISTS alert_timeline (
  seq INTEGER PRIMARY KEY AUTOINCREMENT,
  alert_id TEXT NOT NULL REFERENCES alerts (id),
  at INTEGER NOT NULL,
  kind TEXT NOT NULL CHECK (kind IN ('event', 'delivery')),
  type TEXT NOT NULL,
  level TEXT,
  state TEXT,
  tier INTEGER,
  channel TEXT,
  delivery_id TEXT,
  detail TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS alert_timeline_alert ON alert_timeline (alert_id, seq);

CREATE TABLE IF NOT EXISTS outbox (
  seq INTEGER PRIMARY KEY AUTOINCREMENT,
  delivery_id TEXT NOT NULL UNIQUE,
  alert_id TEXT NOT NULL REFERENCES alerts (id),
  channel_id TEXT NOT NULL,
  recipients TEXT NOT NULL,
  event TEXT NOT NULL,
  tier INTEGER NOT NULL,
  body TEXT NOT NULL,
  status TEXT NOT NULL CHECK (status IN ('pending', 'delivered', 'failed')),
  attempts INTEGER NOT NULL,
  next_attempt_at INTEGER NOT NULL,
  created_at INTEGER NOT NULL,
  updated_at INTEGER NOT NULL,
  last_error TEXT,
  digest_id TEXT
);
CREATE INDEX IF NOT EXISTS outbox_pending ON outbox (status, alert_id, channel_id, seq);
CREATE INDEX IF NOT EXISTS outbox_alert ON outbox (alert_id, seq);

CREATE TABLE IF NOT EXISTS outbox_digests (
  delivery_id TEXT PRIMARY KEY,
  channel_id TEXT NOT NULL,
  rate_key TEXT NOT NULL,
  recipients TEXT NOT NULL,
  members TEXT NOT NULL,
  status TEXT NOT NULL CHECK (status IN ('pending', 'delivered', 'failed')),
  attempts INTEGER NOT NULL,
  next_attempt_at INTEGER NOT NULL,
  created_at INTEGER NOT NULL,
  updated_at INTEGER NOT NULL,
  last_error TEXT
);
CREATE INDEX IF NOT EXISTS outbox_digests_pending ON outbox_digests (status, next_attempt_at);

CREATE TABLE IF NOT EXISTS silences (
  id TEXT PRIMARY KEY,
  matchers TEXT NOT NULL,
  starts_at INTEGER NOT NULL,
  ends_at INTEGER NOT NULL,
  reason TEXT NOT NULL,
  created_by TEXT NOT NULL,
  created_at INTEGER NOT NULL,
  deleted_at INTEGER,
  deleted_by TEXT
);

-- (rule, asset, sensor) whose notifications are held because the rules stage reports flapping.
CREATE TABLE IF NOT EXISTS flapping (
  rule_id TEXT NOT NULL,
  asset_id TEXT NOT NULL,
  sensor_id TEXT NOT NULL,
  since INTEGER NOT NULL,
  PRIMARY KEY (rule_id, asset_id, sensor_id)
);

-- Single-use acknowledgement links: the nonce of every link that was used.
CREATE TABLE IF NOT EXISTS ack_links_used (
  nonce TEXT PRIMARY KEY,
  alert_id TEXT NOT NULL,
  used_at INTEGER NOT NULL,
  expires_at INTEGER NOT NULL
);

CREATE TABLE IF NOT EXISTS meta (
  key TEXT PRIMARY KEY,
  value TEXT NOT NULL
);

CREATE TABLE IF NOT EXISTS escalation_schedule (
  alert_id TEXT PRIMARY KEY REFERENCES alerts (id),
  policy_id TEXT NOT NULL,
  anchor_at INTEGER NOT NULL,
  next_tier INTEGER NOT NULL,
  next_due_at INTEGER NOT NULL,
  repeats INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS escalation_schedule_due ON escalation_schedule (next_due_at);
`;

interface AlertRow {
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

interface TimelineRow {
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

interface OutboxDbRow {
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

interface DigestDbRow {
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

interface SilenceDbRow {
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

interface ScheduleRow {
  alert_id: string;
  policy_id: string;
  anchor_at: number;
  next_tier: number;
  next_due_at: number;
  repeats: number;
}

export class AlertStore {
  private readonly db: Database.Database;
  private readonly statements = new Map<string, Database.Statement>();
  private closed = false;

  private constructor(db: Database.Database) {
    this.db = db;
  }

  /**
   * Opens (creating if needed) `${dataDir}/alerts.db`. It holds the key that signs
   * acknowledgement links, so the file and its -wal and -shm files are readable by the owner only
   * (0600); the database file is created that way before SQLite opens it, and SQLite gives its
   * -wal and -shm files the mode of the database file.
   */
  static open(dataDir: string): AlertStore {
    fs.mkdirSync(dataDir, { recursive: true });
    const file = path.join(dataDir, 'alerts.db');
    restrictToOwner(file, true);
    const db = new Database(file);
    try {
      for (const suffix of ['-wal', '-shm']) restrictToOwner(file + suffix, false);
      db.pragma('journal_mode = WAL');
      db.pragma('synchronous = FULL');
      db.pragma('foreign_keys = ON');
      db.pragma('busy_timeout = 5000');
      const version = db.pragma('user_version', { simple: true }) as number;
      if (version > SCHEMA_VERSION) {
        throw new Error(`alerts.db has schema version ${version}, newer than this version of watchpost understands (${SCHEMA_VERSION})`);
      }
      if (version === 1) {
        // Version 1 (the foundation) lacked digests and held notifications.
        db.exec('ALTER TABLE outbox ADD COLUMN digest_id TEXT; ALTER TABLE alerts ADD COLUMN held_notice TEXT;');
      }
      db.exec(SCHEMA);
      db.pragma(`user_version = ${SCHEMA_VERSION}`);
    } catch (error) {
      db.close();
      throw error;
    }
    return new AlertStore(db);
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.db.close();
  }

  get isOpen(): boolean {
    return !this.closed;
  }

  /** Runs fn in one IMMEDIATE transaction; everything it writes commits together or not at all. */
  transaction<T>(fn: () => T): T {
    return this.db.transaction(fn).immediate();
  }

  // ---- alerts ----

  insertAlert(a: AlertRecord): void {
    this.stmt(
      `INSERT INTO alerts (id, rule_id, asset_id, sensor_id, metric, level, state, value, threshold, event_ts, started_at, updated_at,
         acknowledged_at, acknowledged_by, resolved_at, resolved_by, resolve_reason, rule_name, asset_name, asset_type, street, message, plan,
         escalation_policy, last_tier, held_notice)
       VALUES (@id, @rule_id, @asset_id, @sensor_id, @metric, @level, @state, @value, @threshold, @event_ts, @started_at, @updated_at,
         @acknowledged_at, @acknowledged_by, @resolved_at, @resolved_by, @resolve_reason, @rule_name, @asset_name, @asset_type, @street, @message, @plan,
         @escalation_policy, @last_tier, @held_notice)`,
    ).run(toAlertRow(a));
  }

  updateAlert(a: AlertRecord): void {
    const info = this.stmt(
      `UPDATE alerts SET level = @level, state = @state, value = @value, threshold = @threshold, event_ts = @event_ts, updated_at = @updated_at,
         acknowledged_at = @acknowledged_at, acknowledged_by = @acknowledged_by, resolved_at = @resolved_at, resolved_by = @resolved_by,
         resolve_reason = @resolve_reason, rule_name = @rule_name, asset_name = @asset_name, asset_type = @asset_type, street = @street,
         message = @message, plan = @plan, escalation_policy = @escalation_policy, last_tier = @last_tier, held_notice = @held_notice
       WHERE id = @id`,
    ).run(toAlertRow(a));
    if (info.changes !== 1) throw new Error(`alert ${a.id} does not exist`);
  }

  getAlert(id: string): AlertRecord | undefined {
    const row = this.stmt('SELECT * FROM alerts WHERE id = ?').get(id) as AlertRow | undefined;
    return row && fromAlertRow(row);
  }

  findOpenAlert(ruleId: string, assetId: string, sensorId: string): AlertRecord | undefined {
    const row = this.stmt(`SELECT * FROM alerts WHERE rule_id = ? AND asset_id = ? AND sensor_id = ? AND state <> 'resolved'`).get(ruleId, assetId, sensorId) as
      | AlertRow
      | undefined;
    return row && fromAlertRow(row);
  }

  /** Alerts newest first. */
  listAlerts(filter: AlertFilter = {}): AlertRecord[] {
    const where: string[] = [];
    const params: Record<string, unknown> = {};
    if (filter.state !== undefined) {
      where.push('state = @state');
      params.state = filter.state;
    }
    if (filter.level !== undefined) {
      where.push('level = @level');
      params.level = filter.level;
    }
    if (filter.assetId !== undefined) {
      where.push('asset_id = @asset_id');
      params.asset_id = filter.assetId;
    }
    params.limit = clampLimit(filter.limit);
    const sql = `SELECT * FROM alerts ${where.length ? `WHERE ${where.join(' AND ')}` : ''} ORDER BY started_at DESC, rowid DESC LIMIT @limit`;
    return (this.stmt(sql).all(params) as AlertRow[]).map(fromAlertRow);
  }

  /** Open (firing or acknowledged) alerts, newest first; of one rule when ruleId is given. */
  openAlerts(ruleId?: string): AlertRecord[] {
    const rows =
      ruleId === undefined
        ? this.stmt(`SELECT * FROM alerts WHERE state <> 'resolved' ORDER BY started_at DESC, rowid DESC`).all()
        : this.stmt(`SELECT * FROM alerts WHERE state <> 'resolved' AND rule_id = ? ORDER BY started_at DESC, rowid DESC`).all(ruleId);
    return (rows as AlertRow[]).map(fromAlertRow);
  }

  /**
   * Deletes up to `limit` alerts resolved before `before`, oldest first, with their timeline,
   * outbox rows and schedule, in one transaction; alerts with a pending notification are kept.
   * Then up to `limit` settled digests last updated before `before`. Returns the alerts deleted.
   */
  pruneResolved(before: number, limit: number): { alerts: number; digests: number } {
    return this.transaction(() => {
      const ids = (
        this.stmt(
          `SELECT id FROM alerts a WHERE state = 'resolved' AND resolved_at < ?
             AND NOT EXISTS (SELECT 1 FROM outbox o WHERE o.alert_id = a.id AND o.status = 'pending')
           ORDER BY resolved_at LIMIT ?`,
        ).all(before, limit) as Array<{ id: string }>
      ).map((r) => r.id);
      for (const id of ids) {
        this.stmt('DELETE FROM alert_timeline WHERE alert_id = ?').run(id);
        this.stmt('DELETE FROM outbox WHERE alert_id = ?').run(id);
        this.stmt('DELETE FROM escalation_schedule WHERE alert_id = ?').run(id);
        this.stmt('DELETE FROM alerts WHERE id = ?').run(id);
      }
      const digests = this.stmt(
        `DELETE FROM outbox_digests WHERE delivery_id IN (SELECT delivery_id FROM outbox_digests WHERE status <> 'pending' AND updated_at < ? LIMIT ?)`,
      ).run(before, limit).changes;
      return { alerts: ids.length, digests };
    });
  }

  /** Alerts (open or resolved) with a held transition notification. */
  alertsWithHeldNotice(): AlertRecord[] {
    return (this.stmt('SELECT * FROM alerts WHERE held_notice IS NOT NULL ORDER BY updated_at, rowid').all() as AlertRow[]).map(fromAlertRow);
  }

  openCountsByLevel(): Map<string, number> {
    const rows = this.stmt(`SELECT level, COUNT(*) AS n FROM alerts WHERE state <> 'resolved' GROUP BY level`).all() as Array<{ level: string; n: number }>;
    return new Map(rows.map((r) => [r.level, r.n]));
  }

  // ---- timeline ----

  appendTimeline(entry: Omit<TimelineEntry, 'seq'>): number {
    const info = this.stmt(
      `INSERT INTO alert_timeline (alert_id, at, kind, type, level, state, tier, channel, delivery_id, detail)
       VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
    ).run(entry.alertId, entry.at, entry.kind, entry.type, entry.level, entry.state, entry.tier, entry.channel, entry.deliveryId, JSON.stringify(entry.detail));
    return Number(info.lastInsertRowid);
  }

  timeline(alertId: string): TimelineEntry[] {
    const rows = this.stmt('SELECT * FROM alert_timeline WHERE alert_id = ? ORDER BY seq').all(alertId) as TimelineRow[];
    return rows.map((r) => ({
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
    }));
  }

  // ---- outbox ----

  insertOutbox(row: Omit<OutboxRow, 'seq' | 'status' | 'attempts' | 'updatedAt' | 'lastError' | 'digestId'>): void {
    this.stmt(
      `INSERT INTO outbox (delivery_id, alert_id, channel_id, recipients, event, tier, body, status, attempts, next_attempt_at, created_at, updated_at, last_error)
       VALUES (?, ?, ?, ?, ?, ?, ?, 'pending', 0, ?, ?, ?, NULL)`,
    ).run(row.deliveryId, row.alertId, row.channelId, JSON.stringify(row.recipients), row.event, row.tier, row.body, row.nextAttemptAt, row.createdAt, row.createdAt);
  }

  getOutbox(deliveryId: string): OutboxRow | undefined {
    const row = this.stmt('SELECT * FROM outbox WHERE delivery_id = ?').get(deliveryId) as OutboxDbRow | undefined;
    return row && fromOutboxRow(row);
  }

  outboxForAlert(alertId: string): OutboxRow[] {
    return (this.stmt('SELECT * FROM outbox WHERE alert_id = ? ORDER BY seq').all(alertId) as OutboxDbRow[]).map(fromOutboxRow);
  }

  /**
   * Pending rows that are next in line: for each (alert, channel, recipients) only the oldest
   * pending row, so one receiver gets an alert's notifications in the order they happened. Rows
   * taken into a digest are not heads (the digest is), but still hold back later rows.
   */
  pendingOutboxHeads(): OutboxRow[] {
    const rows = this.stmt(
      `SELECT o.* FROM outbox o
       WHERE o.status = 'pending' AND o.digest_id IS NULL
         AND NOT EXISTS (SELECT 1 FROM outbox p WHERE p.status = 'pending' AND p.alert_id = o.alert_id AND p.channel_id = o.channel_id
                           AND p.recipients = o.recipients AND p.seq < o.seq)
       ORDER BY o.next_attempt_at, o.seq`,
    ).all() as OutboxDbRow[];
    return rows.map(fromOutboxRow);
  }

  /** Pending rows with a seq above `afterSeq`, oldest first, without their bodies (the outbox sender's index). */
  pendingOutboxRows(afterSeq = 0): PendingRow[] {
    const rows = this.stmt(
      `SELECT seq, delivery_id, alert_id, channel_id, recipients, event, tier, attempts, next_attempt_at, created_at, digest_id
       FROM outbox WHERE seq > ? AND status = 'pending' ORDER BY seq`,
    ).all(afterSeq) as Array<Omit<OutboxDbRow, 'body' | 'status' | 'updated_at' | 'last_error'>>;
    return rows.map((r) => ({
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
    }));
  }

  // ---- digests ----

  /** Records a digest and marks its members as taken into it. */
  insertDigest(d: Omit<DigestRow, 'status' | 'attempts' | 'updatedAt' | 'lastError'>): void {
    this.stmt(
      `INSERT INTO outbox_digests (delivery_id, channel_id, rate_key, recipients, members, status, attempts, next_attempt_at, created_at, updated_at, last_error)
       VALUES (?, ?, ?, ?, ?, 'pending', 0, ?, ?, ?, NULL)`,
    ).run(d.deliveryId, d.channelId, d.rateKey, JSON.stringify(d.recipients), JSON.stringify(d.members), d.nextAttemptAt, d.createdAt, d.createdAt);
    const claim = this.stmt(`UPDATE outbox SET digest_id = ? WHERE delivery_id = ? AND status = 'pending' AND digest_id IS NULL`);
    for (const member of d.members) {
      if (claim.run(d.deliveryId, member).changes !== 1) throw new Error(`outbox row ${member} cannot join digest ${d.deliveryId}`);
    }
  }

  pendingDigests(): DigestRow[] {
    return (this.stmt(`SELECT * FROM outbox_digests WHERE status = 'pending' ORDER BY next_attempt_at, created_at`).all() as DigestDbRow[]).map(fromDigestRow);
  }

  getDigest(deliveryId: string): DigestRow | undefined {
    const row = this.stmt('SELECT * FROM outbox_digests WHERE delivery_id = ?').get(deliveryId) as DigestDbRow | undefined;
    return row && fromDigestRow(row);
  }

  updateDigest(deliveryId: string, change: { status: OutboxStatus; attempts: number; nextAttemptAt: number; updatedAt: number; lastError: string | null }): void {
    this.stmt(`UPDATE outbox_digests SET status = ?, attempts = ?, next_attempt_at = ?, updated_at = ?, last_error = ? WHERE delivery_id = ?`).run(
      change.status,
      change.attempts,
      change.nextAttemptAt,
      change.updatedAt,
      change.lastError,
      deliveryId,
    );
  }

  /** Attempts made since `since` (platform time), by channel and recipients: seeds the rate limits after a restart. */
  attemptsSince(since: number): Array<{ channelId: string; recipients: string[]; at: number }> {
    const rows = this.stmt(
      `SELECT channel_id, recipients, updated_at FROM outbox WHERE attempts > 0 AND digest_id IS NULL AND updated_at >= ?
       UNION ALL SELECT channel_id, recipients, updated_at FROM outbox_digests WHERE attempts > 0 AND updated_at >= ?`,
    ).all(since, since) as Array<{ channel_id: string; recipients: string; updated_at: number }>;
    return rows.map((r) => ({ channelId: r.channel_id, recipients: JSON.parse(r.recipients) as string[], at: r.updated_at }));
  }

  // ---- silences ----

  insertSilence(s: SilenceRecord): void {
    this.stmt(
      `INSERT INTO silences (id, matchers, starts_at, ends_at, reason, created_by, created_at, deleted_at, deleted_by) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`,
    ).run(s.id, JSON.stringify(s.matchers), s.startsAt, s.endsAt, s.reason, s.createdBy, s.createdAt, s.deletedAt, s.deletedBy);
  }

  getSilence(id: string): SilenceRecord | undefined {
    const row = this.stmt('SELECT * FROM silences WHERE id = ?').get(id) as SilenceDbRow | undefined;
    return row && fromSilenceRow(row);
  }

  /** Silences not deleted whose end is after `since`, by start time. */
  silencesEndingAfter(since: number): SilenceRecord[] {
    return (this.stmt('SELECT * FROM silences WHERE deleted_at IS NULL AND ends_at > ? ORDER BY starts_at, id').all(since) as SilenceDbRow[]).map(fromSilenceRow);
  }

  /** Silences not deleted that ended at or before `now`, newest first. */
  expiredSilences(now: number, limit = 1000): SilenceRecord[] {
    return (this.stmt('SELECT * FROM silences WHERE deleted_at IS NULL AND ends_at <= ? ORDER BY ends_at DESC, id LIMIT ?').all(now, limit) as SilenceDbRow[]).map(fromSilenceRow);
  }

  deleteSilence(id: string, at: number, by: string): boolean {
    return this.stmt('UPDATE silences SET deleted_at = ?, deleted_by = ? WHERE id = ? AND deleted_at IS NULL').run(at, by, id).changes === 1;
  }

  // ---- flapping ----

  setFlapping(key: AlertKey, since: number | null): void {
    if (since === null) this.stmt('DELETE FROM flapping WHERE rule_id = ? AND asset_id = ? AND sensor_id = ?').run(key.ruleId, key.assetId, key.sensorId);
    else this.stmt('INSERT INTO flapping (rule_id, asset_id, sensor_id, since) VALUES (?, ?, ?, ?) ON CONFLICT DO NOTHING').run(key.ruleId, key.assetId, key.sensorId, since);
  }

  flappingKeys(): Array<AlertKey & { since: number }> {
    return (this.stmt('SELECT * FROM flapping').all() as Array<{ rule_id: string; asset_id: string; sensor_id: string; since: number }>).map((r) => ({
      ruleId: r.rule_id,
      assetId: r.asset_id,
      sensorId: r.sensor_id,
      since: r.since,
    }));
  }

  // ---- acknowledgement links and settings ----

  /** Records a used link nonce; false when it was used before. */
  useAckLink(nonce: string, alertId: string, usedAt: number, expiresAt: number): boolean {
    return this.stmt('INSERT INTO ack_links_used (nonce, alert_id, used_at, expires_at) VALUES (?, ?, ?, ?) ON CONFLICT DO NOTHING').run(nonce, alertId, usedAt, expiresAt).changes === 1;
  }

  ackLinkUsed(nonce: string): boolean {
    return this.stmt('SELECT 1 FROM ack_links_used WHERE nonce = ?').get(nonce) !== undefined;
  }

  /** Forgets used nonces of links that expired before `now` (they are refused as expired anyway). */
  pruneAckLinks(now: number): void {
    this.stmt('DELETE FROM ack_links_used WHERE expires_at < ?').run(now);
  }

  /** A setting, created with `init()` on first use and kept from then on. */
  meta(key: string, init: () => string): string {
    const row = this.stmt('SELECT value FROM meta WHERE key = ?').get(key) as { value: string } | undefined;
    if (row) return row.value;
    const value = init();
    this.stmt('INSERT INTO meta (key, value) VALUES (?, ?) ON CONFLICT DO NOTHING').run(key, value);
    return (this.stmt('SELECT value FROM meta WHERE key = ?').get(key) as { value: string }).value;
  }

  pendingOutboxCount(): number {
    return (this.stmt(`SELECT COUNT(*) AS n FROM outbox WHERE status = 'pending'`).get() as { n: number }).n;
  }

  /** Records the outcome of one attempt on the outbox row. */
  updateOutbox(deliveryId: string, change: { status: OutboxStatus; attempts: number; nextAttemptAt: number; updatedAt: number; lastError: string | null }): void {
    this.stmt(`UPDATE outbox SET status = ?, attempts = ?, next_attempt_at = ?, updated_at = ?, last_error = ? WHERE delivery_id = ?`).run(
      change.status,
      change.attempts,
      change.nextAttemptAt,
      change.updatedAt,
      change.lastError,
      deliveryId,
    );
  }

  /** Everyone an alert has been notified to so far: channel -> contact ids, in first-notified order. */
  notifiedTargets(alertId: string): Array<{ channel: string; to: string[] }> {
    const rows = this.stmt('SELECT channel_id, recipients FROM outbox WHERE alert_id = ? ORDER BY seq').all(alertId) as Array<{ channel_id: string; recipients: string }>;
    const byChannel = new Map<string, Set<string>>();
    for (const row of rows) {
      let to = byChannel.get(row.channel_id);
      if (!to) byChannel.set(row.channel_id, (to = new Set()));
      for (const contact of JSON.parse(row.recipients) as string[]) to.add(contact);
    }
    return [...byChannel].map(([channel, to]) => ({ channel, to: [...to] }));
  }

  // ---- escalation schedule ----

  putSchedule(s: EscalationSchedule): void {
    this.stmt(
      `INSERT INTO escalation_schedule (alert_id, policy_id, anchor_at, next_tier, next_due_at, repeats) VALUES (?, ?, ?, ?, ?, ?)
       ON CONFLICT (alert_id) DO UPDATE SET policy_id = excluded.policy_id, anchor_at = excluded.anchor_at, next_tier = excluded.next_tier,
         next_due_at = excluded.next_due_at, repeats = excluded.repeats`,
    ).run(s.alertId, s.policyId, s.anchorAt, s.nextTier, s.nextDueAt, s.repeats);
  }

  getSchedule(alertId: string): EscalationSchedule | undefined {
    const row = this.stmt('SELECT * FROM escalation_schedule WHERE alert_id = ?').get(alertId) as ScheduleRow | undefined;
    return row && fromScheduleRow(row);
  }

  deleteSchedule(alertId: string): void {
    this.stmt('DELETE FROM escalation_schedule WHERE alert_id = ?').run(alertId);
  }

  dueSchedules(now: number): EscalationSchedule[] {
    return (this.stmt('SELECT * FROM escalation_schedule WHERE next_due_at <= ? ORDER BY next_due_at, alert_id').all(now) as ScheduleRow[]).map(fromScheduleRow);
  }

  /** The earliest due time after `now` (due schedules that are held are not counted). */
  nextScheduleDueAfter(now: number): number | undefined {
    const row = this.stmt('SELECT MIN(next_due_at) AS due FROM escalation_schedule WHERE next_due_at > ?').get(now) as { due: number | null };
    return row.due ?? undefined;
  }

  nextScheduleDue(): number | undefined {
    const row = this.stmt('SELECT MIN(next_due_at) AS due FROM escalation_schedule').get() as { due: number | null };
    return row.due ?? undefined;
  }

  private stmt(sql: string): Database.Statement {
    let statement = this.statements.get(sql);
    if (!statement) {
      statement = this.db.prepare(sql);
      this.statements.set(sql, statement);
    }
    return statement;
  }
}

/** Makes `file` mode 0600 (creating it empty when `create`), also when an older version made it wider. */
function restrictToOwner(file: string, create: boolean): void {
  if (create) fs.closeSync(fs.openSync(file, fs.constants.O_RDWR | fs.constants.O_CREAT, 0o600));
  try {
    fs.chmodSync(file, 0o600);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error;
  }
}

function clampLimit(limit: number | undefined): number {
  if (limit === undefined || !Number.isFinite(limit)) return DEFAULT_LIST_LIMIT;
  return Math.min(Math.max(1, Math.floor(limit)), MAX_LIST_LIMIT);
}

function toAlertRow(a: AlertRecord): AlertRow {
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

function fromAlertRow(r: AlertRow): AlertRecord {
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

function fromOutboxRow(r: OutboxDbRow): OutboxRow {
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

function fromDigestRow(r: DigestDbRow): DigestRow {
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

function fromSilenceRow(r: SilenceDbRow): SilenceRecord {
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

function fromScheduleRow(r: ScheduleRow): EscalationSchedule {
  return { alertId: r.alert_id, policyId: r.policy_id, anchorAt: r.anchor_at, nextTier: r.next_tier, nextDueAt: r.next_due_at, repeats: r.repeats };
}
