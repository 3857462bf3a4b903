/**
 * How a scenario's effects act on the simulated series: `value` effects bound to the configured
 * threshold rule whose level they promise (so they keep raising it when thresholds are tuned), the
 * physical shapes of a ramp, and rainfall profiles integrated into gauge readings.
 */
import { LEVELS, type Level } from '../lib/levels.js';
import type { Condition, RuleConfig } from '../rules/config.js';
import type { RainEffect, ScenarioSpec, Shape, ValueEffect } from './scenarios.js';
import { clampToRange, gaussian, type MetricRange, type Rng } from './signals.js';

/** One simulated (asset, sensor, metric) series, as the resolver sees it. */
export interface SeriesTarget {
  assetId: string;
  assetType: string;
  street: string;
  sensorId: string;
  metric: string;
  range: MetricRange;
}

/** A threshold rule on the plain value, reduced to what the scenarios need. */
export interface ValueRule {
  id: string;
  levels: Partial<Record<Level, Condition>>;
  hysteresis: number;
  match: { metric?: string[]; asset_type?: string[]; asset_id?: string[]; sensor_id?: string[]; street?: string[] };
}

/** The enabled threshold rules on `value` (not on rates, aggregates or tangent angles). */
export function valueRules(rules: readonly RuleConfig[]): ValueRule[] {
  const out: ValueRule[] = [];
  for (const raw of rules as unknown[]) {
    const r = raw as { id: string; kind?: string; enabled?: boolean; levels?: ValueRule['levels']; hysteresis?: number; match?: ValueRule['match']; signal?: unknown };
    if (r.enabled === false || r.levels === undefined || r.match === undefined) continue;
    if (r.kind !== undefined && r.kind !== 'threshold') continue;
    const signal = r.signal as { kind?: string } | string | undefined;
    if (signal !== undefined && signal !== 'value' && typeof signal === 'object' && signal.kind !== 'value') continue;
    out.push({ id: r.id, levels: r.levels, hysteresis: r.hysteresis ?? 0, match: r.match });
  }
  return out;
}

export function ruleMatches(rule: ValueRule, t: SeriesTarget): boolean {
  const m = rule.match;
  return (
    (m.metric === undefined || m.metric.includes(t.metric)) &&
    (m.asset_type === undefined || m.asset_type.includes(t.assetType)) &&
    (m.asset_id === undefined || m.asset_id.includes(t.assetId)) &&
    (m.sensor_id === undefined || m.sensor_id.includes(t.sensorId)) &&
    (m.street === undefined || m.street.includes(t.street))
  );
}

/** The band of values that meets `level` of `rule` but not the next higher level. */
export function levelBand(rule: ValueRule, level: Level, direction: 'high' | 'low' = 'high'): { band: [number, number]; threshold: number | [number, number] } | undefined {
  const cond = rule.levels[level];
  if (!cond) return undefined;
  const higher = LEVELS.slice(LEVELS.indexOf(level) + 1)
    .map((l) => rule.levels[l])
    .find((c): c is Condition => c !== undefined);
  const margin = (t: number) => Math.max(rule.hysteresis, Math.abs(t) * 0.1, 1e-3);
  if ('above' in cond) {
    const t = cond.above;
    const hi = higher && 'above' in higher ? higher.above : t + 2 * margin(t);
    return { band: [t, hi], threshold: t };
  }
  if ('below' in cond) {
    const t = cond.below;
    const lo = higher && 'below' in higher ? higher.below : t - 2 * margin(t);
    return { band: [lo, t], threshold: t };
  }
  const [lo, hi] = cond.outside;
  const next = higher && 'outside' in higher ? higher.outside : undefined;
  if (direction === 'low') return { band: [next ? next[0] : lo - 2 * margin(lo), lo], threshold: cond.outside };
  return { band: [hi, next ? next[1] : hi + 2 * margin(hi)], threshold: cond.outside };
}

/** Where a `value` effect ends up. */
export type ValueTarget =
  | { kind: 'level'; ruleId: string; level: Level; threshold: number | [number, number]; band: [number, number]; value: number }
  | { kind: 'offset'; offset: number }
  | { kind: 'absolute'; value: number };

export interface ResolvedValueEffect {
  effect: ValueEffect;
  assetId: string;
  sensorId: string;
  metric: string;
  target: ValueTarget;
}

/**
 * Binds a scenario's `value` effects to sensors and rules of the configuration: a level target
 * needs a threshold rule on the value that matches the sensor and has that level; without one,
 * `offset` or `value` is used when given, else the effect is skipped with a warning. Effects on a
 * sensor the configuration does not simulate are skipped with a warning too.
 */
export function resolveValueEffects(scenario: ScenarioSpec, rules: readonly RuleConfig[], series: readonly SeriesTarget[]): { effects: ResolvedValueEffect[]; warnings: string[] } {
  const effects: ResolvedValueEffect[] = [];
  const warnings: string[] = [];
  const candidates = valueRules(rules);
  for (const effect of scenario.effects) {
    if (effect.kind !== 'value') continue;
    const target = series.find((s) => s.assetId === effect.sensor.asset_id && s.sensorId === effect.sensor.sensor_id && s.metric === effect.metric);
    if (!target) {
      warnings.push(`scenario ${scenario.name}: ${effect.sensor.asset_id}/${effect.sensor.sensor_id} ${effect.metric} is not simulated; skipped "${effect.note}"`);
      continue;
    }
    let resolved: ValueTarget | undefined;
    if (effect.level !== undefined) {
      const rule = candidates.find((r) => ruleMatches(r, target) && r.levels[effect.level!] !== undefined);
      const found = rule ? levelBand(rule, effect.level, effect.direction) : undefined;
      if (rule && found) {
        const band: [number, number] = [Math.max(found.band[0], target.range.min ?? -Infinity), Math.min(found.band[1], target.range.max ?? Infinity)];
        if (band[0] < band[1]) resolved = { kind: 'level', ruleId: rule.id, level: effect.level, threshold: found.threshold, band, value: (band[0] + band[1]) / 2 };
        else warnings.push(`scenario ${scenario.name}: the ${effect.level} band of rule ${rule.id} lies outside the range of metric ${effect.metric}`);
      }
    }
    if (!resolved && effect.offset !== undefined) resolved = { kind: 'offset', offset: effect.offset };
    if (!resolved && effect.value !== undefined) resolved = { kind: 'absolute', value: effect.value };
    if (!resolved) {
      warnings.push(`scenario ${scenario.name}: no rule with level ${effect.level} matches ${target.assetId}/${target.sensorId} ${effect.metric}; skipped "${effect.note}"`);
      continue;
    }
    effects.push({ effect, assetId: target.assetId, sensorId: target.sensorId, metric: effect.metric, target: resolved });
  }
  return { effects, warnings };
}

/**
 * Accelerating creep of a slope, normalised to 0..1 over the ramp: velocity constant for the first
 * 1/12 (the constant-deformation stage), then growing by e every 1/15 of the ramp until 7/12, then
 * growing linearly to 5× that (imminent sliding). Tabulated once: the integral of the velocity.
 */
const CREEP_TABLE: Float64Array = (() => {
  const n = 1200;
  const table = new Float64Array(n + 1);
  const v = (u: number) => {
    if (u < 1 / 12) return 1;
    if (u < 7 / 12) return Math.exp((u - 1 / 12) * 15);
    const vMax = Math.exp(0.5 * 15);
    return vMax * (1 + 4 * ((u - 7 / 12) / (5 / 12)));
  };
  let x = 0;
  for (let i = 1; i <= n; i++) {
    x += (v((i - 0.5) / n) * 1) / n;
    table[i] = x;
  }
  for (let i = 0; i <= n; i++) table[i] = table[i]! / x;
  return table;
})();

/** The fraction 0..1 of the way to the target at fraction `u` 0..1 of the ramp. */
export function shapeAt(shape: Shape, u: number): number {
  if (u <= 0) return 0;
  if (u >= 1) return 1;
  switch (shape) {
    case 'step':
      return 1;
    case 'linear':
      return u;
    case 'creep': {
      const i = u * (CREEP_TABLE.length - 1);
      const lo = Math.floor(i);
      const f = i - lo;
      return CREEP_TABLE[lo]! + f * ((CREEP_TABLE[lo + 1] ?? 1) - CREEP_TABLE[lo]!);
    }
    case 'collapse':
      return (1 - Math.exp(-5 * u)) / (1 - Math.exp(-5));
    case 'saturating':
      return (1 - Math.exp(-3 * u)) / (1 - Math.exp(-3));
  }
}

/** Seconds for the return to normal after a held effect (at least this, or the ramp time). */
const RECOVERY_S = 5;

/**
 * The value of a series under a `value` effect, `elapsedMs` (simulated) after the start of the
 * run, given its everyday value `normal`. While ramping, the value moves from the everyday value
 * towards the target along the effect's shape (so the everyday noise fades out as it gets there);
 * a level target, once reached, wanders inside the middle 60 % of the level's band.
 */
export function effectValue(resolved: ResolvedValueEffect, elapsedMs: number, normal: number, rng: Rng): number {
  const e = elapsedMs / 1000;
  const { at, ramp = 0, hold, shape = ramp > 0 ? 'linear' : 'step' } = resolved.effect;
  if (e < at) return normal;
  const t = resolved.target;
  const goal = t.kind === 'offset' ? normal + t.offset : t.value;
  if (ramp > 0 && e < at + ramp) return normal + (goal - normal) * shapeAt(shape, (e - at) / ramp);
  const held = (): number => {
    if (t.kind !== 'level') return goal;
    const [lo, hi] = t.band;
    const width = hi - lo;
    return clampToRange(t.value + (width / 12) * gaussian(rng), { min: lo + 0.2 * width, max: hi - 0.2 * width });
  };
  if (hold === undefined || e < at + ramp + hold) return held();
  const recovery = Math.max(ramp, RECOVERY_S);
  const r = (e - at - ramp - hold) / recovery;
  if (r < 1) return goal + (normal - goal) * r;
  return normal;
}

/** Rainfall intensity (mm/h) of a rain effect `elapsedS` simulated seconds into the run. */
export function rainIntensity(effect: RainEffect, elapsedS: number): number {
  const s = elapsedS - effect.at;
  const p = effect.profile;
  if (s < 0 || p.length === 0 || s > p[p.length - 1]![0]) return 0;
  for (let i = 1; i < p.length; i++) {
    const [t0, v0] = p[i - 1]!;
    const [t1, v1] = p[i]!;
    if (s <= t1) return v0 + ((v1 - v0) * (s - t0)) / (t1 - t0);
  }
  return p[0]![1];
}

/** Millimetres of rain an effect delivers between two simulated instants (trapezoids per second-ish). */
export function rainBetween(effect: RainEffect, fromS: number, toS: number): number {
  if (toS <= fromS) return 0;
  const steps = Math.max(1, Math.min(600, Math.ceil(toS - fromS)));
  const h = (toS - fromS) / steps;
  let mm = 0;
  for (let i = 0; i < steps; i++) {
    const a = rainIntensity(effect, fromS + i * h);
    const b = rainIntensity(effect, fromS + (i + 1) * h);
    mm += ((a + b) / 2) * (h / 3600);
  }
  return mm;
}
