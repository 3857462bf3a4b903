/** Grafana building blocks the dashboards share: datasources, targets, panel kinds and the grid. */
import { LEVELS, LEVEL_NAMES_ZH, type Level } from '../lib/levels.js';

export const INFLUX_DS = { type: 'influxdb', uid: 'watchpost-influxdb' } as const;
export const STATIC_DS = { type: 'grafana-testdata-datasource', uid: 'watchpost-static' } as const;

export const LEVEL_COLOURS: Record<Level, string> = { blue: 'blue', yellow: 'yellow', orange: 'orange', red: 'red' };

export type Json = Record<string, unknown>;

/** Grafana units of catalogue units; others are shown as a suffix. */
const UNITS: Record<string, string> = { mm: 'lengthmm', m: 'lengthm', '°C': 'celsius', kPa: 'pressurekpa' };
export const grafanaUnit = (unit: string) => UNITS[unit] ?? (unit ? `suffix: ${unit}` : 'none');

export function influxTarget(refId: string, query: string, extra: Json = {}): Json {
  return { refId, datasource: INFLUX_DS, rawQuery: true, resultFormat: 'time_series', query, ...extra };
}

/** Lays panels out left to right, `w` columns each, in rows of 24. */
export class Grid {
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

export function timeseriesPanel(title: string, description: string, unit: string, steps: Json[], targets: Json[], extra: { drawStyle?: string; decimals?: number } = {}): Json {
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

export function stateTimelinePanel(title: string, description: string, targets: Json[]): Json {
  return {
    type: 'state-timeline',
    title,
    description,
    datasource: INFLUX_DS,
    fieldConfig: {
      defaults: {
        color: { mode: 'thresholds' },
        thresholds: {
          mode: 'absolute',
          steps: [
            { color: 'green', value: null },
            { color: 'red', value: 0.5 },
          ],
        },
        mappings: [{ type: 'value', options: { '0': { text: '正常 normal', color: 'green', index: 0 }, '1': { text: '报警 active', color: 'red', index: 1 } } }],
        custom: { lineWidth: 0, fillOpacity: 80 },
      },
      overrides: [],
    },
    options: { mergeValues: true, showValue: 'never', alignValue: 'left', rowHeight: 0.8, legend: { showLegend: true, displayMode: 'list', placement: 'bottom' } },
    targets,
  };
}

export function alertEventsTable(title: string, assetRegex: string | undefined, height = 'auto'): Json {
  const where = assetRegex ? `"asset_id" =~ /^(${assetRegex})$/ AND "asset_id" =~ /^$asset$/` : `"asset_id" =~ /^$asset$/ AND "level" =~ /^$level$/ AND "event" =~ /^$event$/`;
  void height;
  return {
    type: 'table',
    title,
    description:
      'Every alert event Watchpost wrote to alert_events (firing, level_raised, level_dropped, escalated, repeated, acknowledged, resolved, delivery_failed, and the case steps verified, dismissed, dispatched, on_site, feedback, closed, overdue), newest first.',
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
