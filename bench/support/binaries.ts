/**
 * Real servers for end-to-end tests and benchmarks. A missing binary skips the suite with a
 * message on a developer's machine; under CI=true it is a failure.
 */
import { execFileSync } from 'node:child_process';
import { createServer } from 'node:net';

export function which(binary: string): string | undefined {
  try {
    return execFileSync('sh', ['-c', `command -v ${binary}`], { encoding: 'utf8' }).trim() || undefined;
  } catch {
    return undefined;
  }
}

/** Path of `binary`, or undefined (after a warning) when absent outside CI. Throws in CI. */
export function requireBinary(binary: string, debianPackage: string): string | undefined {
  const path = which(binary) ?? (existsAt(`/usr/sbin/${binary}`) ? `/usr/sbin/${binary}` : undefined);
  if (path) return path;
  const message = `${binary} not found: install it with \`apt-get install -y ${debianPackage}\``;
  if (process.env.CI === 'true') throw new Error(`${message} (CI=true makes a missing server a failure)`);
  console.warn(`SKIPPING: ${message}`);
  return undefined;
}

function existsAt(path: string): boolean {
  try {
    execFileSync('test', ['-x', path]);
    return true;
  } catch {
    return false;
  }
}

/** A port that was free a moment ago: listen on 0, read it back, close. */
export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as { port: number };
      server.close(() => resolve(port));
    });
  });
}

export async function waitFor<T>(what: string, probe: () => Promise<T | undefined>, timeoutMs = 20_000, intervalMs = 50): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let lastError: unknown;
  for (;;) {
    try {
      const value = await probe();
      if (value !== undefined) return value;
    } catch (err) {
      lastError = err;
    }
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}${lastError ? `: ${lastError instanceof Error ? String(lastError) : JSON.stringify(lastError)}` : ''}`);
    await new Promise((r) => setTimeout(r, intervalMs));
  }
}
