/** What every telemetry writer (InfluxDB 1, InfluxDB 2, embedded SQLite) offers the rest of the platform. */
import type { Reading } from './reading.js';
import type { StorageFailureReason } from './storage-errors.js';

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
  /** Who did it (a token's name, a work-order link's department); absent for the platform. */
  actor?: string;
  ts: number;
}

export interface StorageStatus {
  /**
   * ok: writes succeed and keep up; degraded: the backend is failing (points wait in the spool
   * for a retry) or the backlog of an outage is being sent.
   */
  state: 'ok' | 'degraded';
  /**
   * Why it is degraded: why writes fail (`unreachable`, `timeout`, `unavailable`, `unauthorized`,
   * `forbidden`, `database_not_found`, `bucket_not_found`, …; see storage-errors.ts), or
   * `draining` while the backlog of an outage is sent.
   */
  reason?: StorageFailureReason | 'draining';
  /** Points accepted by the writer but not yet confirmed written. */
  pending: number;
  /**
   * false while writeReadings refuses readings (the spool is full or failing, or the writer is
   * stopped): the API reports 503 and QoS 1 messages are not acknowledged. Absent means true.
   */
  accepting?: boolean;
  /** Since when writes have been failing without a success (epoch ms). */
  failingSince?: number;
  lastError?: string;
  /** Why the spool refuses appends (an I/O error), when it does. */
  queueError?: string;
  spool?: {
    bytes: number;
    capacityBytes: number;
    usagePercent: number;
    /** How long the oldest waiting point has waited. */
    oldestAgeSeconds: number;
  };
}

export interface TelemetryWriter {
  /** Opens the spool (recovering what a previous run left) and starts draining it. */
  start(): Promise<void>;
  /** Flushes what is pending (bounded by the writer's timeout) and releases timers, files and sockets. */
  stop(): Promise<void>;
  /**
   * Appends readings to the spool, all or none, and resolves true once they are durable: only
   * then may the caller acknowledge them. Resolves false when the writer cannot take them (the
   * spool is full because the backend has been failing for long, the disk fails, or the writer
   * is stopping); nothing was stored and the caller must not acknowledge the message. Readings
   * that cannot be encoded (a value or timestamp that is not finite) are dropped, logged and
   * counted in `watchpost_storage_failed_total`. Appends resolve in the order they were made.
   */
  writeReadings(readings: readonly Reading[]): Promise<boolean>;
  /**
   * Spools one alert event, even past the spool's limit (alert events are few, and the alert
   * store keeps every alert regardless: this is the copy for dashboards). Only a failing disk
   * or a stopped writer drops it, logged at error and counted in `watchpost_storage_failed_total`.
   */
  writeAlertEvent(event: AlertEventPoint): void;
  status(): StorageStatus;
}
