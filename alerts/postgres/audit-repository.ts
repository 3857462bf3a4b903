/** The `audit_log` table of the PostgreSQL store: every state-changing HTTP request. */
import { clampLimit, type AuditFilter, type AuditRecord, type AuditRepository } from '../store.js';
import type { PostgresAlertsDatabase } from './database.js';

export class PostgresAuditRepository implements AuditRepository {
  constructor(private readonly db: PostgresAlertsDatabase) {}

  appendAudit(entry: Omit<AuditRecord, 'seq'>): number {
    return this.db.get<{ seq: number }>('INSERT INTO audit_log (at, actor, method, path, outcome) VALUES ($1, $2, $3, $4, $5) RETURNING seq', [
      entry.at,
      entry.actor,
      entry.method,
      entry.path,
      entry.outcome,
    ])!.seq;
  }

  /** Newest first (by seq, which follows insertion). */
  auditEntries(filter: AuditFilter = {}): AuditRecord[] {
    return this.db.all<AuditRecord>('SELECT seq, at, actor, method, path, outcome FROM audit_log WHERE at >= $1 AND seq < $2 ORDER BY seq DESC LIMIT $3', [
      filter.since ?? 0,
      filter.beforeSeq ?? Number.MAX_SAFE_INTEGER,
      clampLimit(filter.limit),
    ]);
  }

  pruneAudit(before: number, limit: number): number {
    return this.db.run('DELETE FROM audit_log WHERE seq IN (SELECT seq FROM audit_log WHERE at < $1 ORDER BY seq LIMIT $2)', [before, limit]);
  }
}
