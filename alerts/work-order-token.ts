/**
 * Work-order links (`${public_url}/wo/<token>`): a signed, expiring token for one work order and
 * the department it was dispatched to, sent in the department's notifications. The link is the
 * capability: whoever holds it may act on that work order from the phone page, and nothing else.
 *
 *   w1~<work order id>~<department id>~<expiry, unix seconds, base 36>~<nonce>~<mac>
 *
 * mac = first 16 bytes of HMAC-SHA256(key, everything before "~<mac>"), base64url, with the key
 * that signs acknowledgement links (ack-token.ts); the `w1` prefix and field count keep the two
 * kinds of token apart. The nonce is stored with the work order and must match, so a link made
 * for an earlier work order of the same id can never act on a later one.
 *
 * Use: `arrive` and `feedback` may be given any number of times while the work order is open (a
 * crew reports as it works); `close` is once: after it the link only shows the closed order.
 * A case closed or dismissed through the API closes its work order too. Pure: key and time are
 * passed in.
 */
import { createHmac, timingSafeEqual } from 'node:crypto';
import { isValidId } from '../lib/ids.js';

export { newNonce } from './ack-token.js';

export interface WorkOrderClaims {
  workOrderId: string;
  department: string;
  /** Epoch ms, a whole second. */
  expiresAt: number;
  nonce: string;
}

export type WorkOrderTokenCheck = { ok: true; claims: WorkOrderClaims } | { ok: false; reason: 'malformed' | 'bad_signature' | 'expired'; claims?: WorkOrderClaims };

/** How long a link stays valid after the work order's due time: overdue orders still get closed. */
export const WORK_ORDER_LINK_GRACE_MS = 7 * 86_400_000;

const VERSION = 'w1';
const MAX_TOKEN_LENGTH = 400;
const NONCE = /^[A-Za-z0-9_-]{16}$/;

export function signWorkOrderToken(key: Buffer, claims: WorkOrderClaims): string {
  const payload = [VERSION, claims.workOrderId, claims.department, Math.floor(claims.expiresAt / 1000).toString(36), claims.nonce].join('~');
  return `${payload}~${mac(key, payload)}`;
}

export function verifyWorkOrderToken(key: Buffer, token: string, now: number): WorkOrderTokenCheck {
  if (typeof token !== 'string' || token.length > MAX_TOKEN_LENGTH) return { ok: false, reason: 'malformed' };
  const parts = token.split('~');
  if (parts.length !== 6 || parts[0] !== VERSION) return { ok: false, reason: 'malformed' };
  const [, workOrderId, department, exp36, nonce, given] = parts as [string, string, string, string, string, string];
  if (!isValidId(workOrderId) || !isValidId(department) || !/^[0-9a-z]{1,10}$/.test(exp36) || !NONCE.test(nonce)) return { ok: false, reason: 'malformed' };
  const expected = Buffer.from(mac(key, parts.slice(0, 5).join('~')));
  const actual = Buffer.from(given);
  if (actual.length !== expected.length || !timingSafeEqual(actual, expected)) return { ok: false, reason: 'bad_signature' };
  const claims: WorkOrderClaims = { workOrderId, department, expiresAt: parseInt(exp36, 36) * 1000, nonce };
  if (claims.expiresAt <= now) return { ok: false, reason: 'expired', claims };
  return { ok: true, claims };
}

function mac(key: Buffer, payload: string): string {
  return createHmac('sha256', key).update(payload, 'utf8').digest().subarray(0, 16).toString('base64url');
}
