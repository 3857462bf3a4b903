/**
 * Recorded readings for `watchpost replay`, checked like ingest checks live telemetry (known
 * asset and sensor, metric names, finite values, the metric catalogue's range), so the rules see
 * what they would have seen live.
 *
 * JSONL, one object a line (blank lines ignored):
 *   {"asset_id": "lg-slope-001", "sensor_id": "gnss-01", "ts": 1764295200123, "values": {"displacement": 12.4}}
 *   {"device_id": "dau-slope-001", "status": "offline", "ts": "2025-06-01T02:00:30+08:00"}   (device status, for offline rules)
 * CSV with a header line, `ts` as epoch ms or RFC 3339, either long
 *   asset_id,sensor_id,ts,metric,value
 * or wide, one column per metric (empty cells are skipped)
 *   asset_id,sensor_id,ts,strain,temperature
 * Values are numbers, or true/false (1/0). Fields may be double-quoted ("" inside for a quote).
 */
import type { Catalogue } from '../ingest/catalogue.js';
import { MIN_TS_MS, decodePayload } from '../ingest/payload.js';
import type { Reading } from '../ingest/reading.js';
import type { RejectionReason } from '../ingest/rejections.js';
import type { ReplayItem } from '../rules/replay.js';
import type { AssetRef } from '../rules/state.js';

export type InputFormat = 'jsonl' | 'csv';

export interface InputProblem {
  /** 1-based line of the input. */
  line: number;
  reason: RejectionReason | 'unknown_device' | 'bad_status' | 'bad_csv';
  detail: string;
}

export interface ReplayInput {
  /** Sorted by ts; equal timestamps keep the input order. */
  items: ReplayItem[];
  readings: number;
  statuses: number;
  rejected: InputProblem[];
}

export interface InputContext {
  catalogue: Catalogue;
  /** device id -> the assets it serves (for device status lines). */
  devices: ReadonlyMap<string, readonly AssetRef[]>;
}

export const MAX_REPLAY_LINES = 10_000_000;

/** The format from the file name (.csv, else JSONL), or from the first character of the text. */
export function detectFormat(name: string, text: string): InputFormat {
  if (/\.csv$/i.test(name)) return 'csv';
  if (/\.(jsonl|ndjson|json)$/i.test(name)) return 'jsonl';
  return text.trimStart().startsWith('{') ? 'jsonl' : 'csv';
}

export function parseReplayInput(text: string, format: InputFormat, ctx: InputContext): ReplayInput {
  const out: ReplayInput = { items: [], readings: 0, statuses: 0, rejected: [] };
  const lines = text.split(/\r?\n/);
  if (lines.length > MAX_REPLAY_LINES) throw new Error(`input has more than ${MAX_REPLAY_LINES} lines; replay a shorter range`);
  if (format === 'jsonl') {
    lines.forEach((raw, i) => {
      if (raw.trim() === '') return;
      let obj: unknown;
      try {
        obj = JSON.parse(raw);
      } catch (err) {
        out.rejected.push({ line: i + 1, reason: 'bad_json', detail: (err as Error).message.slice(0, 200) });
        return;
      }
      addObject(obj, i + 1, ctx, out);
    });
  } else {
    parseCsv(lines, ctx, out);
  }
  sortItems(out);
  return out;
}

/** Recorded points read back from storage: one record per reading, checked like input lines (`line` = record number). */
export interface StoredRecord {
  asset_id: string;
  sensor_id: string;
  ts: number;
  metric: string;
  value: number;
}

export function parseStoredRecords(records: Iterable<StoredRecord>, ctx: InputContext): ReplayInput {
  const out: ReplayInput = { items: [], readings: 0, statuses: 0, rejected: [] };
  let n = 0;
  for (const r of records) {
    n++;
    addReading(r.asset_id, r.sensor_id, r.ts, { [r.metric]: r.value }, n, ctx, out);
  }
  sortItems(out);
  return out;
}

function sortItems(out: ReplayInput): void {
  const order = out.items.map((item, i) => [item, i] as const);
  order.sort((a, b) => a[0].ts - b[0].ts || a[1] - b[1]);
  out.items = order.map(([item]) => item);
}

function addObject(obj: unknown, line: number, ctx: InputContext, out: ReplayInput): void {
  if (obj === null || typeof obj !== 'object' || Array.isArray(obj)) {
    out.rejected.push({ line, reason: 'bad_shape', detail: 'a line must be an object {asset_id, sensor_id, ts, values} or {device_id, status, ts}' });
    return;
  }
  const o = obj as Record<string, unknown>;
  if ('device_id' in o) {
    addStatus(o, line, ctx, out);
    return;
  }
  const extra = Object.keys(o).filter((k) => !['asset_id', 'sensor_id', 'ts', 'values'].includes(k));
  if (extra.length > 0) {
    out.rejected.push({ line, reason: 'bad_shape', detail: `unknown field "${extra[0]!.slice(0, 64)}" (a reading has asset_id, sensor_id, ts, values)` });
    return;
  }
  addReading(o.asset_id, o.sensor_id, o.ts, o.values, line, ctx, out);
}

function addReading(assetId: unknown, sensorId: unknown, ts: unknown, values: unknown, line: number, ctx: InputContext, out: ReplayInput): void {
  if (typeof assetId !== 'string' || typeof sensorId !== 'string') {
    out.rejected.push({ line, reason: 'bad_shape', detail: 'asset_id and sensor_id must be strings' });
    return;
  }
  if (ts === undefined || ts === null || ts === '') {
    out.rejected.push({ line, reason: 'bad_timestamp', detail: 'ts is required in recorded readings' });
    return;
  }
  const asset = ctx.catalogue.asset(assetId);
  if (!asset) {
    out.rejected.push({ line, reason: 'unknown_asset', detail: `asset "${assetId.slice(0, 64)}" is not configured` });
    return;
  }
  let sensorMetrics: ReadonlySet<string> | undefined;
  if (asset.sensors) {
    if (!asset.sensors.has(sensorId)) {
      out.rejected.push({ line, reason: 'unknown_sensor', detail: `sensor "${sensorId.slice(0, 64)}" is not configured on asset "${assetId}"` });
      return;
    }
    sensorMetrics = asset.sensors.get(sensorId);
  }
  // The reading object as a device would publish it; recorded data may be of any age.
  const decoded = decodePayload(JSON.stringify({ ts, values }), Number.MAX_SAFE_INTEGER);
  const problem = decoded.rejections[0];
  if (problem) {
    out.rejected.push({ line, reason: problem.reason, detail: problem.detail });
    return;
  }
  const reading = decoded.readings[0]!;
  for (const [metric, value] of reading.values) {
    if (sensorMetrics && !sensorMetrics.has(metric)) {
      out.rejected.push({ line, reason: 'unknown_metric', detail: `metric "${metric}" is not configured on sensor "${sensorId}"` });
      return;
    }
    const spec = ctx.catalogue.metric(metric);
    if (spec && ((spec.min !== undefined && value < spec.min) || (spec.max !== undefined && value > spec.max))) {
      out.rejected.push({ line, reason: 'out_of_range', detail: `${metric} = ${value} is outside the plausible range [${spec.min ?? '-inf'}, ${spec.max ?? 'inf'}]` });
      return;
    }
  }
  for (const [metric, value] of reading.values) {
    const r: Reading = { assetId, sensorId, assetType: asset.type, street: asset.street, metric, value, ts: reading.ts };
    out.items.push({ kind: 'reading', ts: reading.ts, reading: r });
    out.readings++;
  }
}

function addStatus(o: Record<string, unknown>, line: number, ctx: InputContext, out: ReplayInput): void {
  const { device_id: deviceId, status, ts: rawTs } = o;
  const extra = Object.keys(o).filter((k) => !['device_id', 'status', 'ts'].includes(k));
  if (extra.length > 0 || typeof deviceId !== 'string') {
    out.rejected.push({ line, reason: 'bad_shape', detail: 'a status line is {device_id, status, ts}' });
    return;
  }
  const assets = ctx.devices.get(deviceId);
  if (!assets) {
    out.rejected.push({ line, reason: 'unknown_device', detail: `device "${deviceId.slice(0, 64)}" is not configured` });
    return;
  }
  if (status !== 'online' && status !== 'offline') {
    out.rejected.push({ line, reason: 'bad_status', detail: 'status must be "online" or "offline"' });
    return;
  }
  const ts = parseTs(rawTs);
  if (typeof ts === 'string') {
    out.rejected.push({ line, reason: 'bad_timestamp', detail: ts });
    return;
  }
  out.items.push({ kind: 'presence', ts, device: { deviceId, assets }, status });
  out.statuses++;
}

const RFC3339 = /^\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}:\d{2}(\.\d{1,9})?([Zz]|[+-]\d{2}:\d{2})$/;

/** Epoch ms (number or digits) or RFC 3339; a message for anything else. */
export function parseTs(raw: unknown): number | string {
  let ts: number;
  if (typeof raw === 'number' && Number.isInteger(raw)) ts = raw;
  else if (typeof raw === 'string' && /^\d+$/.test(raw)) ts = Number(raw);
  else if (typeof raw === 'string' && RFC3339.test(raw)) ts = Date.parse(raw);
  else return 'ts must be epoch milliseconds or an RFC 3339 time such as 2025-06-01T10:00:00+08:00';
  if (!Number.isFinite(ts)) return 'ts is not a valid time';
  if (ts < MIN_TS_MS) return `ts ${ts} is before 2000-01-01 (epoch seconds instead of milliseconds?)`;
  return ts;
}

// ---- CSV ----

/** Splits one CSV line (RFC 4180 quoting within a line). Returns undefined for an unterminated quote. */
export function splitCsvLine(line: string): string[] | undefined {
  const fields: string[] = [];
  let i = 0;
  for (;;) {
    if (line[i] === '"') {
      let value = '';
      i++;
      for (;;) {
        const q = line.indexOf('"', i);
        if (q < 0) return undefined;
        value += line.slice(i, q);
        if (line[q + 1] === '"') {
          value += '"';
          i = q + 2;
          continue;
        }
        i = q + 1;
        break;
      }
      fields.push(value);
      if (i >= line.length) return fields;
      if (line[i] !== ',') return undefined;
      i++;
    } else {
      const comma = line.indexOf(',', i);
      if (comma < 0) {
        fields.push(line.slice(i).trim());
        return fields;
      }
      fields.push(line.slice(i, comma).trim());
      i = comma + 1;
    }
  }
}

function csvValue(cell: string): number | boolean | string {
  if (cell === 'true') return true;
  if (cell === 'false') return false;
  const n = Number(cell);
  return cell !== '' && Number.isFinite(n) ? n : cell;
}

function parseCsv(lines: string[], ctx: InputContext, out: ReplayInput): void {
  const headerAt = lines.findIndex((l) => l.trim() !== '');
  if (headerAt < 0) return;
  const header = splitCsvLine(lines[headerAt]!.replace(/^\uFEFF/, ''))?.map((h) => h.trim());
  if (!header || !['asset_id', 'sensor_id', 'ts'].every((c) => header.includes(c))) {
    out.rejected.push({ line: headerAt + 1, reason: 'bad_csv', detail: 'the header must name asset_id, sensor_id and ts, then metric,value or one column per metric' });
    return;
  }
  const col = (name: string) => header.indexOf(name);
  const long = header.includes('metric') && header.includes('value');
  const metricColumns = long ? [] : header.map((h, i) => [h, i] as const).filter(([h]) => !['asset_id', 'sensor_id', 'ts'].includes(h));
  for (let i = headerAt + 1; i < lines.length; i++) {
    const raw = lines[i]!;
    if (raw.trim() === '') continue;
    const cells = splitCsvLine(raw);
    if (!cells || cells.length !== header.length) {
      out.rejected.push({ line: i + 1, reason: 'bad_csv', detail: cells ? `${cells.length} fields, the header has ${header.length}` : 'unterminated quote' });
      continue;
    }
    const values: Record<string, unknown> = {};
    if (long) values[cells[col('metric')]!] = csvValue(cells[col('value')]!);
    else for (const [name, index] of metricColumns) if (cells[index] !== '') values[name] = csvValue(cells[index]!);
    const tsCell = cells[col('ts')]!;
    const ts = /^\d+$/.test(tsCell) ? Number(tsCell) : tsCell;
    addReading(cells[col('asset_id')], cells[col('sensor_id')], ts, values, i + 1, ctx, out);
  }
}
