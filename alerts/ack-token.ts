/**
 * Acknowledgement links (`ack_url`): a signed, expiring token for one alert, carried in every
 * notification, that lets the person who received it acknowledge from a phone without any other
 * credential. The token is
 *
 *   v1~<alert id>~<expiry, unix seconds, base 36>~<nonce>~<language>~<channel>~<contact or ->~<mac>
 *
 * mac = first 16 bytes of HMAC-SHA256(key, everything before "~<mac>"), base64url. `~` appears in
 * no id, so the fields split unambiguously. Tokens are single use: the alert stage records the
 * nonce of a used token and refuses it again. Pure: the key and the time are passed in.
 */
import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import { isValidId } from '../lib/ids.js';
import type { Language } from './config.js';

export interface AckClaims {
  alertId: string;
  /** Epoch ms, a whole second. */
  expiresAt: number;
  nonce: string;
  language: Language;
  channel: string;
  /** The contact the link was sent to (sms, e-mail), if known. */
  contact?: string;
}

export type AckTokenCheck = { ok: true; claims: AckClaims } | { ok: false; reason: 'malformed' | 'bad_signature' | 'expired'; claims?: AckClaims };

const VERSION = 'v1';
const MAX_TOKEN_LENGTH = 400;
const NONCE = /^[A-Za-z0-9_-]{16}$/;

export function newNonce(): string {
  return randomBytes(12).toString('base64url');
}

export function signAckToken(key: Buffer, claims: AckClaims): string {
  const payload = [VERSION, claims.alertId, Math.floor(claims.expiresAt / 1000).toString(36), claims.nonce, claims.language, claims.channel, claims.contact ?? '-'].join('~');
  return `${payload}~${mac(key, payload)}`;
}

export function verifyAckToken(key: Buffer, token: string, now: number): AckTokenCheck {
  if (typeof token !== 'string' || token.length > MAX_TOKEN_LENGTH) return { ok: false, reason: 'malformed' };
  const parts = token.split('~');
  if (parts.length !== 8 || parts[0] !== VERSION) return { ok: false, reason: 'malformed' };
  const [, alertId, exp36, nonce, language, channel, contact, given] = parts as [string, string, string, string, string, string, string, string];
  if (!isValidId(alertId) || !/^[0-9a-z]{1,10}$/.test(exp36) || !NONCE.test(nonce) || (language !== 'zh' && language !== 'en') || !isValidId(channel)) {
    return { ok: false, reason: 'malformed' };
  }
  if (contact !== '-' && !isValidId(contact)) return { ok: false, reason: 'malformed' };
  const expected = Buffer.from(mac(key, parts.slice(0, 7).join('~')));
  const actual = Buffer.from(given);
  if (actual.length !== expected.length || !timingSafeEqual(actual, expected)) return { ok: false, reason: 'bad_signature' };
  const claims: AckClaims = { alertId, expiresAt: parseInt(exp36, 36) * 1000, nonce, language, channel, ...(contact !== '-' ? { contact } : {}) };
  if (claims.expiresAt <= now) return { ok: false, reason: 'expired', claims };
  return { ok: true, claims };
}

function mac(key: Buffer, payload: string): string {
  return createHmac('sha256', key).update(payload, 'utf8').digest().subarray(0, 16).toString('base64url');
}
