import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { createEmbeddedStore, type EmbeddedStore } from '../../ingest/embedded-store.js';
import { silentLogger } from '../../lib/logger.js';
import { MetricsRegistry } from '../../lib/metrics.js';
import { bucketWidth, EmbeddedSeries, influxIdentifier, influxQueries, influxString } from './series.js';

const reading = (ts: number, value: number, sensorId = 's1') => ({ assetId: 'a1', sensorId, assetType: 'bridge', street: '龙城街道', metric: 'strain', value, ts });

describe('series from the embedded store', () => {
  let dir: string;
  let store: EmbeddedStore;
  let series: EmbeddedSeries;

  beforeEach(async () => {
    dir = mkdtempSync(join(tmpdir(), 'watchpost-series-'));
    store = createEmbeddedStore(dir, { logger: silentLogger(), metrics: new MetricsRegistry() }, { flushInterval: 60_000 });
    await store.start();
    series = new EmbeddedSeries(dir);
  });
  afterEach(async () => {
    series.close();
    await store.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  it('answers the readings themselves when they fit, of that sensor and metric only, in the range', async () => {
    await store.writeReadings([reading(1000, 1), reading(2000, 2), reading(3000, 3), reading(2500, 99, 's2')]);
    await store.flush();
    expect(await series.series({ assetId: 'a1', sensorId: 's1', metric: 'strain', from: 1500, to: 3000, maxPoints: 10 })).toEqual({
      points: [
        { t: 2000, v: 2 },
        { t: 3000, v: 3 },
      ],
      bucket_ms: null,
    });
  });

  it('averages into equal buckets from `from` when there are more readings than maxPoints', async () => {
    // 0..99 s, one a second; 10 buckets of 10 s.
    await store.writeReadings(Array.from({ length: 100 }, (_, i) => reading(i * 1000, i)));
    await store.flush();
    const answer = await series.series({ assetId: 'a1', sensorId: 's1', metric: 'strain', from: 0, to: 99_999, maxPoints: 10 });
    expect(answer.bucket_ms).toBe(10_000);
    expect(answer.points).toEqual(Array.from({ length: 10 }, (_, b) => ({ t: b * 10_000, v: b * 10 + 4.5, min: b * 10, max: b * 10 + 9 })));
    expect(bucketWidth({ from: 0, to: 99_999, maxPoints: 10 })).toBe(10_000);
  });
});

describe('InfluxQL of a series', () => {
  it('quotes identifiers and strings, and bounds the answer', () => {
    expect(influxIdentifier('a"b\\c')).toBe('"a\\"b\\\\c"');
    expect(influxString("x' OR '1'='1")).toBe("'x\\' OR \\'1\\'=\\'1'");
    const q = influxQueries(
      { assetId: 'lg-bridge-001', sensorId: 'strain-01', metric: 'strain', from: 1000, to: 60_999, maxPoints: 6 },
      { database: 'telemetry', retentionPolicy: 'autogen' },
    );
    expect(q).toEqual({
      count: `SELECT count("value") FROM "telemetry"."autogen"."strain" WHERE "asset_id" = 'lg-bridge-001' AND "sensor_id" = 'strain-01' AND time >= 1000ms AND time <= 60999ms`,
      raw: `SELECT "value" FROM "telemetry"."autogen"."strain" WHERE "asset_id" = 'lg-bridge-001' AND "sensor_id" = 'strain-01' AND time >= 1000ms AND time <= 60999ms ORDER BY time ASC LIMIT 6`,
      bucketed: `SELECT mean("value"), min("value"), max("value") FROM "telemetry"."autogen"."strain" WHERE "asset_id" = 'lg-bridge-001' AND "sensor_id" = 'strain-01' AND time >= 1000ms AND time <= 60999ms GROUP BY time(10000ms, 1000ms) fill(none) LIMIT 6`,
      bucket: 10_000,
    });
    expect(influxQueries({ assetId: 'a', sensorId: 's', metric: 'm', from: 0, to: 9, maxPoints: 10 }, { database: 'db' }).raw).toContain('FROM "db".."m"');
  });
});
