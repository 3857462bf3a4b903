/** A private mosquitto for external-broker tests: own config file, free port, temp dir. */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePort, requireBinary, waitFor } from './binaries.js';

export const mosquittoBinary = requireBinary('mosquitto', 'mosquitto');

export interface Mosquitto {
  url: string;
  port: number;
  stop(): Promise<void>;
}

export async function startMosquitto(options: { users?: Record<string, string>; extraConfig?: string[] } = {}): Promise<Mosquitto> {
  if (!mosquittoBinary) throw new Error('mosquitto is not installed');
  const dir = mkdtempSync(join(tmpdir(), 'watchpost-mosquitto-'));
  const port = await freePort();
  const lines = [`listener ${port} 127.0.0.1`, 'persistence false', 'log_dest stderr', 'log_type error', 'log_type warning'];
  // Started as root, mosquitto drops to the `mosquitto` user, which cannot read our private temp dir.
  if (process.getuid?.() === 0) lines.push('user root');
  if (options.users) {
    // mosquitto_passwd -U hashes a plain-text file in place.
    const passwd = join(dir, 'passwd');
    writeFileSync(
      passwd,
      Object.entries(options.users)
        .map(([u, p]) => `${u}:${p}`)
        .join('\n') + '\n',
      { mode: 0o600 },
    );
    await new Promise<void>((resolve, reject) => {
      const p = spawn('mosquitto_passwd', ['-U', passwd], { stdio: 'inherit' });
      p.on('exit', (code) => (code === 0 ? resolve() : reject(new Error(`mosquitto_passwd exited ${code}`))));
      p.on('error', reject);
    });
    lines.push('allow_anonymous false', `password_file ${passwd}`);
  } else {
    lines.push('allow_anonymous true');
  }
  lines.push(...(options.extraConfig ?? []));
  const conf = join(dir, 'mosquitto.conf');
  writeFileSync(conf, lines.join('\n') + '\n');
  const child: ChildProcess = spawn(mosquittoBinary, ['-c', conf], { stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr?.on('data', (d: Buffer) => (stderr += d.toString()));
  await waitFor(
    `mosquitto on port ${port}`,
    () =>
      new Promise<true | undefined>((resolve, reject) => {
        if (child.exitCode !== null) return reject(new Error(`mosquitto exited with ${child.exitCode}: ${stderr.trim()}`));
        const s = connect(port, '127.0.0.1');
        s.once('connect', () => {
          s.destroy();
          resolve(true);
        });
        s.once('error', () => resolve(undefined));
      }),
  );
  return {
    url: `mqtt://127.0.0.1:${port}`,
    port,
    async stop() {
      if (child.exitCode === null) {
        const exited = new Promise((r) => child.once('exit', r));
        child.kill('SIGTERM');
        await exited;
      }
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
