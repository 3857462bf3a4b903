/**
 * Partition ownership by leases in PostgreSQL, and the one leader of the cluster.
 *
 * Tables (cluster_instances, cluster_leases; DDL below): a lease is a row `partition:<p>` or
 * `leader` with its owner, an epoch and an expiry. Expiry and renewal are judged on PostgreSQL's
 * clock (`clock_timestamp()`), never on an instance's. Every `renewMs` an instance:
 * 1. writes its heartbeat;
 * 2. renews the leases it holds (each for `ttlMs` from now); a lease that no longer renews has been
 *    lost; rows still in its name that it does not believe it holds (a restart under the same
 *    instance id) are freed;
 * 3. counts the live instances (heartbeat within ttl), sorted by id: its fair share is
 *    floor(P / live), one more for the first P mod live of them, so the shares add up to P;
 * 4. takes free or expired leases up to its share (the epoch grows by one with every new owner:
 *    a fencing token) and releases the ones above it, each only after `onLose` has finished
 *    (the consumer is cancelled before another instance can take the partition);
 * 5. takes the leader lease when it is free or expired.
 * A dead instance stops renewing: its leases expire after ttl and the others take them within
 * one more round. When renewing fails (PostgreSQL unreachable), every lease is given up (onLose)
 * once it would have expired: `ttlMs` after the last renewal was sent, on this process's
 * monotonic clock, which is never later than the expiry PostgreSQL holds; when PostgreSQL is
 * back they are taken again, with new epochs. `stop()` calls onLose for everything it holds,
 * then releases the rows and its heartbeat at once, so the others take over without waiting.
 *
 * Callbacks of one partition run one at a time in order (an acquire that is still loading when
 * the lease is lost is followed by its onLose). An onAcquire that fails gives the lease back.
 */
import { performance } from 'node:perf_hooks';
import pg from 'pg';
import type { Logger } from '../lib/logger.js';

export const LEADER_LEASE = 'leader';

export function leaseName(partition: number): string {
  return `partition:${partition}`;
}

/** The tables (helper P's migrations create the same in the versioned schema). */
export const CLUSTER_LEASES_DDL = `CREATE TABLE IF NOT EXISTS cluster_instances (
  instance_id TEXT PRIMARY KEY,
  heartbeat_at TIMESTAMPTZ NOT NULL,
  started_at TIMESTAMPTZ NOT NULL
);
CREATE TABLE IF NOT EXISTS cluster_leases (
  name TEXT PRIMARY KEY,
  owner TEXT,
  epoch BIGINT NOT NULL,
  expires_at TIMESTAMPTZ NOT NULL
)`;

export interface LeaseManagerOptions {
  /**
   * An open pool (not ended by stop()), or a URL to open one. A pool given here needs
   * `connectionTimeoutMillis` and `query_timeout` (about ttlMs): a round waits for its queries, and
   * a query that never returns (a network partition) would stop the rounds for good.
   */
  pool?: pg.Pool;
  url?: string;
  instanceId: string;
  /** Partitions 0..partitions-1. */
  partitions: number;
  /** How long a lease lasts without renewal. */
  ttlMs?: number;
  /** How often leases are renewed and rebalanced. */
  renewMs?: number;
  logger: Logger;
  /** The lease of `p` is this instance's: load its state, start consuming. */
  onAcquire(partition: number): Promise<void>;
  /** The lease of `p` is being released or was lost: stop consuming, forget its state. */
  onLose(partition: number): Promise<void>;
  /** Leadership gained or lost (also readable with isLeader()). */
  onLeaderChange?(leader: boolean): void;
}

export const DEFAULT_LEASE_OPTIONS = { ttlMs: 5000, renewMs: 1000 } as const;

export interface LeaseStatus {
  instanceId: string;
  /** The last round reached PostgreSQL. */
  connected: boolean;
  /** Why the last round failed; never a password. */
  error?: string;
  /** Epoch ms (this process's clock, for display) of the last successful renewal. */
  renewedAt?: number;
  /** Partitions held and judged. */
  owned: number[];
  leader: boolean;
  /** Live instances seen in the last successful round, and this instance's share. */
  live: number;
  share: number;
}

interface Held {
  epoch: number;
  /** performance.now() by which the lease has certainly not expired yet in PostgreSQL. */
  deadline: number;
  /** onLose is running or queued (release above the share): not owned any more, still renewed. */
  releasing: boolean;
  /** onAcquire has been called: a loss is followed by onLose (else the partition was never taken up). */
  started: boolean;
}

const ID = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$/;

// ---- statements ----

/**
 * Runs DDL under a transaction-scoped advisory lock: instances starting together would otherwise
 * race on CREATE TABLE IF NOT EXISTS (a duplicate key in the catalogue).
 */
export async function withSchemaLock(pool: pg.Pool, work: (client: pg.PoolClient) => Promise<void>): Promise<void> {
  const client = await pool.connect();
  try {
    await client.query('BEGIN');
    await client.query("SELECT pg_advisory_xact_lock(hashtext('watchpost.cluster_schema'))");
    await work(client);
    await client.query('COMMIT');
  } catch (err) {
    await client.query('ROLLBACK').catch(() => undefined);
    throw err;
  } finally {
    client.release();
  }
}

async function ensureSchema(pool: pg.Pool, names: string[]): Promise<void> {
  await withSchemaLock(pool, async (client) => {
    await client.query(CLUSTER_LEASES_DDL);
    await client.query(`INSERT INTO cluster_leases (name, owner, epoch, expires_at) SELECT n, NULL, 0, '-infinity' FROM unnest($1::text[]) AS t(n) ON CONFLICT (name) DO NOTHING`, [names]);
  });
}

async function heartbeat(pool: pg.Pool, instanceId: string, starting: boolean): Promise<void> {
  await pool.query(
    `INSERT INTO cluster_instances (instance_id, heartbeat_at, started_at) VALUES ($1, clock_timestamp(), clock_timestamp())
     ON CONFLICT (instance_id) DO UPDATE SET heartbeat_at = EXCLUDED.heartbeat_at${starting ? ', started_at = EXCLUDED.started_at' : ''}`,
    [instanceId],
  );
}

/** Renews the named leases still held; returns the ones renewed. */
async function renew(pool: pg.Pool, instanceId: string, names: string[], ttlMs: number): Promise<Map<string, number>> {
  if (names.length === 0) return new Map();
  const result = await pool.query<{ name: string; epoch: string }>(
    `UPDATE cluster_leases SET expires_at = clock_timestamp() + $3::int * interval '1 millisecond'
     WHERE owner = $1 AND name = ANY($2::text[]) AND expires_at > clock_timestamp() RETURNING name, epoch`,
    [instanceId, names, ttlMs],
  );
  return new Map(result.rows.map((r) => [r.name, Number(r.epoch)]));
}

/** Frees rows in this instance's name that it does not hold (left from before a restart, or lost and renewed too late). */
async function freeStrays(pool: pg.Pool, instanceId: string, held: string[]): Promise<void> {
  await pool.query(`UPDATE cluster_leases SET owner = NULL, expires_at = clock_timestamp() WHERE owner = $1 AND NOT (name = ANY($2::text[]))`, [instanceId, held]);
}

async function liveInstances(pool: pg.Pool, ttlMs: number): Promise<string[]> {
  const result = await pool.query<{ instance_id: string }>(
    `SELECT instance_id FROM cluster_instances WHERE heartbeat_at > clock_timestamp() - $1::int * interval '1 millisecond' ORDER BY instance_id COLLATE "C"`,
    [ttlMs],
  );
  return result.rows.map((r) => r.instance_id);
}

/** Takes up to `limit` of the named leases that are free or expired; returns them with their new epochs. */
async function take(pool: pg.Pool, instanceId: string, names: string[], limit: number, ttlMs: number): Promise<Map<string, number>> {
  const result = await pool.query<{ name: string; epoch: string }>(
    `WITH free AS (
       SELECT name FROM cluster_leases WHERE name = ANY($2::text[]) AND (owner IS NULL OR expires_at <= clock_timestamp())
       ORDER BY random() LIMIT $3::int FOR UPDATE SKIP LOCKED
     )
     UPDATE cluster_leases l SET owner = $1, epoch = l.epoch + 1, expires_at = clock_timestamp() + $4::int * interval '1 millisecond'
     FROM free WHERE l.name = free.name RETURNING l.name, l.epoch`,
    [instanceId, names, limit, ttlMs],
  );
  return new Map(result.rows.map((r) => [r.name, Number(r.epoch)]));
}

async function release(pool: pg.Pool, instanceId: string, names: string[]): Promise<void> {
  if (names.length === 0) return;
  await pool.query(`UPDATE cluster_leases SET owner = NULL, expires_at = clock_timestamp() WHERE owner = $1 AND name = ANY($2::text[])`, [instanceId, names]);
}

async function leave(pool: pg.Pool, instanceId: string): Promise<void> {
  await pool.query('DELETE FROM cluster_instances WHERE instance_id = $1', [instanceId]);
}

// ---- manager ----

export class LeaseManager {
  readonly instanceId: string;
  private readonly ttlMs: number;
  private readonly renewMs: number;
  private readonly log: Logger;
  private readonly pool: pg.Pool;
  private readonly ownPool: boolean;
  private poolClosed = false;
  private readonly names: string[];
  private readonly held = new Map<number, Held>();
  private leader: Held | undefined;
  /** Per partition, its callbacks in order. */
  private readonly chains = new Map<number, Promise<void>>();
  private running = false;
  private starting = true;
  private round: Promise<void> | undefined;
  private roundTimer: NodeJS.Timeout | undefined;
  private deadlineTimer: NodeJS.Timeout | undefined;
  private connected = false;
  private error: string | undefined;
  private renewedAt: number | undefined;
  private live = 0;
  private share = 0;

  constructor(private readonly options: LeaseManagerOptions) {
    if (!ID.test(options.instanceId)) throw new Error(`instance id "${options.instanceId}" must match ${ID.source}`);
    if (!Number.isInteger(options.partitions) || options.partitions < 1 || options.partitions > 1024) throw new Error('partitions must be an integer from 1 to 1024');
    this.instanceId = options.instanceId;
    this.ttlMs = options.ttlMs ?? DEFAULT_LEASE_OPTIONS.ttlMs;
    this.renewMs = options.renewMs ?? DEFAULT_LEASE_OPTIONS.renewMs;
    if (!(this.renewMs > 0 && this.ttlMs > this.renewMs)) throw new Error('ttlMs must be longer than renewMs');
    this.log = options.logger;
    this.names = Array.from({ length: options.partitions }, (_, p) => leaseName(p));
    if (options.pool) {
      this.pool = options.pool;
      this.ownPool = false;
    } else if (options.url) {
      this.pool = new pg.Pool({ connectionString: options.url, max: 2, connectionTimeoutMillis: this.ttlMs, query_timeout: this.ttlMs });
      this.pool.on('error', (err) => this.log.warn({ err }, 'leases: an idle PostgreSQL connection failed'));
      this.ownPool = true;
    } else throw new Error('LeaseManager needs a pool or a url');
  }

  /** Creates the tables and lease rows, heartbeats, then runs the first round one renewMs later; rejects when PostgreSQL cannot be reached. */
  async start(): Promise<void> {
    if (this.running) return;
    await ensureSchema(this.pool, [...this.names, LEADER_LEASE]);
    await heartbeat(this.pool, this.instanceId, true);
    this.starting = false;
    this.running = true;
    // Instances starting together see each other's heartbeat before any of them takes its share.
    await new Promise((resolve) => setTimeout(resolve, this.renewMs));
    if (this.running) await this.runRound();
  }

  /** Gives up every lease: onLose for each owned partition, then the rows and the heartbeat are released at once. */
  async stop(): Promise<void> {
    if (!this.running) return;
    this.running = false;
    this.clearTimers();
    await this.round;
    const partitions = [...this.held.keys()];
    const names = partitions.map(leaseName);
    // Partitions being released above the share have their onLose queued already.
    await Promise.all(partitions.map((p) => (this.held.get(p)!.releasing ? (this.chains.get(p) ?? Promise.resolve()) : this.enqueue(p, () => this.options.onLose(p)))));
    if (this.leader) names.push(LEADER_LEASE);
    this.held.clear();
    this.setLeader(undefined);
    try {
      await release(this.pool, this.instanceId, names);
      await leave(this.pool, this.instanceId);
    } catch (err) {
      this.log.warn({ err }, 'leases: releasing failed; they expire on their own');
    }
    await this.closePool();
  }

  /**
   * Stops renewing and forgets every lease without releasing it or calling onLose: what a crash
   * does (for tests); the leases expire in PostgreSQL after ttl.
   */
  async abandon(): Promise<void> {
    this.running = false;
    this.clearTimers();
    await this.round;
    this.held.clear();
    this.leader = undefined;
    await this.closePool();
  }

  private async closePool(): Promise<void> {
    if (!this.ownPool || this.poolClosed) return;
    this.poolClosed = true;
    await this.pool.end();
  }

  /** Partitions whose lease this instance holds and is not giving up. */
  owned(): ReadonlySet<number> {
    const out = new Set<number>();
    for (const [p, h] of this.held) if (!h.releasing) out.add(p);
    return out;
  }

  /** The fencing token of p's lease while this instance holds it. */
  epoch(partition: number): number | undefined {
    return this.held.get(partition)?.epoch;
  }

  isLeader(): boolean {
    return this.leader !== undefined;
  }

  status(): LeaseStatus {
    const s: LeaseStatus = {
      instanceId: this.instanceId,
      connected: this.connected,
      owned: [...this.owned()].sort((a, b) => a - b),
      leader: this.isLeader(),
      live: this.live,
      share: this.share,
    };
    if (this.error !== undefined) s.error = this.error;
    if (this.renewedAt !== undefined) s.renewedAt = this.renewedAt;
    return s;
  }

  // ---- rounds ----

  private runRound(): Promise<void> {
    const round = this.roundOnce().finally(() => {
      if (this.round === round) this.round = undefined;
      this.scheduleDeadline();
      if (this.running) {
        this.roundTimer = setTimeout(() => void this.runRound(), this.renewMs);
        this.roundTimer.unref?.();
      }
    });
    this.round = round;
    return round;
  }

  private async roundOnce(): Promise<void> {
    try {
      await heartbeat(this.pool, this.instanceId, this.starting);
      this.starting = false;
      const believed = [...this.held.keys()].map(leaseName);
      if (this.leader) believed.push(LEADER_LEASE);
      const sent = performance.now();
      const renewed = await renew(this.pool, this.instanceId, believed, this.ttlMs);
      if (!this.running) return;
      for (const [p, h] of [...this.held]) {
        if (renewed.has(leaseName(p))) h.deadline = sent + this.ttlMs;
        else this.lost(p, 'not renewed');
      }
      if (this.leader) {
        if (renewed.has(LEADER_LEASE)) this.leader.deadline = sent + this.ttlMs;
        else this.setLeader(undefined);
      }
      const keep = [...this.held.keys()].map(leaseName);
      if (this.leader) keep.push(LEADER_LEASE);
      await freeStrays(this.pool, this.instanceId, keep);

      const live = await liveInstances(this.pool, this.ttlMs);
      const n = Math.max(1, live.length);
      const rank = live.indexOf(this.instanceId);
      const P = this.options.partitions;
      this.live = live.length;
      this.share = Math.floor(P / n) + ((rank < 0 ? n - 1 : rank) < P % n ? 1 : 0);

      const keeping = [...this.held.values()].filter((h) => !h.releasing).length;
      if (keeping < this.share && this.running) {
        const wanted = this.names.filter((_, p) => !this.held.has(p));
        const at = performance.now();
        const taken = await take(this.pool, this.instanceId, wanted, this.share - keeping, this.ttlMs);
        for (const [name, epoch] of taken) this.acquired(Number(name.slice('partition:'.length)), epoch, at);
      } else if (keeping > this.share) {
        const excess = [...this.held].filter(([, h]) => !h.releasing).map(([p]) => p);
        excess.sort((a, b) => b - a);
        for (const p of excess.slice(0, keeping - this.share)) this.releaseAboveShare(p);
      }

      if (!this.leader && this.running) {
        const at = performance.now();
        const taken = await take(this.pool, this.instanceId, [LEADER_LEASE], 1, this.ttlMs);
        const epoch = taken.get(LEADER_LEASE);
        if (epoch !== undefined) this.setLeader({ epoch, deadline: at + this.ttlMs, releasing: false, started: true });
      }
      if (!this.connected) this.log.info({ owned: this.status().owned, live: this.live, share: this.share }, 'leases: PostgreSQL reached');
      this.connected = true;
      this.error = undefined;
      this.renewedAt = Date.now();
    } catch (err) {
      if (this.connected || this.error === undefined) this.log.warn({ err }, 'leases: a round failed; leases are given up when they would expire');
      this.connected = false;
      this.error = (err as Error).message;
      this.expire();
    }
  }

  private acquired(partition: number, epoch: number, at: number): void {
    const h: Held = { epoch, deadline: at + this.ttlMs, releasing: false, started: false };
    this.held.set(partition, h);
    this.log.info({ partition, epoch }, 'lease acquired');
    void this.enqueue(partition, async () => {
      if (this.held.get(partition) !== h) return; // lost before it started: nothing to load
      h.started = true;
      try {
        await this.options.onAcquire(partition);
      } catch (err) {
        // Give it back; it is taken again in a later round, here or elsewhere.
        this.log.warn({ err, partition }, 'lease given back: taking the partition over failed');
        if (this.held.get(partition) !== h) return;
        h.releasing = true;
        await this.options.onLose(partition).catch(() => undefined);
        await this.giveBack(partition, h);
      }
    });
  }

  /** Above the share: onLose first, then the row, so the next owner starts after this one stopped. */
  private releaseAboveShare(partition: number): void {
    const h = this.held.get(partition);
    if (!h || h.releasing) return;
    h.releasing = true;
    this.log.info({ partition, share: this.share }, 'lease released above the fair share');
    void this.enqueue(partition, async () => {
      if (this.held.get(partition) !== h) return; // lost meanwhile: onLose already queued
      await this.options.onLose(partition).catch((err: Error) => this.log.warn({ err, partition }, 'onLose failed'));
      await this.giveBack(partition, h);
    });
  }

  private async giveBack(partition: number, h: Held): Promise<void> {
    if (this.held.get(partition) !== h) return;
    await this.round; // no round may renew it meanwhile
    if (this.held.get(partition) !== h) return;
    this.held.delete(partition);
    await release(this.pool, this.instanceId, [leaseName(partition)]).catch((err: Error) => this.log.warn({ err, partition }, 'releasing a lease failed; it expires on its own'));
  }

  /** The lease of p is gone (not renewed, or expired locally): onLose, unless it is being released already. */
  private lost(partition: number, why: string): void {
    const h = this.held.get(partition);
    if (!h) return;
    this.held.delete(partition);
    this.log.warn({ partition, epoch: h.epoch, why }, 'lease lost');
    if (h.releasing || !h.started) return; // its onLose is queued or running, or it was never taken up
    void this.enqueue(partition, () => this.options.onLose(partition));
  }

  /** Leases whose deadline has passed without a renewal are given up. */
  private expire(): void {
    const now = performance.now();
    for (const [p, h] of [...this.held]) if (h.deadline <= now) this.lost(p, 'expired: not renewed within ttl');
    if (this.leader && this.leader.deadline <= now) this.setLeader(undefined);
  }

  private scheduleDeadline(): void {
    if (this.deadlineTimer) clearTimeout(this.deadlineTimer);
    this.deadlineTimer = undefined;
    if (!this.running) return;
    let next = this.leader?.deadline ?? Infinity;
    for (const h of this.held.values()) if (h.deadline < next) next = h.deadline;
    if (next === Infinity) return;
    this.deadlineTimer = setTimeout(
      () => {
        this.expire();
        this.scheduleDeadline();
      },
      Math.max(0, next - performance.now()),
    );
    this.deadlineTimer.unref?.();
  }

  private setLeader(next: Held | undefined): void {
    const was = this.leader !== undefined;
    this.leader = next;
    if (was === (next !== undefined)) return;
    this.log.info({ leader: next !== undefined, epoch: next?.epoch }, next ? 'leader lease acquired' : 'leader lease lost');
    this.options.onLeaderChange?.(next !== undefined);
  }

  private enqueue(partition: number, work: () => Promise<void>): Promise<void> {
    const next = (this.chains.get(partition) ?? Promise.resolve()).then(work).catch((err: Error) => this.log.warn({ err, partition }, 'lease callback failed'));
    this.chains.set(partition, next);
    return next;
  }

  private clearTimers(): void {
    if (this.roundTimer) clearTimeout(this.roundTimer);
    if (this.deadlineTimer) clearTimeout(this.deadlineTimer);
    this.roundTimer = this.deadlineTimer = undefined;
  }
}
