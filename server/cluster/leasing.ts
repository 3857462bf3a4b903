/**
 * Partition ownership and the leader by leases in PostgreSQL, and the rule checkpoints fenced by
 * them (tables cluster_instances, cluster_leases, rule_checkpoints of the alert store's schema).
 *
 * Leases: one row per partition (`partition:<p>`) and one `leader`; a holder renews all of its
 * leases every RENEW_MS, each then expires LEASE_TTL_MS later on PostgreSQL's clock. A lease that
 * is free or expired is taken by the first instance that asks (one UPDATE, so of two at most one
 * wins), its epoch raised. Every instance aims at ceil(partitions / live instances) partitions
 * (live: a heartbeat within the TTL): it releases the extras and takes free ones up to that, so
 * partitions spread over the instances and move when one joins or leaves.
 *
 * An instance stops judging a partition before anybody else can take it: when renewing fails
 * (PostgreSQL unreachable) it gives up every lease LEASE_TTL_MS - SAFETY_MS after the start of
 * its last successful renewal, on its own monotonic clock, while the lease lasts at least
 * LEASE_TTL_MS after that on PostgreSQL's. A checkpoint is written only while its partition's
 * lease is held by the writer (the statement checks it), so a late write of a former owner
 * cannot overwrite the new owner's.
 */
import pg from 'pg';
import type { Logger } from '../../lib/logger.js';
import { decodeAssetSnapshot, isEmptySnapshot, type AssetSnapshot } from '../../rules/state-codec.js';
import type { ClusterConfig } from '../config/cluster.js';
import type { CheckpointStore } from './cluster-node.js';

export const LEASE_TTL_MS = 6000;
export const RENEW_MS = 1500;
const SAFETY_MS = 1000;
const STATEMENT_TIMEOUT_MS = 4000;
export const LEADER_LEASE = 'leader';
const partitionLease = (p: number) => `partition:${p}`;

export interface LeaseHooks {
  acquire(partition: number): Promise<void>;
  lose(partition: number): Promise<void>;
  leadershipChanged(): void;
}

export interface Leasing {
  checkpoints: CheckpointStore;
  isLeader(): boolean;
  /** Owned partitions as the leases say (the node's view may lag while it loads). */
  held(): number[];
  start(hooks: LeaseHooks): Promise<void>;
  /** Releases every lease (the partitions are taken over at once). */
  stop(): Promise<void>;
  close(): Promise<void>;
}

export async function openLeasing(config: ClusterConfig, deps: { logger: Logger }): Promise<Leasing> {
  const pool = new pg.Pool({
    connectionString: config.postgres_url,
    max: 3,
    connectionTimeoutMillis: STATEMENT_TIMEOUT_MS,
    statement_timeout: STATEMENT_TIMEOUT_MS,
    query_timeout: STATEMENT_TIMEOUT_MS + 500,
  });
  // A lost connection: the query on it (or the next one) reports it; an 'error' event without a listener would end the process.
  pool.on('error', () => undefined);
  pool.on('connect', (client) => client.on('error', () => undefined));
  return Promise.resolve(new PgLeasing(config, pool, deps.logger.child({ part: 'leases' })));
}

class PgLeasing implements Leasing {
  private hooks?: LeaseHooks;
  private readonly partitions = new Set<number>();
  private leader = false;
  private timer?: NodeJS.Timeout;
  private running?: Promise<void>;
  private stopped = false;
  /** performance.now() at the start of the last renewal PostgreSQL answered. */
  private renewedAt = 0;
  /** Hand-overs in progress per partition, so that acquire and lose of one partition never overlap. */
  private readonly transitions = new Map<number, Promise<void>>();
  readonly checkpoints: CheckpointStore;

  constructor(
    private readonly config: ClusterConfig,
    private readonly pool: pg.Pool,
    private readonly log: Logger,
  ) {
    const me = config.instance_id;
    this.checkpoints = {
      load: async (_partition, assetIds) => {
        if (assetIds.length === 0) return [];
        const { rows } = await pool.query<{ asset_id: string; state: unknown }>('SELECT asset_id, state FROM rule_checkpoints WHERE asset_id = ANY($1::text[])', [assetIds]);
        const out: AssetSnapshot[] = [];
        for (const row of rows) {
          try {
            out.push(decodeAssetSnapshot(row.state));
          } catch (err) {
            // A checkpoint of another version: the asset starts from its open alerts instead.
            this.log.warn({ err, asset_id: row.asset_id }, 'ignoring a rule checkpoint that does not decode');
          }
        }
        return out;
      },
      save: async (partition, snapshots) => {
        const keep = snapshots.filter((s) => !isEmptySnapshot(s));
        const empty = snapshots.filter((s) => isEmptySnapshot(s)).map((s) => s.assetId);
        const lease = partitionLease(partition);
        const client = await pool.connect();
        try {
          await client.query('BEGIN');
          // The fence: only the holder of the partition's lease writes its checkpoints.
          const held = await client.query('SELECT 1 FROM cluster_leases WHERE name = $1 AND owner = $2 AND expires_at > now() FOR SHARE', [lease, me]);
          if (held.rowCount !== 1) throw new Error(`the lease of partition ${partition} is not held by ${me}`);
          if (keep.length > 0) {
            await client.query(
              `INSERT INTO rule_checkpoints (asset_id, partition, state, updated_at)
               SELECT a, $2, s, now() FROM unnest($1::text[], $3::jsonb[]) AS t(a, s)
               ON CONFLICT (asset_id) DO UPDATE SET partition = EXCLUDED.partition, state = EXCLUDED.state, updated_at = now()`,
              [keep.map((s) => s.assetId), partition, keep.map((s) => JSON.stringify(s))],
            );
          }
          if (empty.length > 0) await client.query('DELETE FROM rule_checkpoints WHERE asset_id = ANY($1::text[])', [empty]);
          await client.query('COMMIT');
        } catch (err) {
          await client.query('ROLLBACK').catch(() => undefined);
          throw err;
        } finally {
          client.release();
        }
      },
    };
  }

  isLeader(): boolean {
    return this.leader;
  }

  held(): number[] {
    return [...this.partitions].sort((a, b) => a - b);
  }

  async start(hooks: LeaseHooks): Promise<void> {
    this.hooks = hooks;
    await this.pool.query(
      `INSERT INTO cluster_instances (instance_id, started_at, heartbeat_at) VALUES ($1, now(), now())
       ON CONFLICT (instance_id) DO UPDATE SET started_at = now(), heartbeat_at = now()`,
      [this.config.instance_id],
    );
    await this.round();
    this.schedule();
  }

  private schedule(): void {
    if (this.stopped) return;
    this.timer = setTimeout(() => {
      this.running = this.round().finally(() => {
        this.running = undefined;
        this.schedule();
      });
    }, RENEW_MS);
    this.timer.unref();
  }

  /** One renewal: heartbeat, renew, give up what was lost, balance, and the leader lease. */
  private async round(): Promise<void> {
    const me = this.config.instance_id;
    const startedAt = performance.now();
    let renewed: Set<string>;
    let live: number;
    try {
      const client = await this.pool.connect();
      try {
        await client.query('UPDATE cluster_instances SET heartbeat_at = now() WHERE instance_id = $1', [me]);
        const { rows } = await client.query<{ name: string }>(
          `UPDATE cluster_leases SET expires_at = now() + make_interval(secs => $2::double precision / 1000)
           WHERE owner = $1 AND expires_at > now() RETURNING name`,
          [me, LEASE_TTL_MS],
        );
        renewed = new Set(rows.map((r) => r.name));
        const count = await client.query<{ n: string }>(`SELECT count(*) AS n FROM cluster_instances WHERE heartbeat_at > now() - make_interval(secs => $1::double precision / 1000)`, [
          LEASE_TTL_MS,
        ]);
        live = Math.max(1, Number(count.rows[0]!.n));
      } finally {
        client.release();
      }
      this.renewedAt = startedAt;
    } catch (err) {
      this.log.warn({ err }, 'renewing the leases failed');
      // Give up everything before PostgreSQL's clock lets another instance take it.
      if (performance.now() - this.renewedAt >= LEASE_TTL_MS - SAFETY_MS) await this.giveUpAll('PostgreSQL unreachable');
      return;
    }
    if (this.stopped) return;
    for (const p of [...this.partitions]) if (!renewed.has(partitionLease(p))) this.lost(p, 'lease expired');
    this.setLeader(renewed.has(LEADER_LEASE) || (await this.take(LEADER_LEASE)));
    const target = Math.ceil(this.config.partitions / live);
    // Extras go back (the highest first), so that a newcomer finds free partitions.
    const mine = this.held();
    for (const p of mine.slice(target).reverse()) await this.release(p);
    if (this.partitions.size >= target) return;
    const free = await this.freePartitions();
    for (const p of free) {
      if (this.stopped || this.partitions.size >= target) break;
      if (await this.take(partitionLease(p))) {
        this.partitions.add(p);
        void this.transition(p, () => this.hooks!.acquire(p));
      }
    }
  }

  /** Partitions whose lease is free or expired, in an order of this instance (so instances starting together rarely collide). */
  private async freePartitions(): Promise<number[]> {
    const { rows } = await this.pool.query<{ name: string }>(`SELECT name FROM cluster_leases WHERE name LIKE 'partition:%' AND owner IS NOT NULL AND expires_at > now()`);
    const taken = new Set(rows.map((r) => r.name));
    const all = Array.from({ length: this.config.partitions }, (_, p) => p).filter((p) => !taken.has(partitionLease(p)) && !this.partitions.has(p));
    const offset = [...this.config.instance_id].reduce((h, c) => (h * 31 + c.charCodeAt(0)) >>> 0, 7) % Math.max(1, this.config.partitions);
    return all.sort((a, b) => ((a - offset + this.config.partitions) % this.config.partitions) - ((b - offset + this.config.partitions) % this.config.partitions));
  }

  /** Takes a lease that is free or expired; true when this instance holds it now. */
  private async take(name: string): Promise<boolean> {
    try {
      const { rowCount } = await this.pool.query(
        `INSERT INTO cluster_leases (name, owner, epoch, expires_at) VALUES ($1, $2, 1, now() + make_interval(secs => $3::double precision / 1000))
         ON CONFLICT (name) DO UPDATE SET owner = EXCLUDED.owner, epoch = cluster_leases.epoch + 1, expires_at = EXCLUDED.expires_at
         WHERE cluster_leases.owner IS NULL OR cluster_leases.expires_at <= now()`,
        [name, this.config.instance_id, LEASE_TTL_MS],
      );
      return rowCount === 1;
    } catch (err) {
      this.log.warn({ err, lease: name }, 'taking a lease failed');
      return false;
    }
  }

  private setLeader(leader: boolean): void {
    if (leader === this.leader) return;
    this.leader = leader;
    this.log.info({ leader }, leader ? 'holding the leader lease' : 'no longer holding the leader lease');
    this.hooks?.leadershipChanged();
  }

  /** Runs a hand-over step of one partition after the previous one. */
  private transition(partition: number, step: () => Promise<void>): Promise<void> {
    const previous = this.transitions.get(partition) ?? Promise.resolve();
    const next = previous
      .then(step)
      .catch((err: Error) => {
        this.log.error({ err, partition }, 'a partition hand-over step failed; the lease is given back');
        if (this.partitions.delete(partition)) void this.free(partition);
      })
      .finally(() => {
        if (this.transitions.get(partition) === next) this.transitions.delete(partition);
      });
    this.transitions.set(partition, next);
    return next;
  }

  private lost(partition: number, reason: string): void {
    if (!this.partitions.delete(partition)) return;
    this.log.warn({ partition, reason }, 'partition lease lost');
    void this.transition(partition, () => this.hooks!.lose(partition));
  }

  /** Stops judging the partition, then frees its lease for another instance. */
  private async release(partition: number): Promise<void> {
    if (!this.partitions.delete(partition)) return;
    await this.transition(partition, async () => {
      await this.hooks!.lose(partition);
      await this.free(partition);
    });
  }

  private async free(partition: number): Promise<void> {
    await this.pool
      .query("UPDATE cluster_leases SET owner = NULL, expires_at = '-infinity' WHERE name = $1 AND owner = $2", [partitionLease(partition), this.config.instance_id])
      .catch((err: Error) => this.log.warn({ err, partition }, 'freeing a partition lease failed (it expires instead)'));
  }

  private async giveUpAll(reason: string): Promise<void> {
    for (const p of [...this.partitions]) this.lost(p, reason);
    this.setLeader(false);
    await Promise.all([...this.transitions.values()]);
  }

  async stop(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.timer);
    await this.running;
    const partitions = [...this.partitions];
    this.partitions.clear();
    await Promise.all(partitions.map((p) => this.transition(p, () => this.hooks!.lose(p))));
    this.setLeader(false);
    await this.pool.query("UPDATE cluster_leases SET owner = NULL, expires_at = '-infinity' WHERE owner = $1", [this.config.instance_id]).catch(() => undefined);
    await this.pool.query('DELETE FROM cluster_instances WHERE instance_id = $1', [this.config.instance_id]).catch(() => undefined);
  }

  async close(): Promise<void> {
    await this.pool.end().catch(() => undefined);
  }
}
