/**
 * The cluster part of the composition (docs/cluster.md): what the platform builds instead of, or
 * beside, its single-instance parts when the configuration has a `cluster` section.
 *
 * - `connect()` tries both engines first: an unreachable one stops the start, named with its
 *   host:port. Then the AMQP connection (queues declared) and the PostgreSQL pool of the leases
 *   and checkpoints.
 * - `openAlertStore()`: the shared PostgreSQL store instead of alerts.db.
 * - `start()`: the partition node and the leases; `stop()` releases them (the partitions go to
 *   the other instances at once, not after the lease expires).
 * - `health()`: the `cluster` part of /healthz, and whether readings can be accepted (RabbitMQ
 *   must confirm them) and whether alert work waits (PostgreSQL down).
 */
import pg from 'pg';
import type { AlertClusterOptions } from '../../alerts/alert-service.js';
import type { AlertStore } from '../../alerts/store.js';
import type { Reading } from '../../ingest/reading.js';
import type { Clock } from '../../lib/clock.js';
import type { Logger } from '../../lib/logger.js';
import type { MetricsRegistry } from '../../lib/metrics.js';
import type { ClusterConfig } from '../config/cluster.js';
import { ClusterNode, type ClusterNodeDeps } from './cluster-node.js';
import { checkEngines, postgresAddress } from './engine-check.js';
import { openEngines, type ClusterEngines } from './engines.js';

/** How often PostgreSQL is pinged for /healthz while running. */
const PING_MS = 2000;
const PING_TIMEOUT_MS = 1500;

export interface ClusterModeDeps {
  logger: Logger;
  clock: Clock;
  metrics: MetricsRegistry;
}

/** What the platform gives the node once its rules and alert stage exist. */
export type ClusterParts = Omit<ClusterNodeDeps, 'instanceId' | 'partitions' | 'partitionOf' | 'readingMessages' | 'transport' | 'checkpoints' | 'clock' | 'logger'> & {
  /** The alert stage hears of leadership changes at once (it also polls). */
  leadershipChanged: () => void;
};

export interface ClusterHealth {
  instance_id: string;
  amqp: 'up' | 'down';
  postgres: 'up' | 'down';
  partitions: number;
  owned: number[];
  leader: boolean;
  amqp_error?: string;
  postgres_error?: string;
}

export class ClusterMode {
  private node?: ClusterNode;
  private pingTimer?: NodeJS.Timeout;
  private postgresUp = true;
  private postgresError?: string;
  private readonly log: Logger;

  private constructor(
    readonly config: ClusterConfig,
    private readonly deps: ClusterModeDeps,
    private readonly engines: ClusterEngines,
    private readonly ping: pg.Pool,
  ) {
    this.log = deps.logger.child({ module: 'cluster', instance_id: config.instance_id });
  }

  /** Checks both engines, then connects to them; rejects with an error naming the one that cannot be reached. */
  static async connect(config: ClusterConfig, deps: ClusterModeDeps): Promise<ClusterMode> {
    await checkEngines(config);
    const engines = await openEngines(config, deps);
    const ping = new pg.Pool({ connectionString: config.postgres_url, max: 1, connectionTimeoutMillis: PING_TIMEOUT_MS, query_timeout: PING_TIMEOUT_MS, idleTimeoutMillis: 30_000 });
    // A lost connection: the next ping reports it; an 'error' event without a listener would end the process.
    ping.on('error', () => undefined);
    ping.on('connect', (client) => client.on('error', () => undefined));
    return new ClusterMode(config, deps, engines, ping);
  }

  get instanceId(): string {
    return this.config.instance_id;
  }

  openAlertStore(): AlertStore {
    return this.engines.openAlertStore();
  }

  /** The alert stage's view of the cluster: leader-only timers follow the `leader` lease. */
  alertCluster(): AlertClusterOptions {
    return { instanceId: this.config.instance_id, isLeader: () => this.engines.isLeader() };
  }

  async start(parts: ClusterParts): Promise<void> {
    const { leadershipChanged, ...nodeParts } = parts;
    const node = new ClusterNode({
      ...nodeParts,
      instanceId: this.config.instance_id,
      partitions: this.config.partitions,
      partitionOf: this.engines.partitionOf,
      readingMessages: this.engines.readingMessages,
      transport: this.engines.transport,
      checkpoints: this.engines.checkpoints,
      clock: this.deps.clock,
      logger: this.deps.logger,
    });
    this.node = node;
    this.pingTimer = setInterval(() => void this.pingPostgres(), PING_MS);
    this.pingTimer.unref();
    await this.engines.startLeases({
      acquire: (p) => node.acquire(p),
      lose: (p) => node.lose(p),
      leadershipChanged,
    });
    this.log.info({ partitions: this.config.partitions }, 'cluster mode: leases started');
  }

  private async pingPostgres(): Promise<void> {
    try {
      await this.ping.query('SELECT 1');
      if (!this.postgresUp) this.log.info({ postgres: postgresAddress(this.config) }, 'PostgreSQL reachable again');
      this.postgresUp = true;
      this.postgresError = undefined;
    } catch (err) {
      if (this.postgresUp) this.log.warn({ postgres: postgresAddress(this.config), err }, 'PostgreSQL unreachable: readings are still accepted; alert work waits');
      this.postgresUp = false;
      this.postgresError = `cannot reach PostgreSQL at ${postgresAddress(this.config)}: ${(err as Error).message}`;
    }
  }

  publishReadings(readings: readonly Reading[]): Promise<boolean> {
    return this.node ? this.node.publishReadings(readings) : Promise.resolve(false);
  }

  publishPresence(deviceId: string, status: 'online' | 'offline'): void {
    this.node?.publishPresence(deviceId, status);
  }

  owns(assetId: string): boolean {
    return this.node?.owns(assetId) ?? false;
  }

  /** The rule tick over owned state. */
  tick(): void {
    this.node?.tick();
  }

  /** Readings can be accepted only while RabbitMQ takes them. */
  accepting(): boolean {
    return this.engines.transport.connected();
  }

  health(): ClusterHealth {
    const amqp = this.engines.transport.connected();
    const amqpError = this.engines.amqpError();
    return {
      instance_id: this.config.instance_id,
      amqp: amqp ? 'up' : 'down',
      postgres: this.postgresUp ? 'up' : 'down',
      partitions: this.config.partitions,
      owned: this.node?.ownedPartitions() ?? [],
      leader: this.engines.isLeader(),
      ...(!amqp && amqpError ? { amqp_error: amqpError } : {}),
      ...(!this.postgresUp && this.postgresError ? { postgres_error: this.postgresError } : {}),
    };
  }

  /** Partitions released (handed over at once), consumers cancelled, connections closed. */
  async stop(): Promise<void> {
    if (this.pingTimer) clearInterval(this.pingTimer);
    this.pingTimer = undefined;
    // Consumers first: what they have not acknowledged returns to the queues before the next owner takes the lease.
    await this.node?.stop();
    await this.engines.stopLeases().catch((err: Error) => this.log.error({ err }, 'releasing the leases failed'));
    await this.engines.close().catch((err: Error) => this.log.error({ err }, 'closing the cluster connections failed'));
    await this.ping.end().catch(() => undefined);
  }
}
