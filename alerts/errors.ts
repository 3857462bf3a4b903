/**
 * Errors of the alert stage. Every error carries a code and the HTTP status the API answers
 * with (contract: HTTP API, `{ "error": "<code>", "message": "…" }`).
 */
export const ALERT_ERRORS = {
  alert_not_found: { statusCode: 404, message: 'no alert with this id' },
  alert_resolved: { statusCode: 409, message: 'the alert is already resolved' },
  invalid_request: { statusCode: 400, message: 'the request is not valid' },
  silence_not_found: { statusCode: 404, message: 'no silence with this id' },
  illegal_case_move: { statusCode: 409, message: 'the case cannot make this move from its current status' },
  department_not_found: { statusCode: 404, message: 'no department with this id' },
  schedule_not_found: { statusCode: 404, message: 'no schedule with this id' },
} as const;

export type AlertErrorCode = keyof typeof ALERT_ERRORS;

export class AlertError extends Error {
  readonly code: AlertErrorCode;
  readonly statusCode: number;
  /** For illegal_case_move: the case's current status (the API's 409 carries it). */
  readonly caseStatus?: string;

  constructor(code: AlertErrorCode, message?: string, caseStatus?: string) {
    super(message ?? ALERT_ERRORS[code].message);
    this.name = 'AlertError';
    this.code = code;
    this.statusCode = ALERT_ERRORS[code].statusCode;
    if (caseStatus !== undefined) this.caseStatus = caseStatus;
  }

  /** Operator errors are answers, not failures: repeating the same request gives the same answer. */
  canRetry(): boolean {
    return false;
  }
}

export function isAlertError(error: unknown): error is AlertError {
  return error instanceof AlertError;
}
