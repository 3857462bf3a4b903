/**
 * The disposal loop's measures (`watchpost report`), computed from alert timelines. Pure: the
 * caller reads the alerts, their timelines and cases from the store and passes them in.
 *
 * - A case is an alert that started in [from, to); its steps are counted whenever they happened.
 * - Each stage's time is measured from the alert's start (started_at) to the first timeline event
 *   of that step: ack = `acknowledged`, verify = `verified`, dispatch = `dispatched`,
 *   on_site = `on_site`, close = `closed`. A case that skipped a step has no time for it.
 * - Median and 90th percentile by linear interpolation between the nearest ranks (numpy's
 *   default): for sorted times x[0..n-1] the p-quantile is at position (n-1)·p.
 * - A case's department is the department of its work order (its case, else its last
 *   `dispatched` event), else the owner of its asset, else "-". Its level is the alert's level.
 * - Overdue work orders: `overdue` events of the cases.
 * - False-alarm rate: dismissed cases / all cases, by rule and by sensor (asset and sensor id),
 *   worst first (most dismissed, then highest rate), with the dismiss reasons.
 */
import { LEVELS, type Level } from '../lib/levels.js';
import type { CaseStatus, DismissReason } from './case-machine.js';
import type { AlertRecord, CaseRecord, TimelineEntry, TimelineEntryType } from './store.js';

export const CASE_STAGES = ['ack', 'verify', 'dispatch', 'on_site', 'close'] as const;
export type CaseStage = (typeof CASE_STAGES)[number];

/** The timeline event that completes each stage. */
export const STAGE_EVENT: Readonly<Record<CaseStage, TimelineEntryType>> = { ack: 'acknowledged', verify: 'verified', dispatch: 'dispatched', on_site: 'on_site', close: 'closed' };

/** The stage a timeline event completes, if any. */
export function stageOf(type: TimelineEntryType): CaseStage | undefined {
  return CASE_STAGES.find((s) => STAGE_EVENT[s] === type);
}

export interface ReportCase {
  alert: AlertRecord;
  timeline: readonly TimelineEntry[];
  case?: CaseRecord;
}

export interface StageFigures {
  /** Cases that reached the stage. */
  count: number;
  /** Seconds from the alert's start; null without cases. */
  median_s: number | null;
  p90_s: number | null;
}

export interface GroupFigures {
  cases: number;
  /** Cases by their status now. */
  status: Record<CaseStatus, number>;
  stages: Record<CaseStage, StageFigures>;
  /** Work orders found overdue. */
  overdue: number;
  dismissed: number;
  /** dismissed / cases; null without cases. */
  false_alarm_rate: number | null;
}

export interface FalseAlarmRow {
  cases: number;
  dismissed: number;
  rate: number;
  reasons: Partial<Record<DismissReason, number>>;
}

export interface CaseReport {
  from: string;
  to: string;
  total: GroupFigures;
  by_department: Array<{ department: string } & GroupFigures>;
  by_level: Array<{ level: Level } & GroupFigures>;
  false_alarms: {
    by_rule: Array<{ rule_id: string } & FalseAlarmRow>;
    by_sensor: Array<{ asset_id: string; sensor_id: string } & FalseAlarmRow>;
  };
}

export interface ReportOptions {
  from: number;
  to: number;
  /** The owner department of an asset (configuration), for cases never dispatched. */
  ownerOf?: (assetId: string) => string | undefined;
}

/** The p-quantile (0..1) of ascending values, by linear interpolation; null when empty. */
export function quantile(sorted: readonly number[], p: number): number | null {
  if (sorted.length === 0) return null;
  const pos = (sorted.length - 1) * p;
  const lower = Math.floor(pos);
  const upper = Math.ceil(pos);
  return sorted[lower]! + (sorted[upper]! - sorted[lower]!) * (pos - lower);
}

interface Measured {
  department: string;
  level: Level;
  ruleId: string;
  assetId: string;
  sensorId: string;
  status: CaseStatus;
  dismissReason: DismissReason | null;
  /** Seconds from the start, per stage reached. */
  stages: Partial<Record<CaseStage, number>>;
  overdue: number;
}

function caseStatus(c: ReportCase): CaseStatus {
  if (c.case) return c.case.status;
  // Without a case record: the furthest step on the timeline (acknowledged by the alert's own event).
  const types = new Set(c.timeline.filter((e) => e.kind === 'event').map((e) => e.type));
  for (const status of ['closed', 'dismissed', 'on_site', 'dispatched', 'verified', 'acknowledged'] as const) if (types.has(status)) return status;
  return 'new';
}

function measure(c: ReportCase, options: ReportOptions): Measured {
  const events = c.timeline.filter((e) => e.kind === 'event').sort((a, b) => a.seq - b.seq);
  const stages: Partial<Record<CaseStage, number>> = {};
  let dispatchedTo: string | undefined;
  let dismissReason: DismissReason | null = c.case?.dismissReason ?? null;
  let overdue = 0;
  for (const e of events) {
    const stage = stageOf(e.type);
    if (stage && stages[stage] === undefined) stages[stage] = Math.max(0, e.at - c.alert.startedAt) / 1000;
    if (e.type === 'dispatched' && typeof e.detail.department === 'string') dispatchedTo = e.detail.department;
    if (e.type === 'dismissed' && dismissReason === null && typeof e.detail.reason === 'string') dismissReason = e.detail.reason as DismissReason;
    if (e.type === 'overdue') overdue++;
  }
  return {
    department: c.case?.department ?? dispatchedTo ?? options.ownerOf?.(c.alert.assetId) ?? '-',
    level: c.alert.level,
    ruleId: c.alert.ruleId,
    assetId: c.alert.assetId,
    sensorId: c.alert.sensorId,
    status: caseStatus(c),
    dismissReason,
    stages,
    overdue,
  };
}

const round = (n: number | null, digits = 3): number | null => (n === null ? null : Math.round(n * 10 ** digits) / 10 ** digits);

function figures(cases: readonly Measured[]): GroupFigures {
  const status = Object.fromEntries(['new', 'acknowledged', 'verified', 'dismissed', 'dispatched', 'on_site', 'closed'].map((s) => [s, 0])) as Record<CaseStatus, number>;
  for (const c of cases) status[c.status]++;
  const stages = {} as Record<CaseStage, StageFigures>;
  for (const stage of CASE_STAGES) {
    const times = cases.flatMap((c) => (c.stages[stage] === undefined ? [] : [c.stages[stage]])).sort((a, b) => a - b);
    stages[stage] = { count: times.length, median_s: round(quantile(times, 0.5)), p90_s: round(quantile(times, 0.9)) };
  }
  const dismissed = status.dismissed;
  return {
    cases: cases.length,
    status,
    stages,
    overdue: cases.reduce((n, c) => n + c.overdue, 0),
    dismissed,
    false_alarm_rate: cases.length === 0 ? null : round(dismissed / cases.length, 4),
  };
}

function falseAlarmRow(cases: readonly Measured[]): FalseAlarmRow {
  const reasons: Partial<Record<DismissReason, number>> = {};
  let dismissed = 0;
  for (const c of cases) {
    if (c.status !== 'dismissed') continue;
    dismissed++;
    if (c.dismissReason) reasons[c.dismissReason] = (reasons[c.dismissReason] ?? 0) + 1;
  }
  return { cases: cases.length, dismissed, rate: round(dismissed / cases.length, 4)!, reasons };
}

function groupBy<K>(cases: readonly Measured[], key: (c: Measured) => K, id: (k: K) => string): Map<string, { key: K; cases: Measured[] }> {
  const groups = new Map<string, { key: K; cases: Measured[] }>();
  for (const c of cases) {
    const k = key(c);
    const name = id(k);
    const group = groups.get(name) ?? { key: k, cases: [] };
    group.cases.push(c);
    groups.set(name, group);
  }
  return groups;
}

/** Worst first: most dismissed, then highest rate, then by name. */
function byFalseAlarms<T extends FalseAlarmRow>(rows: Array<T & { name: string }>): T[] {
  return rows.sort((a, b) => b.dismissed - a.dismissed || b.rate - a.rate || (a.name < b.name ? -1 : a.name > b.name ? 1 : 0)).map(({ name: _name, ...row }) => row as unknown as T);
}

export function buildCaseReport(cases: readonly ReportCase[], options: ReportOptions): CaseReport {
  const measured = cases.filter((c) => c.alert.startedAt >= options.from && c.alert.startedAt < options.to).map((c) => measure(c, options));
  const departments = [
    ...groupBy(
      measured,
      (c) => c.department,
      (d) => d,
    ),
  ].sort(([a], [b]) => (a === '-' ? 1 : b === '-' ? -1 : a < b ? -1 : a > b ? 1 : 0));
  const levels = [
    ...groupBy(
      measured,
      (c) => c.level,
      (l) => l,
    ),
  ].sort(([a], [b]) => LEVELS.indexOf(b as Level) - LEVELS.indexOf(a as Level));
  const rules = [
    ...groupBy(
      measured,
      (c) => c.ruleId,
      (r) => r,
    ),
  ];
  const sensors = [
    ...groupBy(
      measured,
      (c) => [c.assetId, c.sensorId] as const,
      ([a, s]) => `${a}/${s}`,
    ),
  ];
  return {
    from: new Date(options.from).toISOString(),
    to: new Date(options.to).toISOString(),
    total: figures(measured),
    by_department: departments.map(([department, g]) => ({ department, ...figures(g.cases) })),
    by_level: levels.map(([, g]) => ({ level: g.key, ...figures(g.cases) })),
    false_alarms: {
      by_rule: byFalseAlarms(rules.map(([name, g]) => ({ name, rule_id: g.key, ...falseAlarmRow(g.cases) }))),
      by_sensor: byFalseAlarms(sensors.map(([name, g]) => ({ name, asset_id: g.key[0], sensor_id: g.key[1], ...falseAlarmRow(g.cases) }))),
    },
  };
}

// ---- text ----

/** `95s`, `12m 30s`, `2h 05m`, `3d 04h`; `-` for none. */
export function formatSeconds(s: number | null): string {
  if (s === null) return '-';
  if (s < 60) return `${Math.round(s * 10) / 10}s`;
  const m = Math.floor(s / 60);
  if (m < 60) return `${m}m ${String(Math.round(s - m * 60)).padStart(2, '0')}s`;
  const h = Math.floor(m / 60);
  if (h < 24) return `${h}h ${String(m - h * 60).padStart(2, '0')}m`;
  const d = Math.floor(h / 24);
  return `${d}d ${String(h - d * 24).padStart(2, '0')}h`;
}

const percent = (rate: number | null): string => (rate === null ? '-' : `${(rate * 100).toFixed(1)}%`);

function table(header: string[], rows: string[][]): string {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
  const line = (cells: string[]) =>
    cells
      .map((c, i) => c.padEnd(widths[i]!))
      .join('  ')
      .trimEnd();
  return [line(header), line(widths.map((w) => '-'.repeat(w))), ...rows.map(line)].join('\n');
}

function groupTable(first: string, rows: Array<[string, GroupFigures]>): string {
  const header = [first, 'cases', 'open', 'dismissed', 'false alarms', 'overdue', ...CASE_STAGES.map((s) => `${s} p50/p90`)];
  return table(
    header,
    rows.map(([name, g]) => [
      name,
      String(g.cases),
      String(g.cases - g.status.closed - g.status.dismissed),
      String(g.dismissed),
      percent(g.false_alarm_rate),
      String(g.overdue),
      ...CASE_STAGES.map((s) => (g.stages[s].count === 0 ? '-' : `${formatSeconds(g.stages[s].median_s)} / ${formatSeconds(g.stages[s].p90_s)} (${g.stages[s].count})`)),
    ]),
  );
}

function reasonsText(reasons: FalseAlarmRow['reasons']): string {
  return Object.entries(reasons)
    .map(([r, n]) => `${r} ${n}`)
    .join(', ');
}

export function formatCaseReport(report: CaseReport): string {
  const rule = report.false_alarms.by_rule.map((r) => [r.rule_id, String(r.cases), String(r.dismissed), percent(r.rate), reasonsText(r.reasons)]);
  const sensor = report.false_alarms.by_sensor.map((r) => [`${r.asset_id}/${r.sensor_id}`, String(r.cases), String(r.dismissed), percent(r.rate), reasonsText(r.reasons)]);
  return `cases started ${report.from} .. ${report.to}: ${report.total.cases}; stage times from the alert's start, median / 90th percentile (cases)

by department
${groupTable('department', [...report.by_department.map((d): [string, GroupFigures] => [d.department, d]), ['all', report.total]])}

by level
${groupTable('level', [...report.by_level.map((l): [string, GroupFigures] => [l.level, l]), ['all', report.total]])}

false alarms by rule (most dismissed first)
${table(['rule', 'cases', 'dismissed', 'rate', 'reasons'], rule)}

false alarms by sensor (most dismissed first)
${table(['asset/sensor', 'cases', 'dismissed', 'rate', 'reasons'], sensor)}
`;
}
