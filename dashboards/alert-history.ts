/** The alert history dashboard: every alert event as annotations, a table and counts per level and rule. */
import { dashboardShell, eventVariable, levelVariable, variables } from './dashboard-shell.js';
import { Grid, INFLUX_DS, alertEventsTable, influxTarget, timeseriesPanel, type Json } from './panels.js';

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
        targets: [
          influxTarget(
            'A',
            `SELECT count("alert_id") FROM "alert_events" WHERE "asset_id" =~ /^$asset$/ AND "level" =~ /^$level$/ AND "event" =~ /^$event$/ AND $timeFilter GROUP BY "rule_id"`,
            { alias: '$tag_rule_id' },
          ),
        ],
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
