/**
 * The webhook channel (contract: Notifications): POST of the alert event body, with
 * `X-Watchpost-Delivery`, `X-Watchpost-Timestamp` (unix seconds) and, when the channel has a
 * secret, `X-Watchpost-Signature: sha256=<hex HMAC-SHA256(secret, timestamp + "." + body)>`.
 * Network errors, timeouts, 408, 429 and 5xx are worth retrying (Retry-After honoured); any
 * other non-2xx answer fails the delivery for good.
 */
import { createHmac } from 'node:crypto';
import type { Clock } from '../lib/clock.js';
import { httpRequest, isAnswer, outcomeOfStatus, type HttpDeps } from './channels/http.js';
import type { WebhookChannelConfig } from './config.js';
import type { Channel, DeliveryOutcome, Notification } from './outbox.js';
import { ConfiguredChannel } from './channels/configured.js';

export { isRetryableStatus, parseRetryAfter } from './channels/http.js';

export function signWebhook(secret: string, timestamp: string, body: string): string {
  return createHmac('sha256', secret).update(`${timestamp}.${body}`, 'utf8').digest('hex');
}

export interface WebhookChannelDeps extends HttpDeps {
  clock: Clock;
}

export class WebhookChannel extends ConfiguredChannel<WebhookChannelConfig> implements Channel {
  readonly type = 'webhook';
  readonly addressing = 'group';

  constructor(
    config: WebhookChannelConfig,
    private readonly deps: WebhookChannelDeps,
  ) {
    super(config);
  }

  async send(notification: Notification, signal: AbortSignal): Promise<DeliveryOutcome> {
    const { config, deps } = this;
    const now = deps.clock.now();
    const timestamp = String(Math.floor(now / 1000));
    // Configured extra headers first, so they can never replace the contract's own.
    const headers: Record<string, string> = {};
    for (const [name, value] of Object.entries(config.headers)) headers[name.toLowerCase()] = value;
    headers['content-type'] = 'application/json';
    headers['x-watchpost-delivery'] = notification.deliveryId;
    headers['x-watchpost-timestamp'] = timestamp;
    if (config.secret) headers['x-watchpost-signature'] = `sha256=${signWebhook(config.secret, timestamp, notification.body)}`;
    const answer = await httpRequest({ url: config.url, headers, body: notification.body }, config.timeout, signal, deps);
    return isAnswer(answer) ? outcomeOfStatus(answer, now) : answer;
  }
}
