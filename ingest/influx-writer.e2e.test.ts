/**
 * The InfluxDB writers against real servers: influxd 1.x for the `/write` path (layout,
 * partial writes, outages) and VictoriaMetrics for the 2.x `/api/v2/write` path.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { silentLogger } from '../lib/logger.js';
import { MetricsRegistry } from '../lib/metrics.js';
import { influxSchema } from './config.js';
import { createInfluxWriter, type InfluxWriter } from './influx-writer.js';
import type { Reading } from './reading.js';
import type { AlertEventPoint } from './storage.js';
import { lineCodec, Spool } from './spool.js';
import { QuarantineFile } from './quarantine.js';
import { readFileSync, statSync } from 'node:fs';
import { waitFor } from '../test/support/binaries.js';
import { influxdAvailable, startInfluxd, type Influxd } from '../test/support/influxd.js';
import { startVictoriaMetrics, victoriaMetricsAvailable, type VictoriaMetrics } from '../test/support/victoria-metrics.js';

const T0 = 1764295200123; // 2025-11-28T02:00:00.123Z

function reading(over: Partial<Reading> = {}): Reading {
  return {
    assetId: 'lg-bridge-001',
    sensorId: 'strain-01',
    assetType: 'bridge',
    street: '龙城街道',
    metric: 'strain',
    value: 123.4,
    ts: T0,
    ...over,
  };
}

const alertEvent: AlertEventPoint = {
  ruleId: 'bridge-strain',
  assetId: 'lg-bridge-001',
  level: 'red',
  event: 'firing',
  alertId: 'alert-0001',
  value: 312.5,
  message: '龙岗河大桥 strain-01 应变 312.5µε，超过红色阈值 300 "现场核查"',
  ts: T0 + 500,
};

/** Short intervals and a fixed jitter so outages are ridden out in well under a second. */
const FAST = { flushInterval: 50, minRetryDelay: 100, maxRetryDelay: 400 };

function counters(metrics: MetricsRegistry) {
  return {
    written: () => metrics.counter('watchpost_storage_written_total', '').get(),
    retries: () => metrics.counter('watchpost_storage_retries_total', '').get(),
    failed: (reason: string) => metrics.counter('watchpost_storage_failed_total', '').get({ reason }),
  };
}

describe.skipIf(!influxdAvailable)('InfluxDB 1.x writer against influxd', () => {
  let influxd: Influxd;
  const writers: InfluxWriter[] = [];
  const dirs: string[] = [];

  beforeAll(async () => {
    influxd = await startInfluxd({ database: 'telemetry' });
  });
  afterEach(async () => {
    await Promise.all(writers.splice(0).map((w) => w.stop()));
    for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true });
  });
  afterAll(async () => {
    await influxd?.stop();
  });

  /** A writer on the durable spool, as the platform builds it. */
  let quarantinePath = '';
  async function startWriter(metrics: MetricsRegistry, database = 'telemetry'): Promise<InfluxWriter> {
    const config = influxSchema.parse({ url: influxd.url, version: 1, database, timeout: '2s' });
    const dir = mkdtempSync(join(tmpdir(), 'watchpost-writer-spool-'));
    dirs.push(dir);
    const queue = new Spool<string>({ dir, codec: lineCodec, logger: silentLogger() });
    const quarantine = new QuarantineFile<string>({ dir, logger: silentLogger(), describe: (line) => line });
    quarantinePath = quarantine.location;
    const writer = createInfluxWriter(config, { logger: silentLogger(), metrics, random: () => 0.5 }, { ...FAST, queue, quarantine });
    writers.push(writer);
    await writer.start();
    return writer;
  }

  it('writes readings and alert events in the contract layout, read back with InfluxQL', async () => {
    const metrics = new MetricsRegistry();
    const writer = await startWriter(metrics);
    expect(await writer.writeReadings([reading(), reading({ value: 123, ts: T0 + 1 }), reading({ sensorId: 'strain-02', street: '龙城街道, 东区=1', value: -0.25, ts: T0 + 2 })])).toBe(true);
    writer.writeAlertEvent(alertEvent);
    // The alert event reaches the spool asynchronously, and the flush interval may already have
    // written the readings meanwhile (so "4 pending" need never be true): wait until all four are written.
    await waitFor('the readings and the alert event to be written', async () => {
      await writer.flush();
      return counters(metrics).written() === 4 ? true : undefined;
    });

    expect(await influxd.query('SELECT * FROM strain')).toEqual([
      {
        statement_id: 0,
        series: [
          {
            name: 'strain',
            columns: ['time', 'asset_id', 'asset_type', 'sensor_id', 'street', 'value'],
            values: [
              [T0, 'lg-bridge-001', 'bridge', 'strain-01', '龙城街道', 123.4],
              [T0 + 1, 'lg-bridge-001', 'bridge', 'strain-01', '龙城街道', 123],
              [T0 + 2, 'lg-bridge-001', 'bridge', 'strain-02', '龙城街道, 东区=1', -0.25],
            ],
          },
        ],
      },
    ]);
    expect(await influxd.query('SHOW TAG KEYS FROM strain; SHOW FIELD KEYS FROM strain')).toEqual([
      {
        statement_id: 0,
        series: [{ name: 'strain', columns: ['tagKey'], values: [['asset_id'], ['asset_type'], ['sensor_id'], ['street']] }],
      },
      { statement_id: 1, series: [{ name: 'strain', columns: ['fieldKey', 'fieldType'], values: [['value', 'float']] }] },
    ]);

    expect(await influxd.query('SELECT * FROM alert_events')).toEqual([
      {
        statement_id: 0,
        series: [
          {
            name: 'alert_events',
            columns: ['time', 'alert_id', 'asset_id', 'event', 'level', 'message', 'rule_id', 'value'],
            values: [[T0 + 500, 'alert-0001', 'lg-bridge-001', 'firing', 'red', alertEvent.message, 'bridge-strain', 312.5]],
          },
        ],
      },
    ]);
    expect(await influxd.query('SHOW TAG KEYS FROM alert_events; SHOW FIELD KEYS FROM alert_events')).toEqual([
      {
        statement_id: 0,
        series: [{ name: 'alert_events', columns: ['tagKey'], values: [['asset_id'], ['event'], ['level'], ['rule_id']] }],
      },
      {
        statement_id: 1,
        series: [
          {
            name: 'alert_events',
            columns: ['fieldKey', 'fieldType'],
            values: [
              ['alert_id', 'string'],
              ['message', 'string'],
              ['value', 'float'],
            ],
          },
        ],
      },
    ]);
    expect(counters(metrics).written()).toBe(4);
    expect(writer.status()).toMatchObject({ state: 'ok', pending: 0, accepting: true, spool: { bytes: 0 } });
  });

  it('rides out an influxd outage: spools, retries, then writes every point exactly once, oldest first', async () => {
    const metrics = new MetricsRegistry();
    const c = counters(metrics);
    const writer = await startWriter(metrics);
    await writer.writeReadings([reading({ metric: 'tilt', value: 1, ts: T0 })]);
    await writer.flush();
    expect(c.written()).toBe(1);

    await influxd.pause();
    const during = [2, 3, 4].map((v, i) => reading({ metric: 'tilt', value: v, ts: T0 + 1000 * (i + 1) }));
    expect(await writer.writeReadings(during.slice(0, 2))).toBe(true);
    await waitFor('the writer to retry twice', async () => (c.retries() >= 2 ? true : undefined), 10_000);
    expect(await writer.writeReadings(during.slice(2))).toBe(true);
    expect(writer.status()).toMatchObject({ state: 'degraded', reason: 'unreachable', pending: 3, accepting: true });
    expect(writer.status().lastError).toMatch(/cannot reach InfluxDB/);
    expect(await metrics.render()).toContain('watchpost_spool_depth 3\n');

    await influxd.resume();
    await waitFor('the spooled points to be written', async () => (writer.status().pending === 0 ? true : undefined), 10_000);

    expect(writer.status()).toMatchObject({ state: 'ok', pending: 0, accepting: true });
    expect(c.written()).toBe(4);
    expect(c.failed('rejected')).toBe(0);
    expect(await influxd.query('SELECT value FROM tilt')).toEqual([
      {
        statement_id: 0,
        series: [
          {
            name: 'tilt',
            columns: ['time', 'value'],
            values: [
              [T0, 1],
              [T0 + 1000, 2],
              [T0 + 2000, 3],
              [T0 + 3000, 4],
            ],
          },
        ],
      },
    ]);
    // The restarted server counts what it was sent: the three spooled points, once each.
    const [stats] = await influxd.query(`SHOW STATS FOR 'httpd'`);
    const httpd = stats!.series![0]!;
    expect(httpd.values[0]![httpd.columns.indexOf('pointsWrittenOK')]).toBe(3);
  });

  it('writes the good points of a batch with a field type conflict and keeps the conflicting ones in the quarantine', async () => {
    const metrics = new MetricsRegistry();
    const c = counters(metrics);
    // Make `rainfall.value` a string in this shard, so our float is a field type conflict.
    const seed = await fetch(`${influxd.url}/write?db=telemetry&precision=ms`, {
      method: 'POST',
      body: `rainfall,asset_id=seed value="text" ${T0}`,
    });
    expect(seed.status).toBe(204);

    const writer = await startWriter(metrics);
    await writer.writeReadings([
      reading({ metric: 'displacement', value: 1.5, ts: T0 }),
      reading({ metric: 'rainfall', value: 12, ts: T0 }),
      reading({ metric: 'displacement', value: 1.75, ts: T0 + 1 }),
      reading({ metric: 'rainfall', value: 13, ts: T0 + 1 }),
    ]);
    await writer.flush();

    expect(metrics.counter('watchpost_storage_quarantined_total', '').get({ reason: 'field_type_conflict' })).toBe(2);
    expect(c.failed('field_type_conflict')).toBe(0);
    expect(c.written()).toBe(2);
    expect(writer.status()).toMatchObject({ state: 'ok', pending: 0 });
    expect(writer.status().lastError).toMatch(/HTTP 400: partial write: field type conflict.*dropped=2/);
    expect((await influxd.query('SELECT value FROM displacement'))[0]!.series![0]!.values).toEqual([
      [T0, 1.5],
      [T0 + 1, 1.75],
    ]);
    const rainfall = (value: number, ts: number) => `rainfall,asset_id=lg-bridge-001,asset_type=bridge,sensor_id=strain-01,street=龙城街道 value=${value} ${ts}`;
    const records = readFileSync(quarantinePath, 'utf8')
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l));
    expect(records.map((r) => [r.reason, r.point])).toEqual([
      ['field_type_conflict', rainfall(12, T0)],
      ['field_type_conflict', rainfall(13, T0 + 1)],
    ]);
    expect(records[0].error).toMatch(/^HTTP 400: partial write: field type conflict: input field "value" on measurement "rainfall" is type float, already exists as type string dropped=2$/);
    expect(statSync(quarantinePath).mode & 0o777).toBe(0o600);

    // The queue is not blocked: the next batch goes through.
    await writer.writeReadings([reading({ metric: 'displacement', value: 2, ts: T0 + 2 })]);
    await writer.flush();
    expect(c.written()).toBe(3);
  });

  it('creates a missing database at start', async () => {
    const metrics = new MetricsRegistry();
    const writer = await startWriter(metrics, 'created_at_start');
    expect((await influxd.query('SHOW DATABASES'))[0]!.series![0]!.values).toContainEqual(['created_at_start']);
    await writer.writeReadings([reading()]);
    await writer.flush();
    expect(counters(metrics).written()).toBe(1);
  });

  it('keeps the points while the database is gone (404), and writes every one once it is back', async () => {
    const metrics = new MetricsRegistry();
    const c = counters(metrics);
    const writer = await startWriter(metrics, 'dropped_meanwhile');
    await influxd.query('DROP DATABASE "dropped_meanwhile"');
    await writer.writeReadings([reading(), reading({ ts: T0 + 1 })]);
    await waitFor('the writer to retry', async () => (c.retries() >= 2 ? true : undefined), 10_000);
    expect(writer.status()).toMatchObject({ state: 'degraded', reason: 'database_not_found', pending: 2, lastError: 'HTTP 404: database not found: "dropped_meanwhile"' });
    expect(c.written()).toBe(0);
    await influxd.query('CREATE DATABASE "dropped_meanwhile"');
    await waitFor('the points to be written', async () => (writer.status().pending === 0 ? true : undefined), 10_000);
    const [count] = await influxd.query('SELECT count(value) FROM "dropped_meanwhile".."strain"');
    expect(count!.series![0]!.values[0]![1]).toBe(2);
    expect(c.written()).toBe(2);
  });
});

describe.skipIf(!victoriaMetricsAvailable)('InfluxDB 2.x writer against VictoriaMetrics /api/v2/write', () => {
  let vm: VictoriaMetrics;

  beforeAll(async () => {
    vm = await startVictoriaMetrics();
  });
  afterAll(async () => {
    await vm?.stop();
  });

  it('writes readings and alert events that export back exactly', async () => {
    const metrics = new MetricsRegistry();
    const config = influxSchema.parse({
      url: vm.url,
      version: 2,
      org: 'longgang',
      bucket: 'telemetry',
      token: 'test-token',
      batch_size: 2,
      flush_interval: '50ms',
      timeout: '5s',
    });
    const writer = createInfluxWriter(config, { logger: silentLogger(), metrics });
    await writer.start();
    try {
      expect(await writer.writeReadings([reading(), reading({ value: 123, ts: T0 + 1 }), reading({ sensorId: 'strain-02', street: '龙城街道 东区', value: -0.25, ts: T0 + 2 })])).toBe(true);
      writer.writeAlertEvent(alertEvent);
      // As above: the readings may be written before the alert event is queued, so wait for all four written.
      await waitFor('the readings and the alert event to be written', async () => {
        await writer.flush();
        return counters(metrics).written() >= 4 ? true : undefined;
      });
      expect(counters(metrics).written()).toBe(4);
    } finally {
      await writer.stop();
    }

    const selector = '{__name__=~"strain_value|alert_events_value"}';
    const series = await waitFor('the samples to be searchable', async () => {
      await vm.forceFlush();
      const found = await vm.export(selector);
      return found.reduce((n, s) => n + s.values.length, 0) >= 4 ? found : undefined;
    });
    expect(series).toEqual([
      {
        metric: { __name__: 'alert_events_value', asset_id: 'lg-bridge-001', event: 'firing', level: 'red', rule_id: 'bridge-strain' },
        values: [312.5],
        timestamps: [T0 + 500],
      },
      {
        metric: { __name__: 'strain_value', asset_id: 'lg-bridge-001', asset_type: 'bridge', sensor_id: 'strain-01', street: '龙城街道' },
        values: [123.4, 123],
        timestamps: [T0, T0 + 1],
      },
      {
        metric: { __name__: 'strain_value', asset_id: 'lg-bridge-001', asset_type: 'bridge', sensor_id: 'strain-02', street: '龙城街道 东区' },
        values: [-0.25],
        timestamps: [T0 + 2],
      },
    ]);
  });
});
