/**
 * The batching core shared by every telemetry writer. Points wait in a PointQueue (the durable
 * spool in the platform) and go to a BatchSink one batch at a time, oldest first:
 *
 * - a batch is sent when `batchSize` points are pending, and whatever is pending every
 *   `flushInterval` ms;
 * - a batch that fails with a retryable error (network, timeout, 401, 403, 404, 408, 429, 5xx,
 *   local I/O; see storage-errors.ts) is sent again, unchanged, after an exponential backoff
 *   with jitter capped at `maxRetryDelay`; nothing behind it overtakes it, and the writer
 *   reports `degraded` with the reason (`unauthorized`, `database_not_found`, …) until a batch
 *   succeeds;
 * - a batch the backend refuses for its content (400/422: parse error, field type conflict,
 *   partial write) is split (by the sink's hint, else in halves) and the parts sent again until
 *   every point is either written or refused on its own; the refused points go to the
 *   quarantine (a file under data_dir) with the reason, are counted in
 *   `watchpost_storage_quarantined_total{reason}`, and the batch is committed, so it cannot
 *   block the queue. Good points sent again are harmless (InfluxDB overwrites the same series
 *   and timestamp). If the quarantine cannot be written, the whole batch stays and is retried;
 *   a writer without a quarantine drops them, counted in `watchpost_storage_failed_total`;
 * - 413 halves the batch size and sends the same points again in smaller batches;
 * - after a failure, the backlog is sent in full batches back to back (nothing waits for the
 *   flush interval) while new points keep being appended behind it; the writer reports
 *   `degraded` (reason `draining`) until fewer than one batch is pending.
 *
 * `append` resolves once the queue holds the points durably; only then may a caller acknowledge
 * them. Committing happens after the backend confirmed, so a crash in between sends that one
 * batch again.
 * Over 500 lines: the send loop, its retry and its split-on-refusal share one cursor into the
 * queue, and keeping them in one class keeps "nothing overtakes a failed batch" checkable here.
 */
import type { Logger } from '../lib/logger.js';
import type { Clock } from '../lib/clock.js';
import { systemClock } from '../lib/clock.js';
import type { Counter, Histogram, MetricsRegistry } from '../lib/metrics.js';
import type { StorageStatus } from './storage.js';
import type { AppendOptions, PointQueue } from './point-queue.js';
import { STORAGE_ERROR_CODES, StorageError, type RejectionReason, type StorageFailureReason } from './storage-errors.js';
import { isolateRefused, type Quarantine, type Refused } from './refused-points.js';

export type { Quarantine } from './refused-points.js';

/** Where batches go: an HTTP backend, a SQLite transaction. */
export interface BatchSink<T> {
  /**
   * Writes one batch and resolves once the backend has confirmed it. Rejects with a
   * StorageError whose `canRetry()` decides between sending the batch again and isolating the refused points;
   * any other rejection is treated as retryable. `signal` aborts at the request timeout.
   */
  write(batch: readonly T[], signal: AbortSignal): Promise<void>;
  /**
   * Splits a batch the backend refused for its content into smaller parts to send again, using
   * what the error says (InfluxDB names the measurement of a field type conflict and quotes
   * lines it cannot parse). Every part must be smaller than the batch; halves when absent.
   */
  split?(batch: readonly T[], error: StorageError): T[][];
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
  /**
   * Batches in flight at once. Batches are still committed oldest first: a later batch that
   * the backend confirmed before an earlier one failed is sent again (InfluxDB overwrites the
   * same series and timestamp, so this is harmless there; sinks that are not idempotent use 1).
   */
  concurrency: number;
}

export const DEFAULT_BATCH_WRITER_OPTIONS: BatchWriterOptions = {
  batchSize: 5000,
  flushInterval: 1000,
  timeout: 10_000,
  minRetryDelay: 500,
  maxRetryDelay: 30_000,
  concurrency: 1,
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
  /** Points refused for their content go here; without it they are dropped and counted in `watchpost_storage_failed_total`. */
  quarantine?: Quarantine<T>;
  /** What to do about a failure that needs an operator (missing database, rejected credentials), logged when it starts. */
  explainFailure?: (error: StorageError) => string | undefined;
}

/** Metrics of the storage stage; one set per registry, shared by whichever writer runs. */
export function storageMetrics(metrics: MetricsRegistry) {
  return {
    written: metrics.counter('watchpost_storage_written_total', 'Points the storage backend confirmed written.'),
    retries: metrics.counter('watchpost_storage_retries_total', 'Batches sent again after a retryable failure.'),
    failed: metrics.counter('watchpost_storage_failed_total', 'Points dropped for good, by reason (not encodable, corrupt in the spool, refused without a quarantine); should stay 0.'),
    quarantined: metrics.counter(
      'watchpost_storage_quarantined_total',
      'Points the backend refused for their content (field type conflict, parse error), kept in the quarantine file under data_dir, by reason.',
    ),
    writeLatency: metrics.histogram('watchpost_storage_write_latency_seconds', 'Duration of each batch write to the backend, from sending to its confirmation.'),
    spoolDepth: metrics.gauge('watchpost_spool_depth', 'Points accepted but not yet confirmed written.'),
    spoolBytes: metrics.gauge('watchpost_spool_bytes', 'Bytes of the points in the spool.'),
    spoolCapacity: metrics.gauge('watchpost_spool_capacity_bytes', 'storage.spool.max_bytes: appends past it are refused.'),
    spoolOldestAge: metrics.gauge('watchpost_spool_oldest_age_seconds', 'How long the oldest point in the spool has waited (0 when empty).'),
  };
}

/** `done` with `settled: false`: the batch was neither written nor committed (it was split). */
type SendOutcome = { kind: 'done'; settled?: false } | { kind: 'empty' } | { kind: 'retry'; delay: number };

interface InFlight<T> {
  batch: T[];
  started: number;
  result: Promise<StorageError | undefined>;
}

const MAX_DESCRIBED_POINT = 300;

export class BatchWriter<T> {
  private readonly options: BatchWriterOptions;
  private readonly clock: Clock;
  private readonly random: () => number;
  private readonly written: Counter;
  private readonly retries: Counter;
  private readonly failed: Counter;
  private readonly quarantined: Counter;
  private readonly latency: Histogram;

  private intervalTimer: ReturnType<typeof setInterval> | undefined;
  private retryTimer: ReturnType<typeof setTimeout> | undefined;
  private running: Promise<void> | undefined;
  /**
   * The oldest points to send even as a partial batch: what was pending when the flush interval
   * (or flush()) came round. Points appended after that wait for a full batch or the next
   * interval, so a steady stream is not sent as a request per handful of points.
   */
  private flushPoints = 0;
  private batchSize: number;
  private failedAttempts = 0;
  private degraded = false;
  /** Since when writes have failed without a success in between (epoch ms). */
  private failingSince: number | undefined;
  /** Why writes fail, while they do. */
  private failure: StorageFailureReason | undefined;
  /** A backlog built up while the backend failed is being sent. */
  private draining = false;
  private refusing = false;
  private lastError: string | undefined;
  private appendError: string | undefined;
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
    this.quarantined = m.quarantined;
    const queue = deps.queue;
    m.spoolDepth.collect(() => [[undefined, queue.size()]]);
    m.spoolBytes.collect(() => [[undefined, queue.stats().bytes]]);
    m.spoolCapacity.collect(() => [[undefined, queue.stats().capacityBytes]]);
    m.spoolOldestAge.collect(() => {
      const oldest = queue.stats().oldestAppendedAt;
      return [[undefined, oldest === undefined ? 0 : Math.max(0, this.clock.now() - oldest) / 1000]];
    });
    this.latency = m.writeLatency;
  }

  /** Opens the queue (recovering what a previous run left in the spool) and starts the flush timer. */
  async start(): Promise<void> {
    if (this.state !== 'new') return;
    if (this.deps.queue.open) await this.deps.queue.open();
    this.state = 'started';
    this.intervalTimer = setInterval(() => this.kick(true), this.options.flushInterval);
    this.intervalTimer.unref?.();
    // What a previous run left in the spool is a backlog until it is sent.
    if (this.deps.queue.size() > 0) this.draining = true;
    if (this.deps.queue.size() > 0) this.kick(true);
  }

  /**
   * Queues points, all or none, and resolves once the queue holds them durably. Resolves false
   * when the queue cannot take them (full, failing, or the writer is stopping): the caller must
   * refuse the message rather than lose it. Never rejects.
   */
  append(points: readonly T[], options?: AppendOptions): Promise<boolean> {
    if (this.state === 'stopping' || this.state === 'stopped') return Promise.resolve(false);
    if (points.length === 0) return Promise.resolve(true);
    // Not an async function: this runs for every message, and an async frame per call was ~12 %
    // of the ingest path's allocations.
    let appended: Promise<boolean>;
    try {
      appended = this.deps.queue.append(points, options);
    } catch (err) {
      appended = Promise.reject(err);
    }
    const count = points.length;
    const force = options?.force === true;
    return appended.then(
      (ok) => this.appended(ok, count, force),
      (err: unknown) => this.appendFailed(err, count),
    );
  }

  private appendFailed(err: unknown, count: number): boolean {
    const message = err instanceof Error ? err.message : String(err);
    if (this.appendError !== message) this.deps.logger.error({ err: message, refused: count }, 'storage queue cannot store points; refusing them');
    this.appendError = message;
    this.refusing = true;
    return false;
  }

  private appended(ok: boolean, count: number, force: boolean): boolean {
    if (!ok) {
      if (!this.refusing) {
        this.deps.logger.error(
          { pending: this.deps.queue.size(), bytes: this.deps.queue.stats().bytes, refused: count },
          'storage queue is full: refusing points until the backend catches up',
        );
      }
      this.refusing = true;
      return false;
    }
    // A forced append (an alert event) says nothing about room for readings.
    if (!force) {
      if (this.refusing) this.deps.logger.info({ pending: this.deps.queue.size() }, 'storage queue accepts points again');
      this.refusing = false;
      this.appendError = undefined;
    }
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
    await this.deps.quarantine?.close?.();
    this.state = 'stopped';
  }

  status(): StorageStatus {
    const stats = this.deps.queue.stats();
    const status: StorageStatus = {
      state: this.degraded || this.draining ? 'degraded' : 'ok',
      pending: stats.depth,
      accepting: this.state !== 'stopped' && this.state !== 'stopping' && !this.refusing,
      spool: {
        bytes: stats.bytes,
        capacityBytes: stats.capacityBytes,
        usagePercent: stats.capacityBytes > 0 ? Math.round((stats.bytes / stats.capacityBytes) * 10_000) / 100 : 0,
        oldestAgeSeconds: stats.oldestAppendedAt === undefined ? 0 : Math.max(0, this.clock.now() - stats.oldestAppendedAt) / 1000,
      },
    };
    if (this.degraded) status.reason = this.failure ?? 'unavailable';
    else if (this.draining) status.reason = 'draining';
    if (this.failingSince !== undefined) status.failingSince = this.failingSince;
    if (this.lastError !== undefined) status.lastError = this.lastError;
    if (this.appendError !== undefined) status.queueError = this.appendError;
    return status;
  }

  private kick(all: boolean): void {
    if (all) this.flushPoints = this.deps.queue.size();
    if (this.state !== 'started' || this.running || this.retryTimer) return;
    if (this.deps.queue.size() === 0) {
      this.flushPoints = 0;
      return;
    }
    this.running = this.drain().finally(() => {
      this.running = undefined;
    });
  }

  /**
   * Sends full batches (and the partial tail when flushing or draining a backlog), keeping up to
   * `concurrency` requests in flight, and settles them in order. After any failure, what is
   * still in flight is waited out and sent again later, since nothing may be committed ahead
   * of an unsettled batch.
   */
  private async drain(): Promise<void> {
    const queue = this.deps.queue;
    const inflight: InFlight<T>[] = [];
    let sent = 0;
    const more = () => this.state === 'started' && (queue.size() - sent >= this.batchSize || ((this.draining || this.flushPoints > sent) && queue.size() - sent > 0));
    for (;;) {
      while (inflight.length < this.options.concurrency && more()) {
        let window: T[];
        try {
          window = await queue.peek(sent + this.batchSize);
        } catch (err) {
          inflight.push({ batch: [], started: 0, result: Promise.resolve(toStorageError(err)) });
          break;
        }
        const batch = sent === 0 ? window : window.slice(sent);
        if (batch.length === 0) break;
        sent += batch.length;
        inflight.push({ batch, started: performance.now(), result: this.write(batch, this.options.timeout) });
      }
      const head = inflight.shift();
      if (!head) break;
      sent -= head.batch.length;
      const error = await head.result;
      const outcome = error === undefined ? await this.settleWritten(head.batch, head.started) : await this.handleFailure(head.batch, error);
      if (outcome.kind === 'done' && outcome.settled !== false) this.flushPoints = Math.max(0, this.flushPoints - head.batch.length);
      if (outcome.kind !== 'done' || inflight.length === 0) {
        if (outcome.kind === 'retry') {
          await Promise.all(inflight.map((f) => f.result));
          if (this.state === 'started') this.scheduleRetry(outcome.delay);
          return;
        }
        continue;
      }
      if (error !== undefined || outcome.settled === false) {
        // The head was not written as sent (refused, split): later batches start over from the queue.
        await Promise.all(inflight.map((f) => f.result));
        inflight.length = 0;
        sent = 0;
      }
    }
    if (queue.size() === 0) this.flushPoints = 0;
  }

  /** Writes one batch; resolves with the error instead of rejecting. */
  private write(batch: readonly T[], timeout: number): Promise<StorageError | undefined> {
    return this.deps.sink.write(batch, AbortSignal.timeout(timeout)).then(
      () => undefined,
      (err: unknown) => toStorageError(err),
    );
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
      if (outcome.kind !== 'done') break;
    }
    if (queue.size() > 0) {
      this.deps.logger.warn({ pending: queue.size(), lastError: this.lastError }, 'storage stopped with points not yet written');
    }
  }

  /** Sends the oldest batch once and settles its points in the queue. */
  private async sendOnce(timeout: number): Promise<SendOutcome> {
    let batch: T[];
    try {
      batch = await this.deps.queue.peek(this.batchSize);
    } catch (err) {
      return await this.handleFailure([], toStorageError(err));
    }
    if (batch.length === 0) return { kind: 'empty' };
    const started = performance.now();
    const error = await this.write(batch, timeout);
    return error === undefined ? await this.settleWritten(batch, started) : await this.handleFailure(batch, error);
  }

  /** The backend confirmed `batch` (the oldest pending points): commit it and leave any failing state. */
  private async settleWritten(batch: readonly T[], started: number): Promise<SendOutcome> {
    this.latency.observe((performance.now() - started) / 1000);
    this.written.inc(undefined, batch.length);
    try {
      await this.deps.queue.commit(batch.length);
    } catch (err) {
      // Written but not committed: the batch is sent again, which the backend's idempotency absorbs.
      return await this.handleFailure([], toStorageError(err));
    }
    this.recovered();
    return { kind: 'done' };
  }

  /** A batch was settled: report accepting again if there is room, and leave any failing state. */
  private recovered(): void {
    this.releaseRefusal();
    if (this.degraded) {
      this.deps.logger.info(
        { attempts: this.failedAttempts, pending: this.deps.queue.size(), failingForMs: this.failingSince === undefined ? undefined : this.clock.now() - this.failingSince },
        'storage backend is writable again; sending the backlog',
      );
    }
    this.degraded = false;
    this.failedAttempts = 0;
    this.failingSince = undefined;
    this.failure = undefined;
    this.lastError = undefined;
    if (this.draining && this.deps.queue.size() < this.batchSize) {
      this.draining = false;
      this.deps.logger.info({ pending: this.deps.queue.size() }, 'storage backlog sent');
    }
  }

  /** Room was made in the queue: report accepting again (the next append that does not fit says otherwise). */
  private releaseRefusal(): void {
    const stats = this.deps.queue.stats();
    if (this.refusing && this.appendError === undefined && stats.bytes < stats.capacityBytes) this.refusing = false;
  }

  private async handleFailure(batch: readonly T[], error: StorageError): Promise<SendOutcome> {
    if (error.canRetry() || batch.length === 0) return this.retryLater(error);

    this.lastError = error.message;
    if (error.code === STORAGE_ERROR_CODES.TOO_LARGE && batch.length > 1) {
      this.batchSize = Math.max(1, Math.floor(batch.length / 2));
      this.deps.logger.warn({ code: error.code, err: error.message, batchSize: this.batchSize }, 'storage batch too large; splitting it');
      return { kind: 'done', settled: false };
    }
    if (!error.isContentRejection()) {
      // A point that cannot be sent at all (413 for a single point): kept like a refused one.
      return await this.settleRefused(batch, [{ points: [...batch], error }]);
    }
    const isolated = await isolateRefused(batch, error, (part) => this.write(part, this.options.timeout), this.deps.sink.split?.bind(this.deps.sink));
    if ('retry' in isolated) return this.retryLater(isolated.retry);
    return await this.settleRefused(batch, isolated.refused);
  }

  /** A retryable failure: degraded with its reason, the batch is sent again after the backoff. */
  private retryLater(error: StorageError): SendOutcome {
    const logger = this.deps.logger;
    const reason = error.failureReason();
    this.lastError = error.message;
    this.failedAttempts += 1;
    this.degraded = true;
    this.draining = true;
    this.failingSince ??= this.clock.now();
    this.retries.inc();
    const delay = this.retryDelay(error);
    if (reason !== this.failure) {
      const hint = this.deps.explainFailure?.(error);
      if (hint) logger.error({ code: error.code, reason, err: error.message, pending: this.deps.queue.size() }, hint);
    }
    this.failure = reason;
    logger.warn({ code: error.code, reason, err: error.message, attempt: this.failedAttempts, retryInMs: delay, pending: this.deps.queue.size() }, 'storage write failed; will retry');
    return { kind: 'retry', delay };
  }

  /** Keeps the refused points in the quarantine (or counts them dropped without one) and commits the batch. */
  private async settleRefused(batch: readonly T[], refused: readonly Refused<T>[]): Promise<SendOutcome> {
    const { quarantine, describePoint, logger } = this.deps;
    const byReason = new Map<RejectionReason, number>();
    let refusedPoints = 0;
    try {
      for (const { points, error } of refused) {
        const reason = error.rejectionReason();
        if (quarantine) await quarantine.add(points, reason, error.message);
        byReason.set(reason, (byReason.get(reason) ?? 0) + points.length);
        refusedPoints += points.length;
      }
    } catch (err) {
      // Nothing is committed: the batch is sent again, and refused again, once the file is writable.
      return this.retryLater(new StorageError(STORAGE_ERROR_CODES.QUARANTINE, `cannot keep refused points in the quarantine: ${(err as Error).message}`, { cause: err }));
    }
    for (const [reason, n] of byReason) (quarantine ? this.quarantined : this.failed).inc({ reason }, n);
    this.written.inc(undefined, batch.length - refusedPoints);
    try {
      await this.deps.queue.commit(batch.length);
    } catch (err) {
      logger.error({ err: (err as Error).message }, 'committing a refused batch failed; it will be sent again');
      return { kind: 'done' };
    }
    const first = refused[0];
    logger.error(
      {
        code: first?.error.code,
        status: first?.error.status,
        err: first?.error.message,
        points: batch.length,
        refused: refusedPoints,
        reasons: Object.fromEntries(byReason),
        ...(quarantine ? { quarantine: quarantine.location } : {}),
        ...(describePoint && first ? { firstRefused: describePoint(first.points[0]!).slice(0, MAX_DESCRIBED_POINT) } : {}),
      },
      quarantine
        ? 'storage backend refused points for their content; they are kept in the quarantine file, the rest is written'
        : 'storage backend refused points for their content; they are dropped, the rest is written',
    );
    const lastError = this.lastError;
    this.recovered();
    // The refusal stays visible on /healthz until the next failure or success replaces it.
    this.lastError = lastError;
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
