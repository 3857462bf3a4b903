import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { silentLogger } from '../lib/logger.js';
import { MetricsRegistry } from '../lib/metrics.js';
import { createEmbeddedStore, storedPointCodec, TELEMETRY_DB_FILE, type EmbeddedStore, type EmbeddedStoreOptions, type StoredPoint } from './embedded-store.js';
import { MemoryPointQueue } from './point-queue.js';
import type { Reading } from './reading.js';
import type { AlertEventPoint } from './storage.js';

const T0 = 1764295200123;

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

const event: AlertEventPoint = {
  ruleId: 'bridge-strain',
  assetId: 'lg-bridge-001',
  level: 'red',
  event: 'firing',
  alertId: 'alert-0001',
  value: 312.5,
  message: '龙岗河大桥 strain-01 应变 312.5µε，超过红色阈值 300',
  ts: T0 + 500,
};

describe('embedded telemetry store', () => {
  let root: string;
  let dataDir: string;
  let metrics: MetricsRegistry;
  const stores: EmbeddedStore[] = [];

  beforeEach(() => {
    root = mkdtempSync(join(tmpdir(), 'watchpost-store-'));
    dataDir = join(root, 'nested', 'data');
    metrics = new MetricsRegistry();
  });
  afterEach(async () => {
    await Promise.all(stores.splice(0).map((s) => s.stop()));
    rmSync(root, { recursive: true, force: true });
  });

  async function open(options: EmbeddedStoreOptions = {}): Promise<EmbeddedStore> {
    const store = createEmbeddedStore(dataDir, { logger: silentLogger(), metrics }, { flushInterval: 60_000, ...options });
    stores.push(store);
    await store.start();
    return store;
  }

  const written = () => metrics.counter('watchpost_storage_written_total', '').get();
  const failed = (reason: string) => metrics.counter('watchpost_storage_failed_total', '').get({ reason });

  it('creates telemetry.db in WAL mode with the InfluxDB-shaped tables', async () => {
    await open();
    const db = new Database(join(dataDir, TELEMETRY_DB_FILE), { readonly: true });
    try {
      expect(db.pragma('journal_mode', { simple: true })).toBe('wal');
      const columns = (table: string) => (db.pragma(`table_info(${table})`) as Array<{ name: string; type: string }>).map((c) => `${c.name} ${c.type}`);
      expect(columns('readings')).toEqual(['metric TEXT', 'asset_id TEXT', 'sensor_id TEXT', 'asset_type TEXT', 'street TEXT', 'ts INTEGER', 'value REAL']);
      expect(columns('alert_events')).toEqual(['rule_id TEXT', 'asset_id TEXT', 'level TEXT', 'event TEXT', 'ts INTEGER', 'alert_id TEXT', 'value REAL', 'message TEXT']);
      // The primary key leads with (asset_id, sensor_id, metric, ts): the index the queries use.
      const key = (db.pragma('index_info(sqlite_autoindex_readings_1)') as Array<{ name: string }>).map((c) => c.name);
      expect(key).toEqual(['asset_id', 'sensor_id', 'metric', 'ts', 'asset_type', 'street']);
    } finally {
      db.close();
    }
  });

  it('writes a batch in one flush and answers query() and latest() exactly', async () => {
    const store = await open();
    expect(
      await store.writeReadings([
        reading(),
        reading({ value: 125, ts: T0 + 1000 }),
        reading({ sensorId: 'strain-02', value: -3.5, ts: T0 + 10 }),
        reading({ metric: 'temperature', value: 21.5, ts: T0 + 20 }),
        reading({ assetId: 'lg-slope-007', assetType: 'slope', sensorId: 'rg-01', metric: 'rainfall', value: 12, ts: T0 + 5 }),
      ]),
    ).toBe(true);
    expect(store.query({})).toEqual([]);
    expect(store.status()).toMatchObject({ state: 'ok', pending: 5, accepting: true });

    await store.flush();
    expect(written()).toBe(5);
    expect(store.status()).toMatchObject({ state: 'ok', pending: 0, accepting: true });

    expect(store.query({ metric: 'strain', assetId: 'lg-bridge-001', sensorId: 'strain-01' })).toEqual([reading(), reading({ value: 125, ts: T0 + 1000 })]);
    expect(store.query({ metric: 'strain', from: T0 + 5, to: T0 + 1000 })).toEqual([reading({ sensorId: 'strain-02', value: -3.5, ts: T0 + 10 }), reading({ value: 125, ts: T0 + 1000 })]);
    expect(store.query({ assetId: 'lg-bridge-001', limit: 2 }).map((r) => r.ts)).toEqual([T0, T0 + 10]);

    expect(store.latest('lg-bridge-001')).toEqual([
      reading({ value: 125, ts: T0 + 1000 }),
      reading({ metric: 'temperature', value: 21.5, ts: T0 + 20 }),
      reading({ sensorId: 'strain-02', value: -3.5, ts: T0 + 10 }),
    ]);
    expect(store.latest().map((r) => `${r.assetId}/${r.sensorId}/${r.metric}=${r.value}`)).toEqual([
      'lg-bridge-001/strain-01/strain=125',
      'lg-bridge-001/strain-01/temperature=21.5',
      'lg-bridge-001/strain-02/strain=-3.5',
      'lg-slope-007/rg-01/rainfall=12',
    ]);
  });

  it('overwrites the same series and timestamp, like InfluxDB; another series at that time is a new point', async () => {
    const store = await open();
    await store.writeReadings([reading({ value: 1 })]);
    await store.flush();
    await store.writeReadings([reading({ value: 2 }), reading({ value: 3, street: '南湾街道' })]);
    await store.flush();
    expect(store.query({ metric: 'strain' })).toEqual([reading({ value: 3, street: '南湾街道' }), reading({ value: 2 })]);
    expect(written()).toBe(3);
  });

  it('stores alert events and reads them back', async () => {
    const store = await open();
    store.writeAlertEvent(event);
    store.writeAlertEvent({ ...event, event: 'acknowledged', value: Number.NaN, message: 'ack "by" duty\nofficer', ts: T0 + 900 });
    store.writeAlertEvent({ ...event, assetId: 'other', ts: T0 + 950 });
    await expect.poll(() => store.status().pending).toBe(3);
    await store.flush();
    expect(store.alertEvents({ assetId: 'lg-bridge-001' })).toEqual([event, { ...event, event: 'acknowledged', value: Number.NaN, message: 'ack "by" duty\nofficer', ts: T0 + 900 }]);
    expect(store.alertEvents({ from: T0 + 901 }).map((e) => e.assetId)).toEqual(['other']);
  });

  it('drops readings that cannot be stored and counts them, keeping the rest', async () => {
    const store = await open();
    expect(await store.writeReadings([reading({ value: Number.NaN }), reading({ ts: Number.POSITIVE_INFINITY }), reading()])).toBe(true);
    await store.flush();
    expect(failed('invalid_point')).toBe(2);
    expect(store.query({})).toEqual([reading()]);
  });

  it('refuses a whole write when the queue is full, still takes alert events, and accepts again once it drains', async () => {
    const store = await open({ queue: new MemoryPointQueue(3), batchSize: 100 });
    expect(await store.writeReadings([reading({ ts: 1 }), reading({ ts: 2 })])).toBe(true);
    expect(await store.writeReadings([reading({ ts: 3 }), reading({ ts: 4 })])).toBe(false);
    expect(store.status()).toMatchObject({ state: 'ok', pending: 2, accepting: false });
    store.writeAlertEvent(event);
    store.writeAlertEvent({ ...event, ts: event.ts + 1 });
    await expect.poll(() => store.status().pending).toBe(4);
    expect(failed('alert_event_refused')).toBe(0);

    await store.flush();
    expect(store.status()).toMatchObject({ state: 'ok', pending: 0, accepting: true });
    expect(store.query({}).map((r) => r.ts)).toEqual([1, 2]);
    expect(store.alertEvents().map((e) => e.ts)).toEqual([event.ts, event.ts + 1]);
    expect(await store.writeReadings([reading({ ts: 3 }), reading({ ts: 4 })])).toBe(true);
  });

  it('flushes pending points on stop(), and they are there after a restart', async () => {
    const store = await open();
    await store.writeReadings([reading(), reading({ ts: T0 + 1 })]);
    store.writeAlertEvent(event);
    await store.stop();
    expect(store.status()).toMatchObject({ pending: 0, accepting: false });
    expect(await store.writeReadings([reading()])).toBe(false);

    const reopened = await open();
    expect(reopened.query({})).toEqual([reading(), reading({ ts: T0 + 1 })]);
    expect(reopened.alertEvents()).toEqual([event]);
  });

  it('writes in batches of batch_size as they fill, without waiting for the interval', async () => {
    const store = await open({ batchSize: 2 });
    await store.writeReadings([reading({ ts: 1 }), reading({ ts: 2 }), reading({ ts: 3 })]);
    await expect.poll(() => written()).toBe(2);
    expect(store.status().pending).toBe(1);
  });

  describe('retention', () => {
    const DAY = 86_400_000;
    afterEach(() => {
      vi.useRealTimers();
    });

    async function openWithClock(clock: { now: () => number }, options: EmbeddedStoreOptions) {
      const store = createEmbeddedStore(dataDir, { logger: silentLogger(), metrics, clock }, { flushInterval: 60_000, ...options });
      stores.push(store);
      await store.start();
      return store;
    }

    it('deletes rows older than the retention every prune interval, on the injected clock', async () => {
      vi.useFakeTimers({ toFake: ['setInterval', 'clearInterval'] });
      let now = T0;
      const store = await openWithClock({ now: () => now }, { retention: DAY, pruneInterval: 60_000, pruneBatch: 3 });
      const ages = [2 * DAY, 1.5 * DAY, DAY + 1, DAY, DAY - 1, 3_600_000];
      await store.writeReadings(ages.map((age) => reading({ ts: T0 - age })));
      await store.writeReadings(ages.map((age) => reading({ sensorId: 'strain-02', ts: T0 - age })));
      await store.writeReadings([reading({ assetId: 'lg-slope-007', metric: 'rainfall', ts: T0 })]);
      store.writeAlertEvent({ ...event, ts: T0 - 2 * DAY });
      store.writeAlertEvent({ ...event, ts: T0 - DAY });
      await expect.poll(() => store.status().pending).toBe(15);
      await store.flush();
      const series = (sensorId: string) => store.query({ assetId: 'lg-bridge-001', sensorId }).map((r) => T0 - r.ts);

      await vi.advanceTimersByTimeAsync(59_999);
      expect(series('strain-01')).toEqual(ages);

      // Strictly older than now - retention goes; a row exactly at the cutoff stays.
      const left = () => ({
        'strain-01': series('strain-01'),
        'strain-02': series('strain-02'),
        slope: store.query({ assetId: 'lg-slope-007' }).map((r) => T0 - r.ts),
        events: store.alertEvents().map((e) => T0 - e.ts),
      });
      await vi.advanceTimersByTimeAsync(1);
      await vi.waitFor(() => expect(left()).toEqual({ 'strain-01': [DAY, DAY - 1, 3_600_000], 'strain-02': [DAY, DAY - 1, 3_600_000], slope: [0], events: [DAY] }));

      // The clock moves on: the next pass takes what has aged past the retention since.
      now += 1;
      await vi.advanceTimersByTimeAsync(60_000);
      await vi.waitFor(() => expect(left()).toEqual({ 'strain-01': [DAY - 1, 3_600_000], 'strain-02': [DAY - 1, 3_600_000], slope: [0], events: [] }));
    });

    it('deletes in transactions of at most pruneBatch rows, letting the event loop turn between them', async () => {
      const store = await openWithClock({ now: () => T0 }, { retention: DAY, pruneInterval: 3_600_000, pruneBatch: 4 });
      await store.writeReadings(Array.from({ length: 10 }, (_, i) => reading({ ts: T0 - 2 * DAY + i })));
      await store.writeReadings([reading({ sensorId: 'strain-02', ts: T0 - 3 * DAY }), reading({ ts: T0 })]);
      await store.flush();
      const pass = store.prune();
      // The first transaction ran at once; the rest wait for the next turns of the event loop.
      expect(store.query({}).length).toBe(12 - 4);
      expect(await pass).toBe(11);
      expect(store.query({})).toEqual([reading({ ts: T0 })]);
      expect(await store.prune()).toBe(0);
    });

    it('keeps everything with retention 0', async () => {
      const store = await openWithClock({ now: () => T0 + 1000 * DAY }, { retention: 0 });
      await store.writeReadings([reading({ ts: 1 })]);
      await store.flush();
      expect(await store.prune()).toBe(0);
      expect(store.query({}).map((r) => r.ts)).toEqual([1]);
    });
  });
});

describe('storedPointCodec', () => {
  it('round-trips readings and alert events exactly, NaN included', () => {
    const points: StoredPoint[] = [
      { kind: 'reading', reading: reading({ value: -0.000123, street: 'a "quoted", \\ street' }) },
      { kind: 'alert_event', event },
      { kind: 'alert_event', event: { ...event, value: Number.NaN, message: '' } },
    ];
    for (const p of points) expect(storedPointCodec.decode(Buffer.from(storedPointCodec.encode(p) as string))).toEqual(p);
  });

  it('refuses a payload that is not a stored point', () => {
    for (const bad of ['{}', '["r", 1]', '["x","a","b","c","d","e",1,2]', '["r","m","a","s","t","st","1",2]']) {
      expect(() => storedPointCodec.decode(Buffer.from(bad))).toThrow(/not a stored point|is not a/);
    }
  });
});
