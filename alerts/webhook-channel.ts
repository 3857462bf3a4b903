/**
 * The webhook channel (contract: Notifications): POST of the alert event body, with
 * `X-Watchpost-Delivery`, `X-Watchpost-Timestamp` (unix seconds) and, when the channel has a
 * secret, `X-Watchpost-Signature: sha256=<hex HMAC-SHA256(secret, timestamp + "." + body)>`.
 * Network errors, timeouts, 408, 429 and 5xx are worth retrying (Retry-After honoured); any
 * other non-2xx answer fails the delivery for good.
 */
import { createHmac } from 'node:crypto';
import type { Clock } from '../lib/clock.js';
import type { WebhookChannelConfig } from './config.js';
import type { Channel, DeliveryOutcome, Notification } from './outbox.js';

export function signWebhook(secret: string, timestamp: string, body: string): string {
  return createHmac('sha256', secret).update(`${timestamp}.${body}`, 'utf8').digest('hex');
}

/** Retry-After as delta-seconds or an HTTP date, in ms from now; undefined when absent or unreadable. */
export function parseRetryAfter(value: string | null, now: number): number | undefined {
  if (value === null) return undefined;
  const text = value.trim();
  if (/^\d+$/.test(text)) return Number(text) * 1000;
  const date = Date.parse(text);
  return Number.isNaN(date) ? undefined : Math.max(0, date - now);
}

export function isRetryableStatus(status: number): boolean {
  return status === 408 || status === 429 || status >= 500;
}

export interface WebhookChannelDeps {
  clock: Clock;
  fetch?: typeof fetch;
}

export class WebhookChannel implements Channel {
  readonly type = 'webhook';

  constructor(
    private readonly config: WebhookChannelConfig,
    private readonly deps: WebhookChannelDeps,
  ) {}

  get id(): string {
    return this.config.id;
  }

  get maxAttempts(): number {
    return this.config.max_attempts;
  }

  async send(notification: Notification, signal: AbortSignal): Promise<DeliveryOutcome> {
    const { config, deps } = this;
    const now = deps.clock.now();
    const timestamp = String(Math.floor(now / 1000));
    // Configured extra headers first, so they can never replace the contract's own.
    const headers = new Headers(config.headers);
    headers.set('Content-Type', 'application/json');
    headers.set('X-Watchpost-Delivery', notification.deliveryId);
    headers.set('X-Watchpost-Timestamp', timestamp);
    if (config.secret) headers.set('X-Watchpost-Signature', `sha256=${signWebhook(config.secret, timestamp, notification.body)}`);
    const timeout = AbortSignal.timeout(config.timeout);
    let response: Response;
    try {
      response = await (deps.fetch ?? fetch)(config.url, {
        method: 'POST',
        headers,
        body: notification.body,
        redirect: 'manual',
        signal: AbortSignal.any([signal, timeout]),
      });
    } catch (error) {
      if (timeout.aborted) return { outcome: 'retry', error: `no answer within ${config.timeout} ms` };
      return { outcome: 'retry', error: describeFetchError(error) };
    }
    const snippet = await readSnippet(response);
    const status = response.status;
    if (status >= 200 && status < 300) return { outcome: 'delivered', statusCode: status };
    const error = `HTTP ${status}${snippet ? `: ${snippet}` : ''}`;
    if (isRetryableStatus(status)) {
      const retryAfterMs = parseRetryAfter(response.headers.get('retry-after'), now);
      return { outcome: 'retry', error, statusCode: status, ...(retryAfterMs !== undefined ? { retryAfterMs } : {}) };
    }
    return { outcome: 'failed', error, statusCode: status };
  }
}

/** Reads (and so releases) the response body, keeping its first 200 characters for the timeline. */
async function readSnippet(response: Response): Promise<string> {
  try {
    const text = await response.text();
    return text.length > 200 ? `${text.slice(0, 200)}…` : text;
  } catch {
    return '';
  }
}

function describeFetchError(error: unknown): string {
  if (error instanceof Error) {
    const cause = (error as Error & { cause?: unknown }).cause;
    if (cause instanceof Error) {
      const code = (cause as Error & { code?: string }).code;
      return code ? `${code}: ${cause.message}` : cause.message;
    }
    return error.message;
  }
  return String(error);
}
