import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { silentLogger } from '../lib/logger.js';
import { MetricsRegistry } from '../lib/metrics.js';
import { storageSchema } from './config.js';
import { TELEMETRY_DB_FILE } from './embedded-store.js';
import { createTelemetryWriter } from './storage-factory.js';

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
    const writer = createTelemetryWriter(
      storageSchema.parse({ data_dir: dataDir, influx: { url: 'http://127.0.0.1:9', version: 1, database: 'telemetry' } }),
      { logger: silentLogger(), metrics: new MetricsRegistry() },
    );
    expect(existsSync(dataDir)).toBe(true);
    expect('latest' in writer).toBe(false);
    expect(writer.status()).toEqual({ state: 'ok', pending: 0, accepting: true });
    await writer.start();
    await writer.stop();
    expect(existsSync(join(dataDir, TELEMETRY_DB_FILE))).toBe(false);
  });
});
