import { describe, expect, it } from 'vitest';
import { ConnectLimiter, normalizeAddress, type ConnectLimits } from './connect-limiter.js';

const limits: ConnectLimits = { connectsPerSecond: 2, connectBurst: 3, maxAuthFailures: 3, authFailureWindow: 60_000, lockout: 600_000, exempt: ['10.0.0.9'] };

function limiter(over: Partial<ConnectLimits> = {}) {
  let now = 0;
  const l = new ConnectLimiter({ ...limits, ...over }, () => now);
  return { l, advance: (ms: number) => (now += ms) };
}

describe('ConnectLimiter', () => {
  it('lets a burst through, then the refill rate, per address', () => {
    const { l, advance } = limiter();
    expect([1, 2, 3, 4].map(() => l.allowConnect('1.2.3.4').ok)).toEqual([true, true, true, false]);
    expect(l.allowConnect('1.2.3.4')).toEqual({ ok: false, reason: 'rate_limited', retryAfterMs: 500 });
    expect(l.allowConnect('5.6.7.8').ok).toBe(true);
    advance(500);
    expect(l.allowConnect('1.2.3.4').ok).toBe(true);
    expect(l.allowConnect('1.2.3.4').ok).toBe(false);
    advance(10_000);
    expect([1, 2, 3, 4].map(() => l.allowConnect('1.2.3.4').ok)).toEqual([true, true, true, false]);
  });

  it('treats an IPv4-mapped IPv6 address as the IPv4 address', () => {
    const { l } = limiter();
    for (let i = 0; i < 3; i++) l.allowConnect('::ffff:1.2.3.4');
    expect(l.allowConnect('1.2.3.4').ok).toBe(false);
    expect(normalizeAddress('::ffff:10.0.0.1')).toBe('10.0.0.1');
    expect(normalizeAddress('::1')).toBe('::1');
    expect(normalizeAddress(undefined)).toBe('unknown');
  });

  it('locks an address out after max_auth_failures within the window, for the lockout', () => {
    const { l, advance } = limiter({ connectBurst: 100 });
    expect(l.authFailed('1.2.3.4')).toBe(false);
    advance(61_000); // the first failure leaves the window
    expect(l.authFailed('1.2.3.4')).toBe(false);
    expect(l.authFailed('1.2.3.4')).toBe(false);
    expect(l.lockedOut('1.2.3.4')).toBe(false);
    expect(l.authFailed('1.2.3.4')).toBe(true);
    expect(l.allowConnect('1.2.3.4')).toEqual({ ok: false, reason: 'locked_out', retryAfterMs: 600_000 });
    expect(l.allowConnect('5.6.7.8').ok).toBe(true);
    advance(600_000);
    expect(l.allowConnect('1.2.3.4').ok).toBe(true);
  });

  it('never limits an exempt address', () => {
    const { l } = limiter();
    for (let i = 0; i < 10; i++) expect(l.allowConnect('10.0.0.9').ok).toBe(true);
    for (let i = 0; i < 10; i++) expect(l.authFailed('10.0.0.9')).toBe(false);
  });

  it('remembers at most maxTracked addresses, forgetting idle ones before locked-out ones', () => {
    const { l } = limiter({ maxTracked: 10 });
    for (let i = 0; i < 3; i++) l.authFailed('6.6.6.6');
    expect(l.lockedOut('6.6.6.6')).toBe(true);
    for (let i = 0; i < 100; i++) l.allowConnect(`10.1.0.${i}`);
    expect(l.tracked()).toBeLessThanOrEqual(10);
    expect(l.lockedOut('6.6.6.6')).toBe(true);
  });
});
