/** What the measures of the disposal loop read from alerts.db: alerts by start, open cases by status. */
import type { CaseStatus } from '../case-machine.js';
import type { AlertRecord, ReportRepository } from '../store.js';
import type { AlertsDatabase } from './database.js';
import { fromAlertRow, type AlertRow } from './rows.js';

export class SqliteReportRepository implements ReportRepository {
  constructor(private readonly db: AlertsDatabase) {}

  /** Oldest first. */
  alertsStartedBetween(from: number, to: number): AlertRecord[] {
    const rows = this.db.stmt('SELECT * FROM alerts WHERE started_at >= ? AND started_at < ? ORDER BY started_at, rowid').all(from, to) as AlertRow[];
    return rows.map(fromAlertRow);
  }

  openCaseCounts(): Map<CaseStatus, number> {
    const rows = this.db
      .stmt(
        `SELECT COALESCE(c.status, CASE WHEN a.acknowledged_at IS NULL THEN 'new' ELSE 'acknowledged' END) AS status, COUNT(*) AS n
         FROM alerts a LEFT JOIN alert_cases c ON c.alert_id = a.id
         WHERE c.status IS NULL OR c.status NOT IN ('closed', 'dismissed')
         GROUP BY 1`,
      )
      .all() as Array<{ status: CaseStatus; n: number }>;
    return new Map(rows.map((r) => [r.status, r.n]));
  }
}
