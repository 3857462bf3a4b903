/**
 * The Sparkplug B host application on the platform's MQTT broker. The broker hands it the
 * spBv1.0 messages of configured edge nodes (the policy lets a node publish only its own
 * group/edge topics); their readings go through the same ingest path as MQTT telemetry (one
 * reading object per metric value, catalogue checks, spool), and the message is acknowledged
 * only once they are durable. Deaths, sequence gaps and closed connections make the node
 * offline (its device's presence, which `offline` rules see) and data from a stale node is
 * not stored until its next NBIRTH, which the host asks for with NCMD `Node Control/Rebirth`.
 *
 * Watchpost's own STATE (Sparkplug 3.0) is spBv1.0/STATE/{host_id}, retained, QoS 1:
 * `{"online":true,...}` at start and `{"online":false,...}` at stop.
 */
import type { Clock } from '../../lib/clock.js';
import type { Logger } from '../../lib/logger.js';
import type { Counter, MetricsRegistry } from '../../lib/metrics.js';
import type { IngestOutcome, TelemetrySource } from '../ingest-service.js';
import type { PublishOptions } from '../message-bus.js';
import { MAX_BATCH } from '../payload.js';
import { decodeSparkplug, rebirthCommand, statePayload, type SparkplugMessage } from './codec.js';
import type { SparkplugAdapterConfig } from './config.js';
import { SparkplugNodes, type SparkplugReading } from './node-state.js';
import { sparkplugTopics, type SparkplugTopic } from './topics.js';

export interface SparkplugHostDeps {
  config: SparkplugAdapterConfig;
  clock: Clock;
  logger: Logger;
  metrics: MetricsRegistry;
  publish(topic: string, payload: string | Buffer, options: PublishOptions): void;
  /** The MQTT telemetry path: resolves once the readings are durable (or refused). */
  ingest(source: TelemetrySource, topic: string, assetId: string, sensorId: string, payload: Buffer): Promise<IngestOutcome>;
  presence(deviceId: string, status: 'online' | 'offline'): void;
}

export class SparkplugHost {
  private readonly nodes: SparkplugNodes;
  private readonly lastRebirth = new Map<string, number>();
  private readonly messages: Counter;
  private readonly log: Logger;
  private running = false;

  constructor(private readonly deps: SparkplugHostDeps) {
    this.nodes = new SparkplugNodes(deps.config.nodes);
    this.messages = deps.metrics.counter('watchpost_sparkplug_messages_total', 'Sparkplug B messages received, by type and outcome (stored, dropped reason, bad_payload).');
    this.log = deps.logger.child({ module: 'sparkplug' });
  }

  /** Publishes the host's STATE (online, retained). The broker must be started. */
  start(): void {
    this.running = true;
    this.publishState(true);
  }

  /** Publishes the host's STATE offline (retained); call before the broker stops. */
  stop(): void {
    if (!this.running) return;
    this.running = false;
    this.publishState(false);
  }

  /** Is this group/edge a configured node (the broker policy asks)? */
  configured(group: string, edge: string): boolean {
    return this.nodes.configured(group, edge);
  }

  /**
   * One Sparkplug message of a node: resolves true once its readings are durable (acknowledge
   * it), false when storage refused them (do not). Never rejects.
   */
  handle(source: TelemetrySource, topic: SparkplugTopic, rawTopic: string, payload: Buffer): Promise<boolean> {
    const now = this.deps.clock.now();
    let message: SparkplugMessage;
    try {
      message = decodeSparkplug(payload);
    } catch (err) {
      this.messages.inc({ type: topic.type, outcome: 'bad_payload' });
      this.log.warn({ device_id: source.deviceId, topic: rawTopic, err: (err as Error).message }, 'Sparkplug payload refused: not a Sparkplug B payload');
      // A node whose message could not be read has lost its place in the sequence.
      if (topic.type !== 'NDEATH') this.requestRebirth(topic, now, true);
      return Promise.resolve(true);
    }
    const outcome = this.nodes.handle(topic, message, now);
    if (outcome.presence) this.deps.presence(topic.edge, outcome.presence);
    if (outcome.rebirth) this.requestRebirth(topic, now, outcome.dropped === 'sequence_gap');
    if (outcome.dropped) {
      this.messages.inc({ type: topic.type, outcome: outcome.dropped });
      if (outcome.dropped !== 'command') this.log.warn({ device_id: source.deviceId, topic: rawTopic, seq: message.seq, why: outcome.dropped }, 'Sparkplug message not stored');
    } else this.messages.inc({ type: topic.type, outcome: 'stored' });
    if (outcome.readings.length === 0) return Promise.resolve(true);
    return this.store(source, rawTopic, outcome.readings);
  }

  /** A node's connection closed (the device with the edge node's id). */
  disconnected(deviceId: string): void {
    for (const n of this.nodes.nodes()) if (n.edge === deviceId) this.nodes.disconnected(n.group, n.edge);
  }

  private store(source: TelemetrySource, rawTopic: string, readings: SparkplugReading[]): Promise<boolean> {
    // One reading object per value, so a bad value refuses only itself; per sensor, in batches.
    const bySensor = new Map<string, { asset: string; sensor: string; objects: unknown[] }>();
    for (const r of readings) {
      const key = `${r.asset}/${r.sensor}`;
      let entry = bySensor.get(key);
      if (!entry) bySensor.set(key, (entry = { asset: r.asset, sensor: r.sensor, objects: [] }));
      entry.objects.push({ ts: r.ts, values: { [r.metric]: r.value } });
    }
    const pending: Array<Promise<IngestOutcome>> = [];
    for (const { asset, sensor, objects } of bySensor.values()) {
      for (let i = 0; i < objects.length; i += MAX_BATCH) {
        const batch = objects.slice(i, i + MAX_BATCH);
        pending.push(this.deps.ingest(source, rawTopic, asset, sensor, Buffer.from(JSON.stringify(batch.length === 1 ? batch[0] : batch))));
      }
    }
    return Promise.all(pending).then(
      (outcomes) => outcomes.every((o) => o.stored),
      () => false,
    );
  }

  private requestRebirth(topic: SparkplugTopic, now: number, force: boolean): void {
    const key = `${topic.group}/${topic.edge}`;
    const last = this.lastRebirth.get(key);
    if (!force && last !== undefined && now - last < this.deps.config.rebirth_interval) return;
    this.lastRebirth.set(key, now);
    this.log.info({ group: topic.group, edge: topic.edge }, 'Sparkplug rebirth requested');
    this.deps.publish(sparkplugTopics.ncmd(topic.group, topic.edge), rebirthCommand(now), { qos: 0 });
  }

  private publishState(online: boolean): void {
    this.deps.publish(sparkplugTopics.state(this.deps.config.host_id), statePayload(online, this.deps.clock.now()), { qos: 1, retain: true });
  }
}
