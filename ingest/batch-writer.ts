/**
 * The batching core shared by every telemetry writer. Points wait in a PointQueue and go to a
 * BatchSink one batch at a time, oldest first:
 *
 * - a batch is sent when `batchSize` points are pending, and whatever is pending every
 *   `flushInterval` ms;
 * - a batch that fails with a retryable error (network, timeout, 408, 429, 5xx, local I/O) is
 *   sent again, unchanged, after an exponential backoff with jitter capped at `maxRetryDelay`;
 *   nothing behind it overtakes it, and the writer reports `degraded` until a batch succeeds;
 * - a batch refused for good (any other 4xx) is logged at error with the server's message,
 *   counted in `watchpost_storage_failed_total` and dropped, so it cannot block the queue;
 *   an InfluxDB partial write counts only the points the server dropped as failed;
 * - 413 halves the batch size and sends the same points again in smaller batches.
 */
import type { Logger } from '../lib/logger.js';
import type { Clock } from '../lib/clock.js';
import { systemClock } from '../lib/clock.js';
import type { Counter, MetricsRegistry } from '../lib/metrics.js';
import type { StorageStatus } from './storage.js';
import type { PointQueue } from './point-queue.js';
import { STORAGE_ERROR_CODES, StorageError } from './storage-errors.js';

/** Where batches go: an HTTP backend, a SQLite transaction. */
export interface BatchSink<T> {
  /**
   * Writes one batch and resolves once the backend has confirmed it. Rejects with a
   * StorageError whose `canRetry()` decides between sending the batch again and dropping it;
   * any other rejection is treated as retryable. `signal` aborts at the request timeout.
   */
  write(batch: readonly T[], signal: AbortSignal): Promise<void>;
}

export interface BatchWriterOptions {
  /** Points per request; a full batch is sent at once. */
  batchSize: number;
  /** Pending points are sent at least this often (ms). */
  flushInterval: number;
  /** Per-request timeout, and the bound on flushing at stop() (ms). */
  timeout: number;
  /** First retry delay (ms); doubles with every failed attempt. */
  minRetryDelay: number;
  /** Cap of the retry delay, Retry-After included (ms). */
  maxRetryDelay: number;
}

export const DEFAULT_BATCH_WRITER_OPTIONS: BatchWriterOptions = {
  batchSize: 5000,
  flushInterval: 1000,
  timeout: 10_000,
  minRetryDelay: 500,
  maxRetryDelay: 30_000,
};

/** What every writer of the storage stage is built from. */
export interface StorageDeps {
  logger: Logger;
  metrics: MetricsRegistry;
  clock?: Clock;
  /** Jitter source in [0, 1); tests pass a constant. */
  random?: () => number;
}

export interface BatchWriterDeps<T> {
  sink: BatchSink<T>;
  queue: PointQueue<T>;
  logger: Logger;
  metrics: MetricsRegistry;
  clock?: Clock;
  /** Jitter source in [0, 1); tests pass a constant. */
  random?: () => number;
  /** Shows the first point of a refused batch in the error log (kept short). */
  describePoint?: (point: T) => string;
}

/** Counters of the storage stage; one set per registry, shared by whichever writer runs. */
export function storageMetrics(metrics: MetricsRegistry) {
  return {
    written: metrics.counter('watchpost_storage_written_total', 'Points the storage backend confirmed written.'),
    retries: metrics.counter('watchpost_storage_retries_total', 'Batches sent again after a retryable failure.'),
    failed: metrics.counter(
      'watchpost_storage_failed_total',
      'Points given up for good, by reason (rejected by the backend, invalid, queue full).',
    ),
    spoolDepth: metrics.gauge('watchpost_spool_depth', 'Points accepted but not yet confirmed written.'),
  };
}

type SendOutcome = { kind: 'done' } | { kind: 'retry'; delay: number };

const MAX_DESCRIBED_POINT = 300;

export class BatchWriter<T> {
  private readonly options: BatchWriterOptions;
  private readonly clock: Clock;
  private readonly random: () => number;
  private readonly written: Counter;
  private readonly retries: Counter;
  private readonly failed: Counter;

  private intervalTimer: ReturnType<typeof setInterval> | undefined;
  private retryTimer: ReturnType<typeof setTimeout> | undefined;
  private running: Promise<void> | undefined;
  /** Send the partial batch at the tail too, not only full batches. */
  private flushAll = false;
  private batchSize: number;
  private failedAttempts = 0;
  private degraded = false;
  private refusing = false;
  private lastError: string | undefined;
  private state: 'new' | 'started' | 'stopping' | 'stopped' = 'new';

  constructor(
    private readonly deps: BatchWriterDeps<T>,
    options: Partial<BatchWriterOptions> = {},
  ) {
    this.options = { ...DEFAULT_BATCH_WRITER_OPTIONS, ...options };
    this.batchSize = this.options.batchSize;
    this.clock = deps.clock ?? systemClock;
    this.random = deps.random ?? Math.random;
    const m = storageMetrics(deps.metrics);
    this.written = m.written;
    this.retries = m.retries;
    this.failed = m.failed;
    m.spoolDepth.collect(() => [[undefined, this.deps.queue.size()]]);
  }

  start(): void {
    if (this.state !== 'new') return;
    this.state = 'started';
    this.intervalTimer = setInterval(() => this.kick(true), this.options.flushInterval);
    this.intervalTimer.unref?.();
    if (this.deps.queue.size() > 0) this.kick(true);
  }

  /**
   * Queues points, all or none. Returns false when the queue cannot take them all (or the
   * writer is stopping): the caller must refuse the message rather than lose it.
   */
  append(points: readonly T[]): boolean {
    if (this.state === 'stopping' || this.state === 'stopped') return false;
    if (points.length === 0) return true;
    if (!this.deps.queue.append(points)) {
      if (!this.refusing) {
        this.deps.logger.error(
          { pending: this.deps.queue.size(), refused: points.length },
          'storage queue is full: refusing points until the backend catches up',
        );
      }
      this.refusing = true;
      return false;
    }
    this.refusing = false;
    if (this.deps.queue.size() >= this.batchSize) this.kick(false);
    return true;
  }

  /** Counts points given up before they reached the queue (invalid, queue full). */
  countFailed(reason: string, n = 1): void {
    this.failed.inc({ reason }, n);
  }

  /**
   * Sends everything pending now, unless a retry is waiting out its backoff. Resolves when
   * the queue is empty or the backend failed (the retry stays scheduled).
   */
  async flush(): Promise<void> {
    while (this.state === 'started' && !this.retryTimer) {
      this.kick(true);
      if (!this.running) return;
      await this.running;
      if (this.deps.queue.size() === 0) return;
    }
  }

  /** Flushes what is pending, bounded by `timeout`, then releases timers and the queue. */
  async stop(): Promise<void> {
    if (this.state === 'stopping' || this.state === 'stopped') return;
    const wasStarted = this.state === 'started';
    const deadline = this.clock.now() + this.options.timeout;
    this.state = 'stopping';
    clearInterval(this.intervalTimer);
    clearTimeout(this.retryTimer);
    this.intervalTimer = undefined;
    this.retryTimer = undefined;
    // A request in flight ends by its own timeout, which started before this deadline.
    await this.running;
    if (wasStarted) await this.drainBeforeStop(deadline);
    await this.deps.queue.close?.();
    this.state = 'stopped';
  }

  status(): StorageStatus {
    const status: StorageStatus = {
      state: this.degraded ? 'degraded' : 'ok',
      pending: this.deps.queue.size(),
      accepting: this.state !== 'stopped' && this.state !== 'stopping' && !this.refusing,
    };
    if (this.lastError !== undefined) status.lastError = this.lastError;
    return status;
  }

  private kick(all: boolean): void {
    if (all) this.flushAll = true;
    if (this.state !== 'started' || this.running || this.retryTimer) return;
    if (this.deps.queue.size() === 0) {
      this.flushAll = false;
      return;
    }
    this.running = this.drain().finally(() => {
      this.running = undefined;
    });
  }

  private async drain(): Promise<void> {
    const queue = this.deps.queue;
    while (this.state === 'started' && (queue.size() >= this.batchSize || (this.flushAll && queue.size() > 0))) {
      const outcome = await this.sendOnce(this.options.timeout);
      if (outcome.kind === 'retry') {
        if (this.state === 'started') this.scheduleRetry(outcome.delay);
        return;
      }
    }
    if (queue.size() === 0) this.flushAll = false;
  }

  private scheduleRetry(delay: number): void {
    this.retryTimer = setTimeout(() => {
      this.retryTimer = undefined;
      this.kick(true);
    }, delay);
    this.retryTimer.unref?.();
  }

  private async drainBeforeStop(deadline: number): Promise<void> {
    const queue = this.deps.queue;
    while (queue.size() > 0) {
      const remaining = deadline - this.clock.now();
      if (remaining <= 0) break;
      const outcome = await this.sendOnce(remaining);
      if (outcome.kind === 'retry') break;
    }
    if (queue.size() > 0) {
      this.deps.logger.warn(
        { pending: queue.size(), lastError: this.lastError },
        'storage stopped with points not yet written',
      );
    }
  }

  /** Sends the oldest batch once and settles its points in the queue. */
  private async sendOnce(timeout: number): Promise<SendOutcome> {
    const batch = this.deps.queue.peek(this.batchSize);
    if (batch.length === 0) return { kind: 'done' };
    try {
      await this.deps.sink.write(batch, AbortSignal.timeout(timeout));
    } catch (err) {
      return this.handleFailure(batch, toStorageError(err));
    }
    this.deps.queue.commit(batch.length);
    this.refusing = false;
    this.written.inc(undefined, batch.length);
    if (this.degraded) {
      this.deps.logger.info(
        { attempts: this.failedAttempts, pending: this.deps.queue.size() },
        'storage backend is writable again',
      );
    }
    this.degraded = false;
    this.failedAttempts = 0;
    this.lastError = undefined;
    return { kind: 'done' };
  }

  private handleFailure(batch: readonly T[], error: StorageError): SendOutcome {
    const logger = this.deps.logger;
    this.lastError = error.message;

    if (error.canRetry()) {
      this.failedAttempts += 1;
      this.degraded = true;
      this.retries.inc();
      const delay = this.retryDelay(error);
      logger.warn(
        { code: error.code, err: error.message, attempt: this.failedAttempts, retryInMs: delay, pending: this.deps.queue.size() },
        'storage write failed; will retry',
      );
      return { kind: 'retry', delay };
    }

    // The backend answered, so it is reachable: whatever happens to this batch, it is not down.
    this.degraded = false;
    this.failedAttempts = 0;

    if (error.code === STORAGE_ERROR_CODES.TOO_LARGE && batch.length > 1) {
      this.batchSize = Math.max(1, Math.floor(batch.length / 2));
      logger.warn({ code: error.code, err: error.message, batchSize: this.batchSize }, 'storage batch too large; splitting it');
      return { kind: 'done' };
    }

    let failedPoints = batch.length;
    if (error.code === STORAGE_ERROR_CODES.PARTIAL_WRITE && error.dropped !== undefined) {
      failedPoints = Math.min(error.dropped, batch.length);
      this.written.inc(undefined, batch.length - failedPoints);
    }
    const reason = error.code === STORAGE_ERROR_CODES.PARTIAL_WRITE ? 'partial_write' : 'rejected';
    this.failed.inc({ reason }, failedPoints);
    this.deps.queue.commit(batch.length);
    this.refusing = false;
    logger.error(
      {
        code: error.code,
        status: error.status,
        err: error.message,
        points: batch.length,
        failed: failedPoints,
        ...(this.deps.describePoint ? { firstPoint: this.deps.describePoint(batch[0]!).slice(0, MAX_DESCRIBED_POINT) } : {}),
      },
      'storage backend refused a batch; its points are dropped',
    );
    return { kind: 'done' };
  }

  /** Exponential backoff with "equal jitter": half the step fixed, half random; Retry-After wins when longer. */
  private retryDelay(error: StorageError): number {
    const { minRetryDelay, maxRetryDelay } = this.options;
    const step = Math.min(maxRetryDelay, minRetryDelay * 2 ** Math.min(this.failedAttempts - 1, 30));
    const jittered = step / 2 + (this.random() * step) / 2;
    return Math.round(Math.min(maxRetryDelay, Math.max(jittered, error.retryAfterMs ?? 0)));
  }
}

function toStorageError(err: unknown): StorageError {
  if (err instanceof StorageError) return err;
  const message = err instanceof Error ? err.message : String(err);
  return new StorageError(STORAGE_ERROR_CODES.UNAVAILABLE, `unexpected error: ${message}`, { cause: err });
}
