/** What the measures of the disposal loop read from the PostgreSQL store: alerts by start, open cases by status. */
import type { CaseStatus } from '../case-machine.js';
import type { AlertRecord, ReportRepository } from '../store.js';
import { fromAlertRow, type AlertRow } from '../sqlite/rows.js';
import type { PostgresAlertsDatabase } from './database.js';

export class PostgresReportRepository implements ReportRepository {
  constructor(private readonly db: PostgresAlertsDatabase) {}

  alertsStartedBetween(from: number, to: number): AlertRecord[] {
    return this.db.all<AlertRow>('SELECT * FROM alerts WHERE started_at >= $1 AND started_at < $2 ORDER BY started_at, row_seq', [from, to]).map(fromAlertRow);
  }

  openCaseCounts(): Map<CaseStatus, number> {
    const rows = this.db.all<{ status: CaseStatus; n: number }>(
      `SELECT COALESCE(c.status, CASE WHEN a.acknowledged_at IS NULL THEN 'new' ELSE 'acknowledged' END) AS status, COUNT(*) AS n
       FROM alerts a LEFT JOIN alert_cases c ON c.alert_id = a.id
       WHERE c.status IS NULL OR c.status NOT IN ('closed', 'dismissed')
       GROUP BY 1`,
    );
    return new Map(rows.map((r) => [r.status, r.n]));
  }
}
