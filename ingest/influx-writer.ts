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
import { HttpError, InfluxDB, RequestTimedOutError, type WriteApi } from '@influxdata/influxdb-client';
import type { InfluxConfig } from './config.js';
import type { Reading } from './reading.js';
import type { AlertEventPoint, StorageStatus, TelemetryWriter } from './storage.js';
import { BatchWriter, type BatchSink, type BatchWriterOptions, type Quarantine, type StorageDeps } from './batch-writer.js';
import { MemoryPointQueue, type PointQueue } from './point-queue.js';
import { encodeAlertEvent, encodeReading } from './line-protocol.js';
import { STORAGE_ERROR_CODES, StorageError, httpStorageError } from './storage-errors.js';
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
      queue: (queue as PointQueue<Line> | undefined) ?? new MemoryPointQueue<Line>(),
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
          this.logger.warn(
            { err: (err as Error).message, assetId: reading.assetId, sensorId: reading.sensorId, metric: reading.metric },
            'reading cannot be stored; dropped',
          );
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
  if (batch.every((line) => typeof line === 'string')) return (batch as readonly string[]).join('\n');
  const parts: Buffer[] = new Array<Buffer>(batch.length * 2 - 1);
  for (let i = 0; i < batch.length; i++) {
    const line = batch[i]!;
    if (i > 0) parts[2 * i - 1] = NEWLINE;
    parts[2 * i] = typeof line === 'string' ? Buffer.from(line, 'utf8') : line;
  }
  return Buffer.concat(parts);
}

function trimSlash(url: string): string {
  return url.endsWith('/') ? url.replace(/\/+$/, '') : url;
}

/** The message of an InfluxDB error body: 1.x `{"error"}`, 2.x `{"code","message"}`, or the text itself. */
function serverMessage(body: string): string {
  try {
    const json = JSON.parse(body) as { error?: unknown; message?: unknown };
    if (typeof json.error === 'string') return json.error;
    if (typeof json.message === 'string') return json.message;
  } catch {
    // not JSON: use the text
  }
  return body.trim().slice(0, 1000);
}

/** A failed fetch or client call: timeout or network, both retryable. */
function transportError(err: unknown, signal: AbortSignal): StorageError {
  const e = err as { name?: string; message?: string; cause?: { code?: string; message?: string } };
  if (signal.aborted || e.name === 'TimeoutError' || e.name === 'AbortError' || err instanceof RequestTimedOutError) {
    return new StorageError(STORAGE_ERROR_CODES.TIMEOUT, 'request timed out', { cause: err });
  }
  const detail = e.cause?.code ?? e.cause?.message ?? (e as { code?: string }).code ?? e.message ?? String(err);
  return new StorageError(STORAGE_ERROR_CODES.NETWORK, `cannot reach InfluxDB: ${detail}`, { cause: err });
}

/** An InfluxQL identifier in double quotes. */
export function quoteIdentifier(name: string): string {
  return `"${name.replace(/\\/g, '\\\\').replace(/"/g, '\\"')}"`;
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

const NEVER_ABORTED = new AbortController().signal;

/** The answer of one request that is not a write. */
interface Answer {
  status: number;
  body: string;
}

/** InfluxDB 1.x `/write`, and `/query` to create the database at start. */
class InfluxV1Sink implements ClosableSink {
  private readonly baseUrl: string;
  private readonly url: string;
  private readonly headers: Record<string, string>;
  private readonly database: string;

  constructor(private readonly config: InfluxConfig) {
    this.database = config.database ?? '';
    const params = new URLSearchParams({ db: this.database, precision: 'ms' });
    if (config.retention_policy) params.set('rp', config.retention_policy);
    this.baseUrl = trimSlash(config.url);
    this.url = `${this.baseUrl}/write?${params}`;
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

  /**
   * Creates the database when it is missing and the credentials may. Only at start: creating it
   * later could race an operator restoring it (a restore refuses an existing database).
   */
  async prepare(logger: Logger): Promise<void> {
    const database = this.database;
    const user = this.config.username;
    const log = logger.child({ database, ...(user !== undefined ? { username: user } : {}) });
    try {
      const shown = await this.query('SHOW DATABASES');
      if (shown.status === 401) {
        log.error({ err: `HTTP 401: ${serverMessage(shown.body)}` }, this.explain(new StorageError(STORAGE_ERROR_CODES.UNAUTHORIZED, 'HTTP 401'))!);
        return;
      }
      if (shown.status === 200 && databaseNames(shown.body)?.includes(database)) {
        log.debug('InfluxDB database exists');
        return;
      }
      const created = await this.query(`CREATE DATABASE ${quoteIdentifier(database)}`);
      const error = statementError(created);
      if (error === undefined) {
        log.info(`created the InfluxDB database "${database}" (it did not exist)`);
        return;
      }
      log.error(
        { status: created.status, err: error },
        `InfluxDB database "${database}" does not exist${user !== undefined ? ` (or user "${user}" has no privilege on it)` : ''}, and these credentials may not create it: ` +
          `as an InfluxDB admin run  CREATE DATABASE ${quoteIdentifier(database)}` +
          (user !== undefined ? `  and  GRANT WRITE ON ${quoteIdentifier(database)} TO ${quoteIdentifier(user)}` : '') +
          ` (e.g. influx -execute '…'); until then readings are kept in the spool and /healthz reports degraded`,
      );
    } catch (err) {
      log.warn(
        { err: transportError(err, NEVER_ABORTED).message },
        'InfluxDB is not reachable at start, so its database could not be checked; readings are kept in the spool until it answers',
      );
    }
  }

  explain(error: StorageError): string | undefined {
    const database = quoteIdentifier(this.database);
    const user = this.config.username;
    switch (error.failureReason()) {
      case 'unauthorized':
        return 'InfluxDB rejects the credentials (storage.influx.username and password, or token): fix them or the InfluxDB user; readings are kept in the spool until writes succeed';
      case 'forbidden':
        return `InfluxDB does not let ${user !== undefined ? `user "${user}"` : 'these credentials'} write to database ${database}: as an InfluxDB admin run  GRANT WRITE ON ${database} TO ${quoteIdentifier(user ?? '<user>')}; readings are kept in the spool meanwhile`;
      case 'database_not_found':
        return `InfluxDB database ${database} does not exist: as an InfluxDB admin run  CREATE DATABASE ${database}  (e.g. influx -execute '…'); readings are kept in the spool meanwhile`;
      case 'not_found':
        return `InfluxDB answers 404 at ${this.baseUrl}/write: check storage.influx.url; readings are kept in the spool meanwhile`;
      default:
        return undefined;
    }
  }

  private async query(influxql: string): Promise<Answer> {
    const headers: Record<string, string> = { 'content-type': 'application/x-www-form-urlencoded' };
    if (this.headers.authorization) headers.authorization = this.headers.authorization;
    const response = await fetch(`${this.baseUrl}/query`, {
      method: 'POST',
      headers,
      body: new URLSearchParams({ q: influxql }).toString(),
      signal: AbortSignal.timeout(this.config.timeout),
    });
    return { status: response.status, body: await response.text() };
  }

  async close(): Promise<void> {}
}

/** The names in a `SHOW DATABASES` answer; undefined when it is not one. */
function databaseNames(body: string): string[] | undefined {
  try {
    const json = JSON.parse(body) as { results?: Array<{ series?: Array<{ values?: unknown[][] }> }> };
    const values = json.results?.[0]?.series?.[0]?.values ?? (json.results?.[0] ? [] : undefined);
    return values?.map((row) => String(row[0]));
  } catch {
    return undefined;
  }
}

/** The error of a `/query` answer (HTTP or statement), undefined when it succeeded. */
function statementError(answer: Answer): string | undefined {
  let statement: string | undefined;
  try {
    const json = JSON.parse(answer.body) as { error?: unknown; results?: Array<{ error?: unknown }> };
    if (typeof json.error === 'string') statement = json.error;
    else if (typeof json.results?.[0]?.error === 'string') statement = json.results[0].error;
  } catch {
    if (answer.status !== 200) statement = answer.body.trim().slice(0, 1000);
  }
  if (answer.status === 200 && statement === undefined) return undefined;
  return `HTTP ${answer.status}: ${statement ?? '(no message)'}`;
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

  /** Looks the bucket up (`GET /api/v2/buckets?org=&name=`) and says when it or the organisation is missing. */
  async prepare(logger: Logger): Promise<void> {
    const { org = '', bucket = '' } = this.config;
    const log = logger.child({ org, bucket });
    let answer: Answer;
    try {
      const headers: Record<string, string> = this.config.token ? { authorization: `Token ${this.config.token}` } : {};
      const response = await fetch(`${trimSlash(this.config.url)}/api/v2/buckets?${new URLSearchParams({ org, name: bucket })}`, {
        headers,
        signal: AbortSignal.timeout(this.config.timeout),
      });
      answer = { status: response.status, body: await response.text() };
    } catch (err) {
      log.warn({ err: transportError(err, NEVER_ABORTED).message }, 'InfluxDB is not reachable at start, so its bucket could not be checked; readings are kept in the spool until it answers');
      return;
    }
    let buckets: unknown[] | undefined;
    try {
      const json = JSON.parse(answer.body) as { buckets?: unknown };
      if (Array.isArray(json.buckets)) buckets = json.buckets;
    } catch {
      // not JSON: not InfluxDB 2 (VictoriaMetrics has no bucket API)
    }
    const error = answer.status === 200 ? undefined : httpStorageError(answer.status, serverMessage(answer.body));
    if (answer.status === 200 && buckets !== undefined && buckets.length > 0) {
      log.debug('InfluxDB bucket exists');
    } else if (answer.status === 200 && buckets !== undefined) {
      log.error(this.explain(new StorageError(STORAGE_ERROR_CODES.NOT_FOUND, 'bucket not found', { missing: 'bucket' }))!);
    } else if (error && (error.code === STORAGE_ERROR_CODES.UNAUTHORIZED || error.missing === 'org')) {
      log.error({ err: error.message }, this.explain(error)!);
    } else {
      // A token that may only write, or a server without the bucket API: the first write tells.
      log.debug({ status: answer.status }, 'InfluxDB bucket could not be looked up at start');
    }
  }

  explain(error: StorageError): string | undefined {
    const { org, bucket } = this.config;
    switch (error.failureReason()) {
      case 'unauthorized':
        return 'InfluxDB rejects the token (storage.influx.token): fix it; readings are kept in the spool until writes succeed';
      case 'forbidden':
        return `the InfluxDB token may not write to bucket "${bucket}" in org "${org}": give it write permission on the bucket; readings are kept in the spool meanwhile`;
      case 'bucket_not_found':
        return `InfluxDB bucket "${bucket}" does not exist in org "${org}": create it (influx bucket create --name ${bucket} --org ${org}); readings are kept in the spool meanwhile`;
      case 'org_not_found':
        return `InfluxDB organization "${org}" does not exist: check storage.influx.org; readings are kept in the spool meanwhile`;
      case 'not_found':
        return `InfluxDB answers 404 at ${trimSlash(this.config.url)}/api/v2/write: check storage.influx.url; readings are kept in the spool meanwhile`;
      default:
        return undefined;
    }
  }

  async write(batch: readonly Line[], signal: AbortSignal): Promise<void> {
    this.writeApi.writeRecords(batch.map(lineText));
    try {
      await abortable(this.writeApi.flush(), signal);
    } catch (err) {
      if (err instanceof HttpError) {
        const retryAfter = err.headers?.['retry-after'];
        throw httpStorageError(
          err.statusCode,
          serverMessage(err.body ?? err.message),
          Array.isArray(retryAfter) ? retryAfter[0] : retryAfter,
        );
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
