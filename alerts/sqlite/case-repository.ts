/** The `alert_cases`, `work_orders` and `schedule_overrides` tables of alerts.db. */
import { clampLimit, type CaseRecord, type CaseRepository, type OverrideRecord, type WorkOrderFilter, type WorkOrderRecord } from '../store.js';
import type { AlertsDatabase } from './database.js';
import { fromCaseRow, fromOverrideRow, fromWorkOrderRow, workOrderParams, type CaseRow, type OverrideRow, type WorkOrderRow } from './rows.js';

export class SqliteCaseRepository implements CaseRepository {
  constructor(private readonly db: AlertsDatabase) {}

  getCase(alertId: string): CaseRecord | undefined {
    const row = this.db.stmt('SELECT * FROM alert_cases WHERE alert_id = ?').get(alertId) as CaseRow | undefined;
    return row && fromCaseRow(row);
  }

  getCases(alertIds: readonly string[]): Map<string, CaseRecord> {
    const found = new Map<string, CaseRecord>();
    // json_each takes the ids as one bound parameter, however many there are.
    const rows = alertIds.length === 0 ? [] : (this.db.stmt('SELECT * FROM alert_cases WHERE alert_id IN (SELECT value FROM json_each(?))').all(JSON.stringify(alertIds)) as CaseRow[]);
    for (const row of rows) found.set(row.alert_id, fromCaseRow(row));
    return found;
  }

  putCase(c: CaseRecord): void {
    this.db
      .stmt(
        `INSERT INTO alert_cases (alert_id, status, department, work_order_id, dismiss_reason, updated_at, ack_deadline) VALUES (?, ?, ?, ?, ?, ?, ?)
       ON CONFLICT (alert_id) DO UPDATE SET status = excluded.status, department = excluded.department, work_order_id = excluded.work_order_id,
         dismiss_reason = excluded.dismiss_reason, updated_at = excluded.updated_at, ack_deadline = excluded.ack_deadline`,
      )
      .run(c.alertId, c.status, c.department, c.workOrderId, c.dismissReason, c.updatedAt, c.ackDeadline);
  }

  dueAckDeadlines(now: number): CaseRecord[] {
    return (this.db.stmt('SELECT * FROM alert_cases WHERE ack_deadline IS NOT NULL AND ack_deadline <= ? ORDER BY ack_deadline, alert_id').all(now) as CaseRow[]).map(fromCaseRow);
  }

  nextAckDeadline(): number | undefined {
    const row = this.db.stmt('SELECT MIN(ack_deadline) AS due FROM alert_cases WHERE ack_deadline IS NOT NULL').get() as { due: number | null };
    return row.due ?? undefined;
  }

  insertWorkOrder(w: WorkOrderRecord): void {
    this.db
      .stmt(
        `INSERT INTO work_orders (alert_id, department, status, note, created_by, created_at, due_at, nonce, expires_at, arrived_at, closed_at, closed_by, outcome, overdue_at, id)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
      )
      .run(...workOrderParams(w));
  }

  updateWorkOrder(w: WorkOrderRecord): void {
    const info = this.db
      .stmt(
        `UPDATE work_orders SET alert_id = ?, department = ?, status = ?, note = ?, created_by = ?, created_at = ?, due_at = ?, nonce = ?, expires_at = ?,
           arrived_at = ?, closed_at = ?, closed_by = ?, outcome = ?, overdue_at = ? WHERE id = ?`,
      )
      .run(...workOrderParams(w));
    if (info.changes !== 1) throw new Error(`no work order with id ${w.id}`);
  }

  getWorkOrder(id: string): WorkOrderRecord | undefined {
    const row = this.db.stmt('SELECT * FROM work_orders WHERE id = ?').get(id) as WorkOrderRow | undefined;
    return row && fromWorkOrderRow(row);
  }

  listWorkOrders(filter: WorkOrderFilter = {}): WorkOrderRecord[] {
    const rows = this.db
      .stmt(
        `SELECT * FROM work_orders WHERE (@department IS NULL OR department = @department) AND (@status IS NULL OR status = @status)
         ORDER BY created_at DESC, rowid DESC LIMIT @limit`,
      )
      .all({ department: filter.department ?? null, status: filter.status ?? null, limit: clampLimit(filter.limit) }) as WorkOrderRow[];
    return rows.map(fromWorkOrderRow);
  }

  dueWorkOrders(now: number): WorkOrderRecord[] {
    return (this.db.stmt(`SELECT * FROM work_orders WHERE status <> 'closed' AND overdue_at IS NULL AND due_at <= ? ORDER BY due_at, id`).all(now) as WorkOrderRow[]).map(fromWorkOrderRow);
  }

  nextWorkOrderDue(): number | undefined {
    const row = this.db.stmt(`SELECT MIN(due_at) AS due FROM work_orders WHERE status <> 'closed' AND overdue_at IS NULL`).get() as { due: number | null };
    return row.due ?? undefined;
  }

  insertOverride(o: OverrideRecord): void {
    this.db
      .stmt('INSERT INTO schedule_overrides (id, schedule_id, member, starts_at, ends_at, created_at, created_by) VALUES (?, ?, ?, ?, ?, ?, ?)')
      .run(o.id, o.scheduleId, o.member, o.startsAt, o.endsAt, o.createdAt, o.createdBy);
  }

  overrides(since: number, scheduleId?: string): OverrideRecord[] {
    const rows = this.db
      .stmt('SELECT * FROM schedule_overrides WHERE ends_at > @since AND (@schedule IS NULL OR schedule_id = @schedule) ORDER BY created_at, id')
      .all({ since, schedule: scheduleId ?? null }) as OverrideRow[];
    return rows.map(fromOverrideRow);
  }
}
