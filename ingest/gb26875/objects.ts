/**
 * Application data units of GB/T 26875.3-2011 (section 8), pure: one type flag (1 byte), an
 * object count (1 byte), then that many information objects of the type's layout. Every
 * multi-byte number is little-endian; objects that carry a time label end with its 6 bytes.
 *
 *   type  bytes  object
 *   1     10     building fire facility system status: system type, system address, status (2), time
 *   2     46     component status: system type, system address, component type, component address (4),
 *                status (2), description (31, GB 18030), time
 *   3     16     component analogue value: system type, system address, component type, component
 *                address (4), analogue type, value (2, signed), time
 *   4     10     system operation record: system type, system address, operation flags, operator, time
 *   5     4      system software version: system type, system address, major, minor
 *   7     38     component configuration (kept as raw bytes)
 *   8     8      system time: system type, system address, time
 *   21    7      transmission device running status: status (1), time
 *   24    8      transmission device operation record: operation flags, operator, time
 *   25    2      transmission device software version: major, minor
 *   28    6      transmission device time
 *   88    1      read transmission device time (centre -> device; reserved byte)
 *   90    6      synchronise the transmission device clock (centre -> device)
 * Types 6 (system configuration: system type, system address, L, L bytes) and 26 (transmission
 * device configuration: L, L bytes) have a length byte of their own.
 */
import { readTime, writeTime, type TimeLabel } from './frame.js';

export const TYPE = {
  systemStatus: 1,
  componentStatus: 2,
  analogue: 3,
  systemOperation: 4,
  systemVersion: 5,
  systemConfig: 6,
  componentConfig: 7,
  systemTime: 8,
  deviceStatus: 21,
  deviceOperation: 24,
  deviceVersion: 25,
  deviceConfig: 26,
  deviceTime: 28,
  readDeviceTime: 88,
  syncDeviceClock: 90,
} as const;

export const DESCRIPTION_BYTES = 31;

export type InfoObject =
  | { type: 1; systemType: number; systemAddress: number; status: number; time: TimeLabel }
  | { type: 2; systemType: number; systemAddress: number; componentType: number; componentAddress: number; status: number; description: Uint8Array; time: TimeLabel }
  | { type: 3; systemType: number; systemAddress: number; componentType: number; componentAddress: number; analogueType: number; value: number; time: TimeLabel }
  | { type: 4; systemType: number; systemAddress: number; operation: number; operator: number; time: TimeLabel }
  | { type: 8; systemType: number; systemAddress: number; time: TimeLabel }
  | { type: 21; status: number; time: TimeLabel }
  | { type: 24; operation: number; operator: number; time: TimeLabel }
  | { type: 28 | 90; time: TimeLabel }
  /** Objects kept as their bytes (versions, configurations, read requests). */
  | { type: 5 | 6 | 7 | 25 | 26 | 88; raw: Uint8Array };

export interface DataUnit {
  type: number;
  objects: InfoObject[];
}

export type UnitErrorCode = 'unknown_type' | 'bad_unit';
export type UnitResult = { ok: true; unit: DataUnit } | { ok: false; code: UnitErrorCode; detail: string };

/** Fixed object sizes by type flag. */
const SIZE: Record<number, number> = { 1: 10, 2: 46, 3: 16, 4: 10, 5: 4, 7: 38, 8: 8, 21: 7, 24: 8, 25: 2, 28: 6, 88: 1, 90: 6 };

export function isKnownType(type: number): boolean {
  return type in SIZE || type === 6 || type === 26;
}

const u32 = (b: Uint8Array, o: number) => (b[o]! | (b[o + 1]! << 8) | (b[o + 2]! << 16) | (b[o + 3]! << 24)) >>> 0;
const u16 = (b: Uint8Array, o: number) => b[o]! | (b[o + 1]! << 8);

function readObject(type: number, b: Uint8Array, o: number): InfoObject {
  switch (type) {
    case 1:
      return { type, systemType: b[o]!, systemAddress: b[o + 1]!, status: u16(b, o + 2), time: readTime(b, o + 4) };
    case 2:
      return {
        type,
        systemType: b[o]!,
        systemAddress: b[o + 1]!,
        componentType: b[o + 2]!,
        componentAddress: u32(b, o + 3),
        status: u16(b, o + 7),
        description: b.slice(o + 9, o + 40),
        time: readTime(b, o + 40),
      };
    case 3: {
      const raw = u16(b, o + 8);
      return {
        type,
        systemType: b[o]!,
        systemAddress: b[o + 1]!,
        componentType: b[o + 2]!,
        componentAddress: u32(b, o + 3),
        analogueType: b[o + 7]!,
        value: raw >= 0x8000 ? raw - 0x10000 : raw,
        time: readTime(b, o + 10),
      };
    }
    case 4:
      return { type, systemType: b[o]!, systemAddress: b[o + 1]!, operation: b[o + 2]!, operator: b[o + 3]!, time: readTime(b, o + 4) };
    case 8:
      return { type, systemType: b[o]!, systemAddress: b[o + 1]!, time: readTime(b, o + 2) };
    case 21:
      return { type, status: b[o]!, time: readTime(b, o + 1) };
    case 24:
      return { type, operation: b[o]!, operator: b[o + 1]!, time: readTime(b, o + 2) };
    case 28:
    case 90:
      return { type, time: readTime(b, o) };
    default:
      return { type: type as 5 | 7 | 25 | 88, raw: b.slice(o, o + SIZE[type]!) };
  }
}

/** Decodes the application data of a frame. Never throws. An empty unit has type 0 and no objects. */
export function decodeUnit(data: Uint8Array): UnitResult {
  if (data.length === 0) return { ok: true, unit: { type: 0, objects: [] } };
  if (data.length < 2) return { ok: false, code: 'bad_unit', detail: 'application data of 1 byte: a unit needs a type flag and an object count' };
  const type = data[0]!;
  const count = data[1]!;
  if (!isKnownType(type)) return { ok: false, code: 'unknown_type', detail: `unknown type flag ${type}` };
  const objects: InfoObject[] = [];
  let at = 2;
  for (let i = 0; i < count; i++) {
    if (type === 6 || type === 26) {
      const lengthAt = type === 6 ? at + 2 : at;
      if (lengthAt >= data.length) return { ok: false, code: 'bad_unit', detail: `object ${i} of type ${type} is cut off` };
      const size = lengthAt - at + 1 + data[lengthAt]!;
      if (at + size > data.length) return { ok: false, code: 'bad_unit', detail: `object ${i} of type ${type} (${size} bytes) runs past the application data` };
      objects.push({ type, raw: data.slice(at, at + size) });
      at += size;
      continue;
    }
    const size = SIZE[type]!;
    if (at + size > data.length) return { ok: false, code: 'bad_unit', detail: `${count} objects of type ${type} need ${2 + count * size} bytes, the application data has ${data.length}` };
    objects.push(readObject(type, data, at));
    at += size;
  }
  if (at !== data.length) return { ok: false, code: 'bad_unit', detail: `${data.length - at} bytes after ${count} objects of type ${type}` };
  return { ok: true, unit: { type, objects } };
}

function writeObject(o: InfoObject, out: Buffer, at: number): number {
  switch (o.type) {
    case 1:
      out[at] = o.systemType;
      out[at + 1] = o.systemAddress;
      out.writeUInt16LE(o.status, at + 2);
      writeTime(out, at + 4, o.time);
      return 10;
    case 2:
      if (o.description.length > DESCRIPTION_BYTES) throw new RangeError(`a component description has at most ${DESCRIPTION_BYTES} bytes`);
      out[at] = o.systemType;
      out[at + 1] = o.systemAddress;
      out[at + 2] = o.componentType;
      out.writeUInt32LE(o.componentAddress >>> 0, at + 3);
      out.writeUInt16LE(o.status, at + 7);
      out.fill(0, at + 9, at + 40);
      out.set(o.description, at + 9);
      writeTime(out, at + 40, o.time);
      return 46;
    case 3:
      out[at] = o.systemType;
      out[at + 1] = o.systemAddress;
      out[at + 2] = o.componentType;
      out.writeUInt32LE(o.componentAddress >>> 0, at + 3);
      out[at + 7] = o.analogueType;
      out.writeInt16LE(o.value, at + 8);
      writeTime(out, at + 10, o.time);
      return 16;
    case 4:
      out.set([o.systemType, o.systemAddress, o.operation, o.operator], at);
      writeTime(out, at + 4, o.time);
      return 10;
    case 8:
      out.set([o.systemType, o.systemAddress], at);
      writeTime(out, at + 2, o.time);
      return 8;
    case 21:
      out[at] = o.status;
      writeTime(out, at + 1, o.time);
      return 7;
    case 24:
      out.set([o.operation, o.operator], at);
      writeTime(out, at + 2, o.time);
      return 8;
    case 28:
    case 90:
      writeTime(out, at, o.time);
      return 6;
    default:
      out.set(o.raw, at);
      return o.raw.length;
  }
}

function objectSize(o: InfoObject): number {
  return 'raw' in o ? o.raw.length : SIZE[o.type]!;
}

/** The application data of one unit; all objects must be of the unit's type (at most 255). */
export function encodeUnit(unit: DataUnit): Buffer {
  if (unit.objects.length > 255) throw new RangeError('a unit holds at most 255 objects');
  const out = Buffer.alloc(2 + unit.objects.reduce((n, o) => n + objectSize(o), 0));
  out[0] = unit.type;
  out[1] = unit.objects.length;
  let at = 2;
  for (const o of unit.objects) {
    if (o.type !== unit.type) throw new RangeError(`object of type ${o.type} in a unit of type ${unit.type}`);
    at += writeObject(o, out, at);
  }
  return out;
}
