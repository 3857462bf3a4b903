/**
 * external-broker: ingest through mosquitto with a shared subscription, with 1 and with 2
 * Watchpost instances (`$share/watchpost/…`). Devices publish QoS 1 to mosquitto as fast as its
 * PUBACKs allow; the figure is readings/s until every acknowledged reading is queryable in
 * InfluxDB, and readings lost. mosquitto is configured not to drop queued QoS 1 messages
 * (max_queued_messages 0): its default of 1000 per client silently drops bursts.
 *
 * Environment: DURATION_S (20), DEVICES (200), PUBLISHERS (2), INFLIGHT (per device, 50),
 * INSTANCES (`1,2`), BROKER_INFLIGHT (mosquitto `max_inflight_messages`, the QoS 1 messages it
 * sends each Watchpost connection before a PUBACK: 20, mosquitto's default; 0 = no limit, which
 * with more than 65,535 queued messages reuses packet ids), MAX_INFLIGHT (Watchpost
 * `broker.max_inflight`, default the configuration's).
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { stringify } from 'yaml';
import { startInfluxd } from './support/influxd.js';
import { startMosquitto } from './support/mosquitto.js';
import { histogramQuantile } from '../lib/histogram-quantile.js';
import { metricValue } from './support/metric-value.js';
import {
  BENCH_METRICS,
  benchCatalogue,
  benchDevices,
  endProgress,
  env,
  printTable,
  processUsage,
  progress,
  runPublishers,
  startWatchpost,
  stopChild,
  waitQueryable,
  type RunningWatchpost,
} from './harness.js';
import type { PublisherJob } from './publisher.js';

const sampleValue = (text: string, sample: string): number => metricValue(text, sample) ?? NaN;

/** Group commit as the instances saw it: points per spool commit, and fdatasync latency (first instance, from its histogram's buckets). */
async function spoolFigures(running: RunningWatchpost[]): Promise<Record<string, number>> {
  const texts = await Promise.all(running.map(async (r) => (await fetch(`${r.apiUrl}/metrics`)).text()));
  const sum = (name: string) => texts.reduce((s, t) => s + sampleValue(t, name), 0);
  const ms = (q: number) => Number(((histogramQuantile(texts[0]!, 'watchpost_spool_sync_latency_seconds', q) ?? NaN) * 1000).toFixed(3));
  return {
    points_per_spool_commit: Number((sum('watchpost_spool_appended_total') / sum('watchpost_spool_commits_total')).toFixed(1)),
    spool_sync_p50_ms: ms(0.5),
    spool_sync_p99_ms: ms(0.99),
  };
}

async function runWith(instances: number): Promise<Record<string, number | string>> {
  const durationMs = env('DURATION_S', 20) * 1000;
  const devices = env('DEVICES', 200);
  const publishers = env('PUBLISHERS', 2);
  const list = benchDevices(devices);
  const users: Record<string, string> = { watchpost: 'watchpost-pass-01' };
  for (const d of list) users[d.id] = d.secret;
  const broker = await startMosquitto({ users, extraConfig: ['max_queued_messages 0', `max_inflight_messages ${env('BROKER_INFLIGHT', 20)}`] });
  const influx = await startInfluxd({ database: 'telemetry' });
  const dirs: string[] = [];
  const running: RunningWatchpost[] = [];
  try {
    for (let i = 0; i < instances; i++) {
      const dir = mkdtempSync(join(tmpdir(), 'watchpost-bench-ext-'));
      dirs.push(dir);
      writeFileSync(
        join(dir, 'bench.yaml'),
        stringify({
          broker: {
            url: broker.url,
            username: 'watchpost',
            password: 'watchpost-pass-01',
            shared_group: 'watchpost',
            client_id: `watchpost-bench-${i}`,
            ...(process.env.MAX_INFLIGHT ? { max_inflight: Number(process.env.MAX_INFLIGHT) } : {}),
          },
          api: { host: '127.0.0.1', port: 0 },
          storage: { data_dir: join(dir, 'data'), influx: { url: influx.url, version: 1, database: 'telemetry', batch_size: 5000, flush_interval: '200ms' } },
          metrics: BENCH_METRICS,
          ...benchCatalogue(list),
        }),
      );
      running.push(await startWatchpost(dir));
    }
    const cpuBefore = running.map((r) => processUsage(r.child.pid!).cpuMs);
    const started = performance.now();
    const per = Math.ceil(devices / publishers);
    const t0 = Date.now() - 30 * 86_400_000;
    const jobs: PublisherJob[] = Array.from({ length: publishers }, (_, p) => ({
      url: broker.url,
      devices: list.slice(p * per, (p + 1) * per),
      metric: 'load',
      readingsPerMessage: 1,
      durationMs,
      inflight: env('INFLIGHT', 50),
      t0,
    }));
    const reports = await runPublishers(jobs, (acked) => progress(`external-broker x${instances}: ${acked.toLocaleString()} readings acknowledged by mosquitto`));
    const acked = reports.reduce((s, r) => s + r.acked, 0);
    const { stored, lastChange } = await waitQueryable(influx, acked, `external-broker x${instances}`);
    endProgress();
    const seconds = (lastChange - started) / 1000;
    const cpuMs = running.reduce((sum, r, i) => sum + processUsage(r.child.pid!).cpuMs - cpuBefore[i]!, 0);
    const spool = await spoolFigures(running);
    return {
      scenario: `external-broker-x${instances}`,
      instances,
      readings_acked: acked,
      readings_stored: stored,
      readings_lost: Math.max(0, acked - stored),
      seconds_to_queryable: Number(seconds.toFixed(2)),
      readings_per_s: Math.round(acked / seconds),
      /** CPU time of the Watchpost process(es) per stored reading. */
      watchpost_cpu_us_per_reading: Number(((cpuMs * 1000) / Math.max(1, stored)).toFixed(2)),
      ...spool,
      broker_inflight: env('BROKER_INFLIGHT', 20),
      load_avg_1m: Number(loadavg()[0]!.toFixed(2)),
    };
  } finally {
    for (const r of running) await stopChild(r.child);
    await influx.stop();
    await broker.stop();
    for (const d of dirs) rmSync(d, { recursive: true, force: true });
  }
}

export async function main(): Promise<void> {
  for (const instances of (process.env.INSTANCES ?? '1,2').split(',').map(Number)) {
    const figures = await runWith(instances);
    printTable(Object.entries(figures));
    process.stdout.write(`${JSON.stringify(figures)}\n`);
  }
}
