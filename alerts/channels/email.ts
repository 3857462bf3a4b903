/**
 * E-mail through SMTP (nodemailer): one message per contact, plain text and HTML, Message-ID
 * `<delivery_id@watchpost>` and `X-Watchpost-Delivery`, so a repeat after a crash is recognisable.
 * SMTP's own rule decides retries: 4yz answers and connection problems are retried, 5yz answers
 * and authentication failures fail for good.
 */
import nodemailer, { type Transporter } from 'nodemailer';
import type { ContactConfig, EmailChannelConfig } from '../config.js';
import type { RenderedMessage } from '../message-format.js';
import type { Channel, DeliveryOutcome, Notification } from '../outbox.js';
import { formatOptions, renderFor } from './render.js';
import { ConfiguredChannel } from './configured.js';

const LEVEL_COLOURS = { blue: '#1e6fd9', yellow: '#d4a000', orange: '#e8710a', red: '#d93025' } as const;

export function escapeHtml(text: string): string {
  return text.replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]!);
}

export function emailHtml(message: RenderedMessage, language: 'zh' | 'en'): string {
  const [title, ...lines] = message.text.split('\n');
  const ack = language === 'zh' ? '确认告警' : 'Acknowledge';
  const colour = LEVEL_COLOURS[message.level];
  return [
    `<!doctype html><html lang="${language === 'zh' ? 'zh-CN' : 'en'}"><body style="font-family:sans-serif;margin:0;padding:16px">`,
    `<div style="border-left:6px solid ${colour};padding:8px 12px"><h2 style="margin:0 0 8px;color:${colour}">${escapeHtml(title ?? '')}</h2>`,
    `<pre style="white-space:pre-wrap;font-family:inherit;margin:0">${escapeHtml(lines.join('\n'))}</pre>`,
    message.ackUrl
      ? `<p><a href="${escapeHtml(message.ackUrl)}" style="display:inline-block;padding:10px 18px;background:${colour};color:#fff;text-decoration:none;border-radius:4px">${ack}</a></p>`
      : '',
    '</div></body></html>',
  ].join('');
}

export interface EmailMessage {
  from: string;
  to: string;
  subject: string;
  text: string;
  html: string;
  messageId: string;
  headers: Record<string, string>;
}

export function emailMessage(config: EmailChannelConfig, n: Notification, recipient: ContactConfig): EmailMessage {
  const { message } = renderFor(n, formatOptions(config));
  return {
    from: config.from,
    to: recipient.email!,
    subject: message.title,
    text: message.text,
    html: emailHtml(message, config.language),
    messageId: `<${n.deliveryId}@watchpost>`,
    headers: { 'X-Watchpost-Delivery': n.deliveryId },
  };
}

const RETRY_CODES = new Set(['ECONNECTION', 'ETIMEDOUT', 'ESOCKET', 'EDNS', 'ECONNRESET', 'ECONNREFUSED', 'EPROTOCOL']);

export function emailOutcome(error: unknown): DeliveryOutcome {
  const e = error as { code?: string; responseCode?: number; response?: string; message?: string };
  const text = `${e.code ? `${e.code}: ` : ''}${(e.response ?? e.message ?? String(error)).slice(0, 300)}`;
  if (typeof e.responseCode === 'number') {
    if (e.responseCode >= 400 && e.responseCode < 500) return { outcome: 'retry', error: text, statusCode: e.responseCode };
    return { outcome: 'failed', error: text, statusCode: e.responseCode };
  }
  if (e.code === 'EAUTH' || e.code === 'EENVELOPE' || e.code === 'EMESSAGE') return { outcome: 'failed', error: text };
  if (e.code && RETRY_CODES.has(e.code)) return { outcome: 'retry', error: text };
  return { outcome: 'retry', error: text };
}

export class EmailChannel extends ConfiguredChannel<EmailChannelConfig> implements Channel {
  readonly type = 'email';
  readonly addressing = 'person';
  private transporter: Transporter | undefined;

  constructor(config: EmailChannelConfig) {
    super(config);
  }

  private transport(): Transporter {
    if (!this.transporter) {
      const { smtp, timeout } = this.config;
      this.transporter = nodemailer.createTransport({
        host: smtp.host,
        port: smtp.port ?? (smtp.secure ? 465 : 587),
        secure: smtp.secure,
        requireTLS: smtp.require_tls,
        ...(smtp.user ? { auth: { user: smtp.user, pass: smtp.pass! } } : {}),
        connectionTimeout: timeout,
        greetingTimeout: timeout,
        socketTimeout: timeout,
      });
    }
    return this.transporter;
  }

  async send(n: Notification, signal: AbortSignal): Promise<DeliveryOutcome> {
    const recipient = n.recipients.find((r) => r.email !== undefined);
    if (!recipient) return { outcome: 'failed', error: 'no recipient with an e-mail address' };
    if (signal.aborted) return { outcome: 'retry', error: 'aborted' };
    try {
      const info = (await this.transport().sendMail(emailMessage(this.config, n, recipient))) as { rejected?: unknown[] };
      if (info.rejected && info.rejected.length > 0) return { outcome: 'failed', error: `recipient refused: ${String(info.rejected[0])}` };
      return { outcome: 'delivered' };
    } catch (error) {
      return emailOutcome(error);
    }
  }

  close(): void {
    this.transporter?.close();
    this.transporter = undefined;
  }
}
