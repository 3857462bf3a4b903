/**
 * TLS material from configured PEM files (MQTT over TLS, the HTTPS API, an external broker's
 * private CA). Read once at start; a file that cannot be read or parsed stops the start with an
 * error naming the setting and the file.
 */
import { readFileSync } from 'node:fs';
import { createSecureContext } from 'node:tls';

export interface TlsFiles {
  cert_file?: string | undefined;
  key_file?: string | undefined;
  ca_file?: string | undefined;
}

export interface TlsMaterial {
  cert?: Buffer;
  key?: Buffer;
  ca?: Buffer;
}

export class TlsConfigError extends Error {
  readonly code = 'TLS_CONFIG';
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'TlsConfigError';
  }
}

function readPem(path: string, setting: string): Buffer {
  let pem: Buffer;
  try {
    pem = readFileSync(path);
  } catch (err) {
    throw new TlsConfigError(`${setting}: cannot read ${path}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`, { cause: err });
  }
  if (!pem.includes('-----BEGIN ')) throw new TlsConfigError(`${setting}: ${path} is not a PEM file`);
  return pem;
}

/** Reads the files named in `files`; `section` prefixes errors (e.g. `broker.tls`). Checks that key and certificate match. */
export function loadTls(files: TlsFiles, section: string): TlsMaterial {
  const material: TlsMaterial = {};
  if (files.cert_file) material.cert = readPem(files.cert_file, `${section}.cert_file`);
  if (files.key_file) material.key = readPem(files.key_file, `${section}.key_file`);
  if (files.ca_file) material.ca = readPem(files.ca_file, `${section}.ca_file`);
  if ((material.cert === undefined) !== (material.key === undefined)) {
    throw new TlsConfigError(`${section}: cert_file and key_file go together`);
  }
  if (material.cert && material.key) {
    try {
      createSecureContext({ cert: material.cert, key: material.key, ...(material.ca ? { ca: material.ca } : {}) });
    } catch (err) {
      throw new TlsConfigError(`${section}: the certificate and key cannot be used together: ${(err as Error).message}`, { cause: err });
    }
  }
  return material;
}
