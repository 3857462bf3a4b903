/**
 * GET /api/v1/series: one sensor metric's readings over a time range, for the console's charts,
 * from the embedded store (telemetry.db, read through its own read-only connection) or from
 * InfluxDB (InfluxQL). At most `maxPoints` points are answered: when the range holds more
 * readings, they are averaged into equal time buckets (each point then also carries the bucket's
 * min and max).
 */
import { join } from 'node:path';
import Database from 'better-sqlite3';
import type { InfluxConfig } from '../../ingest/config.js';
import { TELEMETRY_DB_FILE } from '../../ingest/embedded-store.js';

export interface SeriesQuery {
  assetId: string;
  sensorId: string;
  metric: string;
  /** Epoch ms, inclusive. */
  from: number;
  /** Epoch ms, inclusive. */
  to: number;
  maxPoints: number;
}

export interface SeriesPoint {
  /** Epoch ms: the reading's time, or the bucket's start. */
  t: number;
  /** The reading, or the bucket's mean. */
  v: number;
  min?: number;
  max?: number;
}

export interface Series {
  points: SeriesPoint[];
  /** The bucket width when the readings were averaged; null for the readings themselves. */
  bucket_ms: number | null;
}

export interface SeriesSource {
  series(query: SeriesQuery): Promise<Series>;
}

/** The bucket width that fits the range into maxPoints buckets (whole milliseconds, at least 1). */
export function bucketWidth(query: Pick<SeriesQuery, 'from' | 'to' | 'maxPoints'>): number {
  return Math.max(1, Math.ceil((query.to - query.from + 1) / query.maxPoints));
}

/** Reads telemetry.db of the embedded store (WAL: readers do not block its writer). */
export class EmbeddedSeries implements SeriesSource {
  private db?: Database.Database;

  constructor(private readonly dataDir: string) {}

  series(query: SeriesQuery): Promise<Series> {
    const db = (this.db ??= new Database(join(this.dataDir, TELEMETRY_DB_FILE), { readonly: true, fileMustExist: true }));
    const where = 'WHERE asset_id = ? AND sensor_id = ? AND metric = ? AND ts >= ? AND ts <= ?';
    const params = [query.assetId, query.sensorId, query.metric, Math.floor(query.from), Math.floor(query.to)];
    const { n } = db.prepare(`SELECT COUNT(*) AS n FROM readings ${where}`).get(...params) as { n: number };
    if (n <= query.maxPoints) {
      const rows = db.prepare(`SELECT ts, value FROM readings ${where} ORDER BY ts`).all(...params) as Array<{ ts: number; value: number }>;
      return Promise.resolve({ points: rows.map((r) => ({ t: r.ts, v: r.value })), bucket_ms: null });
    }
    const bucket = bucketWidth(query);
    // Numbers are bound as REAL: CAST makes the bucket index a whole number (ts >= from, so it floors).
    const rows = db
      .prepare(`SELECT ? + CAST((ts - ?) / ? AS INTEGER) * ? AS t, AVG(value) AS v, MIN(value) AS lo, MAX(value) AS hi FROM readings ${where} GROUP BY t ORDER BY t LIMIT ?`)
      .all(params[3], params[3], bucket, bucket, ...params, query.maxPoints) as Array<{ t: number; v: number; lo: number; hi: number }>;
    return Promise.resolve({ points: rows.map((r) => ({ t: r.t, v: r.v, min: r.lo, max: r.hi })), bucket_ms: bucket });
  }

  close(): void {
    this.db?.close();
    this.db = undefined;
  }
}

/** An InfluxQL identifier in double quotes. */
export function influxIdentifier(name: string): string {
  return `"${name.replace(/\\/g, '\\\\').replace(/"/g, '\\"')}"`;
}

/** An InfluxQL string literal in single quotes. */
export function influxString(value: string): string {
  return `'${value.replace(/\\/g, '\\\\').replace(/'/g, "\\'")}'`;
}

/** The InfluxQL of a series query: the count, the readings, or bucketed means (contract: InfluxDB layout). */
export function influxQueries(query: SeriesQuery, source: { database: string; retentionPolicy?: string }) {
  const from = `${influxIdentifier(source.database)}.${source.retentionPolicy ? influxIdentifier(source.retentionPolicy) : ''}.${influxIdentifier(query.metric)}`;
  const where =
    `WHERE "asset_id" = ${influxString(query.assetId)} AND "sensor_id" = ${influxString(query.sensorId)}` + ` AND time >= ${Math.floor(query.from)}ms AND time <= ${Math.floor(query.to)}ms`;
  const bucket = bucketWidth(query);
  return {
    count: `SELECT count("value") FROM ${from} ${where}`,
    raw: `SELECT "value" FROM ${from} ${where} ORDER BY time ASC LIMIT ${query.maxPoints}`,
    bucketed: `SELECT mean("value"), min("value"), max("value") FROM ${from} ${where} GROUP BY time(${bucket}ms, ${Math.floor(query.from) % bucket}ms) fill(none) LIMIT ${query.maxPoints}`,
    bucket,
  };
}

interface InfluxAnswer {
  results?: Array<{ error?: string; series?: Array<{ values?: Array<Array<number | null>> }> }>;
  error?: string;
}

/** Reads InfluxDB through /query (1.x; on 2.x/3.x through its v1 compatibility API, with the bucket as database). */
export class InfluxSeries implements SeriesSource {
  constructor(
    private readonly influx: InfluxConfig,
    private readonly timeoutMs = 10_000,
  ) {}

  async series(query: SeriesQuery): Promise<Series> {
    const database = this.influx.version === 2 ? this.influx.bucket! : this.influx.database!;
    const q = influxQueries(query, { database, ...(this.influx.retention_policy ? { retentionPolicy: this.influx.retention_policy } : {}) });
    const count = (await this.run(q.count, database))[0]?.[1] ?? 0;
    if (count <= query.maxPoints) {
      const rows = await this.run(q.raw, database);
      return { points: rows.map((r) => ({ t: r[0]!, v: r[1]! })), bucket_ms: null };
    }
    const rows = await this.run(q.bucketed, database);
    return { points: rows.filter((r) => r[1] !== null).map((r) => ({ t: r[0]!, v: r[1]!, min: r[2]!, max: r[3]! })), bucket_ms: q.bucket };
  }

  private async run(q: string, database: string): Promise<Array<Array<number | null>>> {
    const url = new URL('/query', this.influx.url);
    url.searchParams.set('db', database);
    url.searchParams.set('epoch', 'ms');
    url.searchParams.set('q', q);
    const headers: Record<string, string> = {};
    if (this.influx.version === 2 && this.influx.token) headers.authorization = `Token ${this.influx.token}`;
    else if (this.influx.username !== undefined) headers.authorization = `Basic ${Buffer.from(`${this.influx.username}:${this.influx.password ?? ''}`).toString('base64')}`;
    const res = await fetch(url, { headers, signal: AbortSignal.timeout(this.timeoutMs) });
    const text = await res.text();
    let body: InfluxAnswer;
    try {
      body = JSON.parse(text) as InfluxAnswer;
    } catch {
      throw new Error(`InfluxDB answered ${res.status}: ${text.slice(0, 200)}`);
    }
    const error = body.error ?? body.results?.[0]?.error;
    if (!res.ok || error) throw new Error(`InfluxDB answered ${res.status}: ${error ?? text.slice(0, 200)}`);
    return body.results?.[0]?.series?.[0]?.values ?? [];
  }
}
