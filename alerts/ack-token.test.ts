import { randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { newNonce, signAckToken, verifyAckToken } from './ack-token.js';

const KEY = Buffer.alloc(32, 7);
const NOW = Date.UTC(2025, 10, 28, 2, 0, 0);

describe('acknowledgement tokens', () => {
  const claims = { alertId: 'al_0123456789abcdef0123', expiresAt: NOW + 3_600_000, nonce: 'AAAAAAAAAAAAAAAA', language: 'zh' as const, channel: 'sms', contact: 'longcheng-duty' };

  it('signs a compact token and verifies it', () => {
    const token = signAckToken(KEY, claims);
    expect(token).toBe(`v1~al_0123456789abcdef0123~${((NOW + 3_600_000) / 1000).toString(36)}~AAAAAAAAAAAAAAAA~zh~sms~longcheng-duty~${token.split('~')[7]}`);
    expect(token.split('~')[7]).toMatch(/^[A-Za-z0-9_-]{22}$/);
    expect(verifyAckToken(KEY, token, NOW)).toEqual({ ok: true, claims });
    const noContact = signAckToken(KEY, { ...claims, contact: undefined, language: 'en' });
    expect(verifyAckToken(KEY, noContact, NOW)).toEqual({ ok: true, claims: { alertId: claims.alertId, expiresAt: claims.expiresAt, nonce: claims.nonce, language: 'en', channel: 'sms' } });
    expect(newNonce()).toMatch(/^[A-Za-z0-9_-]{16}$/);
  });

  it('refuses expired, tampered, foreign and malformed tokens', () => {
    const token = signAckToken(KEY, claims);
    expect(verifyAckToken(KEY, token, NOW + 3_600_000)).toEqual({ ok: false, reason: 'expired', claims });
    // Another alert id with the same signature.
    expect(verifyAckToken(KEY, token.replace('al_0123456789abcdef0123', 'al_0123456789abcdef0124'), NOW)).toEqual({ ok: false, reason: 'bad_signature' });
    // A later expiry.
    const parts = token.split('~');
    parts[2] = ((NOW + 7_200_000) / 1000).toString(36);
    expect(verifyAckToken(KEY, parts.join('~'), NOW)).toEqual({ ok: false, reason: 'bad_signature' });
    expect(verifyAckToken(randomBytes(32), token, NOW)).toEqual({ ok: false, reason: 'bad_signature' });
    for (const bad of ['', 'v1~x', token.replace('v1~', 'v2~'), `${token}~x`, token.replace('~zh~', '~fr~'), token.replace('~sms~', '~s/s~'), 'x'.repeat(500)]) {
      expect(verifyAckToken(KEY, bad, NOW), bad).toEqual({ ok: false, reason: 'malformed' });
    }
  });
});
