/** The `audit_log` table of alerts.db: every state-changing HTTP request. */
import { clampLimit, type AuditFilter, type AuditRecord, type AuditRepository } from '../store.js';
import type { AlertsDatabase } from './database.js';

interface AuditRow {
  seq: number;
  at: number;
  actor: string | null;
  method: string;
  path: string;
  outcome: number;
}

export class SqliteAuditRepository implements AuditRepository {
  constructor(private readonly db: AlertsDatabase) {}

  appendAudit(entry: Omit<AuditRecord, 'seq'>): number {
    const info = this.db.stmt('INSERT INTO audit_log (at, actor, method, path, outcome) VALUES (?, ?, ?, ?, ?)').run(entry.at, entry.actor, entry.method, entry.path, entry.outcome);
    return Number(info.lastInsertRowid);
  }

  /** Newest first (by seq, which follows insertion and so time). */
  auditEntries(filter: AuditFilter = {}): AuditRecord[] {
    const rows = this.db
      .stmt('SELECT seq, at, actor, method, path, outcome FROM audit_log WHERE at >= ? AND seq < ? ORDER BY seq DESC LIMIT ?')
      .all(filter.since ?? 0, filter.beforeSeq ?? Number.MAX_SAFE_INTEGER, clampLimit(filter.limit)) as AuditRow[];
    return rows.map((r) => ({ ...r }));
  }

  pruneAudit(before: number, limit: number): number {
    return this.db.stmt('DELETE FROM audit_log WHERE seq IN (SELECT seq FROM audit_log WHERE at < ? ORDER BY seq LIMIT ?)').run(before, limit).changes;
  }
}
