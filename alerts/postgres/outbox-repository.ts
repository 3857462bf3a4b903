/** The `outbox` and `outbox_digests` tables of the PostgreSQL store. */
import type { AttemptChange, DigestRow, OutboxRepository, OutboxRow, PendingRow } from '../store.js';
import { fromAttemptRow, fromDigestRow, fromOutboxRow, fromPendingRow, notifiedTargetsOf, PENDING_COLUMNS, type DigestDbRow, type OutboxDbRow, type PendingDbRow } from '../sqlite/rows.js';
import type { PostgresAlertsDatabase } from './database.js';

export class PostgresOutboxRepository implements OutboxRepository {
  constructor(private readonly db: PostgresAlertsDatabase) {}

  insertOutbox(row: Omit<OutboxRow, 'seq' | 'status' | 'attempts' | 'updatedAt' | 'lastError' | 'digestId'>): void {
    this.db.run(
      `INSERT INTO outbox (delivery_id, alert_id, channel_id, recipients, event, tier, body, status, attempts, next_attempt_at, created_at, updated_at, last_error)
       VALUES ($1, $2, $3, $4, $5, $6, $7, 'pending', 0, $8, $9, $9, NULL)`,
      [row.deliveryId, row.alertId, row.channelId, JSON.stringify(row.recipients), row.event, row.tier, row.body, row.nextAttemptAt, row.createdAt],
    );
  }

  getOutbox(deliveryId: string): OutboxRow | undefined {
    const row = this.db.get<OutboxDbRow>('SELECT * FROM outbox WHERE delivery_id = $1', [deliveryId]);
    return row && fromOutboxRow(row);
  }

  outboxForAlert(alertId: string): OutboxRow[] {
    return this.db.all<OutboxDbRow>('SELECT * FROM outbox WHERE alert_id = $1 ORDER BY seq', [alertId]).map(fromOutboxRow);
  }

  /**
   * Pending rows that are next in line: for each (alert, channel, recipients) only the oldest
   * pending row. Rows taken into a digest are not heads (the digest is), but still hold back later rows.
   */
  pendingOutboxHeads(): OutboxRow[] {
    return this.db
      .all<OutboxDbRow>(
        `SELECT o.* FROM outbox o
       WHERE o.status = 'pending' AND o.digest_id IS NULL
         AND NOT EXISTS (SELECT 1 FROM outbox p WHERE p.status = 'pending' AND p.alert_id = o.alert_id AND p.channel_id = o.channel_id
                           AND p.recipients = o.recipients AND p.seq < o.seq)
       ORDER BY o.next_attempt_at, o.seq`,
      )
      .map(fromOutboxRow);
  }

  pendingOutboxRows(afterSeq = 0): PendingRow[] {
    return this.db.all<PendingDbRow>(`SELECT ${PENDING_COLUMNS} FROM outbox WHERE seq > $1 AND status = 'pending' ORDER BY seq`, [afterSeq]).map(fromPendingRow);
  }

  pendingOutboxCount(): number {
    return this.db.get<{ n: number }>(`SELECT COUNT(*) AS n FROM outbox WHERE status = 'pending'`)!.n;
  }

  claimOutbox(deliveryId: string, owner: string, now: number, untilMs: number): boolean {
    return this.claim('outbox', deliveryId, owner, now, untilMs);
  }

  updateOutbox(deliveryId: string, change: AttemptChange): void {
    this.db.run(`UPDATE outbox SET status = $1, attempts = $2, next_attempt_at = $3, updated_at = $4, last_error = $5, claimed_by = NULL, claimed_until = NULL WHERE delivery_id = $6`, [
      change.status,
      change.attempts,
      change.nextAttemptAt,
      change.updatedAt,
      change.lastError,
      deliveryId,
    ]);
  }

  resolveOutbox(deliveryId: string, recipients: string[], body: string): void {
    this.db.run('UPDATE outbox SET recipients = $1, body = $2 WHERE delivery_id = $3 AND attempts = 0', [JSON.stringify(recipients), body, deliveryId]);
  }

  notifiedTargets(alertId: string): Array<{ channel: string; to: string[] }> {
    return notifiedTargetsOf(this.db.all<{ channel_id: string; recipients: string }>('SELECT channel_id, recipients FROM outbox WHERE alert_id = $1 ORDER BY seq', [alertId]));
  }

  /** Records a digest and marks its members as taken into it, all or nothing. */
  insertDigest(d: Omit<DigestRow, 'status' | 'attempts' | 'updatedAt' | 'lastError'>): void {
    this.db.transaction(() => {
      this.db.run(
        `INSERT INTO outbox_digests (delivery_id, channel_id, rate_key, recipients, members, status, attempts, next_attempt_at, created_at, updated_at, last_error)
         VALUES ($1, $2, $3, $4, $5, 'pending', 0, $6, $7, $7, NULL)`,
        [d.deliveryId, d.channelId, d.rateKey, JSON.stringify(d.recipients), JSON.stringify(d.members), d.nextAttemptAt, d.createdAt],
      );
      const taken = this.db.all<{ delivery_id: string }>(
        `UPDATE outbox SET digest_id = $1 WHERE delivery_id = ANY($2::text[]) AND status = 'pending' AND digest_id IS NULL RETURNING delivery_id`,
        [d.deliveryId, d.members],
      );
      if (taken.length !== new Set(d.members).size) {
        const joined = new Set(taken.map((r) => r.delivery_id));
        const member = d.members.find((m) => !joined.has(m));
        throw new Error(`outbox row ${member} cannot join digest ${d.deliveryId}`);
      }
    });
  }

  pendingDigests(): DigestRow[] {
    return this.db.all<DigestDbRow>(`SELECT * FROM outbox_digests WHERE status = 'pending' ORDER BY next_attempt_at, created_at`).map(fromDigestRow);
  }

  getDigest(deliveryId: string): DigestRow | undefined {
    const row = this.db.get<DigestDbRow>('SELECT * FROM outbox_digests WHERE delivery_id = $1', [deliveryId]);
    return row && fromDigestRow(row);
  }

  claimDigest(deliveryId: string, owner: string, now: number, untilMs: number): boolean {
    return this.claim('outbox_digests', deliveryId, owner, now, untilMs);
  }

  updateDigest(deliveryId: string, change: AttemptChange): void {
    this.db.run(
      `UPDATE outbox_digests SET status = $1, attempts = $2, next_attempt_at = $3, updated_at = $4, last_error = $5, claimed_by = NULL, claimed_until = NULL WHERE delivery_id = $6`,
      [change.status, change.attempts, change.nextAttemptAt, change.updatedAt, change.lastError, deliveryId],
    );
  }

  attemptsSince(since: number): Array<{ channelId: string; recipients: string[]; at: number }> {
    return this.db
      .all<{ channel_id: string; recipients: string; updated_at: number }>(
        `SELECT channel_id, recipients, updated_at FROM outbox WHERE attempts > 0 AND digest_id IS NULL AND updated_at >= $1
       UNION ALL SELECT channel_id, recipients, updated_at FROM outbox_digests WHERE attempts > 0 AND updated_at >= $1`,
        [since],
      )
      .map(fromAttemptRow);
  }

  /**
   * One UPDATE, atomic under READ COMMITTED: a concurrent claim of the same row waits for the
   * first to commit, then re-checks the WHERE against the claimed row and finds it taken.
   */
  private claim(table: 'outbox' | 'outbox_digests', deliveryId: string, owner: string, now: number, untilMs: number): boolean {
    return (
      this.db.run(
        `UPDATE ${table} SET claimed_by = $2, claimed_until = $3
         WHERE delivery_id = $1 AND status = 'pending' AND (claimed_by IS NULL OR claimed_by = $2 OR claimed_until <= $4)`,
        [deliveryId, owner, untilMs, now],
      ) === 1
    );
  }
}
