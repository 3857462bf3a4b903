/**
 * alert-latency: time from the PUBLISH of a threshold-crossing reading to the webhook's arrival at
 * a real HTTP receiver, under a background load of BACKGROUND readings/s (default 20,000) from
 * separate publisher processes. One alarm device fires and resolves an alert CYCLES times; only
 * `firing` deliveries are timed. Both timestamps are taken in this process (performance.now()).
 * Also prints, from /metrics, the spool's group-commit (write + fdatasync) quantiles (the disk's
 * share) and the main thread's delay over the timed part of the load (from the histograms' buckets),
 * and its utilization over the last 10 s of load (how close
 * ingest is to saturating it: near 1, the alarm waits behind the background messages).
 * BROKER=mosquitto puts a mosquitto in front (external-broker mode, one Watchpost instance): the
 * devices publish to it, Watchpost reads them all over one subscription. Then the PUBACK columns
 * are mosquitto's (it acknowledges on receipt), not Watchpost's durability.
 * Environment: BACKGROUND (readings/s), READINGS_PER_MESSAGE (of the background, default 1),
 * CYCLES, DEVICES, PUBLISHERS, SPOOL_FSYNC (always | interval), BROKER (embedded | mosquitto),
 * BROKER_INFLIGHT (mosquitto `max_inflight_messages`, default 20).
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import mqtt from 'mqtt';
import { stringify } from 'yaml';
import { startInfluxd } from './support/influxd.js';
import { startMosquitto, type Mosquitto } from './support/mosquitto.js';
import { bucketQuantile, histogramBuckets } from '../lib/histogram-quantile.js';
import { metricValue } from './support/metric-value.js';
import { BENCH_METRICS, benchCatalogue, benchDevices, endProgress, env, printTable, progress, runPublishers, startWatchpost, stopChild } from './harness.js';
import type { PublisherJob } from './publisher.js';

function percentile(sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)]!;
}

/** Seconds as ms with two decimals (null stays null). */
const ms = (seconds: number | null): number | null => (seconds === null ? null : Number((seconds * 1000).toFixed(2)));

export async function main(): Promise<void> {
  const background = env('BACKGROUND', 20_000);
  const cycles = env('CYCLES', 200);
  const devices = env('DEVICES', 200);
  const publishers = env('PUBLISHERS', 2);
  const readingsPerMessage = env('READINGS_PER_MESSAGE', 1);
  const brokerKind = process.env.BROKER ?? 'embedded';
  if (brokerKind !== 'embedded' && brokerKind !== 'mosquitto') throw new Error(`BROKER must be embedded or mosquitto, not ${brokerKind}`);
  const list = benchDevices(devices);
  let mosquitto: Mosquitto | undefined;
  if (brokerKind === 'mosquitto') {
    const users: Record<string, string> = { watchpost: 'watchpost-pass-01', 'alarm-dau': 'alarm-secret-01' };
    for (const d of list) users[d.id] = d.secret;
    // As in external-broker: no silent drop of queued QoS 1 messages.
    mosquitto = await startMosquitto({ users, extraConfig: ['max_queued_messages 0', `max_inflight_messages ${env('BROKER_INFLIGHT', 20)}`] });
  }
  const influx = await startInfluxd({ database: 'telemetry' });
  const dir = mkdtempSync(join(tmpdir(), 'watchpost-bench-latency-'));

  let onFiring: ((arrivedAt: number) => void) | undefined;
  let onResolved: (() => void) | undefined;
  const receiver = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const arrived = performance.now();
      res.end();
      const event = (JSON.parse(Buffer.concat(chunks).toString()) as { event: string }).event;
      if (event === 'firing') onFiring?.(arrived);
      if (event === 'resolved') onResolved?.();
    });
  });
  await new Promise<void>((r) => receiver.listen(0, '127.0.0.1', r));
  const hookPort = (receiver.address() as { port: number }).port;

  const bench = benchCatalogue(list);
  writeFileSync(
    join(dir, 'bench.yaml'),
    stringify({
      broker: mosquitto ? { url: mosquitto.url, username: 'watchpost', password: 'watchpost-pass-01', client_id: 'watchpost-bench-latency' } : { host: '127.0.0.1', port: 0 },
      api: { host: '127.0.0.1', port: 0 },
      storage: {
        data_dir: join(dir, 'data'),
        influx: { url: influx.url, version: 1, database: 'telemetry', batch_size: 5000, flush_interval: '200ms' },
        // SPOOL_FSYNC=interval shows what the spool's fdatasync adds to the latency (the default, always, is what ships).
        spool: { fsync: process.env.SPOOL_FSYNC ?? 'always' },
      },
      metrics: { ...BENCH_METRICS, trigger: { unit: '', min: 0, max: 1000 } },
      assets: [...bench.assets, { id: 'alarm-asset', type: 'bridge', name: 'alarm', street: 'bench-street' }],
      devices: [...bench.devices, { id: 'alarm-dau', secret: 'alarm-secret-01', assets: ['alarm-asset'] }],
      rules: [{ id: 'latency', match: { asset_id: 'alarm-asset', metric: 'trigger' }, levels: { red: { above: 100 } }, escalation: 'hook' }],
      channels: [{ id: 'bench-hook', type: 'webhook', url: `http://127.0.0.1:${hookPort}/`, secret: 'bench-hook-secret' }],
      escalations: [{ id: 'hook', tiers: [{ after: '0s', notify: ['bench-hook'] }] }],
    }),
  );
  const stopServers = async () => {
    receiver.close();
    await influx.stop();
    await mosquitto?.stop();
    rmSync(dir, { recursive: true, force: true });
  };
  const wp = await startWatchpost(dir).catch(async (err: unknown) => {
    await stopServers();
    throw err;
  });
  const wpStarted = performance.now();
  const deviceUrl = mosquitto ? mosquitto.url : wp.mqttUrl;
  try {
    const durationMs = 15_000 + cycles * 60;
    const perDeviceInterval = Math.round((1000 * devices * readingsPerMessage) / background);
    const per = Math.ceil(devices / publishers);
    const t0 = Date.now() - 30 * 86_400_000;
    const jobs: PublisherJob[] = Array.from({ length: publishers }, (_, p) => ({
      url: deviceUrl,
      devices: list.slice(p * per, (p + 1) * per),
      metric: 'load',
      readingsPerMessage,
      durationMs,
      inflight: 1,
      t0,
      intervalMs: perDeviceInterval,
    }));
    let backgroundAcked = 0; // readings
    const load = runPublishers(jobs, (acked) => (backgroundAcked = acked));

    const alarm = await mqtt.connectAsync(deviceUrl, { username: 'alarm-dau', password: 'alarm-secret-01', protocolVersion: 4 });
    await new Promise((r) => setTimeout(r, 3000)); // let the background load settle
    const loadStart = performance.now();
    const ackedAtStart = backgroundAcked;
    const metricsAtStart = await (await fetch(`${wp.apiUrl}/metrics`)).text();
    const latencies: number[] = [];
    // PUBLISH to PUBACK: the part of the latency that is ingest (decode, spool fdatasync).
    const acks: number[] = [];
    let ts = Date.now() - 86_400_000;
    for (let i = 0; i < cycles; i++) {
      const fired = new Promise<number>((resolve) => (onFiring = resolve));
      const sentAt = performance.now();
      alarm.publish('telemetry/alarm-asset/s1', JSON.stringify({ ts: ts++, values: { trigger: 500 } }), { qos: 1 }, () => acks.push(performance.now() - sentAt));
      latencies.push((await fired) - sentAt);
      const resolved = new Promise<void>((resolve) => (onResolved = resolve));
      alarm.publish('telemetry/alarm-asset/s1', JSON.stringify({ ts: ts++, values: { trigger: 1 } }), { qos: 1 });
      await resolved;
      progress(`alert-latency: ${i + 1}/${cycles} alerts, background ${Math.round(((backgroundAcked - ackedAtStart) * 1000) / (performance.now() - loadStart)).toLocaleString()} readings/s`);
    }
    const backgroundRate = Math.round(((backgroundAcked - ackedAtStart) * 1000) / (performance.now() - loadStart));
    // The spool's group commits (write + fdatasync): the disk's share of the latency; the main thread's
    // timer delay, and its utilization over the last 10 s of load: the queue's share. Quantiles of the
    // histograms' observations since metricsAtStart, interpolated within buckets as histogram_quantile does.
    // (Its first window closes 10 s after the start; the background load runs for at least 15 s.)
    while (performance.now() - wpStarted < 11_000) await new Promise((r) => setTimeout(r, 250));
    const metrics = await (await fetch(`${wp.apiUrl}/metrics`)).text();
    const sample = (name: string) => metricValue(metrics, name) ?? null; // null, not undefined, so the JSON line keeps the key
    const quantile = (name: string, q: number) => {
      const before = new Map(histogramBuckets(metricsAtStart, name));
      return ms(
        bucketQuantile(
          q,
          histogramBuckets(metrics, name).map(([le, n]) => [le, n - (before.get(le) ?? 0)] as const),
        ) ?? null,
      );
    };
    const sync = (q: number) => quantile('watchpost_spool_sync_latency_seconds', q);
    const loopDelay = (q: number) => quantile('watchpost_event_loop_delay_seconds', q);
    endProgress();
    await alarm.endAsync();
    await load;
    latencies.sort((a, b) => a - b);
    acks.sort((a, b) => a - b);
    const figures = {
      scenario: 'alert-latency',
      broker: brokerKind,
      alerts: latencies.length,
      background_readings_per_s: backgroundRate,
      background_readings_per_message: readingsPerMessage,
      p50_ms: Number(percentile(latencies, 50).toFixed(2)),
      p99_ms: Number(percentile(latencies, 99).toFixed(2)),
      max_ms: Number(latencies[latencies.length - 1]!.toFixed(2)),
      puback_p50_ms: Number(percentile(acks, 50).toFixed(2)),
      puback_p99_ms: Number(percentile(acks, 99).toFixed(2)),
      spool_sync_p50_ms: sync(0.5),
      spool_sync_p99_ms: sync(0.99),
      event_loop_utilization: sample('watchpost_event_loop_utilization'),
      event_loop_delay_p50_ms: loopDelay(0.5),
      event_loop_delay_p99_ms: loopDelay(0.99),
    };
    printTable(Object.entries(figures));
    process.stdout.write(`${JSON.stringify(figures)}\n`);
  } finally {
    await stopChild(wp.child);
    await stopServers();
  }
}
