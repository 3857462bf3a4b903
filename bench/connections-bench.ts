/**
 * connections: RSS and CPU of Watchpost with DEVICES (default 10,000) connected devices, one MQTT
 * connection each (keepalive 60 s), each publishing one QoS 1 reading every INTERVAL_S (default
 * 10) seconds, over PUBLISHERS publisher processes.
 *
 * Phases: wait until every device's CONNACK has arrived (at most CONNECT_TIMEOUT_S), then one
 * interval more so every device has published, then sample /proc of the Watchpost process every
 * 500 ms over a MEASURE_S window: RSS at the end and at its peak (also split into anonymous memory,
 * which is Watchpost's own, and file-backed pages, mostly the node binary), CPU over the window.
 * WATCHPOST_NODE_ARGS passes flags to Watchpost's node (e.g. `--heapsnapshot-signal=SIGUSR2`).
 */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { stringify } from 'yaml';
import { startInfluxd } from './support/influxd.js';
import { BENCH_METRICS, benchCatalogue, benchDevices, endProgress, env, printTable, processUsage, progress, runPublishers, startWatchpost, stopChild } from './harness.js';
import type { PublisherJob, PublisherReport } from './publisher.js';

const mb = (bytes: number): number => Number((bytes / 1048576).toFixed(1));

/** Anonymous and file-backed resident memory of a process, from /proc (bytes). */
function rssSplit(pid: number): { anon: number; file: number } {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const kb = (name: string) => Number(new RegExp(`${name}:\\s+(\\d+)`).exec(status)?.[1] ?? 0) * 1024;
  return { anon: kb('RssAnon'), file: kb('RssFile') + kb('RssShmem') };
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

export async function main(): Promise<void> {
  const devices = env('DEVICES', 10_000);
  const intervalS = env('INTERVAL_S', 10);
  const measureS = env('MEASURE_S', 30);
  const publishers = env('PUBLISHERS', 4);
  // Generous: on a loaded 2-core machine 10,000 connects take 30-90 s.
  const connectTimeoutS = env('CONNECT_TIMEOUT_S', Math.max(60, Math.ceil(devices / 50)));
  const influx = await startInfluxd({ database: 'telemetry' });
  const dir = mkdtempSync(join(tmpdir(), 'watchpost-bench-conn-'));
  const list = benchDevices(devices);
  writeFileSync(
    join(dir, 'bench.yaml'),
    stringify({
      broker: { host: '127.0.0.1', port: 0 },
      api: { host: '127.0.0.1', port: 0 },
      storage: { data_dir: join(dir, 'data'), influx: { url: influx.url, version: 1, database: 'telemetry' } },
      metrics: BENCH_METRICS,
      ...benchCatalogue(list),
    }),
  );
  let wp: Awaited<ReturnType<typeof startWatchpost>> | undefined;
  const stop = new AbortController();
  let run: Promise<unknown> | undefined;
  try {
    wp = await startWatchpost(dir);
    const pid = wp.child.pid!;
    await sleep(2000);
    const idle = processUsage(pid);
    const per = Math.ceil(devices / publishers);
    const jobs: PublisherJob[] = Array.from({ length: publishers }, (_, p) => ({
      url: wp!.mqttUrl,
      devices: list.slice(p * per, (p + 1) * per),
      metric: 'load',
      readingsPerMessage: 1,
      // Ended by `stop` after the measurement; the duration is only the upper bound.
      durationMs: (connectTimeoutS + 2 * intervalS + measureS + 30) * 1000,
      inflight: 1,
      t0: Date.now() - 30 * 86_400_000,
      intervalMs: intervalS * 1000,
      connectConcurrency: 100,
    }));
    let acked = 0;
    let reports: PublisherReport[] = [];
    let failed: Error | undefined;
    run = runPublishers(
      jobs,
      (a, _sent, r) => {
        acked = a;
        reports = r;
      },
      stop.signal,
    ).catch((e: Error) => (failed = e));
    const sum = (key: 'connected' | 'errors') => reports.reduce((s, r) => s + (r[key] ?? 0), 0);

    // 1. Every device connected (or failed to).
    const connectStart = performance.now();
    while (!failed && sum('connected') + sum('errors') < devices && performance.now() - connectStart < connectTimeoutS * 1000) {
      progress(`connections: ${sum('connected').toLocaleString()} of ${devices.toLocaleString()} devices connected, ${sum('errors')} errors`);
      await sleep(500);
    }
    if (failed) throw failed;
    const connectS = (performance.now() - connectStart) / 1000;
    const connected = sum('connected');
    // 2. One interval more: every connected device has published at least once.
    const settleStart = performance.now();
    while (performance.now() - settleStart < intervalS * 1000 + 1000) {
      progress(`connections: ${connected.toLocaleString()} connected; settling`);
      await sleep(500);
    }
    // 3. The measurement window.
    const before = processUsage(pid);
    const ackedBefore = acked;
    const errorsBefore = sum('errors');
    let peakRss = before.rss;
    const windowStart = performance.now();
    while (performance.now() - windowStart < measureS * 1000) {
      peakRss = Math.max(peakRss, processUsage(pid).rss);
      progress(`connections: measuring, RSS ${mb(peakRss)} MB`);
      await sleep(500);
    }
    const after = processUsage(pid);
    const split = rssSplit(pid);
    const seconds = (performance.now() - windowStart) / 1000;
    // A Prometheus scrape with every device connected (HTTP round trip included), after the CPU window.
    const scrapes: number[] = [];
    for (let i = 0; i < 20; i++) {
      const t = performance.now();
      await (await fetch(`${wp.apiUrl}/metrics`)).text();
      scrapes.push(performance.now() - t);
    }
    scrapes.sort((a, b) => a - b);
    endProgress();
    const figures = {
      scenario: 'connections',
      devices,
      devices_connected: connected,
      connect_s: Number(connectS.toFixed(1)),
      interval_s: intervalS,
      readings_per_s: Math.round((acked - ackedBefore) / seconds),
      errors_in_window: sum('errors') - errorsBefore,
      idle_rss_mb: mb(idle.rss),
      rss_mb: mb(after.rss),
      peak_rss_mb: mb(peakRss),
      rss_anon_mb: mb(split.anon),
      rss_file_mb: mb(split.file),
      cpu_percent_of_one_core: Number((((after.cpuMs - before.cpuMs) / (seconds * 1000)) * 100).toFixed(1)),
      metrics_scrape_p50_ms: Number(scrapes[10]!.toFixed(2)),
      metrics_scrape_max_ms: Number(scrapes[19]!.toFixed(2)),
      node_args: process.env.WATCHPOST_NODE_ARGS ?? '',
    };
    printTable(Object.entries(figures));
    process.stdout.write(`${JSON.stringify(figures)}\n`);
  } finally {
    stop.abort();
    await run;
    if (wp) await stopChild(wp.child);
    await influx.stop();
    rmSync(dir, { recursive: true, force: true });
  }
}
