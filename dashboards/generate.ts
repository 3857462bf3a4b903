/**
 * Generates the Grafana dashboards from a Watchpost configuration, so that what the duty room sees
 * follows the configuration: one dashboard per asset type with a panel per metric its sensors
 * report and the thresholds of the rules that watch it, the district overview with every asset on
 * the map (coordinates from `assets[].location`), and the alert history.
 *
 *   node dist/dashboards/generate.js [--config DIR] [--out DIR]     (default: config-demo, dashboards/json)
 *
 * Every query is InfluxQL against the contract's layout (measurement = metric, field `value`, tags
 * asset_id, sensor_id, asset_type, street; alert events in `alert_events`), so the same dashboards
 * serve InfluxDB 1.x and 2.x/3.x through a DBRP mapping. The map's coordinates and the asset →
 * street lookup are not in InfluxDB: they are embedded as a CSV table served by Grafana's built-in
 * TestData datasource (see README.md).
 */
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { LEVELS, LEVEL_NAMES_ZH, type Level } from '../lib/levels.js';
import type { Condition } from '../rules/config.js';
import { loadConfig, formatErrors } from '../server/config/load.js';
import type { WatchpostConfig } from '../server/config/schema.js';

export const INFLUX_DS = { type: 'influxdb', uid: 'watchpost-influxdb' } as const;
export const STATIC_DS = { type: 'grafana-testdata-datasource', uid: 'watchpost-static' } as const;
export const SCHEMA_VERSION = 39;
/** How far back the map and the open-alert tables look for alert events. */
export const OPEN_ALERT_LOOKBACK = '30d';

const LEVEL_COLOURS: Record<Level, string> = { blue: 'blue', yellow: 'yellow', orange: 'orange', red: 'red' };

type Json = Record<string, unknown>;

export interface GeneratedDashboard {
  file: string;
  dashboard: Json;
}

/** Names of asset types on dashboard titles; other types use their own name. */
const TYPE_TITLES: Record<string, string> = {
  bridge: '桥梁 Bridges',
  slope: '边坡 Slopes',
  pipeline: '燃气管网 Gas pipelines',
  fire: '消防给水 Fire-water networks',
  building: '建筑消防 Building fire systems',
};

/** Panel titles of known metrics. */
const METRIC_TITLES: Record<string, string> = {
  strain: '主梁应变 Girder strain',
  deflection: '挠度 Deflection',
  acceleration: '振动加速度 Vibration acceleration',
  temperature: '结构温度 Structure temperature',
  cable_force: '索力 Cable / tendon force',
  displacement: '累计位移 Cumulative displacement (GNSS, inclinometer)',
  rainfall: '降雨量 Rainfall per report',
  pore_pressure: '孔隙水压力 Pore-water pressure',
  tilt: '倾角 Tilt',
  pressure: '管道压力 Gas pressure',
  flow: '流量 Gas flow',
  gas_lel: '可燃气体 Combustible gas (%LEL)',
  hydrant_pressure: '消火栓压力 Hydrant pressure',
  sprinkler_pressure: '喷淋系统压力 Sprinkler system pressure',
  tank_level: '消防水箱液位 Fire-water tank level',
  smoke: '感烟探测器 Smoke detectors',
  fire_alarm: '火警 Fire alarm',
  fault: '故障 Fault',
  supervisory: '监管 Supervisory',
  disabled: '屏蔽 Disabled',
};

/** Grafana units of catalogue units; others are shown as a suffix. */
const UNITS: Record<string, string> = { mm: 'lengthmm', m: 'lengthm', '°C': 'celsius', kPa: 'pressurekpa' };
const grafanaUnit = (unit: string) => UNITS[unit] ?? (unit ? `suffix: ${unit}` : 'none');

/** A threshold rule on the plain value, as the dashboards draw it. */
interface DrawnRule {
  id: string;
  name?: string;
  levels: Partial<Record<Level, Condition>>;
}

function drawnRules(config: WatchpostConfig): Array<DrawnRule & { match: { metric?: string[]; asset_type?: string[] } }> {
  const out: Array<DrawnRule & { match: { metric?: string[]; asset_type?: string[] } }> = [];
  for (const raw of config.rules as unknown[]) {
    const r = raw as { id: string; name?: string; kind?: string; enabled?: boolean; levels?: DrawnRule['levels']; match?: { metric?: string[]; asset_type?: string[] }; signal?: unknown };
    if (r.enabled === false || !r.levels || !r.match) continue;
    if (r.kind !== undefined && r.kind !== 'threshold') continue;
    const signal = r.signal as { kind?: string } | string | undefined;
    if (signal !== undefined && signal !== 'value' && typeof signal === 'object' && signal.kind !== 'value') continue;
    out.push({ id: r.id, name: r.name, levels: r.levels, match: r.match });
  }
  return out;
}

/** A threshold rule on a windowed signal, as the dashboards approximate it in InfluxQL. */
interface WindowedRule extends DrawnRule {
  metric: string;
  assetFilter: string;
  signal: { kind: 'sum' | 'rate' | 'tangent_angle'; windowMs: number; perMs?: number; velocity?: number };
}

/** Threshold rules on a sum, rate or tangent angle that watch assets of `type`. */
function windowedRules(config: WatchpostConfig, type: string): WindowedRule[] {
  const out: WindowedRule[] = [];
  const ofType = new Set(config.assets.filter((a) => a.type === type).map((a) => a.id));
  for (const raw of config.rules as unknown[]) {
    const r = raw as { id: string; name?: string; kind?: string; enabled?: boolean; levels?: DrawnRule['levels']; match?: { metric?: string[]; asset_type?: string[]; asset_id?: string[] }; signal?: WindowedRule['signal'] | { kind: string } };
    if (r.kind !== 'threshold' || r.enabled === false || !r.levels || !r.match?.metric || r.match.metric.length !== 1) continue;
    const signal = r.signal;
    if (!signal || !['sum', 'rate', 'tangent_angle'].includes(signal.kind)) continue;
    const m = r.match;
    const metric = r.match.metric[0]!;
    if (m.asset_type && !m.asset_type.includes(type)) continue;
    const ids = m.asset_id?.filter((id) => ofType.has(id));
    if (m.asset_id && ids!.length === 0) continue;
    if (!m.asset_type && !m.asset_id) continue;
    const assetFilter = ids ? `"asset_id" =~ /^(${ids.map(regexEscape).join('|')})$/` : `"asset_type" = '${type}'`;
    out.push({ id: r.id, name: r.name, levels: r.levels, metric, assetFilter, signal: signal as WindowedRule['signal'] });
  }
  return out;
}

const seconds = (ms: number) => `${Math.max(1, Math.round(ms / 1000))}s`;

/**
 * InfluxQL for a windowed rule's signal. InfluxQL has no sliding window over raw readings, so the
 * panel approximates it: a moving sum of 12 buckets of W/12, or a rate (and its tangent angle)
 * between consecutive bucket means, buckets of W/6.
 */
export function windowedQuery(rule: WindowedRule): string {
  const where = `WHERE ${rule.assetFilter} AND ${FILTER} AND $timeFilter`;
  const s = rule.signal;
  if (s.kind === 'sum') return `SELECT moving_average(sum("value"), 12) * 12 FROM "${rule.metric}" ${where} GROUP BY time(${seconds(s.windowMs / 12)}), "asset_id", "sensor_id" fill(0)`;
  if (s.kind === 'rate') return `SELECT derivative(mean("value"), ${seconds(s.perMs!)}) FROM "${rule.metric}" ${where} GROUP BY time(${seconds(s.windowMs / 6)}), "asset_id", "sensor_id" fill(none)`;
  return `SELECT atan(derivative(mean("value"), 1d) / ${s.velocity}) * 57.29578 FROM "${rule.metric}" ${where} GROUP BY time(${seconds(s.windowMs / 6)}), "asset_id", "sensor_id" fill(none)`;
}

function windowedTitle(rule: WindowedRule): string {
  const w = seconds(rule.signal.windowMs);
  if (rule.signal.kind === 'sum') return `${rule.name ?? rule.id}: ${rule.metric} sum over ${w}`;
  if (rule.signal.kind === 'rate') return `${rule.name ?? rule.id}: ${rule.metric} rate per ${seconds(rule.signal.perMs!)} over ${w}`;
  return `${rule.name ?? rule.id}: tangent angle (${w}, v = ${rule.signal.velocity}/d)`;
}

/** The value rule that watches `metric` on assets of `type`, if any (the first in the configuration). */
function ruleFor(config: WatchpostConfig, type: string, metric: string): DrawnRule | undefined {
  return drawnRules(config).find((r) => (r.match.metric === undefined || r.match.metric.includes(metric)) && (r.match.asset_type === undefined || r.match.asset_type.includes(type)));
}

/** Grafana threshold steps (ascending) for a rule's levels. */
export function thresholdSteps(rule: DrawnRule | undefined): Array<{ color: string; value: number | null }> {
  if (!rule) return [{ color: 'green', value: null }];
  const present = LEVELS.filter((l) => rule.levels[l] !== undefined);
  const first = rule.levels[present[0]!]!;
  if ('above' in first) {
    return [{ color: 'green', value: null }, ...present.map((l) => ({ color: LEVEL_COLOURS[l], value: (rule.levels[l] as { above: number }).above }))];
  }
  if ('below' in first) {
    const down = [...present].reverse(); // most severe first = lowest threshold first
    const steps: Array<{ color: string; value: number | null }> = [{ color: LEVEL_COLOURS[down[0]!], value: null }];
    for (let i = 1; i < down.length; i++) steps.push({ color: LEVEL_COLOURS[down[i]!], value: (rule.levels[down[i - 1]!] as { below: number }).below });
    steps.push({ color: 'green', value: (rule.levels[down.at(-1)!] as { below: number }).below });
    return steps;
  }
  const down = [...present].reverse();
  const steps: Array<{ color: string; value: number | null }> = [{ color: LEVEL_COLOURS[down[0]!], value: null }];
  for (let i = 1; i < down.length; i++) steps.push({ color: LEVEL_COLOURS[down[i]!], value: (rule.levels[down[i - 1]!] as { outside: [number, number] }).outside[0] });
  steps.push({ color: 'green', value: (rule.levels[down.at(-1)!] as { outside: [number, number] }).outside[0] });
  for (let i = down.length - 1; i >= 0; i--) steps.push({ color: LEVEL_COLOURS[down[i]!], value: (rule.levels[down[i]!] as { outside: [number, number] }).outside[1] });
  return steps;
}

function describeRule(rule: DrawnRule | undefined, unit: string): string {
  if (!rule) return 'No threshold rule watches this metric.';
  const parts = LEVELS.filter((l) => rule.levels[l]).map((l) => {
    const c = rule.levels[l]!;
    const text = 'above' in c ? `> ${c.above}` : 'below' in c ? `< ${c.below}` : `outside [${c.outside[0]}, ${c.outside[1]}]`;
    return `${LEVEL_NAMES_ZH[l]} ${l} ${text}${unit ? ` ${unit}` : ''}`;
  });
  return `Rule ${rule.id}${rule.name ? ` (${rule.name})` : ''}: ${parts.join(', ')}.`;
}

/** The aggregate a panel draws: peaks for `above` rules, troughs for `below`, the mean otherwise. */
function aggregateFor(rule: DrawnRule | undefined): 'max' | 'min' | 'mean' {
  const c = rule ? Object.values(rule.levels)[0] : undefined;
  if (c && 'above' in c) return 'max';
  if (c && 'below' in c) return 'min';
  return 'mean';
}

const FILTER = `"street" =~ /^$street$/ AND "asset_id" =~ /^$asset$/ AND "sensor_id" =~ /^$sensor$/`;

export function metricQuery(metric: string, aggregate: string, type?: string): string {
  const typeFilter = type ? `"asset_type" = '${type}' AND ` : '';
  return `SELECT ${aggregate}("value") FROM "${metric}" WHERE ${typeFilter}${FILTER} AND $timeFilter GROUP BY time($__interval), "asset_id", "sensor_id" fill(none)`;
}

function influxTarget(refId: string, query: string, extra: Json = {}): Json {
  return { refId, datasource: INFLUX_DS, rawQuery: true, resultFormat: 'time_series', query, ...extra };
}

function isBoolean(config: WatchpostConfig, metric: string): boolean {
  const m = config.metrics[metric];
  return ['smoke', 'fire_alarm', 'fault', 'supervisory', 'disabled'].includes(metric) || (m !== undefined && m.min === 0 && m.max === 1 && (m.unit ?? '') === '');
}

/** Template variables; `type` restricts them to the assets of one type. */
function variables(type?: string, extra: Json[] = []): Json {
  const typeFilter = type ? `"asset_type" = '${type}' AND ` : '';
  const variable = (name: string, label: string, query: string, refresh: number): Json => ({
    name,
    label,
    type: 'query',
    datasource: INFLUX_DS,
    query,
    definition: query,
    refresh,
    multi: true,
    includeAll: true,
    allValue: '.*',
    sort: 1,
    current: { selected: true, text: ['All'], value: ['$__all'] },
    options: [],
    hide: 0,
    regex: '',
    skipUrlSync: false,
  });
  return {
    list: [
      variable('street', '街道 Street', type ? `SHOW TAG VALUES WITH KEY = "street" WHERE "asset_type" = '${type}'` : 'SHOW TAG VALUES WITH KEY = "street"', 1),
      variable('asset', '设施 Asset', `SHOW TAG VALUES WITH KEY = "asset_id" WHERE ${typeFilter}"street" =~ /^$street$/`, 2),
      variable('sensor', '传感器 Sensor', `SHOW TAG VALUES WITH KEY = "sensor_id" WHERE ${typeFilter}"asset_id" =~ /^$asset$/`, 2),
      ...extra,
    ],
  };
}

const ALERT_ANNOTATION_QUERY = `SELECT "message", "value", "level", "event", "rule_id", "asset_id" FROM "alert_events" WHERE "asset_id" =~ /^$asset$/ AND $timeFilter`;

function annotations(): Json {
  return {
    list: [
      { builtIn: 1, datasource: { type: 'grafana', uid: '-- Grafana --' }, enable: true, hide: true, iconColor: 'rgba(0, 211, 255, 1)', name: 'Annotations & Alerts', type: 'dashboard' },
      {
        name: 'Watchpost 预警事件 alert events',
        datasource: INFLUX_DS,
        enable: true,
        hide: false,
        iconColor: 'red',
        query: ALERT_ANNOTATION_QUERY,
        titleColumn: 'rule_id',
        textColumn: 'message',
        tagsColumn: 'level,event,asset_id',
        target: {
          refId: 'Anno',
          query: ALERT_ANNOTATION_QUERY,
          rawQuery: true,
          resultFormat: 'table',
          fromAnnotations: true,
          titleColumn: 'rule_id',
          textColumn: 'message',
          tagsColumn: 'level,event,asset_id',
        },
      },
    ],
  };
}

function dashboardShell(uid: string, title: string, description: string, tags: string[], panels: Json[], templating: Json, time = 'now-6h'): Json {
  return {
    uid,
    title,
    description,
    tags: ['watchpost', ...tags],
    schemaVersion: SCHEMA_VERSION,
    version: 1,
    editable: true,
    graphTooltip: 1,
    timezone: 'Asia/Shanghai',
    refresh: '10s',
    time: { from: time, to: 'now' },
    timepicker: { refresh_intervals: ['5s', '10s', '30s', '1m', '5m', '15m'] },
    fiscalYearStartMonth: 0,
    liveNow: false,
    weekStart: '',
    links: [{ title: 'Watchpost', type: 'dashboards', tags: ['watchpost'], asDropdown: true, includeVars: true, keepTime: true }],
    annotations: annotations(),
    templating,
    panels,
  };
}

/** Lays panels out left to right, `w` columns each, in rows of 24. */
class Grid {
  private x = 0;
  private y = 0;
  private rowH = 0;
  private nextId = 1;

  place(panel: Json, w: number, h: number): Json {
    if (this.x + w > 24) this.newline();
    const placed = { id: this.nextId++, ...panel, gridPos: { x: this.x, y: this.y, w, h } };
    this.x += w;
    this.rowH = Math.max(this.rowH, h);
    return placed;
  }

  row(title: string): Json {
    this.newline();
    const row = { id: this.nextId++, type: 'row', title, collapsed: false, panels: [], gridPos: { x: 0, y: this.y, w: 24, h: 1 } };
    this.y += 1;
    return row;
  }

  private newline(): void {
    if (this.x === 0 && this.rowH === 0) return;
    this.y += this.rowH;
    this.x = 0;
    this.rowH = 0;
  }
}

function timeseriesPanel(title: string, description: string, unit: string, steps: Json[], targets: Json[], extra: { drawStyle?: string; decimals?: number } = {}): Json {
  const drawn = steps.length > 1;
  return {
    type: 'timeseries',
    title,
    description,
    datasource: INFLUX_DS,
    fieldConfig: {
      defaults: {
        unit,
        ...(extra.decimals !== undefined ? { decimals: extra.decimals } : {}),
        color: { mode: 'palette-classic' },
        custom: {
          drawStyle: extra.drawStyle ?? 'line',
          lineWidth: 1,
          fillOpacity: extra.drawStyle === 'bars' ? 60 : 0,
          showPoints: 'never',
          spanNulls: false,
          thresholdsStyle: { mode: drawn ? 'line+area' : 'off' },
        },
        thresholds: { mode: 'absolute', steps },
      },
      overrides: [],
    },
    options: {
      legend: { displayMode: 'table', placement: 'right', calcs: ['lastNotNull', 'max', 'min'], showLegend: true },
      tooltip: { mode: 'multi', sort: 'desc' },
    },
    targets,
  };
}

function stateTimelinePanel(title: string, description: string, targets: Json[]): Json {
  return {
    type: 'state-timeline',
    title,
    description,
    datasource: INFLUX_DS,
    fieldConfig: {
      defaults: {
        color: { mode: 'thresholds' },
        thresholds: { mode: 'absolute', steps: [{ color: 'green', value: null }, { color: 'red', value: 0.5 }] },
        mappings: [{ type: 'value', options: { '0': { text: '正常 normal', color: 'green', index: 0 }, '1': { text: '报警 active', color: 'red', index: 1 } } }],
        custom: { lineWidth: 0, fillOpacity: 80 },
      },
      overrides: [],
    },
    options: { mergeValues: true, showValue: 'never', alignValue: 'left', rowHeight: 0.8, legend: { showLegend: true, displayMode: 'list', placement: 'bottom' } },
    targets,
  };
}

function alertEventsTable(title: string, assetRegex: string | undefined, height = 'auto'): Json {
  const where = assetRegex ? `"asset_id" =~ /^(${assetRegex})$/ AND "asset_id" =~ /^$asset$/` : `"asset_id" =~ /^$asset$/ AND "level" =~ /^$level$/ AND "event" =~ /^$event$/`;
  void height;
  return {
    type: 'table',
    title,
    description: 'Every alert event Watchpost wrote to alert_events (firing, level_raised, level_dropped, escalated, repeated, acknowledged, resolved, delivery_failed), newest first.',
    datasource: INFLUX_DS,
    fieldConfig: {
      defaults: { custom: { align: 'auto', cellOptions: { type: 'auto' }, filterable: true } },
      overrides: [
        {
          matcher: { id: 'byName', options: 'level' },
          properties: [
            { id: 'custom.cellOptions', value: { type: 'color-background', mode: 'basic' } },
            { id: 'mappings', value: [{ type: 'value', options: Object.fromEntries(LEVELS.map((l, i) => [l, { text: `${LEVEL_NAMES_ZH[l]} ${l}`, color: LEVEL_COLOURS[l], index: i }])) }] },
          ],
        },
      ],
    },
    options: { showHeader: true, cellHeight: 'sm', footer: { show: false, reducer: ['sum'], countRows: false }, sortBy: [{ displayName: 'Time', desc: true }] },
    targets: [
      influxTarget('A', `SELECT "level", "event", "rule_id", "asset_id", "message", "value", "alert_id" FROM "alert_events" WHERE ${where} AND $timeFilter ORDER BY time DESC LIMIT 1000`, {
        resultFormat: 'table',
      }),
    ],
  };
}

/** The metrics the sensors of assets of `type` report (configuration order). */
function metricsOf(config: WatchpostConfig, type: string): string[] {
  const out: string[] = [];
  for (const asset of config.assets.filter((a) => a.type === type)) {
    for (const sensor of asset.sensors ?? []) for (const m of sensor.metrics ?? []) if (!out.includes(m)) out.push(m);
  }
  return out;
}

/** One dashboard per asset type: a panel per metric, thresholds from the rule that watches it. */
export function assetTypeDashboard(config: WatchpostConfig, type: string): Json {
  const grid = new Grid();
  const panels: Json[] = [];
  const metrics = metricsOf(config, type);
  const booleans = metrics.filter((m) => isBoolean(config, m));
  for (const metric of metrics.filter((m) => !booleans.includes(m))) {
    const rule = ruleFor(config, type, metric);
    const unit = config.metrics[metric]?.unit ?? '';
    const title = METRIC_TITLES[metric] ?? metric;
    const description = `${metric}${unit ? ` (${unit})` : ''}, ${aggregateFor(rule)} per interval per sensor. ${describeRule(rule, unit)}`;
    panels.push(grid.place(timeseriesPanel(title, description, grafanaUnit(unit), thresholdSteps(rule), [influxTarget('A', metricQuery(metric, aggregateFor(rule), type), { alias: '$tag_asset_id / $tag_sensor_id' })]), 12, 8));
    if (metric === 'displacement') {
      panels.push(
        grid.place(
          timeseriesPanel(
            '位移速率 Displacement rate (mm/d)',
            'Change of the 10-minute mean displacement, per day: the velocity the tangent-angle method compares with the slope’s constant-deformation rate (45° = that rate, 80° ≈ 5.7×, 85° ≈ 11.4×).',
            'none',
            [{ color: 'green', value: null }],
            [
              influxTarget(
                'A',
                `SELECT derivative(mean("value"), 1d) FROM "displacement" WHERE "asset_type" = '${type}' AND ${FILTER} AND $timeFilter GROUP BY time(10m), "asset_id", "sensor_id" fill(none)`,
                { alias: '$tag_asset_id / $tag_sensor_id' },
              ),
            ],
            { decimals: 2 },
          ),
          12,
          8,
        ),
      );
    }
    if (metric === 'rainfall') {
      panels.push(
        grid.place(
          timeseriesPanel(
            '小时雨量 Hourly rainfall (mm)',
            'Rain per clock hour per gauge. Shenzhen rainstorm signals: yellow ≥ 50 mm in 6 h, orange ≥ 50 mm in 3 h, red ≥ 100 mm in 3 h.',
            'lengthmm',
            [{ color: 'green', value: null }],
            [influxTarget('A', `SELECT sum("value") FROM "rainfall" WHERE "asset_type" = '${type}' AND ${FILTER} AND $timeFilter GROUP BY time(1h), "asset_id", "sensor_id" fill(0)`, { alias: '$tag_asset_id / $tag_sensor_id' })],
            { drawStyle: 'bars', decimals: 1 },
          ),
          12,
          8,
        ),
      );
      panels.push(
        grid.place(
          timeseriesPanel(
            '累计雨量 Cumulative rainfall (mm)',
            'Rain since the start of the time range, per gauge.',
            'lengthmm',
            [{ color: 'green', value: null }],
            [influxTarget('A', `SELECT cumulative_sum(sum("value")) FROM "rainfall" WHERE "asset_type" = '${type}' AND ${FILTER} AND $timeFilter GROUP BY time($__interval), "asset_id", "sensor_id" fill(0)`, { alias: '$tag_asset_id / $tag_sensor_id' })],
            { decimals: 1 },
          ),
          12,
          8,
        ),
      );
    }
  }
  for (const rule of windowedRules(config, type)) {
    const unit = rule.signal.kind === 'tangent_angle' ? '°' : (config.metrics[rule.metric]?.unit ?? '');
    const description = `${describeRule(rule, unit)} InfluxQL has no sliding window over raw readings, so this panel approximates the rule's signal (${rule.signal.kind === 'sum' ? 'a moving sum of twelve buckets of a twelfth of the window' : 'the rate between consecutive bucket means, buckets of a sixth of the window'}); the rule itself evaluates every reading.`;
    panels.push(grid.place(timeseriesPanel(windowedTitle(rule), description, rule.signal.kind === 'tangent_angle' ? 'degree' : grafanaUnit(unit), thresholdSteps(rule), [influxTarget('A', windowedQuery(rule), { alias: '$tag_asset_id / $tag_sensor_id' })], { decimals: 1 }), 12, 8));
  }
  if (booleans.length > 0) {
    const title = booleans.every((m) => ['fire_alarm', 'fault', 'supervisory', 'disabled', 'smoke'].includes(m)) ? '火灾报警控制器 Fire alarm panel states (GB 26875)' : '状态 States';
    const targets = booleans.map((m, i) => influxTarget(String.fromCharCode(65 + i), metricQuery(m, 'max', type), { alias: `${m}: $tag_asset_id / $tag_sensor_id` }));
    const described = booleans.map((m) => `${m}: ${describeRule(ruleFor(config, type, m), '')}`).join(' ');
    panels.push(grid.place(stateTimelinePanel(title, `Boolean states (1 = active). ${described}`, targets), 24, Math.max(6, 2 + 2 * booleans.length)));
  }
  const assetIds = config.assets.filter((a) => a.type === type).map((a) => a.id);
  panels.push(grid.place(alertEventsTable('预警事件 Alert events', assetIds.map(regexEscape).join('|')), 24, 8));
  const title = TYPE_TITLES[type] ?? type;
  return dashboardShell(`watchpost-${type}`, `Watchpost ${title}`, `Watchpost telemetry of every ${type} asset, thresholds from the rules in force.`, [type], panels, variables(type));
}

/** Escapes an id for an InfluxQL regex literal (ids are [A-Za-z0-9_.-]). */
function regexEscape(id: string): string {
  return id.replace(/[.\\/^$|?*+()[\]{}-]/g, (c) => `\\${c}`);
}

/** The asset table the map and the street lookup use: one CSV row per configured asset. */
export function assetsCsv(config: WatchpostConfig): string {
  const quote = (s: string) => (/[",\n]/.test(s) ? `"${s.replace(/"/g, '""')}"` : s);
  const rows = config.assets
    .filter((a) => a.location)
    .map((a) => [a.id, a.name ?? a.id, a.type, a.street, String(a.location![1]), String(a.location![0])].map(quote).join(','));
  return ['asset_id,name,type,street,latitude,longitude', ...rows].join('\n');
}

/**
 * Alert events with a numeric level rank, one statement per level: the rank (1 blue … 4 red) cannot
 * be derived from the `level` tag in InfluxQL, so each statement filters one level and adds its rank.
 */
export function rankedEventsQuery(): string {
  return LEVELS.map(
    (level, i) => `SELECT "value" * 0 + ${i + 1} AS "rank", "alert_id", "event", "asset_id", "rule_id" FROM "alert_events" WHERE "level" = '${level}' AND time > now() - ${OPEN_ALERT_LOOKBACK}`,
  ).join(';\n');
}

/**
 * Grafana transformations that turn the ranked events (refId EVENTS) into open alerts: all
 * statements in one table, oldest first, the last event of each alert, resolved ones dropped.
 */
function openAlertTransformations(): Json[] {
  const onEvents = { id: 'byRefId', options: 'EVENTS' };
  return [
    { id: 'merge', options: {}, filter: onEvents },
    { id: 'sortBy', options: { sort: [{ field: 'Time', desc: false }] }, filter: onEvents },
    {
      id: 'groupBy',
      filter: onEvents,
      options: {
        fields: {
          alert_id: { aggregations: [], operation: 'groupby' },
          Time: { aggregations: ['last'], operation: 'aggregate' },
          rank: { aggregations: ['last'], operation: 'aggregate' },
          event: { aggregations: ['last'], operation: 'aggregate' },
          asset_id: { aggregations: ['last'], operation: 'aggregate' },
          rule_id: { aggregations: ['last'], operation: 'aggregate' },
        },
      },
    },
    {
      id: 'filterByValue',
      filter: onEvents,
      options: { type: 'exclude', match: 'any', filters: [{ fieldName: 'event (last)', config: { id: 'regex', options: { value: '^resolved$' } } }] },
    },
    {
      id: 'organize',
      filter: onEvents,
      options: { renameByName: { 'asset_id (last)': 'asset_id', 'rank (last)': 'level_rank', 'event (last)': 'last_event', 'rule_id (last)': 'rule_id', 'Time (last)': 'since' } },
    },
  ];
}

const RANK_MAPPINGS = [
  {
    type: 'value',
    options: Object.fromEntries([
      ['0', { text: '正常 no alert', color: 'green', index: 0 }],
      ...LEVELS.map((l, i) => [String(i + 1), { text: `${LEVEL_NAMES_ZH[l]} ${l}`, color: LEVEL_COLOURS[l], index: i + 1 }]),
    ]),
  },
  { type: 'special', options: { match: 'null', result: { text: '正常 no alert', color: 'green', index: 5 } } },
];
const RANK_THRESHOLDS = { mode: 'absolute', steps: [{ color: 'green', value: null }, ...LEVELS.map((l, i) => ({ color: LEVEL_COLOURS[l], value: i + 1 }))] };

function staticAssetsTarget(config: WatchpostConfig): Json {
  return { refId: 'ASSETS', datasource: STATIC_DS, scenarioId: 'csv_content', csvContent: assetsCsv(config) };
}

/** The district overview: the map, open alerts by street and level, ingest health. */
export function overviewDashboard(config: WatchpostConfig): Json {
  const grid = new Grid();
  const panels: Json[] = [];
  const [lonC, latC] = centre(config);
  const metrics = Object.keys(config.metrics);
  const measurements = `/^(${metrics.map(regexEscape).join('|')})$/`;

  panels.push(
    grid.place(
      {
        type: 'geomap',
        title: '设施预警地图 Assets by current alert level',
        description: `Every configured asset at its location, coloured by the highest level of its open alerts (from alert_events of the last ${OPEN_ALERT_LOOKBACK}; green = none open). Coordinates come from the configuration (TestData CSV, generated).`,
        datasource: { type: 'datasource', uid: '-- Mixed --' },
        targets: [influxTarget('EVENTS', rankedEventsQuery(), { resultFormat: 'table' }), staticAssetsTarget(config)],
        transformations: [
          ...openAlertTransformations(),
          {
            id: 'groupBy',
            filter: { id: 'byRefId', options: 'EVENTS' },
            options: { fields: { asset_id: { aggregations: [], operation: 'groupby' }, level_rank: { aggregations: ['max'], operation: 'aggregate' }, alert_id: { aggregations: ['count'], operation: 'aggregate' } } },
          },
          { id: 'organize', filter: { id: 'byRefId', options: 'EVENTS' }, options: { renameByName: { 'level_rank (max)': 'level_rank', 'alert_id (count)': 'open_alerts' } } },
          { id: 'joinByField', options: { byField: 'asset_id', mode: 'outer' } },
        ],
        fieldConfig: {
          defaults: { color: { mode: 'thresholds' }, thresholds: RANK_THRESHOLDS, mappings: RANK_MAPPINGS },
          overrides: [],
        },
        options: {
          view: { id: 'coords', lat: latC, lon: lonC, zoom: 11.5, allLayers: true },
          controls: { showZoom: true, mouseWheelZoom: true, showAttribution: true, showScale: true },
          tooltip: { mode: 'details' },
          basemap: { type: 'default', name: 'Basemap', config: {} },
          layers: [
            {
              type: 'markers',
              name: '设施 Assets',
              tooltip: true,
              location: { mode: 'coords', latitude: 'latitude', longitude: 'longitude' },
              config: {
                showLegend: true,
                style: {
                  size: { fixed: 12, min: 8, max: 20 },
                  color: { field: 'level_rank', fixed: 'green' },
                  opacity: 0.9,
                  symbol: { mode: 'fixed', fixed: 'img/icons/marker/circle.svg' },
                  text: { mode: 'field', field: 'name', fixed: '' },
                  textConfig: { fontSize: 11, offsetX: 0, offsetY: -16, textAlign: 'center', textBaseline: 'middle' },
                },
              },
            },
          ],
        },
      },
      14,
      14,
    ),
  );
  panels.push(
    grid.place(
      {
        type: 'table',
        title: '当前预警 Open alerts',
        description: 'Alerts whose last event is not `resolved`, with their current level, street and the time of their last event.',
        datasource: { type: 'datasource', uid: '-- Mixed --' },
        targets: [influxTarget('EVENTS', rankedEventsQuery(), { resultFormat: 'table' }), staticAssetsTarget(config)],
        transformations: [
          ...openAlertTransformations(),
          { id: 'joinByField', options: { byField: 'asset_id', mode: 'inner' } },
          { id: 'sortBy', options: { sort: [{ field: 'level_rank', desc: true }] } },
          { id: 'organize', options: { excludeByName: { latitude: true, longitude: true, type: true }, indexByName: { level_rank: 0, name: 1, street: 2, rule_id: 3, last_event: 4, since: 5, asset_id: 6, alert_id: 7 } } },
        ],
        fieldConfig: {
          defaults: { custom: { align: 'auto', cellOptions: { type: 'auto' }, filterable: true } },
          overrides: [
            {
              matcher: { id: 'byName', options: 'level_rank' },
              properties: [
                { id: 'displayName', value: '级别 Level' },
                { id: 'mappings', value: RANK_MAPPINGS },
                { id: 'custom.cellOptions', value: { type: 'color-background', mode: 'basic' } },
              ],
            },
          ],
        },
        options: { showHeader: true, cellHeight: 'sm', footer: { show: true, reducer: ['count'], countRows: true, fields: '' } },
      },
      10,
      14,
    ),
  );
  panels.push(
    grid.place(
      {
        type: 'table',
        title: '各街道预警 Open alerts by street and level',
        description: 'Open alerts counted per street (rows) and level (columns).',
        datasource: { type: 'datasource', uid: '-- Mixed --' },
        targets: [influxTarget('EVENTS', rankedEventsQuery(), { resultFormat: 'table' }), staticAssetsTarget(config)],
        transformations: [
          ...openAlertTransformations(),
          { id: 'joinByField', options: { byField: 'asset_id', mode: 'inner' } },
          { id: 'groupingToMatrix', options: { columnField: 'level_rank', rowField: 'street', valueField: 'alert_id', emptyValue: 'zero' } },
        ],
        fieldConfig: { defaults: { custom: { align: 'center', cellOptions: { type: 'auto' } } }, overrides: [] },
        options: { showHeader: true, cellHeight: 'sm', footer: { show: false, reducer: ['sum'], countRows: false } },
      },
      10,
      8,
    ),
  );
  const ingest = timeseriesPanel(
    '接入健康 Ingest: readings per minute',
    'Readings stored per minute, per asset type and metric, stacked: the height of a bar is the district’s ingest rate. A type falling to zero while its devices are online means a broken data path; compare with watchpost_ingest_rejected_total on /metrics.',
    'none',
    [{ color: 'green', value: null }],
    [influxTarget('A', `SELECT count("value") FROM ${measurements} WHERE "street" =~ /^$street$/ AND $timeFilter GROUP BY time(1m), "asset_type" fill(0)`, { alias: '$tag_asset_type · $measurement' })],
    { drawStyle: 'bars' },
  );
  (ingest.fieldConfig as { defaults: { custom: Json } }).defaults.custom.stacking = { mode: 'normal', group: 'A' };
  panels.push(grid.place(ingest, 14, 8));
  panels.push(
    grid.place(
      {
        type: 'table',
        title: '最后上报 Last reading per sensor',
        description: 'The newest reading of every sensor (per metric) within the last day: a sensor missing here, or with an old time, has gone silent.',
        datasource: INFLUX_DS,
        targets: [influxTarget('A', `SELECT last("value") FROM ${measurements} WHERE "street" =~ /^$street$/ AND "asset_id" =~ /^$asset$/ AND time > now() - 1d GROUP BY "asset_id", "sensor_id"`, { resultFormat: 'table' })],
        transformations: [{ id: 'merge', options: {} }, { id: 'sortBy', options: { sort: [{ field: 'Time', desc: false }] } }],
        fieldConfig: { defaults: { custom: { align: 'auto', cellOptions: { type: 'auto' }, filterable: true } }, overrides: [] },
        options: { showHeader: true, cellHeight: 'sm', footer: { show: false, reducer: ['sum'], countRows: false } },
      },
      24,
      8,
    ),
  );
  panels.push(grid.place(alertEventsTable('最近预警事件 Recent alert events', undefined), 24, 8));
  return dashboardShell(
    'watchpost-longgang-overview',
    `${districtName(config)} Watchpost 总览 / overview`,
    'Every asset of the district on the map by its current alert level, open alerts by street and level, ingest health and the latest alert events.',
    ['overview', 'public-safety'],
    panels,
    variables(undefined, [levelVariable(), eventVariable()]),
    'now-24h',
  );
}

function levelVariable(): Json {
  return {
    name: 'level',
    label: '级别 Level',
    type: 'custom',
    query: LEVELS.join(','),
    multi: true,
    includeAll: true,
    allValue: '.*',
    current: { selected: true, text: ['All'], value: ['$__all'] },
    options: [],
    hide: 0,
    skipUrlSync: false,
  };
}

function eventVariable(): Json {
  return {
    name: 'event',
    label: '事件 Event',
    type: 'custom',
    query: 'firing,level_raised,level_dropped,escalated,repeated,acknowledged,resolved,delivery_failed',
    multi: true,
    includeAll: true,
    allValue: '.*',
    current: { selected: true, text: ['All'], value: ['$__all'] },
    options: [],
    hide: 0,
    skipUrlSync: false,
  };
}

/** The alert history: every alert event as annotations, a table and counts per level. */
export function alertHistoryDashboard(): Json {
  const grid = new Grid();
  const panels: Json[] = [];
  panels.push(
    grid.place(
      timeseriesPanel(
        '预警事件数 Alert events per hour by level',
        'Alert events per hour (all kinds of event), by level.',
        'none',
        [{ color: 'green', value: null }],
        [
          influxTarget(
            'A',
            `SELECT count("alert_id") FROM "alert_events" WHERE "asset_id" =~ /^$asset$/ AND "level" =~ /^$level$/ AND "event" =~ /^$event$/ AND $timeFilter GROUP BY time(1h), "level" fill(0)`,
            { alias: '$tag_level' },
          ),
        ],
        { drawStyle: 'bars' },
      ),
      12,
      8,
    ),
  );
  panels.push(
    grid.place(
      {
        type: 'bargauge',
        title: '按规则 Events by rule',
        description: 'Alert events per rule in the time range.',
        datasource: INFLUX_DS,
        targets: [influxTarget('A', `SELECT count("alert_id") FROM "alert_events" WHERE "asset_id" =~ /^$asset$/ AND "level" =~ /^$level$/ AND "event" =~ /^$event$/ AND $timeFilter GROUP BY "rule_id"`, { alias: '$tag_rule_id' })],
        fieldConfig: { defaults: { color: { mode: 'continuous-YlRd' }, thresholds: { mode: 'absolute', steps: [{ color: 'green', value: null }] } }, overrides: [] },
        options: { orientation: 'horizontal', displayMode: 'gradient', showUnfilled: true, reduceOptions: { calcs: ['sum'], fields: '', values: false } },
      },
      12,
      8,
    ),
  );
  panels.push(grid.place(alertEventsTable('预警事件 Alert events', undefined), 24, 14));
  return dashboardShell(
    'watchpost-alert-history',
    'Watchpost 预警历史 Alert history',
    'Alert events from the alert_events measurement: annotations on every Watchpost dashboard, counts by level and rule, and the full list.',
    ['alerts'],
    panels,
    variables(undefined, [levelVariable(), eventVariable()]),
    'now-7d',
  );
}

function centre(config: WatchpostConfig): [number, number] {
  const located = config.assets.filter((a) => a.location);
  if (located.length === 0) return [114.2, 22.7];
  const lon = located.reduce((s, a) => s + a.location![0], 0) / located.length;
  const lat = located.reduce((s, a) => s + a.location![1], 0) / located.length;
  return [Math.round(lon * 1e4) / 1e4, Math.round(lat * 1e4) / 1e4];
}

function districtName(config: WatchpostConfig): string {
  // The demo is Longgang; other configurations get a neutral title.
  return config.assets.some((a) => a.id.startsWith('lg-')) ? '龙岗区' : 'District';
}

/** Every dashboard for a configuration, with its file name. */
export function generateDashboards(config: WatchpostConfig): GeneratedDashboard[] {
  const types = [...new Set(config.assets.map((a) => a.type))];
  return [
    { file: 'district-overview.json', dashboard: overviewDashboard(config) },
    { file: 'alert-history.json', dashboard: alertHistoryDashboard() },
    ...types.map((type) => ({ file: `asset-type-${type}.json`, dashboard: assetTypeDashboard(config, type) })),
  ];
}

export function serialize(dashboard: Json): string {
  return `${JSON.stringify(dashboard, null, 2)}\n`;
}

function main(argv: string[]): void {
  const { values } = parseArgs({ args: argv, options: { config: { type: 'string' }, out: { type: 'string' } } });
  const dir = values.config ?? 'config-demo';
  const loaded = loadConfig(dir);
  if (!loaded.ok) {
    process.stderr.write(`${formatErrors(loaded.errors)}\n`);
    process.exit(1);
  }
  const out = values.out ?? join('dashboards', 'json');
  mkdirSync(out, { recursive: true });
  for (const { file, dashboard } of generateDashboards(loaded.config)) {
    const path = join(out, file);
    let before = '';
    try {
      before = readFileSync(path, 'utf8');
    } catch {
      // new file
    }
    const text = serialize(dashboard);
    if (text !== before) writeFileSync(path, text);
    process.stdout.write(`${text === before ? 'unchanged' : 'wrote'} ${path}\n`);
  }
}

if (process.argv[1] && import.meta.url === new URL(`file://${process.argv[1]}`).href) main(process.argv.slice(2));
