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
import { execFile, execFileSync, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { chmodSync, chownSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync, appendFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
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
  /** Creates an empty database owned by `watchpost` (collating by `icuLocale`, e.g. en-US, when given); returns its url. */
  createDatabase(name: string, options?: { icuLocale?: string }): Promise<string>;
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

/** The command line of a PostgreSQL binary, as the `postgres` user when we are root. */
function commandOf(binary: string, args: string[]): [string, string[]] {
  const path = join(POSTGRES_BIN_DIR, binary);
  return asRoot ? ['runuser', ['-u', SERVICE_USER, '--', path, ...args]] : [path, args];
}

function failure(binary: string, args: string[], err: Error, output: string): Error {
  return new Error(`${binary} ${args.join(' ')} failed: ${err.message}\n${output}`.trim(), { cause: err });
}

/** Runs a PostgreSQL binary; rejects with its output. */
function run(binary: string, args: string[], cwd: string, timeoutMs = 120_000): Promise<string> {
  const [file, argv] = commandOf(binary, args);
  return new Promise((resolve, reject) => {
    execFile(file, argv, { cwd, timeout: timeoutMs, encoding: 'utf8' }, (err, stdout, stderr) => {
      if (err) reject(failure(binary, args, err, stdout + stderr));
      else resolve(stdout);
    });
  });
}

function runSync(binary: string, args: string[], cwd: string, timeoutMs = 120_000): string {
  const [file, argv] = commandOf(binary, args);
  try {
    return execFileSync(file, argv, { cwd, timeout: timeoutMs, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
  } catch (err) {
    const e = err as Error & { stdout?: string; stderr?: string };
    throw failure(binary, args, e, `${e.stdout ?? ''}${e.stderr ?? ''}`);
  }
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
    for (const [dataDir, dir] of running) {
      try {
        runSync('pg_ctl', ['-D', dataDir, '-m', 'immediate', '-w', '-t', '10', 'stop'], dir, 15_000);
      } catch {
        killPostmaster(dataDir);
      }
      rmSync(dir, { recursive: true, force: true });
    }
  });
}

/** One server's files, settings and commands; runs them with `run` (async) or `runSync`. */
class Cluster {
  readonly dataDir: string;
  readonly socketDir: string;
  readonly logFile: string;
  readonly password = randomBytes(18).toString('hex');
  readonly url: string;
  running = false;
  destroyed = false;

  constructor(
    readonly dir: string,
    readonly port: number,
  ) {
    this.dataDir = join(dir, 'data');
    this.socketDir = join(dir, 'socket');
    this.logFile = join(dir, 'postgres.log');
    this.url = this.urlOf(POSTGRES_ROLE);
  }

  static create(port: number): Cluster {
    const reason = missingReason();
    if (reason) throw new Error(reason);
    const cluster = new Cluster(mkdtempSync(join(tmpdir(), 'watchpost-postgres-')), port);
    cluster.prepareDirs();
    return cluster;
  }

  urlOf(database: string): string {
    return `postgres://${POSTGRES_ROLE}:${this.password}@127.0.0.1:${this.port}/${database}`;
  }

  private prepareDirs(): void {
    chmodSync(this.dir, 0o711);
    makeTraversable(this.dir);
    mkdirSync(this.dataDir, { mode: 0o700 });
    mkdirSync(this.socketDir, { mode: 0o700 });
    writeFileSync(this.logFile, '');
    if (asRoot) {
      const uid = Number(execFileSync('id', ['-u', SERVICE_USER], { encoding: 'utf8' }).trim());
      const gid = Number(execFileSync('id', ['-g', SERVICE_USER], { encoding: 'utf8' }).trim());
      for (const p of [this.dataDir, this.socketDir, this.logFile]) chownSync(p, uid, gid);
    }
  }

  readonly initdbArgs = () => ['-D', this.dataDir, '-U', SERVICE_USER, '--auth-local=trust', '--auth-host=scram-sha-256', '-E', 'UTF8', '--locale=C', '--no-instructions', '--no-sync'];
  readonly startArgs = () => ['-D', this.dataDir, '-l', this.logFile, '-w', '-t', '60', 'start'];
  readonly stopArgs = (mode: 'fast' | 'immediate') => ['-D', this.dataDir, '-m', mode, '-w', '-t', '60', 'stop'];
  /** psql as the superuser over the unix socket (trusted there), stopping at the first error. */
  readonly psqlArgs = (sql: string) => ['-X', '-q', '-v', 'ON_ERROR_STOP=1', '-h', this.socketDir, '-p', String(this.port), '-U', SERVICE_USER, '-d', 'postgres', '-c', sql];
  readonly setupSql = () => [`CREATE ROLE ${POSTGRES_ROLE} LOGIN CREATEDB PASSWORD '${this.password}'`, `CREATE DATABASE ${POSTGRES_ROLE} OWNER ${POSTGRES_ROLE}`];

  createDatabaseSql(name: string, icuLocale?: string): string {
    if (!DATABASE_NAME.test(name)) throw new Error(`database name "${name}" must match ${String(DATABASE_NAME)}`);
    if (icuLocale === undefined) return `CREATE DATABASE "${name}" OWNER ${POSTGRES_ROLE}`;
    if (!/^[A-Za-z0-9-]{1,32}$/.test(icuLocale)) throw new Error(`ICU locale "${icuLocale}" must be letters, digits and hyphens`);
    return `CREATE DATABASE "${name}" OWNER ${POSTGRES_ROLE} TEMPLATE template0 LOCALE_PROVIDER icu ICU_LOCALE '${icuLocale}'`;
  }

  configure(): void {
    appendFileSync(
      join(this.dataDir, 'postgresql.conf'),
      [
        '',
        "listen_addresses = '127.0.0.1'",
        `port = ${this.port}`,
        `unix_socket_directories = '${this.socketDir}'`,
        'fsync = on',
        'shared_buffers = 16MB',
        'max_connections = 100',
        "log_min_messages = 'warning'",
        '',
      ].join('\n'),
    );
  }

  started(): void {
    this.running = true;
    running.set(this.dataDir, this.dir);
    installExitHook();
    this.watchParent();
  }

  private watching = false;

  /**
   * A process killed by a signal runs no exit hook: a watchdog shell stops the server and deletes
   * its directory once this process is gone (and ends by itself once destroy() deleted it).
   */
  private watchParent(): void {
    if (this.watching) return;
    this.watching = true;
    const [file, argv] = commandOf('pg_ctl', this.stopArgs('immediate'));
    const quote = (arg: string) => `'${arg.replace(/'/g, `'\\''`)}'`;
    const stop = [file, ...argv].map(quote).join(' ');
    const script = `while kill -0 ${process.pid} 2>/dev/null && [ -d ${quote(this.dataDir)} ]; do sleep 1; done; if [ -d ${quote(this.dataDir)} ]; then ${stop} >/dev/null 2>&1; rm -rf ${quote(this.dir)}; fi`;
    spawn('sh', ['-c', script], { cwd: '/', detached: true, stdio: 'ignore' }).unref();
  }

  stopped(): void {
    this.running = false;
    running.delete(this.dataDir);
  }

  remove(): void {
    this.stopped();
    this.destroyed = true;
    rmSync(this.dir, { recursive: true, force: true });
  }

  logTail(): string {
    try {
      return readFileSync(this.logFile, 'utf8').slice(-3000);
    } catch {
      return '';
    }
  }
}

export async function startPostgres(): Promise<PgServer> {
  const cluster = Cluster.create(await freePort());
  const { dir } = cluster;
  const psql = (sql: string) => run('psql', cluster.psqlArgs(sql), dir, 60_000);

  const start = async () => {
    if (cluster.destroyed) throw new Error('this PostgreSQL was destroyed');
    if (cluster.running) return;
    try {
      await run('pg_ctl', cluster.startArgs(), dir);
    } catch (err) {
      throw new Error(`${(err as Error).message}\n${cluster.logTail()}`, { cause: err });
    }
    cluster.started();
    await waitFor(`PostgreSQL on port ${cluster.port}`, async () => (await psql('SELECT 1'), true), 30_000);
  };

  const stop = async () => {
    if (!cluster.running) return;
    await run('pg_ctl', cluster.stopArgs('fast'), dir);
    cluster.stopped();
  };

  const destroy = async () => {
    if (cluster.destroyed) return;
    try {
      if (cluster.running) {
        try {
          await stop();
        } catch {
          await run('pg_ctl', cluster.stopArgs('immediate'), dir).catch(() => undefined);
          killPostmaster(cluster.dataDir);
        }
      }
    } finally {
      cluster.remove();
    }
  };

  try {
    await run('initdb', cluster.initdbArgs(), dir);
    cluster.configure();
    await start();
    for (const sql of cluster.setupSql()) await psql(sql);
  } catch (err) {
    await destroy().catch(() => undefined);
    throw err;
  }

  return {
    url: cluster.url,
    port: cluster.port,
    async createDatabase(name, options = {}) {
      await psql(cluster.createDatabaseSql(name, options.icuLocale));
      return cluster.urlOf(name);
    },
    stop,
    start,
    destroy,
  };
}

/** A private PostgreSQL started without awaiting: for test code that must stay synchronous (the alert store factory). */
export interface PgServerSync {
  url: string;
  port: number;
  createDatabase(name: string): string;
  destroy(): void;
}

export function startPostgresSync(): PgServerSync {
  const cluster = Cluster.create(freePortSync());
  const { dir } = cluster;
  const psql = (sql: string) => runSync('psql', cluster.psqlArgs(sql), dir, 60_000);
  const destroy = () => {
    if (cluster.destroyed) return;
    try {
      if (cluster.running) {
        try {
          runSync('pg_ctl', cluster.stopArgs('fast'), dir);
        } catch {
          killPostmaster(cluster.dataDir);
        }
      }
    } finally {
      cluster.remove();
    }
  };
  try {
    runSync('initdb', cluster.initdbArgs(), dir);
    cluster.configure();
    try {
      runSync('pg_ctl', cluster.startArgs(), dir);
    } catch (err) {
      throw new Error(`${(err as Error).message}\n${cluster.logTail()}`, { cause: err });
    }
    cluster.started();
    for (const sql of cluster.setupSql()) psql(sql);
  } catch (err) {
    destroy();
    throw err;
  }
  return {
    url: cluster.url,
    port: cluster.port,
    createDatabase(name) {
      psql(cluster.createDatabaseSql(name));
      return cluster.urlOf(name);
    },
    destroy,
  };
}

/** freePort() without awaiting: a child process listens on 0 and prints the port. */
function freePortSync(): number {
  const script = "const s=require('net').createServer();s.listen(0,'127.0.0.1',()=>{process.stdout.write(String(s.address().port));s.close()})";
  return Number(execFileSync(process.execPath, ['-e', script], { encoding: 'utf8' }));
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
