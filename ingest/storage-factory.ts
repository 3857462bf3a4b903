/**
 * Picks the telemetry writer the configuration asks for: InfluxDB (1.x or 2.x API) when
 * `storage.influx` is set, else the embedded SQLite store under `storage.data_dir`. Either way
 * the durable spool in `data_dir/spool/` sits in front of it, and lines InfluxDB refuses for
 * their content go to `data_dir/quarantine.jsonl`.
 */
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { DEFAULT_QUARANTINE, type SpoolConfig, type StorageConfig } from './config.js';
import type { TelemetryWriter } from './storage.js';
import { storageMetrics, type StorageDeps } from './batch-writer.js';
import { createInfluxWriter, type Line } from './influx-writer.js';
import { QuarantineFile } from './quarantine.js';
import { createEmbeddedStore, storedPointCodec } from './embedded-store.js';
import { DEFAULT_SPOOL_OPTIONS, lineBytesCodec, Spool, type SpoolCodec, type SpoolOptions } from './spool.js';
import type { SpoolFs } from './spool-fs.js';
import type { StorageError } from './storage-errors.js';

export const SPOOL_DIR = 'spool';

/** What the composition root hears from the spool, and (in tests) the disk it writes to. */
export interface SpoolHooks {
  /** The spool stopped taking appends for good (a failed fdatasync): readings cannot be accepted. */
  onFail?: (error: StorageError) => void;
  fs?: SpoolFs;
}

export function spoolOptions(config: SpoolConfig): SpoolOptions {
  return {
    ...DEFAULT_SPOOL_OPTIONS,
    maxBytes: config.max_bytes,
    segmentBytes: config.segment_bytes,
    fsync: config.fsync,
    fsyncInterval: config.fsync_interval,
    groupCommitDelay: config.group_commit_delay,
  };
}

/** The spool of `storage`, reporting corrupt records as drops and its fsync latency on /metrics. */
export function createSpool<T>(storage: StorageConfig, codec: SpoolCodec<T>, deps: StorageDeps, hooks: SpoolHooks = {}): Spool<T> {
  const failed = storageMetrics(deps.metrics).failed;
  const syncLatency = deps.metrics.histogram('watchpost_spool_sync_latency_seconds', 'Duration of each spool group commit (write + fdatasync).');
  const groupSize = deps.metrics.counter('watchpost_spool_appended_total', 'Points appended to the spool.');
  const groups = deps.metrics.counter('watchpost_spool_commits_total', 'Spool group commits (one write, and one fdatasync with fsync: always).');
  return new Spool<T>(
    {
      dir: join(storage.data_dir, SPOOL_DIR),
      codec,
      logger: deps.logger.child({ module: 'spool' }),
      ...(deps.clock ? { now: () => deps.clock!.now() } : {}),
      onCorrupt: (lost) => failed.inc({ reason: 'spool_corrupt' }, lost),
      onSync: (ms, records) => {
        syncLatency.observe(ms / 1000);
        groups.inc();
        groupSize.inc(undefined, records);
      },
      ...(hooks.onFail ? { onFail: hooks.onFail } : {}),
      ...(hooks.fs ? { fs: hooks.fs } : {}),
    },
    spoolOptions(storage.spool),
  );
}

export function createTelemetryWriter(storage: StorageConfig, deps: StorageDeps, hooks: SpoolHooks = {}): TelemetryWriter {
  // data_dir also holds the platform's state (alerts, outbox, spool), whichever backend is used: only its owner may enter.
  mkdirSync(storage.data_dir, { recursive: true, mode: 0o700 });
  if (storage.influx) {
    const { max_bytes, keep } = storage.quarantine ?? DEFAULT_QUARANTINE;
    const quarantine = new QuarantineFile<Line>(
      {
        dir: storage.data_dir,
        logger: deps.logger.child({ module: 'quarantine' }),
        describe: (line) => (typeof line === 'string' ? line : line.toString('utf8')),
        ...(deps.clock ? { now: () => deps.clock!.now() } : {}),
      },
      { maxBytes: max_bytes, keep },
    );
    return createInfluxWriter(storage.influx, deps, { queue: createSpool(storage, lineBytesCodec, deps, hooks), quarantine });
  }
  return createEmbeddedStore(storage.data_dir, deps, { queue: createSpool(storage, storedPointCodec, deps, hooks), retention: storage.retention.telemetry });
}
