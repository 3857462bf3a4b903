/**
 * GB/T 26875.3 over TCP into InfluxDB, with its own influxd and a production build of Watchpost:
 * UITDS (20) transmission devices, split over PUBLISHERS (1) load processes, each link keeping
 * WINDOW (8) frames unconfirmed; frames alternate analogue values and component status of
 * OBJECTS (10) components (10 and 40 readings). Frames/s and readings/s from the first frame until
 * every confirmed reading is queryable in InfluxDB; readings lost (confirmed, not in InfluxDB).
 *
 * Under that load, one more transmission device (its own link) reports a fire alarm of a
 * component and then its reset, in turn, until the load ends: the fire-alarm latency is the
 * frame's write to the `firing` webhook's arrival at a local receiver (both in this process,
 * performance.now()), p50/p99/max. DURATION_S (15).
 */
import { fork } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:http';
import { connect, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { stringify } from 'yaml';
import { COMMAND, encodeFrame, timeLabelAt } from '../ingest/gb26875/frame.js';
import { encodeUnit } from '../ingest/gb26875/objects.js';
import { encodeDescription } from '../ingest/gb26875/standard.js';
import type { Gb26875LoadJob, Gb26875LoadReport } from './adapters-gb26875-devices.js';
import { freePort } from './support/binaries.js';
import { startInfluxd, type Influxd } from './support/influxd.js';
import { benchDevices, endProgress, env, HERE, influxWriterTuning, printTable, processUsage, progress, startWatchpost, stopChild } from './harness.js';

const CENTRE = '0x000000000001';
const ALARM_DEVICE = '0x0000FFFF0001';
const OFFSET = 480;
/** The measurements of the load's readings: analogue temperatures and the four status metrics. */
const MEASUREMENTS = ['temperature', 'fire_alarm', 'fault', 'supervisory', 'disabled'];

export interface Gb26875Figures {
  adapter: 'gb26875';
  devices: number;
  frames_confirmed: number;
  frames_denied: number;
  readings_acked: number;
  readings_stored: number;
  readings_lost: number;
  errors: number;
  seconds_to_queryable: number;
  frames_per_s: number;
  readings_per_s: number;
  watchpost_cpu_us_per_reading: number;
  /** The load processes' CPU per confirmed reading (encoding frames, reading confirms). */
  load_cpu_us_per_reading: number;
  fire_alarms: number;
  fire_alarm_p50_ms: number;
  fire_alarm_p99_ms: number;
  fire_alarm_max_ms: number;
}

/** Device address of load device i: 0x0000 1000 0000 + i. */
const address = (i: number) => `0x00001000${i.toString(16).padStart(4, '0').toUpperCase()}`;

function percentile(sorted: number[], p: number): number {
  return sorted.length === 0 ? 0 : sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)]!;
}

/** Readings of the load devices' assets queryable in InfluxDB (the alarm device's are not counted). */
async function countLoad(influx: Influxd): Promise<number> {
  const results = await influx.query(`SELECT count(value) FROM ${MEASUREMENTS.join(', ')} WHERE asset_id =~ /^bench-/`);
  let n = 0;
  for (const s of results[0]?.series ?? []) n += typeof s.values[0]?.[1] === 'number' ? s.values[0][1] : 0;
  return n;
}

/** As harness.waitQueryable, summed over the measurements of the load. */
async function waitQueryable(influx: Influxd, expected: number): Promise<{ stored: number; lastChange: number }> {
  let stored = 0;
  let lastChange = performance.now();
  for (;;) {
    const now = await countLoad(influx);
    if (now !== stored) lastChange = performance.now();
    stored = now;
    progress(`gb26875: ${stored.toLocaleString()} of ${expected.toLocaleString()} confirmed readings queryable`);
    if (stored >= expected || performance.now() - lastChange > 30_000) return { stored, lastChange };
    await new Promise((r) => setTimeout(r, 250));
  }
}

/** `p`, or an error after 30 s (a webhook that never comes ends the run rather than hanging it). */
function within<T>(p: Promise<T>, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Error(`no ${what} within 30 s`)), 30_000)));
  return Promise.race([p, timeout]).finally(() => clearTimeout(timer));
}

/** The alarm device's link; the centre's answers are read and not looked at (the webhook is what is timed). */
function alarmLink(port: number): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const socket = connect(port, '127.0.0.1');
    socket.resume();
    socket.once('connect', () => resolve(socket));
    socket.once('error', reject);
  });
}

export async function runGb26875(): Promise<Gb26875Figures> {
  const durationMs = env('DURATION_S', 15) * 1000;
  const count = env('UITDS', 20);
  const publishers = Math.max(1, Math.min(count, env('PUBLISHERS', 1)));
  const list = benchDevices(count);
  const influx = await startInfluxd({ database: 'telemetry' });
  const dir = mkdtempSync(join(tmpdir(), 'watchpost-bench-gb26875-'));

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
  const port = await freePort();
  const status = { min: 0, max: 1 };
  writeFileSync(
    join(dir, 'bench.yaml'),
    stringify({
      broker: { host: '127.0.0.1', port: 0 },
      api: { host: '127.0.0.1', port: 0 },
      storage: { data_dir: join(dir, 'data'), influx: { url: influx.url, version: 1, database: 'telemetry', flush_interval: '200ms', ...influxWriterTuning() } },
      metrics: { temperature: { unit: '°C', min: -50, max: 200 }, fire_alarm: status, fault: status, supervisory: status, disabled: status },
      assets: [
        ...list.map((d) => ({ id: d.asset, type: 'building', name: d.asset, street: 'bench-street' })),
        { id: 'alarm-asset', type: 'building', name: 'alarm', street: 'bench-street' },
      ],
      rules: [{ id: 'fire-alarm', match: { asset_id: 'alarm-asset', metric: 'fire_alarm' }, levels: { red: { above: 0.5 } }, escalation: 'hook' }],
      channels: [{ id: 'bench-hook', type: 'webhook', url: `http://127.0.0.1:${hookPort}/`, secret: 'bench-hook-secret' }],
      escalations: [{ id: 'hook', tiers: [{ after: '0s', notify: ['bench-hook'] }] }],
      adapters: [
        {
          type: 'gb26875',
          host: '127.0.0.1',
          port,
          address: CENTRE,
          // Every load link comes from 127.0.0.1.
          max_connections_per_address: count + 10,
          devices: [...list.map((d, i) => ({ address: address(i), device: `uitd-${i}`, asset: d.asset })), { address: ALARM_DEVICE, device: 'uitd-alarm', asset: 'alarm-asset' }],
        },
      ],
    }),
  );
  const stopServers = async () => {
    receiver.close();
    await influx.stop();
    rmSync(dir, { recursive: true, force: true });
  };
  const wp = await startWatchpost(dir).catch(async (err: unknown) => {
    await stopServers();
    throw err;
  });
  try {
    const before = processUsage(wp.child.pid!);
    // Whole seconds, 30 days ago: each device's frame n carries t0 + n s.
    const t0 = Math.floor((Date.now() - 30 * 86_400_000) / 1000) * 1000;
    const per = Math.ceil(count / publishers);
    const live = new Map<number, Gb26875LoadReport>();
    const sum = (k: 'frames' | 'readings' | 'denied' | 'errors') => [...live.values()].reduce((s, r) => s + r[k], 0);
    const started = performance.now();
    const load = Promise.all(
      Array.from(
        { length: publishers },
        (_, p) =>
          new Promise<void>((resolve, reject) => {
            const job: Gb26875LoadJob = {
              port,
              centre: CENTRE,
              devices: list.slice(p * per, (p + 1) * per).map((_d, i) => address(p * per + i)),
              window: env('WINDOW', 8),
              objects: env('OBJECTS', 10),
              durationMs,
              t0,
            };
            const child = fork(join(HERE, 'adapters-gb26875-devices.js'), [], { stdio: 'inherit' });
            child.send(job);
            child.on('message', (m: Gb26875LoadReport) => live.set(p, m));
            child.once('exit', (code) => (code === 0 ? resolve() : reject(new Error(`GB/T 26875.3 load process ${p} exited with ${code}`))));
          }),
      ),
    );

    // The fire alarms: after 2 s of load, alarm and reset in turn until 1 s before the load ends.
    const alarm = await alarmLink(port);
    const latencies: number[] = [];
    const alarmEnd = started + durationMs - 1000;
    await new Promise((r) => setTimeout(r, Math.min(2000, durationMs / 4)));
    let serial = 0;
    let at = Math.floor((Date.now() - 86_400_000) / 1000) * 1000;
    const send = (bits: number) => {
      serial = (serial + 1) & 0xffff;
      at += 1000;
      const time = timeLabelAt(at, OFFSET);
      const data = encodeUnit({
        type: 2,
        objects: [{ type: 2, systemType: 1, systemAddress: 1, componentType: 42, componentAddress: 0x120001, status: bits, description: encodeDescription('18层电梯前室'), time }],
      });
      alarm.write(encodeFrame({ serial, version: 0x0101, time, source: ALARM_DEVICE, destination: CENTRE, command: COMMAND.send, appData: data }));
    };
    do {
      const fired = within(new Promise<number>((resolve) => (onFiring = resolve)), 'the firing webhook');
      const sentAt = performance.now();
      send(0b11);
      latencies.push((await fired) - sentAt);
      const resolved = within(new Promise<void>((resolve) => (onResolved = () => resolve())), 'the resolved webhook');
      send(0b01);
      await resolved;
      progress(`gb26875: ${sum('frames').toLocaleString()} frames confirmed, ${latencies.length} fire alarms`);
    } while (performance.now() < alarmEnd);
    alarm.destroy();
    await load;
    const acked = sum('readings');
    const { stored, lastChange } = await waitQueryable(influx, acked);
    endProgress();
    const seconds = (lastChange - started) / 1000;
    latencies.sort((a, b) => a - b);
    const frames = sum('frames');
    return {
      adapter: 'gb26875',
      devices: count,
      frames_confirmed: frames,
      frames_denied: sum('denied'),
      readings_acked: acked,
      readings_stored: stored,
      readings_lost: Math.max(0, acked - stored),
      errors: sum('errors'),
      seconds_to_queryable: Number(seconds.toFixed(2)),
      frames_per_s: Math.round(frames / seconds),
      readings_per_s: Math.round(acked / seconds),
      watchpost_cpu_us_per_reading: Number((((processUsage(wp.child.pid!).cpuMs - before.cpuMs) * 1000) / Math.max(1, stored)).toFixed(2)),
      load_cpu_us_per_reading: Number((([...live.values()].reduce((s, r) => s + (r.cpuMs ?? 0), 0) * 1000) / Math.max(1, acked)).toFixed(2)),
      fire_alarms: latencies.length,
      fire_alarm_p50_ms: Number(percentile(latencies, 50).toFixed(2)),
      fire_alarm_p99_ms: Number(percentile(latencies, 99).toFixed(2)),
      fire_alarm_max_ms: Number((latencies[latencies.length - 1] ?? 0).toFixed(2)),
    };
  } finally {
    await stopChild(wp.child);
    await stopServers();
  }
}

export async function main(): Promise<Gb26875Figures> {
  const f = await runGb26875();
  process.stdout.write('\ngb26875\n');
  printTable(Object.entries(f));
  return f;
}
