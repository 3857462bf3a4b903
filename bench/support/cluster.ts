/**
 * A Watchpost cluster on this machine for end-to-end tests and the cluster benchmark: private
 * PostgreSQL, RabbitMQ, mosquitto (the MQTT broker in front, shared subscription) and influxd,
 * and Watchpost instances as child processes (`node dist/server/cli.js start`) that all read one
 * configuration directory; each instance's id, data directory and engine URLs come from its
 * environment (`${WP_INSTANCE}`, ...), as a deployment would give them.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { stringify } from 'yaml';
import { startInfluxd, type Influxd } from './influxd.js';
import { startMosquitto, type Mosquitto } from './mosquitto.js';
import { startPostgres, type PgServer } from './postgres.js';
import { startRabbitMQ, type RabbitServer } from './rabbitmq.js';
import { startSteadyPublisher, type SteadyPublisher } from './steady-publisher.js';

/** The package root, from bench/support (tests) or dist/bench/support (the built benchmark). */
export const ROOT = [resolve(import.meta.dirname, '..', '..'), resolve(import.meta.dirname, '..', '..', '..')].find((d) => existsSync(join(d, 'package.json')))!;
export const CLI = join(ROOT, 'dist', 'server', 'cli.js');

export const CLUSTER_TOKEN = 'cluster-admin-token-0001';
export const SHARED_GROUP = 'watchpost';

export interface ClusterEngines {
  postgres: PgServer;
  rabbit: RabbitServer;
  mosquitto: Mosquitto;
  influx: Influxd;
  stop(): Promise<void>;
}

/** All four servers, started at once. */
export async function startClusterEngines(): Promise<ClusterEngines> {
  const started = await Promise.allSettled([
    startPostgres(),
    startRabbitMQ(),
    // The broker holds QoS 1 messages for a Watchpost session that is away (killed, restarting) or not acknowledging (RabbitMQ down).
    startMosquitto({ extraConfig: ['max_queued_messages 1000000', 'max_inflight_messages 100'] }),
    startInfluxd({ database: 'telemetry' }),
  ]);
  const stopAll = async () => {
    await Promise.all(
      started.map(async (s) => {
        if (s.status !== 'fulfilled') return;
        const server = s.value as { destroy?: () => Promise<void>; stop: () => Promise<void> };
        await (server.destroy ? server.destroy() : server.stop()).catch(() => undefined);
      }),
    );
  };
  const failed = started.find((s) => s.status === 'rejected');
  if (failed) {
    await stopAll();
    throw failed.reason;
  }
  const [postgres, rabbit, mosquitto, influx] = started.map((s) => (s as PromiseFulfilledResult<unknown>).value) as [PgServer, RabbitServer, Mosquitto, Influxd];
  return { postgres, rabbit, mosquitto, influx, stop: stopAll };
}

export interface ClusterConfigOptions {
  engines: ClusterEngines;
  partitions: number;
  /** False: the same configuration without its `cluster` section (one instance on SQLite, for comparison). */
  cluster?: boolean;
  /** Configuration sections beside broker, api, storage and cluster (assets, rules, ...). */
  sections: Record<string, unknown>;
}

/** The configuration every instance reads; per-instance values are environment variables. */
export function writeClusterConfig(dir: string, options: ClusterConfigOptions): void {
  const { engines } = options;
  mkdirSync(dir, { recursive: true });
  const config = {
    broker: { url: engines.mosquitto.url, shared_group: SHARED_GROUP, client_id: 'watchpost-${WP_INSTANCE}' },
    api: { host: '127.0.0.1', port: 0, public_url: 'http://127.0.0.1:8080', tokens: [{ name: 'admin', token: CLUSTER_TOKEN, role: 'admin' }] },
    storage: {
      data_dir: '${WP_DATA_DIR}',
      influx: { url: engines.influx.url, version: 1, database: engines.influx.database, flush_interval: '200ms', timeout: '2s', retry_max_delay: '1s' },
      deadman: { no_readings: '10m', failing_writes: '10m' },
    },
    ...(options.cluster === false ? {} : { cluster: { instance_id: '${WP_INSTANCE}', amqp_url: '${WP_AMQP_URL}', postgres_url: '${WP_PG_URL}', partitions: options.partitions } }),
    ...options.sections,
  };
  writeFileSync(join(dir, 'watchpost.yaml'), stringify(config));
}

export interface Instance {
  id: string;
  child: ChildProcess;
  apiUrl: string;
  logs(): string;
  kill9(): Promise<void>;
  stop(): Promise<number | null>;
}

/** Runs instances of one cluster configuration; each keeps its data directory across restarts. */
export class ClusterRunner {
  readonly dir = mkdtempSync(join(tmpdir(), 'watchpost-cluster-'));
  readonly configDir = join(this.dir, 'config');
  readonly instances = new Map<string, Instance>();
  private readonly logText = new Map<string, { text: string }>();

  constructor(private readonly engines: ClusterEngines) {}

  /** Starts instance `id` and waits for its "watchpost started" line. */
  async start(id: string, timeoutMs = 60_000): Promise<Instance> {
    const sink = this.logText.get(id) ?? { text: '' };
    this.logText.set(id, sink);
    const from = sink.text.length;
    const child = spawn(process.execPath, [CLI, 'start', '--config', this.configDir], {
      cwd: ROOT,
      env: {
        ...process.env,
        WATCHPOST_LOG_LEVEL: 'info',
        WATCHPOST_LOG_FORMAT: 'json',
        WP_INSTANCE: id,
        WP_DATA_DIR: join(this.dir, `data-${id}`),
        WP_AMQP_URL: this.engines.rabbit.url,
        WP_PG_URL: this.engines.postgres.url,
      },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    // 'close': after the last output, which 'exit' may precede.
    const exited = new Promise<number | null>((r) => child.once('close', (code) => r(code)));
    child.stdout.on('data', (d: Buffer) => (sink.text += d.toString()));
    child.stderr.on('data', (d: Buffer) => (sink.text += d.toString()));
    const killOnExit = () => child.kill('SIGKILL');
    process.once('exit', killOnExit);
    const httpPort = await new Promise<number>((resolveStart, reject) => {
      const timer = setTimeout(() => {
        child.kill('SIGKILL');
        reject(new Error(`instance ${id} did not start: ${sink.text.slice(-3000)}`));
      }, timeoutMs);
      const onData = () => {
        const line = sink.text
          .slice(from)
          .split('\n')
          .find((l) => l.includes('"msg":"watchpost started"'));
        if (!line) return;
        clearTimeout(timer);
        child.stdout.off('data', onData);
        resolveStart((JSON.parse(line) as { http_port: number }).http_port);
      };
      child.stdout.on('data', onData);
      void exited.then((code) => {
        clearTimeout(timer);
        reject(new Error(`instance ${id} exited with ${code} before it started: ${sink.text.slice(-3000)}`));
      });
    });
    const instance: Instance = {
      id,
      child,
      apiUrl: `http://127.0.0.1:${httpPort}`,
      logs: () => sink.text,
      kill9: async () => {
        process.off('exit', killOnExit);
        if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
        await exited;
        if (this.instances.get(id) === instance) this.instances.delete(id);
      },
      stop: async () => {
        process.off('exit', killOnExit);
        if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
        const code = await exited;
        if (this.instances.get(id) === instance) this.instances.delete(id);
        return code;
      },
    };
    this.instances.set(id, instance);
    return instance;
  }

  logs(id: string): string {
    return this.logText.get(id)?.text ?? '';
  }

  async stopAll(): Promise<void> {
    await Promise.all([...this.instances.values()].map((i) => i.stop()));
  }

  async destroy(): Promise<void> {
    await Promise.all([...this.instances.values()].map((i) => i.kill9()));
    rmSync(this.dir, { recursive: true, force: true });
  }
}

export interface ClusterHealthBody {
  status: string;
  cluster?: { instance_id: string; amqp: string; postgres: string; partitions: number; owned: number[]; leader: boolean };
}

export async function clusterHealth(instance: Instance): Promise<{ code: number; body: ClusterHealthBody } | undefined> {
  try {
    const res = await fetch(`${instance.apiUrl}/healthz`, { signal: AbortSignal.timeout(3000) });
    return { code: res.status, body: (await res.json()) as ClusterHealthBody };
  } catch {
    return undefined;
  }
}

/** The partitions owned by the given instances, according to their /healthz; undefined for one that does not answer. */
export async function ownership(instances: Iterable<Instance>): Promise<Map<string, number[] | undefined>> {
  const out = new Map<string, number[] | undefined>();
  await Promise.all(
    [...instances].map(async (i) => {
      const h = await clusterHealth(i);
      out.set(i.id, h?.body.cluster?.owned);
    }),
  );
  return out;
}

/** True when the instances own every partition exactly once between them. */
export function coversAll(owned: Map<string, number[] | undefined>, partitions: number): boolean {
  const seen = new Set<number>();
  for (const list of owned.values()) {
    if (!list) return false;
    for (const p of list) {
      if (seen.has(p)) return false;
      seen.add(p);
    }
  }
  return seen.size === partitions;
}

/** A device of the cluster tests (bench/support/steady-publisher.ts). */
export type Device = SteadyPublisher;

/**
 * A device publishing one reading every 1000/rate ms at QoS 1, timestamped with the time it is
 * taken (`tsBase + seq * 1000/rate`, so `for` durations and windows see real time), keeping each
 * until the broker acknowledges it and sending the unacknowledged ones again after a reconnect.
 */
export function startDevice(options: { url: string; clientId: string; topic: string; rate: number; metric: string; valueOf: (seq: number) => number; tsBase?: number }): Device {
  return startSteadyPublisher({ ...options, tsBase: options.tsBase ?? Date.now(), tsStepMs: 1000 / options.rate });
}
