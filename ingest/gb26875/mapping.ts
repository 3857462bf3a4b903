/**
 * Information objects -> readings of the catalogue, pure. Each point of a transmission device
 * becomes a sensor of the device's asset:
 *   system status (1)        s-{system type}-{system address}        fire_alarm, fault, supervisory, disabled
 *   component status (2)     c-{system type}-{system address}-{addr} fire_alarm, fault, supervisory, disabled
 *   analogue value (3)       c-{system type}-{system address}-{addr} the analogue type's metric (ANALOGUE_TYPES)
 *   device status (21)       uitd                                    fire_alarm, fault
 * ({addr}: the 4-byte component address as 8 lower-case hex digits of its little-endian value.)
 * A device mapping may rename points onto catalogue sensors and select/rename their metrics.
 * Operation records, versions, configurations and clocks carry no reading.
 */
import type { Gb26875DeviceMapping } from './config.js';
import { timeLabelToEpoch, type TimeLabel } from './frame.js';
import type { InfoObject } from './objects.js';
import { ANALOGUE_TYPES, bit, DEVICE_STATUS_BIT, scaled, STATUS_BIT } from './standard.js';

export interface PointReading {
  sensorId: string;
  ts: number;
  values: Record<string, number>;
}

export const systemPoint = (systemType: number, systemAddress: number) => `s-${systemType}-${systemAddress}`;
export const componentPoint = (systemType: number, systemAddress: number, componentAddress: number) =>
  `c-${systemType}-${systemAddress}-${(componentAddress >>> 0).toString(16).padStart(8, '0')}`;
export const DEVICE_POINT = 'uitd';

function statusValues(status: number): Record<string, number> {
  return {
    fire_alarm: bit(status, STATUS_BIT.fireAlarm),
    fault: bit(status, STATUS_BIT.fault),
    supervisory: bit(status, STATUS_BIT.supervisory),
    disabled: bit(status, STATUS_BIT.shielded),
  };
}

/** True when an object reports a fire alarm: such frames go before bulk traffic. */
export function reportsFireAlarm(o: InfoObject): boolean {
  if (o.type === 1 || o.type === 2) return bit(o.status, STATUS_BIT.fireAlarm) === 1;
  if (o.type === 21) return bit(o.status, DEVICE_STATUS_BIT.fireAlarm) === 1;
  return false;
}

export interface MappingContext {
  utcOffsetMinutes: number;
  /** Receipt time: the time of objects whose time label is not a calendar time. */
  receivedAt: number;
}

function tsOf(t: TimeLabel, ctx: MappingContext): number {
  return timeLabelToEpoch(t, ctx.utcOffsetMinutes) ?? ctx.receivedAt;
}

/** The readings of a unit's objects, before renaming. */
export function pointReadings(objects: readonly InfoObject[], ctx: MappingContext): PointReading[] {
  const out: PointReading[] = [];
  for (const o of objects) {
    switch (o.type) {
      case 1:
        out.push({ sensorId: systemPoint(o.systemType, o.systemAddress), ts: tsOf(o.time, ctx), values: statusValues(o.status) });
        break;
      case 2:
        out.push({ sensorId: componentPoint(o.systemType, o.systemAddress, o.componentAddress), ts: tsOf(o.time, ctx), values: statusValues(o.status) });
        break;
      case 3: {
        const kind = ANALOGUE_TYPES[o.analogueType];
        if (kind) out.push({ sensorId: componentPoint(o.systemType, o.systemAddress, o.componentAddress), ts: tsOf(o.time, ctx), values: { [kind.metric]: scaled(o.value, kind.scale) } });
        break;
      }
      case 21:
        out.push({ sensorId: DEVICE_POINT, ts: tsOf(o.time, ctx), values: { fire_alarm: bit(o.status, DEVICE_STATUS_BIT.fireAlarm), fault: bit(o.status, DEVICE_STATUS_BIT.fault) } });
        break;
      default:
        break;
    }
  }
  return out;
}

/** Applies a device mapping's renames; a point whose selected metrics are all dropped disappears. */
export function renamePoints(readings: readonly PointReading[], mapping: Pick<Gb26875DeviceMapping, 'sensors'>): PointReading[] {
  if (mapping.sensors.length === 0) return [...readings];
  const byId = new Map(mapping.sensors.map((p) => [p.id, p]));
  const out: PointReading[] = [];
  for (const r of readings) {
    const point = byId.get(r.sensorId);
    if (!point) {
      out.push(r);
      continue;
    }
    let values = r.values;
    if (point.metrics) {
      values = {};
      for (const [from, to] of Object.entries(point.metrics)) if (from in r.values) values[to] = r.values[from]!;
      if (Object.keys(values).length === 0) continue;
    }
    out.push({ sensorId: point.sensor, ts: r.ts, values });
  }
  return out;
}
