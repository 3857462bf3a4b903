/**
 * Ingest benchmarks, each with its own influxd and a production build of Watchpost:
 *
 *   ingest-qos1   many devices, one reading per message, QoS 1, through the embedded broker
 *   ingest-batch  the same with 100 readings per message
 *   ceiling       the same points written straight to InfluxDB by a minimal batching writer
 *
 * Figure: sustained readings/s from the first publish until every acknowledged reading is
 * queryable in InfluxDB, and readings lost (acknowledged but not in InfluxDB; must be 0).
 * Environment: DURATION_S (default 20), DEVICES (default 200), PUBLISHERS (default 2), INFLIGHT,
 * BATCH_SIZE (InfluxDB batch, default 5000), CONCURRENCY (InfluxDB requests in flight, default: the platform's).
 */
import { fork } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { stringify } from 'yaml';
import { startInfluxd } from './support/influxd.js';
import type { CeilingJob } from './ceiling-writer.js';
import {
  BENCH_METRICS,
  benchCatalogue,
  benchDevices,
  countStored,
  endProgress,
  env,
  HERE,
  influxWriterTuning,
  printTable,
  processUsage,
  progress,
  runPublishers,
  startWatchpost,
  stopChild,
  waitQueryable,
} from './harness.js';
import type { PublisherJob } from './publisher.js';

export interface IngestFigures {
  scenario: string;
  readings_acked: number;
  readings_stored: number;
  readings_lost: number;
  publish_errors: number;
  seconds_to_queryable: number;
  readings_per_s: number;
  /** CPU time per stored reading (µs), by process, from the first publish until queryable. */
  watchpost_cpu_us_per_reading: number;
  influxd_cpu_us_per_reading: number;
  publishers_cpu_us_per_reading: number;
  /** 2 cores divided by the summed CPU time per reading: the most this machine could do with these costs. */
  cpu_bound_readings_per_s: number;
  ceiling_readings_per_s?: number;
  ratio_to_ceiling?: number;
  ceiling_influxd_cpu_us_per_reading?: number;
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
  const deviceList = benchDevices(devices);
  writeFileSync(
    join(dir, 'bench.yaml'),
    stringify({
      broker: { host: '127.0.0.1', port: 0 },
      api: { host: '127.0.0.1', port: 0, tokens: [{ name: 'bench', token: 'bench-token-0123456789', role: 'admin' }] },
      storage: {
        data_dir: join(dir, 'data'),
        influx: {
          url: influx.url,
          version: 1,
          database: 'telemetry',
          flush_interval: '200ms',
          ...influxWriterTuning(),
        },
      },
      metrics: BENCH_METRICS,
      ...benchCatalogue(deviceList, { sensors: true }),
    }),
  );
  const { child: watchpost, mqttUrl } = await startWatchpost(dir);
  try {
    const wpBefore = processUsage(watchpost.pid!);
    const influxBefore = processUsage(influx.pid()!);
    const started = performance.now();
    const perPublisher = Math.ceil(devices / publishers);
    const jobs: PublisherJob[] = Array.from({ length: publishers }, (_, p) => ({
      url: mqttUrl,
      devices: deviceList.slice(p * perPublisher, (p + 1) * perPublisher),
      metric: 'load',
      readingsPerMessage,
      durationMs,
      inflight,
      t0,
    }));
    const reports = await runPublishers(jobs, (acked) => progress(`${scenario}: ${((performance.now() - started) / 1000).toFixed(0)} s, ${acked.toLocaleString()} readings acknowledged`));
    const acked = reports.reduce((s, r) => s + r.acked, 0);
    const errors = reports.reduce((s, r) => s + r.errors, 0);
    const { stored, lastChange } = await waitQueryable(influx, acked, scenario);
    const seconds = (lastChange - started) / 1000;
    endProgress();
    const perReading = (ms: number) => Number(((ms * 1000) / Math.max(1, stored)).toFixed(2));
    const wpUs = perReading(processUsage(watchpost.pid!).cpuMs - wpBefore.cpuMs);
    const influxUs = perReading(processUsage(influx.pid()!).cpuMs - influxBefore.cpuMs);
    const publishersUs = perReading(reports.reduce((s, r) => s + (r.cpuMs ?? 0), 0));
    return {
      scenario,
      readings_acked: acked,
      readings_stored: stored,
      readings_lost: Math.max(0, acked - stored),
      publish_errors: errors,
      seconds_to_queryable: Number(seconds.toFixed(2)),
      readings_per_s: Math.round(acked / seconds),
      watchpost_cpu_us_per_reading: wpUs,
      influxd_cpu_us_per_reading: influxUs,
      publishers_cpu_us_per_reading: publishersUs,
      cpu_bound_readings_per_s: Math.round(2e6 / (wpUs + influxUs + publishersUs)),
    };
  } finally {
    await stopChild(watchpost);
    await influx.stop();
    rmSync(dir, { recursive: true, force: true });
  }
}

export async function runCeiling(points: number): Promise<{ readings_per_s: number; points: number; seconds: number; influxd_cpu_us_per_reading: number }> {
  const influx = await startInfluxd({ database: 'telemetry' });
  try {
    const before = processUsage(influx.pid()!);
    const series = env('DEVICES', 200);
    const job: CeilingJob = {
      url: influx.url,
      database: 'telemetry',
      series,
      pointsPerSeries: Math.ceil(points / series),
      batchSize: 5000,
      concurrency: 2,
      t0: Date.now() - 30 * 86_400_000,
    };
    const result = await new Promise<{ written: number; ms: number }>((resolve, reject) => {
      const child = fork(join(HERE, 'ceiling-writer.js'), [JSON.stringify(job)], { stdio: 'inherit' });
      child.on('message', (m: { written: number; ms: number }) => resolve(m));
      child.once('exit', (code) => code !== 0 && reject(new Error(`ceiling writer exited with ${code}`)));
    });
    const stored = await countStored(influx);
    if (stored !== result.written) throw new Error(`ceiling: wrote ${result.written} but ${stored} are queryable`);
    const influxdUs = Number((((processUsage(influx.pid()!).cpuMs - before.cpuMs) * 1000) / result.written).toFixed(2));
    return { readings_per_s: Math.round(result.written / (result.ms / 1000)), points: result.written, seconds: Number((result.ms / 1000).toFixed(2)), influxd_cpu_us_per_reading: influxdUs };
  } finally {
    await influx.stop();
  }
}

export async function main(scenario: string): Promise<void> {
  if (scenario === 'ceiling') {
    const c = await runCeiling(env('POINTS', 2_000_000));
    printTable([
      ['scenario', 'ceiling'],
      ['points', c.points],
      ['seconds', c.seconds],
      ['readings/s', c.readings_per_s],
      ['influxd CPU µs/reading', c.influxd_cpu_us_per_reading],
    ]);
    process.stdout.write(`${JSON.stringify({ scenario: 'ceiling', ...c })}\n`);
    return;
  }
  const figures = await runIngest(scenario as 'ingest-qos1' | 'ingest-batch');
  // The ceiling is measured in the same run, for the same number of points.
  const ceiling = await runCeiling(Math.max(figures.readings_acked, 100_000));
  figures.ceiling_readings_per_s = ceiling.readings_per_s;
  figures.ratio_to_ceiling = Number((figures.readings_per_s / ceiling.readings_per_s).toFixed(3));
  figures.ceiling_influxd_cpu_us_per_reading = ceiling.influxd_cpu_us_per_reading;
  printTable(Object.entries(figures));
  process.stdout.write(`${JSON.stringify(figures)}\n`);
}
