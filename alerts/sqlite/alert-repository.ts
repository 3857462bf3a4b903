/** The `alerts` and `alert_timeline` tables of alerts.db, and their retention. */
import { clampLimit, OpenAlertExistsError, type AlertFilter, type AlertRecord, type AlertRepository, type TimelineEntry } from '../store.js';
import type { AlertsDatabase } from './database.js';
import { fromAlertRow, fromTimelineRow, toAlertRow, type AlertRow, type TimelineRow } from './rows.js';

export class SqliteAlertRepository implements AlertRepository {
  constructor(private readonly db: AlertsDatabase) {}

  insertAlert(a: AlertRecord): void {
    try {
      this.insertRow(a);
    } catch (error) {
      const e = error as { code?: unknown; message?: unknown };
      if (e.code === 'SQLITE_CONSTRAINT_UNIQUE' && typeof e.message === 'string' && e.message.includes('alerts.rule_id')) throw new OpenAlertExistsError(a);
      throw error;
    }
  }

  private insertRow(a: AlertRecord): void {
    this.db
      .stmt(
        `INSERT INTO alerts (id, rule_id, asset_id, sensor_id, metric, level, state, value, threshold, event_ts, started_at, updated_at,
         acknowledged_at, acknowledged_by, resolved_at, resolved_by, resolve_reason, rule_name, asset_name, asset_type, street, message, plan,
         escalation_policy, last_tier, held_notice)
       VALUES (@id, @rule_id, @asset_id, @sensor_id, @metric, @level, @state, @value, @threshold, @event_ts, @started_at, @updated_at,
         @acknowledged_at, @acknowledged_by, @resolved_at, @resolved_by, @resolve_reason, @rule_name, @asset_name, @asset_type, @street, @message, @plan,
         @escalation_policy, @last_tier, @held_notice)`,
      )
      .run(toAlertRow(a));
  }

  updateAlert(a: AlertRecord): void {
    const info = this.db
      .stmt(
        `UPDATE alerts SET level = @level, state = @state, value = @value, threshold = @threshold, event_ts = @event_ts, updated_at = @updated_at,
         acknowledged_at = @acknowledged_at, acknowledged_by = @acknowledged_by, resolved_at = @resolved_at, resolved_by = @resolved_by,
         resolve_reason = @resolve_reason, rule_name = @rule_name, asset_name = @asset_name, asset_type = @asset_type, street = @street,
         message = @message, plan = @plan, escalation_policy = @escalation_policy, last_tier = @last_tier, held_notice = @held_notice
       WHERE id = @id`,
      )
      .run(toAlertRow(a));
    if (info.changes !== 1) throw new Error(`alert ${a.id} does not exist`);
  }

  getAlert(id: string): AlertRecord | undefined {
    const row = this.db.stmt('SELECT * FROM alerts WHERE id = ?').get(id) as AlertRow | undefined;
    return row && fromAlertRow(row);
  }

  findOpenAlert(ruleId: string, assetId: string, sensorId: string): AlertRecord | undefined {
    const row = this.db.stmt(`SELECT * FROM alerts WHERE rule_id = ? AND asset_id = ? AND sensor_id = ? AND state <> 'resolved'`).get(ruleId, assetId, sensorId) as AlertRow | undefined;
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
    return (this.db.stmt(sql).all(params) as AlertRow[]).map(fromAlertRow);
  }

  /** Open (firing or acknowledged) alerts, newest first; of one rule when ruleId is given. */
  openAlerts(ruleId?: string): AlertRecord[] {
    const rows =
      ruleId === undefined
        ? this.db.stmt(`SELECT * FROM alerts WHERE state <> 'resolved' ORDER BY started_at DESC, rowid DESC`).all()
        : this.db.stmt(`SELECT * FROM alerts WHERE state <> 'resolved' AND rule_id = ? ORDER BY started_at DESC, rowid DESC`).all(ruleId);
    return (rows as AlertRow[]).map(fromAlertRow);
  }

  /**
   * Deletes up to `limit` alerts resolved before `before`, oldest first, with their timeline,
   * outbox rows, schedule, case and work orders, in one transaction; alerts with a pending
   * notification or an open case (neither closed nor dismissed) are kept.
   * Then up to `limit` settled digests last updated before `before`. Returns the alerts deleted.
   */
  pruneResolved(before: number, limit: number): { alerts: number; digests: number } {
    return this.db.transaction(() => {
      const ids = (
        this.db
          .stmt(
            `SELECT id FROM alerts a WHERE state = 'resolved' AND resolved_at < ?
             AND NOT EXISTS (SELECT 1 FROM outbox o WHERE o.alert_id = a.id AND o.status = 'pending')
             AND NOT EXISTS (SELECT 1 FROM alert_cases c WHERE c.alert_id = a.id AND c.status NOT IN ('closed', 'dismissed'))
           ORDER BY resolved_at LIMIT ?`,
          )
          .all(before, limit) as Array<{ id: string }>
      ).map((r) => r.id);
      for (const id of ids) {
        this.db.stmt('DELETE FROM alert_timeline WHERE alert_id = ?').run(id);
        this.db.stmt('DELETE FROM outbox WHERE alert_id = ?').run(id);
        this.db.stmt('DELETE FROM escalation_schedule WHERE alert_id = ?').run(id);
        this.db.stmt('DELETE FROM work_orders WHERE alert_id = ?').run(id);
        this.db.stmt('DELETE FROM alert_cases WHERE alert_id = ?').run(id);
        this.db.stmt('DELETE FROM alerts WHERE id = ?').run(id);
      }
      const digests = this.db
        .stmt(`DELETE FROM outbox_digests WHERE delivery_id IN (SELECT delivery_id FROM outbox_digests WHERE status <> 'pending' AND updated_at < ? LIMIT ?)`)
        .run(before, limit).changes;
      return { alerts: ids.length, digests };
    });
  }

  /** Alerts (open or resolved) with a held transition notification. */
  alertsWithHeldNotice(): AlertRecord[] {
    return (this.db.stmt('SELECT * FROM alerts WHERE held_notice IS NOT NULL ORDER BY updated_at, rowid').all() as AlertRow[]).map(fromAlertRow);
  }

  openCountsByLevel(): Map<string, number> {
    const rows = this.db.stmt(`SELECT level, COUNT(*) AS n FROM alerts WHERE state <> 'resolved' GROUP BY level`).all() as Array<{ level: string; n: number }>;
    return new Map(rows.map((r) => [r.level, r.n]));
  }

  appendTimeline(entry: Omit<TimelineEntry, 'seq'>): number {
    const info = this.db
      .stmt(
        `INSERT INTO alert_timeline (alert_id, at, kind, type, level, state, tier, channel, delivery_id, detail)
       VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
      )
      .run(entry.alertId, entry.at, entry.kind, entry.type, entry.level, entry.state, entry.tier, entry.channel, entry.deliveryId, JSON.stringify(entry.detail));
    return Number(info.lastInsertRowid);
  }

  timeline(alertId: string): TimelineEntry[] {
    return (this.db.stmt('SELECT * FROM alert_timeline WHERE alert_id = ? ORDER BY seq').all(alertId) as TimelineRow[]).map(fromTimelineRow);
  }
}
