/**
 * `watchpost replay`: runs the configuration's rules over recorded readings on event time and
 * prints the alert timeline: when each alert would have fired, changed level and resolved.
 *
 * - The platform clock is simulated as event time (rules/replay.ts): stale and offline checks and
 *   the end of flapping run at exactly the times the live platform's timer would have run them.
 * - Alerts follow the live alert state machine (alerts/state-machine.ts): one open alert per
 *   (rule, asset, sensor), raised, dropped and resolved as live. Acknowledgements, escalation and
 *   notifications are not part of a replay.
 * - Deterministic: the same configuration and input give byte-identical output. Alerts are
 *   numbered #1, #2, ... in firing order; times are RFC 3339 in UTC unless `--tz` gives an offset.
 */
import { readFileSync } from 'node:fs';
import { formatThreshold, formatNumber } from '../rules/template.js';
import { openAlert, transition, type AlertCore } from '../alerts/state-machine.js';
import { Catalogue } from '../ingest/catalogue.js';
import type { Level } from '../lib/levels.js';
import { replayOnEventTime, type ReplayItem } from '../rules/replay.js';
import { RuleRunner } from '../rules/rule-runner.js';
import type { AssetRef } from '../rules/state.js';
import type { RuleEvent, Threshold } from '../rules/types.js';
import type { WatchpostConfig } from './config/schema.js';
import { detectFormat, parseReplayInput, parseTs, type InputProblem, type ReplayInput } from './replay-input.js';

export type TimelineEventType = 'firing' | 'level_raised' | 'level_dropped' | 'resolved' | 'flapping_started' | 'flapping_ended';

export interface TimelineEntry {
  at: string;
  event: TimelineEventType;
  /** The alert's number in this replay (#1 is the first to fire); null for flapping marks without an open alert. */
  alert: number | null;
  rule_id: string;
  asset_id: string;
  sensor_id: string;
  metric: string;
  level: Level | null;
  previous_level?: Level;
  value: number;
  unit: string;
  threshold: Threshold | null;
  /** resolved: condition_cleared, data_returned, device_online. */
  reason?: string;
  /** flapping marks: level changes in the episode. */
  changes?: number;
}

export interface AlertSummary {
  alert: number;
  rule_id: string;
  asset_id: string;
  sensor_id: string;
  fired_at: string;
  resolved_at: string | null;
  highest_level: Level;
  events: number;
}

export interface ReplayReport {
  input: { readings: number; statuses: number; rejected: InputProblem[] };
  range: { from: string | null; to: string | null };
  timeline: TimelineEntry[];
  alerts: AlertSummary[];
}

export interface ReplayOptions {
  /** UTC offset for the times printed, `+08:00`; default UTC (`Z`). */
  tz?: string;
  /** Run the platform clock on to this time after the last item (epoch ms). */
  end?: number;
}

/** The assets each device serves, for device status lines. */
export function deviceAssets(config: WatchpostConfig, catalogue: Catalogue): Map<string, AssetRef[]> {
  return new Map(
    config.devices.map((d) => [
      d.id,
      (d.assets ?? []).flatMap((id) => {
        const a = catalogue.asset(id);
        return a ? [{ assetId: a.id, assetType: a.type, street: a.street }] : [];
      }),
    ]),
  );
}

/** Reads a JSONL or CSV file (`-` = stdin) and checks it against the configuration. */
export function readReplayFile(config: WatchpostConfig, path: string): ReplayInput {
  const text = readFileSync(path === '-' ? 0 : path, 'utf8');
  const catalogue = new Catalogue(config.assets, config.metrics);
  return parseReplayInput(text, detectFormat(path, text), { catalogue, devices: deviceAssets(config, catalogue) });
}

/** Runs the rules over the input and builds the timeline. */
export function runReplay(config: WatchpostConfig, input: ReplayInput, options: ReplayOptions = {}): ReplayReport {
  const runner = new RuleRunner(config.rules);
  const items: ReplayItem[] = input.items;
  const last = items.length > 0 ? items[items.length - 1]!.ts : undefined;
  const end = options.end !== undefined && (last === undefined || options.end > last) ? options.end : last;
  const events = replayOnEventTime(runner, items, end);
  const catalogue = new Catalogue(config.assets, config.metrics);
  const unit = (e: RuleEvent) => runner.rules.unit(e.ruleId, e.metric, catalogue.unit(e.metric));
  const tz = options.tz ?? 'Z';
  const { timeline, alerts } = buildTimeline(events, unit, (ts) => formatTime(ts, tz));
  return {
    input: { readings: input.readings, statuses: input.statuses, rejected: input.rejected },
    range: { from: items.length > 0 ? formatTime(items[0]!.ts, tz) : null, to: end !== undefined ? formatTime(end, tz) : null },
    timeline,
    alerts,
  };
}

interface OpenAlert {
  n: number;
  core: AlertCore;
  summary: AlertSummary;
}

/** Rule events -> alert timeline, through the live alert state machine. */
export function buildTimeline(events: readonly RuleEvent[], unitOf: (e: RuleEvent) => string, time: (ts: number) => string): { timeline: TimelineEntry[]; alerts: AlertSummary[] } {
  const timeline: TimelineEntry[] = [];
  const alerts: AlertSummary[] = [];
  const open = new Map<string, OpenAlert>();
  const levelRankOf: Record<Level, number> = { blue: 1, yellow: 2, orange: 3, red: 4 };
  for (const e of events) {
    const key = `${e.ruleId}\u0000${e.assetId}\u0000${e.sensorId}`;
    const entry = (event: TimelineEventType, n: number | null, extra: Partial<TimelineEntry> = {}): TimelineEntry => ({
      at: time(e.ts),
      event,
      alert: n,
      rule_id: e.ruleId,
      asset_id: e.assetId,
      sensor_id: e.sensorId,
      metric: e.metric,
      level: e.level,
      value: e.value,
      unit: unitOf(e),
      threshold: e.threshold,
      ...extra,
    });
    const current = open.get(key);
    const input = { kind: 'rule' as const, level: e.level, value: e.value, threshold: e.threshold, ts: e.ts };
    if (e.flapping !== 'ended') {
      if (current === undefined && e.level !== null) {
        const n = alerts.length + 1;
        const { alert } = openAlert({ ...input, level: e.level }, e.ts);
        const summary: AlertSummary = { alert: n, rule_id: e.ruleId, asset_id: e.assetId, sensor_id: e.sensorId, fired_at: time(e.ts), resolved_at: null, highest_level: e.level, events: 1 };
        alerts.push(summary);
        open.set(key, { n, core: alert, summary });
        timeline.push(entry('firing', n));
      } else if (current !== undefined) {
        const t = transition(current.core, input, e.ts);
        if (t) {
          current.core = t.alert;
          current.summary.events++;
          if (t.event.type === 'resolved') {
            open.delete(key);
            current.summary.resolved_at = time(e.ts);
            timeline.push(entry('resolved', current.n, { level: t.event.level, reason: e.reason ?? 'condition_cleared' }));
          } else {
            const type = t.event.type === 'level_raised' ? 'level_raised' : 'level_dropped';
            if (e.level !== null && levelRankOf[e.level] > levelRankOf[current.summary.highest_level]) current.summary.highest_level = e.level;
            timeline.push(entry(type, current.n, t.event.previousLevel ? { previous_level: t.event.previousLevel } : {}));
          }
        }
      }
    }
    if (e.flapping === 'started' || e.flapping === 'ended') {
      const n = open.get(key)?.n ?? current?.n ?? null;
      timeline.push(entry(e.flapping === 'started' ? 'flapping_started' : 'flapping_ended', n, { changes: e.changes }));
    }
  }
  return { timeline, alerts };
}

/** RFC 3339 at a fixed UTC offset (`Z` or `+08:00`), to the millisecond when needed. */
export function formatTime(ts: number, tz: string): string {
  const offsetMin = tz === 'Z' ? 0 : parseOffset(tz);
  const d = new Date(ts + offsetMin * 60_000);
  const iso = d.toISOString().replace(/\.000Z$/, 'Z');
  return tz === 'Z' ? iso : iso.replace(/Z$/, tz);
}

export function parseOffset(tz: string): number {
  const m = /^([+-])(\d{2}):(\d{2})$/.exec(tz);
  if (!m || Number(m[2]) > 14 || Number(m[3]) > 59) throw new Error(`--tz must be Z or an offset such as +08:00 (got "${tz}")`);
  return (m[1] === '-' ? -1 : 1) * (Number(m[2]) * 60 + Number(m[3]));
}

/** `--start` / `--end`: epoch ms or RFC 3339. */
export function parseTimeOption(value: string, name: string): number {
  const ts = parseTs(value);
  if (typeof ts === 'string') throw new Error(`--${name}: ${ts}`);
  return ts;
}

const EVENT_LABEL: Record<TimelineEventType, string> = {
  firing: 'firing',
  level_raised: 'raised',
  level_dropped: 'dropped',
  resolved: 'resolved',
  flapping_started: 'flapping',
  flapping_ended: 'stable',
};

function withUnit(value: string, unit: string): string {
  if (value === '' || unit === '') return value;
  return unit.startsWith('°') ? `${value}${unit}` : `${value} ${unit}`;
}

/** The timeline as an aligned text table, then a summary. */
export function formatTable(report: ReplayReport): string {
  const header = ['time', 'event', 'alert', 'level', 'rule', 'asset/sensor', 'metric', 'value', 'threshold', 'note'];
  const rows = report.timeline.map((t) => {
    const level = t.previous_level ? `${t.previous_level}→${t.level}` : (t.level ?? '');
    const notes: string[] = [];
    if (t.reason && t.reason !== 'condition_cleared') notes.push(t.reason);
    if (t.changes !== undefined) notes.push(`${t.changes} changes`);
    return [
      t.at,
      EVENT_LABEL[t.event],
      t.alert === null ? '' : `#${t.alert}`,
      level,
      t.rule_id,
      `${t.asset_id}/${t.sensor_id}`,
      t.metric,
      withUnit(formatNumber(t.value), t.unit),
      withUnit(formatThreshold(t.threshold), t.unit),
      notes.join(', '),
    ];
  });
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => [...r[i]!].length)));
  const line = (cells: string[]) =>
    cells
      .map((c, i) => (i === cells.length - 1 ? c : c + ' '.repeat(widths[i]! - [...c].length)))
      .join('  ')
      .trimEnd();
  const out = [line(header), ...rows.map(line)];
  const { readings, statuses, rejected } = report.input;
  const stillOpen = report.alerts.filter((a) => a.resolved_at === null).length;
  out.push('');
  out.push(
    `${readings} reading${readings === 1 ? '' : 's'}${statuses ? `, ${statuses} device status change${statuses === 1 ? '' : 's'}` : ''}${rejected.length ? ` (${rejected.length} input line${rejected.length === 1 ? '' : 's'} rejected)` : ''}` +
      (report.range.from ? `, ${report.range.from} .. ${report.range.to}` : ''),
  );
  out.push(`${report.alerts.length} alert${report.alerts.length === 1 ? '' : 's'}${report.alerts.length ? `, ${stillOpen} still open at the end` : ''}`);
  return `${out.join('\n')}\n`;
}

/** Rejected input lines for stderr: the first `limit`, then a count. */
export function formatRejected(rejected: readonly InputProblem[], limit = 20): string {
  const lines = rejected.slice(0, limit).map((p) => `line ${p.line}: ${p.reason}: ${p.detail}`);
  if (rejected.length > limit) lines.push(`... and ${rejected.length - limit} more`);
  return lines.length ? `${lines.join('\n')}\n` : '';
}
