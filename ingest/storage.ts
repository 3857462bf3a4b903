/** What every telemetry writer (InfluxDB 1, InfluxDB 2, embedded SQLite) offers the rest of the platform. */
import type { Reading } from './reading.js';

/** One row of the `alert_events` measurement (contract: InfluxDB layout). */
export interface AlertEventPoint {
  ruleId: string;
  assetId: string;
  level: string;
  /** firing | level_raised | level_dropped | acknowledged | resolved | escalated | ... */
  event: string;
  alertId: string;
  value: number;
  message: string;
  ts: number;
}

export interface StorageStatus {
  /** ok: writes succeed; degraded: the backend is failing and points wait in memory for a retry. */
  state: 'ok' | 'degraded';
  /** Points accepted by the writer but not yet confirmed written. */
  pending: number;
  /**
   * false while writeReadings refuses readings (the queue is full, or the writer is stopped):
   * the API reports 503 and ingest rejects messages. Absent means true.
   */
  accepting?: boolean;
  lastError?: string;
}

export interface TelemetryWriter {
  start(): Promise<void>;
  /** Flushes what is pending (bounded by the writer's timeout) and releases timers and sockets. */
  stop(): Promise<void>;
  /**
   * Queues readings for writing, all or none. Returns `accepted`: false when the writer cannot
   * take them (its queue is full because the backend has been failing for long, or it is
   * stopped); nothing was queued and the caller must refuse the message (reject it to the
   * device) rather than count it as stored. Readings that cannot be encoded (a value or timestamp
   * that is not finite) are dropped, logged and counted in `watchpost_storage_failed_total`.
   */
  writeReadings(readings: readonly Reading[]): boolean;
  /**
   * Queues one alert event. If the queue is full (or the writer stopped) the event is dropped, logged at error and
   * counted in `watchpost_storage_failed_total{reason="queue_full"}`: the alert store keeps
   * the alert and its timeline regardless, this is only the copy for dashboards.
   */
  writeAlertEvent(event: AlertEventPoint): void;
  status(): StorageStatus;
}
