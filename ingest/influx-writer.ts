/**
 * Telemetry writer for InfluxDB: readings and alert events become line protocol
 * (line-protocol.ts) and go through the BatchWriter to one of two sinks:
 *
 * - version 1 (InfluxDB 1.x, and anything speaking its API): `POST {url}/write?db=&rp=&precision=ms`
 *   with Node's fetch; credentials as HTTP basic auth (username/password) or `Token <token>`.
 * - version 2 (InfluxDB 2.x/3.x/Cloud, VictoriaMetrics): `POST {url}/api/v2/write?org=&bucket=&precision=ms`
 *   through @influxdata/influxdb-client's WriteApi. Its own batching, flush timer and retries
 *   are switched off (flushInterval 0, maxRetries 0, a buffer larger than our batches) and each
 *   of our batches is written with writeRecords + flush, so the BatchWriter alone owns
 *   ordering and retries, and the body is exactly our lines joined by `\n` (gzipped above
 *   1000 bytes, as the client does by default).
 *
 * At start the sink checks its target: version 1 creates the database when it is missing and
 * the credentials may (`CREATE DATABASE` through `/query`), and says at start when it is missing
 * and they may not; version 2 looks the bucket up and says when it is missing. Either way
 * Watchpost starts, and readings wait in the spool until the backend takes them.
 *
 * A batch InfluxDB refuses for its content is split by what the error names: the measurement of
 * a field type conflict, the lines it could not parse (see BatchWriter).
 */
import { HttpError, InfluxDB, type WriteApi } from '@influxdata/influxdb-client';
import type { InfluxConfig } from './config.js';
import type { Reading } from './reading.js';
import type { AlertEventPoint, StorageStatus, TelemetryWriter } from './storage.js';
import { BatchWriter, type BatchSink, type BatchWriterOptions, type Quarantine, type StorageDeps } from './batch-writer.js';
import { MemoryPointQueue, type PointQueue } from './point-queue.js';
import { encodeAlertEvent, encodeReading } from './line-protocol.js';
import { StorageError, httpStorageError } from './storage-errors.js';
import { checkBucket, ensureDatabase, explainV1Failure, explainV2Failure, serverMessage, transportError, trimSlash } from './influx-target.js';
import type { Logger } from '../lib/logger.js';

export interface InfluxWriter extends TelemetryWriter {
  /** Sends everything pending now (tests, shutdown hooks); resolves early while the backend is failing. */
  flush(): Promise<void>;
}

/** A line of line protocol: a string when made, its UTF-8 bytes when read back from the spool. */
export type Line = string | Buffer;

export interface InfluxWriterOptions extends Partial<BatchWriterOptions> {
  /** The queue between ingest and InfluxDB: the platform passes the durable spool; a bounded in-memory queue by default. */
  queue?: PointQueue<Line> | PointQueue<string>;
  /** Where lines refused for their content go (the platform passes data_dir/quarantine.jsonl); without it they are dropped and counted. */
  quarantine?: Quarantine<Line>;
}

/** A sink and what it holds open. */
interface ClosableSink extends BatchSink<Line> {
  /** Checks (and for version 1 creates) the database or bucket, logging what it finds; never throws. */
  prepare(logger: Logger): Promise<void>;
  /** What an operator should do about a failure that waiting does not fix. */
  explain(error: StorageError): string | undefined;
  close(): Promise<void>;
}

export function createInfluxWriter(config: InfluxConfig, deps: StorageDeps, options: InfluxWriterOptions = {}): InfluxWriter {
  const { queue, quarantine, ...batchOptions } = options;
  const logger = deps.logger.child({ module: 'storage', backend: `influx-v${config.version}` });
  const sink = config.version === 1 ? new InfluxV1Sink(config) : new InfluxV2Sink(config);
  const batch = new BatchWriter<Line>(
    {
      sink,
      // Only strings are appended, so a queue of strings serves as a queue of lines.
      queue: queue ?? new MemoryPointQueue<Line>(),
      logger,
      metrics: deps.metrics,
      ...(deps.clock ? { clock: deps.clock } : {}),
      ...(deps.random ? { random: deps.random } : {}),
      describePoint: (line) => lineText(line),
      explainFailure: (error) => sink.explain(error),
      ...(quarantine ? { quarantine } : {}),
    },
    {
      batchSize: config.batch_size,
      flushInterval: config.flush_interval,
      timeout: config.timeout,
      maxRetryDelay: config.retry_max_delay,
      // The 2.x client's write API holds one buffer, so its requests cannot overlap.
      concurrency: config.version === 1 ? config.concurrency : 1,
      ...batchOptions,
    },
  );
  return new LineProtocolWriter(batch, sink, logger);
}

class LineProtocolWriter implements InfluxWriter {
  constructor(
    private readonly batch: BatchWriter<Line>,
    private readonly sink: ClosableSink,
    private readonly logger: Logger,
  ) {}

  async start(): Promise<void> {
    await this.sink.prepare(this.logger);
    await this.batch.start();
  }

  async stop(): Promise<void> {
    await this.batch.stop();
    await this.sink.close();
  }

  flush(): Promise<void> {
    return this.batch.flush();
  }

  writeReadings(readings: readonly Reading[]): Promise<boolean> {
    const lines: string[] = [];
    let invalid = 0;
    for (const reading of readings) {
      try {
        lines.push(encodeReading(reading));
      } catch (err) {
        invalid += 1;
        if (invalid === 1) {
          this.logger.warn({ err: (err as Error).message, assetId: reading.assetId, sensorId: reading.sensorId, metric: reading.metric }, 'reading cannot be stored; dropped');
        }
      }
    }
    if (invalid > 0) this.batch.countFailed('invalid_point', invalid);
    return this.batch.append(lines);
  }

  writeAlertEvent(event: AlertEventPoint): void {
    let line: string;
    try {
      line = encodeAlertEvent(event);
    } catch (err) {
      this.batch.countFailed('invalid_point');
      this.logger.error({ err: (err as Error).message, alertId: event.alertId }, 'alert event cannot be stored; dropped');
      return;
    }
    void this.batch.append([line], { force: true }).then((ok) => {
      if (ok) return;
      this.batch.countFailed('alert_event_refused');
      this.logger.error({ alertId: event.alertId, event: event.event }, 'storage cannot take the alert event (stopping, or the spool fails); dropped');
    });
  }

  status(): StorageStatus {
    return this.batch.status();
  }
}

const NEWLINE = Buffer.from('\n');

function lineText(line: Line): string {
  return typeof line === 'string' ? line : line.toString('utf8');
}

/** The request body: the lines joined by `\n`, as one buffer when any came from the spool as bytes. */
export function joinLines(batch: readonly Line[]): string | Buffer<ArrayBuffer> {
  if (batch.every((line) => typeof line === 'string')) return batch.join('\n');
  const parts: Buffer[] = new Array<Buffer>(batch.length * 2 - 1);
  for (let i = 0; i < batch.length; i++) {
    const line = batch[i]!;
    if (i > 0) parts[2 * i - 1] = NEWLINE;
    parts[2 * i] = typeof line === 'string' ? Buffer.from(line, 'utf8') : line;
  }
  return Buffer.concat(parts);
}

/** The measurement of a line of line protocol, unescaped (`\,` and `\ ` are part of the name). */
export function lineMeasurement(line: Line): string {
  const text = lineText(line);
  let name = '';
  for (let i = 0; i < text.length; i++) {
    const ch = text[i]!;
    if (ch === '\\' && i + 1 < text.length) {
      name += text[++i];
      continue;
    }
    if (ch === ',' || ch === ' ') break;
    name += ch;
  }
  return name;
}

const CONFLICT_MEASUREMENT = /on measurement "([^"]*)"/;
const UNPARSABLE = "unable to parse '";

/**
 * Splits a batch InfluxDB refused for its content by what the error names: the lines of the
 * measurement with a field type conflict apart from the others (all our lines of one measurement
 * have the same fields, so the conflicting part is then dropped whole), or the lines it quotes as
 * unparsable apart from the others. Empty when the error names nothing useful (the writer halves).
 */
export function splitRefusedLines(batch: readonly Line[], error: StorageError): Line[][] {
  const partition = (bad: (line: Line) => boolean): Line[][] => {
    const good: Line[] = [];
    const refused: Line[] = [];
    for (const line of batch) (bad(line) ? refused : good).push(line);
    return good.length > 0 && refused.length > 0 ? [good, refused] : [];
  };
  const conflict = CONFLICT_MEASUREMENT.exec(error.message);
  if (conflict) {
    const parts = partition((line) => lineMeasurement(line) === conflict[1]);
    if (parts.length > 0) return parts;
  }
  if (error.message.includes(UNPARSABLE)) return partition((line) => error.message.includes(`${UNPARSABLE}${lineText(line)}'`));
  return [];
}

/** InfluxDB 1.x `/write` (and, at start, `/query` to create the database: influx-target.ts). */
class InfluxV1Sink implements ClosableSink {
  private readonly url: string;
  private readonly headers: Record<string, string>;
  private readonly database: string;

  constructor(private readonly config: InfluxConfig) {
    this.database = config.database ?? '';
    const params = new URLSearchParams({ db: this.database, precision: 'ms' });
    if (config.retention_policy) params.set('rp', config.retention_policy);
    this.url = `${trimSlash(config.url)}/write?${params}`;
    this.headers = { 'content-type': 'text/plain; charset=utf-8' };
    if (config.username !== undefined) {
      const credentials = Buffer.from(`${config.username}:${config.password ?? ''}`).toString('base64');
      this.headers.authorization = `Basic ${credentials}`;
    } else if (config.token) {
      this.headers.authorization = `Token ${config.token}`;
    }
  }

  async write(batch: readonly Line[], signal: AbortSignal): Promise<void> {
    let response: Response;
    let body: string;
    try {
      response = await fetch(this.url, { method: 'POST', headers: this.headers, body: joinLines(batch) as string | Uint8Array<ArrayBuffer>, signal });
      body = await response.text();
    } catch (err) {
      throw transportError(err, signal);
    }
    if (response.ok) return;
    throw httpStorageError(response.status, serverMessage(body), response.headers.get('retry-after'));
  }

  split(batch: readonly Line[], error: StorageError): Line[][] {
    return splitRefusedLines(batch, error);
  }

  prepare(logger: Logger): Promise<void> {
    return ensureDatabase(this.config, this.headers.authorization, logger);
  }

  explain(error: StorageError): string | undefined {
    return explainV1Failure(this.config, error);
  }

  async close(): Promise<void> {}
}

/** InfluxDB 2.x `/api/v2/write` through the official client, with its batching and retries off. */
class InfluxV2Sink implements ClosableSink {
  private readonly writeApi: WriteApi;

  constructor(private readonly config: InfluxConfig) {
    const client = new InfluxDB({
      url: trimSlash(config.url),
      ...(config.token ? { token: config.token } : {}),
      timeout: config.timeout,
    });
    this.writeApi = client.getWriteApi(config.org ?? '', config.bucket ?? '', 'ms', {
      // One of our batches never fills the client's buffer, so nothing is sent behind our back.
      batchSize: config.batch_size + 1,
      maxBatchBytes: Number.POSITIVE_INFINITY,
      flushInterval: 0,
      maxRetries: 0,
      // Hand the error to flush()'s caller instead of the client's console logging and retry buffer.
      writeFailed: (error: Error) => Promise.reject(error),
    });
  }

  split(batch: readonly Line[], error: StorageError): Line[][] {
    return splitRefusedLines(batch, error);
  }

  prepare(logger: Logger): Promise<void> {
    return checkBucket(this.config, logger);
  }

  explain(error: StorageError): string | undefined {
    return explainV2Failure(this.config, error);
  }

  async write(batch: readonly Line[], signal: AbortSignal): Promise<void> {
    this.writeApi.writeRecords(batch.map(lineText));
    try {
      await abortable(this.writeApi.flush(), signal);
    } catch (err) {
      if (err instanceof HttpError) {
        const retryAfter = err.headers?.['retry-after'];
        throw httpStorageError(err.statusCode, serverMessage(err.body ?? err.message), Array.isArray(retryAfter) ? retryAfter[0] : retryAfter);
      }
      throw transportError(err, signal);
    }
  }

  async close(): Promise<void> {
    // Nothing is buffered in the client between our batches; dispose releases its state.
    this.writeApi.dispose();
  }
}

/** Rejects when `signal` aborts, even if the client's request is still running (it has its own timeout). */
function abortable<T>(promise: Promise<T>, signal: AbortSignal): Promise<T> {
  if (signal.aborted) return Promise.reject(signal.reason);
  return new Promise<T>((resolve, reject) => {
    const onAbort = () => reject(signal.reason);
    signal.addEventListener('abort', onAbort, { once: true });
    promise.then(
      (value) => {
        signal.removeEventListener('abort', onAbort);
        resolve(value);
      },
      (err: unknown) => {
        signal.removeEventListener('abort', onAbort);
        reject(err);
      },
    );
  });
}
