/**
 * Turns one telemetry message into accepted readings or rejections (contract: MQTT). Checks the
 * topic's asset and sensor against the catalogue, the device's permission, each value against the
 * metric catalogue. A message's rejections are reported together: one line on
 * errors/{device_id} (a batch's lists its rejected readings), one warn log line with counts by
 * reason, and each rejected reading counted in metrics by reason.
 */
import type { Logger } from '../lib/logger.js';
import type { Clock } from '../lib/clock.js';
import type { MetricsRegistry, Counter } from '../lib/metrics.js';
import type { Catalogue } from './catalogue.js';
import { decodePayload } from './payload.js';
import type { Reading } from './reading.js';
import { countByReason, rejectionLine, type Rejection, type RejectionLine, type RejectionReason } from './rejections.js';

export interface TelemetrySource {
  /** The publishing device, when known (embedded broker). */
  deviceId?: string;
  /** Assets the device may publish for; undefined when the broker enforces this (external mode). */
  allowedAssets?: ReadonlySet<string>;
  /** Also receives the message's rejection line (HTTP push answers with it). */
  onRejected?: (line: RejectionLine) => void;
}

export interface IngestDeps {
  catalogue: Catalogue;
  clock: Clock;
  logger: Logger;
  metrics: MetricsRegistry;
  /**
   * Receives a message's accepted readings and resolves once they are durable (true), or false
   * when storage cannot take them now. Resolutions come in call order.
   */
  accept: (readings: Reading[]) => Promise<boolean>;
  /** Sends a message's rejection line to a device's errors/ topic. */
  feedback: (deviceId: string, line: RejectionLine) => void;
  /** Devices that may publish for an asset (to address errors/ when the publisher is unknown). */
  devicesForAsset?: (assetId: string) => readonly string[];
  maxPayloadBytes: number;
}

export interface IngestOutcome {
  accepted: number;
  rejected: number;
  /** false: storage refused the readings; the message must not be acknowledged. */
  stored: boolean;
}

/** A checked message: its readings to store (and how many were rejected), or the outcome when there is nothing to store. */
type Checked = { readings: Reading[]; rejected: number } | IngestOutcome;

const NOTHING_TO_STORE = (rejected: number): IngestOutcome => ({ accepted: 0, rejected, stored: true });

export class IngestService {
  private readonly readingsTotal: Counter;
  private readonly rejectedTotal: Counter;
  private readonly log: Logger;

  constructor(private readonly deps: IngestDeps) {
    this.readingsTotal = deps.metrics.counter('watchpost_ingest_readings_total', 'Readings accepted (one per metric value).');
    this.rejectedTotal = deps.metrics.counter('watchpost_ingest_rejected_total', 'Messages or readings rejected, by reason.');
    this.log = deps.logger.child({ module: 'ingest' });
  }

  /** Reports a message refused before decoding (bad topic, not allowed, too large). */
  reject(source: TelemetrySource, topic: string, rejection: Rejection, assetId?: string): void {
    this.report(source, topic, [rejection], assetId);
  }

  /**
   * Validates one telemetry message and stores its accepted readings. Resolves once they are
   * durable (`stored`), so the caller acknowledges the message only then; rejections are
   * reported at once. Never rejects.
   */
  handleTelemetry(source: TelemetrySource, topic: string, assetId: string, sensorId: string, payload: Buffer): Promise<IngestOutcome> {
    let checked: Checked;
    try {
      checked = this.check(source, topic, assetId, sensorId, payload);
    } catch (err) {
      return Promise.reject(err); // as an async function would: the caller's rejection path
    }
    if (!('readings' in checked)) return Promise.resolve(checked);
    return this.store(checked.readings, checked.rejected, source, topic, assetId);
  }

  /** Decodes and checks a message: its readings to store (with the count of rejected ones), or the outcome when there is nothing to store. */
  private check(source: TelemetrySource, topic: string, assetId: string, sensorId: string, payload: Buffer): Checked {
    const { catalogue } = this.deps;
    if (payload.length > this.deps.maxPayloadBytes) {
      this.report(source, topic, [{ reason: 'too_large', detail: `payload is ${payload.length} bytes; the limit is ${this.deps.maxPayloadBytes}` }], assetId);
      return NOTHING_TO_STORE(1);
    }
    const asset = catalogue.asset(assetId);
    if (!asset) {
      this.report(source, topic, [{ reason: 'unknown_asset', detail: `asset "${assetId}" is not configured` }], assetId);
      return NOTHING_TO_STORE(1);
    }
    if (source.allowedAssets && !source.allowedAssets.has(assetId)) {
      this.report(source, topic, [{ reason: 'not_allowed', detail: `device may not publish for asset "${assetId}"` }], assetId);
      return NOTHING_TO_STORE(1);
    }
    let sensorMetrics: ReadonlySet<string> | undefined;
    if (asset.sensors) {
      if (!asset.sensors.has(sensorId)) {
        this.report(source, topic, [{ reason: 'unknown_sensor', detail: `sensor "${sensorId}" is not configured on asset "${assetId}"` }], assetId);
        return NOTHING_TO_STORE(1);
      }
      sensorMetrics = asset.sensors.get(sensorId);
    }

    const decoded = decodePayload(payload, this.deps.clock.now());
    const rejections = decoded.rejections;
    const readings: Reading[] = [];
    for (const r of decoded.readings) {
      const problem = this.checkValues(r.values, sensorMetrics, sensorId);
      if (problem) {
        rejections.push({ ...problem, index: r.index });
        continue;
      }
      for (const [metric, value] of r.values) {
        readings.push({ assetId, sensorId, assetType: asset.type, street: asset.street, metric, value, ts: r.ts });
      }
    }

    if (rejections.length > 0) this.report(source, topic, rejections, assetId);
    if (readings.length === 0) return NOTHING_TO_STORE(rejections.length);
    return { readings, rejected: rejections.length };
  }

  /**
   * Stores accepted readings; resolves once they are durable. A small async function of its own:
   * it runs for every message, and its frame lives until the spool's group commit.
   */
  private async store(readings: Reading[], rejected: number, source: TelemetrySource, topic: string, assetId: string): Promise<IngestOutcome> {
    let stored: boolean;
    try {
      stored = await this.deps.accept(readings);
    } catch (err) {
      this.log.error({ err: (err as Error).message, topic }, 'storing readings failed; the message is not acknowledged');
      stored = false;
    }
    if (stored) this.readingsTotal.inc(undefined, readings.length);
    else this.report(source, topic, [{ reason: 'storage_full', detail: 'storage cannot take readings now; the message is not acknowledged, send it again later' }], assetId);
    return { accepted: stored ? readings.length : 0, rejected, stored };
  }

  private checkValues(values: Array<[string, number]>, sensorMetrics: ReadonlySet<string> | undefined, sensorId: string): Rejection | undefined {
    for (const [metric, value] of values) {
      if (sensorMetrics && !sensorMetrics.has(metric)) {
        return { reason: 'unknown_metric', detail: `metric "${metric}" is not configured on sensor "${sensorId}"` };
      }
      const spec = this.deps.catalogue.metric(metric);
      if (spec && ((spec.min !== undefined && value < spec.min) || (spec.max !== undefined && value > spec.max))) {
        return { reason: 'out_of_range', detail: `${metric} = ${value} is outside the plausible range [${spec.min ?? '-inf'}, ${spec.max ?? 'inf'}]` };
      }
    }
    return undefined;
  }

  private report(source: TelemetrySource, topic: string, rejections: Rejection[], assetId?: string): void {
    const recipients = source.deviceId ? [source.deviceId] : assetId && this.deps.devicesForAsset ? this.deps.devicesForAsset(assetId) : [];
    const counts = countByReason(rejections);
    for (const reason of Object.keys(counts) as RejectionReason[]) this.rejectedTotal.inc({ reason }, counts[reason]);
    const line = rejectionLine(topic, rejections);
    this.log.warn({ device_id: source.deviceId, topic, reason: line.reason, detail: line.detail, rejected: rejections.length, reasons: counts }, 'telemetry rejected');
    for (const deviceId of recipients) this.deps.feedback(deviceId, line);
    source.onRejected?.(line);
  }
}
