/**
 * Generates the Grafana dashboards from a Watchpost configuration, so that what the duty room sees
 * follows the configuration: one dashboard per asset type with a panel per metric its sensors
 * report and the thresholds of the rules that watch it, the district overview with every asset on
 * the map (coordinates from `assets[].location`), the alert history and the disposal loop (处置效能).
 *
 *   node dist/server/generate-dashboards.js [--config DIR] [--out DIR]   (default: config-demo, dashboards/json)
 *
 * Every query is InfluxQL against the contract's layout (measurement = metric, field `value`, tags
 * asset_id, sensor_id, asset_type, street; alert events in `alert_events`), so the same dashboards
 * serve InfluxDB 1.x and 2.x/3.x through a DBRP mapping. The map's coordinates and the asset →
 * street lookup are not in InfluxDB: they are embedded as a CSV table served by Grafana's built-in
 * TestData datasource (see README.md).
 */
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { alertHistoryDashboard } from './alert-history.js';
import { assetTypeDashboard } from './asset-type.js';
import type { DashboardConfig } from './config.js';
import { disposalDashboard } from './disposal.js';
import { overviewDashboard } from './overview.js';
import type { Json } from './panels.js';

// The dashboards' interface in one place, for the command and the tests.
export { alertHistoryDashboard } from './alert-history.js';
export { assetTypeDashboard } from './asset-type.js';
export type { DashboardConfig } from './config.js';
export { disposalDashboard } from './disposal.js';
export { SCHEMA_VERSION } from './dashboard-shell.js';
export { thresholdSteps } from './drawn-rules.js';
export { assetsCsv, overviewDashboard } from './overview.js';
export { INFLUX_DS, STATIC_DS } from './panels.js';
export { OPEN_ALERT_LOOKBACK, metricQuery, rankedEventsQuery, windowedQuery } from './queries.js';

export interface GeneratedDashboard {
  file: string;
  dashboard: Json;
}

/** Every dashboard for a configuration, with its file name. */
export function generateDashboards(config: DashboardConfig): GeneratedDashboard[] {
  const types = [...new Set(config.assets.map((a) => a.type))];
  return [
    { file: 'district-overview.json', dashboard: overviewDashboard(config) },
    { file: 'alert-history.json', dashboard: alertHistoryDashboard() },
    { file: 'disposal.json', dashboard: disposalDashboard() },
    ...types.map((type) => ({ file: `asset-type-${type}.json`, dashboard: assetTypeDashboard(config, type) })),
  ];
}

export function serialize(dashboard: Json): string {
  return `${JSON.stringify(dashboard, null, 2)}\n`;
}

/**
 * Writes the dashboards into `out` (created if missing), each file only when its text changed;
 * returns each path with whether it was written.
 */
export function writeDashboards(dashboards: readonly GeneratedDashboard[], out: string): Array<{ path: string; written: boolean }> {
  mkdirSync(out, { recursive: true });
  return dashboards.map(({ file, dashboard }) => {
    const path = join(out, file);
    let before = '';
    try {
      before = readFileSync(path, 'utf8');
    } catch {
      // new file
    }
    const text = serialize(dashboard);
    if (text !== before) writeFileSync(path, text);
    return { path, written: text !== before };
  });
}
