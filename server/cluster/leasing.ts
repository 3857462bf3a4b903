/**
 * Partition ownership and the leader by leases in PostgreSQL, and the rule checkpoints fenced by
 * them: cluster/partition-leasing.ts (LeaseManager and RuleCheckpoints on one pool) behind the
 * interface the node uses.
 *
 * A lease lasts LEASE_TTL_MS on PostgreSQL's clock and is renewed every RENEW_MS; an instance
 * that cannot renew gives its partitions up before they can expire for the others, and a
 * checkpoint is written only by the holder of its partition's lease with the lease's epoch.
 */
import { PartitionLeasing, type PartitionHooks } from '../../cluster/partition-leasing.js';
import type { Logger } from '../../lib/logger.js';
import type { ClusterConfig } from '../config/cluster.js';
import type { CheckpointStore } from './cluster-node.js';

export const LEASE_TTL_MS = 5000;
export const RENEW_MS = 1000;

export type LeaseHooks = PartitionHooks;

export interface Leasing {
  checkpoints: CheckpointStore;
  isLeader(): boolean;
  /** Owned partitions as the leases say (the node's view may lag while it loads). */
  held(): number[];
  /** Takes this instance's share of the partitions; rejects when PostgreSQL cannot be reached. */
  start(hooks: LeaseHooks): Promise<void>;
  /** Releases every lease (the partitions are taken over at once). */
  stop(): Promise<void>;
  close(): Promise<void>;
}

export function openLeasing(config: ClusterConfig, deps: { logger: Logger }): Promise<Leasing> {
  return Promise.resolve(
    new PartitionLeasing({
      url: config.postgres_url,
      instanceId: config.instance_id,
      partitions: config.partitions,
      logger: deps.logger.child({ part: 'leases' }),
      ttlMs: LEASE_TTL_MS,
      renewMs: RENEW_MS,
    }),
  );
}
