/**
 * spool-drain: how fast the spool's backlog reaches InfluxDB after an outage, while live load
 * continues. influxd and a production Watchpost (embedded broker); publisher processes send a
 * steady QoS 1 load (DEVICES devices, one reading every INTERVAL_MS each); after WARMUP_S influxd
 * is stopped for OUTAGE_S, so the readings pile up in the spool, then started again.
 *
 * Figures, from GET /metrics (`watchpost_spool_depth`, `watchpost_storage_written_total`):
 * the backlog when influxd came back; how long until the writer's first successful write (its
 * retry backoff, `retry_max_delay`); from then until the spool is back to its steady depth, the
 * seconds, the backlog drained per second (net of the live readings arriving meanwhile) and the
 * points written per second (backlog and live); at the end, readings lost (acknowledged but not
 * queryable in InfluxDB, checked device by device over the timestamps each had acknowledged;
 * must be 0).
 *
 * Environment: OUTAGE_S (30), WARMUP_S (10), LIVE_AFTER_S (live load after the outage, 60),
 * DEVICES (200), INTERVAL_MS (40: 200 devices x 25/s = 5,000 readings/s), PUBLISHERS (2),
 * BATCH_SIZE (5000), CONCURRENCY (storage.influx.concurrency, default 2), RETRY_MAX_DELAY_S (10).
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { stringify } from 'yaml';
import { startInfluxd, type Influxd } from './support/influxd.js';
import {
  BENCH_METRICS,
  benchCatalogue,
  benchDevices,
  endProgress,
  env,
  influxWriterTuning,
  printTable,
  progress,
  runPublishers,
  startWatchpost,
  stopChild,
  waitQueryable,
} from './harness.js';
import type { PublisherJob, PublisherReport } from './publisher.js';

interface Sample {
  at: number;
  depth: number;
  written: number;
}

/** A sample of /metrics; 0 when absent (a counter appears once it first counts). */
function metric(text: string, name: string): number {
  for (const line of text.split('\n')) if (line.startsWith(`${name} `)) return Number(line.slice(name.length + 1));
  return 0;
}

async function sample(apiUrl: string): Promise<Sample> {
  const text = await (await fetch(`${apiUrl}/metrics`)).text();
  if (!text.includes('\nwatchpost_spool_depth ')) throw new Error('GET /metrics has no watchpost_spool_depth');
  return { at: performance.now(), depth: metric(text, 'watchpost_spool_depth'), written: metric(text, 'watchpost_storage_written_total') };
}

/**
 * Acknowledged readings not queryable: device d acknowledged readings t0 .. t0 + n_d - 1 (its
 * publisher reports n_d, the highest acknowledged); each must be in InfluxDB. One request, one
 * count statement per device.
 */
async function countLost(influx: Influxd, list: Array<{ id: string; asset: string }>, reports: PublisherReport[], t0: number): Promise<number> {
  const acked = new Map<string, number>();
  for (const r of reports) for (const [id, n] of Object.entries(r.ackedPerDevice ?? {})) acked.set(id, n);
  const devices = list.filter((d) => (acked.get(d.id) ?? 0) > 0);
  if (devices.length === 0) return 0;
  const statements = devices.map((d) => `SELECT count(value) FROM load WHERE asset_id = '${d.asset}' AND time >= ${t0}ms AND time < ${t0 + acked.get(d.id)!}ms`);
  const results = await influx.query(statements.join('; '));
  let lost = 0;
  devices.forEach((d, i) => {
    const value = results[i]?.series?.[0]?.values[0]?.[1];
    lost += acked.get(d.id)! - (typeof value === 'number' ? value : 0);
  });
  return lost;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

export async function main(): Promise<void> {
  const outageS = env('OUTAGE_S', 30);
  const warmupS = env('WARMUP_S', 10);
  const liveAfterS = env('LIVE_AFTER_S', 60);
  const devices = env('DEVICES', 200);
  const intervalMs = env('INTERVAL_MS', 40);
  const publishers = env('PUBLISHERS', 2);
  const batchSize = influxWriterTuning().batch_size;

  const influx = await startInfluxd({ database: 'telemetry' });
  const dir = mkdtempSync(join(tmpdir(), 'watchpost-bench-drain-'));
  const list = benchDevices(devices);
  writeFileSync(
    join(dir, 'bench.yaml'),
    stringify({
      broker: { host: '127.0.0.1', port: 0 },
      api: { host: '127.0.0.1', port: 0 },
      storage: {
        data_dir: join(dir, 'data'),
        influx: {
          url: influx.url,
          version: 1,
          database: 'telemetry',
          ...influxWriterTuning(),
          retry_max_delay: `${env('RETRY_MAX_DELAY_S', 10)}s`,
        },
      },
      metrics: BENCH_METRICS,
      ...benchCatalogue(list, { sensors: true }),
    }),
  );
  const watchpost = await startWatchpost(dir);
  try {
    const per = Math.ceil(devices / publishers);
    const t0 = Date.now() - 30 * 86_400_000;
    const jobs: PublisherJob[] = Array.from({ length: publishers }, (_, p) => ({
      url: watchpost.mqttUrl,
      devices: list.slice(p * per, (p + 1) * per),
      metric: 'load',
      readingsPerMessage: 1,
      durationMs: (warmupS + outageS + liveAfterS) * 1000,
      inflight: 1,
      intervalMs,
      t0,
    }));
    let acked = 0;
    let live = true;
    const load = runPublishers(jobs, (n) => (acked = n)).finally(() => (live = false));
    const phase = (what: string, s: Sample) => progress(`spool-drain: ${what}; ${acked.toLocaleString()} acknowledged, spool depth ${s.depth.toLocaleString()}`);

    // Warm-up: the steady depth under live load (what is always on its way to InfluxDB).
    const steady: number[] = [];
    const warmupEnd = performance.now() + warmupS * 1000;
    while (performance.now() < warmupEnd) {
      const s = await sample(watchpost.apiUrl);
      steady.push(s.depth);
      phase('warm-up', s);
      await sleep(250);
    }
    const steadyDepth = steady.slice(Math.floor(steady.length / 2)).reduce((a, b) => Math.max(a, b), 0);

    await influx.pause();
    const outageEnd = performance.now() + outageS * 1000;
    while (performance.now() < outageEnd) {
      phase(`influxd down, ${Math.ceil((outageEnd - performance.now()) / 1000)} s left`, await sample(watchpost.apiUrl));
      await sleep(500);
    }
    await influx.resume();
    const resumed = await sample(watchpost.apiUrl);

    // Drain: from the first point written after the outage until the depth is back to steady.
    const nearZero = Math.max(batchSize, 2 * steadyDepth);
    let first: Sample | undefined;
    let last = resumed;
    for (;;) {
      const s = await sample(watchpost.apiUrl);
      if (!first && s.written > resumed.written) first = last;
      last = s;
      phase(first ? 'draining' : 'influxd back, writer waiting for its retry', s);
      if (first && s.depth <= nearZero) break;
      if (!live) break;
      await sleep(100);
    }
    const drainedWhileLive = live && first !== undefined;
    const reports = await load;
    endProgress();
    const ackedTotal = reports.reduce((s, r) => s + r.acked, 0);
    const publishErrors = reports.reduce((s, r) => s + r.errors, 0);

    const { stored } = await waitQueryable(influx, ackedTotal, 'spool-drain');
    endProgress();
    const lost = await countLost(influx, list, reports, t0);

    const drainS = first ? (last.at - first.at) / 1000 : NaN;
    const figures: Record<string, number | string | boolean> = {
      scenario: 'spool-drain',
      outage_s: outageS,
      live_readings_per_s: Math.round(ackedTotal / (warmupS + outageS + liveAfterS)),
      influx_concurrency: env('CONCURRENCY', 2),
      steady_spool_depth: steadyDepth,
      backlog_readings: resumed.depth,
      resume_to_first_write_s: first ? Number(((first.at - resumed.at) / 1000).toFixed(2)) : NaN,
      drain_s: Number(drainS.toFixed(2)),
      drained_while_live: drainedWhileLive,
      backlog_drained_per_s: first ? Math.round((first.depth - last.depth) / drainS) : NaN,
      written_per_s_while_draining: first ? Math.round((last.written - first.written) / drainS) : NaN,
      readings_acked: ackedTotal,
      readings_stored: stored,
      readings_lost: lost,
      publish_errors: publishErrors,
      load_avg_1m: Number(loadavg()[0]!.toFixed(2)),
    };
    printTable(Object.entries(figures));
    process.stdout.write(`${JSON.stringify(figures)}\n`);
  } finally {
    await stopChild(watchpost.child);
    await influx.stop();
    rmSync(dir, { recursive: true, force: true });
  }
}
