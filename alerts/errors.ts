/**
 * Errors of the alert stage. Every error carries a code and the HTTP status the API answers
 * with (contract: HTTP API, `{ "error": "<code>", "message": "…" }`).
 */
export const ALERT_ERRORS = {
  alert_not_found: { statusCode: 404, message: 'no alert with this id' },
  alert_resolved: { statusCode: 409, message: 'the alert is already resolved' },
  invalid_request: { statusCode: 400, message: 'the request is not valid' },
  silence_not_found: { statusCode: 404, message: 'no silence with this id' },
} as const;

export type AlertErrorCode = keyof typeof ALERT_ERRORS;

export class AlertError extends Error {
  readonly code: AlertErrorCode;
  readonly statusCode: number;

  constructor(code: AlertErrorCode, message?: string) {
    super(message ?? ALERT_ERRORS[code].message);
    this.name = 'AlertError';
    this.code = code;
    this.statusCode = ALERT_ERRORS[code].statusCode;
  }

  /** Operator errors are answers, not failures: repeating the same request gives the same answer. */
  canRetry(): boolean {
    return false;
  }
}

export function isAlertError(error: unknown): error is AlertError {
  return error instanceof AlertError;
}
