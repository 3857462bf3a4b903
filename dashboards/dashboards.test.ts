import { readFileSync } from 'node:fs';
import { parse } from 'yaml';
import { describe, expect, it } from 'vitest';
import { loadConfig } from '../server/config/load.js';

const TELEMETRY_TAGS = new Set(['asset_id', 'sensor_id', 'asset_type', 'street']);
const ALERT_TAGS = new Set(['rule_id', 'asset_id', 'level', 'event']);
const ALERT_FIELDS = new Set(['alert_id', 'value', 'message']);

interface Target {
  refId?: string;
  query?: string;
  datasource?: { type: string; uid: string };
}
interface Panel {
  id: number;
  type: string;
  title: string;
  gridPos: { x: number; y: number; w: number; h: number };
  datasource?: { type: string; uid: string };
  targets?: Target[];
}
interface Dashboard {
  uid: string;
  title: string;
  schemaVersion: number;
  panels: Panel[];
  templating: { list: Array<{ name: string; query: string; datasource: { uid: string } }> };
  annotations: { list: Array<{ name: string; query?: string; target?: { query: string }; datasource: { type: string; uid: string } }> };
}

const dashboard = JSON.parse(readFileSync('dashboards/json/district-overview.json', 'utf8')) as Dashboard;
const datasources = parse(readFileSync('dashboards/datasources/influxdb.yaml', 'utf8')) as {
  apiVersion: number;
  datasources: Array<{ name: string; uid: string; type: string; url: string; jsonData: { dbName: string; version: string } }>;
};
const providers = parse(readFileSync('dashboards/providers/watchpost.yaml', 'utf8')) as {
  providers: Array<{ type: string; options: { path: string } }>;
};

function demoMetrics(): Set<string> {
  const result = loadConfig('config-demo', {});
  if (!result.ok) throw new Error('config-demo does not load');
  return new Set(Object.keys(result.config.metrics));
}

/** Every InfluxQL query of the dashboard, with where it comes from. */
function allQueries(): Array<{ where: string; query: string }> {
  const out: Array<{ where: string; query: string }> = [];
  for (const panel of dashboard.panels) {
    for (const t of panel.targets ?? []) out.push({ where: `panel ${panel.title} ${t.refId}`, query: t.query ?? '' });
  }
  for (const v of dashboard.templating.list) out.push({ where: `variable ${v.name}`, query: v.query });
  for (const a of dashboard.annotations.list) {
    if (a.query !== undefined) out.push({ where: `annotation ${a.name}`, query: a.query });
    if (a.target?.query !== undefined) out.push({ where: `annotation ${a.name} (target)`, query: a.target.query });
  }
  return out;
}

/** Double-quoted identifiers in a piece of InfluxQL. */
const identifiers = (text: string) => [...text.matchAll(/"([^"]+)"/g)].map((m) => m[1]!);

interface Parsed {
  measurement: string;
  fields: string[];
  tags: string[];
}

/** A deliberately small InfluxQL reader for the two statement shapes the dashboard uses. */
function parseInfluxQL(query: string): Parsed {
  const show = /^SHOW TAG VALUES(?: FROM "([^"]+)")? WITH KEY = "([^"]+)"(?: WHERE (.*))?$/.exec(query);
  if (show) return { measurement: show[1] ?? '', fields: [], tags: [show[2]!, ...identifiers(show[3] ?? '')] };
  const select = /^SELECT (.+?) FROM "([^"]+)" WHERE (.+?)(?: GROUP BY (.+?))?(?: fill\(\w+\))?(?: ORDER BY time DESC)?(?: LIMIT \d+)?$/.exec(query);
  if (!select) throw new Error(`not a recognised InfluxQL statement: ${query}`);
  const [, selectList, measurement, where, groupBy] = select;
  const whereTags = [...where!.matchAll(/"([^"]+)"\s*(?:=~|!~|=|!=|<>)/g)].map((m) => m[1]!);
  const groupTags = identifiers((groupBy ?? '').replace(/time\([^)]*\)/, ''));
  return { measurement: measurement!, fields: identifiers(selectList!), tags: [...whereTags, ...groupTags] };
}

describe('district overview dashboard', () => {
  it('is a Grafana dashboard with schemaVersion, uid, title and panels with targets', () => {
    expect(dashboard.schemaVersion).toBe(39);
    expect(dashboard.uid).toBe('watchpost-longgang-overview');
    expect(dashboard.title).toBe('龙岗区 Watchpost 总览 / Longgang overview');
    const dataPanels = dashboard.panels.filter((p) => p.type !== 'row');
    expect(dataPanels.length).toBeGreaterThanOrEqual(4);
    for (const panel of dataPanels) {
      expect(panel.targets?.length, panel.title).toBeGreaterThan(0);
      for (const t of panel.targets!) {
        expect(t.refId).toMatch(/^[A-Z]$/);
        expect(t.datasource).toEqual({ type: 'influxdb', uid: datasources.datasources[0]!.uid });
      }
    }
    expect(new Set(dashboard.panels.map((p) => p.id)).size).toBe(dashboard.panels.length);
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

  it('charts strain, displacement, gas_lel and hydrant pressure', () => {
    const measurements = allQueries().map((q) => parseInfluxQL(q.query).measurement);
    for (const m of ['strain', 'displacement', 'gas_lel', 'hydrant_pressure']) expect(measurements).toContain(m);
  });

  it('defines street and asset variables from tag values', () => {
    const vars = Object.fromEntries(dashboard.templating.list.map((v) => [v.name, v.query]));
    expect(vars.street).toBe('SHOW TAG VALUES WITH KEY = "street"');
    expect(vars.asset).toBe('SHOW TAG VALUES WITH KEY = "asset_id" WHERE "street" =~ /^$street$/');
    const defined = new Set(dashboard.templating.list.map((v) => v.name));
    for (const { where, query } of allQueries()) {
      for (const [, name] of query.matchAll(/\$(?!__|timeFilter|tag_)(\w+)/g)) expect(defined.has(name!), `${where} uses $${name}`).toBe(true);
    }
  });

  it('annotates alert events from alert_events', () => {
    const annotation = dashboard.annotations.list.find((a) => a.datasource.uid === 'watchpost-influxdb')!;
    expect(parseInfluxQL(annotation.query!).measurement).toBe('alert_events');
    expect(annotation.target!.query).toBe(annotation.query);
  });

  it('queries only the contract layout: catalogue metrics with field value and the four tags, or alert_events', () => {
    const metrics = demoMetrics();
    const queries = allQueries();
    expect(queries.length).toBeGreaterThan(8);
    for (const { where, query } of queries) {
      const parsed = parseInfluxQL(query);
      if (query.startsWith('SELECT')) expect(query, where).toContain('$timeFilter');
      if (parsed.measurement === 'alert_events') {
        for (const f of parsed.fields) expect(ALERT_FIELDS.has(f) || ALERT_TAGS.has(f), `${where}: ${f}`).toBe(true);
        for (const t of parsed.tags) expect(ALERT_TAGS.has(t), `${where}: tag ${t}`).toBe(true);
        continue;
      }
      if (parsed.measurement !== '') expect(metrics.has(parsed.measurement), `${where}: measurement ${parsed.measurement}`).toBe(true);
      else expect(query, where).toMatch(/^SHOW TAG VALUES/);
      for (const f of parsed.fields) expect(f, `${where}: field`).toBe('value');
      for (const t of parsed.tags) expect(TELEMETRY_TAGS.has(t), `${where}: tag ${t}`).toBe(true);
    }
  });

  it('the reader itself refuses what the layout does not have', () => {
    expect(parseInfluxQL('SELECT mean("reading") FROM "strain" WHERE "site" =~ /x/ AND $timeFilter GROUP BY time(1m), "node" fill(none)')).toEqual({
      measurement: 'strain',
      fields: ['reading'],
      tags: ['site', 'node'],
    });
  });
});

describe('provisioning', () => {
  it('provides the Watchpost InfluxDB datasource over InfluxQL', () => {
    expect(datasources.apiVersion).toBe(1);
    expect(datasources.datasources).toHaveLength(1);
    expect(datasources.datasources[0]).toMatchObject({
      name: 'Watchpost InfluxDB',
      uid: 'watchpost-influxdb',
      type: 'influxdb',
      url: 'http://127.0.0.1:8086',
      jsonData: { dbName: 'telemetry', version: 'InfluxQL' },
    });
  });

  it('loads the dashboards from a file provider', () => {
    expect(providers.providers).toMatchObject([{ type: 'file', options: { path: '/var/lib/grafana/dashboards/watchpost' } }]);
  });
});
