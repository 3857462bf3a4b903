/** The `escalation_schedule` table of alerts.db. */
import type { EscalationSchedule, ScheduleRepository } from '../store.js';
import type { AlertsDatabase } from './database.js';
import { fromScheduleRow, type ScheduleRow } from './rows.js';

export class SqliteScheduleRepository implements ScheduleRepository {
  constructor(private readonly db: AlertsDatabase) {}

  putSchedule(s: EscalationSchedule): void {
    this.db
      .stmt(
        `INSERT INTO escalation_schedule (alert_id, policy_id, anchor_at, next_tier, next_due_at, repeats) VALUES (?, ?, ?, ?, ?, ?)
       ON CONFLICT (alert_id) DO UPDATE SET policy_id = excluded.policy_id, anchor_at = excluded.anchor_at, next_tier = excluded.next_tier,
         next_due_at = excluded.next_due_at, repeats = excluded.repeats`,
      )
      .run(s.alertId, s.policyId, s.anchorAt, s.nextTier, s.nextDueAt, s.repeats);
  }

  getSchedule(alertId: string): EscalationSchedule | undefined {
    const row = this.db.stmt('SELECT * FROM escalation_schedule WHERE alert_id = ?').get(alertId) as ScheduleRow | undefined;
    return row && fromScheduleRow(row);
  }

  deleteSchedule(alertId: string): void {
    this.db.stmt('DELETE FROM escalation_schedule WHERE alert_id = ?').run(alertId);
  }

  dueSchedules(now: number): EscalationSchedule[] {
    return (this.db.stmt('SELECT * FROM escalation_schedule WHERE next_due_at <= ? ORDER BY next_due_at, alert_id').all(now) as ScheduleRow[]).map(fromScheduleRow);
  }

  /** The earliest due time after `now` (due schedules that are held are not counted). */
  nextScheduleDueAfter(now: number): number | undefined {
    const row = this.db.stmt('SELECT MIN(next_due_at) AS due FROM escalation_schedule WHERE next_due_at > ?').get(now) as { due: number | null };
    return row.due ?? undefined;
  }

  nextScheduleDue(): number | undefined {
    const row = this.db.stmt('SELECT MIN(next_due_at) AS due FROM escalation_schedule').get() as { due: number | null };
    return row.due ?? undefined;
  }
}
