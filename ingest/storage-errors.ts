/**
 * Errors of the storage stage (line protocol encoding, batch writers, backends). Each carries a
 * code; `canRetry()` tells the batch writer whether the same batch may be sent again.
 *
 * The rule: only a backend that read the points and refused them for what they contain (a parse
 * error, a field type conflict, a point outside the retention policy) makes a batch poison. Every
 * other answer means "not now" (down, overloaded, credentials rejected, database missing): the
 * points stay in the spool and are sent again, because no amount of waiting makes them wrong, and
 * an operator can make the backend take them.
 */
export const STORAGE_ERROR_CODES = {
  /** A point that cannot be encoded (non-finite value, bad timestamp, unusable name). */
  INVALID_POINT: 'STORAGE_INVALID_POINT',
  /** The backend could not be reached (connection refused, reset, DNS). */
  NETWORK: 'STORAGE_NETWORK',
  /** The request took longer than the configured timeout. */
  TIMEOUT: 'STORAGE_TIMEOUT',
  /** 5xx, 408 or 429: the backend is overloaded or failing; the batch is retried. */
  UNAVAILABLE: 'STORAGE_UNAVAILABLE',
  /** 401: the backend does not accept the configured credentials; retried until it does. */
  UNAUTHORIZED: 'STORAGE_UNAUTHORIZED',
  /** 403: the credentials may not write there; retried until they may. */
  FORBIDDEN: 'STORAGE_FORBIDDEN',
  /** 404: the database, bucket or organisation (or the URL) does not exist; retried until it does. */
  NOT_FOUND: 'STORAGE_NOT_FOUND',
  /** Another 4xx that says nothing about the points (405, 409, 411, …): a proxy or URL problem; retried. */
  REQUEST_REFUSED: 'STORAGE_REQUEST_REFUSED',
  /** 400 or 422: the backend refused the points themselves (parse error, field type conflict). */
  REJECTED: 'STORAGE_REJECTED',
  /** InfluxDB wrote part of the batch and dropped the rest (field type conflict, parse error, retention). */
  PARTIAL_WRITE: 'STORAGE_PARTIAL_WRITE',
  /** 413: the batch is too large for the backend; it is split and sent again. */
  TOO_LARGE: 'STORAGE_TOO_LARGE',
  /** The local store failed (SQLite I/O, disk full, busy). */
  LOCAL_STORE: 'STORAGE_LOCAL_STORE',
  /** Refused points could not be written to the quarantine file; the batch stays in the spool. */
  QUARANTINE: 'STORAGE_QUARANTINE',
} as const;

export type StorageErrorCode = (typeof STORAGE_ERROR_CODES)[keyof typeof STORAGE_ERROR_CODES];

const NOT_RETRYABLE = new Set<StorageErrorCode>([STORAGE_ERROR_CODES.INVALID_POINT, STORAGE_ERROR_CODES.REJECTED, STORAGE_ERROR_CODES.PARTIAL_WRITE, STORAGE_ERROR_CODES.TOO_LARGE]);

/** What a 404 says is missing. */
export type MissingTarget = 'database' | 'bucket' | 'org';

/**
 * Why storage is degraded, as /healthz reports it (`storage.reason`), for the retryable failures.
 * `unreachable`, `timeout` and `unavailable` usually heal by themselves; the others need someone
 * to act (credentials, privileges, creating the database or bucket).
 */
export type StorageFailureReason =
  | 'unreachable'
  | 'timeout'
  | 'unavailable'
  | 'unauthorized'
  | 'forbidden'
  | 'database_not_found'
  | 'bucket_not_found'
  | 'org_not_found'
  | 'not_found'
  | 'request_refused'
  | 'local_store'
  | 'quarantine_failed';

/** Failure reasons that waiting does not fix: the platform alert is raised at once for them. */
export const OPERATOR_REASONS: ReadonlySet<StorageFailureReason> = new Set<StorageFailureReason>([
  'unauthorized',
  'forbidden',
  'database_not_found',
  'bucket_not_found',
  'org_not_found',
  'not_found',
]);

/** Why points were refused for their content: the `reason` of quarantine records and of `watchpost_storage_quarantined_total`. */
export type RejectionReason = 'field_type_conflict' | 'parse_error' | 'beyond_retention' | 'rejected';

export interface StorageErrorDetails {
  /** HTTP status of the backend's answer, when there was one. */
  status?: number;
  /** Delay the backend asked for (Retry-After), in milliseconds. */
  retryAfterMs?: number;
  /** For PARTIAL_WRITE: how many points of the batch the backend dropped, when it says. */
  dropped?: number;
  /** For NOT_FOUND: what is missing, when the backend says. */
  missing?: MissingTarget;
  cause?: unknown;
}

export class StorageError extends Error {
  readonly status?: number;
  readonly retryAfterMs?: number;
  readonly dropped?: number;
  readonly missing?: MissingTarget;

  constructor(
    readonly code: StorageErrorCode,
    message: string,
    details: StorageErrorDetails = {},
  ) {
    super(message, details.cause === undefined ? undefined : { cause: details.cause });
    this.name = 'StorageError';
    if (details.status !== undefined) this.status = details.status;
    if (details.retryAfterMs !== undefined) this.retryAfterMs = details.retryAfterMs;
    if (details.dropped !== undefined) this.dropped = details.dropped;
    if (details.missing !== undefined) this.missing = details.missing;
  }

  canRetry(): boolean {
    return !NOT_RETRYABLE.has(this.code);
  }

  /** The backend refused the points for what they contain: the batch is split down to the bad points. */
  isContentRejection(): boolean {
    return this.code === STORAGE_ERROR_CODES.REJECTED || this.code === STORAGE_ERROR_CODES.PARTIAL_WRITE;
  }

  /** The /healthz reason of a retryable failure. */
  failureReason(): StorageFailureReason {
    switch (this.code) {
      case STORAGE_ERROR_CODES.NETWORK:
        return 'unreachable';
      case STORAGE_ERROR_CODES.TIMEOUT:
        return 'timeout';
      case STORAGE_ERROR_CODES.UNAUTHORIZED:
        return 'unauthorized';
      case STORAGE_ERROR_CODES.FORBIDDEN:
        return 'forbidden';
      case STORAGE_ERROR_CODES.NOT_FOUND:
        return this.missing ? `${this.missing}_not_found` : 'not_found';
      case STORAGE_ERROR_CODES.REQUEST_REFUSED:
        return 'request_refused';
      case STORAGE_ERROR_CODES.LOCAL_STORE:
        return 'local_store';
      case STORAGE_ERROR_CODES.QUARANTINE:
        return 'quarantine_failed';
      default:
        return 'unavailable';
    }
  }

  /** Why the points were refused, for a content rejection. */
  rejectionReason(): RejectionReason {
    if (FIELD_TYPE_CONFLICT.test(this.message)) return 'field_type_conflict';
    if (BEYOND_RETENTION.test(this.message)) return 'beyond_retention';
    if (PARSE_ERROR.test(this.message)) return 'parse_error';
    return 'rejected';
  }
}

const PARTIAL_WRITE = /partial write/i;
const DROPPED = /dropped=(\d+)/;
const FIELD_TYPE_CONFLICT = /field type conflict/i;
const BEYOND_RETENTION = /beyond retention/i;
const PARSE_ERROR = /unable to parse|invalid (field|tag|measurement|timestamp|number|boolean)|bad timestamp|missing (field|tag)/i;
const MISSING: ReadonlyArray<[RegExp, MissingTarget]> = [
  [/database not found|database .* not found|database does not exist/i, 'database'],
  [/bucket .*not found|bucket not found/i, 'bucket'],
  [/organization .*not found|org .*not found/i, 'org'],
];

/**
 * Classifies a backend's HTTP answer: 400 and 422 refuse the points themselves (a partial write
 * says how many it dropped); 413 splits the batch; every other answer (401, 403, 404, 408, 429,
 * 5xx, other 4xx) is retried, the points kept in the spool.
 */
export function httpStorageError(status: number, serverMessage: string, retryAfter?: string | null): StorageError {
  const message = `HTTP ${status}: ${serverMessage || '(no message)'}`;
  if (status === 408 || status === 429 || status >= 500) {
    const retryAfterMs = parseRetryAfter(retryAfter);
    return new StorageError(STORAGE_ERROR_CODES.UNAVAILABLE, message, {
      status,
      ...(retryAfterMs === undefined ? {} : { retryAfterMs }),
    });
  }
  if (status === 401) return new StorageError(STORAGE_ERROR_CODES.UNAUTHORIZED, message, { status });
  if (status === 403) return new StorageError(STORAGE_ERROR_CODES.FORBIDDEN, message, { status });
  if (status === 404) {
    const missing = MISSING.find(([pattern]) => pattern.test(serverMessage))?.[1];
    return new StorageError(STORAGE_ERROR_CODES.NOT_FOUND, message, { status, ...(missing ? { missing } : {}) });
  }
  if (status === 413) return new StorageError(STORAGE_ERROR_CODES.TOO_LARGE, message, { status });
  if (status !== 400 && status !== 422) return new StorageError(STORAGE_ERROR_CODES.REQUEST_REFUSED, message, { status });
  if (PARTIAL_WRITE.test(serverMessage)) {
    const dropped = DROPPED.exec(serverMessage);
    return new StorageError(STORAGE_ERROR_CODES.PARTIAL_WRITE, message, {
      status,
      ...(dropped ? { dropped: Number(dropped[1]) } : {}),
    });
  }
  return new StorageError(STORAGE_ERROR_CODES.REJECTED, message, { status });
}

/** Retry-After as seconds or an HTTP date; undefined when absent or unreadable. */
function parseRetryAfter(value: string | null | undefined, now = Date.now()): number | undefined {
  if (!value) return undefined;
  const seconds = Number(value);
  if (Number.isFinite(seconds) && seconds >= 0) return seconds * 1000;
  const date = Date.parse(value);
  return Number.isNaN(date) ? undefined : Math.max(0, date - now);
}
