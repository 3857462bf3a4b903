/**
 * Decodes a telemetry payload (contract: MQTT, reading object): one reading object or a JSON
 * array of up to 1000. Each reading object is judged on its own; a reading with any bad value
 * is refused whole, so a stored reading is always exactly what the device sent.
 */
import type { Rejection } from './rejections.js';

export const MAX_BATCH = 1000;
/** Readings more than this far in the future are refused (contract: bad_timestamp). */
export const MAX_FUTURE_MS = 3_600_000;
/**
 * Epoch-millisecond timestamps before 2000-01-01 are refused: they are almost always epoch
 * seconds sent by mistake, and would otherwise be stored in 1970.
 */
export const MIN_TS_MS = 946_684_800_000;
/** Metric values per reading object; more is a malformed or hostile payload. */
export const MAX_VALUES = 256;

const METRIC = /^[a-z][a-z0-9_]{0,63}$/;
const RFC3339 = /^\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}:\d{2}(\.\d{1,9})?([Zz]|[+-]\d{2}:\d{2})$/;

export interface DecodedReading {
  ts: number;
  /** [metric, value] pairs, booleans already 1 / 0. */
  values: Array<[string, number]>;
  /** Position in a batch, or undefined for a single object. */
  index?: number;
}

export interface DecodeResult {
  readings: DecodedReading[];
  rejections: Rejection[];
}

/** An instant for a message: ISO 8601 when Date can show it (±8.64e15 ms), else the number. */
function describeTs(ts: number): string {
  return Math.abs(ts) <= 8.64e15 ? new Date(ts).toISOString() : String(ts);
}

function parseTs(raw: unknown, receivedAt: number): number | string {
  if (raw === undefined) return receivedAt;
  let ts: number;
  if (typeof raw === 'number') {
    if (!Number.isSafeInteger(raw)) return 'ts must be integer epoch milliseconds';
    ts = raw;
  } else if (typeof raw === 'string') {
    if (!RFC3339.test(raw)) return 'ts string must be RFC 3339, e.g. 2025-11-28T10:00:00.123+08:00';
    ts = Date.parse(raw);
    if (!Number.isFinite(ts)) return 'ts is not a valid date';
  } else {
    return 'ts must be epoch milliseconds or an RFC 3339 string';
  }
  if (ts < MIN_TS_MS) return `ts ${ts} is before 2000-01-01 (epoch seconds instead of milliseconds?)`;
  if (ts > receivedAt + MAX_FUTURE_MS) return `ts ${describeTs(ts)} is more than 1 h in the future`;
  return ts;
}

function decodeOne(raw: unknown, receivedAt: number, index: number | undefined, out: DecodeResult): void {
  if (raw === null || typeof raw !== 'object' || Array.isArray(raw)) {
    out.rejections.push({ reason: 'bad_shape', detail: 'a reading must be an object { "ts", "values" }', index });
    return;
  }
  const obj = raw as Record<string, unknown>;
  for (const key in obj) {
    if (key !== 'ts' && key !== 'values') {
      out.rejections.push({ reason: 'bad_shape', detail: `unknown field "${key.slice(0, 64)}" (a reading has ts and values)`, index });
      return;
    }
  }
  const ts = parseTs(obj.ts, receivedAt);
  if (typeof ts === 'string') {
    out.rejections.push({ reason: 'bad_timestamp', detail: ts, index });
    return;
  }
  const values = obj.values;
  if (values === null || typeof values !== 'object' || Array.isArray(values)) {
    out.rejections.push({ reason: 'bad_shape', detail: '"values" must be an object of metric -> number or boolean', index });
    return;
  }
  const pairs: Array<[string, number]> = [];
  for (const metric in values as Record<string, unknown>) {
    if (!METRIC.test(metric)) {
      out.rejections.push({ reason: 'bad_metric', detail: `metric name ${JSON.stringify(metric.slice(0, 80))} must match [a-z][a-z0-9_]{0,63}`, index });
      return;
    }
    const v = (values as Record<string, unknown>)[metric];
    if (typeof v === 'number') {
      if (!Number.isFinite(v)) {
        out.rejections.push({ reason: 'bad_value', detail: `${metric} is not a finite number`, index });
        return;
      }
      pairs.push([metric, v]);
    } else if (typeof v === 'boolean') {
      pairs.push([metric, v ? 1 : 0]);
    } else {
      out.rejections.push({ reason: 'bad_value', detail: `${metric} must be a finite number or a boolean`, index });
      return;
    }
    if (pairs.length > MAX_VALUES) {
      out.rejections.push({ reason: 'bad_shape', detail: `more than ${MAX_VALUES} values in one reading`, index });
      return;
    }
  }
  if (pairs.length === 0) {
    out.rejections.push({ reason: 'bad_shape', detail: '"values" is empty', index });
    return;
  }
  out.readings.push({ ts, values: pairs, index });
}

/** Decodes a payload received at `receivedAt` (epoch ms). The size limit is checked by the caller. */
export function decodePayload(payload: Buffer | string, receivedAt: number): DecodeResult {
  const out: DecodeResult = { readings: [], rejections: [] };
  let parsed: unknown;
  try {
    parsed = JSON.parse(typeof payload === 'string' ? payload : payload.toString('utf8'));
  } catch (err) {
    out.rejections.push({ reason: 'bad_json', detail: (err as Error).message.slice(0, 200) });
    return out;
  }
  if (Array.isArray(parsed)) {
    if (parsed.length === 0) {
      out.rejections.push({ reason: 'bad_shape', detail: 'empty batch' });
    } else if (parsed.length > MAX_BATCH) {
      out.rejections.push({ reason: 'too_many', detail: `a batch holds at most ${MAX_BATCH} readings, got ${parsed.length}` });
    } else {
      for (let i = 0; i < parsed.length; i++) decodeOne(parsed[i], receivedAt, i, out);
    }
  } else {
    decodeOne(parsed, receivedAt, undefined, out);
  }
  return out;
}
