/** The `ack_links_used` and `meta` tables of the PostgreSQL store. */
import type { SettingsRepository } from '../store.js';
import type { PostgresAlertsDatabase } from './database.js';

export class PostgresSettingsRepository implements SettingsRepository {
  constructor(private readonly db: PostgresAlertsDatabase) {}

  /** Records a used link nonce; false when it was used before (also by another instance). */
  useAckLink(nonce: string, alertId: string, usedAt: number, expiresAt: number): boolean {
    return this.db.run('INSERT INTO ack_links_used (nonce, alert_id, used_at, expires_at) VALUES ($1, $2, $3, $4) ON CONFLICT DO NOTHING', [nonce, alertId, usedAt, expiresAt]) === 1;
  }

  ackLinkUsed(nonce: string): boolean {
    return this.db.get('SELECT 1 FROM ack_links_used WHERE nonce = $1', [nonce]) !== undefined;
  }

  pruneAckLinks(now: number): void {
    this.db.run('DELETE FROM ack_links_used WHERE expires_at < $1', [now]);
  }

  /** A setting, created with `init()` on first use and kept from then on: of two instances racing, the first insert wins. */
  meta(key: string, init: () => string): string {
    const row = this.db.get<{ value: string }>('SELECT value FROM meta WHERE key = $1', [key]);
    if (row) return row.value;
    const value = init();
    this.db.run('INSERT INTO meta (key, value) VALUES ($1, $2) ON CONFLICT DO NOTHING', [key, value]);
    return this.db.get<{ value: string }>('SELECT value FROM meta WHERE key = $1', [key])!.value;
  }
}
