/** One dashboard per asset type: a panel per metric its sensors report, with the rules' thresholds. */
import type { DashboardConfig } from './config.js';
import { dashboardShell, variables } from './dashboard-shell.js';
import { aggregateFor, describeRule, ruleFor, thresholdSteps, windowedRules, windowedTitle } from './drawn-rules.js';
import { Grid, alertEventsTable, grafanaUnit, influxTarget, stateTimelinePanel, timeseriesPanel, type Json } from './panels.js';
import { FILTER, metricQuery, regexEscape, windowedQuery } from './queries.js';

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

function isBoolean(config: DashboardConfig, metric: string): boolean {
  const m = config.metrics[metric];
  return ['smoke', 'fire_alarm', 'fault', 'supervisory', 'disabled'].includes(metric) || (m !== undefined && m.min === 0 && m.max === 1 && (m.unit ?? '') === '');
}

/** The metrics the sensors of assets of `type` report (configuration order). */
function metricsOf(config: DashboardConfig, type: string): string[] {
  const out: string[] = [];
  for (const asset of config.assets.filter((a) => a.type === type)) {
    for (const sensor of asset.sensors ?? []) for (const m of sensor.metrics ?? []) if (!out.includes(m)) out.push(m);
  }
  return out;
}

/** One dashboard per asset type: a panel per metric, thresholds from the rule that watches it. */
export function assetTypeDashboard(config: DashboardConfig, type: string): Json {
  const grid = new Grid();
  const panels: Json[] = [];
  const metrics = metricsOf(config, type);
  const booleans = metrics.filter((m) => isBoolean(config, m));
  for (const metric of metrics.filter((m) => !booleans.includes(m))) {
    const rule = ruleFor(config, type, metric);
    const unit = config.metrics[metric]?.unit ?? '';
    const title = METRIC_TITLES[metric] ?? metric;
    const description = `${metric}${unit ? ` (${unit})` : ''}, ${aggregateFor(rule)} per interval per sensor. ${describeRule(rule, unit)}`;
    panels.push(
      grid.place(
        timeseriesPanel(title, description, grafanaUnit(unit), thresholdSteps(rule), [
          influxTarget('A', metricQuery(metric, aggregateFor(rule), type), { alias: '$tag_asset_id / $tag_sensor_id' }),
        ]),
        12,
        8,
      ),
    );
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
            [
              influxTarget('A', `SELECT sum("value") FROM "rainfall" WHERE "asset_type" = '${type}' AND ${FILTER} AND $timeFilter GROUP BY time(1h), "asset_id", "sensor_id" fill(0)`, {
                alias: '$tag_asset_id / $tag_sensor_id',
              }),
            ],
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
            [
              influxTarget(
                'A',
                `SELECT cumulative_sum(sum("value")) FROM "rainfall" WHERE "asset_type" = '${type}' AND ${FILTER} AND $timeFilter GROUP BY time($__interval), "asset_id", "sensor_id" fill(0)`,
                { alias: '$tag_asset_id / $tag_sensor_id' },
              ),
            ],
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
    panels.push(
      grid.place(
        timeseriesPanel(
          windowedTitle(rule),
          description,
          rule.signal.kind === 'tangent_angle' ? 'degree' : grafanaUnit(unit),
          thresholdSteps(rule),
          [influxTarget('A', windowedQuery(rule), { alias: '$tag_asset_id / $tag_sensor_id' })],
          { decimals: 1 },
        ),
        12,
        8,
      ),
    );
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
