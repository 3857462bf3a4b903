/**
 * Device credentials: a plain secret or an scrypt hash (`scrypt$N$r$p$salt$hash`, base64),
 * compared in constant time. scrypt runs off the event loop.
 */
import { createHash, randomBytes, scrypt, timingSafeEqual } from 'node:crypto';
import type { DeviceConfig } from './config.js';

export const DEFAULT_SCRYPT = { N: 16384, r: 8, p: 1, keyLength: 32 };

function scryptAsync(secret: string, salt: Buffer, keyLength: number, opts: { N: number; r: number; p: number }): Promise<Buffer> {
  return new Promise((resolve, reject) =>
    scrypt(secret, salt, keyLength, { ...opts, maxmem: 256 * opts.N * opts.r + 1024 * 1024 }, (err, key) => (err ? reject(err) : resolve(key))),
  );
}

/** Makes a `secret_hash` value for the configuration (CLI: `watchpost hash-secret`). */
export async function hashSecret(secret: string, params = DEFAULT_SCRYPT): Promise<string> {
  const salt = randomBytes(16);
  const key = await scryptAsync(secret, salt, params.keyLength, params);
  return `scrypt$${params.N}$${params.r}$${params.p}$${salt.toString('base64')}$${key.toString('base64')}`;
}

/** Compares two strings in time that depends on neither their content nor their length. */
export function constantTimeEqual(a: string | Buffer, b: string | Buffer): boolean {
  const da = createHash('sha256').update(a).digest();
  const db = createHash('sha256').update(b).digest();
  return timingSafeEqual(da, db);
}

export async function verifySecret(device: Pick<DeviceConfig, 'secret' | 'secret_hash'>, password: Buffer | undefined): Promise<boolean> {
  if (!password) return false;
  if (device.secret !== undefined) return constantTimeEqual(Buffer.from(device.secret, 'utf8'), password);
  if (device.secret_hash === undefined) return false;
  const [, n, r, p, salt, hash] = device.secret_hash.split('$');
  const expected = Buffer.from(hash!, 'base64');
  const key = await scryptAsync(password.toString('utf8'), Buffer.from(salt!, 'base64'), expected.length, { N: Number(n), r: Number(r), p: Number(p) });
  return key.length === expected.length && timingSafeEqual(key, expected);
}
