/** How backend answers are classified: "not now" (kept and retried) versus refused for their content. */
import { describe, expect, it } from 'vitest';
import { httpStorageError, STORAGE_ERROR_CODES, StorageError } from './storage-errors.js';

describe('httpStorageError', () => {
  const cases: Array<[number, string, { code: string; retry: boolean; reason?: string; content?: boolean; dropped?: number; rejection?: string }]> = [
    [401, 'authorization failed', { code: STORAGE_ERROR_CODES.UNAUTHORIZED, retry: true, reason: 'unauthorized' }],
    [401, 'unable to parse authentication credentials', { code: STORAGE_ERROR_CODES.UNAUTHORIZED, retry: true, reason: 'unauthorized' }],
    [403, '"writer" user is not authorized to write to database "telemetry"', { code: STORAGE_ERROR_CODES.FORBIDDEN, retry: true, reason: 'forbidden' }],
    [404, 'database not found: "telemetry"', { code: STORAGE_ERROR_CODES.NOT_FOUND, retry: true, reason: 'database_not_found' }],
    [404, 'bucket "telemetry" not found', { code: STORAGE_ERROR_CODES.NOT_FOUND, retry: true, reason: 'bucket_not_found' }],
    [404, 'organization name "longgang" not found', { code: STORAGE_ERROR_CODES.NOT_FOUND, retry: true, reason: 'org_not_found' }],
    [404, '404 page not found', { code: STORAGE_ERROR_CODES.NOT_FOUND, retry: true, reason: 'not_found' }],
    [408, '', { code: STORAGE_ERROR_CODES.UNAVAILABLE, retry: true, reason: 'unavailable' }],
    [429, 'slow down', { code: STORAGE_ERROR_CODES.UNAVAILABLE, retry: true, reason: 'unavailable' }],
    [500, 'retention policy not found: rp1', { code: STORAGE_ERROR_CODES.UNAVAILABLE, retry: true, reason: 'unavailable' }],
    [503, '', { code: STORAGE_ERROR_CODES.UNAVAILABLE, retry: true, reason: 'unavailable' }],
    [405, 'method not allowed', { code: STORAGE_ERROR_CODES.REQUEST_REFUSED, retry: true, reason: 'request_refused' }],
    [413, 'Request Entity Too Large', { code: STORAGE_ERROR_CODES.TOO_LARGE, retry: false }],
    [
      400,
      'partial write: field type conflict: input field "value" on measurement "m" is type float, already exists as type string dropped=2',
      { code: STORAGE_ERROR_CODES.PARTIAL_WRITE, retry: false, content: true, dropped: 2, rejection: 'field_type_conflict' },
    ],
    [
      400,
      "partial write: unable to parse 'm va lue=2 3': invalid field format dropped=0",
      { code: STORAGE_ERROR_CODES.PARTIAL_WRITE, retry: false, content: true, dropped: 0, rejection: 'parse_error' },
    ],
    [400, "unable to parse 'n va lue=2 3': invalid field format", { code: STORAGE_ERROR_CODES.REJECTED, retry: false, content: true, rejection: 'parse_error' }],
    [400, 'partial write: points beyond retention policy dropped=3', { code: STORAGE_ERROR_CODES.PARTIAL_WRITE, retry: false, content: true, dropped: 3, rejection: 'beyond_retention' }],
    [
      422,
      'failure writing points to database: partial write: field type conflict',
      { code: STORAGE_ERROR_CODES.PARTIAL_WRITE, retry: false, content: true, rejection: 'field_type_conflict' },
    ],
  ];
  for (const [status, message, expected] of cases) {
    it(`HTTP ${status} "${message.slice(0, 50)}"`, () => {
      const error = httpStorageError(status, message);
      expect(error.message).toBe(`HTTP ${status}: ${message || '(no message)'}`);
      expect(error.status).toBe(status);
      expect(error.code).toBe(expected.code);
      expect(error.canRetry()).toBe(expected.retry);
      expect(error.isContentRejection()).toBe(expected.content ?? false);
      if (expected.reason) expect(error.failureReason()).toBe(expected.reason);
      expect(error.dropped).toBe(expected.dropped);
      if (expected.rejection) expect(error.rejectionReason()).toBe(expected.rejection);
    });
  }

  it('takes Retry-After as seconds or a date', () => {
    expect(httpStorageError(503, 'busy', '2').retryAfterMs).toBe(2000);
    expect(httpStorageError(429, 'busy', 'soon').retryAfterMs).toBeUndefined();
  });

  it('classifies transport and local failures as retryable with their reason', () => {
    expect(new StorageError(STORAGE_ERROR_CODES.NETWORK, 'ECONNREFUSED').failureReason()).toBe('unreachable');
    expect(new StorageError(STORAGE_ERROR_CODES.TIMEOUT, 'request timed out').failureReason()).toBe('timeout');
    expect(new StorageError(STORAGE_ERROR_CODES.LOCAL_STORE, 'SQLITE_BUSY').canRetry()).toBe(true);
    expect(new StorageError(STORAGE_ERROR_CODES.QUARANTINE, 'ENOSPC').failureReason()).toBe('quarantine_failed');
    expect(new StorageError(STORAGE_ERROR_CODES.INVALID_POINT, 'NaN').canRetry()).toBe(false);
  });
});
