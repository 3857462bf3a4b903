/** The `alert_cases`, `work_orders` and `schedule_overrides` tables of the PostgreSQL store. */
import { clampLimit, type CaseRecord, type CaseRepository, type OverrideRecord, type WorkOrderFilter, type WorkOrderRecord } from '../store.js';
import { fromCaseRow, fromOverrideRow, fromWorkOrderRow, WORK_ORDER_COLUMNS, workOrderParams, type CaseRow, type OverrideRow, type WorkOrderRow } from '../sqlite/rows.js';
import type { PostgresAlertsDatabase } from './database.js';

const INSERT_WORK_ORDER = `INSERT INTO work_orders (${WORK_ORDER_COLUMNS.join(', ')}) VALUES (${WORK_ORDER_COLUMNS.map((_, i) => `$${i + 1}`).join(', ')})`;
const UPDATE_WORK_ORDER = `UPDATE work_orders SET ${WORK_ORDER_COLUMNS.slice(0, -1)
  .map((c, i) => `${c} = $${i + 1}`)
  .join(', ')} WHERE id = $${WORK_ORDER_COLUMNS.length}`;

export class PostgresCaseRepository implements CaseRepository {
  constructor(private readonly db: PostgresAlertsDatabase) {}

  getCase(alertId: string): CaseRecord | undefined {
    const row = this.db.get<CaseRow>('SELECT * FROM alert_cases WHERE alert_id = $1', [alertId]);
    return row && fromCaseRow(row);
  }

  getCases(alertIds: readonly string[]): Map<string, CaseRecord> {
    const found = new Map<string, CaseRecord>();
    const rows = alertIds.length === 0 ? [] : this.db.all<CaseRow>('SELECT * FROM alert_cases WHERE alert_id = ANY($1::text[])', [alertIds]);
    for (const row of rows) found.set(row.alert_id, fromCaseRow(row));
    return found;
  }

  putCase(c: CaseRecord): void {
    this.db.run(
      `INSERT INTO alert_cases (alert_id, status, department, work_order_id, dismiss_reason, updated_at, ack_deadline) VALUES ($1, $2, $3, $4, $5, $6, $7)
       ON CONFLICT (alert_id) DO UPDATE SET status = excluded.status, department = excluded.department, work_order_id = excluded.work_order_id,
         dismiss_reason = excluded.dismiss_reason, updated_at = excluded.updated_at, ack_deadline = excluded.ack_deadline`,
      [c.alertId, c.status, c.department, c.workOrderId, c.dismissReason, c.updatedAt, c.ackDeadline],
    );
  }

  dueAckDeadlines(now: number): CaseRecord[] {
    return this.db.all<CaseRow>('SELECT * FROM alert_cases WHERE ack_deadline IS NOT NULL AND ack_deadline <= $1 ORDER BY ack_deadline, alert_id COLLATE "C"', [now]).map(fromCaseRow);
  }

  nextAckDeadline(): number | undefined {
    return this.db.get<{ due: number | null }>('SELECT MIN(ack_deadline) AS due FROM alert_cases WHERE ack_deadline IS NOT NULL')!.due ?? undefined;
  }

  insertWorkOrder(w: WorkOrderRecord): void {
    this.db.run(INSERT_WORK_ORDER, workOrderParams(w));
  }

  updateWorkOrder(w: WorkOrderRecord): void {
    if (this.db.run(UPDATE_WORK_ORDER, workOrderParams(w)) !== 1) throw new Error(`no work order with id ${w.id}`);
  }

  getWorkOrder(id: string): WorkOrderRecord | undefined {
    const row = this.db.get<WorkOrderRow>('SELECT * FROM work_orders WHERE id = $1', [id]);
    return row && fromWorkOrderRow(row);
  }

  listWorkOrders(filter: WorkOrderFilter = {}): WorkOrderRecord[] {
    return this.db
      .all<WorkOrderRow>(
        `SELECT * FROM work_orders WHERE ($1::text IS NULL OR department = $1) AND ($2::text IS NULL OR status = $2)
         ORDER BY created_at DESC, row_seq DESC LIMIT $3`,
        [filter.department ?? null, filter.status ?? null, clampLimit(filter.limit)],
      )
      .map(fromWorkOrderRow);
  }

  dueWorkOrders(now: number): WorkOrderRecord[] {
    return this.db
      .all<WorkOrderRow>(`SELECT * FROM work_orders WHERE status <> 'closed' AND overdue_at IS NULL AND due_at <= $1 ORDER BY due_at, id COLLATE "C"`, [now])
      .map(fromWorkOrderRow);
  }

  nextWorkOrderDue(): number | undefined {
    return this.db.get<{ due: number | null }>(`SELECT MIN(due_at) AS due FROM work_orders WHERE status <> 'closed' AND overdue_at IS NULL`)!.due ?? undefined;
  }

  insertOverride(o: OverrideRecord): void {
    this.db.run('INSERT INTO schedule_overrides (id, schedule_id, member, starts_at, ends_at, created_at, created_by) VALUES ($1, $2, $3, $4, $5, $6, $7)', [
      o.id,
      o.scheduleId,
      o.member,
      o.startsAt,
      o.endsAt,
      o.createdAt,
      o.createdBy,
    ]);
  }

  overrides(since: number, scheduleId?: string): OverrideRecord[] {
    return this.db
      .all<OverrideRow>('SELECT * FROM schedule_overrides WHERE ends_at > $1 AND ($2::text IS NULL OR schedule_id = $2) ORDER BY created_at, id COLLATE "C"', [since, scheduleId ?? null])
      .map(fromOverrideRow);
  }
}
