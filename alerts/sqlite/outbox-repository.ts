/** The `outbox` and `outbox_digests` tables of alerts.db. */
import type { AttemptChange, DigestRow, OutboxRepository, OutboxRow, PendingRow } from '../store.js';
import type { AlertsDatabase } from './database.js';
import { fromAttemptRow, fromDigestRow, fromOutboxRow, fromPendingRow, notifiedTargetsOf, PENDING_COLUMNS, type DigestDbRow, type OutboxDbRow, type PendingDbRow } from './rows.js';

export class SqliteOutboxRepository implements OutboxRepository {
  constructor(private readonly db: AlertsDatabase) {}

  insertOutbox(row: Omit<OutboxRow, 'seq' | 'status' | 'attempts' | 'updatedAt' | 'lastError' | 'digestId'>): void {
    this.db
      .stmt(
        `INSERT INTO outbox (delivery_id, alert_id, channel_id, recipients, event, tier, body, status, attempts, next_attempt_at, created_at, updated_at, last_error)
       VALUES (?, ?, ?, ?, ?, ?, ?, 'pending', 0, ?, ?, ?, NULL)`,
      )
      .run(row.deliveryId, row.alertId, row.channelId, JSON.stringify(row.recipients), row.event, row.tier, row.body, row.nextAttemptAt, row.createdAt, row.createdAt);
  }

  getOutbox(deliveryId: string): OutboxRow | undefined {
    const row = this.db.stmt('SELECT * FROM outbox WHERE delivery_id = ?').get(deliveryId) as OutboxDbRow | undefined;
    return row && fromOutboxRow(row);
  }

  outboxForAlert(alertId: string): OutboxRow[] {
    return (this.db.stmt('SELECT * FROM outbox WHERE alert_id = ? ORDER BY seq').all(alertId) as OutboxDbRow[]).map(fromOutboxRow);
  }

  /**
   * Pending rows that are next in line: for each (alert, channel, recipients) only the oldest
   * pending row, so one receiver gets an alert's notifications in the order they happened. Rows
   * taken into a digest are not heads (the digest is), but still hold back later rows.
   */
  pendingOutboxHeads(): OutboxRow[] {
    const rows = this.db
      .stmt(
        `SELECT o.* FROM outbox o
       WHERE o.status = 'pending' AND o.digest_id IS NULL
         AND NOT EXISTS (SELECT 1 FROM outbox p WHERE p.status = 'pending' AND p.alert_id = o.alert_id AND p.channel_id = o.channel_id
                           AND p.recipients = o.recipients AND p.seq < o.seq)
       ORDER BY o.next_attempt_at, o.seq`,
      )
      .all() as OutboxDbRow[];
    return rows.map(fromOutboxRow);
  }

  /** Pending rows with a seq above `afterSeq`, oldest first, without their bodies (the outbox sender's index). */
  pendingOutboxRows(afterSeq = 0): PendingRow[] {
    return (this.db.stmt(`SELECT ${PENDING_COLUMNS} FROM outbox WHERE seq > ? AND status = 'pending' ORDER BY seq`).all(afterSeq) as PendingDbRow[]).map(fromPendingRow);
  }

  /** Records a digest and marks its members as taken into it. */
  insertDigest(d: Omit<DigestRow, 'status' | 'attempts' | 'updatedAt' | 'lastError'>): void {
    this.db.transaction(() => {
      this.db
        .stmt(
          `INSERT INTO outbox_digests (delivery_id, channel_id, rate_key, recipients, members, status, attempts, next_attempt_at, created_at, updated_at, last_error)
         VALUES (?, ?, ?, ?, ?, 'pending', 0, ?, ?, ?, NULL)`,
        )
        .run(d.deliveryId, d.channelId, d.rateKey, JSON.stringify(d.recipients), JSON.stringify(d.members), d.nextAttemptAt, d.createdAt, d.createdAt);
      const claim = this.db.stmt(`UPDATE outbox SET digest_id = ? WHERE delivery_id = ? AND status = 'pending' AND digest_id IS NULL`);
      for (const member of d.members) {
        if (claim.run(d.deliveryId, member).changes !== 1) throw new Error(`outbox row ${member} cannot join digest ${d.deliveryId}`);
      }
    });
  }

  pendingDigests(): DigestRow[] {
    return (this.db.stmt(`SELECT * FROM outbox_digests WHERE status = 'pending' ORDER BY next_attempt_at, created_at`).all() as DigestDbRow[]).map(fromDigestRow);
  }

  getDigest(deliveryId: string): DigestRow | undefined {
    const row = this.db.stmt('SELECT * FROM outbox_digests WHERE delivery_id = ?').get(deliveryId) as DigestDbRow | undefined;
    return row && fromDigestRow(row);
  }

  claimDigest(deliveryId: string, owner: string, now: number, untilMs: number): boolean {
    return this.claim('outbox_digests', deliveryId, owner, now, untilMs);
  }

  updateDigest(deliveryId: string, change: AttemptChange): void {
    this.db
      .stmt(`UPDATE outbox_digests SET status = ?, attempts = ?, next_attempt_at = ?, updated_at = ?, last_error = ?, claimed_by = NULL, claimed_until = NULL WHERE delivery_id = ?`)
      .run(change.status, change.attempts, change.nextAttemptAt, change.updatedAt, change.lastError, deliveryId);
  }

  /** Attempts made since `since` (platform time), by channel and recipients: seeds the rate limits after a restart. */
  attemptsSince(since: number): Array<{ channelId: string; recipients: string[]; at: number }> {
    const rows = this.db
      .stmt(
        `SELECT channel_id, recipients, updated_at FROM outbox WHERE attempts > 0 AND digest_id IS NULL AND updated_at >= ?
       UNION ALL SELECT channel_id, recipients, updated_at FROM outbox_digests WHERE attempts > 0 AND updated_at >= ?`,
      )
      .all(since, since) as Array<{ channel_id: string; recipients: string; updated_at: number }>;
    return rows.map(fromAttemptRow);
  }

  pendingOutboxCount(): number {
    return (this.db.stmt(`SELECT COUNT(*) AS n FROM outbox WHERE status = 'pending'`).get() as { n: number }).n;
  }

  /** Records the outcome of one attempt on the outbox row. */
  resolveOutbox(deliveryId: string, recipients: string[], body: string): void {
    this.db.stmt('UPDATE outbox SET recipients = ?, body = ? WHERE delivery_id = ? AND attempts = 0').run(JSON.stringify(recipients), body, deliveryId);
  }

  claimOutbox(deliveryId: string, owner: string, now: number, untilMs: number): boolean {
    return this.claim('outbox', deliveryId, owner, now, untilMs);
  }

  /** One UPDATE: SQLite runs it alone, so the check and the claim cannot interleave with another writer's. */
  private claim(table: 'outbox' | 'outbox_digests', deliveryId: string, owner: string, now: number, untilMs: number): boolean {
    const info = this.db
      .stmt(
        `UPDATE ${table} SET claimed_by = ?, claimed_until = ?
       WHERE delivery_id = ? AND status = 'pending' AND (claimed_by IS NULL OR claimed_by = ? OR claimed_until <= ?)`,
      )
      .run(owner, untilMs, deliveryId, owner, now);
    return info.changes === 1;
  }

  updateOutbox(deliveryId: string, change: AttemptChange): void {
    this.db
      .stmt(`UPDATE outbox SET status = ?, attempts = ?, next_attempt_at = ?, updated_at = ?, last_error = ?, claimed_by = NULL, claimed_until = NULL WHERE delivery_id = ?`)
      .run(change.status, change.attempts, change.nextAttemptAt, change.updatedAt, change.lastError, deliveryId);
  }

  /** Everyone an alert has been notified to so far: channel -> contact ids, in first-notified order. */
  notifiedTargets(alertId: string): Array<{ channel: string; to: string[] }> {
    return notifiedTargetsOf(this.db.stmt('SELECT channel_id, recipients FROM outbox WHERE alert_id = ? ORDER BY seq').all(alertId) as Array<{ channel_id: string; recipients: string }>);
  }
}
