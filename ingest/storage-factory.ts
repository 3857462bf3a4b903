/**
 * Picks the telemetry writer the configuration asks for: InfluxDB (1.x or 2.x API) when
 * `storage.influx` is set, else the embedded SQLite store under `storage.data_dir`.
 */
import { mkdirSync } from 'node:fs';
import type { StorageConfig } from './config.js';
import type { TelemetryWriter } from './storage.js';
import type { StorageDeps } from './batch-writer.js';
import { createInfluxWriter } from './influx-writer.js';
import { createEmbeddedStore } from './embedded-store.js';

export function createTelemetryWriter(storage: StorageConfig, deps: StorageDeps): TelemetryWriter {
  // data_dir also holds the platform's state (alerts, outbox, spool), whichever backend is used.
  mkdirSync(storage.data_dir, { recursive: true });
  if (storage.influx) return createInfluxWriter(storage.influx, deps);
  return createEmbeddedStore(storage.data_dir, deps);
}
