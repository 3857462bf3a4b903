/**
 * Nothing acknowledged is lost, end to end, with a real influxd and Watchpost run as
 * users run it (`node dist/server/cli.js start`):
 *
 * - Devices publish QoS 1 readings at a steady rate (4 devices x 20/s), influxd is stopped for
 *   65 s, Watchpost is killed with SIGKILL 20 s into the outage and started again on the same
 *   data, then influxd comes back. Every reading a device got a PUBACK for must be in InfluxDB
 *   exactly once with its exact value, and nothing else; the platform reports the outage
 *   (degraded, spool depth and age, the storage deadman alert) and ends with no drops.
 *   Once with the embedded broker, once with an external mosquitto (which acknowledges the
 *   devices itself; Watchpost's PUBACK to it waits for the spool, on a persistent session).
 * - A small spool filled while InfluxDB is down: QoS 1 publishes are then not acknowledged
 *   (the device keeps them), /healthz answers 503 and the spool alert reaches the fallback
 *   escalation; once InfluxDB is back everything drains and is acknowledged.
 *
 * The three run concurrently (they mostly wait), so the suite pays the outage once.
 */
import { describe, it, type TestContext } from 'vitest';
import { freePort, waitFor } from '../test/support/binaries.js';
import {
  alertList,
  assetId,
  DEVICES,
  drops,
  durabilityConfig,
  INFLUX_PASSWORD,
  health,
  metricsText,
  SECRET,
  sleep,
  storedStrain,
  valueOf,
  VIEWER_TOKEN,
  writeConfigDir,
} from '../test/support/durability.js';
import { influxdAvailable, startInfluxd, type Influxd } from '../test/support/influxd.js';
import { mosquittoBinary, startMosquitto, type Mosquitto } from '../test/support/mosquitto.js';
import { baseConfig, DEVICE_SECRET, startPlatform, tempDir, type RunningPlatform } from '../test/support/platform.js';
import { startReceiver, type Receiver } from '../test/support/receiver.js';
import { startSteadyPublisher, type SteadyPublisher } from '../test/support/steady-publisher.js';
import { cliBuilt, metricValue, startWatchpostProcess, type WatchpostProcess } from '../test/support/watchpost-process.js';

const RATE = 20; // readings per second per device
const OUTAGE_MS = 65_000;
const KILL_AFTER_MS = 20_000;
const PLATFORM_PASSWORD = 'platform-pass-durability';

type Mode = 'embedded' | 'external';

/** Everything a scenario starts, stopped in reverse whatever happens. */
class Resources {
  influx?: Influxd;
  broker?: Mosquitto;
  wp?: WatchpostProcess;
  readonly publishers: SteadyPublisher[] = [];
  async release(): Promise<void> {
    await Promise.all(this.publishers.map((p) => p.close().catch(() => undefined)));
    await this.wp?.kill9();
    await this.broker?.stop();
    await this.influx?.stop();
  }
}

/**
 * The kill -9 during an outage scenario. Embedded: devices connect to Watchpost on a port kept
 * across the restart. External: devices connect to mosquitto; Watchpost keeps its client id.
 */
async function killDuringOutage(mode: Mode, { expect, onTestFailed }: TestContext, r: Resources): Promise<void> {
  const influx = (r.influx = await startInfluxd({ database: 'telemetry' }));
  let deviceUrl: string;
  let brokerConfig: Record<string, unknown>;
  if (mode === 'external') {
    const users: Record<string, string> = { watchpost: PLATFORM_PASSWORD };
    for (let i = 0; i < DEVICES; i++) users[`dau-${i}`] = SECRET(i);
    // The persistent session must hold what arrives while Watchpost restarts (mosquitto keeps 1000 per client by default).
    r.broker = await startMosquitto({ users, extraConfig: ['max_queued_messages 100000'] });
    deviceUrl = r.broker.url;
    brokerConfig = { url: r.broker.url, username: 'watchpost', password: PLATFORM_PASSWORD, client_id: 'watchpost-durability-test' };
  } else {
    // A port picked now and kept across the restart, so devices reconnect to the same address.
    const port = await freePort();
    deviceUrl = `mqtt://127.0.0.1:${port}`;
    brokerConfig = { host: '127.0.0.1', port };
  }
  const configDir = tempDir(`durability-${mode}-config`);
  writeConfigDir(configDir, durabilityConfig({ influx, dataDir: tempDir(`durability-${mode}-data`), broker: brokerConfig }));
  const logs = { text: '' };
  onTestFailed(() => console.error(`watchpost logs (${mode}, last 6000 characters):\n${logs.text.slice(-6000)}`));
  r.wp = await startWatchpostProcess(configDir, { logs });
  const tsBase = Date.now() - 3_600_000;
  for (let i = 0; i < DEVICES; i++) {
    r.publishers.push(
      startSteadyPublisher({
        url: deviceUrl,
        username: `dau-${i}`,
        password: SECRET(i),
        clientId: `dau-${i}`,
        topic: `telemetry/${assetId(i)}/strain-01`,
        rate: RATE,
        tsBase,
        metric: 'strain',
        valueOf: valueOf(i),
      }),
    );
  }
  const publishers = r.publishers;
  const ackedTotal = () => publishers.reduce((n, p) => n + p.acked.size, 0);
  const api = () => r.wp!.apiUrl;
  await waitFor('readings flowing into InfluxDB', async () => ((await storedStrain(influx, assetId(0))).size >= 20 ? true : undefined), 20_000);
  expect((await health(api())).body.status).toBe('ok');

  // ---- InfluxDB goes down ----
  await influx.pause();
  const outageStarted = Date.now();
  await waitFor(
    'Watchpost to report storage degraded',
    async () => {
      const h = await health(api());
      return h.code === 200 && h.body.status === 'degraded' && h.body.storage.reason === 'unreachable' ? true : undefined;
    },
    15_000,
  );
  const ackedAtOutage = ackedTotal();
  await sleep(KILL_AFTER_MS - (Date.now() - outageStarted));
  const during = await metricsText(api());
  const spooledBeforeKill = metricValue(during, 'watchpost_spool_depth')!;
  expect(spooledBeforeKill).toBeGreaterThan(DEVICES * RATE * 10);
  expect(metricValue(during, 'watchpost_spool_oldest_age_seconds')).toBeGreaterThan(5);
  expect(metricValue(during, 'watchpost_storage_retries_total')).toBeGreaterThan(3);
  expect(ackedTotal()).toBeGreaterThan(ackedAtOutage + DEVICES * RATE * 5);
  // The storage deadman (failing_writes: 10s) has raised its platform alert.
  expect((await alertList(api())).filter((a) => a.asset_id === 'watchpost').map((a) => [a.rule_id, a.level, a.state])).toEqual([['platform-storage', 'orange', 'firing']]);

  // ---- kill -9 in the middle of the outage, and start again on the same data ----
  await r.wp.kill9();
  const ackedAtKill = ackedTotal();
  if (mode === 'external') await sleep(2000); // mosquitto queues for the session meanwhile
  r.wp = await startWatchpostProcess(configDir, { logs });
  // The spool survived the kill: what was acknowledged before it is still waiting.
  expect(metricValue(await metricsText(api()), 'watchpost_spool_depth')).toBeGreaterThanOrEqual(spooledBeforeKill);
  expect((await health(api())).body).toMatchObject({ status: 'degraded', storage: { accepting: true } });
  if (mode === 'external') expect(logs.text).toContain('"session_present":true');
  // The storage alert open before the kill is carried on, not resolved and raised again.
  expect((await alertList(api())).filter((a) => a.asset_id === 'watchpost').map((a) => [a.rule_id, a.level, a.state])).toEqual([['platform-storage', 'orange', 'firing']]);
  await waitFor('readings acknowledged again', async () => (ackedTotal() > ackedAtKill + DEVICES * RATE ? true : undefined), 20_000);

  // ---- InfluxDB is back after more than a minute ----
  await sleep(OUTAGE_MS - (Date.now() - outageStarted));
  await influx.resume();
  const outageMs = Date.now() - outageStarted;
  expect(outageMs).toBeGreaterThan(60_000);
  await waitFor('storage no longer failing', async () => ((await health(api())).body.storage.reason !== 'unreachable' ? true : undefined), 15_000);
  // Live data keeps flowing (and being acknowledged) while the backlog drains.
  const ackedAtResume = ackedTotal();
  await sleep(5000);
  expect(ackedTotal()).toBeGreaterThan(ackedAtResume + DEVICES * RATE * 3);
  for (const p of publishers) p.pause();
  await Promise.all(publishers.map((p) => p.settle(30_000)));

  // ---- Every reading is in InfluxDB exactly once, with its value, and nothing else is ----
  for (let i = 0; i < DEVICES; i++) {
    const p = publishers[i]!;
    expect(p.acked.size).toBe(p.taken());
    const expected = new Map([...p.acked].map(([seq, value]) => [tsBase + seq, value]));
    const got = await waitFor(
      `every reading of ${assetId(i)} in InfluxDB`,
      async () => {
        const s = await storedStrain(influx, assetId(i));
        return s.size >= expected.size ? s : undefined;
      },
      60_000,
    );
    expect(new Map([...got].sort((a, b) => a[0] - b[0]))).toEqual(new Map([...expected].sort((a, b) => a[0] - b[0])));
    const [count] = await influx.query(`SELECT count(value) FROM strain WHERE asset_id = '${assetId(i)}'`);
    expect(count!.series![0]!.values[0]![1]).toBe(p.taken());
  }

  await waitFor('the spool to drain', async () => (metricValue(await metricsText(api()), 'watchpost_spool_depth') === 0 ? true : undefined), 30_000);
  await waitFor('health back to ok', async () => ((await health(api())).body.status === 'ok' ? true : undefined), 30_000);
  await waitFor(
    'the storage alert to resolve',
    async () => {
      const platform = (await alertList(api())).filter((a) => a.asset_id === 'watchpost');
      return platform.length > 0 && platform.every((a) => a.state === 'resolved') ? platform : undefined;
    },
    20_000,
  );
  expect((await alertList(api())).filter((a) => a.asset_id === 'watchpost').map((a) => [a.rule_id, a.state])).toEqual([['platform-storage', 'resolved']]);
  const final = await metricsText(api());
  // Latency histograms: one observation per batch written (each of at least one point) and one per spool group commit.
  const writes = metricValue(final, 'watchpost_storage_write_latency_seconds_count')!;
  expect(writes).toBeGreaterThan(0);
  expect(writes).toBeLessThanOrEqual(metricValue(final, 'watchpost_storage_written_total')!);
  expect(metricValue(final, 'watchpost_storage_write_latency_seconds_bucket{le="+Inf"}')).toBe(writes);
  expect(metricValue(final, 'watchpost_storage_write_latency_seconds_sum')).toBeGreaterThan(0);
  expect(metricValue(final, 'watchpost_spool_sync_latency_seconds_count')).toBe(metricValue(final, 'watchpost_spool_commits_total'));
  expect(metricValue(final, 'watchpost_spool_sync_latency_seconds_sum')).toBeGreaterThan(0);
  expect(drops(final)).toEqual([]);
  expect(metricValue(final, 'watchpost_storage_written_total')).toBeGreaterThan(0);
  // Secrets never reach the logs.
  for (let i = 0; i < DEVICES; i++) expect(logs.text).not.toContain(SECRET(i));
  for (const secret of [VIEWER_TOKEN, INFLUX_PASSWORD, PLATFORM_PASSWORD]) expect(logs.text).not.toContain(secret);
  console.info(
    `durability (${mode}): ${publishers.reduce((n, p) => n + p.taken(), 0)} readings, outage ${outageMs} ms, ` +
      `${spooledBeforeKill} spooled when killed with SIGKILL; all stored exactly once, 0 drops`,
  );
  expect(await r.wp.stop()).toBe(0);
  r.wp = undefined;
}

describe.concurrent('durability', () => {
  it.skipIf(!influxdAvailable || !cliBuilt)(
    'embedded broker: every acknowledged reading is stored exactly once across a 65 s InfluxDB outage with a kill -9 in it',
    async (ctx) => {
      const r = new Resources();
      try {
        await killDuringOutage('embedded', ctx, r);
      } finally {
        await r.release();
      }
    },
    180_000,
  );

  it.skipIf(!influxdAvailable || !mosquittoBinary || !cliBuilt)(
    'external mosquitto: every reading the broker acknowledged is stored exactly once across a 65 s InfluxDB outage with a kill -9 in it',
    async (ctx) => {
      const r = new Resources();
      try {
        await killDuringOutage('external', ctx, r);
      } finally {
        await r.release();
      }
    },
    180_000,
  );

  it.skipIf(!influxdAvailable)(
    'a full spool stops acknowledging, answers 503, alerts the fallback escalation, and takes everything once InfluxDB is back',
    async ({ expect }) => {
      const influx: Influxd = await startInfluxd({ database: 'telemetry' });
      const receiver: Receiver = await startReceiver();
      let p: RunningPlatform | undefined;
      try {
        await influx.pause();
        const base = baseConfig({
          webhookUrl: receiver.url,
          dataDir: tempDir('spool-full'),
          influx: { url: influx.url, version: 1, database: 'telemetry', retry_max_delay: '500ms', timeout: '1s' },
        });
        p = await startPlatform({
          ...base,
          storage: { ...base.storage, spool: { max_bytes: '1MiB', segment_bytes: '128KiB' } },
          escalations: [...base.escalations, { id: 'fallback', tiers: [{ after: '0s', notify: ['ops-hook'] }] }],
        });
        const T0 = Date.parse('2025-11-28T02:00:00.000Z');
        const batch = (n: number) => JSON.stringify(Array.from({ length: 1000 }, (_, i) => ({ ts: T0 + n * 1000 + i, values: { strain: i % 150 } })));

        // Publish 1000-reading batches until one is not acknowledged: the spool is full.
        const device = await p.connect('dau-bridge-001', DEVICE_SECRET);
        let acked = 0;
        let refusedBatch: number | undefined;
        for (let n = 0; n < 30 && refusedBatch === undefined; n++) {
          const closed = new Promise<'closed'>((resolve) => device.once('close', () => resolve('closed')));
          const outcome = await Promise.race([device.publishAsync('telemetry/lg-bridge-001/strain-01', batch(n), { qos: 1 }).then(() => 'acked' as const), closed]);
          if (outcome === 'acked') acked++;
          else refusedBatch = n;
        }
        // 1000 readings take about 130 KB in the spool: the 1 MiB spool holds 7 or 8 batches.
        expect(refusedBatch).toBeDefined();
        expect(acked).toBeGreaterThanOrEqual(6);
        expect(acked).toBeLessThanOrEqual(8);

        const unavailable = await health(p.apiUrl);
        expect(unavailable.code).toBe(503);
        expect(unavailable.body).toMatchObject({ status: 'unavailable', storage: { accepting: false, pending: acked * 1000 } });
        expect(unavailable.body.storage.spool.usagePercent).toBeGreaterThan(80);

        // The platform's spool alarm (red: readings are refused) goes to the fallback escalation.
        const hook = await waitFor(
          'the fallback notification',
          async () => {
            const found = receiver.requests.map((r) => JSON.parse(r.body)).find((b) => b.alert?.rule_id === 'platform-spool');
            return found;
          },
          15_000,
        );
        expect(hook).toMatchObject({ event: 'firing', alert: { rule_id: 'platform-spool', asset_id: 'watchpost', level: 'red' } });

        // InfluxDB is back: the backlog drains, the device's refused batch is taken, the alarm resolves.
        await influx.resume();
        await waitFor('storage accepting again', async () => ((await health(p!.apiUrl)).body.storage.accepting ? true : undefined), 30_000);
        const again = await p.connect('dau-bridge-001', DEVICE_SECRET);
        await again.publishAsync('telemetry/lg-bridge-001/strain-01', batch(refusedBatch!), { qos: 1 });
        const total = (acked + 1) * 1000;
        await waitFor(
          'every acknowledged reading in InfluxDB',
          async () => {
            const [r] = await influx.query('SELECT count(value) FROM strain');
            return r?.series?.[0]?.values[0]?.[1] === total ? true : undefined;
          },
          30_000,
        );
        await waitFor(
          'the spool alarm to resolve',
          async () => {
            const platform = (await p!.api('GET', '/api/v1/alerts?asset_id=watchpost')).body.alerts as Array<{ rule_id: string; state: string }>;
            return platform.some((a) => a.rule_id === 'platform-spool' && a.state === 'resolved') ? true : undefined;
          },
          20_000,
        );
        const finalMetrics = await metricsText(p.apiUrl);
        expect(drops(finalMetrics)).toEqual([]);
        expect(metricValue(finalMetrics, 'watchpost_ingest_rejected_total{reason="storage_full"}')).toBeGreaterThanOrEqual(1);
      } finally {
        await p?.stop();
        await receiver.close();
        await influx.stop();
      }
    },
    90_000,
  );
});
