/**
 * The disposal loop dashboard "处置效能": how alarms are worked through 监测报警 → 研判核实 → 派单处置 →
 * 现场反馈 → 办结归档, from the case steps in `alert_events` (event = acknowledged, verified,
 * dismissed, dispatched, on_site, feedback, closed, overdue; field `actor` = who took the step).
 *
 * Stage times are worked out by Grafana: the firing and step events become a matrix of one row per
 * alert_id and a column per event, and each step's time less the firing time is shown per case (the
 * firing event's time is the reading's). `watchpost report` gives the medians and 90th percentiles from alerts.db, and
 * Prometheus has the same times as `watchpost_case_stage_seconds`.
 */
import { dashboardShell, levelVariable, variables } from './dashboard-shell.js';
import { Grid, INFLUX_DS, influxTarget, timeseriesPanel, type Json } from './panels.js';

const ASSET = `"asset_id" =~ /^$asset$/`;
const LEVEL = `"level" =~ /^$level$/`;

/** The events that complete each stage, and the stage's column. */
const STAGE_EVENTS: ReadonlyArray<[event: string, stage: string]> = [
  ['acknowledged', 'ack 确认'],
  ['verified', 'verify 研判'],
  ['dispatched', 'dispatch 派单'],
  ['on_site', 'on_site 到场'],
  ['closed', 'close 办结'],
];

function bargauge(title: string, description: string, targets: Json[], extra: { unit?: string; rows?: boolean; transformations?: Json[] } = {}): Json {
  return {
    type: 'bargauge',
    title,
    description,
    datasource: INFLUX_DS,
    targets,
    ...(extra.transformations ? { transformations: extra.transformations } : {}),
    fieldConfig: { defaults: { unit: extra.unit ?? 'none', color: { mode: 'continuous-YlRd' }, thresholds: { mode: 'absolute', steps: [{ color: 'green', value: null }] } }, overrides: [] },
    options: { orientation: 'horizontal', displayMode: 'gradient', showUnfilled: true, reduceOptions: { calcs: ['sum'], fields: '', values: extra.rows === true } },
  };
}

function stepsPanel(): Json {
  return bargauge(
    '按环节 Cases by step reached',
    'Cases (alerts) in the time range that reached each step: fired, acknowledged (确认), verified (研判确认), dismissed as false alarms (误报), dispatched (派单), on site (到场), closed (办结).',
    [
      influxTarget(
        'A',
        `SELECT count("alert_id") FROM "alert_events" WHERE "event" =~ /^(firing|acknowledged|verified|dismissed|dispatched|on_site|closed)$/ AND ${ASSET} AND ${LEVEL} AND $timeFilter GROUP BY "event"`,
        { alias: '$tag_event' },
      ),
    ],
  );
}

/**
 * Per case: each step's time less the firing time. One query lists the firing and step events;
 * Grafana turns it into a matrix (a row per alert_id, a column per event holding its time) and
 * subtracts the columns.
 */
function stageTimesPanel(): Json {
  const events = ['firing', ...STAGE_EVENTS.map(([event]) => event)];
  const calculations = STAGE_EVENTS.map(([event, stage]) => ({
    id: 'calculateField',
    options: { mode: 'binary', alias: stage, binary: { left: event, operator: '-', right: 'firing' }, replaceFields: false },
  }));
  return {
    type: 'table',
    title: '处置时长 Stage times per case',
    description:
      'For each case in the time range: the time from the alarm to each step (acknowledged, verified, dispatched, on site, closed); empty where the case has not reached it. The footer gives the mean; `watchpost report` gives medians and 90th percentiles.',
    datasource: INFLUX_DS,
    targets: [
      influxTarget('A', `SELECT "alert_id", "event" FROM "alert_events" WHERE "event" =~ /^(${events.join('|')})$/ AND ${ASSET} AND ${LEVEL} AND $timeFilter`, { resultFormat: 'table' }),
    ],
    transformations: [
      { id: 'groupingToMatrix', options: { columnField: 'event', rowField: 'alert_id', valueField: 'Time', emptyValue: 'null' } },
      ...calculations,
      {
        id: 'organize',
        options: {
          excludeByName: Object.fromEntries(STAGE_EVENTS.map(([event]) => [event, true])),
          renameByName: { 'alert_id\\event': 'alert_id', firing: 'fired 报警时间' },
        },
      },
    ],
    fieldConfig: {
      defaults: { custom: { align: 'auto', cellOptions: { type: 'auto' }, filterable: true } },
      overrides: [
        { matcher: { id: 'byName', options: 'fired 报警时间' }, properties: [{ id: 'unit', value: 'dateTimeAsIso' }] },
        ...STAGE_EVENTS.map(([, stage]) => ({ matcher: { id: 'byName', options: stage }, properties: [{ id: 'unit', value: 'ms' }] })),
      ],
    },
    options: { showHeader: true, cellHeight: 'sm', footer: { show: true, reducer: ['mean'], countRows: false, fields: STAGE_EVENTS.map(([, s]) => s) } },
  };
}

function overduePanel(): Json {
  return bargauge('超期工单 Overdue work orders', "Work orders not closed by their due time in the time range, by level; each told its department again and the asset's authorities.", [
    influxTarget('A', `SELECT count("alert_id") FROM "alert_events" WHERE "event" = 'overdue' AND ${ASSET} AND ${LEVEL} AND $timeFilter GROUP BY "level"`, { alias: '$tag_level' }),
  ]);
}

/** Dismissed / fired per rule: two counts merged on rule_id, then divided. */
function falseAlarmPanel(): Json {
  return bargauge(
    '误报率（按规则） False-alarm rate by rule',
    'Cases dismissed as false alarms (误报) divided by the cases that fired, per rule, in the time range. By sensor: `watchpost report`.',
    [
      influxTarget('A', `SELECT count("alert_id") AS "cases" FROM "alert_events" WHERE "event" = 'firing' AND ${ASSET} AND ${LEVEL} AND $timeFilter GROUP BY "rule_id"`, {
        resultFormat: 'table',
      }),
      influxTarget('B', `SELECT count("alert_id") AS "dismissed" FROM "alert_events" WHERE "event" = 'dismissed' AND ${ASSET} AND ${LEVEL} AND $timeFilter GROUP BY "rule_id"`, {
        resultFormat: 'table',
      }),
    ],
    {
      unit: 'percentunit',
      rows: true,
      transformations: [
        { id: 'merge', options: {} },
        { id: 'calculateField', options: { mode: 'binary', alias: 'false_alarm_rate', binary: { left: 'dismissed', operator: '/', right: 'cases' }, replaceFields: false } },
        { id: 'organize', options: { excludeByName: { Time: true, cases: true, dismissed: true } } },
      ],
    },
  );
}

function stepsTable(): Json {
  return {
    type: 'table',
    title: '处置记录 Steps and who took them',
    description: "Every step of the disposal loop, newest first, with its actor (the API token's name, or the department of a work-order link; none for overdue).",
    datasource: INFLUX_DS,
    targets: [
      influxTarget(
        'A',
        `SELECT "event", "actor", "level", "rule_id", "asset_id", "alert_id", "message" FROM "alert_events" WHERE "event" =~ /^(acknowledged|verified|dismissed|dispatched|on_site|feedback|closed|overdue)$/ AND ${ASSET} AND ${LEVEL} AND $timeFilter ORDER BY time DESC LIMIT 1000`,
        { resultFormat: 'table' },
      ),
    ],
    fieldConfig: { defaults: { custom: { align: 'auto', cellOptions: { type: 'auto' }, filterable: true } }, overrides: [] },
    options: { showHeader: true, cellHeight: 'sm', footer: { show: false, reducer: ['sum'], countRows: false }, sortBy: [{ displayName: 'Time', desc: true }] },
  };
}

export function disposalDashboard(): Json {
  const grid = new Grid();
  const panels: Json[] = [
    grid.place(stepsPanel(), 12, 8),
    grid.place(
      timeseriesPanel(
        '每小时处置 Steps per hour',
        'Dispatched (派单), on site (到场), closed (办结) and dismissed (误报) steps per hour.',
        'none',
        [{ color: 'green', value: null }],
        [
          influxTarget(
            'A',
            `SELECT count("alert_id") FROM "alert_events" WHERE "event" =~ /^(dispatched|on_site|closed|dismissed)$/ AND ${ASSET} AND ${LEVEL} AND $timeFilter GROUP BY time(1h), "event" fill(0)`,
            { alias: '$tag_event' },
          ),
        ],
        { drawStyle: 'bars' },
      ),
      12,
      8,
    ),
    grid.place(stageTimesPanel(), 24, 10),
    grid.place(overduePanel(), 8, 8),
    grid.place(falseAlarmPanel(), 16, 8),
    grid.place(stepsTable(), 24, 12),
  ];
  return dashboardShell(
    'watchpost-disposal',
    'Watchpost 处置效能 Disposal performance',
    'The disposal loop from the case steps in alert_events: cases by step, stage times per case, overdue work orders, false-alarm rate by rule, and every step with who took it.',
    ['alerts', 'disposal'],
    panels,
    variables(undefined, [levelVariable()]),
    'now-7d',
  );
}
