/**
 * connections: RSS and CPU of Watchpost with DEVICES (default 10,000) connected devices, one MQTT
 * connection each, each publishing one reading every INTERVAL_S (default 10) seconds, over
 * PUBLISHERS publisher processes. Samples /proc for the Watchpost process once everyone is
 * connected, over a MEASURE_S window.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { stringify } from 'yaml';
import { startInfluxd } from '../test/support/influxd.js';
import { endProgress, env, printTable, processUsage, progress, runPublishers, startWatchpost, stopChild } from './harness.js';
import type { PublisherJob } from './publisher.js';

export async function main(): Promise<void> {
  const devices = env('DEVICES', 10_000);
  const intervalS = env('INTERVAL_S', 10);
  const measureS = env('MEASURE_S', 30);
  const publishers = env('PUBLISHERS', 4);
  const influx = await startInfluxd({ database: 'telemetry' });
  const dir = mkdtempSync(join(tmpdir(), 'watchpost-bench-conn-'));
  const list = Array.from({ length: devices }, (_, i) => ({ id: `bench-dau-${i}`, secret: `bench-secret-${i}`, asset: `bench-${i}`, sensor: 's1' }));
  writeFileSync(
    join(dir, 'bench.yaml'),
    stringify({
      broker: { host: '127.0.0.1', port: 0 },
      api: { host: '127.0.0.1', port: 0 },
      storage: { data_dir: join(dir, 'data'), influx: { url: influx.url, version: 1, database: 'telemetry' } },
      metrics: { load: { unit: '', min: -1e9, max: 1e9 } },
      assets: list.map((d) => ({ id: d.asset, type: 'bench', name: d.asset, street: 'bench-street' })),
      devices: list.map((d) => ({ id: d.id, secret: d.secret, assets: [d.asset] })),
    }),
  );
  const wp = await startWatchpost(dir);
  const pid = wp.child.pid!;
  try {
    const idle = processUsage(pid);
    const connectAllowanceS = Math.ceil(devices / 500) + 10;
    const per = Math.ceil(devices / publishers);
    const jobs: PublisherJob[] = Array.from({ length: publishers }, (_, p) => ({
      url: wp.mqttUrl,
      devices: list.slice(p * per, (p + 1) * per),
      metric: 'load',
      readingsPerMessage: 1,
      durationMs: (connectAllowanceS + measureS + intervalS) * 1000,
      inflight: 1,
      t0: Date.now() - 30 * 86_400_000,
      intervalMs: intervalS * 1000,
      connectConcurrency: 100,
    }));
    let acked = 0;
    const run = runPublishers(jobs, (a) => (acked = a));
    // Wait until every device has published at least once (all are connected), then measure.
    const started = performance.now();
    while (acked < devices && performance.now() - started < (connectAllowanceS + intervalS) * 1000) {
      progress(`connections: ${acked.toLocaleString()} of ${devices.toLocaleString()} devices have published`);
      await new Promise((r) => setTimeout(r, 500));
    }
    const before = processUsage(pid);
    const ackedBefore = acked;
    let peakRss = before.rss;
    const windowStart = performance.now();
    while (performance.now() - windowStart < measureS * 1000) {
      peakRss = Math.max(peakRss, processUsage(pid).rss);
      progress(`connections: measuring, RSS ${(peakRss / 1048576).toFixed(0)} MB`);
      await new Promise((r) => setTimeout(r, 500));
    }
    const after = processUsage(pid);
    const seconds = (performance.now() - windowStart) / 1000;
    const rate = (acked - ackedBefore) / seconds;
    endProgress();
    const figures = {
      scenario: 'connections',
      devices,
      devices_published: ackedBefore >= devices ? devices : ackedBefore,
      readings_per_s: Math.round(rate),
      idle_rss_mb: Number((idle.rss / 1048576).toFixed(1)),
      rss_mb: Number((after.rss / 1048576).toFixed(1)),
      peak_rss_mb: Number((peakRss / 1048576).toFixed(1)),
      cpu_percent_of_one_core: Number((((after.cpuMs - before.cpuMs) / (seconds * 1000)) * 100).toFixed(1)),
    };
    printTable(Object.entries(figures));
    process.stdout.write(`${JSON.stringify(figures)}\n`);
    await run;
  } finally {
    await stopChild(wp.child);
    await influx.stop();
    rmSync(dir, { recursive: true, force: true });
  }
}
