/**
 * Sparkplug B payloads (protobuf, through sparkplug-payload) to plain metrics and back: no I/O.
 * 64-bit integers arrive as Long; they become numbers when they are safe integers.
 */
import sparkplugPayload from 'sparkplug-payload';
import type { UMetric, UPayload } from 'sparkplug-payload/lib/sparkplugbpayload.js';

const codec = sparkplugPayload.get('spBv1.0')!;

/** Name of the node control metric that asks an edge node for a new birth certificate. */
export const REBIRTH_METRIC = 'Node Control/Rebirth';
/** The birth/death sequence number metric of NBIRTH and NDEATH. */
export const BDSEQ_METRIC = 'bdSeq';

export interface SparkplugMetric {
  name?: string;
  alias?: number;
  /** The Sparkplug datatype name (Double, Int32, Boolean, String, ...). */
  type: string;
  /** A number (booleans 1/0), or undefined: null, or a type that is not a number (String, DataSet, ...). */
  value: number | undefined;
  timestamp?: number;
}

export interface SparkplugMessage {
  timestamp?: number;
  seq?: number;
  metrics: SparkplugMetric[];
}

const NUMERIC_TYPES = new Set(['Int8', 'Int16', 'Int32', 'Int64', 'UInt8', 'UInt16', 'UInt32', 'UInt64', 'Float', 'Double']);

interface LongLike {
  toNumber(): number;
  low: number;
  high: number;
}

function isLong(x: unknown): x is LongLike {
  return typeof x === 'object' && x !== null && typeof (x as LongLike).toNumber === 'function';
}

/** A protobuf integer (number or Long) as a safe integer, else undefined. */
function integer(x: unknown): number | undefined {
  const n = isLong(x) ? x.toNumber() : typeof x === 'number' ? x : undefined;
  return n !== undefined && Number.isSafeInteger(n) ? n : undefined;
}

function metricValue(m: UMetric): number | undefined {
  if (m.isNull) return undefined;
  const v: unknown = m.value;
  if (m.type === 'Boolean') return typeof v === 'boolean' ? (v ? 1 : 0) : undefined;
  if (!NUMERIC_TYPES.has(m.type)) return undefined;
  if (typeof v === 'number') return Number.isFinite(v) ? v : undefined;
  return integer(v);
}

/** Decodes a payload; throws on bytes that are not a Sparkplug B payload. */
export function decodeSparkplug(bytes: Uint8Array): SparkplugMessage {
  const payload = codec.decodePayload(bytes);
  const seq = payload.seq === undefined || payload.seq === null ? undefined : integer(payload.seq);
  const timestamp = payload.timestamp === undefined || payload.timestamp === null ? undefined : integer(payload.timestamp);
  const metrics: SparkplugMetric[] = (payload.metrics ?? []).map((m) => {
    const alias = m.alias === undefined || m.alias === null ? undefined : integer(m.alias);
    const ts = m.timestamp === undefined || m.timestamp === null ? undefined : integer(m.timestamp);
    return {
      ...(typeof m.name === 'string' ? { name: m.name } : {}),
      ...(alias !== undefined ? { alias } : {}),
      type: String(m.type),
      value: metricValue(m),
      ...(ts !== undefined ? { timestamp: ts } : {}),
    };
  });
  return { ...(timestamp !== undefined ? { timestamp } : {}), ...(seq !== undefined ? { seq } : {}), metrics };
}

/** Encodes a payload (edge node simulators and tests use it too). */
export function encodeSparkplug(payload: UPayload): Buffer {
  return Buffer.from(codec.encodePayload(payload));
}

/** The NCMD payload that asks an edge node to publish its births again. */
export function rebirthCommand(now: number): Buffer {
  return encodeSparkplug({ timestamp: now, metrics: [{ name: REBIRTH_METRIC, type: 'Boolean', value: true, timestamp: now }] });
}

/** The Sparkplug 3.0 STATE payload of a host application. */
export function statePayload(online: boolean, now: number): string {
  return JSON.stringify({ online, timestamp: now });
}
