/**
 * Rule state checkpoints in PostgreSQL: one row per asset holding its AssetSnapshot
 * (rules/state-codec.ts) as JSONB, written by the owner of the asset's partition after the events
 * of a batch are stored and before the batch is acknowledged, read by the next owner when it
 * takes the partition over.
 *
 * - `save` writes all snapshots of a batch in one statement (all or none; an empty snapshot deletes
 *   the asset's row). With a `fence` (the
 *   LeaseManager) the statement first locks the partition's lease row and writes only while that
 *   row still names this instance with the epoch it acquired and has not expired, on
 *   PostgreSQL's clock; otherwise it writes nothing and throws CheckpointFencedError. The lock
 *   (FOR SHARE) keeps a new owner from taking the lease until the write has committed, so the new
 *   owner's load sees every checkpoint the old owner wrote, and an old owner that lost its lease
 *   can never overwrite the new owner's checkpoints.
 * - `load` / `loadPartition` validate every row; a row that does not decode (another format
 *   version, a damaged value) is left out with a warning: that asset starts afresh.
 *
 * Every statement is a named function here; the async `pg` Pool is the caller's (shared with the
 * LeaseManager) or opened from a URL.
 */
import pg from 'pg';
import type { Logger } from '../lib/logger.js';
import { decodeAssetSnapshot, isEmptySnapshot, type AssetSnapshot } from '../rules/state-codec.js';
import { leaseName, withSchemaLock } from './leases.js';

/** The table (helper P's migrations create the same in the versioned schema). */
export const RULE_CHECKPOINTS_DDL = `CREATE TABLE IF NOT EXISTS rule_checkpoints (
  asset_id TEXT PRIMARY KEY,
  partition INT NOT NULL,
  state JSONB NOT NULL,
  updated_at TIMESTAMPTZ NOT NULL
);
CREATE INDEX IF NOT EXISTS rule_checkpoints_partition ON rule_checkpoints (partition)`;

/** Who may write a partition's checkpoints: the holder of its lease, with this epoch. */
export interface CheckpointFence {
  readonly instanceId: string;
  /** The epoch of the partition's lease while this instance holds it; undefined otherwise. */
  epoch(partition: number): number | undefined;
}

export class CheckpointFencedError extends Error {
  readonly code = 'checkpoint_fenced';
  constructor(readonly partition: number) {
    super(`partition ${partition} is not leased to this instance: its checkpoints are not written`);
    this.name = 'CheckpointFencedError';
  }

  /** The lease is gone: the batch belongs to the next owner. */
  canRetry(): boolean {
    return false;
  }
}

export interface RuleCheckpointsOptions {
  /** An open pool (not ended by close()), or a URL to open one. */
  pool?: pg.Pool;
  url?: string;
  logger?: Logger;
  fence?: CheckpointFence;
}

// ---- statements ----

/**
 * Upserts the non-empty snapshots and deletes the rows of the empty ones, in one statement; with
 * a fence only while the lease row names `owner` with `epoch` (locked FOR SHARE). Returns
 * whether the fence held (always true without one).
 */
async function write(pool: pg.Pool, partition: number, ids: string[], states: string[], empty: string[], fence?: { owner: string; epoch: number }): Promise<boolean> {
  const held = fence ? `SELECT 1 FROM cluster_leases WHERE name = $5 AND owner = $6 AND epoch = $7 AND expires_at > clock_timestamp() FOR SHARE` : 'SELECT 1';
  const result = await pool.query<{ held: number }>(
    `WITH fence AS (${held}),
     up AS (
       INSERT INTO rule_checkpoints (asset_id, partition, state, updated_at)
       SELECT a, $1, s::jsonb, clock_timestamp() FROM unnest($2::text[], $3::text[]) AS t(a, s) WHERE EXISTS (SELECT 1 FROM fence)
       ON CONFLICT (asset_id) DO UPDATE SET partition = EXCLUDED.partition, state = EXCLUDED.state, updated_at = EXCLUDED.updated_at
       RETURNING 1
     ),
     gone AS (DELETE FROM rule_checkpoints WHERE asset_id = ANY($4::text[]) AND EXISTS (SELECT 1 FROM fence) RETURNING 1)
     SELECT (SELECT count(*) FROM fence)::int AS held`,
    fence ? [partition, ids, states, empty, leaseName(partition), fence.owner, fence.epoch] : [partition, ids, states, empty],
  );
  return result.rows[0]!.held > 0;
}

function selectPartition(pool: pg.Pool, partition: number): Promise<pg.QueryResult<{ asset_id: string; state: unknown }>> {
  return pool.query('SELECT asset_id, state FROM rule_checkpoints WHERE partition = $1 ORDER BY asset_id', [partition]);
}

function selectAssets(pool: pg.Pool, ids: readonly string[]): Promise<pg.QueryResult<{ asset_id: string; state: unknown }>> {
  return pool.query('SELECT asset_id, state FROM rule_checkpoints WHERE asset_id = ANY($1::text[])', [ids]);
}

function deleteRows(pool: pg.Pool, ids: readonly string[]): Promise<pg.QueryResult> {
  return pool.query('DELETE FROM rule_checkpoints WHERE asset_id = ANY($1::text[])', [ids]);
}

// ---- store ----

export class RuleCheckpoints {
  private readonly pool: pg.Pool;
  private readonly ownPool: boolean;

  constructor(private readonly options: RuleCheckpointsOptions) {
    if (options.pool) {
      this.pool = options.pool;
      this.ownPool = false;
    } else if (options.url) {
      this.pool = new pg.Pool({ connectionString: options.url, max: 4 });
      this.pool.on('error', (err) => options.logger?.warn({ err }, 'rule checkpoints: an idle PostgreSQL connection failed'));
      this.ownPool = true;
    } else throw new Error('RuleCheckpoints needs a pool or a url');
  }

  /** Creates the table when it does not exist (the store's migrations create the same). */
  async ensureSchema(): Promise<void> {
    await withSchemaLock(this.pool, async (client) => {
      await client.query(RULE_CHECKPOINTS_DDL);
    });
  }

  /**
   * Writes these snapshots (one per asset; the last wins for an asset named twice) in one
   * statement. An empty snapshot (the asset holds no state) deletes the asset's row: an asset
   * without a checkpoint is seeded from its open alerts by the next owner.
   */
  async save(partition: number, snapshots: readonly AssetSnapshot[]): Promise<void> {
    if (snapshots.length === 0) return;
    const byAsset = new Map<string, AssetSnapshot>();
    for (const s of snapshots) byAsset.set(s.assetId, s);
    const ids: string[] = [];
    const states: string[] = [];
    const empty: string[] = [];
    for (const [id, s] of byAsset) {
      if (isEmptySnapshot(s)) empty.push(id);
      else {
        ids.push(id);
        states.push(JSON.stringify(s));
      }
    }
    const fence = this.options.fence;
    if (fence === undefined) {
      await write(this.pool, partition, ids, states, empty);
      return;
    }
    const epoch = fence.epoch(partition);
    if (epoch === undefined || !(await write(this.pool, partition, ids, states, empty, { owner: fence.instanceId, epoch }))) throw new CheckpointFencedError(partition);
  }

  /** The checkpoints stored under partition `p`. */
  async loadPartition(partition: number): Promise<AssetSnapshot[]> {
    return this.decodeRows((await selectPartition(this.pool, partition)).rows);
  }

  /** The checkpoints of these assets (the ones without a checkpoint are left out), whatever partition they were saved under. */
  async load(_partition: number, assetIds: readonly string[]): Promise<AssetSnapshot[]> {
    if (assetIds.length === 0) return [];
    return this.decodeRows((await selectAssets(this.pool, assetIds)).rows);
  }

  async deleteAssets(assetIds: readonly string[]): Promise<void> {
    if (assetIds.length > 0) await deleteRows(this.pool, assetIds);
  }

  /** Ends the pool when this store opened it. */
  async close(): Promise<void> {
    if (this.ownPool) await this.pool.end();
  }

  private decodeRows(rows: readonly { asset_id: string; state: unknown }[]): AssetSnapshot[] {
    const out: AssetSnapshot[] = [];
    for (const row of rows) {
      try {
        const snapshot = decodeAssetSnapshot(row.state);
        if (snapshot.assetId !== row.asset_id) throw new Error(`the snapshot is of asset "${snapshot.assetId}"`);
        out.push(snapshot);
      } catch (err) {
        this.options.logger?.warn({ err, asset_id: row.asset_id }, 'rule checkpoint refused: the asset starts with a fresh rule state');
      }
    }
    return out;
  }
}
