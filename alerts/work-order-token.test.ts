import { randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { signAckToken } from './ack-token.js';
import { signWorkOrderToken, verifyWorkOrderToken } from './work-order-token.js';

const KEY = Buffer.alloc(32, 7);
const NOW = Date.UTC(2026, 11, 1, 2, 0, 0);

describe('work-order tokens', () => {
  const claims = { workOrderId: 'wo_0123456789abcdef0123', department: 'lg-water', expiresAt: NOW + 3_600_000, nonce: 'AAAAAAAAAAAAAAAA' };

  it('signs a compact token bound to the work order and department', () => {
    const token = signWorkOrderToken(KEY, claims);
    const exp = ((NOW + 3_600_000) / 1000).toString(36);
    expect(token).toBe(`w1~wo_0123456789abcdef0123~lg-water~${exp}~AAAAAAAAAAAAAAAA~${token.split('~')[5]}`);
    expect(token.split('~')[5]).toMatch(/^[A-Za-z0-9_-]{22}$/);
    expect(verifyWorkOrderToken(KEY, token, NOW)).toEqual({ ok: true, claims });
  });

  it('refuses expired, tampered, foreign and malformed tokens', () => {
    const token = signWorkOrderToken(KEY, claims);
    expect(verifyWorkOrderToken(KEY, token, NOW + 3_600_000)).toEqual({ ok: false, reason: 'expired', claims });
    expect(verifyWorkOrderToken(KEY, token.replace('lg-water', 'lg-gas'), NOW)).toEqual({ ok: false, reason: 'bad_signature' });
    expect(verifyWorkOrderToken(KEY, token.replace('wo_0123456789abcdef0123', 'wo_0123456789abcdef0124'), NOW)).toEqual({ ok: false, reason: 'bad_signature' });
    const parts = token.split('~');
    parts[3] = ((NOW + 7_200_000) / 1000).toString(36);
    expect(verifyWorkOrderToken(KEY, parts.join('~'), NOW)).toEqual({ ok: false, reason: 'bad_signature' });
    expect(verifyWorkOrderToken(randomBytes(32), token, NOW)).toEqual({ ok: false, reason: 'bad_signature' });
    // An acknowledgement link signed with the same key is not a work-order link.
    const ack = signAckToken(KEY, { alertId: 'al_1', expiresAt: NOW + 3_600_000, nonce: 'AAAAAAAAAAAAAAAA', language: 'zh', channel: 'sms' });
    expect(verifyWorkOrderToken(KEY, ack, NOW)).toEqual({ ok: false, reason: 'malformed' });
    for (const bad of ['', 'w1~x', token.replace('w1~', 'w2~'), `${token}~x`, token.replace('lg-water', 'lg/water'), 'x'.repeat(500)]) {
      expect(verifyWorkOrderToken(KEY, bad, NOW), bad).toEqual({ ok: false, reason: 'malformed' });
    }
  });
});
