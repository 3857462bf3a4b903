/**
 * The InfluxQL of the dashboards, against the contract's layout: measurement = metric, field
 * `value`, tags asset_id, sensor_id, asset_type, street; alert events in `alert_events`.
 */
import { LEVELS } from '../lib/levels.js';
import type { WindowedRule } from './drawn-rules.js';

/** How far back the map and the open-alert tables look for alert events. */
export const OPEN_ALERT_LOOKBACK = '30d';

export const FILTER = `"street" =~ /^$street$/ AND "asset_id" =~ /^$asset$/ AND "sensor_id" =~ /^$sensor$/`;

export function metricQuery(metric: string, aggregate: string, type?: string): string {
  const typeFilter = type ? `"asset_type" = '${type}' AND ` : '';
  return `SELECT ${aggregate}("value") FROM "${metric}" WHERE ${typeFilter}${FILTER} AND $timeFilter GROUP BY time($__interval), "asset_id", "sensor_id" fill(none)`;
}

export const seconds = (ms: number) => `${Math.max(1, Math.round(ms / 1000))}s`;

/**
 * InfluxQL for a windowed rule's signal. InfluxQL has no sliding window over raw readings, so the
 * panel approximates it: a moving sum of 12 buckets of W/12, or a rate (and its tangent angle)
 * between consecutive bucket means, buckets of W/6.
 */
export function windowedQuery(rule: WindowedRule): string {
  const where = `WHERE ${rule.assetFilter} AND ${FILTER} AND $timeFilter`;
  const s = rule.signal;
  if (s.kind === 'sum') return `SELECT moving_average(sum("value"), 12) * 12 FROM "${rule.metric}" ${where} GROUP BY time(${seconds(s.windowMs / 12)}), "asset_id", "sensor_id" fill(0)`;
  if (s.kind === 'rate')
    return `SELECT derivative(mean("value"), ${seconds(s.perMs!)}) FROM "${rule.metric}" ${where} GROUP BY time(${seconds(s.windowMs / 6)}), "asset_id", "sensor_id" fill(none)`;
  return `SELECT atan(derivative(mean("value"), 1d) / ${s.velocity}) * 57.29578 FROM "${rule.metric}" ${where} GROUP BY time(${seconds(s.windowMs / 6)}), "asset_id", "sensor_id" fill(none)`;
}

/** Escapes an id for an InfluxQL regex literal (ids are [A-Za-z0-9_.-]). */
export function regexEscape(id: string): string {
  return id.replace(/[.\\/^$|?*+()[\]{}-]/g, (c) => `\\${c}`);
}

/**
 * The events of an alert's signal (not the steps of its case, which go on after it resolves): the
 * last of them says whether the alert is open.
 */
export const SIGNAL_EVENTS = ['firing', 'level_raised', 'level_dropped', 'escalated', 'repeated', 'acknowledged', 'resolved'] as const;

/**
 * Signal events with a numeric level rank, one statement per level: the rank (1 blue … 4 red) cannot
 * be derived from the `level` tag in InfluxQL, so each statement filters one level and adds its rank.
 */
export function rankedEventsQuery(): string {
  return LEVELS.map(
    (level, i) =>
      `SELECT "value" * 0 + ${i + 1} AS "rank", "alert_id", "event", "asset_id", "rule_id" FROM "alert_events" WHERE "level" = '${level}' AND "event" =~ /^(${SIGNAL_EVENTS.join('|')})$/ AND time > now() - ${OPEN_ALERT_LOOKBACK}`,
  ).join(';\n');
}
