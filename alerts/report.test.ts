import { describe, expect, it } from 'vitest';
import type { Level } from '../lib/levels.js';
import type { CaseStatus, DismissReason } from './case-machine.js';
import { buildCaseReport, formatCaseReport, formatSeconds, quantile, stageOf, type ReportCase } from './report.js';
import type { AlertRecord, TimelineEntry, TimelineEntryType } from './store.js';

const T0 = Date.UTC(2026, 11, 1, 0, 0, 0);
const S = 1000;

function alert(id: string, ruleId: string, assetId: string, sensorId: string, level: Level, startedAt: number): AlertRecord {
  return {
    id,
    ruleId,
    assetId,
    sensorId,
    metric: 'm',
    level,
    state: 'firing',
    value: 1,
    threshold: null,
    eventTs: startedAt,
    startedAt,
    updatedAt: startedAt,
    acknowledgedAt: null,
    acknowledgedBy: null,
    resolvedAt: null,
    resolvedBy: null,
    resolveReason: null,
    ruleName: ruleId,
    assetName: assetId,
    assetType: 't',
    street: 's',
    message: '',
    plan: [],
    escalationPolicy: null,
    lastTier: null,
    heldNotice: null,
  };
}

let seq = 0;
/** A timeline: the firing event, then steps at seconds after the start (deliveries mixed in, which do not count). */
function timeline(a: AlertRecord, steps: Array<[TimelineEntryType, number, Record<string, unknown>?]>): TimelineEntry[] {
  const entry = (type: TimelineEntryType, at: number, kind: 'event' | 'delivery', detail: Record<string, unknown> = {}): TimelineEntry => ({
    seq: ++seq,
    alertId: a.id,
    at,
    kind,
    type,
    level: a.level,
    state: null,
    tier: null,
    channel: null,
    deliveryId: null,
    detail,
  });
  return [entry('firing', a.startedAt, 'event'), entry('delivered', a.startedAt + 5 * S, 'delivery'), ...steps.map(([type, s, detail]) => entry(type, a.startedAt + s * S, 'event', detail))];
}

const caseOf = (a: AlertRecord, status: CaseStatus, department: string | null, dismissReason: DismissReason | null = null) => ({
  alertId: a.id,
  status,
  department,
  workOrderId: null,
  dismissReason,
  updatedAt: a.startedAt,
  ackDeadline: null,
});

/** Six cases in the window and one before it. */
function cases(): ReportCase[] {
  const a1 = alert('a1', 'bridge-strain', 'lg-bridge-001', 'strain-01', 'red', T0);
  const a2 = alert('a2', 'bridge-strain', 'lg-bridge-001', 'strain-01', 'orange', T0 + 1000 * S);
  const a3 = alert('a3', 'gas-leak', 'lg-gas-001', 'vw-01', 'red', T0 + 2000 * S);
  const a4 = alert('a4', 'gas-leak', 'lg-gas-001', 'vw-01', 'yellow', T0 + 3000 * S);
  const a5 = alert('a5', 'gas-leak', 'lg-gas-001', 'vw-02', 'yellow', T0 + 4000 * S);
  const a6 = alert('a6', 'gas-leak', 'lg-gas-001', 'vw-01', 'red', T0 - 10 * S);
  const a7 = alert('a7', 'hydrant-low', 'lg-hydrant-001', 'pt-01', 'blue', T0 + 5000 * S);
  return [
    {
      alert: a1,
      timeline: timeline(a1, [
        ['acknowledged', 60],
        ['verified', 120],
        ['dispatched', 300, { department: 'lg-bridge' }],
        ['on_site', 1800],
        ['feedback', 2000],
        ['on_site', 2100],
        ['closed', 3600],
      ]),
      case: caseOf(a1, 'closed', 'lg-bridge'),
    },
    // No case record: status and department from the timeline.
    {
      alert: a2,
      timeline: timeline(a2, [
        ['acknowledged', 30],
        ['verified', 90],
        ['dispatched', 600, { department: 'lg-bridge' }],
        ['overdue', 1500],
        ['on_site', 2400],
        ['closed', 7200],
      ]),
    },
    {
      alert: a3,
      timeline: timeline(a3, [
        ['acknowledged', 120],
        ['dismissed', 300, { reason: 'sensor_fault' }],
      ]),
      case: caseOf(a3, 'dismissed', null, 'sensor_fault'),
    },
    { alert: a4, timeline: timeline(a4, [['dismissed', 200, { reason: 'sensor_fault' }]]), case: caseOf(a4, 'dismissed', null, 'sensor_fault') },
    { alert: a5, timeline: timeline(a5, [['acknowledged', 90]]), case: caseOf(a5, 'acknowledged', null) },
    { alert: a6, timeline: timeline(a6, [['dismissed', 10, { reason: 'test' }]]), case: caseOf(a6, 'dismissed', null, 'test') },
    { alert: a7, timeline: timeline(a7, []) },
  ];
}

const OWNERS: Record<string, string> = { 'lg-bridge-001': 'lg-bridge', 'lg-gas-001': 'lg-gas' };
const statuses = (s: Partial<Record<CaseStatus, number>>) => ({ new: 0, acknowledged: 0, verified: 0, dismissed: 0, dispatched: 0, on_site: 0, closed: 0, ...s });
const none = { count: 0, median_s: null, p90_s: null };

describe('case report', () => {
  it('quantiles interpolate between the nearest ranks', () => {
    expect(quantile([], 0.5)).toBeNull();
    expect(quantile([7], 0.9)).toBe(7);
    expect(quantile([30, 60, 90, 120], 0.5)).toBe(75);
    expect(quantile([30, 60, 90, 120], 0.9)).toBeCloseTo(111, 9);
    expect(quantile([1, 2, 3], 0.5)).toBe(2);
  });

  it('maps timeline events to stages', () => {
    expect((['acknowledged', 'verified', 'dispatched', 'on_site', 'closed', 'feedback', 'firing'] as const).map(stageOf)).toEqual([
      'ack',
      'verify',
      'dispatch',
      'on_site',
      'close',
      undefined,
      undefined,
    ]);
  });

  it('gives counts, medians and 90th percentiles from the start, overdue work orders and false-alarm rates, per department and level', () => {
    const report = buildCaseReport(cases(), { from: T0, to: T0 + 86_400 * S, ownerOf: (id) => OWNERS[id] });
    expect(report.from).toBe('2026-12-01T00:00:00.000Z');
    expect(report.total).toEqual({
      cases: 6,
      status: statuses({ new: 1, acknowledged: 1, dismissed: 2, closed: 2 }),
      stages: {
        ack: { count: 4, median_s: 75, p90_s: 111 },
        verify: { count: 2, median_s: 105, p90_s: 117 },
        dispatch: { count: 2, median_s: 450, p90_s: 570 },
        on_site: { count: 2, median_s: 2100, p90_s: 2340 },
        close: { count: 2, median_s: 5400, p90_s: 6840 },
      },
      overdue: 1,
      dismissed: 2,
      false_alarm_rate: 0.3333,
    });
    expect(report.by_department.map((d) => [d.department, d.cases, d.dismissed, d.false_alarm_rate, d.overdue, d.stages.ack])).toEqual([
      ['lg-bridge', 2, 0, 0, 1, { count: 2, median_s: 45, p90_s: 57 }],
      ['lg-gas', 3, 2, 0.6667, 0, { count: 2, median_s: 105, p90_s: 117 }],
      ['-', 1, 0, 0, 0, none],
    ]);
    expect(report.by_department[2]!.status).toEqual(statuses({ new: 1 }));
    expect(report.by_level.map((l) => [l.level, l.cases, l.dismissed, l.stages.close])).toEqual([
      ['red', 2, 1, { count: 1, median_s: 3600, p90_s: 3600 }],
      ['orange', 1, 0, { count: 1, median_s: 7200, p90_s: 7200 }],
      ['yellow', 2, 1, none],
      ['blue', 1, 0, none],
    ]);
    // The sensor dismissed every time is first.
    expect(report.false_alarms.by_sensor).toEqual([
      { asset_id: 'lg-gas-001', sensor_id: 'vw-01', cases: 2, dismissed: 2, rate: 1, reasons: { sensor_fault: 2 } },
      { asset_id: 'lg-bridge-001', sensor_id: 'strain-01', cases: 2, dismissed: 0, rate: 0, reasons: {} },
      { asset_id: 'lg-gas-001', sensor_id: 'vw-02', cases: 1, dismissed: 0, rate: 0, reasons: {} },
      { asset_id: 'lg-hydrant-001', sensor_id: 'pt-01', cases: 1, dismissed: 0, rate: 0, reasons: {} },
    ]);
    expect(report.false_alarms.by_rule).toEqual([
      { rule_id: 'gas-leak', cases: 3, dismissed: 2, rate: 0.6667, reasons: { sensor_fault: 2 } },
      { rule_id: 'bridge-strain', cases: 2, dismissed: 0, rate: 0, reasons: {} },
      { rule_id: 'hydrant-low', cases: 1, dismissed: 0, rate: 0, reasons: {} },
    ]);
  });

  it('an empty window has no figures', () => {
    const report = buildCaseReport(cases(), { from: T0 + 86_400 * S, to: T0 + 2 * 86_400 * S });
    expect(report.total).toMatchObject({ cases: 0, dismissed: 0, false_alarm_rate: null, stages: { ack: none } });
    expect(report.by_department).toEqual([]);
    expect(report.false_alarms.by_sensor).toEqual([]);
  });

  it('prints tables', () => {
    expect(formatSeconds(null)).toBe('-');
    expect(formatSeconds(45.04)).toBe('45s');
    expect(formatSeconds(750)).toBe('12m 30s');
    expect(formatSeconds(7500)).toBe('2h 05m');
    expect(formatSeconds(3 * 86_400 + 4 * 3600 + 59)).toBe('3d 04h');
    const text = formatCaseReport(buildCaseReport(cases(), { from: T0, to: T0 + 86_400 * S, ownerOf: (id) => OWNERS[id] }));
    expect(text).toContain('cases started 2026-12-01T00:00:00.000Z .. 2026-12-02T00:00:00.000Z: 6;');
    const lines = text.split('\n');
    expect(lines.find((l) => l.startsWith('lg-gas '))).toMatch(/^lg-gas\s+3\s+1\s+2\s+66\.7%\s+0\s+1m 45s \/ 1m 57s \(2\)\s+-\s+-\s+-\s+-$/);
    expect(lines.find((l) => l.startsWith('lg-gas-001/vw-01'))).toMatch(/^lg-gas-001\/vw-01\s+2\s+2\s+100\.0%\s+sensor_fault 2$/);
  });
});
