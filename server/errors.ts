/** Error codes of the HTTP API and the CLI, with the status each maps to. */
export const API_ERRORS = {
  bad_request: 400,
  unauthorized: 401,
  forbidden: 403,
  not_found: 404,
  conflict: 409,
  payload_too_large: 413,
  unavailable: 503,
  internal: 500,
} as const;

export type ApiErrorCode = keyof typeof API_ERRORS;

export class ApiError extends Error {
  readonly status: number;
  constructor(
    /** One of API_ERRORS, or a part's own code (case moves, registry, console). */
    readonly code: string,
    message: string,
    status?: number,
  ) {
    super(message);
    this.status = status ?? (API_ERRORS as Record<string, number>)[code] ?? 500;
  }
}
