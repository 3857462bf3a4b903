/**
 * The embedded broker's access policy (contract: MQTT), as plain functions over the device
 * registry: who may connect, publish and subscribe. No sockets, no timers.
 */
import type { DeviceConfig } from './config.js';
import { filterCovers, filterReaches, parseTopic, type InboundTopic } from './topics.js';
import { isSparkplugTopic, nodeSubscriptions, parseSparkplugTopic, type SparkplugTopic } from './sparkplug/topics.js';

export interface DeviceEntry {
  id: string;
  config: DeviceConfig;
  assets: ReadonlySet<string>;
}

export type PublishDecision =
  | { action: 'refuse'; reason: string } // protocol-level refusal: the connection is closed
  | { action: 'telemetry'; topic: Extract<InboundTopic, { kind: 'telemetry' }> }
  | { action: 'status'; deviceId: string; value: 'online' | 'offline' }
  | { action: 'sparkplug'; topic: SparkplugTopic }
  | { action: 'reject'; reason: 'not_allowed' | 'bad_topic' | 'bad_shape'; detail: string }; // reported on errors/, not stored

/** The configured devices by id and by asset; a configuration reload swaps them in whole (`replace`). */
export class DeviceRegistry {
  private devices = new Map<string, DeviceEntry>();
  private byAsset = new Map<string, string[]>();

  constructor(devices: readonly DeviceConfig[]) {
    this.replace(devices);
  }

  /** The devices of a new configuration; returns the entries they replaced (by id), for the broker to judge its connections. */
  replace(devices: readonly DeviceConfig[]): ReadonlyMap<string, DeviceEntry> {
    const previous = this.devices;
    const next = new Map<string, DeviceEntry>();
    const byAsset = new Map<string, string[]>();
    for (const d of devices) {
      next.set(d.id, { id: d.id, config: d, assets: new Set(d.assets) });
      for (const a of d.assets) {
        const list = byAsset.get(a) ?? [];
        list.push(d.id);
        byAsset.set(a, list);
      }
    }
    this.devices = next;
    this.byAsset = byAsset;
    return previous;
  }

  get(id: string): DeviceEntry | undefined {
    return this.devices.get(id);
  }

  all(): IterableIterator<DeviceEntry> {
    return this.devices.values();
  }

  devicesForAsset(assetId: string): readonly string[] {
    return this.byAsset.get(assetId) ?? [];
  }
}

/**
 * After a registry swap, what becomes of a connection of a device logged in as `before`: closed
 * when the device is gone or its credentials or subscription filters changed (the new ones must
 * be presented or applied afresh), its persistent subscriptions forgotten when the device is gone
 * or its filters changed (so a session cannot keep what the filters no longer allow); otherwise
 * it carries on, rebound to the new entry (its assets).
 */
export function connectionAfterSwap(before: DeviceEntry, after: DeviceEntry | undefined): { action: 'rebind' } | { action: 'close'; forgetSubscriptions: boolean } {
  if (!after) return { action: 'close', forgetSubscriptions: true };
  const a = before.config;
  const b = after.config;
  if (JSON.stringify(a.subscribe) !== JSON.stringify(b.subscribe)) return { action: 'close', forgetSubscriptions: true };
  if (a.secret !== b.secret || a.secret_hash !== b.secret_hash) return { action: 'close', forgetSubscriptions: false };
  return { action: 'rebind' };
}

/** `sparkplugGroups`: the Sparkplug groups in which the device is a configured edge node (its id is the edge node id). */
export function decidePublish(device: DeviceEntry | undefined, topic: string, payload: Buffer, sparkplugGroups?: ReadonlySet<string>): PublishDecision {
  if (topic.startsWith('$')) return { action: 'refuse', reason: `publishing to ${topic.split('/')[0]} topics is not allowed` };
  if (!device) return { action: 'refuse', reason: 'anonymous clients may not publish' };
  if (isSparkplugTopic(topic)) return decideSparkplug(device, topic, sparkplugGroups);
  const parsed = parseTopic(topic);
  switch (parsed.kind) {
    case 'telemetry':
      return { action: 'telemetry', topic: parsed };
    case 'status': {
      if (parsed.deviceId !== device.id) return { action: 'reject', reason: 'not_allowed', detail: `a device may publish only status/${device.id}` };
      const value = payload.toString('utf8');
      if (value !== 'online' && value !== 'offline') return { action: 'reject', reason: 'bad_shape', detail: 'status payload must be "online" or "offline"' };
      return { action: 'status', deviceId: device.id, value };
    }
    default:
      return { action: 'reject', reason: 'bad_topic', detail: 'devices publish to telemetry/{asset_id}/{sensor_id} or status/{device_id}' };
  }
}

/** A configured edge node may publish its own node and device messages (not commands), nothing else under spBv1.0/. */
function decideSparkplug(device: DeviceEntry, topic: string, groups: ReadonlySet<string> | undefined): PublishDecision {
  const parsed = parseSparkplugTopic(topic);
  if (!groups) return { action: 'reject', reason: 'not_allowed', detail: 'this device is not a configured Sparkplug edge node' };
  if (!parsed) return { action: 'reject', reason: 'bad_topic', detail: 'Sparkplug topics are spBv1.0/{group}/{type}/{edge}[/{device}]' };
  if (parsed.edge !== device.id || !groups.has(parsed.group)) {
    return { action: 'reject', reason: 'not_allowed', detail: `an edge node may publish only spBv1.0/{its group}/…/${device.id}` };
  }
  if (parsed.type === 'NCMD' || parsed.type === 'DCMD') return { action: 'reject', reason: 'not_allowed', detail: 'edge nodes do not send commands' };
  return { action: 'sparkplug', topic: parsed };
}

/** May this client subscribe to `filter`? Devices get errors/{own id} and their `subscribe` filters. */
export function allowSubscribe(device: DeviceEntry | undefined, filter: string, sparkplugGroups?: ReadonlySet<string>): boolean {
  if (!device) return false;
  if (filter === `errors/${device.id}`) return true;
  if (filter.startsWith('$')) return false;
  // errors/ of other devices are private, whatever the configured filters say.
  if (filterReaches(filter, 'errors')) return false;
  // A Sparkplug edge node: its own commands and host application states.
  for (const group of sparkplugGroups ?? []) {
    if (nodeSubscriptions(group, device.id).some((allowed) => filterCovers(allowed, filter))) return true;
  }
  return device.config.subscribe.some((allowed) => filterCovers(allowed, filter));
}
