import { existsSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { silentLogger } from '../lib/logger.js';
import { MetricsRegistry } from '../lib/metrics.js';
import { storageSchema } from './config.js';
import { storedPointCodec, TELEMETRY_DB_FILE, type EmbeddedStore, type StoredPoint } from './embedded-store.js';
import { Spool } from './spool.js';
import { createTelemetryWriter, SPOOL_DIR } from './storage-factory.js';

const T0 = 1764295200123;

describe('createTelemetryWriter', () => {
  const dirs: string[] = [];
  afterEach(() => {
    for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true });
  });

  function tempDir(): string {
    const dir = mkdtempSync(join(tmpdir(), 'watchpost-factory-'));
    dirs.push(dir);
    return dir;
  }

  it('uses the embedded store under data_dir when no influx section is configured, creating the directory', async () => {
    const dataDir = join(tempDir(), 'a', 'data');
    const writer = createTelemetryWriter(storageSchema.parse({ data_dir: dataDir }), {
      logger: silentLogger(),
      metrics: new MetricsRegistry(),
    });
    expect(existsSync(dataDir)).toBe(true);
    await writer.start();
    expect(existsSync(join(dataDir, TELEMETRY_DB_FILE))).toBe(true);
    expect('latest' in writer).toBe(true);
    await writer.stop();
  });

  it('uses InfluxDB when the influx section is configured, and still creates data_dir', async () => {
    const dataDir = join(tempDir(), 'data');
    const writer = createTelemetryWriter(storageSchema.parse({ data_dir: dataDir, influx: { url: 'http://127.0.0.1:9', version: 1, database: 'telemetry' } }), {
      logger: silentLogger(),
      metrics: new MetricsRegistry(),
    });
    expect(existsSync(dataDir)).toBe(true);
    expect('latest' in writer).toBe(false);
    await writer.start();
    expect(writer.status()).toEqual({
      state: 'ok',
      pending: 0,
      accepting: true,
      spool: { bytes: 0, capacityBytes: 2 * 1024 ** 3, usagePercent: 0, oldestAgeSeconds: 0 },
    });
    await writer.stop();
    expect(existsSync(join(dataDir, TELEMETRY_DB_FILE))).toBe(false);
    expect(readdirSync(join(dataDir, SPOOL_DIR)).sort()).toEqual(['00000000000000000000.seg', 'checkpoint']);
  });

  it('puts the spool in front of the embedded store: a reading is on disk in the spool once writeReadings resolves', async () => {
    const dataDir = tempDir();
    const config = storageSchema.parse({ data_dir: dataDir });
    const reading = (ts: number) => ({ assetId: 'lg-bridge-001', sensorId: 'strain-01', assetType: 'bridge', street: '龙城街道', metric: 'strain', value: ts % 1000, ts });
    const writer = createTelemetryWriter(config, { logger: silentLogger(), metrics: new MetricsRegistry() }) as EmbeddedStore;
    await writer.start();
    expect(await writer.writeReadings([reading(T0), reading(T0 + 1)])).toBe(true);
    // Not in SQLite yet (the flush interval has not passed), but a fresh reader of the spool finds both.
    expect(writer.query({})).toEqual([]);
    const reader = new Spool<StoredPoint>({ dir: join(dataDir, SPOOL_DIR), codec: storedPointCodec, logger: silentLogger() });
    await reader.open();
    expect(await reader.peek(10)).toEqual([
      { kind: 'reading', reading: reading(T0) },
      { kind: 'reading', reading: reading(T0 + 1) },
    ]);
    await reader.close();
    await writer.flush();
    expect(writer.query({}).map((r) => r.ts)).toEqual([T0, T0 + 1]);
    await writer.stop();
  });
});
