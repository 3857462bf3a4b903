/**
 * Device credentials: a plain secret or an scrypt hash (`scrypt$N$r$p$salt$hash`, base64),
 * compared in constant time. scrypt runs off the event loop.
 *
 * Logins cost the same whether the device id exists or not (no enumeration by timing): when
 * any configured device has a `secret_hash`, every verification runs exactly one scrypt with
 * the configured parameters (an unknown id or a plain secret against a dummy hash); when none
 * has, none does (an unknown id is compared against a dummy secret).
 */
import { createHash, randomBytes, scrypt, timingSafeEqual } from 'node:crypto';
import type { DeviceConfig } from './config.js';

export const DEFAULT_SCRYPT = { N: 16384, r: 8, p: 1, keyLength: 32 };

function scryptAsync(secret: string, salt: Buffer, keyLength: number, opts: { N: number; r: number; p: number }): Promise<Buffer> {
  return new Promise((resolve, reject) => scrypt(secret, salt, keyLength, { ...opts, maxmem: 256 * opts.N * opts.r + 1024 * 1024 }, (err, key) => (err ? reject(err) : resolve(key))));
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

interface ScryptHash {
  params: { N: number; r: number; p: number };
  salt: Buffer;
  key: Buffer;
}

function parseHash(secretHash: string): ScryptHash {
  const [, n, r, p, salt, key] = secretHash.split('$');
  return { params: { N: Number(n), r: Number(r), p: Number(p) }, salt: Buffer.from(salt!, 'base64'), key: Buffer.from(key!, 'base64') };
}

export type ScryptFn = (secret: string, salt: Buffer, keyLength: number, params: { N: number; r: number; p: number }) => Promise<Buffer>;

type Credential = Pick<DeviceConfig, 'secret' | 'secret_hash'>;

/** Verifies device logins in the same work for known and unknown ids (see the header). */
export class SecretVerifier {
  private readonly hashes = new Map<string, ScryptHash>();
  /** A hash no password matches, with the configured parameters; undefined when no device has a hash. */
  private readonly dummyHash: ScryptHash | undefined;
  private readonly dummySecret = randomBytes(32).toString('base64');

  constructor(
    devices: readonly Credential[],
    private readonly scryptFn: ScryptFn = scryptAsync,
  ) {
    let first: ScryptHash | undefined;
    for (const d of devices) {
      if (d.secret_hash === undefined || this.hashes.has(d.secret_hash)) continue;
      const hash = parseHash(d.secret_hash);
      this.hashes.set(d.secret_hash, hash);
      first ??= hash;
    }
    this.dummyHash = first && { params: first.params, salt: randomBytes(first.salt.length), key: randomBytes(first.key.length) };
  }

  /** Does `password` log `device` in? `device` undefined: an unknown id (always false, same work). */
  async verify(device: Credential | undefined, password: Buffer | undefined): Promise<boolean> {
    const given = password ?? Buffer.alloc(0);
    const hash = device?.secret_hash !== undefined ? (this.hashes.get(device.secret_hash) ?? parseHash(device.secret_hash)) : this.dummyHash;
    const plainOk = constantTimeEqual(device?.secret ?? this.dummySecret, given) && device?.secret !== undefined;
    if (!hash) return plainOk && password !== undefined;
    const key = await this.scryptFn(given.toString('utf8'), hash.salt, hash.key.length, hash.params);
    const hashOk = key.length === hash.key.length && timingSafeEqual(key, hash.key) && device?.secret_hash !== undefined;
    return (hashOk || plainOk) && password !== undefined;
  }
}

/** Verifies one device's secret (no equal-work guarantee across devices; the broker uses SecretVerifier). */
export function verifySecret(device: Credential, password: Buffer | undefined): Promise<boolean> {
  return new SecretVerifier([device]).verify(device, password);
}

/** The parts of a peer certificate (node:tls `getPeerCertificate()`) that can name a device. */
export interface CertificateNames {
  subject?: { CN?: string | string[] } | undefined;
  /** e.g. `DNS:dau-bridge-001, IP Address:10.0.0.7` */
  subjectaltname?: string | undefined;
}

/** Does the certificate name `deviceId`, as its subject CN or as a DNS subject alternative name? */
export function certificateNamesDevice(cert: CertificateNames, deviceId: string): boolean {
  const cn = cert.subject?.CN;
  if (cn === deviceId || (Array.isArray(cn) && cn.includes(deviceId))) return true;
  if (!cert.subjectaltname) return false;
  return cert.subjectaltname.split(', ').some((name) => name === `DNS:${deviceId}`);
}
