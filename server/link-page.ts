/**
 * What the two phone pages behind signed links share (the ack page /ack/<token> and the
 * work-order page /wo/<token>): the token's shape, level colours, escaping, times in the
 * district's zone, the page shell and the answer's headers. No scripts, no external assets; CSP
 * forbids everything but inline styles and posting back here; no caching, no referrer (the token
 * is in the URL).
 */
import type { FastifyReply } from 'fastify';
import { formatTime } from '../alerts/message-format.js';

/** A link token's shape; anything else is refused before it reaches the signature check. */
export const LINK_TOKEN = /^[A-Za-z0-9_.~-]{20,400}$/;

/** The district's zone; every time on the pages is shown in it, with its UTC offset. */
export const ACK_PAGE_TIME_ZONE = 'Asia/Shanghai';

export const LEVEL_COLOURS = { blue: '#1e6fd9', yellow: '#b88a00', orange: '#e8710a', red: '#d93025' } as const;

/** `UTC+8`, `UTC-3:30` or `UTC`: the zone's offset at that instant. */
function utcOffset(date: Date, timeZone: string): string {
  const name = new Intl.DateTimeFormat('en-US', { timeZone, timeZoneName: 'shortOffset' }).formatToParts(date).find((p) => p.type === 'timeZoneName')?.value ?? 'GMT';
  return name.replace(/^(GMT|UTC)([+-]0(:00)?)?/, 'UTC');
}

/** `2026-12-01 08:30:00 (UTC+8)`. */
export function zonedTime(iso: string, timeZone = ACK_PAGE_TIME_ZONE): string {
  const date = new Date(iso);
  if (Number.isNaN(date.getTime())) return iso;
  return `${formatTime(iso, { language: 'zh', timeZone })} (${utcOffset(date, timeZone)})`;
}

/** Every text that reaches a page passes through here. */
export function escapeHtml(text: unknown): string {
  return String(text).replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]!);
}

/** A whole page: `lang` is the HTML language tag, `style` the page's own CSS. */
export function linkPage(lang: string, title: string, style: string, body: string): string {
  return `<!doctype html><html lang="${lang}"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width,initial-scale=1"><meta name="robots" content="noindex"><title>${escapeHtml(title)} · Watchpost</title><style>${style}</style></head><body><main>${body}</main></body></html>`;
}

export function noticeCard(heading: string, text: string): string {
  return `<div class="card notice"><h1>${escapeHtml(heading)}</h1><p>${escapeHtml(text)}</p></div>`;
}

export function sendLinkPage(reply: FastifyReply, status: number, html: string): FastifyReply {
  return reply
    .code(status)
    .header('content-type', 'text/html; charset=utf-8')
    .header('cache-control', 'no-store')
    .header('referrer-policy', 'no-referrer')
    .header('x-content-type-options', 'nosniff')
    .header('x-frame-options', 'DENY')
    .header('content-security-policy', "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'")
    .send(html);
}
