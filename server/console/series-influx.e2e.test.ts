/** GET /api/v1/series's InfluxDB source against a real influxd 1.x: the readings, buckets, and ids that are quoted, not spliced. */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { influxdAvailable, startInfluxd, type Influxd } from '../../test/support/influxd.js';
import { influxSchema } from '../../ingest/config.js';
import { InfluxSeries } from './series.js';

describe.skipIf(!influxdAvailable)('series from InfluxDB', () => {
  let influx: Influxd;
  let series: InfluxSeries;

  beforeAll(async () => {
    influx = await startInfluxd({ database: 'telemetry' });
    series = new InfluxSeries(influxSchema.parse({ url: influx.url, version: 1, database: 'telemetry' }));
    // As the writer lays them out (contract: InfluxDB layout): 0..99 s, one a second, and another sensor's.
    const lines = Array.from({ length: 100 }, (_, i) => `strain,asset_id=a1,sensor_id=s1,asset_type=bridge,street=x value=${i} ${i * 1000}`);
    lines.push('strain,asset_id=a1,sensor_id=s2,asset_type=bridge,street=x value=500 5000');
    const res = await fetch(`${influx.url}/write?db=telemetry&precision=ms`, { method: 'POST', body: lines.join('\n') });
    expect(res.status).toBe(204);
  });
  afterAll(async () => {
    await influx?.stop();
  });

  it('answers the readings themselves when they fit', async () => {
    expect(await series.series({ assetId: 'a1', sensorId: 's1', metric: 'strain', from: 2000, to: 4000, maxPoints: 10 })).toEqual({
      points: [
        { t: 2000, v: 2 },
        { t: 3000, v: 3 },
        { t: 4000, v: 4 },
      ],
      bucket_ms: null,
    });
  });

  it('averages into buckets from `from` when there are more', async () => {
    const answer = await series.series({ assetId: 'a1', sensorId: 's1', metric: 'strain', from: 0, to: 99_999, maxPoints: 10 });
    expect(answer).toEqual({ bucket_ms: 10_000, points: Array.from({ length: 10 }, (_, b) => ({ t: b * 10_000, v: b * 10 + 4.5, min: b * 10, max: b * 10 + 9 })) });
  });

  it('quotes what it is given: a quote in an id finds nothing rather than everything', async () => {
    expect(await series.series({ assetId: "a1' OR asset_id =~ /.*/ OR asset_id = '", sensorId: 's1', metric: 'strain', from: 0, to: 99_999, maxPoints: 10 })).toEqual({
      points: [],
      bucket_ms: null,
    });
    expect(await series.series({ assetId: 'a1', sensorId: 's1', metric: 'no_such_metric', from: 0, to: 99_999, maxPoints: 10 })).toEqual({ points: [], bucket_ms: null });
  });

  it('says why when InfluxDB refuses', async () => {
    const wrong = new InfluxSeries(influxSchema.parse({ url: influx.url, version: 1, database: 'no_such_db' }));
    await expect(wrong.series({ assetId: 'a1', sensorId: 's1', metric: 'strain', from: 0, to: 1, maxPoints: 10 })).rejects.toThrow(/InfluxDB answered .*database not found/);
  });
});
