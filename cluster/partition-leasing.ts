/**
 * The leases and the rule checkpoints of one instance over one PostgreSQL pool: what the cluster
 * composition needs in one object. The checkpoints are fenced by the leases (a checkpoint is
 * written only while this instance holds the partition's lease with the epoch it acquired).
 */
import pg from 'pg';
import type { Logger } from '../lib/logger.js';
import { DEFAULT_LEASE_OPTIONS, LeaseManager, type LeaseStatus } from './leases.js';
import { RuleCheckpoints } from './rule-checkpoints.js';

export interface PartitionHooks {
  acquire(partition: number): Promise<void>;
  lose(partition: number): Promise<void>;
  leadershipChanged(): void;
}

export interface PartitionLeasingOptions {
  url: string;
  instanceId: string;
  partitions: number;
  logger: Logger;
  ttlMs?: number;
  renewMs?: number;
}

export class PartitionLeasing {
  readonly checkpoints: RuleCheckpoints;
  private readonly pool: pg.Pool;
  private manager: LeaseManager | undefined;
  private closed = false;

  constructor(private readonly options: PartitionLeasingOptions) {
    const ttlMs = options.ttlMs ?? DEFAULT_LEASE_OPTIONS.ttlMs;
    // A round that cannot reach PostgreSQL gives up within ttl; the leases are given up by their deadline anyway.
    this.pool = new pg.Pool({ connectionString: options.url, max: 3, connectionTimeoutMillis: ttlMs, query_timeout: ttlMs });
    this.pool.on('error', (err) => options.logger.warn({ err }, 'leases: an idle PostgreSQL connection failed'));
    const fence = { instanceId: options.instanceId, epoch: (p: number) => this.manager?.epoch(p) };
    this.checkpoints = new RuleCheckpoints({ pool: this.pool, logger: options.logger, fence });
  }

  /** Creates the tables, then takes this instance's share of the partitions (hooks called per partition). */
  async start(hooks: PartitionHooks): Promise<void> {
    if (this.manager) return;
    await this.checkpoints.ensureSchema();
    this.manager = new LeaseManager({
      pool: this.pool,
      instanceId: this.options.instanceId,
      partitions: this.options.partitions,
      ...(this.options.ttlMs !== undefined ? { ttlMs: this.options.ttlMs } : {}),
      ...(this.options.renewMs !== undefined ? { renewMs: this.options.renewMs } : {}),
      logger: this.options.logger,
      onAcquire: (p) => hooks.acquire(p),
      onLose: (p) => hooks.lose(p),
      onLeaderChange: () => hooks.leadershipChanged(),
    });
    await this.manager.start();
  }

  /** Gives every partition up (hooks.lose), then releases the leases at once. */
  async stop(): Promise<void> {
    await this.manager?.stop();
  }

  isLeader(): boolean {
    return this.manager?.isLeader() ?? false;
  }

  /** Owned partitions, ascending. */
  held(): number[] {
    return [...(this.manager?.owned() ?? [])].sort((a, b) => a - b);
  }

  status(): LeaseStatus | undefined {
    return this.manager?.status();
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await this.pool.end();
  }
}
