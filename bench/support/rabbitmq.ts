/**
 * A private RabbitMQ 3.10 for end-to-end tests and benchmarks: its own node name, AMQP port on
 * 127.0.0.1, distribution port, epmd (on its own port, so that servers of parallel test files
 * never share one), database, logs, config and cookie, all in a temp dir. One user `watchpost`
 * with a random password (the default `guest` is not created); no plugins.
 *
 * RabbitMQ refuses nothing as root, but its files belong to the `rabbitmq` user: started by
 * root, the server and its epmd run as that user. `stop()` / `start()` stop and start the same
 * node (same ports, same data) to test clients riding out an outage; `destroy()` stops it and
 * deletes everything. A server left running when the process exits is killed then.
 *
 * Without RabbitMQ the suites skip with a warning; under CI=true that is a failure.
 */
import { spawn, execFile, execFileSync, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { chmodSync, chownSync, closeSync, existsSync, mkdirSync, mkdtempSync, openSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { connect as connectTcp } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import amqp from 'amqplib';
import { freePort, which, waitFor } from './binaries.js';

/** The role that the test servers create. */
export const RABBITMQ_USER = 'watchpost';
const SERVICE_USER = 'rabbitmq';
/** The real start script; /usr/sbin/rabbitmq-server is a wrapper that forces cwd and HOME. */
const SERVER_SCRIPTS = ['/usr/lib/rabbitmq/bin/rabbitmq-server', '/usr/lib/rabbitmq/sbin/rabbitmq-server'];
const CTL_SCRIPTS = ['/usr/lib/rabbitmq/bin/rabbitmqctl', '/usr/lib/rabbitmq/sbin/rabbitmqctl'];
const START_TIMEOUT_MS = 90_000;
const STOP_TIMEOUT_MS = 30_000;

export interface RabbitServer {
  /** amqp://watchpost:<password>@127.0.0.1:<port>/ */
  url: string;
  port: number;
  /** Its temp dir (database, logs, cookie); beam.smp runs with `-home <dir>`. */
  dir: string;
  /** Runs `rabbitmqctl <args>` against this node (e.g. `set_vm_memory_high_watermark 0` raises a memory alarm); resolves with its output. */
  ctl(args: string[]): Promise<string>;
  /** Stops the node (SIGTERM through its pid file, waited for), keeping its ports and data. */
  stop(): Promise<void>;
  /** Starts the stopped node again: same directory, same ports, same queues. */
  start(): Promise<void>;
  /** Stops the node (if running) and its epmd and deletes its directory; safe to call more than once. */
  destroy(): Promise<void>;
}

const asRoot = process.getuid?.() === 0;

function serverScript(): string | undefined {
  return SERVER_SCRIPTS.find((p) => existsSync(p)) ?? which('rabbitmq-server');
}

function missingReason(): string | undefined {
  if (!serverScript()) return 'rabbitmq-server not found: install it with `apt-get install -y rabbitmq-server`';
  if (!which('epmd')) return 'epmd not found: install it with `apt-get install -y erlang-base`';
  if (asRoot) {
    try {
      execFileSync('id', ['-u', SERVICE_USER], { stdio: 'ignore' });
    } catch {
      return `user "${SERVICE_USER}" not found (the rabbitmq-server package creates that user)`;
    }
  }
  return undefined;
}

/** True when a private RabbitMQ can be started; false (after a warning) outside CI. Throws in CI. */
export function requireRabbitMQ(): boolean {
  const reason = missingReason();
  if (!reason) return true;
  if (process.env.CI === 'true') throw new Error(`${reason} (CI=true makes a missing server a failure)`);
  console.warn(`SKIPPING: ${reason}`);
  return false;
}

/** For `describe.skipIf(!rabbitmqAvailable)`. */
export const rabbitmqAvailable = requireRabbitMQ();

/** Gives the `rabbitmq` user the right to pass through every parent of `dir` (o+x), as 711 does. */
function makeTraversable(dir: string): void {
  for (let d = dir; ; d = dirname(d)) {
    const mode = statSync(d).mode & 0o777;
    if ((mode & 0o001) === 0) chmodSync(d, mode | 0o711);
    if (dirname(d) === d) break;
  }
}

/** Pids (beam.smp, epmd) of this process's servers still running: killed at exit. */
const livePids = new Set<number>();
let exitHookInstalled = false;
function installExitHook(): void {
  if (exitHookInstalled) return;
  exitHookInstalled = true;
  process.once('exit', () => {
    for (const pid of livePids) {
      try {
        process.kill(pid, 'SIGKILL');
      } catch {
        // Already gone.
      }
    }
  });
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

async function waitForExit(pid: number, timeoutMs: number): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  while (alive(pid)) {
    if (Date.now() > deadline) return false;
    await new Promise((r) => setTimeout(r, 50));
  }
  return true;
}

function tcpOpen(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connectTcp(port, '127.0.0.1');
    socket.once('connect', () => {
      socket.destroy();
      resolve(true);
    });
    socket.once('error', () => resolve(false));
  });
}

export async function startRabbitMQ(): Promise<RabbitServer> {
  const reason = missingReason();
  if (reason) throw new Error(reason);
  const script = serverScript()!;
  const dir = mkdtempSync(join(tmpdir(), 'watchpost-rabbitmq-'));
  const mnesiaDir = join(dir, 'mnesia');
  const logDir = join(dir, 'log');
  const pidFile = join(dir, 'rabbitmq.pid');
  const configFile = join(dir, 'rabbitmq.conf');
  const pluginsFile = join(dir, 'enabled_plugins');
  const envFile = join(dir, 'rabbitmq-env.conf');
  const outFile = join(dir, 'server.out');
  const password = randomBytes(18).toString('hex');
  const nodeName = `wp${randomBytes(6).toString('hex')}@localhost`;
  const port = await freePort();
  let distPort = await freePort();
  while (distPort === port) distPort = await freePort();
  let epmdPort = await freePort();
  while (epmdPort === port || epmdPort === distPort) epmdPort = await freePort();
  const url = `amqp://${RABBITMQ_USER}:${password}@127.0.0.1:${port}/`;
  const ids = asRoot
    ? {
        uid: Number(execFileSync('id', ['-u', SERVICE_USER], { encoding: 'utf8' }).trim()),
        gid: Number(execFileSync('id', ['-g', SERVICE_USER], { encoding: 'utf8' }).trim()),
      }
    : {};
  const env: NodeJS.ProcessEnv = {
    PATH: process.env.PATH ?? '/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin',
    LANG: 'C.UTF-8',
    HOME: dir,
    RABBITMQ_NODENAME: nodeName,
    RABBITMQ_NODE_IP_ADDRESS: '127.0.0.1',
    RABBITMQ_NODE_PORT: String(port),
    RABBITMQ_DIST_PORT: String(distPort),
    ERL_EPMD_PORT: String(epmdPort),
    ERL_EPMD_ADDRESS: '127.0.0.1',
    RABBITMQ_MNESIA_BASE: mnesiaDir,
    RABBITMQ_LOG_BASE: logDir,
    RABBITMQ_PID_FILE: pidFile,
    RABBITMQ_CONFIG_FILE: configFile,
    RABBITMQ_ENABLED_PLUGINS_FILE: pluginsFile,
    RABBITMQ_CONF_ENV_FILE: envFile,
    // No busy-waiting schedulers: the test machine is shared.
    RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS: '+sbwt none +sbwtdcpu none +sbwtdio none',
  };

  let server: ChildProcess | undefined;
  let epmd: ChildProcess | undefined;
  let destroyed = false;

  const logTail = () => {
    const parts: string[] = [];
    for (const file of [outFile, join(logDir, `${nodeName}.log`)]) {
      try {
        parts.push(readFileSync(file, 'utf8').slice(-2000));
      } catch {
        // Not written yet.
      }
    }
    return parts.join('\n');
  };

  const startEpmd = async () => {
    if (epmd && epmd.exitCode === null && epmd.signalCode === null) return;
    // Without -daemon, so that it stays our child and dies with destroy().
    const child = spawn('epmd', ['-port', String(epmdPort), '-address', '127.0.0.1'], { cwd: dir, env, stdio: 'ignore', ...ids });
    epmd = child;
    if (child.pid) livePids.add(child.pid);
    installExitHook();
    await waitFor(`epmd on port ${epmdPort}`, async () => {
      if (child.exitCode !== null) throw new Error(`epmd exited with ${child.exitCode}`);
      return (await tcpOpen(epmdPort)) || undefined;
    });
  };

  const brokerPid = (): number | undefined => {
    try {
      const pid = Number(readFileSync(pidFile, 'utf8').trim());
      if (Number.isInteger(pid) && pid > 0) return pid;
    } catch {
      // Not written yet or removed at shutdown.
    }
    return server?.pid;
  };

  const start = async () => {
    if (destroyed) throw new Error('this RabbitMQ was destroyed');
    if (server) return;
    await startEpmd();
    const out = openSync(outFile, 'a');
    if (ids.uid !== undefined) chownSync(outFile, ids.uid, ids.gid);
    const child = spawn(script, [], { cwd: dir, env, stdio: ['ignore', out, out], ...ids });
    closeSync(out);
    server = child;
    if (child.pid) livePids.add(child.pid);
    try {
      await waitFor(
        `RabbitMQ on port ${port}`,
        async () => {
          if (child.exitCode !== null || child.signalCode !== null) throw new Error(`rabbitmq-server exited (${child.exitCode ?? child.signalCode})`);
          const connection = await amqp.connect(url, { timeout: 2000 });
          await connection.close();
          return true;
        },
        START_TIMEOUT_MS,
        200,
      );
      const pid = brokerPid();
      if (pid) livePids.add(pid);
    } catch (err) {
      await stop().catch(() => undefined);
      throw new Error(`${(err as Error).message}\n${logTail()}`, { cause: err });
    }
  };

  const stop = async () => {
    const child = server;
    if (!child) return;
    const pid = brokerPid();
    const pids = [...new Set([pid, child.pid].filter((p): p is number => p !== undefined))];
    // SIGTERM makes the node shut down cleanly (queues closed, pid file removed).
    for (const p of pids) {
      try {
        process.kill(p, 'SIGTERM');
      } catch {
        // Already gone.
      }
    }
    for (const p of pids) {
      if (!(await waitForExit(p, STOP_TIMEOUT_MS))) {
        try {
          process.kill(p, 'SIGKILL');
        } catch {
          // Gone meanwhile.
        }
        await waitForExit(p, 5000);
      }
      livePids.delete(p);
    }
    server = undefined;
  };

  const ctl = (args: string[]): Promise<string> => {
    const path = CTL_SCRIPTS.find((p) => existsSync(p)) ?? which('rabbitmqctl') ?? 'rabbitmqctl';
    return new Promise((resolve, reject) => {
      execFile(path, ['-n', nodeName, ...args], { cwd: dir, env, timeout: 60_000, encoding: 'utf8', ...ids }, (err, stdout, stderr) => {
        if (err) reject(new Error(`rabbitmqctl ${args.join(' ')} failed: ${err.message}\n${stdout}${stderr}`.trim(), { cause: err }));
        else resolve(stdout);
      });
    });
  };

  const destroy = async () => {
    if (destroyed) return;
    try {
      await stop();
    } finally {
      destroyed = true;
      if (epmd?.pid) {
        const pid = epmd.pid;
        if (epmd.exitCode === null && epmd.signalCode === null) epmd.kill('SIGKILL');
        await waitForExit(pid, 5000);
        livePids.delete(pid);
      }
      rmSync(dir, { recursive: true, force: true });
    }
  };

  try {
    chmodSync(dir, 0o711);
    makeTraversable(dir);
    mkdirSync(mnesiaDir, { mode: 0o700 });
    mkdirSync(logDir, { mode: 0o700 });
    writeFileSync(
      configFile,
      [
        `listeners.tcp.1 = 127.0.0.1:${port}`,
        `default_user = ${RABBITMQ_USER}`,
        `default_pass = ${password}`,
        'default_vhost = /',
        'default_permissions.configure = .*',
        'default_permissions.read = .*',
        'default_permissions.write = .*',
        'disk_free_limit.absolute = 50MB',
        // Quorum queues' write-ahead log: small, many servers share the disk.
        'raft.wal_max_size_bytes = 64000000',
        'log.console = false',
        'log.file.level = warning',
        '',
      ].join('\n'),
      { mode: 0o600 },
    );
    writeFileSync(pluginsFile, '[].\n');
    writeFileSync(envFile, '');
    if (ids.uid !== undefined) {
      for (const p of [dir, mnesiaDir, logDir, configFile, pluginsFile, envFile]) chownSync(p, ids.uid, ids.gid);
    }
    await start();
  } catch (err) {
    await destroy().catch(() => undefined);
    throw err;
  }

  return { url, port, dir, ctl, stop, start, destroy };
}
