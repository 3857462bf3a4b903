/**
 * A load-generating publisher process for the ingest benchmarks: connects one MQTT connection per
 * device it is given, publishes readings at QoS 1 as fast as PUBACKs allow (a window of
 * `inflight` unacknowledged messages per connection) until the deadline, and reports counts to
 * its parent. Each device publishes one series with strictly increasing timestamps, so every
 * reading is a distinct InfluxDB point.
 */
import mqtt from 'mqtt';
import { RawMqttClient } from './raw-mqtt.js';

export interface PublisherJob {
  url: string;
  devices: Array<{ id: string; secret: string; asset: string; sensor: string }>;
  metric: string;
  readingsPerMessage: number;
  durationMs: number;
  inflight: number;
  /** Timestamp of every device's first reading; each next reading is 1 ms later. */
  t0: number;
  /** Open loop: one message per device every intervalMs (first after a random offset), instead of as fast as PUBACKs allow. */
  intervalMs?: number;
  /** Spread connection attempts: at most this many connects in flight per publisher. */
  connectConcurrency?: number;
  /** MQTT client: `raw` (bench/raw-mqtt.ts, default: little CPU per message) or `mqttjs`. */
  client?: 'raw' | 'mqttjs';
}

/** What a device connection needs: QoS 1 publish with a callback at the PUBACK, and end. */
interface DeviceConnection {
  publish(topic: string, payload: string, cb: (err?: Error) => void): void;
  end(): Promise<void>;
}

async function connectDevice(job: PublisherJob, device: PublisherJob['devices'][number]): Promise<DeviceConnection> {
  if (job.client === 'mqttjs') {
    const client = await mqtt.connectAsync(job.url, { username: device.id, password: device.secret, protocolVersion: 4, reconnectPeriod: 0, clean: true, connectTimeout: 60_000 });
    return {
      publish: (topic, payload, cb) => client.publish(topic, payload, { qos: 1 }, (err) => cb(err ?? undefined)),
      end: () => client.endAsync(),
    };
  }
  return RawMqttClient.connect(job.url, device.id, device.secret);
}

export interface PublisherReport {
  type: 'progress' | 'done';
  sent: number;
  acked: number;
  errors: number;
  /** Devices whose connection was accepted (CONNACK 0) so far. */
  connected?: number;
  /** Per device: how many readings it had acknowledged (its ts are t0 .. t0 + n - 1). */
  ackedPerDevice?: Record<string, number>;
  /** CPU time (user + system) this publisher process used, in ms. */
  cpuMs?: number;
}

/** At most `limit` connection attempts at once, so thousands of devices do not connect in one instant. */
function gate(limit: number): <T>(fn: () => Promise<T>) => Promise<T> {
  let active = 0;
  const waiting: Array<() => void> = [];
  return async (fn) => {
    if (active >= limit) await new Promise<void>((r) => waiting.push(r));
    active++;
    try {
      return await fn();
    } finally {
      active--;
      waiting.shift()?.();
    }
  };
}
let connectGate: <T>(fn: () => Promise<T>) => Promise<T> = (fn) => fn();

/** When publishing ends: `durationMs` after the start, or sooner when the parent sends `{ type: 'stop' }`. */
let deadline = Infinity;

/** The message carrying a device's readings `first` .. `first + readingsPerMessage - 1` (one reading per millisecond of event time). */
function payloadOf(job: PublisherJob, first: number): string {
  const n = job.readingsPerMessage;
  if (n === 1) return `{"ts":${job.t0 + first},"values":{"${job.metric}":${(first % 1000) / 10}}}`;
  const parts: string[] = [];
  for (let i = 0; i < n; i++) parts.push(`{"ts":${job.t0 + first + i},"values":{"${job.metric}":${((first + i) % 1000) / 10}}}`);
  return `[${parts.join(',')}]`;
}

async function runDevice(
  job: PublisherJob,
  device: PublisherJob['devices'][number],
  counters: { sent: number; acked: number; errors: number; connected: number },
  ackedPerDevice: Record<string, number>,
): Promise<void> {
  const client = await connectGate(() => connectDevice(job, device));
  counters.connected++;
  const topic = `telemetry/${device.asset}/${device.sensor}`;
  let next = 0;
  let ackedReadings = 0;
  if (job.intervalMs) {
    await new Promise<void>((resolve) => {
      // Paced by absolute due times: a timer that fires late does not lower the rate.
      let due = Date.now() + Math.random() * job.intervalMs!;
      const publishOne = () => {
        if (Date.now() >= deadline) return resolve();
        const n = job.readingsPerMessage;
        const first = next;
        next += n;
        counters.sent += n;
        client.publish(topic, payloadOf(job, first), (err) => {
          if (err) counters.errors++;
          else {
            counters.acked += n;
            ackedReadings = Math.max(ackedReadings, first + n);
          }
        });
        due += job.intervalMs!;
        setTimeout(publishOne, Math.max(0, due - Date.now()));
      };
      setTimeout(publishOne, Math.max(0, due - Date.now()));
    });
    ackedPerDevice[device.id] = ackedReadings;
    await client.end();
    return;
  }
  // Readings are acknowledged per message; messages are acknowledged in order per connection.
  await new Promise<void>((resolve) => {
    let outstanding = 0;
    const pump = () => {
      while (outstanding < job.inflight && Date.now() < deadline) {
        const n = job.readingsPerMessage;
        const first = next;
        next += n;
        outstanding++;
        counters.sent += n;
        client.publish(topic, payloadOf(job, first), (err) => {
          outstanding--;
          if (err) counters.errors++;
          else {
            counters.acked += n;
            ackedReadings = Math.max(ackedReadings, first + n);
          }
          if (Date.now() >= deadline && outstanding === 0) resolve();
          else pump();
        });
      }
      if (outstanding === 0) resolve();
    };
    pump();
  });
  ackedPerDevice[device.id] = ackedReadings;
  await client.end();
}

async function main(): Promise<void> {
  // The job arrives as the first IPC message (see runPublishers), or as a JSON argument when run by hand.
  const job = process.argv[2] ? (JSON.parse(process.argv[2]) as PublisherJob) : await new Promise<PublisherJob>((r) => process.once('message', (m) => r(m as PublisherJob)));
  connectGate = gate(job.connectConcurrency ?? 200);
  const counters = { sent: 0, acked: 0, errors: 0, connected: 0 };
  const ackedPerDevice: Record<string, number> = {};
  deadline = Date.now() + job.durationMs;
  process.on('message', (m: { type?: string }) => {
    if (m?.type === 'stop') deadline = Math.min(deadline, Date.now());
  });
  const timer = setInterval(() => process.send?.({ type: 'progress', ...counters } satisfies PublisherReport), 500);
  await Promise.all(job.devices.map((d) => runDevice(job, d, counters, ackedPerDevice).catch(() => void counters.errors++)));
  clearInterval(timer);
  const cpu = process.cpuUsage();
  process.send?.({ type: 'done', ...counters, ackedPerDevice, cpuMs: (cpu.user + cpu.system) / 1000 } satisfies PublisherReport);
  process.disconnect?.();
}

await main();
