/**
 * Certificates generated for a test with the openssl command line: a private CA, a server
 * certificate for 127.0.0.1 and localhost signed by it, and an unrelated CA (for "untrusted").
 */
import { execFileSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { requireBinary } from './binaries.js';

export const opensslBinary = requireBinary('openssl', 'openssl');

export interface TestCerts {
  caFile: string;
  certFile: string;
  keyFile: string;
  /** A CA that did not sign the server certificate. */
  otherCaFile: string;
}

export function generateCerts(dir: string): TestCerts {
  if (!opensslBinary) throw new Error('openssl is not installed');
  const run = (...args: string[]) => execFileSync(opensslBinary, args, { cwd: dir, stdio: ['ignore', 'ignore', 'pipe'] });
  const ec = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes'];
  run('req', '-x509', ...ec, '-keyout', 'ca.key', '-out', 'ca.pem', '-days', '2', '-subj', '/CN=Watchpost test CA');
  run('req', '-x509', ...ec, '-keyout', 'other-ca.key', '-out', 'other-ca.pem', '-days', '2', '-subj', '/CN=Someone else');
  run('req', ...ec, '-keyout', 'server.key', '-out', 'server.csr', '-subj', '/CN=127.0.0.1');
  writeFileSync(join(dir, 'san.ext'), 'subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth\n');
  run('x509', '-req', '-in', 'server.csr', '-CA', 'ca.pem', '-CAkey', 'ca.key', '-CAcreateserial', '-out', 'server.pem', '-days', '2', '-extfile', 'san.ext');
  return { caFile: join(dir, 'ca.pem'), certFile: join(dir, 'server.pem'), keyFile: join(dir, 'server.key'), otherCaFile: join(dir, 'other-ca.pem') };
}

/**
 * A client certificate for mutual TLS, signed by the test CA that generateCerts made in `dir`:
 * subject CN `cn`, and DNS subject alternative names `dns` if given.
 */
export function generateClientCert(dir: string, name: string, options: { cn: string; dns?: string[] }): { certFile: string; keyFile: string } {
  if (!opensslBinary) throw new Error('openssl is not installed');
  const run = (...args: string[]) => execFileSync(opensslBinary, args, { cwd: dir, stdio: ['ignore', 'ignore', 'pipe'] });
  run('req', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-keyout', `${name}.key`, '-out', `${name}.csr`, '-subj', `/CN=${options.cn}`);
  const san = options.dns?.length ? `subjectAltName=${options.dns.map((d) => `DNS:${d}`).join(',')}\n` : '';
  writeFileSync(join(dir, `${name}.ext`), `${san}extendedKeyUsage=clientAuth\n`);
  run('x509', '-req', '-in', `${name}.csr`, '-CA', 'ca.pem', '-CAkey', 'ca.key', '-CAcreateserial', '-out', `${name}.pem`, '-days', '2', '-extfile', `${name}.ext`);
  return { certFile: join(dir, `${name}.pem`), keyFile: join(dir, `${name}.key`) };
}
