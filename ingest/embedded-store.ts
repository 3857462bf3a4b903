/**
 * The telemetry store used when no InfluxDB is configured: SQLite (better-sqlite3) in
 * `${dataDir}/telemetry.db`, WAL mode, synchronous=NORMAL. It keeps InfluxDB's layout and
 * semantics so the platform behaves the same on either:
 *
 * - `readings(metric, asset_id, sensor_id, asset_type, street, ts, value)`: one row per metric
 *   value, keyed like an InfluxDB point by series (measurement + tags) and timestamp, so a
 *   second write of the same series and ms replaces the first (INSERT OR REPLACE). The key is
 *   (asset_id, sensor_id, metric, ts, asset_type, street): its prefix is the
 *   (asset_id, sensor_id, metric, ts) index that queries use.
 * - `alert_events(rule_id, asset_id, level, event, ts, alert_id, value, message)`: keyed by its
 *   tags and timestamp like the `alert_events` measurement; `value` is NULL where the line
 *   protocol would leave the field out.
 *
 * Writes go through the same spool and BatchWriter as InfluxDB (batch size, flush interval,
 * retries on I/O errors) and each batch is one transaction, so an acknowledged reading is on disk
 * in the spool before it reaches SQLite, and a locked or full database only delays it. Queries
 * see what has been flushed.
 *
 * Rows older than `storage.retention.telemetry` are deleted in bounded batches
 * (embedded-retention.ts).
 *
 * The database is created 0600 (SQLite gives its -wal and -shm files the database's mode).
 */
import { chmodSync, closeSync, mkdirSync, openSync } from 'node:fs';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { systemClock, type Clock } from '../lib/clock.js';
import { DAY_MS, DEFAULT_RETENTION_OPTIONS, RetentionPruner, type RetentionOptions } from './embedded-retention.js';
import type { Reading } from './reading.js';
import type { AlertEventPoint, StorageStatus, TelemetryWriter } from './storage.js';
import { BatchWriter, type BatchSink, type BatchWriterOptions, type StorageDeps } from './batch-writer.js';
import { MemoryPointQueue, type PointQueue } from './point-queue.js';
import type { SpoolCodec } from './spool.js';
import { STORAGE_ERROR_CODES, StorageError } from './storage-errors.js';
import type { Logger } from '../lib/logger.js';

export const TELEMETRY_DB_FILE = 'telemetry.db';

export type StoredPoint = { kind: 'reading'; reading: Reading } | { kind: 'alert_event'; event: AlertEventPoint };

export interface ReadingQuery {
  metric?: string;
  assetId?: string;
  sensorId?: string;
  /** Epoch ms, inclusive. */
  from?: number;
  /** Epoch ms, inclusive. */
  to?: number;
  /** At most this many rows, oldest first; DEFAULT_QUERY_LIMIT when absent. */
  limit?: number;
}

export interface AlertEventQuery {
  assetId?: string;
  ruleId?: string;
  from?: number;
  to?: number;
  limit?: number;
}

export const DEFAULT_QUERY_LIMIT = 10_000;

export interface EmbeddedStore extends TelemetryWriter {
  /** Writes everything pending now; resolves early while the database is failing. */
  flush(): Promise<void>;
  /** The latest reading of every (asset, sensor, metric), optionally of one asset. */
  latest(assetId?: string): Reading[];
  /** Readings matching every given filter, oldest first. */
  query(query: ReadingQuery): Reading[];
  /** Alert events matching every given filter, oldest first. */
  alertEvents(query?: AlertEventQuery): AlertEventPoint[];
  /** Deletes the rows older than the retention now (as the prune timer does); resolves with how many. */
  prune(): Promise<number>;
}

export interface EmbeddedStoreOptions extends Partial<BatchWriterOptions>, Partial<RetentionOptions> {
  /** The platform passes the durable spool (with storedPointCodec); a bounded in-memory queue by default. */
  queue?: PointQueue<StoredPoint>;
}

export const DEFAULT_EMBEDDED_STORE_OPTIONS: Pick<BatchWriterOptions, 'batchSize' | 'flushInterval' | 'timeout'> = {
  batchSize: 5000,
  flushInterval: 1000,
  timeout: 10_000,
};

/**
 * Stored points in the spool: a JSON array per point, fields by position. NaN (an alert event
 * without a value) goes through JSON as null and comes back as NaN.
 */
export const storedPointCodec: SpoolCodec<StoredPoint> = {
  encode(p) {
    if (p.kind === 'reading') {
      const r = p.reading;
      return JSON.stringify(['r', r.metric, r.assetId, r.sensorId, r.assetType, r.street, r.ts, r.value]);
    }
    const e = p.event;
    return JSON.stringify(['a', e.ruleId, e.assetId, e.level, e.event, e.ts, e.alertId, Number.isFinite(e.value) ? e.value : null, e.message]);
  },
  decode(payload) {
    const a = JSON.parse(payload.toString('utf8')) as unknown[];
    if (!Array.isArray(a)) throw new Error('not a stored point');
    const str = (i: number): string => {
      const v = a[i];
      if (typeof v !== 'string') throw new Error(`field ${i} is not a string`);
      return v;
    };
    const num = (i: number): number => {
      const v = a[i];
      if (typeof v !== 'number') throw new Error(`field ${i} is not a number`);
      return v;
    };
    if (a[0] === 'r' && a.length === 8) {
      return { kind: 'reading', reading: { metric: str(1), assetId: str(2), sensorId: str(3), assetType: str(4), street: str(5), ts: num(6), value: num(7) } };
    }
    if (a[0] === 'a' && a.length === 9) {
      return {
        kind: 'alert_event',
        event: { ruleId: str(1), assetId: str(2), level: str(3), event: str(4), ts: num(5), alertId: str(6), value: a[7] === null ? Number.NaN : num(7), message: str(8) },
      };
    }
    throw new Error('not a stored point');
  },
};

export function createEmbeddedStore(dataDir: string, deps: StorageDeps, options: EmbeddedStoreOptions = {}): EmbeddedStore {
  return new SqliteTelemetryStore(dataDir, deps, options);
}

const SCHEMA = `
CREATE TABLE IF NOT EXISTS readings (
  metric     TEXT    NOT NULL,
  asset_id   TEXT    NOT NULL,
  sensor_id  TEXT    NOT NULL,
  asset_type TEXT    NOT NULL,
  street     TEXT    NOT NULL,
  ts         INTEGER NOT NULL,
  value      REAL    NOT NULL,
  PRIMARY KEY (asset_id, sensor_id, metric, ts, asset_type, street)
) WITHOUT ROWID;

CREATE TABLE IF NOT EXISTS alert_events (
  rule_id  TEXT    NOT NULL,
  asset_id TEXT    NOT NULL,
  level    TEXT    NOT NULL,
  event    TEXT    NOT NULL,
  ts       INTEGER NOT NULL,
  alert_id TEXT    NOT NULL,
  value    REAL,
  message  TEXT    NOT NULL,
  PRIMARY KEY (rule_id, asset_id, level, event, ts)
) WITHOUT ROWID;

CREATE INDEX IF NOT EXISTS alert_events_asset_ts ON alert_events (asset_id, ts);
`;

const SCHEMA_VERSION = 1;

const READING_COLUMNS = 'metric, asset_id, sensor_id, asset_type, street, ts, value';

interface ReadingRow {
  metric: string;
  asset_id: string;
  sensor_id: string;
  asset_type: string;
  street: string;
  ts: number;
  value: number;
}

interface AlertEventRow {
  rule_id: string;
  asset_id: string;
  level: string;
  event: string;
  ts: number;
  alert_id: string;
  value: number | null;
  message: string;
}

/** SQLite errors that the same batch cannot get past; anything else (busy, I/O, full) is retried. */
const PERMANENT_SQLITE = /^SQLITE_(CONSTRAINT|MISMATCH|TOOBIG|RANGE)/;

class SqliteTelemetryStore implements EmbeddedStore {
  private readonly logger: Logger;
  private readonly batch: BatchWriter<StoredPoint>;
  private readonly clock: Clock;
  private readonly retention: RetentionOptions;
  private db: Database.Database | undefined;
  private writeBatch: ((points: readonly StoredPoint[]) => void) | undefined;
  private pruner: RetentionPruner | undefined;
  private readonly statements = new Map<string, Database.Statement>();

  constructor(
    private readonly dataDir: string,
    deps: StorageDeps,
    options: EmbeddedStoreOptions,
  ) {
    const { queue, retention, pruneInterval, pruneBatch, ...batchOptions } = options;
    this.clock = deps.clock ?? systemClock;
    this.retention = {
      retention: retention ?? DEFAULT_RETENTION_OPTIONS.retention,
      pruneInterval: pruneInterval ?? DEFAULT_RETENTION_OPTIONS.pruneInterval,
      pruneBatch: pruneBatch ?? DEFAULT_RETENTION_OPTIONS.pruneBatch,
    };
    this.logger = deps.logger.child({ module: 'storage', backend: 'embedded' });
    // A rejected promise (not a throw) when the transaction fails, as the batch writer expects.
    const sink: BatchSink<StoredPoint> = {
      write: (points) =>
        new Promise<void>((resolve) => {
          this.writePoints(points);
          resolve();
        }),
    };
    this.batch = new BatchWriter<StoredPoint>(
      {
        sink,
        queue: queue ?? new MemoryPointQueue<StoredPoint>(),
        logger: this.logger,
        metrics: deps.metrics,
        ...(deps.clock ? { clock: deps.clock } : {}),
        ...(deps.random ? { random: deps.random } : {}),
        describePoint: (p) => JSON.stringify(p),
      },
      { ...DEFAULT_EMBEDDED_STORE_OPTIONS, ...batchOptions },
    );
  }

  async start(): Promise<void> {
    if (this.db) return;
    mkdirSync(this.dataDir, { recursive: true, mode: 0o700 });
    const file = join(this.dataDir, TELEMETRY_DB_FILE);
    // Created 0600 before SQLite opens it (an empty file is an empty database); -wal and -shm take
    // its mode. Files an older version made wider are made private too.
    closeSync(openSync(file, 'a', 0o600));
    for (const f of [file, `${file}-wal`, `${file}-shm`]) restrictToOwner(f);
    const db = new Database(file);
    db.pragma('journal_mode = WAL');
    db.pragma('synchronous = NORMAL');
    db.pragma('busy_timeout = 5000');
    db.exec(SCHEMA);
    db.pragma(`user_version = ${SCHEMA_VERSION}`);

    const insertReading = db.prepare(`INSERT OR REPLACE INTO readings (${READING_COLUMNS}) VALUES (@metric, @asset_id, @sensor_id, @asset_type, @street, @ts, @value)`);
    const insertEvent = db.prepare(
      `INSERT OR REPLACE INTO alert_events (rule_id, asset_id, level, event, ts, alert_id, value, message)
       VALUES (@rule_id, @asset_id, @level, @event, @ts, @alert_id, @value, @message)`,
    );
    this.writeBatch = db.transaction((points: readonly StoredPoint[]) => {
      for (const p of points) {
        if (p.kind === 'reading') insertReading.run(readingRow(p.reading));
        else insertEvent.run(alertEventRow(p.event));
      }
    });
    this.pruner = new RetentionPruner(db, this.retention, this.clock, this.logger);
    this.db = db;
    await this.batch.start();
    this.pruner.start();
    this.logger.info({ file, retention_days: this.retention.retention / DAY_MS }, 'embedded telemetry store open');
  }

  async stop(): Promise<void> {
    await this.pruner?.stop();
    this.pruner = undefined;
    await this.batch.stop();
    this.statements.clear();
    this.writeBatch = undefined;
    this.db?.close();
    this.db = undefined;
  }

  flush(): Promise<void> {
    return this.batch.flush();
  }

  prune(): Promise<number> {
    return this.pruner?.prune() ?? Promise.resolve(0);
  }

  writeReadings(readings: readonly Reading[]): Promise<boolean> {
    const points: StoredPoint[] = [];
    let invalid = 0;
    for (const reading of readings) {
      if (Number.isFinite(reading.value) && Number.isFinite(reading.ts)) points.push({ kind: 'reading', reading });
      else invalid += 1;
    }
    if (invalid > 0) {
      this.batch.countFailed('invalid_point', invalid);
      this.logger.warn({ invalid }, 'readings with a value or timestamp that is not finite cannot be stored; dropped');
    }
    return this.batch.append(points);
  }

  writeAlertEvent(event: AlertEventPoint): void {
    if (!Number.isFinite(event.ts)) {
      this.batch.countFailed('invalid_point');
      this.logger.error({ alertId: event.alertId }, 'alert event without a finite timestamp cannot be stored; dropped');
      return;
    }
    void this.batch.append([{ kind: 'alert_event', event }], { force: true }).then((ok) => {
      if (ok) return;
      this.batch.countFailed('alert_event_refused');
      this.logger.error({ alertId: event.alertId, event: event.event }, 'storage cannot take the alert event (stopping, or the spool fails); dropped');
    });
  }

  status(): StorageStatus {
    return this.batch.status();
  }

  latest(assetId?: string): Reading[] {
    // SQLite takes the bare columns of an aggregate query from the row holding MAX(ts).
    const sql =
      `SELECT metric, asset_id, sensor_id, asset_type, street, MAX(ts) AS ts, value FROM readings` +
      (assetId === undefined ? '' : ' WHERE asset_id = ?') +
      ' GROUP BY asset_id, sensor_id, metric ORDER BY asset_id, sensor_id, metric';
    const rows = this.statement(sql).all(...(assetId === undefined ? [] : [assetId])) as ReadingRow[];
    return rows.map(toReading);
  }

  query(query: ReadingQuery): Reading[] {
    const filter = new Filter()
      .add('asset_id = ?', query.assetId)
      .add('sensor_id = ?', query.sensorId)
      .add('metric = ?', query.metric)
      .add('ts >= ?', floorOrUndefined(query.from))
      .add('ts <= ?', floorOrUndefined(query.to));
    const sql = `SELECT ${READING_COLUMNS} FROM readings${filter.where()} ORDER BY ts, asset_id, sensor_id, metric, asset_type, street LIMIT ?`;
    const rows = this.statement(sql).all(...filter.params, query.limit ?? DEFAULT_QUERY_LIMIT) as ReadingRow[];
    return rows.map(toReading);
  }

  alertEvents(query: AlertEventQuery = {}): AlertEventPoint[] {
    const filter = new Filter().add('asset_id = ?', query.assetId).add('rule_id = ?', query.ruleId).add('ts >= ?', floorOrUndefined(query.from)).add('ts <= ?', floorOrUndefined(query.to));
    const sql = 'SELECT rule_id, asset_id, level, event, ts, alert_id, value, message FROM alert_events' + `${filter.where()} ORDER BY ts, rule_id, asset_id LIMIT ?`;
    const rows = this.statement(sql).all(...filter.params, query.limit ?? DEFAULT_QUERY_LIMIT) as AlertEventRow[];
    return rows.map(toAlertEvent);
  }

  private writePoints(points: readonly StoredPoint[]): void {
    if (!this.writeBatch) throw new StorageError(STORAGE_ERROR_CODES.LOCAL_STORE, 'embedded store is not open');
    try {
      this.writeBatch(points);
    } catch (err) {
      const code = (err as { code?: unknown }).code;
      const message = `SQLite: ${(err as Error).message}`;
      throw typeof code === 'string' && PERMANENT_SQLITE.test(code)
        ? new StorageError(STORAGE_ERROR_CODES.REJECTED, message, { cause: err })
        : new StorageError(STORAGE_ERROR_CODES.LOCAL_STORE, message, { cause: err });
    }
  }

  /** Prepared once per distinct query shape. */
  private statement(sql: string): Database.Statement {
    if (!this.db) throw new StorageError(STORAGE_ERROR_CODES.LOCAL_STORE, 'embedded store is not open');
    let statement = this.statements.get(sql);
    if (!statement) {
      statement = this.db.prepare(sql);
      this.statements.set(sql, statement);
    }
    return statement;
  }
}

/** A WHERE clause from the filters that are given; values are always bound, never spliced. */
class Filter {
  private readonly clauses: string[] = [];
  readonly params: Array<string | number> = [];

  add(clause: string, value: string | number | undefined): this {
    if (value !== undefined) {
      this.clauses.push(clause);
      this.params.push(value);
    }
    return this;
  }

  where(): string {
    return this.clauses.length > 0 ? ` WHERE ${this.clauses.join(' AND ')}` : '';
  }
}

/** chmod 0600, when the file exists. */
function restrictToOwner(file: string): void {
  try {
    chmodSync(file, 0o600);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
  }
}

function floorOrUndefined(ts: number | undefined): number | undefined {
  return ts === undefined ? undefined : Math.floor(ts);
}

function readingRow(r: Reading): ReadingRow {
  return {
    metric: r.metric,
    asset_id: r.assetId,
    sensor_id: r.sensorId,
    asset_type: r.assetType,
    street: r.street,
    ts: Math.floor(r.ts),
    value: r.value,
  };
}

function alertEventRow(e: AlertEventPoint): AlertEventRow {
  return {
    rule_id: e.ruleId,
    asset_id: e.assetId,
    level: e.level,
    event: e.event,
    ts: Math.floor(e.ts),
    alert_id: e.alertId,
    value: Number.isFinite(e.value) ? e.value : null,
    message: e.message,
  };
}

function toReading(row: ReadingRow): Reading {
  return {
    assetId: row.asset_id,
    sensorId: row.sensor_id,
    assetType: row.asset_type,
    street: row.street,
    metric: row.metric,
    value: row.value,
    ts: row.ts,
  };
}

function toAlertEvent(row: AlertEventRow): AlertEventPoint {
  return {
    ruleId: row.rule_id,
    assetId: row.asset_id,
    level: row.level,
    event: row.event,
    alertId: row.alert_id,
    value: row.value ?? Number.NaN,
    message: row.message,
    ts: row.ts,
  };
}
