import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { params } from '../../test/support/property.js';
import { parseBasicAuth } from './basic-auth.js';
import { TokenBuckets } from './rate-limiter.js';

describe('HTTP Basic credentials', () => {
  it('reads the device id and secret (the secret may hold colons)', () => {
    const header = `Basic ${Buffer.from('dau-bridge-001:s3cr:et').toString('base64')}`;
    expect(parseBasicAuth(header)).toEqual({ user: 'dau-bridge-001', password: 's3cr:et' });
    expect(parseBasicAuth(undefined)).toBeUndefined();
    expect(parseBasicAuth('Bearer abc')).toBeUndefined();
    expect(parseBasicAuth(`Basic ${Buffer.from('no-colon').toString('base64')}`)).toBeUndefined();
    expect(parseBasicAuth(`Basic ${Buffer.from(':empty-user').toString('base64')}`)).toBeUndefined();
  });

  it('round-trips any id without a colon and any secret; never throws on a random header', () => {
    fc.assert(
      fc.property(
        fc.string({ minLength: 1, maxLength: 64 }).filter((s) => !s.includes(':')),
        fc.string({ maxLength: 64 }),
        (user, password) => {
          expect(parseBasicAuth(`Basic ${Buffer.from(`${user}:${password}`).toString('base64')}`)).toEqual({ user, password });
        },
      ),
      params(),
    );
    fc.assert(
      fc.property(fc.string({ maxLength: 5000 }), (header) => void parseBasicAuth(header)),
      params(),
    );
  });
});

describe('TokenBuckets', () => {
  it('allows a burst, then refills at the rate, per key', () => {
    let now = 0;
    const buckets = new TokenBuckets({ perSecond: 2, burst: 3 }, () => now);
    expect([1, 2, 3, 4].map(() => buckets.take('a').ok)).toEqual([true, true, true, false]);
    expect(buckets.take('a')).toEqual({ ok: false, retryAfterMs: 500 });
    expect(buckets.take('b').ok).toBe(true);
    now += 500;
    expect(buckets.take('a').ok).toBe(true);
    expect(buckets.take('a').ok).toBe(false);
    now += 60_000;
    expect([1, 2, 3, 4].map(() => buckets.take('a').ok)).toEqual([true, true, true, false]);
  });
});
