/**
 * Ingest benchmarks, each with its own influxd and a production build of Watchpost:
 *
 *   ingest-qos1   many devices, one reading per message, QoS 1, through the embedded broker
 *   ingest-batch  the same with 100 readings per message
 *   ceiling       the same points written straight to InfluxDB by a minimal batching writer
 *
 * Figure: sustained readings/s from the first publish until every acknowledged reading is
 * queryable in InfluxDB, and readings lost (acknowledged but not in InfluxDB; must be 0).
 * Environment: DURATION_S (default 20), DEVICES (default 200), PUBLISHERS (default 2), INFLIGHT.
 */
import { fork, spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { stringify } from 'yaml';
import { startInfluxd, type Influxd } from '../test/support/influxd.js';
import type { CeilingJob } from './ceiling-writer.js';
import type { PublisherJob, PublisherReport } from './publisher.js';

const HERE = dirname(fileURLToPath(import.meta.url));
const CLI = join(HERE, '..', 'server', 'cli.js');
const env = (name: string, fallback: number) => (process.env[name] ? Number(process.env[name]) : fallback);

export interface IngestFigures {
  scenario: string;
  readings_acked: number;
  readings_stored: number;
  readings_lost: number;
  publish_errors: number;
  seconds_to_queryable: number;
  readings_per_s: number;
  ceiling_readings_per_s?: number;
  ratio_to_ceiling?: number;
}

function progress(line: string): void {
  if (process.stderr.isTTY) process.stderr.write(`\r${line.padEnd(100)}`);
}

async function countStored(influx: Influxd): Promise<number> {
  const [result] = await influx.query('SELECT count(value) FROM load');
  const value = result?.series?.[0]?.values[0]?.[1];
  return typeof value === 'number' ? value : 0;
}

async function startWatchpost(configDir: string): Promise<{ child: ChildProcess; mqttUrl: string }> {
  const child = spawn(process.execPath, [CLI, 'start', '--config', configDir], {
    env: { ...process.env, NODE_ENV: 'production', WATCHPOST_LOG_LEVEL: 'info' },
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  let out = '';
  const port = await new Promise<number>((resolve, reject) => {
    child.stdout!.on('data', (d: Buffer) => {
      out += d.toString();
      const line = out.split('\n').find((l) => l.includes('"msg":"watchpost started"'));
      if (line) resolve((JSON.parse(line) as { mqtt_port: number }).mqtt_port);
      if (out.length > 1_000_000) out = out.slice(-10_000);
    });
    child.once('exit', (code) => reject(new Error(`watchpost exited with ${code}: ${out.slice(-2000)}`)));
  });
  return { child, mqttUrl: `mqtt://127.0.0.1:${port}` };
}

async function stopChild(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null) return;
  const exited = new Promise((r) => child.once('exit', r));
  child.kill('SIGTERM');
  const t = setTimeout(() => child.kill('SIGKILL'), 15_000);
  await exited;
  clearTimeout(t);
}

export async function runIngest(scenario: 'ingest-qos1' | 'ingest-batch'): Promise<IngestFigures> {
  const durationMs = env('DURATION_S', 20) * 1000;
  const devices = env('DEVICES', 200);
  const publishers = env('PUBLISHERS', 2);
  const readingsPerMessage = scenario === 'ingest-batch' ? 100 : 1;
  const inflight = env('INFLIGHT', scenario === 'ingest-batch' ? 4 : 50);
  const t0 = Date.now() - 30 * 86_400_000;

  const influx = await startInfluxd({ database: 'telemetry' });
  const dir = mkdtempSync(join(tmpdir(), 'watchpost-bench-'));
  const deviceList = Array.from({ length: devices }, (_, i) => ({ id: `bench-dau-${i}`, secret: `bench-secret-${i}`, asset: `bench-${i}`, sensor: 's1' }));
  writeFileSync(
    join(dir, 'bench.yaml'),
    stringify({
      broker: { host: '127.0.0.1', port: 0 },
      api: { host: '127.0.0.1', port: 0, tokens: [{ name: 'bench', token: 'bench-token-0123456789', role: 'admin' }] },
      storage: { data_dir: join(dir, 'data'), influx: { url: influx.url, version: 1, database: 'telemetry', batch_size: 5000, flush_interval: '200ms' } },
      metrics: { load: { unit: '', min: -1e9, max: 1e9 } },
      assets: deviceList.map((d) => ({ id: d.asset, type: 'bench', name: d.asset, street: 'bench-street', sensors: [{ id: d.sensor, metrics: ['load'] }] })),
      devices: deviceList.map((d) => ({ id: d.id, secret: d.secret, assets: [d.asset] })),
    }),
  );
  const { child: watchpost, mqttUrl } = await startWatchpost(dir);
  try {
    const started = performance.now();
    const perPublisher = Math.ceil(devices / publishers);
    const reports: PublisherReport[] = [];
    const live = new Map<number, PublisherReport>();
    const timer = setInterval(() => {
      const acked = [...live.values()].reduce((s, r) => s + r.acked, 0);
      progress(`${scenario}: ${((performance.now() - started) / 1000).toFixed(0)} s, ${acked.toLocaleString()} readings acknowledged`);
    }, 500);
    await Promise.all(
      Array.from({ length: publishers }, (_, p) => {
        const job: PublisherJob = { url: mqttUrl, devices: deviceList.slice(p * perPublisher, (p + 1) * perPublisher), metric: 'load', readingsPerMessage, durationMs, inflight, t0 };
        return new Promise<void>((resolve, reject) => {
          const child = fork(join(HERE, 'publisher.js'), [JSON.stringify(job)], { stdio: 'inherit' });
          child.on('message', (m: PublisherReport) => {
            live.set(p, m);
            if (m.type === 'done') reports.push(m);
          });
          child.once('exit', (code) => (code === 0 ? resolve() : reject(new Error(`publisher ${p} exited with ${code}`))));
        });
      }),
    );
    const acked = reports.reduce((s, r) => s + r.acked, 0);
    const errors = reports.reduce((s, r) => s + r.errors, 0);
    let stored = 0;
    let lastChange = performance.now();
    for (;;) {
      const now = await countStored(influx);
      if (now !== stored) lastChange = performance.now();
      stored = now;
      progress(`${scenario}: ${stored.toLocaleString()} of ${acked.toLocaleString()} acknowledged readings queryable`);
      if (stored >= acked || performance.now() - lastChange > 30_000) break;
      await new Promise((r) => setTimeout(r, 250));
    }
    clearInterval(timer);
    const seconds = (lastChange - started) / 1000;
    if (process.stderr.isTTY) process.stderr.write('\n');
    return {
      scenario,
      readings_acked: acked,
      readings_stored: stored,
      readings_lost: Math.max(0, acked - stored),
      publish_errors: errors,
      seconds_to_queryable: Number(seconds.toFixed(2)),
      readings_per_s: Math.round(acked / seconds),
    };
  } finally {
    await stopChild(watchpost);
    await influx.stop();
    rmSync(dir, { recursive: true, force: true });
  }
}

export async function runCeiling(points: number): Promise<{ readings_per_s: number; points: number; seconds: number }> {
  const influx = await startInfluxd({ database: 'telemetry' });
  try {
    const series = env('DEVICES', 200);
    const job: CeilingJob = { url: influx.url, database: 'telemetry', series, pointsPerSeries: Math.ceil(points / series), batchSize: 5000, concurrency: 2, t0: Date.now() - 30 * 86_400_000 };
    const result = await new Promise<{ written: number; ms: number }>((resolve, reject) => {
      const child = fork(join(HERE, 'ceiling-writer.js'), [JSON.stringify(job)], { stdio: 'inherit' });
      child.on('message', (m: { written: number; ms: number }) => resolve(m));
      child.once('exit', (code) => code !== 0 && reject(new Error(`ceiling writer exited with ${code}`)));
    });
    const stored = await countStored(influx);
    if (stored !== result.written) throw new Error(`ceiling: wrote ${result.written} but ${stored} are queryable`);
    return { readings_per_s: Math.round(result.written / (result.ms / 1000)), points: result.written, seconds: Number((result.ms / 1000).toFixed(2)) };
  } finally {
    await influx.stop();
  }
}

function printTable(rows: Array<[string, string | number]>): void {
  for (const [k, v] of rows) process.stdout.write(`${k.padEnd(28)} ${typeof v === 'number' ? v.toLocaleString('en-US') : v}\n`);
}

export async function main(scenario: string): Promise<void> {
  if (scenario === 'ceiling') {
    const c = await runCeiling(env('POINTS', 2_000_000));
    printTable([['scenario', 'ceiling'], ['points', c.points], ['seconds', c.seconds], ['readings/s', c.readings_per_s]]);
    process.stdout.write(`${JSON.stringify({ scenario: 'ceiling', ...c })}\n`);
    return;
  }
  const figures = await runIngest(scenario as 'ingest-qos1' | 'ingest-batch');
  // The ceiling is measured in the same run, for the same number of points.
  const ceiling = await runCeiling(Math.max(figures.readings_acked, 100_000));
  figures.ceiling_readings_per_s = ceiling.readings_per_s;
  figures.ratio_to_ceiling = Number((figures.readings_per_s / ceiling.readings_per_s).toFixed(3));
  printTable(Object.entries(figures) as Array<[string, string | number]>);
  process.stdout.write(`${JSON.stringify(figures)}\n`);
}
