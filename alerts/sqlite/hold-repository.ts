/** The `silences` and `flapping` tables of alerts.db. */
import type { AlertKey, HoldRepository, SilenceRecord } from '../store.js';
import type { AlertsDatabase } from './database.js';
import { fromFlappingRow, fromSilenceRow, type FlappingRow, type SilenceDbRow } from './rows.js';

export class SqliteHoldRepository implements HoldRepository {
  constructor(private readonly db: AlertsDatabase) {}

  insertSilence(s: SilenceRecord): void {
    this.db
      .stmt(`INSERT INTO silences (id, matchers, starts_at, ends_at, reason, created_by, created_at, deleted_at, deleted_by) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`)
      .run(s.id, JSON.stringify(s.matchers), s.startsAt, s.endsAt, s.reason, s.createdBy, s.createdAt, s.deletedAt, s.deletedBy);
  }

  getSilence(id: string): SilenceRecord | undefined {
    const row = this.db.stmt('SELECT * FROM silences WHERE id = ?').get(id) as SilenceDbRow | undefined;
    return row && fromSilenceRow(row);
  }

  /** Silences not deleted whose end is after `since`, by start time. */
  silencesEndingAfter(since: number): SilenceRecord[] {
    return (this.db.stmt('SELECT * FROM silences WHERE deleted_at IS NULL AND ends_at > ? ORDER BY starts_at, id').all(since) as SilenceDbRow[]).map(fromSilenceRow);
  }

  /** Silences not deleted that ended at or before `now`, newest first. */
  expiredSilences(now: number, limit = 1000): SilenceRecord[] {
    return (this.db.stmt('SELECT * FROM silences WHERE deleted_at IS NULL AND ends_at <= ? ORDER BY ends_at DESC, id LIMIT ?').all(now, limit) as SilenceDbRow[]).map(fromSilenceRow);
  }

  deleteSilence(id: string, at: number, by: string): boolean {
    return this.db.stmt('UPDATE silences SET deleted_at = ?, deleted_by = ? WHERE id = ? AND deleted_at IS NULL').run(at, by, id).changes === 1;
  }

  setFlapping(key: AlertKey, since: number | null): void {
    if (since === null) this.db.stmt('DELETE FROM flapping WHERE rule_id = ? AND asset_id = ? AND sensor_id = ?').run(key.ruleId, key.assetId, key.sensorId);
    else this.db.stmt('INSERT INTO flapping (rule_id, asset_id, sensor_id, since) VALUES (?, ?, ?, ?) ON CONFLICT DO NOTHING').run(key.ruleId, key.assetId, key.sensorId, since);
  }

  flappingKeys(): Array<AlertKey & { since: number }> {
    return (this.db.stmt('SELECT * FROM flapping').all() as FlappingRow[]).map(fromFlappingRow);
  }
}
