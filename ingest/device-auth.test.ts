import { describe, expect, it } from 'vitest';
import { constantTimeEqual, hashSecret, verifySecret } from './device-auth.js';

describe('device secrets', () => {
  it('verifies a plain secret exactly', async () => {
    const device = { secret: 'bridge-secret-0001' };
    expect(await verifySecret(device, Buffer.from('bridge-secret-0001'))).toBe(true);
    expect(await verifySecret(device, Buffer.from('bridge-secret-0002'))).toBe(false);
    expect(await verifySecret(device, Buffer.from('bridge-secret-00011'))).toBe(false);
    expect(await verifySecret(device, Buffer.from(''))).toBe(false);
    expect(await verifySecret(device, undefined)).toBe(false);
  });

  it('verifies an scrypt hash made by hashSecret, with a fresh salt each time', async () => {
    const params = { N: 1024, r: 8, p: 1, keyLength: 32 };
    const hash = await hashSecret('slope-secret-00002', params);
    expect(hash).toMatch(/^scrypt\$1024\$8\$1\$[A-Za-z0-9+/=]+\$[A-Za-z0-9+/=]+$/);
    expect(await hashSecret('slope-secret-00002', params)).not.toBe(hash);
    expect(await verifySecret({ secret_hash: hash }, Buffer.from('slope-secret-00002'))).toBe(true);
    expect(await verifySecret({ secret_hash: hash }, Buffer.from('slope-secret-00003'))).toBe(false);
  });

  it('compares strings of different lengths without throwing', () => {
    expect(constantTimeEqual('a', 'a')).toBe(true);
    expect(constantTimeEqual('a', 'ab')).toBe(false);
  });
});
