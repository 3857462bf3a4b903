/** What the ingest stage needs from MQTT, embedded broker or external broker alike. */
import type { IngestOutcome, TelemetrySource } from './ingest-service.js';
import type { Rejection } from './rejections.js';
import type { SparkplugTopic } from './sparkplug/topics.js';

export interface InboundHandlers {
  /** Resolves once the message's readings are durable (or refused); only then is it acknowledged. */
  telemetry(source: TelemetrySource, topic: string, assetId: string, sensorId: string, payload: Buffer): Promise<IngestOutcome>;
  status(deviceId: string, value: 'online' | 'offline'): void;
  rejected(source: TelemetrySource, topic: string, rejection: Rejection): void;
  /** A configured Sparkplug edge node's message; resolves true once its readings are durable (then acknowledged), false when storage refused them. */
  sparkplug?: (source: TelemetrySource, topic: SparkplugTopic, rawTopic: string, payload: Buffer) => Promise<boolean>;
  /** A device's last connection closed (embedded broker only). */
  disconnected?(deviceId: string): void;
}

export interface PublishOptions {
  qos?: 0 | 1;
  retain?: boolean;
}

export interface MessageBus {
  start(): Promise<void>;
  stop(): Promise<void>;
  publish(topic: string, payload: string | Buffer, options?: PublishOptions): void;
  /** Bound port of the embedded broker; undefined for an external broker. */
  port(): number | undefined;
  connected(): boolean;
}
