/**
 * A load-generating publisher process for the ingest benchmarks: connects one MQTT connection per
 * device it is given, publishes readings at QoS 1 as fast as PUBACKs allow (a window of
 * `inflight` unacknowledged messages per connection) until the deadline, and reports counts to
 * its parent. Each device publishes one series with strictly increasing timestamps, so every
 * reading is a distinct InfluxDB point.
 */
import mqtt, { type MqttClient } from 'mqtt';

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
}

export interface PublisherReport {
  type: 'progress' | 'done';
  sent: number;
  acked: number;
  errors: number;
  /** Per device: how many readings it had acknowledged (its ts are t0 .. t0 + n - 1). */
  ackedPerDevice?: Record<string, number>;
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

async function runDevice(job: PublisherJob, device: PublisherJob['devices'][number], counters: { sent: number; acked: number; errors: number }, deadline: number, ackedPerDevice: Record<string, number>): Promise<void> {
  const client: MqttClient = await connectGate(() =>
    mqtt.connectAsync(job.url, { username: device.id, password: device.secret, protocolVersion: 4, reconnectPeriod: 0, clean: true, connectTimeout: 60_000 }),
  );
  const topic = `telemetry/${device.asset}/${device.sensor}`;
  let next = 0;
  let ackedReadings = 0;
  if (job.intervalMs) {
    await new Promise<void>((resolve) => {
      const publishOne = () => {
        if (Date.now() >= deadline) return resolve();
        const first = next++;
        counters.sent++;
        client.publish(topic, `{"ts":${job.t0 + first},"values":{"${job.metric}":${(first % 1000) / 10}}}`, { qos: 1 }, (err) => {
          if (err) counters.errors++;
          else {
            counters.acked++;
            ackedReadings = Math.max(ackedReadings, first + 1);
          }
        });
        setTimeout(publishOne, job.intervalMs);
      };
      setTimeout(publishOne, Math.random() * job.intervalMs!);
    });
    ackedPerDevice[device.id] = ackedReadings;
    await client.endAsync();
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
        let payload: string;
        if (n === 1) payload = `{"ts":${job.t0 + first},"values":{"${job.metric}":${(first % 1000) / 10}}}`;
        else {
          const parts: string[] = [];
          for (let i = 0; i < n; i++) parts.push(`{"ts":${job.t0 + first + i},"values":{"${job.metric}":${((first + i) % 1000) / 10}}}`);
          payload = `[${parts.join(',')}]`;
        }
        outstanding++;
        counters.sent += n;
        client.publish(topic, payload, { qos: 1 }, (err) => {
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
  await client.endAsync();
}

async function main(): Promise<void> {
  const job = JSON.parse(process.argv[2]!) as PublisherJob;
  connectGate = gate(job.connectConcurrency ?? 200);
  const counters = { sent: 0, acked: 0, errors: 0 };
  const ackedPerDevice: Record<string, number> = {};
  const deadline = Date.now() + job.durationMs;
  const timer = setInterval(() => process.send?.({ type: 'progress', ...counters } satisfies PublisherReport), 500);
  await Promise.all(job.devices.map((d) => runDevice(job, d, counters, deadline, ackedPerDevice).catch(() => void counters.errors++)));
  clearInterval(timer);
  process.send?.({ type: 'done', ...counters, ackedPerDevice } satisfies PublisherReport);
  process.disconnect?.();
}

await main();
