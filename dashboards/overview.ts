/** The district overview: every asset on the map by its open alerts, open alerts by street and level, ingest health. */
import { LEVELS, LEVEL_NAMES_ZH } from '../lib/levels.js';
import type { DashboardConfig } from './config.js';
import { dashboardShell, eventVariable, levelVariable, variables } from './dashboard-shell.js';
import { Grid, INFLUX_DS, LEVEL_COLOURS, STATIC_DS, alertEventsTable, influxTarget, timeseriesPanel, type Json } from './panels.js';
import { OPEN_ALERT_LOOKBACK, rankedEventsQuery, regexEscape } from './queries.js';

/** The asset table the map and the street lookup use: one CSV row per configured asset. */
export function assetsCsv(config: DashboardConfig): string {
  const quote = (s: string) => (/[",\n]/.test(s) ? `"${s.replace(/"/g, '""')}"` : s);
  const rows = config.assets.filter((a) => a.location).map((a) => [a.id, a.name ?? a.id, a.type, a.street, String(a.location![1]), String(a.location![0])].map(quote).join(','));
  return ['asset_id,name,type,street,latitude,longitude', ...rows].join('\n');
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
    options: Object.fromEntries<Json>([
      ['0', { text: '正常 no alert', color: 'green', index: 0 }],
      ...LEVELS.map((l, i): [string, Json] => [String(i + 1), { text: `${LEVEL_NAMES_ZH[l]} ${l}`, color: LEVEL_COLOURS[l], index: i + 1 }]),
    ]),
  },
  { type: 'special', options: { match: 'null', result: { text: '正常 no alert', color: 'green', index: 5 } } },
];
const RANK_THRESHOLDS = { mode: 'absolute', steps: [{ color: 'green', value: null }, ...LEVELS.map((l, i) => ({ color: LEVEL_COLOURS[l], value: i + 1 }))] };

function staticAssetsTarget(config: DashboardConfig): Json {
  return { refId: 'ASSETS', datasource: STATIC_DS, scenarioId: 'csv_content', csvContent: assetsCsv(config) };
}

/** The district overview: the map, open alerts by street and level, ingest health. */
export function overviewDashboard(config: DashboardConfig): Json {
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
            options: {
              fields: {
                asset_id: { aggregations: [], operation: 'groupby' },
                level_rank: { aggregations: ['max'], operation: 'aggregate' },
                alert_id: { aggregations: ['count'], operation: 'aggregate' },
              },
            },
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
          {
            id: 'organize',
            options: {
              excludeByName: { latitude: true, longitude: true, type: true },
              indexByName: { level_rank: 0, name: 1, street: 2, rule_id: 3, last_event: 4, since: 5, asset_id: 6, alert_id: 7 },
            },
          },
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
    [
      influxTarget('A', `SELECT count("value") FROM ${measurements} WHERE "street" =~ /^$street$/ AND $timeFilter GROUP BY time(1m), "asset_type" fill(0)`, {
        alias: '$tag_asset_type · $measurement',
      }),
    ],
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
        targets: [
          influxTarget('A', `SELECT last("value") FROM ${measurements} WHERE "street" =~ /^$street$/ AND "asset_id" =~ /^$asset$/ AND time > now() - 1d GROUP BY "asset_id", "sensor_id"`, {
            resultFormat: 'table',
          }),
        ],
        transformations: [
          { id: 'merge', options: {} },
          { id: 'sortBy', options: { sort: [{ field: 'Time', desc: false }] } },
        ],
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

function centre(config: DashboardConfig): [number, number] {
  const located = config.assets.filter((a) => a.location);
  if (located.length === 0) return [114.2, 22.7];
  const lon = located.reduce((s, a) => s + a.location![0], 0) / located.length;
  const lat = located.reduce((s, a) => s + a.location![1], 0) / located.length;
  return [Math.round(lon * 1e4) / 1e4, Math.round(lat * 1e4) / 1e4];
}

function districtName(config: DashboardConfig): string {
  // The demo is Longgang; other configurations get a neutral title.
  return config.assets.some((a) => a.id.startsWith('lg-')) ? '龙岗区' : 'District';
}
