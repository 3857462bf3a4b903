/**
 * A private PostgreSQL 15 for end-to-end tests and benchmarks: its own data directory and unix
 * socket directory in a temp dir, a free port on 127.0.0.1, fsync on, password authentication
 * over TCP for the role `watchpost` (a random password) which owns the database `watchpost`.
 * Administration (creating databases) goes over the unix socket as the superuser, trusted there.
 *
 * PostgreSQL refuses to run as root: started by root, every server command runs as the
 * `postgres` user (runuser), which owns the data directory. `stop()` / `start()` stop and start
 * the same server (same port, same data) to test a store riding out an outage; `destroy()` stops
 * it and deletes everything. A server left running when the process exits is stopped then.
 *
 * Without the PostgreSQL 15 binaries the suites skip with a warning; under CI=true that is a failure.
 */
import { execFile, execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { chmodSync, chownSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync, appendFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import pg from 'pg';
import { freePort, waitFor } from './binaries.js';

export const POSTGRES_BIN_DIR = '/usr/lib/postgresql/15/bin';
/** The role that owns the test databases. */
export const POSTGRES_ROLE = 'watchpost';
const SERVICE_USER = 'postgres';
const DATABASE_NAME = /^[a-z_][a-z0-9_]{0,62}$/;

export interface PgServer {
  /** postgres://watchpost:<password>@127.0.0.1:<port>/watchpost */
  url: string;
  port: number;
  /** Creates an empty database owned by `watchpost`; returns its url. */
  createDatabase(name: string): Promise<string>;
  /** Stops the server (pg_ctl stop -m fast), keeping its port and data. */
  stop(): Promise<void>;
  /** Starts the stopped server again: same directory, same port. */
  start(): Promise<void>;
  /** Stops the server (if running) and deletes its directory; safe to call more than once. */
  destroy(): Promise<void>;
}

const asRoot = process.getuid?.() === 0;

function missingReason(): string | undefined {
  for (const binary of ['initdb', 'pg_ctl', 'postgres']) {
    if (!existsSync(join(POSTGRES_BIN_DIR, binary))) return `${join(POSTGRES_BIN_DIR, binary)} not found: install it with \`apt-get install -y postgresql-15\``;
  }
  if (asRoot) {
    try {
      execFileSync('id', ['-u', SERVICE_USER], { stdio: 'ignore' });
    } catch {
      return `user "${SERVICE_USER}" not found: PostgreSQL cannot run as root (the postgresql-15 package creates that user)`;
    }
  }
  return undefined;
}

/** True when a private PostgreSQL can be started; false (after a warning) outside CI. Throws in CI. */
export function requirePostgres(): boolean {
  const reason = missingReason();
  if (!reason) return true;
  if (process.env.CI === 'true') throw new Error(`${reason} (CI=true makes a missing server a failure)`);
  console.warn(`SKIPPING: ${reason}`);
  return false;
}

/** For `describe.skipIf(!postgresAvailable)`. */
export const postgresAvailable = requirePostgres();

/** Runs a PostgreSQL binary, as the `postgres` user when we are root; rejects with its output. */
function run(binary: string, args: string[], cwd: string, timeoutMs = 120_000): Promise<string> {
  const path = join(POSTGRES_BIN_DIR, binary);
  const [file, argv] = asRoot ? ['runuser', ['-u', SERVICE_USER, '--', path, ...args]] : [path, args];
  return new Promise((resolve, reject) => {
    execFile(file, argv, { cwd, timeout: timeoutMs, encoding: 'utf8' }, (err, stdout, stderr) => {
      if (err) reject(new Error(`${binary} ${args.join(' ')} failed: ${err.message}\n${stdout}${stderr}`.trim()));
      else resolve(stdout);
    });
  });
}

/** Gives the `postgres` user the right to pass through every parent of `dir` (o+x), as 711 does. */
function makeTraversable(dir: string): void {
  for (let d = dir; ; d = dirname(d)) {
    const mode = statSync(d).mode & 0o777;
    if ((mode & 0o001) === 0) chmodSync(d, mode | 0o711);
    if (dirname(d) === d) break;
  }
}

/** Servers of this process still running: stopped at exit so that none outlives a test run. */
const running = new Map<string, string>();
let exitHookInstalled = false;
function installExitHook(): void {
  if (exitHookInstalled) return;
  exitHookInstalled = true;
  process.once('exit', () => {
    for (const [dataDir, cwd] of running) {
      const args = ['-D', dataDir, '-m', 'immediate', '-w', '-t', '10', 'stop'];
      try {
        const path = join(POSTGRES_BIN_DIR, 'pg_ctl');
        if (asRoot) execFileSync('runuser', ['-u', SERVICE_USER, '--', path, ...args], { cwd, stdio: 'ignore' });
        else execFileSync(path, args, { cwd, stdio: 'ignore' });
      } catch {
        // Best effort on the way out.
      }
    }
  });
}

export async function startPostgres(): Promise<PgServer> {
  const reason = missingReason();
  if (reason) throw new Error(reason);
  const dir = mkdtempSync(join(tmpdir(), 'watchpost-postgres-'));
  const dataDir = join(dir, 'data');
  const socketDir = join(dir, 'socket');
  const logFile = join(dir, 'postgres.log');
  const password = randomBytes(18).toString('hex');
  const port = await freePort();
  const url = `postgres://${POSTGRES_ROLE}:${password}@127.0.0.1:${port}/${POSTGRES_ROLE}`;
  let isRunning = false;
  let destroyed = false;

  const admin = async <T>(fn: (client: pg.Client) => Promise<T>): Promise<T> => {
    const client = new pg.Client({ host: socketDir, port, user: SERVICE_USER, database: 'postgres', connectionTimeoutMillis: 10_000 });
    await client.connect();
    try {
      return await fn(client);
    } finally {
      await client.end();
    }
  };

  const logTail = () => {
    try {
      return readFileSync(logFile, 'utf8').slice(-3000);
    } catch {
      return '';
    }
  };

  const start = async () => {
    if (destroyed) throw new Error('this PostgreSQL was destroyed');
    if (isRunning) return;
    try {
      await run('pg_ctl', ['-D', dataDir, '-l', logFile, '-w', '-t', '60', 'start'], dir);
    } catch (err) {
      throw new Error(`${(err as Error).message}\n${logTail()}`, { cause: err });
    }
    isRunning = true;
    running.set(dataDir, dir);
    installExitHook();
    await waitFor(`PostgreSQL on port ${port}`, () => admin(async (c) => (await c.query('SELECT 1')).rowCount === 1 || undefined), 30_000);
  };

  const stop = async () => {
    if (!isRunning) return;
    await run('pg_ctl', ['-D', dataDir, '-m', 'fast', '-w', '-t', '60', 'stop'], dir);
    isRunning = false;
    running.delete(dataDir);
  };

  const destroy = async () => {
    if (destroyed) return;
    try {
      if (isRunning) {
        try {
          await stop();
        } catch {
          await run('pg_ctl', ['-D', dataDir, '-m', 'immediate', '-w', '-t', '30', 'stop'], dir).catch(() => undefined);
          killPostmaster(dataDir);
        }
      }
    } finally {
      isRunning = false;
      destroyed = true;
      running.delete(dataDir);
      rmSync(dir, { recursive: true, force: true });
    }
  };

  try {
    chmodSync(dir, 0o711);
    makeTraversable(dir);
    mkdirSync(dataDir, { mode: 0o700 });
    mkdirSync(socketDir, { mode: 0o700 });
    writeFileSync(logFile, '');
    if (asRoot) {
      const uid = Number(execFileSync('id', ['-u', SERVICE_USER], { encoding: 'utf8' }).trim());
      const gid = Number(execFileSync('id', ['-g', SERVICE_USER], { encoding: 'utf8' }).trim());
      for (const p of [dataDir, socketDir, logFile]) chownSync(p, uid, gid);
    }
    await run('initdb', ['-D', dataDir, '-U', SERVICE_USER, '--auth-local=trust', '--auth-host=scram-sha-256', '-E', 'UTF8', '--locale=C', '--no-instructions'], dir);
    appendFileSync(
      join(dataDir, 'postgresql.conf'),
      [
        '',
        "listen_addresses = '127.0.0.1'",
        `port = ${port}`,
        `unix_socket_directories = '${socketDir}'`,
        'fsync = on',
        'shared_buffers = 16MB',
        'max_connections = 100',
        "log_min_messages = 'warning'",
        'log_connections = off',
        '',
      ].join('\n'),
    );
    await start();
    await admin(async (c) => {
      await c.query(`CREATE ROLE ${POSTGRES_ROLE} LOGIN CREATEDB PASSWORD '${password}'`);
      await c.query(`CREATE DATABASE ${POSTGRES_ROLE} OWNER ${POSTGRES_ROLE}`);
    });
  } catch (err) {
    await destroy().catch(() => undefined);
    throw err;
  }

  return {
    url,
    port,
    async createDatabase(name) {
      if (!DATABASE_NAME.test(name)) throw new Error(`database name "${name}" must match ${String(DATABASE_NAME)}`);
      await admin((c) => c.query(`CREATE DATABASE "${name}" OWNER ${POSTGRES_ROLE}`));
      return `postgres://${POSTGRES_ROLE}:${password}@127.0.0.1:${port}/${name}`;
    },
    stop,
    start,
    destroy,
  };
}

/** Last resort when pg_ctl cannot stop it: SIGKILL the postmaster named in postmaster.pid. */
function killPostmaster(dataDir: string): void {
  try {
    const pid = Number(readFileSync(join(dataDir, 'postmaster.pid'), 'utf8').split('\n')[0]);
    if (Number.isInteger(pid) && pid > 0) process.kill(pid, 'SIGKILL');
  } catch {
    // Not running.
  }
}
