/** The `alerts` and `alert_timeline` tables of the PostgreSQL store, and their retention. */
import { clampLimit, OpenAlertExistsError, type AlertFilter, type AlertRecord, type AlertRepository, type TimelineEntry } from '../store.js';
import { ALERT_COLUMNS, alertParams, fromAlertRow, fromTimelineRow, toAlertRow, type AlertRow, type TimelineRow } from '../sqlite/rows.js';
import type { PostgresAlertsDatabase } from './database.js';
import { PostgresError } from './sync-bridge.js';

const INSERT_ALERT = `INSERT INTO alerts (${ALERT_COLUMNS.join(', ')}) VALUES (${ALERT_COLUMNS.map((_, i) => `$${i + 1}`).join(', ')})`;
/** What an update may change: not the key, the metric or the start. */
const UPDATED_COLUMNS = ALERT_COLUMNS.filter((c) => !['id', 'rule_id', 'asset_id', 'sensor_id', 'metric', 'started_at'].includes(c));
const UPDATE_ALERT = `UPDATE alerts SET ${UPDATED_COLUMNS.map((c, i) => `${c} = $${i + 2}`).join(', ')} WHERE id = $1`;

export class PostgresAlertRepository implements AlertRepository {
  constructor(private readonly db: PostgresAlertsDatabase) {}

  insertAlert(a: AlertRecord): void {
    try {
      this.db.run(INSERT_ALERT, alertParams(a));
    } catch (error) {
      if (error instanceof PostgresError && error.code === '23505' && error.constraint === 'alerts_one_open') throw new OpenAlertExistsError(a);
      throw error;
    }
  }

  updateAlert(a: AlertRecord): void {
    const row = toAlertRow(a);
    const changed = this.db.run(UPDATE_ALERT, [row.id, ...UPDATED_COLUMNS.map((c) => row[c])]);
    if (changed !== 1) throw new Error(`alert ${a.id} does not exist`);
  }

  /** Inside a transaction the row is locked until it ends, so two instances' changes of one alert serialize. */
  getAlert(id: string): AlertRecord | undefined {
    const row = this.db.get<AlertRow>(`SELECT * FROM alerts WHERE id = $1${this.lock()}`, [id]);
    return row && fromAlertRow(row);
  }

  findOpenAlert(ruleId: string, assetId: string, sensorId: string): AlertRecord | undefined {
    const row = this.db.get<AlertRow>(`SELECT * FROM alerts WHERE rule_id = $1 AND asset_id = $2 AND sensor_id = $3 AND state <> 'resolved'${this.lock()}`, [ruleId, assetId, sensorId]);
    return row && fromAlertRow(row);
  }

  /** Alerts newest first. */
  listAlerts(filter: AlertFilter = {}): AlertRecord[] {
    const rows = this.db.all<AlertRow>(
      `SELECT * FROM alerts WHERE ($1::text IS NULL OR state = $1) AND ($2::text IS NULL OR level = $2) AND ($3::text IS NULL OR asset_id = $3)
       ORDER BY started_at DESC, row_seq DESC LIMIT $4`,
      [filter.state ?? null, filter.level ?? null, filter.assetId ?? null, clampLimit(filter.limit)],
    );
    return rows.map(fromAlertRow);
  }

  openAlerts(ruleId?: string): AlertRecord[] {
    const rows = this.db.all<AlertRow>(`SELECT * FROM alerts WHERE state <> 'resolved' AND ($1::text IS NULL OR rule_id = $1) ORDER BY started_at DESC, row_seq DESC`, [ruleId ?? null]);
    return rows.map(fromAlertRow);
  }

  /**
   * Deletes up to `limit` alerts resolved before `before`, oldest first, with their timeline,
   * outbox rows, schedule, case and work orders, in one transaction; alerts with a pending
   * notification or an open case (neither closed nor dismissed) are kept.
   * Then up to `limit` settled digests last updated before `before`.
   */
  pruneResolved(before: number, limit: number): { alerts: number; digests: number } {
    return this.db.transaction(() => {
      const ids = this.db
        .all<{ id: string }>(
          `SELECT id FROM alerts a WHERE state = 'resolved' AND resolved_at < $1
             AND NOT EXISTS (SELECT 1 FROM outbox o WHERE o.alert_id = a.id AND o.status = 'pending')
             AND NOT EXISTS (SELECT 1 FROM alert_cases c WHERE c.alert_id = a.id AND c.status NOT IN ('closed', 'dismissed'))
           ORDER BY resolved_at LIMIT $2 FOR UPDATE SKIP LOCKED`,
          [before, limit],
        )
        .map((r) => r.id);
      if (ids.length > 0) {
        for (const table of ['alert_timeline', 'outbox', 'escalation_schedule', 'work_orders', 'alert_cases']) this.db.run(`DELETE FROM ${table} WHERE alert_id = ANY($1::text[])`, [ids]);
        this.db.run('DELETE FROM alerts WHERE id = ANY($1::text[])', [ids]);
      }
      const digests = this.db.run(
        `DELETE FROM outbox_digests WHERE delivery_id IN (SELECT delivery_id FROM outbox_digests WHERE status <> 'pending' AND updated_at < $1 LIMIT $2 FOR UPDATE SKIP LOCKED)`,
        [before, limit],
      );
      return { alerts: ids.length, digests };
    });
  }

  alertsWithHeldNotice(): AlertRecord[] {
    return this.db.all<AlertRow>('SELECT * FROM alerts WHERE held_notice IS NOT NULL ORDER BY updated_at, row_seq').map(fromAlertRow);
  }

  openCountsByLevel(): Map<string, number> {
    const rows = this.db.all<{ level: string; n: number }>(`SELECT level, COUNT(*) AS n FROM alerts WHERE state <> 'resolved' GROUP BY level`);
    return new Map(rows.map((r) => [r.level, r.n]));
  }

  appendTimeline(entry: Omit<TimelineEntry, 'seq'>): number {
    const row = this.db.get<{ seq: number }>(
      `INSERT INTO alert_timeline (alert_id, at, kind, type, level, state, tier, channel, delivery_id, detail) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) RETURNING seq`,
      [entry.alertId, entry.at, entry.kind, entry.type, entry.level, entry.state, entry.tier, entry.channel, entry.deliveryId, JSON.stringify(entry.detail)],
    );
    return row!.seq;
  }

  timeline(alertId: string): TimelineEntry[] {
    return this.db.all<TimelineRow>('SELECT * FROM alert_timeline WHERE alert_id = $1 ORDER BY seq', [alertId]).map(fromTimelineRow);
  }

  private lock(): string {
    return this.db.inTransaction ? ' FOR UPDATE' : '';
  }
}
