/** The `ack_links_used` and `meta` tables of alerts.db. */
import type { SettingsRepository } from '../store.js';
import type { AlertsDatabase } from './database.js';

export class SqliteSettingsRepository implements SettingsRepository {
  constructor(private readonly db: AlertsDatabase) {}

  /** Records a used link nonce; false when it was used before. */
  useAckLink(nonce: string, alertId: string, usedAt: number, expiresAt: number): boolean {
    return this.db.stmt('INSERT INTO ack_links_used (nonce, alert_id, used_at, expires_at) VALUES (?, ?, ?, ?) ON CONFLICT DO NOTHING').run(nonce, alertId, usedAt, expiresAt).changes === 1;
  }

  ackLinkUsed(nonce: string): boolean {
    return this.db.stmt('SELECT 1 FROM ack_links_used WHERE nonce = ?').get(nonce) !== undefined;
  }

  /** Forgets used nonces of links that expired before `now` (they are refused as expired anyway). */
  pruneAckLinks(now: number): void {
    this.db.stmt('DELETE FROM ack_links_used WHERE expires_at < ?').run(now);
  }

  /** A setting, created with `init()` on first use and kept from then on. */
  meta(key: string, init: () => string): string {
    const row = this.db.stmt('SELECT value FROM meta WHERE key = ?').get(key) as { value: string } | undefined;
    if (row) return row.value;
    const value = init();
    this.db.stmt('INSERT INTO meta (key, value) VALUES (?, ?) ON CONFLICT DO NOTHING').run(key, value);
    return (this.db.stmt('SELECT value FROM meta WHERE key = ?').get(key) as { value: string }).value;
  }
}
