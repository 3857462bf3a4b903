/**
 * Every MQTT topic Watchpost reads or writes is parsed or built here (contract: MQTT), with one
 * regex per inbound pattern. Ids are validated before they enter a topic.
 */
import { isValidId } from '../lib/ids.js';
import type { Level } from '../lib/levels.js';

export type InboundTopic = { kind: 'telemetry'; assetId: string; sensorId: string } | { kind: 'status'; deviceId: string } | { kind: 'other' };

const TELEMETRY = /^telemetry\/([A-Za-z0-9_.-]{1,64})\/([A-Za-z0-9_.-]{1,64})$/;
const STATUS = /^status\/([A-Za-z0-9_.-]{1,64})$/;

export function parseTopic(topic: string): InboundTopic {
  let m = TELEMETRY.exec(topic);
  if (m) return { kind: 'telemetry', assetId: m[1]!, sensorId: m[2]! };
  m = STATUS.exec(topic);
  if (m) return { kind: 'status', deviceId: m[1]! };
  return { kind: 'other' };
}

function checkId(id: string, what: string): string {
  if (!isValidId(id)) throw new Error(`invalid ${what} for a topic: ${JSON.stringify(id)}`);
  return id;
}

export const topics = {
  telemetry: (assetId: string, sensorId: string) => `telemetry/${checkId(assetId, 'asset id')}/${checkId(sensorId, 'sensor id')}`,
  status: (deviceId: string) => `status/${checkId(deviceId, 'device id')}`,
  errors: (deviceId: string) => `errors/${checkId(deviceId, 'device id')}`,
  alerts: (level: Level, assetId: string) => `alerts/${level}/${checkId(assetId, 'asset id')}`,
  /** Subscriptions of the external-broker client; `$share/<group>/` spreads them across instances. */
  inbound: (sharedGroup?: string) => {
    const prefix = sharedGroup ? `$share/${checkId(sharedGroup, 'shared group')}/` : '';
    return [`${prefix}telemetry/+/+`, `${prefix}status/+`];
  },
};

/** Does subscription filter `allowed` cover every topic that filter `requested` can match? */
export function filterCovers(allowed: string, requested: string): boolean {
  const a = allowed.split('/');
  const r = requested.split('/');
  for (let i = 0; i < a.length; i++) {
    const level = a[i]!;
    if (level === '#') return true;
    if (i >= r.length) return false;
    const req = r[i]!;
    if (req === '#') return false;
    if (level === '+') continue;
    if (req === '+' || req !== level) return false;
  }
  return a.length === r.length;
}

/** Could filter `requested` match a topic that starts with `prefix/` followed by any level? */
export function filterReaches(requested: string, firstLevel: string): boolean {
  const head = requested.split('/')[0];
  return head === '#' || head === '+' || head === firstLevel;
}
