/**
 * Retention of the embedded telemetry store (`storage.retention.telemetry`): rows of
 * telemetry.db older than `retention` (by their timestamp, on the injected clock) are deleted
 * every `pruneInterval`, in transactions of at most `pruneBatch` rows with a turn of the event
 * loop between them, so ingest is never held up for long. Readings are walked series by series
 * along the primary key (no index on time alone to slow every insert); alert events after
 * them. Freed pages are reused by new rows; the file does not shrink.
 */
import type Database from 'better-sqlite3';
import type { Clock } from '../lib/clock.js';
import type { Logger } from '../lib/logger.js';

export interface RetentionOptions {
  /** Rows (readings and alert events) older than this are deleted (ms); 0 keeps them forever. */
  retention: number;
  /** How often old rows are looked for (ms). */
  pruneInterval: number;
  /** Rows deleted per transaction. */
  pruneBatch: number;
}

export const DAY_MS = 86_400_000;

/** 400 days: the district's archive year plus margin, as for alerts, so the readings behind any archived alert are still there. */
export const DEFAULT_TELEMETRY_RETENTION_MS = 400 * DAY_MS;

export const DEFAULT_RETENTION_OPTIONS: RetentionOptions = {
  retention: DEFAULT_TELEMETRY_RETENTION_MS,
  pruneInterval: 10 * 60_000,
  pruneBatch: 5000,
};

/** Series looked at per prune transaction, however few of their rows are old. */
const PRUNE_SERIES_PER_STEP = 1000;

/** Where a prune pass goes on: the series to start at (itself included or not). */
interface SeriesCursor {
  asset_id: string;
  sensor_id: string;
  metric: string;
  inclusive: boolean;
}

type Series = { asset_id: string; sensor_id: string; metric: string };

type PruneStep = (cutoff: number) => { deleted: number; done: boolean };

export class RetentionPruner {
  private step: PruneStep | undefined;
  private timer: ReturnType<typeof setInterval> | undefined;
  private pruning: Promise<number> | undefined;

  constructor(
    db: Database.Database,
    private readonly options: RetentionOptions,
    private readonly clock: Clock,
    private readonly logger: Logger,
  ) {
    this.step = pruneStatements(db, options.pruneBatch);
  }

  /** Prunes every `pruneInterval` (not at all with retention 0). */
  start(): void {
    if (this.options.retention <= 0 || this.timer) return;
    this.timer = setInterval(() => void this.prune(), this.options.pruneInterval);
    this.timer.unref?.();
  }

  /** Stops the timer; a pass under way stops after its current transaction. */
  async stop(): Promise<void> {
    clearInterval(this.timer);
    this.timer = undefined;
    this.step = undefined;
    await this.pruning;
  }

  /**
   * Deletes every row older than the retention, in bounded transactions with a turn of the
   * event loop between them; resolves with the rows deleted. One pass at a time (the timer's,
   * or a caller's: both get the same pass).
   */
  prune(): Promise<number> {
    if (this.pruning) return this.pruning;
    if (!this.step || this.options.retention <= 0) return Promise.resolve(0);
    const run = this.pass().finally(() => {
      this.pruning = undefined;
    });
    this.pruning = run;
    return run;
  }

  private async pass(): Promise<number> {
    const cutoff = this.clock.now() - this.options.retention;
    let deleted = 0;
    for (;;) {
      const step = this.step;
      if (!step) break;
      let result: { deleted: number; done: boolean };
      try {
        result = step(cutoff);
      } catch (err) {
        // Busy or failing database: the next pass tries again.
        this.logger.warn({ err: (err as Error).message }, 'embedded store: removing old rows failed; trying again at the next pass');
        break;
      }
      deleted += result.deleted;
      if (result.done) break;
      await new Promise((resolve) => setImmediate(resolve));
    }
    if (deleted > 0) this.logger.info({ deleted, before: new Date(cutoff).toISOString() }, 'embedded store: rows older than storage.retention.telemetry deleted');
    return deleted;
  }
}

/**
 * One prune transaction: readings older than `cutoff`, series by series from where the last
 * one stopped, then alert events; at most `limit` rows and PRUNE_SERIES_PER_STEP series.
 * `done` once a pass has gone through every series and no old alert event is left.
 */
function pruneStatements(db: Database.Database, limit: number): PruneStep {
  const firstSeries = db.prepare('SELECT asset_id, sensor_id, metric FROM readings ORDER BY asset_id, sensor_id, metric LIMIT 1');
  const seriesAfter = db.prepare('SELECT asset_id, sensor_id, metric FROM readings WHERE (asset_id, sensor_id, metric) > (?, ?, ?) ORDER BY asset_id, sensor_id, metric LIMIT 1');
  const seriesFrom = db.prepare('SELECT asset_id, sensor_id, metric FROM readings WHERE (asset_id, sensor_id, metric) >= (?, ?, ?) ORDER BY asset_id, sensor_id, metric LIMIT 1');
  const deleteReadings = db.prepare(
    `DELETE FROM readings WHERE (asset_id, sensor_id, metric, ts, asset_type, street) IN (
       SELECT asset_id, sensor_id, metric, ts, asset_type, street FROM readings
       WHERE asset_id = ? AND sensor_id = ? AND metric = ? AND ts < ? LIMIT ?)`,
  );
  const deleteEvents = db.prepare(
    `DELETE FROM alert_events WHERE (rule_id, asset_id, level, event, ts) IN (
       SELECT rule_id, asset_id, level, event, ts FROM alert_events WHERE ts < ? LIMIT ?)`,
  );
  let cursor: SeriesCursor | undefined;
  return db.transaction((cutoff: number) => {
    let deleted = 0;
    for (let visited = 0; visited < PRUNE_SERIES_PER_STEP; visited++) {
      const series = (cursor === undefined ? firstSeries.get() : (cursor.inclusive ? seriesFrom : seriesAfter).get(cursor.asset_id, cursor.sensor_id, cursor.metric)) as Series | undefined;
      if (!series) {
        deleted += deleteEvents.run(cutoff, limit - deleted).changes;
        cursor = undefined;
        return { deleted, done: deleted < limit };
      }
      deleted += deleteReadings.run(series.asset_id, series.sensor_id, series.metric, cutoff, limit - deleted).changes;
      // A series with old rows left is taken up again by the next transaction.
      cursor = { ...series, inclusive: deleted >= limit };
      if (deleted >= limit) return { deleted, done: false };
    }
    return { deleted, done: false };
  });
}
