/**
 * The engines of cluster mode behind the small interfaces the node uses: RabbitMQ (connection,
 * publisher with confirms, partition consumer; cluster/), PostgreSQL (the shared alert store,
 * alerts/postgres/; leases and rule checkpoints, cluster/).
 */
import { PostgresAlertStore } from '../../alerts/postgres/postgres-alert-store.js';
import type { AlertStore } from '../../alerts/store.js';
import { AmqpConnection } from '../../cluster/amqp-connection.js';
import { readingMessages } from '../../cluster/messages.js';
import { PartitionConsumer } from '../../cluster/partition-consumer.js';
import { partitionOf } from '../../cluster/partitions.js';
import { ReadingPublisher } from '../../cluster/reading-publisher.js';
import type { Clock } from '../../lib/clock.js';
import type { Logger } from '../../lib/logger.js';
import type { MetricsRegistry } from '../../lib/metrics.js';
import type { ClusterConfig } from '../config/cluster.js';
import type { CheckpointStore, PartitionTransport } from './cluster-node.js';
import { openLeasing, type Leasing, type LeaseHooks } from './leasing.js';

export interface ClusterEngines {
  partitionOf: typeof partitionOf;
  readingMessages: typeof readingMessages;
  transport: PartitionTransport;
  checkpoints: CheckpointStore;
  openAlertStore(): AlertStore;
  isLeader(): boolean;
  /** Why RabbitMQ is not connected, without credentials. */
  amqpError(): string | undefined;
  startLeases(hooks: LeaseHooks): Promise<void>;
  stopLeases(): Promise<void>;
  close(): Promise<void>;
}

/** Connects to RabbitMQ (queues declared) and opens the lease and checkpoint pool; rejects naming the engine. */
export async function openEngines(config: ClusterConfig, deps: { logger: Logger; clock: Clock; metrics: MetricsRegistry }): Promise<ClusterEngines> {
  const logger = deps.logger.child({ module: 'cluster', instance_id: config.instance_id });
  const connection = new AmqpConnection({ url: config.amqp_url, partitions: config.partitions, instanceId: config.instance_id, logger: logger.child({ part: 'amqp' }) });
  await connection.start();
  const publisher = new ReadingPublisher(connection, { logger: logger.child({ part: 'publisher' }) });
  const consumer = new PartitionConsumer(connection, { logger: logger.child({ part: 'consumer' }) });
  let leasing: Leasing;
  try {
    await publisher.start();
    leasing = await openLeasing(config, { logger });
  } catch (err) {
    await publisher.stop().catch(() => undefined);
    await connection.stop().catch(() => undefined);
    throw err;
  }
  const transport: PartitionTransport = {
    connected: () => connection.status().connected,
    publish: (partition, message) => publisher.publish(partition, message),
    consume: async (partition, handler) => {
      await consumer.consumeBatches(partition, handler);
      return { cancel: () => consumer.cancel(partition) };
    },
  };
  return {
    partitionOf,
    readingMessages,
    transport,
    checkpoints: leasing.checkpoints,
    openAlertStore: () => PostgresAlertStore.open(config.postgres_url, { logger: logger.child({ part: 'store' }) }),
    isLeader: () => leasing.isLeader(),
    amqpError: () => connection.status().error,
    startLeases: (hooks) => leasing.start(hooks),
    stopLeases: () => leasing.stop(),
    close: async () => {
      await consumer.stop();
      await publisher.stop();
      await connection.stop();
      await leasing.close();
    },
  };
}
