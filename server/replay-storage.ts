/**
 * Readings read back from storage for `watchpost replay --from-influx --start --end`: InfluxDB 1.x
 * (InfluxQL, chunked), InfluxDB 2.x/3.x (Flux), or, without an `influx` section, the embedded
 * store (data_dir/telemetry.db, read-only). The range is [start, end). Only the measurements the
 * rules need are read (all of them when a stale rule watches any metric).
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { InfluxDB } from '@influxdata/influxdb-client';
import { isValidMetric } from '../lib/ids.js';
import type { CompiledRuleSet } from '../rules/compile.js';
import type { WatchpostConfig } from './config/schema.js';
import type { StoredRecord } from './replay-input.js';

type InfluxConfig = NonNullable<WatchpostConfig['storage']['influx']>;

/** The metrics the rules read; undefined = every metric (a rule without a metric filter). */
export function neededMetrics(rules: CompiledRuleSet): Set<string> | undefined {
  const metrics = new Set<string>();
  for (const rule of rules.rules) {
    if (rule.kind === 'offline') continue;
    if (rule.match.metric === undefined) return undefined;
    for (const m of rule.match.metric) metrics.add(m);
  }
  return metrics;
}

export async function readStoredRecords(config: WatchpostConfig, rules: CompiledRuleSet, start: number, end: number): Promise<StoredRecord[]> {
  const metrics = neededMetrics(rules);
  const influx = config.storage.influx;
  if (!influx) return readEmbeddedStore(config.storage.data_dir, metrics, start, end);
  if (influx.version === 1) return readInfluxV1(influx, metrics, start, end);
  return readInfluxV2(influx, metrics, start, end);
}

function readEmbeddedStore(dataDir: string, metrics: Set<string> | undefined, start: number, end: number): StoredRecord[] {
  const file = join(dataDir, 'telemetry.db');
  if (!existsSync(file)) throw new Error(`no embedded telemetry store at ${file} (configure storage.influx to read InfluxDB)`);
  const db = new Database(file, { readonly: true, fileMustExist: true });
  try {
    const rows = db.prepare('SELECT metric, asset_id, sensor_id, ts, value FROM readings WHERE ts >= ? AND ts < ? ORDER BY ts, asset_id, sensor_id, metric').all(start, end) as Array<{
      metric: string;
      asset_id: string;
      sensor_id: string;
      ts: number;
      value: number;
    }>;
    return rows.filter((r) => metrics === undefined || metrics.has(r.metric));
  } finally {
    db.close();
  }
}

interface InfluxQLChunk {
  results?: Array<{ error?: string; series?: Array<{ name: string; tags?: Record<string, string>; columns: string[]; values: unknown[][] }> }>;
  error?: string;
}

async function influxQL(influx: InfluxConfig, query: string): Promise<InfluxQLChunk[]> {
  const params = new URLSearchParams({ q: query, db: influx.database!, epoch: 'ms', chunked: 'true', chunk_size: '10000' });
  if (influx.retention_policy) params.set('rp', influx.retention_policy);
  const headers: Record<string, string> = { 'content-type': 'application/x-www-form-urlencoded' };
  if (influx.username !== undefined) headers.authorization = `Basic ${Buffer.from(`${influx.username}:${influx.password ?? ''}`).toString('base64')}`;
  const res = await fetch(`${influx.url.replace(/\/+$/, '')}/query`, { method: 'POST', headers, body: params, signal: AbortSignal.timeout(influx.timeout * 10) });
  const text = await res.text();
  if (!res.ok) throw new Error(`InfluxDB query failed: HTTP ${res.status} ${text.slice(0, 300)}`);
  const chunks = text
    .split('\n')
    .filter((l) => l.trim() !== '')
    .map((l) => JSON.parse(l) as InfluxQLChunk);
  for (const c of chunks) {
    const error = c.error ?? c.results?.find((r) => r.error)?.error;
    if (error) throw new Error(`InfluxDB query failed: ${error}`);
  }
  return chunks;
}

async function readInfluxV1(influx: InfluxConfig, metrics: Set<string> | undefined, start: number, end: number): Promise<StoredRecord[]> {
  let measurements: string[];
  if (metrics === undefined) {
    const chunks = await influxQL(influx, 'SHOW MEASUREMENTS');
    measurements = chunks.flatMap((c) => c.results?.flatMap((r) => r.series?.flatMap((s) => s.values.map((v) => String(v[0]))) ?? []) ?? []);
  } else measurements = [...metrics];
  // Measurement names are metric names ([a-z][a-z0-9_]*): safe inside double quotes; times are integers.
  measurements = measurements.filter((m) => isValidMetric(m) && m !== 'alert_events');
  const records: StoredRecord[] = [];
  for (const m of measurements) {
    const chunks = await influxQL(influx, `SELECT "value" FROM "${m}" WHERE time >= ${Math.trunc(start)}ms AND time < ${Math.trunc(end)}ms GROUP BY "asset_id", "sensor_id"`);
    for (const chunk of chunks) {
      for (const result of chunk.results ?? []) {
        for (const series of result.series ?? []) {
          const timeAt = series.columns.indexOf('time');
          const valueAt = series.columns.indexOf('value');
          for (const row of series.values) {
            const value = row[valueAt];
            if (typeof value !== 'number') continue;
            records.push({ asset_id: series.tags?.asset_id ?? '', sensor_id: series.tags?.sensor_id ?? '', ts: Number(row[timeAt]), metric: series.name, value });
          }
        }
      }
    }
  }
  return records;
}

async function readInfluxV2(influx: InfluxConfig, metrics: Set<string> | undefined, start: number, end: number): Promise<StoredRecord[]> {
  const client = new InfluxDB({ url: influx.url, token: influx.token ?? '', timeout: influx.timeout * 10 });
  const api = client.getQueryApi(influx.org!);
  const filter =
    metrics === undefined
      ? 'r._measurement != "alert_events"'
      : [...metrics]
          .filter(isValidMetric)
          .map((m) => `r._measurement == "${m}"`)
          .join(' or ') || 'false';
  const flux = [
    `from(bucket: ${JSON.stringify(influx.bucket)})`,
    `  |> range(start: ${new Date(start).toISOString()}, stop: ${new Date(end).toISOString()})`,
    `  |> filter(fn: (r) => r._field == "value" and (${filter}))`,
    '  |> keep(columns: ["_time", "_value", "_measurement", "asset_id", "sensor_id"])',
  ].join('\n');
  const rows = await api.collectRows<{ _time: string; _value: number; _measurement: string; asset_id?: string; sensor_id?: string }>(flux);
  return rows.map((r) => ({ asset_id: r.asset_id ?? '', sensor_id: r.sensor_id ?? '', ts: Date.parse(r._time), metric: r._measurement, value: Number(r._value) }));
}
