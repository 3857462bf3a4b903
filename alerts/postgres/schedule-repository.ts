/** The `escalation_schedule` table of the PostgreSQL store. */
import type { EscalationSchedule, ScheduleRepository } from '../store.js';
import { fromScheduleRow, type ScheduleRow } from '../sqlite/rows.js';
import type { PostgresAlertsDatabase } from './database.js';

export class PostgresScheduleRepository implements ScheduleRepository {
  constructor(private readonly db: PostgresAlertsDatabase) {}

  putSchedule(s: EscalationSchedule): void {
    this.db.run(
      `INSERT INTO escalation_schedule (alert_id, policy_id, anchor_at, next_tier, next_due_at, repeats) VALUES ($1, $2, $3, $4, $5, $6)
       ON CONFLICT (alert_id) DO UPDATE SET policy_id = excluded.policy_id, anchor_at = excluded.anchor_at, next_tier = excluded.next_tier,
         next_due_at = excluded.next_due_at, repeats = excluded.repeats`,
      [s.alertId, s.policyId, s.anchorAt, s.nextTier, s.nextDueAt, s.repeats],
    );
  }

  getSchedule(alertId: string): EscalationSchedule | undefined {
    const row = this.db.get<ScheduleRow>('SELECT * FROM escalation_schedule WHERE alert_id = $1', [alertId]);
    return row && fromScheduleRow(row);
  }

  deleteSchedule(alertId: string): void {
    this.db.run('DELETE FROM escalation_schedule WHERE alert_id = $1', [alertId]);
  }

  dueSchedules(now: number): EscalationSchedule[] {
    return this.db.all<ScheduleRow>('SELECT * FROM escalation_schedule WHERE next_due_at <= $1 ORDER BY next_due_at, alert_id COLLATE "C"', [now]).map(fromScheduleRow);
  }

  nextScheduleDueAfter(now: number): number | undefined {
    return this.db.get<{ due: number | null }>('SELECT MIN(next_due_at) AS due FROM escalation_schedule WHERE next_due_at > $1', [now])!.due ?? undefined;
  }

  nextScheduleDue(): number | undefined {
    return this.db.get<{ due: number | null }>('SELECT MIN(next_due_at) AS due FROM escalation_schedule')!.due ?? undefined;
  }
}
