/**
 * What the simulators read of the Watchpost configuration: its devices, their assets and sensors,
 * the metric catalogue, the rules (scenarios aim at their levels) and the broker. The caller (the
 * command line) loads and validates the configuration; a whole one fits as it is.
 */
import { isExternalBroker, type AssetConfig, type BrokerConfig, type DeviceConfig, type MetricConfig } from '../ingest/config.js';
import type { RuleConfig } from '../rules/config.js';

export interface SimulatorConfig {
  broker: BrokerConfig;
  assets: readonly AssetConfig[];
  metrics: Readonly<Record<string, MetricConfig>>;
  devices: readonly DeviceConfig[];
  rules: readonly RuleConfig[];
}

/** The URL to reach the configured broker from this machine. */
export function defaultBrokerUrl(config: SimulatorConfig): string {
  const broker = config.broker;
  if (isExternalBroker(broker)) return broker.url;
  const host = ['0.0.0.0', '::', ''].includes(broker.host) ? '127.0.0.1' : broker.host;
  return `mqtt://${host.includes(':') ? `[${host}]` : host}:${broker.port}`;
}
