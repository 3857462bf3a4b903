/**
 * cluster: Watchpost in cluster mode on this machine (PostgreSQL, RabbitMQ, mosquitto with a
 * shared subscription, influxd, all private), with 1, 2 and 3 instances, against a ceiling
 * measured in the same run: one instance without a `cluster` section behind the same mosquitto.
 *
 * Per run: devices publish QoS 1 to mosquitto as fast as its PUBACKs allow for DURATION_S; the
 * figures are readings/s until every acknowledged reading is queryable in InfluxDB, readings/s
 * until every partition queue is drained (judged by the rules: stored, checkpointed, acked),
 * and the alert latency: a threshold crossing published to mosquitto -> the webhook's arrival,
 * LATENCY_SAMPLES times. With 3 instances, one is killed (-9) and the time until its partitions
 * are owned again is the hand-over time.
 *
 * Environment: DURATION_S (10), DEVICES (100), PUBLISHERS (1), INFLIGHT (per device, 20),
 * PARTITIONS (16), LATENCY_SAMPLES (10), INSTANCES (`1,2,3`), BROKER_INFLIGHT (mosquitto `max_inflight_messages`, the QoS 1
 * messages it has in flight to each instance at once; 100).
 */
import { createServer } from 'node:http';
import { cpus, loadavg, totalmem } from 'node:os';
import amqp from 'amqplib';
import mqtt from 'mqtt';
import { queueName } from '../cluster/partitions.js';
import { ClusterRunner, coversAll, ownership, startClusterEngines, writeClusterConfig, type ClusterEngines, type Instance } from './support/cluster.js';
import { startInfluxd, type Influxd } from './support/influxd.js';
import { startMosquitto, type Mosquitto } from './support/mosquitto.js';
import { BENCH_METRICS, benchCatalogue, benchDevices, countStored, endProgress, env, printTable, progress, runPublishers, waitQueryable } from './harness.js';
import type { PublisherJob } from './publisher.js';

const THRESHOLD = 1_000_000;

interface Receiver {
  url: string;
  /** asset id -> arrival (performance.now()) of its first firing. */
  arrivals: Map<string, number>;
  close(): Promise<void>;
}

async function startReceiver(): Promise<Receiver> {
  const arrivals = new Map<string, number>();
  const server = createServer((req, res) => {
    let body = '';
    req.on('data', (c: Buffer) => (body += c.toString()));
    req.on('end', () => {
      const at = performance.now();
      try {
        const d = JSON.parse(body) as { event?: string; alert?: { asset_id?: string } };
        const asset = d.alert?.asset_id;
        if (d.event === 'firing' && asset && !arrivals.has(asset)) arrivals.set(asset, at);
      } catch {
        // not a delivery
      }
      res.statusCode = 204;
      res.end();
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const { port } = server.address() as { port: number };
  return {
    url: `http://127.0.0.1:${port}/hook`,
    arrivals,
    close: () =>
      new Promise<void>((r) => {
        server.closeAllConnections();
        server.close(() => r());
      }),
  };
}

/** Ready messages in every partition queue. */
async function queued(url: string, partitions: number): Promise<number> {
  const connection = await amqp.connect(url);
  try {
    const channel = await connection.createChannel();
    let total = 0;
    for (let p = 0; p < partitions; p++) total += (await channel.checkQueue(queueName(p))).messageCount;
    return total;
  } finally {
    await connection.close().catch(() => undefined);
  }
}

const median = (xs: number[]): number => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length === 0 ? NaN : s.length % 2 ? s[(s.length - 1) / 2]! : (s[s.length / 2 - 1]! + s[s.length / 2]!) / 2;
};

/** Threshold crossings on the first LATENCY_SAMPLES assets, one at a time: PUBACK from mosquitto -> webhook arrival, in ms. */
async function alertLatency(mosquitto: Mosquitto, receiver: Receiver, samples: number): Promise<number[]> {
  const client = await mqtt.connectAsync(mosquitto.url, { protocolVersion: 4, clientId: `bench-latency-${Date.now()}`, clean: true });
  const out: number[] = [];
  try {
    for (let k = 0; k < samples; k++) {
      const asset = `bench-${k}`;
      receiver.arrivals.delete(asset);
      await client.publishAsync(`telemetry/${asset}/s1`, JSON.stringify({ ts: Date.now(), values: { load: THRESHOLD * 2 } }), { qos: 1 });
      const sent = performance.now();
      const deadline = sent + 30_000;
      while (!receiver.arrivals.has(asset) && performance.now() < deadline) await new Promise((r) => setTimeout(r, 5));
      const at = receiver.arrivals.get(asset);
      if (at !== undefined) out.push(at - sent);
      // Back below the threshold, so the next sample's alert is a new one.
      await client.publishAsync(`telemetry/${asset}/s1`, JSON.stringify({ ts: Date.now() + 1, values: { load: 1 } }), { qos: 1 });
    }
  } finally {
    await client.endAsync();
  }
  return out;
}

async function run(shared: ClusterEngines, instances: number, clusterMode: boolean, run: number): Promise<Record<string, number | string>> {
  const partitions = env('PARTITIONS', 16);
  const durationMs = env('DURATION_S', 10) * 1000;
  const devices = env('DEVICES', 100);
  const publishers = env('PUBLISHERS', 1);
  const list = benchDevices(devices);
  // A broker, a database and an InfluxDB of its own per run; PostgreSQL and RabbitMQ are shared (a new database each time).
  const mosquitto = await startMosquitto({ extraConfig: ['max_queued_messages 0', `max_inflight_messages ${env('BROKER_INFLIGHT', 100)}`] });
  const influx: Influxd = await startInfluxd({ database: 'telemetry' });
  const receiver = await startReceiver();
  const pgUrl = await shared.postgres.createDatabase(`bench_${run}`);
  const engines: ClusterEngines = { ...shared, mosquitto, influx, postgres: { ...shared.postgres, url: pgUrl } };
  const runner = new ClusterRunner(engines);
  const label = clusterMode ? `cluster x${instances}` : 'ceiling (one instance, no cluster)';
  try {
    writeClusterConfig(runner.configDir, {
      engines,
      partitions,
      cluster: clusterMode,
      sections: {
        metrics: BENCH_METRICS,
        ...benchCatalogue(list),
        rules: [{ id: 'bench-high', match: { asset_type: 'bench', metric: 'load' }, levels: { red: { above: THRESHOLD } }, escalation: 'bench' }],
        channels: [{ id: 'hook', type: 'webhook', url: receiver.url }],
        escalations: [{ id: 'bench', tiers: [{ after: '0s', notify: ['hook'] }] }],
      },
    });
    const ids = Array.from({ length: instances }, (_, i) => `wp-${i + 1}`);
    await Promise.all(ids.map((id) => runner.start(id)));
    if (clusterMode) {
      const deadline = Date.now() + 60_000;
      while (!coversAll(await ownership(runner.instances.values()), partitions) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 200));
    }
    const started = performance.now();
    const per = Math.ceil(devices / publishers);
    const jobs: PublisherJob[] = Array.from({ length: publishers }, (_, p) => ({
      url: mosquitto.url,
      devices: list.slice(p * per, (p + 1) * per),
      metric: 'load',
      readingsPerMessage: 1,
      durationMs,
      inflight: env('INFLIGHT', 20),
      t0: Date.now() - 30 * 86_400_000,
    }));
    const reports = await runPublishers(jobs, (acked) => progress(`${label}: ${acked.toLocaleString()} readings acknowledged by mosquitto`));
    const acked = reports.reduce((s, r) => s + r.acked, 0);
    const { stored, lastChange } = await waitQueryable(influx, acked, label);
    let judgedAt = lastChange;
    if (clusterMode) {
      // Judged: every partition queue drained (a message leaves its queue once its events are stored and its checkpoint written).
      const deadline = performance.now() + 120_000;
      let empty = 0;
      while (performance.now() < deadline) {
        const left = await queued(shared.rabbit.url, partitions);
        progress(`${label}: ${left.toLocaleString()} partition messages not yet judged`);
        empty = left === 0 ? empty + 1 : 0;
        if (empty === 1) judgedAt = performance.now();
        if (empty >= 2) break;
        await new Promise((r) => setTimeout(r, 250));
      }
    }
    endProgress();
    const latencies = await alertLatency(mosquitto, receiver, env('LATENCY_SAMPLES', 10));
    let handOverMs: number | string = '-';
    if (clusterMode && instances >= 2) {
      const victim: Instance = [...runner.instances.values()].at(-1)!;
      const killedAt = performance.now();
      await victim.kill9();
      const deadline = killedAt + 60_000;
      while (!coversAll(await ownership(runner.instances.values()), partitions) && performance.now() < deadline) await new Promise((r) => setTimeout(r, 100));
      handOverMs = Math.round(performance.now() - killedAt);
    }
    return {
      scenario: clusterMode ? `cluster-x${instances}` : 'ceiling',
      instances,
      readings_acked: acked,
      readings_stored: stored,
      readings_lost: Math.max(0, acked - stored),
      queryable_per_s: Math.round(acked / ((lastChange - started) / 1000)),
      judged_per_s: Math.round(acked / ((judgedAt - started) / 1000)),
      alert_latency_p50_ms: Math.round(median(latencies)),
      alert_latency_max_ms: Math.round(Math.max(...latencies)),
      alert_samples: latencies.length,
      hand_over_ms: handOverMs,
      stored_check: await countStored(influx),
      load_avg_1m: Number(loadavg()[0]!.toFixed(2)),
    };
  } finally {
    await runner.destroy();
    await receiver.close();
    await influx.stop();
    await mosquitto.stop();
  }
}

export async function main(): Promise<void> {
  process.stdout.write(`machine: ${cpus().length} x ${cpus()[0]?.model ?? 'cpu'}, ${Math.round(totalmem() / 2 ** 30)} GiB, node ${process.version}\n`);
  const shared = await startClusterEngines();
  try {
    const ceiling = await run(shared, 1, false, 0);
    printTable(Object.entries(ceiling));
    process.stdout.write(`${JSON.stringify(ceiling)}\n`);
    const counts = (process.env.INSTANCES ?? '1,2,3').split(',').map(Number);
    for (const [i, n] of counts.entries()) {
      const figures = await run(shared, n, true, i + 1);
      const ratios = {
        queryable_ratio_to_ceiling: Number(((figures.queryable_per_s as number) / (ceiling.queryable_per_s as number)).toFixed(2)),
        latency_ratio_to_ceiling: Number(((figures.alert_latency_p50_ms as number) / (ceiling.alert_latency_p50_ms as number)).toFixed(2)),
      };
      printTable(Object.entries({ ...figures, ...ratios }));
      process.stdout.write(`${JSON.stringify({ ...figures, ...ratios })}\n`);
    }
  } finally {
    await shared.stop();
  }
}
