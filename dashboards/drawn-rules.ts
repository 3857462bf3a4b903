/** The configured threshold rules as the panels draw them: threshold steps, descriptions, aggregates. */
import { LEVELS, LEVEL_NAMES_ZH, type Level } from '../lib/levels.js';
import type { Condition } from '../rules/config.js';
import type { DashboardConfig } from './config.js';
import { LEVEL_COLOURS } from './panels.js';
import { regexEscape, seconds } from './queries.js';

/** A threshold rule on the plain value, as the dashboards draw it. */
export interface DrawnRule {
  id: string;
  name?: string;
  levels: Partial<Record<Level, Condition>>;
}

function drawnRules(config: DashboardConfig): Array<DrawnRule & { match: { metric?: string[]; asset_type?: string[] } }> {
  const out: Array<DrawnRule & { match: { metric?: string[]; asset_type?: string[] } }> = [];
  for (const raw of config.rules as unknown[]) {
    const r = raw as { id: string; name?: string; kind?: string; enabled?: boolean; levels?: DrawnRule['levels']; match?: { metric?: string[]; asset_type?: string[] }; signal?: unknown };
    if (r.enabled === false || !r.levels || !r.match) continue;
    if (r.kind !== undefined && r.kind !== 'threshold') continue;
    const signal = r.signal as { kind?: string } | string | undefined;
    if (signal !== undefined && signal !== 'value' && typeof signal === 'object' && signal.kind !== 'value') continue;
    out.push({ id: r.id, name: r.name, levels: r.levels, match: r.match });
  }
  return out;
}

/** A threshold rule on a windowed signal, as the dashboards approximate it in InfluxQL. */
export interface WindowedRule extends DrawnRule {
  metric: string;
  assetFilter: string;
  signal: { kind: 'sum' | 'rate' | 'tangent_angle'; windowMs: number; perMs?: number; velocity?: number };
}

/** Threshold rules on a sum, rate or tangent angle that watch assets of `type`. */
export function windowedRules(config: DashboardConfig, type: string): WindowedRule[] {
  const out: WindowedRule[] = [];
  const ofType = new Set(config.assets.filter((a) => a.type === type).map((a) => a.id));
  for (const raw of config.rules as unknown[]) {
    const r = raw as {
      id: string;
      name?: string;
      kind?: string;
      enabled?: boolean;
      levels?: DrawnRule['levels'];
      match?: { metric?: string[]; asset_type?: string[]; asset_id?: string[] };
      signal?: WindowedRule['signal'] | { kind: string };
    };
    if (r.kind !== 'threshold' || r.enabled === false || !r.levels || !r.match?.metric || r.match.metric.length !== 1) continue;
    const signal = r.signal;
    if (!signal || !['sum', 'rate', 'tangent_angle'].includes(signal.kind)) continue;
    const m = r.match;
    const metric = r.match.metric[0]!;
    if (m.asset_type && !m.asset_type.includes(type)) continue;
    const ids = m.asset_id?.filter((id) => ofType.has(id));
    if (m.asset_id && ids!.length === 0) continue;
    if (!m.asset_type && !m.asset_id) continue;
    const assetFilter = ids ? `"asset_id" =~ /^(${ids.map(regexEscape).join('|')})$/` : `"asset_type" = '${type}'`;
    out.push({ id: r.id, name: r.name, levels: r.levels, metric, assetFilter, signal: signal as WindowedRule['signal'] });
  }
  return out;
}

export function windowedTitle(rule: WindowedRule): string {
  const w = seconds(rule.signal.windowMs);
  if (rule.signal.kind === 'sum') return `${rule.name ?? rule.id}: ${rule.metric} sum over ${w}`;
  if (rule.signal.kind === 'rate') return `${rule.name ?? rule.id}: ${rule.metric} rate per ${seconds(rule.signal.perMs!)} over ${w}`;
  return `${rule.name ?? rule.id}: tangent angle (${w}, v = ${rule.signal.velocity}/d)`;
}

/** The value rule that watches `metric` on assets of `type`, if any (the first in the configuration). */
export function ruleFor(config: DashboardConfig, type: string, metric: string): DrawnRule | undefined {
  return drawnRules(config).find((r) => (r.match.metric === undefined || r.match.metric.includes(metric)) && (r.match.asset_type === undefined || r.match.asset_type.includes(type)));
}

/** Grafana threshold steps (ascending) for a rule's levels. */
export function thresholdSteps(rule: DrawnRule | undefined): Array<{ color: string; value: number | null }> {
  if (!rule) return [{ color: 'green', value: null }];
  const present = LEVELS.filter((l) => rule.levels[l] !== undefined);
  const first = rule.levels[present[0]!]!;
  if ('above' in first) {
    return [{ color: 'green', value: null }, ...present.map((l) => ({ color: LEVEL_COLOURS[l], value: (rule.levels[l] as { above: number }).above }))];
  }
  if ('below' in first) {
    const down = [...present].reverse(); // most severe first = lowest threshold first
    const steps: Array<{ color: string; value: number | null }> = [{ color: LEVEL_COLOURS[down[0]!], value: null }];
    for (let i = 1; i < down.length; i++) steps.push({ color: LEVEL_COLOURS[down[i]!], value: (rule.levels[down[i - 1]!] as { below: number }).below });
    steps.push({ color: 'green', value: (rule.levels[down.at(-1)!] as { below: number }).below });
    return steps;
  }
  const down = [...present].reverse();
  const steps: Array<{ color: string; value: number | null }> = [{ color: LEVEL_COLOURS[down[0]!], value: null }];
  for (let i = 1; i < down.length; i++) steps.push({ color: LEVEL_COLOURS[down[i]!], value: (rule.levels[down[i - 1]!] as { outside: [number, number] }).outside[0] });
  steps.push({ color: 'green', value: (rule.levels[down.at(-1)!] as { outside: [number, number] }).outside[0] });
  for (let i = down.length - 1; i >= 0; i--) steps.push({ color: LEVEL_COLOURS[down[i]!], value: (rule.levels[down[i]!] as { outside: [number, number] }).outside[1] });
  return steps;
}

export function describeRule(rule: DrawnRule | undefined, unit: string): string {
  if (!rule) return 'No threshold rule watches this metric.';
  const parts = LEVELS.filter((l) => rule.levels[l]).map((l) => {
    const c = rule.levels[l]!;
    const text = 'above' in c ? `> ${c.above}` : 'below' in c ? `< ${c.below}` : `outside [${c.outside[0]}, ${c.outside[1]}]`;
    return `${LEVEL_NAMES_ZH[l]} ${l} ${text}${unit ? ` ${unit}` : ''}`;
  });
  return `Rule ${rule.id}${rule.name ? ` (${rule.name})` : ''}: ${parts.join(', ')}.`;
}

/** The aggregate a panel draws: peaks for `above` rules, troughs for `below`, the mean otherwise. */
export function aggregateFor(rule: DrawnRule | undefined): 'max' | 'min' | 'mean' {
  const c = rule ? Object.values(rule.levels)[0] : undefined;
  if (c && 'above' in c) return 'max';
  if (c && 'below' in c) return 'min';
  return 'mean';
}
