/**
 * One instance's part of a cluster (docs/cluster.md): the partitions of the reading stream it
 * owns, judged by its one RuleRunner, and the hand-over of their rule state.
 *
 * - Accepting: readings and presence accepted by this instance, from any device, are published to
 *   the partition of their asset; `publishReadings` resolves true only once RabbitMQ confirmed
 *   every partition's message.
 * - Owning: on acquiring a partition's lease, the rule state of its assets is loaded from their
 *   checkpoints (open alerts seed the assets that have none), the stale rules watch its sensors,
 *   then its queue is consumed. On losing it the consumer is cancelled and the state dropped: the
 *   runner holds owned assets only, so the rule tick (stale, offline, flapping) judges nothing
 *   this instance does not own.
 * - Judging one message: rules -> alert stage -> stored in PostgreSQL -> checkpoint of the assets
 *   it touched -> ack. The snapshot is taken right after the rules ran, and the checkpoints of a
 *   partition are written in order, so a crash anywhere leaves a checkpoint that matches exactly
 *   the messages acknowledged: the next owner re-judges the rest from there.
 */
import type { PartitionMessage } from '../../cluster/messages.js';
import type { Reading } from '../../ingest/reading.js';
import type { Clock } from '../../lib/clock.js';
import type { Logger } from '../../lib/logger.js';
import type { OpenAlertSeed } from '../../rules/rule-runner.js';
import type { AssetSnapshot } from '../../rules/state-codec.js';
import type { DeviceRef } from '../../rules/state.js';
import type { WatchedSensor } from '../../rules/tick.js';
import type { RuleEvent } from '../../rules/types.js';

export interface ConsumerHandle {
  cancel(): Promise<void>;
}

/** The partitioned stream (RabbitMQ). */
export interface PartitionTransport {
  connected(): boolean;
  /** Resolves once the broker confirmed the message; rejects when it did not. */
  publish(partition: number, message: PartitionMessage): Promise<void>;
  /**
   * Consumes a partition, one call at a time, in queue order: the messages of a call are
   * acknowledged when it resolves, returned to the queue when it rejects.
   */
  consume(partition: number, handler: (messages: PartitionMessage[]) => Promise<void>): Promise<ConsumerHandle>;
}

/** Rule state checkpoints by asset (PostgreSQL). */
export interface CheckpointStore {
  /** The checkpoints these assets have (assets without one are left out). */
  load(partition: number, assetIds: readonly string[]): Promise<AssetSnapshot[]>;
  save(partition: number, snapshots: readonly AssetSnapshot[]): Promise<void>;
}

/** What the node needs of the RuleRunner. */
export interface ClusterRules {
  process(readings: readonly Reading[], now?: number): RuleEvent[];
  presence(device: DeviceRef, status: 'online' | 'offline', now: number): RuleEvent[];
  tick(now: number): RuleEvent[];
  watch(sensors: readonly WatchedSensor[], now: number): void;
  restore(open: readonly OpenAlertSeed[], now?: number): string[];
  exportAssets(assetIds: ReadonlySet<string>): AssetSnapshot[];
  importAssets(snapshots: readonly AssetSnapshot[]): void;
  dropAssets(assetIds: ReadonlySet<string>): void;
}

export interface ClusterNodeDeps {
  instanceId: string;
  partitions: number;
  partitionOf: (assetId: string, partitions: number) => number;
  /** The readings as messages, by partition (split by size). */
  readingMessages: (instance: string, readings: readonly Reading[], partitions: number) => Array<{ partition: number; message: PartitionMessage }>;
  transport: PartitionTransport;
  checkpoints: CheckpointStore;
  rules: ClusterRules;
  /** Gives rule events to the alert stage; resolves once they are stored. */
  handle: (events: readonly RuleEvent[]) => Promise<void>;
  /** Open alerts of configured rules, to seed assets that have no checkpoint yet. */
  openAlerts: () => readonly OpenAlertSeed[];
  /** The configured assets (the configuration in force: the same array until a reload replaces it). */
  assets: () => readonly { id: string }[];
  /** Every configured sensor, for stale rules. */
  sensors: () => readonly WatchedSensor[];
  /** A configured device and its assets (all of them; the node keeps the ones it owns). */
  deviceRef: (deviceId: string) => DeviceRef;
  clock: Clock;
  logger: Logger;
  /** Pause between attempts to write a checkpoint while PostgreSQL cannot take it (default 500 ms). */
  retryMs?: number;
}

interface Owned {
  /** Changes with every acquire and loss: work of an older ownership is not acknowledged. */
  epoch: number;
  consumer?: ConsumerHandle;
  /** The partition's alert-store and checkpoint work, in message order. */
  chain: Promise<void>;
  /** Settled when the partition is lost: work waiting for the store gives up (its messages go back). */
  lost: Promise<never>;
  markLost: () => void;
}

function ownership(epoch: number): Owned {
  let markLost!: () => void;
  const lost = new Promise<never>((_, reject) => (markLost = () => reject(new PartitionHandedOverSignal())));
  lost.catch(() => undefined);
  return { epoch, chain: Promise.resolve(), lost, markLost };
}

class PartitionHandedOverSignal extends Error {}

/** Thrown to return a message to its queue: the partition is no longer this instance's. */
export class PartitionHandedOver extends Error {
  readonly code = 'partition_handed_over';
  constructor(readonly partition: number) {
    super(`partition ${partition} was handed over`);
  }
}

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms).unref());

export class ClusterNode {
  private readonly owned = new Map<number, Owned>();
  private epoch = 0;
  /** Changes with every lose(): an acquire still loading when its lease is lost gives up. */
  private readonly generation = new Map<number, number>();
  private stopped = false;
  /** Assets by partition, for the configuration in force (recomputed when its asset list changes). */
  private assetsByPartition = new Map<number, Set<string>>();
  private assetList: unknown;
  /** Presence not yet confirmed by RabbitMQ, latest per device, and its sender. */
  private readonly presenceQueue = new Map<string, { status: 'online' | 'offline'; at: number }>();
  private presencePump?: Promise<void>;
  /**
   * Readings of the messages accepted in this turn of the event loop, published together: one
   * AMQP message per partition per turn instead of one per MQTT message (a confirm round trip
   * each), in acceptance order. Each caller waits only for the partitions of its own readings.
   */
  private outgoing: Reading[] = [];
  private outgoingFlush?: Promise<Map<number, Promise<void>>>;
  /** When the last partition was acquired, and when each was acquired (hand-over measurements). */
  readonly acquiredAt = new Map<number, number>();
  private readonly log: Logger;

  constructor(private readonly deps: ClusterNodeDeps) {
    this.log = deps.logger.child({ module: 'cluster', instance_id: deps.instanceId });
  }

  partitionOf(assetId: string): number {
    return this.deps.partitionOf(assetId, this.deps.partitions);
  }

  /** The partitions this instance judges now. */
  ownedPartitions(): number[] {
    return [...this.owned.keys()].sort((a, b) => a - b);
  }

  owns(assetId: string): boolean {
    return this.owned.has(this.partitionOf(assetId));
  }

  /** Readings durable in this instance's spool, published to their partitions: true once all are confirmed. */
  publishReadings(readings: readonly Reading[]): Promise<boolean> {
    const mine = new Set<number>();
    for (const r of readings) {
      mine.add(this.partitionOf(r.assetId));
      this.outgoing.push(r);
    }
    this.outgoingFlush ??= new Promise((resolve, reject) =>
      setImmediate(() => {
        const batch = this.outgoing;
        this.outgoing = [];
        this.outgoingFlush = undefined;
        try {
          resolve(this.publishBatch(batch));
        } catch (err) {
          reject(err);
        }
      }),
    );
    return this.outgoingFlush
      .then((confirmed) => Promise.all([...mine].map((p) => confirmed.get(p) ?? Promise.reject(new Error(`partition ${p}: nothing was published`)))))
      .then(
        () => true,
        (err: Error) => {
          this.log.debug({ err }, 'readings not confirmed by RabbitMQ: not acknowledged');
          return false;
        },
      );
  }

  /** Publishes one turn's readings; per partition, a promise of all its messages' confirms. */
  private publishBatch(readings: readonly Reading[]): Map<number, Promise<void>> {
    const sent = new Map<number, Promise<void>[]>();
    for (const { partition, message } of this.deps.readingMessages(this.deps.instanceId, readings, this.deps.partitions)) {
      const confirm = this.deps.transport.publish(partition, message);
      const list = sent.get(partition);
      if (list) list.push(confirm);
      else sent.set(partition, [confirm]);
    }
    const confirmed = new Map<number, Promise<void>>();
    for (const [partition, list] of sent) {
      const all = Promise.all(list).then(() => undefined);
      // Every partition is awaited by the callers whose readings are in it; this only keeps a refusal seen by none of them from being unhandled.
      all.catch(() => undefined);
      confirmed.set(partition, all);
    }
    return confirmed;
  }

  /** A device's presence, forwarded to the partitions of its assets until RabbitMQ confirmed it (the latest per device). */
  publishPresence(deviceId: string, status: 'online' | 'offline'): void {
    if (this.stopped || this.deps.deviceRef(deviceId).assets.length === 0) return;
    this.presenceQueue.set(deviceId, { status, at: this.deps.clock.now() });
    this.presencePump ??= this.pumpPresence().finally(() => (this.presencePump = undefined));
  }

  private async pumpPresence(): Promise<void> {
    while (!this.stopped && this.presenceQueue.size > 0) {
      const [deviceId, p] = this.presenceQueue.entries().next().value!;
      this.presenceQueue.delete(deviceId);
      const partitions = new Set(this.deps.deviceRef(deviceId).assets.map((a) => this.partitionOf(a.assetId)));
      try {
        await Promise.all(
          [...partitions].map((partition) => this.deps.transport.publish(partition, { v: 1, kind: 'presence', instance: this.deps.instanceId, deviceId, status: p.status, at: p.at })),
        );
      } catch (err) {
        // Kept unless a newer status came meanwhile; tried again after a pause.
        if (!this.presenceQueue.has(deviceId)) this.presenceQueue.set(deviceId, p);
        this.log.warn({ err, device_id: deviceId }, 'presence not confirmed by RabbitMQ: retrying');
        await sleep(this.deps.retryMs ?? 500);
      }
    }
  }

  private assetsOf(partition: number): Set<string> {
    const list = this.deps.assets();
    if (list !== this.assetList) {
      this.assetList = list;
      const next = new Map<number, Set<string>>();
      for (const { id } of list) {
        const p = this.partitionOf(id);
        const set = next.get(p);
        if (set) set.add(id);
        else next.set(p, new Set([id]));
      }
      this.assetsByPartition = next;
    }
    return this.assetsByPartition.get(partition) ?? new Set();
  }

  /** Configured sensors of owned partitions: what the stale rules of this instance watch. */
  ownedSensors(): WatchedSensor[] {
    return this.deps.sensors().filter((s) => this.owns(s.assetId));
  }

  /** Lease acquired: load the partition's state, watch its sensors, consume its queue. */
  async acquire(partition: number): Promise<void> {
    if (this.stopped || this.owned.has(partition)) return;
    const epoch = ++this.epoch;
    const generation = this.generation.get(partition) ?? 0;
    const part = ownership(epoch);
    const assets = this.assetsOf(partition);
    const snapshots = await this.deps.checkpoints.load(partition, [...assets]);
    if (this.stopped || this.owned.has(partition) || (this.generation.get(partition) ?? 0) !== generation) return;
    const { rules, clock } = this.deps;
    const now = clock.now();
    rules.importAssets(snapshots);
    // Assets that never had a checkpoint (a new cluster, a new asset): their open alerts seed the state, so they can resolve.
    const checkpointed = new Set(snapshots.map((s) => s.assetId));
    rules.restore(
      this.deps.openAlerts().filter((a) => assets.has(a.asset_id) && !checkpointed.has(a.asset_id)),
      now,
    );
    this.owned.set(partition, part);
    rules.watch(this.ownedSensors(), now);
    try {
      const consumer = await this.deps.transport.consume(partition, (messages) => this.judge(partition, epoch, messages));
      if (this.owned.get(partition)?.epoch === epoch) part.consumer = consumer;
      else await consumer.cancel();
    } catch (err) {
      // No consumer: give the state back; the lease manager tries again (or the broker is down and it will be).
      if (this.owned.get(partition)?.epoch === epoch) this.owned.delete(partition);
      rules.dropAssets(assets);
      throw err;
    }
    this.acquiredAt.set(partition, clock.now());
    this.log.info({ partition, assets: assets.size, checkpoints: snapshots.length }, 'partition acquired');
  }

  /** Lease lost (or released): stop consuming, forget the state; what was not acknowledged goes to the next owner. */
  async lose(partition: number): Promise<void> {
    this.generation.set(partition, (this.generation.get(partition) ?? 0) + 1);
    const part = this.owned.get(partition);
    if (!part) return;
    this.owned.delete(partition);
    part.markLost();
    this.acquiredAt.delete(partition);
    this.deps.rules.dropAssets(this.assetsOf(partition));
    this.deps.rules.watch(this.ownedSensors(), this.deps.clock.now());
    await part.consumer?.cancel().catch((err: Error) => this.log.warn({ err, partition }, 'cancelling the consumer failed (the channel is gone: its messages return to the queue)'));
    this.log.info({ partition }, 'partition released');
  }

  /** Messages of an owned partition, in queue order; resolves (= ack) once their events are stored and the checkpoint written. */
  private judge(partition: number, epoch: number, messages: readonly PartitionMessage[]): Promise<void> {
    const part = this.owned.get(partition);
    if (!part || part.epoch !== epoch) return Promise.reject(new PartitionHandedOver(partition));
    const { rules, clock } = this.deps;
    const touched = new Set<string>();
    const events: RuleEvent[] = [];
    for (const message of messages) {
      if (message.kind === 'readings') {
        // Only the partition's own assets (a publisher configured with another partition count must not make this judge others').
        const readings = message.readings.filter((r) => this.partitionOf(r.assetId) === partition);
        for (const r of readings) touched.add(r.assetId);
        events.push(...rules.process(readings, clock.now()));
      } else {
        const device = this.deps.deviceRef(message.deviceId);
        // The device's assets this instance owns: the copy of the message in another owned partition then finds it judged.
        const assets = device.assets.filter((a) => this.owns(a.assetId));
        if (assets.length === 0) continue;
        for (const a of assets) touched.add(a.assetId);
        events.push(...rules.presence({ deviceId: device.deviceId, assets }, message.status, message.at));
      }
    }
    for (const e of events) touched.add(e.assetId);
    return this.commit(partition, part, events, rules.exportAssets(touched));
  }

  /** Timed rule work over owned state; each partition's events are stored and checkpointed like a message's. */
  tick(): void {
    const events = this.deps.rules.tick(this.deps.clock.now());
    if (events.length === 0) return;
    const byPartition = new Map<number, RuleEvent[]>();
    for (const e of events) {
      const p = this.partitionOf(e.assetId);
      const list = byPartition.get(p);
      if (list) list.push(e);
      else byPartition.set(p, [e]);
    }
    for (const [p, list] of byPartition) {
      const part = this.owned.get(p);
      if (!part) continue; // cannot happen: the runner holds owned assets only
      this.commit(p, part, list, this.deps.rules.exportAssets(new Set(list.map((e) => e.assetId)))).catch(() => undefined);
    }
  }

  /**
   * The events go to the alert stage now (its queue keeps their order across partitions); the
   * checkpoint is written after they are stored and after the partition's earlier checkpoints.
   */
  private commit(partition: number, part: Owned, events: readonly RuleEvent[], snapshot: AssetSnapshot[]): Promise<void> {
    const stored = events.length > 0 ? this.deps.handle(events) : Promise.resolve();
    const step = async (): Promise<void> => {
      await Promise.race([stored, part.lost]);
      if (snapshot.length === 0) return;
      for (;;) {
        if (this.owned.get(partition) !== part || this.stopped) throw new PartitionHandedOver(partition);
        try {
          await Promise.race([this.deps.checkpoints.save(partition, snapshot), part.lost]);
          return;
        } catch (err) {
          // Lost meanwhile, or the lease is no longer this instance's (the checkpoint is refused): the batch is the next owner's.
          if (err instanceof PartitionHandedOverSignal || (err as { code?: unknown }).code === 'checkpoint_fenced') throw new PartitionHandedOver(partition);
          this.log.warn({ err, partition }, 'writing a rule checkpoint failed: retrying (the message stays unacknowledged)');
          await sleep(this.deps.retryMs ?? 500);
        }
      }
    };
    const done = part.chain.then(step, step);
    part.chain = done.catch(() => undefined);
    return done;
  }

  /** Stops consuming every partition (their unacknowledged messages return to the queues) and drops the state. */
  async stop(): Promise<void> {
    this.stopped = true;
    this.presenceQueue.clear();
    await Promise.all(this.ownedPartitions().map((p) => this.lose(p)));
  }
}
