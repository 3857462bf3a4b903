import { scrypt } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { certificateNamesDevice, constantTimeEqual, hashSecret, SecretVerifier, verifySecret, type ScryptFn } from './device-auth.js';

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

/** A real scrypt that records each call's password length, salt length, key length and parameters. */
function countingScrypt() {
  const calls: string[] = [];
  const fn: ScryptFn = (secret, salt, keyLength, params) => {
    calls.push(`N=${params.N} r=${params.r} p=${params.p} salt=${salt.length} key=${keyLength}`);
    return new Promise((resolve, reject) => scrypt(secret, salt, keyLength, { ...params, maxmem: 64 * 1024 * 1024 }, (err, key) => (err ? reject(err) : resolve(key))));
  };
  return { calls, fn };
}

describe('SecretVerifier: the same work for known and unknown ids', () => {
  const params = { N: 1024, r: 8, p: 1, keyLength: 32 };

  it('runs one scrypt with the configured parameters for a hashed device, a plain one and an unknown id alike', async () => {
    const hashed = { secret_hash: await hashSecret('slope-secret-00002', params) };
    const plain = { secret: 'bridge-secret-0001' };
    const { calls, fn } = countingScrypt();
    const verifier = new SecretVerifier([hashed, plain], fn);
    const one = 'N=1024 r=8 p=1 salt=16 key=32';

    expect(await verifier.verify(hashed, Buffer.from('slope-secret-00002'))).toBe(true);
    expect(calls).toEqual([one]);
    expect(await verifier.verify(hashed, Buffer.from('wrong-secret-0000'))).toBe(false);
    expect(await verifier.verify(plain, Buffer.from('bridge-secret-0001'))).toBe(true);
    expect(await verifier.verify(plain, Buffer.from('wrong'))).toBe(false);
    expect(await verifier.verify(undefined, Buffer.from('bridge-secret-0001'))).toBe(false);
    expect(await verifier.verify(undefined, Buffer.from('slope-secret-00002'))).toBe(false);
    expect(await verifier.verify(undefined, undefined)).toBe(false);
    expect(await verifier.verify(hashed, undefined)).toBe(false);
    expect(calls).toEqual(Array.from({ length: 8 }, () => one));
  });

  it('runs no scrypt at all when no device has a hash (an unknown id is compared against a dummy secret)', async () => {
    const plain = { secret: 'bridge-secret-0001' };
    const { calls, fn } = countingScrypt();
    const verifier = new SecretVerifier([plain], fn);
    expect(await verifier.verify(plain, Buffer.from('bridge-secret-0001'))).toBe(true);
    expect(await verifier.verify(undefined, Buffer.from('bridge-secret-0001'))).toBe(false);
    expect(await verifier.verify(undefined, Buffer.from(''))).toBe(false);
    expect(await verifier.verify(plain, undefined)).toBe(false);
    expect(calls).toEqual([]);
  });
});

describe('certificateNamesDevice', () => {
  it('accepts the device id as the subject CN or as a DNS subject alternative name, nothing else', () => {
    expect(certificateNamesDevice({ subject: { CN: 'dau-bridge-001' } }, 'dau-bridge-001')).toBe(true);
    expect(certificateNamesDevice({ subject: { CN: ['x', 'dau-bridge-001'] } }, 'dau-bridge-001')).toBe(true);
    expect(certificateNamesDevice({ subject: { CN: 'gw' }, subjectaltname: 'IP Address:10.0.0.7, DNS:dau-bridge-001' }, 'dau-bridge-001')).toBe(true);
    expect(certificateNamesDevice({ subject: { CN: 'dau-bridge-0011' } }, 'dau-bridge-001')).toBe(false);
    expect(certificateNamesDevice({ subject: { CN: 'gw' }, subjectaltname: 'DNS:dau-bridge-001.example.org, URI:dau-bridge-001, email:dau-bridge-001' }, 'dau-bridge-001')).toBe(false);
    expect(certificateNamesDevice({}, 'dau-bridge-001')).toBe(false);
  });
});
