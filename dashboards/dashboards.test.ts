import { readdirSync, readFileSync } from 'node:fs';
import { parse } from 'yaml';
import { describe, expect, it } from 'vitest';
import { loadConfig } from '../server/config/load.js';
import type { WatchpostConfig } from '../server/config/schema.js';
import { INFLUX_DS, SCHEMA_VERSION, STATIC_DS, assetsCsv, generateDashboards, serialize, thresholdSteps } from './generate.js';
import { readStatement, statements, substitute } from './influxql.js';

const TELEMETRY_TAGS = new Set(['asset_id', 'sensor_id', 'asset_type', 'street']);
const ALERT_TAGS = new Set(['rule_id', 'asset_id', 'level', 'event']);
const ALERT_FIELDS = new Set(['alert_id', 'value', 'message', 'actor']);

interface Target {
  refId?: string;
  query?: string;
  datasource?: { type: string; uid: string };
  scenarioId?: string;
  csvContent?: string;
}
interface Panel {
  id: number;
  type: string;
  title: string;
  gridPos: { x: number; y: number; w: number; h: number };
  datasource?: { type: string; uid: string };
  targets?: Target[];
  fieldConfig?: { defaults: { thresholds?: { steps: Array<{ color: string; value: number | null }> } } };
  options?: Record<string, unknown>;
  transformations?: Array<{ id: string; options: unknown }>;
}
interface Dashboard {
  uid: string;
  title: string;
  schemaVersion: number;
  time: { from: string; to: string };
  panels: Panel[];
  templating: { list: Array<{ name: string; type: string; query: string; datasource?: { uid: string } }> };
  annotations: { list: Array<{ name: string; query?: string; target?: { query: string }; datasource: { type: string; uid: string } }> };
}

function demoConfig(): WatchpostConfig {
  const result = loadConfig('config-demo', {});
  if (!result.ok) throw new Error('config-demo does not load');
  return result.config;
}

const config = demoConfig();
const files = readdirSync('dashboards/json')
  .filter((f) => f.endsWith('.json'))
  .sort();
const dashboards: Array<{ file: string; dashboard: Dashboard }> = files.map((file) => ({ file, dashboard: JSON.parse(readFileSync(`dashboards/json/${file}`, 'utf8')) as Dashboard }));
const byUid = (uid: string) => dashboards.find((d) => d.dashboard.uid === uid)!.dashboard;

/** Every InfluxQL statement of a dashboard, with where it comes from. */
export function influxQueries(dashboard: Dashboard): Array<{ where: string; query: string }> {
  const out: Array<{ where: string; query: string }> = [];
  for (const panel of dashboard.panels) {
    for (const t of panel.targets ?? []) {
      if (t.datasource?.uid !== INFLUX_DS.uid) continue;
      for (const s of statements(t.query ?? '')) out.push({ where: `${dashboard.uid}: panel "${panel.title}" ${t.refId}`, query: s });
    }
  }
  for (const v of dashboard.templating.list) if (v.type === 'query') out.push({ where: `${dashboard.uid}: variable ${v.name}`, query: v.query });
  for (const a of dashboard.annotations.list) {
    if (a.query !== undefined) out.push({ where: `${dashboard.uid}: annotation ${a.name}`, query: a.query });
    if (a.target?.query !== undefined) out.push({ where: `${dashboard.uid}: annotation ${a.name} (target)`, query: a.target.query });
  }
  return out;
}

function panelOf(dashboard: Dashboard, measurement: string): Panel {
  return dashboard.panels.find(
    (p) =>
      p.type === 'timeseries' &&
      (p.targets ?? []).some(
        (t) =>
          (t.query ?? '').startsWith(`SELECT max("value") FROM "${measurement}"`) ||
          (t.query ?? '').startsWith(`SELECT min("value") FROM "${measurement}"`) ||
          (t.query ?? '').startsWith(`SELECT mean("value") FROM "${measurement}"`),
      ),
  )!;
}

describe('generated dashboards', () => {
  it('are committed exactly as the generator writes them for the demo configuration', () => {
    const generated = generateDashboards(config);
    expect(files).toEqual(generated.map((g) => g.file).sort());
    for (const { file, dashboard } of generated)
      expect(readFileSync(`dashboards/json/${file}`, 'utf8'), `${file} is stale: run node dist/server/generate-dashboards.js`).toBe(serialize(dashboard));
  });

  it('are an overview, an alert history, the disposal loop and one dashboard per asset type', () => {
    expect(dashboards.map((d) => d.dashboard.uid).sort()).toEqual(
      [
        'watchpost-alert-history',
        'watchpost-disposal',
        'watchpost-building',
        'watchpost-bridge',
        'watchpost-fire',
        'watchpost-longgang-overview',
        'watchpost-pipeline',
        'watchpost-slope',
      ].sort(),
    );
  });
});

describe.each(dashboards)('dashboard $file', ({ dashboard }) => {
  it('has the fields and schema version Grafana expects', () => {
    expect(dashboard.schemaVersion).toBe(SCHEMA_VERSION);
    expect(dashboard.uid).toMatch(/^[a-z0-9-]{1,40}$/);
    expect(dashboard.title.length).toBeGreaterThan(0);
    expect(dashboard.time).toMatchObject({ to: 'now' });
    const dataPanels = dashboard.panels.filter((p) => p.type !== 'row');
    expect(dataPanels.length).toBeGreaterThanOrEqual(2);
    expect(new Set(dashboard.panels.map((p) => p.id)).size).toBe(dashboard.panels.length);
    for (const panel of dataPanels) {
      expect(['timeseries', 'state-timeline', 'table', 'geomap', 'bargauge'], panel.title).toContain(panel.type);
      expect(panel.targets?.length, panel.title).toBeGreaterThan(0);
      for (const t of panel.targets!) {
        expect(t.refId).toMatch(/^[A-Z]+$/);
        expect([INFLUX_DS, STATIC_DS]).toContainEqual(t.datasource);
      }
      if (panel.targets!.some((t) => t.datasource?.uid === STATIC_DS.uid)) expect(panel.datasource).toEqual({ type: 'datasource', uid: '-- Mixed --' });
      else expect(panel.datasource).toEqual(INFLUX_DS);
    }
  });

  it('lays panels out without overlap on the 24-column grid', () => {
    const cells = new Set<string>();
    for (const { gridPos: g, title } of dashboard.panels) {
      expect(g.x + g.w, title).toBeLessThanOrEqual(24);
      for (let x = g.x; x < g.x + g.w; x++) {
        for (let y = g.y; y < g.y + g.h; y++) {
          expect(cells.has(`${x},${y}`), `${title} overlaps at ${x},${y}`).toBe(false);
          cells.add(`${x},${y}`);
        }
      }
    }
  });

  it('has street, asset and sensor variables from tag values, and defines every variable it uses', () => {
    const vars = Object.fromEntries(dashboard.templating.list.map((v) => [v.name, v]));
    for (const name of ['street', 'asset', 'sensor']) expect(vars[name]?.query, name).toMatch(/^SHOW TAG VALUES/);
    expect(vars.asset!.query).toContain('"street" =~ /^$street$/');
    expect(vars.sensor!.query).toContain('"asset_id" =~ /^$asset$/');
    for (const { where, query } of influxQueries(dashboard)) {
      for (const [, name] of query.matchAll(/\$(?!__|timeFilter|tag_)(\w+)/g)) expect(vars[name!], `${where} uses $${name}`).toBeDefined();
    }
  });

  it('queries only the writer’s layout: catalogue metrics with field value and the four tags, or alert_events', () => {
    const metrics = new Set(Object.keys(config.metrics));
    const queries = influxQueries(dashboard);
    for (const { where, query } of queries) {
      const refs = readStatement(query);
      if (query.startsWith('SELECT')) expect(query.includes('$timeFilter') || /time > now\(\) - \d+d/.test(query), `${where}: time range`).toBe(true);
      if (refs.measurements.includes('alert_events')) {
        expect(refs.measurements).toEqual(['alert_events']);
        for (const f of refs.fields) expect(ALERT_FIELDS.has(f) || ALERT_TAGS.has(f), `${where}: ${f}`).toBe(true);
        for (const t of refs.tags) expect(ALERT_TAGS.has(t), `${where}: tag ${t}`).toBe(true);
        continue;
      }
      for (const m of refs.measurements) expect(metrics.has(m), `${where}: measurement ${m}`).toBe(true);
      for (const f of refs.fields) expect(f, `${where}: field`).toBe('value');
      for (const t of refs.tags) expect(TELEMETRY_TAGS.has(t), `${where}: tag ${t}`).toBe(true);
    }
  });

  it('annotates every panel with the alert events', () => {
    const annotation = dashboard.annotations.list.find((a) => a.datasource.uid === INFLUX_DS.uid)!;
    expect(readStatement(annotation.query!).measurements).toEqual(['alert_events']);
    expect(annotation.target!.query).toBe(annotation.query);
  });
});

describe('thresholds drawn from the rules', () => {
  it('draws above, below and outside rules as Grafana threshold steps', () => {
    expect(panelOf(byUid('watchpost-bridge'), 'strain').fieldConfig!.defaults.thresholds!.steps).toEqual([
      { color: 'green', value: null },
      { color: 'yellow', value: 200 },
      { color: 'orange', value: 250 },
      { color: 'red', value: 300 },
    ]);
    expect(panelOf(byUid('watchpost-fire'), 'hydrant_pressure').fieldConfig!.defaults.thresholds!.steps).toEqual([
      { color: 'red', value: null },
      { color: 'orange', value: 0.14 },
      { color: 'yellow', value: 0.2 },
      { color: 'green', value: 0.25 },
    ]);
    expect(panelOf(byUid('watchpost-pipeline'), 'pressure').fieldConfig!.defaults.thresholds!.steps).toEqual([
      { color: 'red', value: null },
      { color: 'orange', value: 0.15 },
      { color: 'yellow', value: 0.2 },
      { color: 'green', value: 0.22 },
      { color: 'yellow', value: 0.38 },
      { color: 'orange', value: 0.4 },
      { color: 'red', value: 0.42 },
    ]);
    expect(panelOf(byUid('watchpost-pipeline'), 'gas_lel').fieldConfig!.defaults.thresholds!.steps).toEqual([
      { color: 'green', value: null },
      { color: 'blue', value: 10 },
      { color: 'orange', value: 25 },
      { color: 'red', value: 50 },
    ]);
    // a metric no rule watches gets no threshold lines
    expect(thresholdSteps(undefined)).toEqual([{ color: 'green', value: null }]);
    expect(panelOf(byUid('watchpost-bridge'), 'cable_force').fieldConfig!.defaults.thresholds!.steps).toEqual([{ color: 'green', value: null }]);
  });

  it('charts every metric the assets of a type report', () => {
    for (const type of ['bridge', 'slope', 'pipeline', 'fire', 'building']) {
      const dashboard = byUid(`watchpost-${type}`);
      const read = new Set(influxQueries(dashboard).flatMap((q) => readStatement(q.query).measurements));
      const reported = config.assets.filter((a) => a.type === type).flatMap((a) => a.sensors!.flatMap((s) => s.metrics!));
      for (const metric of reported) expect(read.has(metric), `${type}: ${metric}`).toBe(true);
    }
  });
});

describe('district overview', () => {
  const overview = byUid('watchpost-longgang-overview');
  const geomap = overview.panels.find((p) => p.type === 'geomap')!;

  it('puts every configured asset on the map at its configured location', () => {
    const csv = geomap.targets!.find((t) => t.refId === 'ASSETS')!;
    expect(csv).toMatchObject({ datasource: STATIC_DS, scenarioId: 'csv_content' });
    expect(csv.csvContent).toBe(assetsCsv(config));
    const rows = csv.csvContent!.split('\n');
    expect(rows[0]).toBe('asset_id,name,type,street,latitude,longitude');
    expect(rows).toHaveLength(config.assets.length + 1);
    expect(rows).toContain('lg-bridge-001,龙岗大道龙岗河大桥,bridge,龙城街道,22.7209,114.2466');
    const layer = (geomap.options!.layers as Array<{ type: string; location: Record<string, string>; config: { style: { color: { field: string } } } }>)[0]!;
    expect(layer.type).toBe('markers');
    expect(layer.location).toEqual({ mode: 'coords', latitude: 'latitude', longitude: 'longitude' });
    expect(layer.config.style.color.field).toBe('level_rank');
  });

  it('derives open alerts from alert_events: last event per alert, resolved ones dropped, joined to the asset table', () => {
    expect(geomap.transformations!.map((t) => t.id)).toEqual(['merge', 'sortBy', 'groupBy', 'filterByValue', 'organize', 'groupBy', 'organize', 'joinByField']);
    const events = geomap.targets!.find((t) => t.refId === 'EVENTS')!;
    expect(statements(events.query!).map((s) => /"level" = '(\w+)'/.exec(s)![1])).toEqual(['blue', 'yellow', 'orange', 'red']);
    expect(statements(events.query!).map((s) => /\* 0 \+ (\d) AS "rank"/.exec(s)![1])).toEqual(['1', '2', '3', '4']);
    const byStreet = overview.panels.find((p) => p.title.startsWith('各街道预警'))!;
    expect(byStreet.transformations!.at(-1)).toEqual({ id: 'groupingToMatrix', options: { columnField: 'level_rank', rowField: 'street', valueField: 'alert_id', emptyValue: 'zero' } });
  });

  it('shows ingest health per asset type', () => {
    const ingest = overview.panels.find((p) => p.title.startsWith('接入健康'))!;
    expect(readStatement(ingest.targets![0]!.query!).measurements.sort()).toEqual(Object.keys(config.metrics).sort());
  });
});

describe('InfluxQL helpers', () => {
  it('read measurements, fields and tags, and refuse what the layout does not have', () => {
    expect(readStatement('SELECT mean("reading") FROM "strain" WHERE "site" =~ /x/ AND $timeFilter GROUP BY time(1m), "node" fill(none)')).toEqual({
      measurements: ['strain'],
      fields: ['reading'],
      tags: ['site', 'node'],
    });
    expect(
      readStatement(
        'SELECT sum("count") FROM (SELECT count("value") FROM /^(a|b\\_c)$/ WHERE "street" =~ /^x$/ GROUP BY time(1m), "asset_type") WHERE $timeFilter GROUP BY time(1m), "asset_type" fill(0)',
      ),
    ).toEqual({
      measurements: ['a', 'b_c'],
      fields: ['value'],
      tags: ['asset_type', 'street', 'asset_type'],
    });
    expect(() => readStatement('DROP DATABASE telemetry')).toThrow(/not a recognised/);
    expect(
      substitute('SELECT x FROM "m" WHERE "street" =~ /^$street$/ AND $timeFilter GROUP BY time($__interval) ALIAS $tag_asset_id', {
        timeFilter: 'time > now() - 1h',
        interval: '10s',
        all: '.*',
      }),
    ).toBe('SELECT x FROM "m" WHERE "street" =~ /^.*$/ AND time > now() - 1h GROUP BY time(10s) ALIAS $tag_asset_id');
  });
});

describe('provisioning', () => {
  const load = (path: string) => parse(readFileSync(path, 'utf8')) as { apiVersion: number; datasources: Array<Record<string, unknown>> };

  it('provides the same InfluxQL datasource for InfluxDB 1.x and, through DBRP with a token, for 2.x', () => {
    const v1 = load('dashboards/datasources/influxdb.yaml');
    const v2 = load('dashboards/datasources-influxdb2/influxdb.yaml');
    expect(v1.apiVersion).toBe(1);
    expect(v1.datasources).toHaveLength(1);
    expect(v1.datasources[0]).toMatchObject({
      name: 'Watchpost InfluxDB',
      uid: INFLUX_DS.uid,
      type: 'influxdb',
      url: 'http://127.0.0.1:8086',
      jsonData: { dbName: 'telemetry', version: 'InfluxQL' },
    });
    expect(v2.datasources[0]).toMatchObject({
      name: 'Watchpost InfluxDB',
      uid: INFLUX_DS.uid,
      type: 'influxdb',
      jsonData: { dbName: 'telemetry', version: 'InfluxQL', httpHeaderName1: 'Authorization' },
      secureJsonData: { httpHeaderValue1: 'Token ${GRAFANA_INFLUX_TOKEN}' },
    });
  });

  it('provides the TestData datasource the asset table needs, identically for both', () => {
    const a = readFileSync('dashboards/datasources/static.yaml', 'utf8');
    expect(readFileSync('dashboards/datasources-influxdb2/static.yaml', 'utf8')).toBe(a);
    expect(load('dashboards/datasources/static.yaml').datasources).toEqual([expect.objectContaining({ uid: STATIC_DS.uid, type: STATIC_DS.type })]);
  });

  it('loads the dashboards from a file provider', () => {
    const providers = parse(readFileSync('dashboards/providers/watchpost.yaml', 'utf8')) as { providers: Array<{ type: string; options: { path: string } }> };
    expect(providers.providers).toMatchObject([{ type: 'file', options: { path: '/var/lib/grafana/dashboards/watchpost' } }]);
  });
});
