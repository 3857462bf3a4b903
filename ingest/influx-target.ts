/**
 * What a writer needs to know about the InfluxDB it writes to, apart from writing: the URL,
 * error bodies and transport errors of its HTTP API, the checks at start (version 1: the database
 * is created when it is missing and the credentials may, `SHOW DATABASES` then `CREATE DATABASE`
 * through `/query`; version 2: the bucket is looked up) and what an operator should do about a
 * failure that waiting does not fix (rejected credentials, no privilege, a missing database or
 * bucket). The checks only log: Watchpost starts either way, and readings wait in the spool.
 */
import { RequestTimedOutError } from '@influxdata/influxdb-client';
import type { InfluxConfig } from './config.js';
import { STORAGE_ERROR_CODES, StorageError, httpStorageError } from './storage-errors.js';
import type { Logger } from '../lib/logger.js';

export function trimSlash(url: string): string {
  return url.endsWith('/') ? url.replace(/\/+$/, '') : url;
}

/** The message of an InfluxDB error body: 1.x `{"error"}`, 2.x `{"code","message"}`, or the text itself. */
export function serverMessage(body: string): string {
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
export function transportError(err: unknown, signal: AbortSignal): StorageError {
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

const NEVER_ABORTED = new AbortController().signal;

/** The answer of one request that is not a write. */
interface Answer {
  status: number;
  body: string;
}

/**
 * Version 1: creates the database when it is missing and the credentials may, and says how to
 * create it when they may not. Only at start: creating it later could race an operator restoring
 * it (a restore refuses an existing database). Never throws.
 */
export async function ensureDatabase(config: InfluxConfig, authorization: string | undefined, logger: Logger): Promise<void> {
  const database = config.database ?? '';
  const user = config.username;
  const query = (influxql: string) => influxQuery(config, authorization, influxql);
  const log = logger.child({ database, ...(user !== undefined ? { username: user } : {}) });
  try {
    const shown = await query('SHOW DATABASES');
    if (shown.status === 401) {
      log.error({ err: `HTTP 401: ${serverMessage(shown.body)}` }, explainV1Failure(config, new StorageError(STORAGE_ERROR_CODES.UNAUTHORIZED, 'HTTP 401')));
      return;
    }
    if (shown.status === 200 && databaseNames(shown.body)?.includes(database)) {
      log.debug('InfluxDB database exists');
      return;
    }
    const created = await query(`CREATE DATABASE ${quoteIdentifier(database)}`);
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

/** Version 1: what an operator should do about a failure that waiting does not fix. */
export function explainV1Failure(config: InfluxConfig, error: StorageError): string | undefined {
  const database = quoteIdentifier(config.database ?? '');
  const user = config.username;
  switch (error.failureReason()) {
    case 'unauthorized':
      return 'InfluxDB rejects the credentials (storage.influx.username and password, or token): fix them or the InfluxDB user; readings are kept in the spool until writes succeed';
    case 'forbidden':
      return `InfluxDB does not let ${user !== undefined ? `user "${user}"` : 'these credentials'} write to database ${database}: as an InfluxDB admin run  GRANT WRITE ON ${database} TO ${quoteIdentifier(user ?? '<user>')}; readings are kept in the spool meanwhile`;
    case 'database_not_found':
      return `InfluxDB database ${database} does not exist: as an InfluxDB admin run  CREATE DATABASE ${database}  (e.g. influx -execute '…'); readings are kept in the spool meanwhile`;
    case 'not_found':
      return `InfluxDB answers 404 at ${trimSlash(config.url)}/write: check storage.influx.url; readings are kept in the spool meanwhile`;
    default:
      return undefined;
  }
}

async function influxQuery(config: InfluxConfig, authorization: string | undefined, influxql: string): Promise<Answer> {
  const headers: Record<string, string> = { 'content-type': 'application/x-www-form-urlencoded' };
  if (authorization) headers.authorization = authorization;
  const response = await fetch(`${trimSlash(config.url)}/query`, {
    method: 'POST',
    headers,
    body: new URLSearchParams({ q: influxql }).toString(),
    signal: AbortSignal.timeout(config.timeout),
  });
  return { status: response.status, body: await response.text() };
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

/** Version 2: looks the bucket up (`GET /api/v2/buckets?org=&name=`) and says when it or the organisation is missing. Never throws. */
export async function checkBucket(config: InfluxConfig, logger: Logger): Promise<void> {
  const { org = '', bucket = '' } = config;
  const log = logger.child({ org, bucket });
  let answer: Answer;
  try {
    const headers: Record<string, string> = config.token ? { authorization: `Token ${config.token}` } : {};
    const response = await fetch(`${trimSlash(config.url)}/api/v2/buckets?${new URLSearchParams({ org, name: bucket })}`, {
      headers,
      signal: AbortSignal.timeout(config.timeout),
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
    log.error(explainV2Failure(config, new StorageError(STORAGE_ERROR_CODES.NOT_FOUND, 'bucket not found', { missing: 'bucket' }))!);
  } else if (error && (error.code === STORAGE_ERROR_CODES.UNAUTHORIZED || error.missing === 'org')) {
    log.error({ err: error.message }, explainV2Failure(config, error));
  } else {
    // A token that may only write, or a server without the bucket API: the first write tells.
    log.debug({ status: answer.status }, 'InfluxDB bucket could not be looked up at start');
  }
}

/** Version 2: what an operator should do about a failure that waiting does not fix. */
export function explainV2Failure(config: InfluxConfig, error: StorageError): string | undefined {
  const { org, bucket } = config;
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
      return `InfluxDB answers 404 at ${trimSlash(config.url)}/api/v2/write: check storage.influx.url; readings are kept in the spool meanwhile`;
    default:
      return undefined;
  }
}
