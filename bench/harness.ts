/** Shared pieces of the benchmark scripts: Watchpost as a production process, publishers, progress, output. */
import { fork, spawn, type ChildProcess } from 'node:child_process';
import { createWriteStream, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Influxd } from './support/influxd.js';
import type { PublisherJob, PublisherReport } from './publisher.js';

export const HERE = dirname(fileURLToPath(import.meta.url));
const CLI = join(HERE, '..', 'server', 'cli.js');

export const env = (name: string, fallback: number): number => (process.env[name] ? Number(process.env[name]) : fallback);

/** The InfluxDB writer's batch size (BATCH_SIZE, default 5000) and, when CONCURRENCY is set, its requests in flight. */
export const influxWriterTuning = (): { batch_size: number; concurrency?: number } => ({
  batch_size: env('BATCH_SIZE', 5000),
  ...(process.env.CONCURRENCY ? { concurrency: Number(process.env.CONCURRENCY) } : {}),
});

/** A progress line on a terminal (stderr), nothing when piped. */
export function progress(line: string): void {
  if (process.stderr.isTTY) process.stderr.write(`\r${line.padEnd(100)}`);
}

export function endProgress(): void {
  if (process.stderr.isTTY) process.stderr.write('\n');
}

export function printTable(rows: Array<[string, unknown]>): void {
  for (const [k, v] of rows) process.stdout.write(`${k.padEnd(28)} ${typeof v === 'number' ? v.toLocaleString('en-US') : String(v)}\n`);
}

export async function countStored(influx: Influxd, measurement = 'load'): Promise<number> {
  const [result] = await influx.query(`SELECT count(value) FROM ${measurement}`);
  const value = result?.series?.[0]?.values[0]?.[1];
  return typeof value === 'number' ? value : 0;
}

/** `count` bench devices, one asset and sensor each: bench-dau-<i> / bench-secret-<i> on bench-<i>/s1. */
export function benchDevices(count: number): PublisherJob['devices'] {
  return Array.from({ length: count }, (_, i) => ({ id: `bench-dau-${i}`, secret: `bench-secret-${i}`, asset: `bench-${i}`, sensor: 's1' }));
}

/** The metric `load` the bench devices publish. */
export const BENCH_METRICS = { load: { unit: '', min: -1e9, max: 1e9 } };

/**
 * Configuration of the bench devices: an asset each, and the device that may publish for it.
 * With `sensors`, each asset declares its one sensor and metric (readings for others are refused).
 */
export function benchCatalogue(list: PublisherJob['devices'], options: { sensors?: boolean } = {}) {
  return {
    assets: list.map((d) => ({
      id: d.asset,
      type: 'bench',
      name: d.asset,
      street: 'bench-street',
      ...(options.sensors ? { sensors: [{ id: d.sensor, metrics: ['load'] }] } : {}),
    })),
    devices: list.map((d) => ({ id: d.id, secret: d.secret, assets: [d.asset] })),
  };
}

/**
 * Polls InfluxDB until `expected` readings are queryable, or the count has not moved for 30 s.
 * Returns the count and when it last changed (performance.now()): the end of ingest.
 */
export async function waitQueryable(influx: Influxd, expected: number, label: string): Promise<{ stored: number; lastChange: number }> {
  let stored = 0;
  let lastChange = performance.now();
  for (;;) {
    const now = await countStored(influx);
    if (now !== stored) lastChange = performance.now();
    stored = now;
    progress(`${label}: ${stored.toLocaleString()} of ${expected.toLocaleString()} acknowledged readings queryable`);
    if (stored >= expected || performance.now() - lastChange > 30_000) return { stored, lastChange };
    await new Promise((r) => setTimeout(r, 250));
  }
}

export interface RunningWatchpost {
  child: ChildProcess;
  mqttUrl: string;
  apiUrl: string;
}

/**
 * Starts `watchpost start --config DIR` from the build, production settings, and reads its ports.
 * WATCHPOST_NODE_ARGS are passed to its node (e.g. `--cpu-prof --cpu-prof-dir=/tmp/prof`);
 * WATCHPOST_STDOUT=FILE keeps its stdout.
 */
export async function startWatchpost(configDir: string): Promise<RunningWatchpost> {
  const nodeArgs = (process.env.WATCHPOST_NODE_ARGS ?? '').split(' ').filter(Boolean);
  // The node flags `watchpost start` runs with (its `#!/usr/bin/env -S node …` line); WATCHPOST_NODE_ARGS come after and win.
  const cliFlags =
    /^#!\S*env -S node(.*)$/
      .exec(readFileSync(CLI, 'utf8').split('\n', 1)[0] ?? '')?.[1]
      ?.split(' ')
      .filter(Boolean) ?? [];
  const child = spawn(process.execPath, [...cliFlags, ...nodeArgs, CLI, 'start', '--config', configDir], {
    env: { ...process.env, NODE_ENV: 'production', WATCHPOST_LOG_LEVEL: 'info' },
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  // WATCHPOST_STDOUT=FILE keeps Watchpost's stdout (its log, and --trace-gc output) in FILE.
  if (process.env.WATCHPOST_STDOUT) child.stdout.pipe(createWriteStream(process.env.WATCHPOST_STDOUT));
  let out = '';
  const ports = await new Promise<{ mqtt_port: number; http_port: number }>((resolve, reject) => {
    child.stdout.on('data', (d: Buffer) => {
      out += d.toString();
      const line = out.split('\n').find((l) => l.includes('"msg":"watchpost started"'));
      if (line) resolve(JSON.parse(line) as { mqtt_port: number; http_port: number });
      if (out.length > 1_000_000) out = out.slice(-10_000);
    });
    child.once('exit', (code) => reject(new Error(`watchpost exited with ${code}: ${out.slice(-2000)}`)));
  });
  return { child, mqttUrl: `mqtt://127.0.0.1:${ports.mqtt_port}`, apiUrl: `http://127.0.0.1:${ports.http_port}` };
}

export async function stopChild(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null) return;
  const exited = new Promise((r) => child.once('exit', r));
  child.kill('SIGTERM');
  const t = setTimeout(() => child.kill('SIGKILL'), 15_000);
  await exited;
  clearTimeout(t);
}

/** Runs publisher processes, one per job; `onProgress` sees the summed live counts. */
export async function runPublishers(jobs: PublisherJob[], onProgress?: (acked: number, sent: number, reports: PublisherReport[]) => void, stop?: AbortSignal): Promise<PublisherReport[]> {
  const live = new Map<number, PublisherReport>();
  const done: PublisherReport[] = [];
  await Promise.all(
    jobs.map(
      (job, p) =>
        new Promise<void>((resolve, reject) => {
          // The job goes over IPC, not argv: one argument is limited to 128 KiB (MAX_ARG_STRLEN),
          // and thousands of devices exceed that (spawn E2BIG).
          const child = fork(join(HERE, 'publisher.js'), [], { stdio: 'inherit' });
          child.send(job);
          // `stop` ends publishing before the jobs' durationMs (each device stops at its next message).
          stop?.addEventListener('abort', () => child.connected && child.send({ type: 'stop' }), { once: true });
          child.on('message', (m: PublisherReport) => {
            live.set(p, m);
            if (m.type === 'done') done.push(m);
            onProgress?.(
              [...live.values()].reduce((s, r) => s + r.acked, 0),
              [...live.values()].reduce((s, r) => s + r.sent, 0),
              [...live.values()],
            );
          });
          child.once('exit', (code) => (code === 0 ? resolve() : reject(new Error(`publisher ${p} exited with ${code}`))));
        }),
    ),
  );
  return done;
}

/** Resident memory (bytes) and total CPU time (ms) of a process, from /proc. */
export function processUsage(pid: number): { rss: number; cpuMs: number } {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const rssKb = Number(/VmRSS:\s+(\d+)/.exec(status)?.[1] ?? 0);
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  const ticks = Number(fields[11]) + Number(fields[12]); // utime + stime, in clock ticks (100 Hz)
  return { rss: rssKb * 1024, cpuMs: ticks * 10 };
}
