/**
 * The HTTP side every HTTP channel shares: one request with a timeout and the caller's abort
 * signal, no redirects followed, the answer read whole (and so released), network errors and
 * timeouts turned into `retry` outcomes, and the contract's retry rule for statuses.
 */
import type { DeliveryOutcome } from '../outbox.js';

export interface HttpRequest {
  url: string;
  method?: 'POST' | 'GET';
  headers: Record<string, string>;
  body?: string;
}

export interface HttpAnswer {
  status: number;
  headers: Headers;
  text: string;
}

export interface HttpDeps {
  fetch?: typeof fetch;
}

/** Largest answer body read; the rest is discarded. */
const MAX_ANSWER_CHARS = 64 * 1024;

/** Sends one request; an answer of any status, or the `retry` outcome of a network error or timeout. */
export async function httpRequest(req: HttpRequest, timeoutMs: number, signal: AbortSignal, deps: HttpDeps = {}): Promise<HttpAnswer | DeliveryOutcome> {
  const timeout = AbortSignal.timeout(timeoutMs);
  let response: Response;
  try {
    response = await (deps.fetch ?? fetch)(req.url, {
      method: req.method ?? 'POST',
      headers: req.headers,
      ...(req.body !== undefined ? { body: req.body } : {}),
      redirect: 'manual',
      signal: AbortSignal.any([signal, timeout]),
    });
  } catch (error) {
    if (timeout.aborted) return { outcome: 'retry', error: `no answer within ${timeoutMs} ms` };
    return { outcome: 'retry', error: describeFetchError(error) };
  }
  let text: string;
  try {
    text = await response.text();
  } catch {
    text = '';
  }
  return { status: response.status, headers: response.headers, text: text.length > MAX_ANSWER_CHARS ? text.slice(0, MAX_ANSWER_CHARS) : text };
}

export function isAnswer(x: HttpAnswer | DeliveryOutcome): x is HttpAnswer {
  return 'status' in x && 'text' in x;
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

/** The first 200 characters of an answer, for the timeline. */
export function snippet(text: string): string {
  const flat = text.replace(/\s+/g, ' ').trim();
  return flat.length > 200 ? `${flat.slice(0, 200)}…` : flat;
}

/** The contract's rule by status alone: 2xx delivered; 408, 429, 5xx retried (Retry-After); else failed. */
export function outcomeOfStatus(answer: HttpAnswer, now: number): DeliveryOutcome {
  const status = answer.status;
  if (status >= 200 && status < 300) return { outcome: 'delivered', statusCode: status };
  const text = snippet(answer.text);
  const error = `HTTP ${status}${text ? `: ${text}` : ''}`;
  if (isRetryableStatus(status)) {
    const retryAfterMs = parseRetryAfter(answer.headers.get('retry-after'), now);
    return { outcome: 'retry', error, statusCode: status, ...(retryAfterMs !== undefined ? { retryAfterMs } : {}), ...(status === 429 ? { throttled: true } : {}) };
  }
  return { outcome: 'failed', error, statusCode: status };
}

/** The answer as JSON, or undefined. */
/** A field of a provider's JSON answer as text for an error message: strings as they are, anything else as JSON. */
export function answerField(value: unknown): string {
  if (value === undefined || value === null) return '';
  return typeof value === 'string' ? value : JSON.stringify(value);
}

export function jsonOf(answer: HttpAnswer): Record<string, unknown> | undefined {
  try {
    const value = JSON.parse(answer.text) as unknown;
    return value !== null && typeof value === 'object' && !Array.isArray(value) ? (value as Record<string, unknown>) : undefined;
  } catch {
    return undefined;
  }
}

export function describeFetchError(error: unknown): string {
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

/** Cuts UTF-8 text to at most `maxBytes` bytes without splitting a character. */
export function truncateBytes(text: string, maxBytes: number): string {
  if (Buffer.byteLength(text, 'utf8') <= maxBytes) return text;
  const ellipsis = '…';
  let out = '';
  let bytes = Buffer.byteLength(ellipsis, 'utf8');
  for (const ch of text) {
    const b = Buffer.byteLength(ch, 'utf8');
    if (bytes + b > maxBytes) break;
    out += ch;
    bytes += b;
  }
  return out + ellipsis;
}
