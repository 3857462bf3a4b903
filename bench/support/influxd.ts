/**
 * A private InfluxDB 1.x for end-to-end tests: its own config file and data in a temp dir, free
 * ports for HTTP and RPC, no reporting, no monitor store, quiet logs. `pause()` / `resume()`
 * stop and start the same server (same ports, same data) to test writers riding out an outage;
 * `restart({ auth: true })` brings it back with authentication on (an admin user, INFLUXD_ADMIN,
 * is created first; `query` then always sends its credentials, which influxd ignores with auth off).
 *
 * Without `influxd` on PATH the suites skip with a warning; under CI=true that is a failure.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePort, requireBinary, waitFor } from './binaries.js';

export const influxdBinary = requireBinary('influxd', 'influxdb');
export const influxdAvailable = influxdBinary !== undefined;

/** The admin user created before authentication is turned on. */
export const INFLUXD_ADMIN = { username: 'admin', password: 'influxd-admin-password' };

/** How long a test's query may wait for influxd. */
const QUERY_TIMEOUT_MS = 10_000;

/** One statement's answer to `/query` (timestamps as epoch ms). */
export interface InfluxQLResult {
  statement_id: number;
  error?: string;
  series?: Array<{ name: string; tags?: Record<string, string>; columns: string[]; values: unknown[][] }>;
}

export interface Influxd {
  url: string;
  port: number;
  database: string;
  /** The running server's process id (undefined while paused): benchmarks read its CPU time. */
  pid(): number | undefined;
  /** Runs InfluxQL against `database` (POST, epoch=ms); throws on an HTTP or statement error. */
  query(influxql: string): Promise<InfluxQLResult[]>;
  /** Stops the server, keeping its ports and data. */
  pause(): Promise<void>;
  /** Starts the paused server again and waits until it answers /ping. */
  resume(): Promise<void>;
  /** Stops and starts the server; `auth` turns authentication on or off (default: as it was). */
  restart(options?: { auth?: boolean }): Promise<void>;
  /** Stops the server and deletes its data. */
  stop(): Promise<void>;
}

/**
 * `createDatabase: false` leaves `database` to be created by the test (or by Watchpost);
 * `auth: true` starts with authentication on, an admin user (INFLUXD_ADMIN) created first.
 */
export async function startInfluxd(options: { database?: string; createDatabase?: boolean; auth?: boolean } = {}): Promise<Influxd> {
  if (!influxdBinary) throw new Error('influxd is not installed');
  const binary = influxdBinary;
  const database = options.database ?? 'telemetry';
  const dir = mkdtempSync(join(tmpdir(), 'watchpost-influxd-'));
  const port = await freePort();
  const rpcPort = await freePort();
  const url = `http://127.0.0.1:${port}`;
  const config = join(dir, 'influxdb.conf');
  let auth = false;
  let adminCreated = false;
  const writeConfig = () =>
    writeFileSync(
      config,
      [
        'reporting-disabled = true',
        `bind-address = "127.0.0.1:${rpcPort}"`,
        '[meta]',
        `  dir = "${join(dir, 'meta')}"`,
        '  logging-enabled = false',
        '[data]',
        `  dir = "${join(dir, 'data')}"`,
        `  wal-dir = "${join(dir, 'wal')}"`,
        '  query-log-enabled = false',
        '[monitor]',
        '  store-enabled = false',
        '[http]',
        '  enabled = true',
        `  bind-address = "127.0.0.1:${port}"`,
        `  auth-enabled = ${auth}`,
        '  log-enabled = false',
        '[logging]',
        '  level = "error"',
        '  suppress-logo = true',
        '[continuous_queries]',
        '  enabled = false',
        '[retention]',
        '  enabled = false',
        '[subscriber]',
        '  enabled = false',
        '',
      ].join('\n'),
    );
  writeConfig();

  let child: ChildProcess | undefined;
  let output = '';
  const killOnExit = () => child?.kill('SIGKILL');

  const launch = async () => {
    output = '';
    const proc = spawn(binary, ['-config', config], { stdio: ['ignore', 'pipe', 'pipe'] });
    child = proc;
    const keep = (d: Buffer) => (output = (output + d.toString()).slice(-4000));
    proc.stdout?.on('data', keep);
    proc.stderr?.on('data', keep);
    process.once('exit', killOnExit);
    await waitFor(
      `influxd on port ${port}`,
      async () => {
        if (proc.exitCode !== null) throw new Error(`influxd exited with ${proc.exitCode}: ${output}`);
        const res = await fetch(`${url}/ping`);
        return res.status === 204 ? true : undefined;
      },
      30_000,
    );
  };

  const halt = async () => {
    const proc = child;
    child = undefined;
    process.off('exit', killOnExit);
    if (!proc || proc.exitCode !== null) return;
    const exited = new Promise((resolve) => proc.once('exit', resolve));
    proc.kill('SIGTERM');
    const timer = setTimeout(() => proc.kill('SIGKILL'), 10_000);
    await exited;
    clearTimeout(timer);
  };

  const query = async (influxql: string): Promise<InfluxQLResult[]> => {
    let res: Response;
    try {
      res = await fetch(`${url}/query`, {
        method: 'POST',
        ...(adminCreated ? { headers: { authorization: `Basic ${Buffer.from(`${INFLUXD_ADMIN.username}:${INFLUXD_ADMIN.password}`).toString('base64')}` } } : {}),
        body: new URLSearchParams({ q: influxql, db: database, epoch: 'ms' }),
        // A stalled influxd fails the query with this message, not the test with a bare timeout.
        signal: AbortSignal.timeout(QUERY_TIMEOUT_MS),
      });
    } catch (err) {
      throw new Error(`InfluxQL "${influxql}" got no answer from influxd at ${url}: ${(err as Error).message}`, { cause: err });
    }
    const body = (await res.json()) as { results?: InfluxQLResult[]; error?: string };
    if (!res.ok || body.error) throw new Error(`InfluxQL "${influxql}" failed: HTTP ${res.status} ${body.error ?? ''}`);
    const failed = body.results?.find((r) => r.error);
    if (failed) throw new Error(`InfluxQL "${influxql}" failed: ${failed.error}`);
    return body.results ?? [];
  };

  /** Restarts with authentication as asked, creating the admin user first (while auth is still off). */
  const relaunch = async (withAuth: boolean) => {
    if (withAuth && !adminCreated) {
      await query(`CREATE USER "${INFLUXD_ADMIN.username}" WITH PASSWORD '${INFLUXD_ADMIN.password}' WITH ALL PRIVILEGES`);
      adminCreated = true;
    }
    await halt();
    auth = withAuth;
    writeConfig();
    await launch();
  };

  try {
    await launch();
    if (options.createDatabase !== false) await query(`CREATE DATABASE "${database}"`);
    if (options.auth) await relaunch(true);
  } catch (err) {
    await halt();
    rmSync(dir, { recursive: true, force: true });
    throw err;
  }

  return {
    url,
    port,
    database,
    pid: () => child?.pid,
    query,
    pause: halt,
    async resume() {
      if (child) return;
      await launch();
    },
    async restart(restartOptions = {}) {
      if (restartOptions.auth !== undefined && restartOptions.auth !== auth) {
        if (!child) await launch();
        await relaunch(restartOptions.auth);
        return;
      }
      await halt();
      await launch();
    },
    async stop() {
      await halt();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
