/**
 * The host application's view of Sparkplug edge nodes, as a pure state machine: births define
 * metric names and aliases, data messages become readings, deaths and sequence gaps make a node
 * stale until its next NBIRTH. No I/O, no clock: time comes with each message.
 *
 * Sequence numbers: every message of a node after its NBIRTH (NDATA, DBIRTH, DDATA, DDEATH)
 * carries the previous one's seq + 1, modulo 256. A message with another seq, or data from a
 * node or device that has not been born (e.g. after Watchpost restarted), is dropped and the
 * node is asked for a rebirth. NDEATH carries the bdSeq of the NBIRTH it ends; a death with
 * another bdSeq (the will of an older session) is ignored.
 */
import { isControlMetric, mapMetricName } from './mapping.js';
import type { SparkplugMessage } from './codec.js';
import type { SparkplugNodeConfig } from './config.js';
import type { SparkplugTopic } from './topics.js';
import { BDSEQ_METRIC } from './codec.js';

export interface SparkplugReading {
  asset: string;
  sensor: string;
  metric: string;
  value: number;
  ts: number;
}

export type DropReason = 'not_configured' | 'not_born' | 'sequence_gap' | 'unknown_alias' | 'stale_death' | 'command';

export interface NodeOutcome {
  readings: SparkplugReading[];
  /** The node's presence changed: online at NBIRTH, offline at NDEATH or a sequence gap. */
  presence?: 'online' | 'offline';
  /** Ask the node for a rebirth (NCMD Node Control/Rebirth). */
  rebirth: boolean;
  /** Why the message produced no readings, when it was refused. */
  dropped?: DropReason;
  /** Metrics that named an alias no birth defined (counted, not stored). */
  unknownAliases: number;
}

interface NodeSession {
  born: boolean;
  seq: number;
  bdSeq?: number;
  /** alias -> metric name, over the node and all its devices (aliases are unique per node). */
  aliases: Map<number, string>;
  devices: Set<string>;
}

const MAX_ALIASES = 100_000;

export class SparkplugNodes {
  private readonly sessions = new Map<string, NodeSession>();
  private readonly configs = new Map<string, SparkplugNodeConfig[]>();

  constructor(nodes: readonly SparkplugNodeConfig[]) {
    for (const n of nodes) {
      const key = nodeKey(n.group, n.edge);
      const list = this.configs.get(key) ?? [];
      list.push(n);
      this.configs.set(key, list);
    }
  }

  /** Is this group/edge a configured node? */
  configured(group: string, edge: string): boolean {
    return this.configs.has(nodeKey(group, edge));
  }

  /** Configured nodes, one per group/edge. */
  nodes(): Array<{ group: string; edge: string }> {
    return [...this.configs.values()].map((list) => ({ group: list[0]!.group, edge: list[0]!.edge }));
  }

  handle(topic: SparkplugTopic, message: SparkplugMessage, receivedAt: number): NodeOutcome {
    const outcome: NodeOutcome = { readings: [], rebirth: false, unknownAliases: 0 };
    const key = nodeKey(topic.group, topic.edge);
    const configs = this.configs.get(key);
    if (!configs) return { ...outcome, dropped: 'not_configured' };
    const session = this.sessions.get(key);

    switch (topic.type) {
      case 'NCMD':
      case 'DCMD':
        return { ...outcome, dropped: 'command' };
      case 'NDEATH': {
        const bdSeq = metricInteger(message, BDSEQ_METRIC);
        if (!session?.born) return { ...outcome, dropped: 'stale_death' };
        if (bdSeq !== undefined && session.bdSeq !== undefined && bdSeq !== session.bdSeq) return { ...outcome, dropped: 'stale_death' };
        session.born = false;
        session.devices.clear();
        return { ...outcome, presence: 'offline' };
      }
      case 'NBIRTH': {
        const fresh: NodeSession = { born: true, seq: message.seq ?? 0, aliases: new Map(), devices: new Set() };
        const bdSeq = metricInteger(message, BDSEQ_METRIC);
        if (bdSeq !== undefined) fresh.bdSeq = bdSeq;
        this.sessions.set(key, fresh);
        this.learnAliases(fresh, message);
        outcome.presence = 'online';
        this.collect(fresh, configs, topic, message, receivedAt, outcome);
        return outcome;
      }
      default:
        break;
    }

    // NDATA, DBIRTH, DDATA, DDEATH: only from a born node, in sequence.
    if (!session?.born) return { ...outcome, rebirth: true, dropped: 'not_born' };
    const expected = (session.seq + 1) % 256;
    if (message.seq !== expected) {
      session.born = false;
      session.devices.clear();
      return { ...outcome, presence: 'offline', rebirth: true, dropped: 'sequence_gap' };
    }
    session.seq = expected;
    const device = topic.device!;
    switch (topic.type) {
      case 'DBIRTH':
        session.devices.add(device);
        this.learnAliases(session, message);
        break;
      case 'DDEATH':
        session.devices.delete(device);
        return outcome;
      case 'DDATA':
        if (!session.devices.has(device)) return { ...outcome, rebirth: true, dropped: 'not_born' };
        break;
      default:
        break;
    }
    this.collect(session, configs, topic, message, receivedAt, outcome);
    return outcome;
  }

  /** The node's connection closed: it is stale until its next NBIRTH. */
  disconnected(group: string, edge: string): void {
    const session = this.sessions.get(nodeKey(group, edge));
    if (session) {
      session.born = false;
      session.devices.clear();
    }
  }

  private learnAliases(session: NodeSession, message: SparkplugMessage): void {
    for (const m of message.metrics) {
      if (m.alias !== undefined && m.name !== undefined && session.aliases.size < MAX_ALIASES) session.aliases.set(m.alias, m.name);
    }
  }

  private collect(session: NodeSession, configs: readonly SparkplugNodeConfig[], topic: SparkplugTopic, message: SparkplugMessage, receivedAt: number, outcome: NodeOutcome): void {
    const config =
      topic.device !== undefined ? (configs.find((c) => c.device === topic.device) ?? configs.find((c) => c.device === '*')) : (configs.find((c) => c.device === '*') ?? configs[0]);
    if (!config) {
      outcome.dropped = 'not_configured';
      return;
    }
    const defaultSensor = topic.device ?? config.sensor ?? config.edge;
    for (const m of message.metrics) {
      const name = m.name ?? (m.alias !== undefined ? session.aliases.get(m.alias) : undefined);
      if (name === undefined) {
        outcome.unknownAliases++;
        continue;
      }
      if (m.value === undefined || isControlMetric(name)) continue;
      const { sensor, metric } = mapMetricName(name, config.metrics, defaultSensor);
      outcome.readings.push({ asset: config.asset, sensor, metric, value: m.value, ts: m.timestamp ?? message.timestamp ?? receivedAt });
    }
    if (outcome.unknownAliases > 0 && outcome.readings.length === 0) {
      outcome.dropped = 'unknown_alias';
      outcome.rebirth = true;
    }
  }
}

function nodeKey(group: string, edge: string): string {
  return `${group}/${edge}`;
}

function metricInteger(message: SparkplugMessage, name: string): number | undefined {
  const m = message.metrics.find((x) => x.name === name);
  return m?.value;
}
