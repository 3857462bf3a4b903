/**
 * When a failed notification is tried again: exponential backoff with jitter, a receiver's
 * Retry-After honoured up to a bound, until the notification is `max_age` old or the channel's
 * `max_attempts` were made; then it has failed for good.
 */
import type { Channel, DeliveryOutcome } from './outbox.js';
import type { OutboxStatus } from './store.js';

export interface RetryOptions {
  /** Delay after the first failed attempt; doubles with every further attempt. */
  baseDelayMs: number;
  maxDelayMs: number;
  /** Fraction of the delay that is random (0 = none, 1 = anywhere between 0 and the delay). */
  jitter: number;
  /** Upper bound for a receiver's Retry-After. */
  maxRetryAfterMs: number;
}

export const DEFAULT_RETRY_OPTIONS: RetryOptions = {
  baseDelayMs: 1_000,
  maxDelayMs: 5 * 60_000,
  jitter: 0.5,
  maxRetryAfterMs: 60 * 60_000,
};

export const DEFAULT_MAX_AGE_MS = 60 * 60_000;

/** Delay before attempt `attempt + 1`, after `attempt` attempts failed. */
export function retryDelay(attempt: number, options: RetryOptions, random: () => number = Math.random, retryAfterMs?: number): number {
  if (retryAfterMs !== undefined) return Math.min(Math.max(0, retryAfterMs), options.maxRetryAfterMs);
  const exponential = Math.min(options.maxDelayMs, options.baseDelayMs * 2 ** Math.max(0, attempt - 1));
  return Math.round(exponential * (1 - options.jitter * random()));
}

/** What an attempt's outcome means for the notification. */
export interface Verdict {
  status: OutboxStatus;
  type: 'delivered' | 'retry' | 'delivery_failed';
  error: string | null;
  nextAttemptAt: number;
}

/**
 * What an attempt's outcome means for a notification made at `createdAt` whose next attempt was
 * `previousNext`: delivered, failed for good (a permanent failure, out of attempts, or past the
 * channel's max_age), or pending with the time of the next attempt.
 */
export function verdict(
  attempt: number,
  outcome: DeliveryOutcome,
  channel: Channel | undefined,
  createdAt: number,
  now: number,
  previousNext: number,
  retry: RetryOptions,
  random?: () => number,
): Verdict {
  if (outcome.outcome === 'delivered') return { status: 'delivered', type: 'delivered', error: null, nextAttemptAt: previousNext };
  if (outcome.outcome === 'failed' || !channel) return { status: 'failed', type: 'delivery_failed', error: outcome.error, nextAttemptAt: previousNext };
  const deadline = createdAt + (channel.maxAgeMs ?? DEFAULT_MAX_AGE_MS);
  const outOfAttempts = channel.maxAttempts !== undefined && attempt >= channel.maxAttempts;
  if (outOfAttempts || now >= deadline) {
    const why = outOfAttempts ? `gave up after ${attempt} attempts` : `gave up after ${attempt} attempts in ${Math.round((now - createdAt) / 1000)} s (max_age)`;
    return { status: 'failed', type: 'delivery_failed', error: `${outcome.error} (${why})`, nextAttemptAt: previousNext };
  }
  const delay = retryDelay(attempt, retry, random, outcome.retryAfterMs);
  return { status: 'pending', type: 'retry', error: outcome.error, nextAttemptAt: Math.min(now + delay, deadline) };
}
