/**
 * Device adapter benchmarks, each with its own influxd and a production build of Watchpost:
 *
 *   sparkplug  EDGES (20) Sparkplug B edge nodes on the embedded broker, NDATA of METRICS (10)
 *              metric values each at QoS 1 with INFLIGHT (20) unacknowledged per node
 *   http       DEVICES (20) devices posting batches of BATCH (100) readings, WORKERS (2) requests
 *              in flight per device
 *
 * Figures: messages or requests per second and readings per second from the first message until
 * every acknowledged reading is queryable in InfluxDB, and readings lost (acknowledged, not in
 * InfluxDB; must be 0). DURATION_S (default 15).
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import mqtt from 'mqtt';
import { stringify } from 'yaml';
import { encodeSparkplug } from '../ingest/sparkplug/codec.js';
import { startInfluxd, type Influxd } from './support/influxd.js';
import {
  BENCH_METRICS,
  benchCatalogue,
  benchDevices,
  endProgress,
  env,
  influxWriterTuning,
  printTable,
  processUsage,
  progress,
  startWatchpost,
  stopChild,
  waitQueryable,
} from './harness.js';

type Part = 'sparkplug' | 'http';

interface AdapterFigures {
  adapter: Part;
  messages_acked: number;
  readings_acked: number;
  readings_stored: number;
  readings_lost: number;
  errors: number;
  seconds_to_queryable: number;
  messages_per_s: number;
  readings_per_s: number;
  watchpost_cpu_us_per_reading: number;
}

function writeConfig(dir: string, influx: Influxd, count: number, part: Part): ReturnType<typeof benchDevices> {
  const devices = benchDevices(count);
  const adapters =
    part === 'sparkplug'
      ? [{ type: 'sparkplug', host_id: 'watchpost', nodes: devices.map((d) => ({ group: 'bench', edge: d.id, device: '*', asset: d.asset })) }]
      : [{ type: 'http', rate_limit: { requests_per_second: 100_000, burst: 100_000 } }];
  writeFileSync(
    join(dir, 'bench.yaml'),
    stringify({
      broker: { host: '127.0.0.1', port: 0 },
      api: { host: '127.0.0.1', port: 0, tokens: [{ name: 'bench', token: 'bench-token-0123456789', role: 'admin' }] },
      storage: { data_dir: join(dir, 'data'), influx: { url: influx.url, version: 1, database: 'telemetry', flush_interval: '200ms', ...influxWriterTuning() } },
      metrics: BENCH_METRICS,
      ...benchCatalogue(devices),
      adapters,
    }),
  );
  return devices;
}

/** One edge node: NBIRTH, then NDATA by alias (metrics s0/Load … s{M-1}/Load) until the deadline. */
async function edgeNode(
  url: string,
  device: { id: string; secret: string },
  metrics: number,
  inflight: number,
  deadline: number,
  t0: number,
  counts: { messages: number; readings: number; errors: number },
) {
  const client = await mqtt.connectAsync(url, { username: device.id, password: device.secret, protocolVersion: 4, reconnectPeriod: 0 });
  const topic = (type: string) => `spBv1.0/bench/${type}/${device.id}`;
  const names = Array.from({ length: metrics }, (_, m) => ({ name: `s${m}/Load`, alias: m + 1 }));
  await client.publishAsync(
    topic('NBIRTH'),
    encodeSparkplug({ timestamp: t0, seq: 0, metrics: [{ name: 'bdSeq', type: 'UInt64', value: 0 }, ...names.map((n) => ({ ...n, type: 'Double' as const, value: 0 }))] }),
    { qos: 1 },
  );
  counts.messages++;
  counts.readings += metrics;
  let seq = 0;
  let ts = t0;
  const worker = async () => {
    while (Date.now() < deadline) {
      seq = (seq + 1) % 256;
      ts++;
      const payload = encodeSparkplug({ timestamp: ts, seq, metrics: names.map((n, m) => ({ alias: n.alias, type: 'Double', value: m + (ts % 1000) })) });
      try {
        await client.publishAsync(topic('NDATA'), payload, { qos: 1 });
        counts.messages++;
        counts.readings += metrics;
      } catch {
        counts.errors++;
      }
    }
  };
  await Promise.all(Array.from({ length: inflight }, worker));
  await client.endAsync();
}

async function httpDevice(
  apiUrl: string,
  device: { id: string; secret: string; asset: string; sensor: string },
  batch: number,
  workers: number,
  deadline: number,
  t0: number,
  counts: { messages: number; readings: number; errors: number },
) {
  const auth = `Basic ${Buffer.from(`${device.id}:${device.secret}`).toString('base64')}`;
  let ts = t0;
  const worker = async () => {
    while (Date.now() < deadline) {
      const body = JSON.stringify(Array.from({ length: batch }, () => ({ ts: ts++, values: { load: ts % 1000 } })));
      const res = await fetch(`${apiUrl}/ingest/v1/${device.asset}/${device.sensor}`, { method: 'POST', headers: { authorization: auth, 'content-type': 'application/json' }, body });
      const answer = (await res.json()) as { accepted?: number };
      if (res.status === 202) {
        counts.messages++;
        counts.readings += answer.accepted ?? 0;
      } else counts.errors++;
    }
  };
  await Promise.all(Array.from({ length: workers }, worker));
}

async function run(part: Part): Promise<AdapterFigures> {
  const durationMs = env('DURATION_S', 15) * 1000;
  const count = env(part === 'sparkplug' ? 'EDGES' : 'DEVICES', 20);
  const t0 = Date.now() - 30 * 86_400_000;
  const influx = await startInfluxd({ database: 'telemetry' });
  const dir = mkdtempSync(join(tmpdir(), 'watchpost-bench-adapters-'));
  const devices = writeConfig(dir, influx, count, part);
  const { child, mqttUrl, apiUrl } = await startWatchpost(dir);
  try {
    const before = processUsage(child.pid!);
    const counts = { messages: 0, readings: 0, errors: 0 };
    const started = performance.now();
    const deadline = Date.now() + durationMs;
    const ticker = setInterval(() => progress(`${part}: ${((performance.now() - started) / 1000).toFixed(0)} s, ${counts.readings.toLocaleString()} readings acknowledged`), 500);
    await Promise.all(
      devices.map((d, i) =>
        part === 'sparkplug'
          ? edgeNode(mqttUrl, d, env('METRICS', 10), env('INFLIGHT', 20), deadline, t0 + i * 1e7, counts)
          : httpDevice(apiUrl, d, env('BATCH', 100), env('WORKERS', 2), deadline, t0 + i * 1e7, counts),
      ),
    );
    clearInterval(ticker);
    const { stored, lastChange } = await waitQueryable(influx, counts.readings, part);
    endProgress();
    const seconds = (lastChange - started) / 1000;
    return {
      adapter: part,
      messages_acked: counts.messages,
      readings_acked: counts.readings,
      readings_stored: stored,
      readings_lost: Math.max(0, counts.readings - stored),
      errors: counts.errors,
      seconds_to_queryable: Number(seconds.toFixed(2)),
      messages_per_s: Math.round(counts.messages / seconds),
      readings_per_s: Math.round(counts.readings / seconds),
      watchpost_cpu_us_per_reading: Number((((processUsage(child.pid!).cpuMs - before.cpuMs) * 1000) / Math.max(1, stored)).toFixed(2)),
    };
  } finally {
    await stopChild(child);
    await influx.stop();
    rmSync(dir, { recursive: true, force: true });
  }
}

/** `parts`: the adapters to measure (default both). */
export async function main(parts: Part[] = ['sparkplug', 'http']): Promise<AdapterFigures[]> {
  const figures: AdapterFigures[] = [];
  for (const part of parts) {
    const f = await run(part);
    figures.push(f);
    process.stdout.write(`\n${part}\n`);
    printTable(Object.entries(f));
  }
  return figures;
}
