/**
 * Errors of the RabbitMQ side of cluster mode. Each carries a code; `canRetry()` says whether the
 * same thing may succeed later (the broker back, the confirm in time). A reading whose publish
 * failed with a retryable error is simply not acknowledged to its device, which sends it again.
 */
export const AMQP_ERROR_CODES = {
  /** No connection to RabbitMQ right now (down, unreachable, reconnecting). */
  UNAVAILABLE: 'AMQP_UNAVAILABLE',
  /** The broker refused the login (user, password) or the virtual host. */
  LOGIN_REFUSED: 'AMQP_LOGIN_REFUSED',
  /** The broker is blocking publishers (a memory or disk alarm). */
  BLOCKED: 'AMQP_BLOCKED',
  /** Too many publishes await their confirms already. */
  OVERLOADED: 'AMQP_OVERLOADED',
  /** The broker refused the message (basic.nack). */
  NACKED: 'AMQP_NACKED',
  /** The broker could not route the message: the partition queue does not exist. */
  UNROUTABLE: 'AMQP_UNROUTABLE',
  /** The channel or connection closed before the broker confirmed the message. */
  CHANNEL_CLOSED: 'AMQP_CHANNEL_CLOSED',
  /** No confirm within the time limit. */
  TIMEOUT: 'AMQP_TIMEOUT',
  /** The queues exist with other arguments, or the user may not declare or use them. */
  QUEUE_SETUP: 'AMQP_QUEUE_SETUP',
  /** The message cannot be encoded (too large). */
  TOO_LARGE: 'AMQP_TOO_LARGE',
  /** A delivered message is not a valid partition message. */
  BAD_MESSAGE: 'AMQP_BAD_MESSAGE',
  /** The publisher or consumer was stopped. */
  STOPPED: 'AMQP_STOPPED',
} as const;

export type AmqpErrorCode = (typeof AMQP_ERROR_CODES)[keyof typeof AMQP_ERROR_CODES];

const NOT_RETRYABLE = new Set<AmqpErrorCode>([AMQP_ERROR_CODES.TOO_LARGE, AMQP_ERROR_CODES.BAD_MESSAGE, AMQP_ERROR_CODES.STOPPED]);

export class AmqpError extends Error {
  readonly code: AmqpErrorCode;

  constructor(code: AmqpErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'AmqpError';
    this.code = code;
  }

  canRetry(): boolean {
    return !NOT_RETRYABLE.has(this.code);
  }
}

export function isAmqpError(error: unknown): error is AmqpError {
  return error instanceof AmqpError;
}
