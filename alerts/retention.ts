/**
 * Retention of alerts.db (`storage.retention.alerts`): alerts resolved longer ago than the
 * retention are deleted with their timeline and outbox rows, and settled digests with them.
 * Open alerts, and resolved ones with a notification still pending, are kept whatever their age.
 *
 * The job runs at start and then every `intervalMs`, on the injected clock. It deletes in
 * batches of `batchSize` alerts, one transaction each, and yields to the event loop between
 * batches, so a large first pruning never holds the event loop (or the database) for long.
 */
import type { Clock } from '../lib/clock.js';
import type { Logger } from '../lib/logger.js';
import type { Counter, MetricsRegistry } from '../lib/metrics.js';
import type { AlertStore } from './store.js';
import { DueTimer } from './due-timer.js';

/** 400 days: the district's archive year plus margin. */
export const DEFAULT_ALERT_RETENTION_MS = 400 * 86_400_000;

export const ALERTS_PRUNED_METRIC = 'watchpost_alerts_pruned_total';

export interface RetentionOptions {
  /** Resolved alerts older than this are deleted; 0 keeps them forever. */
  maxAgeMs: number;
  /** How often the job runs (default 1 h). */
  intervalMs?: number;
  /** Alerts deleted per transaction (default 200). */
  batchSize?: number;
}

export const DEFAULT_RETENTION_INTERVAL_MS = 3_600_000;
export const DEFAULT_RETENTION_BATCH = 200;

export class AlertRetention {
  private readonly timer: DueTimer;
  private readonly pruned: Counter;
  private running = false;

  constructor(
    private readonly store: AlertStore,
    private readonly clock: Clock,
    private readonly logger: Logger,
    metrics: MetricsRegistry,
    private readonly options: RetentionOptions,
  ) {
    this.timer = new DueTimer(clock, () => void this.run());
    this.pruned = metrics.counter(ALERTS_PRUNED_METRIC, 'Resolved alerts deleted from alerts.db by retention (storage.retention.alerts).');
  }

  start(): void {
    if (this.running || this.options.maxAgeMs <= 0) return;
    this.running = true;
    this.timer.arm(this.clock.now());
  }

  /** Stops the job; a pass between two batches ends without touching the store again. */
  stop(): void {
    this.running = false;
    this.timer.clear();
  }

  private async run(): Promise<void> {
    const batch = this.options.batchSize ?? DEFAULT_RETENTION_BATCH;
    const before = this.clock.now() - this.options.maxAgeMs;
    let alerts = 0;
    let digests = 0;
    try {
      while (this.running) {
        const done = this.store.pruneResolved(before, batch);
        alerts += done.alerts;
        digests += done.digests;
        if (done.alerts > 0) this.pruned.inc(undefined, done.alerts);
        if (done.alerts < batch && done.digests < batch) break;
        await new Promise<void>((resolve) => setImmediate(resolve));
      }
      if (alerts > 0 || digests > 0) this.logger.info({ alerts, digests, resolved_before: new Date(before).toISOString() }, 'retention deleted old resolved alerts');
    } catch (error) {
      this.logger.error({ err: error }, 'retention of alerts.db failed; it runs again at the next interval');
    }
    if (this.running) this.timer.arm(this.clock.now() + (this.options.intervalMs ?? DEFAULT_RETENTION_INTERVAL_MS));
  }
}
