/** The `silences` and `flapping` tables of the PostgreSQL store. */
import type { AlertKey, HoldRepository, SilenceRecord } from '../store.js';
import { fromFlappingRow, fromSilenceRow, type FlappingRow, type SilenceDbRow } from '../sqlite/rows.js';
import type { PostgresAlertsDatabase } from './database.js';

export class PostgresHoldRepository implements HoldRepository {
  constructor(private readonly db: PostgresAlertsDatabase) {}

  insertSilence(s: SilenceRecord): void {
    this.db.run(`INSERT INTO silences (id, matchers, starts_at, ends_at, reason, created_by, created_at, deleted_at, deleted_by) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)`, [
      s.id,
      JSON.stringify(s.matchers),
      s.startsAt,
      s.endsAt,
      s.reason,
      s.createdBy,
      s.createdAt,
      s.deletedAt,
      s.deletedBy,
    ]);
  }

  getSilence(id: string): SilenceRecord | undefined {
    const row = this.db.get<SilenceDbRow>('SELECT * FROM silences WHERE id = $1', [id]);
    return row && fromSilenceRow(row);
  }

  silencesEndingAfter(since: number): SilenceRecord[] {
    return this.db.all<SilenceDbRow>('SELECT * FROM silences WHERE deleted_at IS NULL AND ends_at > $1 ORDER BY starts_at, id COLLATE "C"', [since]).map(fromSilenceRow);
  }

  expiredSilences(now: number, limit = 1000): SilenceRecord[] {
    return this.db.all<SilenceDbRow>('SELECT * FROM silences WHERE deleted_at IS NULL AND ends_at <= $1 ORDER BY ends_at DESC, id COLLATE "C" LIMIT $2', [now, limit]).map(fromSilenceRow);
  }

  deleteSilence(id: string, at: number, by: string): boolean {
    return this.db.run('UPDATE silences SET deleted_at = $1, deleted_by = $2 WHERE id = $3 AND deleted_at IS NULL', [at, by, id]) === 1;
  }

  setFlapping(key: AlertKey, since: number | null): void {
    if (since === null) this.db.run('DELETE FROM flapping WHERE rule_id = $1 AND asset_id = $2 AND sensor_id = $3', [key.ruleId, key.assetId, key.sensorId]);
    else this.db.run('INSERT INTO flapping (rule_id, asset_id, sensor_id, since) VALUES ($1, $2, $3, $4) ON CONFLICT DO NOTHING', [key.ruleId, key.assetId, key.sensorId, since]);
  }

  flappingKeys(): Array<AlertKey & { since: number }> {
    return this.db.all<FlappingRow>('SELECT * FROM flapping ORDER BY since, rule_id COLLATE "C", asset_id COLLATE "C", sensor_id COLLATE "C"').map(fromFlappingRow);
  }
}
