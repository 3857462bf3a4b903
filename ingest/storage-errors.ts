/**
 * Errors of the storage stage (line protocol encoding, batch writers, backends). Each carries a
 * code; `canRetry()` tells the batch writer whether the same batch may be sent again.
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
  /** Any other 4xx: retrying the same batch cannot succeed. */
  REJECTED: 'STORAGE_REJECTED',
  /** InfluxDB wrote part of the batch and dropped the rest (field type conflict, parse error). */
  PARTIAL_WRITE: 'STORAGE_PARTIAL_WRITE',
  /** 413: the batch is too large for the backend; it is split and sent again. */
  TOO_LARGE: 'STORAGE_TOO_LARGE',
  /** The local store failed (SQLite I/O, disk full, busy). */
  LOCAL_STORE: 'STORAGE_LOCAL_STORE',
} as const;

export type StorageErrorCode = (typeof STORAGE_ERROR_CODES)[keyof typeof STORAGE_ERROR_CODES];

const RETRYABLE = new Set<StorageErrorCode>([
  STORAGE_ERROR_CODES.NETWORK,
  STORAGE_ERROR_CODES.TIMEOUT,
  STORAGE_ERROR_CODES.UNAVAILABLE,
  STORAGE_ERROR_CODES.LOCAL_STORE,
]);

export interface StorageErrorDetails {
  /** HTTP status of the backend's answer, when there was one. */
  status?: number;
  /** Delay the backend asked for (Retry-After), in milliseconds. */
  retryAfterMs?: number;
  /** For PARTIAL_WRITE: how many points of the batch the backend dropped, when it says. */
  dropped?: number;
  cause?: unknown;
}

export class StorageError extends Error {
  readonly status?: number;
  readonly retryAfterMs?: number;
  readonly dropped?: number;

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
  }

  canRetry(): boolean {
    return RETRYABLE.has(this.code);
  }
}

const PARTIAL_WRITE = /partial write/i;
const DROPPED = /dropped=(\d+)/;

/**
 * Classifies a backend's HTTP answer the way the contract asks: network errors, 408, 429 and
 * 5xx are retried; 413 splits the batch; any other 4xx fails the batch for good.
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
  if (status === 413) return new StorageError(STORAGE_ERROR_CODES.TOO_LARGE, message, { status });
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
