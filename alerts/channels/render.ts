/** Renders what a channel sends from a notification or a digest, in the channel's language. */
import type { ContactConfig, Language } from '../config.js';
import { parseEventBody, type AlertEventBody } from '../event-body.js';
import { renderDigest, renderNotification, templateVars, type FormatOptions, type RenderedMessage } from '../message-format.js';
import type { Notification } from '../outbox.js';

export interface RenderedNotification {
  message: RenderedMessage;
  /** The bodies rendered (one, or the digest's). */
  bodies: AlertEventBody[];
}

export function formatOptions(config: { language: Language; time_zone: string }): FormatOptions {
  return { language: config.language, timeZone: config.time_zone };
}

export function renderFor(n: Notification, options: FormatOptions): RenderedNotification {
  if (n.digest && n.digest.length > 0) {
    const bodies = n.digest.map((item) => parseEventBody(item.body));
    return { message: renderDigest(bodies, options), bodies };
  }
  const body = parseEventBody(n.body);
  return { message: renderNotification(body, options), bodies: [body] };
}

/** Template variables for one recipient (SMS templates). */
export function varsFor(n: Notification, rendered: RenderedNotification, options: FormatOptions, recipient?: ContactConfig): Record<string, string> {
  return templateVars(rendered.bodies[0]!, rendered.message, options, recipient, n.deliveryId);
}

/** Mainland numbers may be written without +86; providers that need E.164 get it. */
export function e164(phone: string): string {
  if (phone.startsWith('+')) return phone;
  if (phone.startsWith('00')) return `+${phone.slice(2)}`;
  return `+86${phone}`;
}

/** A mainland mobile number without country code, for robots' @-mentions; others as given. */
export function localMobile(phone: string): string {
  return phone.replace(/^\+86/, '');
}
