/**
 * `npm start` as users run it, in its own process group: a SIGTERM to the npm process alone
 * (what `kill -TERM <pid of npm start>` does) must end node too and free its ports, not leave
 * it running reparented; and a command started by npm whose parent dies stops by itself.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { cliBuilt, ROOT } from '../test/support/watchpost-process.js';
import { copyDemoConfig } from '../test/support/demo-config.js';

/**
 * True while some process of the group is alive. Read from /proc, because an exited process stays
 * a zombie until whoever adopted it reaps it (kill(-pgid, 0) still finds it), and the init of a
 * container or VM may reap late.
 */
function groupAlive(pgid: number): boolean {
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    let stat: string;
    try {
      stat = readFileSync(`/proc/${entry}/stat`, 'utf8');
    } catch {
      continue; // gone meanwhile
    }
    // pid (comm) state ppid pgrp ...; comm may hold spaces and parentheses, so split after the last ')'.
    const [state, , pgrp] = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    if (Number(pgrp) === pgid && state !== 'Z' && state !== 'X') return true;
  }
  return false;
}

function portOpen(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect(port, '127.0.0.1');
    socket.once('connect', () => {
      socket.destroy();
      resolve(true);
    });
    socket.once('error', () => resolve(false));
  });
}

async function waitFor(condition: () => boolean | Promise<boolean>, timeoutMs: number): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (await condition()) return true;
    await new Promise((r) => setTimeout(r, 100));
  }
  return condition();
}

describe.skipIf(!cliBuilt || process.platform !== 'linux')('npm start and signals', () => {
  const dirs: string[] = [];
  let npm: ChildProcess | undefined;
  let shell: ChildProcess | undefined;
  afterAll(() => {
    if (npm?.pid && groupAlive(npm.pid)) process.kill(-npm.pid, 'SIGKILL');
    if (shell?.pid && groupAlive(shell.pid)) process.kill(-shell.pid, 'SIGKILL');
    dirs.forEach((d) => rmSync(d, { recursive: true, force: true }));
  });

  it('a SIGTERM to npm alone stops node and frees its ports within a few seconds', async () => {
    const config = mkdtempSync(join(tmpdir(), 'watchpost-signals-config-'));
    const data = mkdtempSync(join(tmpdir(), 'watchpost-signals-data-'));
    dirs.push(config, data);
    copyDemoConfig(config, data);

    const env: NodeJS.ProcessEnv = { ...process.env, WATCHPOST_LOG_LEVEL: 'info', WATCHPOST_LOG_FORMAT: 'json' };
    // As a user starts it, not as a child of this npm (if the tests run under `npm test`).
    for (const key of Object.keys(env)) if (key.startsWith('npm_')) delete env[key];
    npm = spawn('npm', ['run', '--silent', 'start', '--', '--config', config], { cwd: ROOT, env, detached: true, stdio: ['ignore', 'pipe', 'pipe'] });
    let logs = '';
    npm.stderr!.on('data', (d: Buffer) => (logs += d.toString()));
    const started = await new Promise<{ mqtt_port: number; http_port: number }>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`npm start did not start: ${logs}`)), 45_000);
      npm!.stdout!.on('data', (d: Buffer) => {
        logs += d.toString();
        const line = logs.split('\n').find((l) => l.includes('"msg":"watchpost started"'));
        if (!line) return;
        clearTimeout(timer);
        resolve(JSON.parse(line) as { mqtt_port: number; http_port: number });
      });
      npm!.once('exit', (code) => reject(new Error(`npm exited with ${code}: ${logs}`)));
    });
    expect(await portOpen(started.http_port)).toBe(true);
    expect(await portOpen(started.mqtt_port)).toBe(true);

    process.kill(npm.pid!, 'SIGTERM');

    // Everything npm started is gone, and the ports with it.
    expect(await waitFor(() => !groupAlive(npm!.pid!), 10_000)).toBe(true);
    expect(await portOpen(started.http_port)).toBe(false);
    expect(await portOpen(started.mqtt_port)).toBe(false);
    expect(logs).toMatch(/"msg":"shutting down"/);
  });

  it('under npm, a command whose parent is gone (npx through a shell, killed) stops by itself', async () => {
    const env: NodeJS.ProcessEnv = { ...process.env, npm_lifecycle_event: 'npx' };
    // `; true` keeps the shell as the parent (no exec), as npm's script shell is.
    const sh = spawn('sh', ['-c', `"${process.execPath}" dist/server/cli.js receive --port 0; true`], { cwd: ROOT, env, detached: true, stdio: ['ignore', 'pipe', 'pipe'] });
    shell = sh;
    let out = '';
    sh.stdout.on('data', (d: Buffer) => (out += d.toString()));
    const port = await new Promise<number>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`receive did not start: ${out}`)), 20_000);
      sh.stdout.on('data', () => {
        const match = /listening on http:\/\/127\.0\.0\.1:(\d+)\//.exec(out);
        if (!match) return;
        clearTimeout(timer);
        resolve(Number(match[1]));
      });
    });
    expect(await portOpen(port)).toBe(true);
    process.kill(sh.pid!, 'SIGKILL');
    expect(await waitFor(() => !groupAlive(sh.pid!), 10_000)).toBe(true);
    expect(await portOpen(port)).toBe(false);
  });
});
