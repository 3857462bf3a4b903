/**
 * What the dashboards read of the Watchpost configuration: the assets (types, sensors, metrics,
 * locations), the metric catalogue and the rules (thresholds drawn on the panels). The caller loads
 * and validates the configuration; a whole one fits as it is.
 */
import type { AssetConfig, MetricConfig } from '../ingest/config.js';
import type { RuleConfig } from '../rules/config.js';

export interface DashboardConfig {
  assets: readonly AssetConfig[];
  metrics: Readonly<Record<string, MetricConfig>>;
  rules: readonly RuleConfig[];
}
