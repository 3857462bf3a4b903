/**
 * State files are created for their owner only: data_dir and the spool directory 0700, spool
 * segments and checkpoint 0600, the embedded telemetry store with its -wal and -shm 0600.
 */
import { chmodSync, mkdtempSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { silentLogger } from '../lib/logger.js';
import { MetricsRegistry } from '../lib/metrics.js';
import { storageSchema } from './config.js';
import { TELEMETRY_DB_FILE, type EmbeddedStore } from './embedded-store.js';
import { SPOOL_DIR, createTelemetryWriter } from './storage-factory.js';

const mode = (path: string) => statSync(path).mode & 0o777;

describe('state file modes', () => {
  const dirs: string[] = [];
  const previousUmask = process.umask(0o022);
  afterEach(() => {
    for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true });
  });
  afterEach(() => {
    process.umask(previousUmask);
  });

  it('creates data_dir 0700 and every file in it 0600, whatever the usual umask allows', async () => {
    const root = mkdtempSync(join(tmpdir(), 'watchpost-modes-'));
    dirs.push(root);
    const dataDir = join(root, 'data');
    // Small segments: 800 readings (about 90 KB in the spool) roll over to a second one.
    const config = storageSchema.parse({ data_dir: dataDir, spool: { segment_bytes: '64KiB' } });
    const writer = createTelemetryWriter(config, { logger: silentLogger(), metrics: new MetricsRegistry() }) as EmbeddedStore;
    await writer.start();
    const reading = (ts: number) => ({ assetId: 'lg-bridge-001', sensorId: 'strain-01', assetType: 'bridge', street: '龙城街道', metric: 'strain', value: 1, ts });
    for (let i = 0; i < 40; i++) {
      expect(await writer.writeReadings(Array.from({ length: 20 }, (_, j) => reading(1764295200000 + i * 20 + j)))).toBe(true);
    }
    try {
      expect(mode(dataDir)).toBe(0o700);
      expect(mode(join(dataDir, SPOOL_DIR))).toBe(0o700);
      const spoolFiles = readdirSync(join(dataDir, SPOOL_DIR));
      expect(spoolFiles.filter((f) => f.endsWith('.seg')).length).toBeGreaterThan(1);
      expect(spoolFiles.map((f) => [f, mode(join(dataDir, SPOOL_DIR, f))])).toEqual(spoolFiles.map((f) => [f, 0o600]));
      await writer.flush();
      const store = [TELEMETRY_DB_FILE, `${TELEMETRY_DB_FILE}-wal`, `${TELEMETRY_DB_FILE}-shm`];
      expect(store.map((f) => [f, mode(join(dataDir, f))])).toEqual(store.map((f) => [f, 0o600]));
    } finally {
      await writer.stop();
    }
  });

  it('makes state files an older version left readable by others private at start', async () => {
    const root = mkdtempSync(join(tmpdir(), 'watchpost-modes-'));
    dirs.push(root);
    const dataDir = join(root, 'data');
    const config = storageSchema.parse({ data_dir: dataDir });
    const deps = () => ({ logger: silentLogger(), metrics: new MetricsRegistry() });
    const first = createTelemetryWriter(config, deps()) as EmbeddedStore;
    await first.start();
    await first.stop();
    // What an older version left: everything 0644, and a WAL file from an unclean stop.
    writeFileSync(join(dataDir, `${TELEMETRY_DB_FILE}-wal`), '');
    const files = [TELEMETRY_DB_FILE, `${TELEMETRY_DB_FILE}-wal`, ...readdirSync(join(dataDir, SPOOL_DIR)).map((f) => join(SPOOL_DIR, f))];
    for (const f of files) chmodSync(join(dataDir, f), 0o644);
    expect(files.map((f) => mode(join(dataDir, f)))).toEqual(files.map(() => 0o644));

    const again = createTelemetryWriter(config, deps()) as EmbeddedStore;
    await again.start();
    try {
      expect(files.map((f) => [f, mode(join(dataDir, f))])).toEqual(files.map((f) => [f, 0o600]));
    } finally {
      await again.stop();
    }
  });
});
