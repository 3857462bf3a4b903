/**
 * Simulation scenarios: what happens on top of the everyday signals, and when.
 *
 * An incident does not carry hard-coded values. It names a metric and the warning level it should
 * reach; the target value is derived from the configured rule that matches the chosen sensor, so
 * a scenario keeps firing the level it promises when thresholds are tuned, and works for any
 * configuration that has a rule for the metric. `prefer` picks the demo configuration's sensor
 * when it exists; otherwise the first sensor a rule with that level matches is used.
 */
import { LEVELS, type Level } from '../lib/levels.js';
import type { WatchpostConfig } from '../server/config/schema.js';
import type { Condition, ThresholdRuleConfig } from '../rules/config.js';
import { clampToRange, gaussian, type MetricRange, type Rng } from './signals.js';

export interface IncidentSpec {
  /** Seconds after the start of the run. */
  at: number;
  metric: string;
  /** The warning level the signal is driven into (and held in, below the next level). */
  level: Level;
  prefer?: { asset_id: string; sensor_id?: string };
  /** Seconds to move from the everyday value to the target; 0 / absent = a step. */
  ramp?: number;
  /** Seconds at the target before returning to normal; absent = until the run ends. */
  hold?: number;
  /** For `outside` rules: leave the band upwards (default) or downwards. */
  direction?: 'high' | 'low';
  note: string;
}

export interface ScenarioSpec {
  name: string;
  description: string;
  /** The alerts the demo configuration's rules raise, for people reading logs and the README. */
  expected: readonly string[];
  incidents: readonly IncidentSpec[];
}

/**
 * 水径村 (Buji) is an urban village on a hillside at the far end of its supply zone: the hydrant
 * behind the village (hp-02) reads 0.21–0.24 MPa all day. That is above the GB 50974 minimum
 * (0.14 MPa) but below the water utility's 0.25 MPa warning level — a standing yellow alert that
 * the district knows about and that a fire crew must plan around.
 */
const CHRONIC_LOW_HYDRANT: IncidentSpec = {
  at: 0,
  metric: 'hydrant_pressure',
  level: 'yellow',
  prefer: { asset_id: 'lg-hydrant-002', sensor_id: 'hp-02' },
  note: '水径村 hp-02: chronic low hydrant pressure (urban village at the end of the supply zone)',
};

export const SCENARIOS: Readonly<Record<string, ScenarioSpec>> = {
  // Expected alerts with config-demo (rate 1/s):
  //   ~5 s   hydrant-pressure-low  yellow  lg-hydrant-002 / hp-02   (for: 5s; stays open)
  // Nothing else: every other signal stays inside every rule's quiet band.
  normal: {
    name: 'normal',
    description: 'everyday operation of every asset, plus the one chronic low-pressure hydrant in 水径村',
    expected: ['~5 s: hydrant-pressure-low yellow on lg-hydrant-002/hp-02 (chronic; stays open)'],
    incidents: [CHRONIC_LOW_HYDRANT],
  },

  // Expected alerts with config-demo (rate 1/s), in order of firing (seen against the platform):
  //   ~2 s   fire-alarm           red      lg-building-001 / smoke-18f-01   (smoke detector, for: 0s)
  //   ~4 s   fire-alarm           red      lg-building-001 / panel          (panel fire alarm)
  //   ~5 s   hydrant-pressure-low yellow   lg-hydrant-002 / hp-02           (as in normal)
  //   ~8 s   gas-leak             blue     lg-gas-001 / vw-02; raised to orange ~13 s and to red
  //                                         ~19 s (LEL ramps to ~55 %LEL over 15 s from 3 s)
  //   ~19 s  bridge-strain        yellow, orange ~20 s   lg-bridge-001 / strain-01 (for: 10s);
  //                                         the overload ends at 40 s, resolved ~43 s
  //   ~26 s  gas-pressure         yellow   lg-gas-001 / pt-02 (end-of-line pressure 0.21 MPa)
  //   ~46 s  slope-pore-pressure  yellow   lg-slope-001 / piezo-01 (for: 30s)
  incident: {
    name: 'incident',
    description: 'normal, then a fire alarm in a high-rise, a gas leak, a bridge overload and rising groundwater',
    expected: [
      '~2 s: fire-alarm red on lg-building-001/smoke-18f-01',
      '~4 s: fire-alarm red on lg-building-001/panel',
      '~5 s: hydrant-pressure-low yellow on lg-hydrant-002/hp-02',
      '~8 s: gas-leak blue on lg-gas-001/vw-02, orange ~13 s, red ~19 s',
      '~19 s: bridge-strain yellow then orange on lg-bridge-001/strain-01, resolved ~43 s',
      '~26 s: gas-pressure yellow on lg-gas-001/pt-02',
      '~46 s: slope-pore-pressure yellow on lg-slope-001/piezo-01',
    ],
    incidents: [
      CHRONIC_LOW_HYDRANT,
      {
        at: 2,
        metric: 'smoke',
        level: 'red',
        prefer: { asset_id: 'lg-building-001', sensor_id: 'smoke-18f-01' },
        note: '18F lift lobby smoke detector alarms',
      },
      {
        at: 4,
        metric: 'fire_alarm',
        level: 'red',
        prefer: { asset_id: 'lg-building-001', sensor_id: 'panel' },
        note: 'fire alarm panel confirms the alarm',
      },
      {
        at: 3,
        metric: 'gas_lel',
        level: 'red',
        ramp: 15,
        prefer: { asset_id: 'lg-gas-001', sensor_id: 'vw-02' },
        note: 'gas leaking into valve well 2#: 10 -> 25 -> 50 %LEL',
      },
      {
        at: 3,
        metric: 'pressure',
        level: 'yellow',
        direction: 'low',
        ramp: 15,
        prefer: { asset_id: 'lg-gas-001', sensor_id: 'pt-02' },
        note: 'end-of-line gas pressure falls with the leak',
      },
      {
        at: 5,
        metric: 'strain',
        level: 'orange',
        ramp: 5,
        hold: 30,
        prefer: { asset_id: 'lg-bridge-001', sensor_id: 'strain-01' },
        note: 'overloaded truck convoy held on the mid-span for 30 s',
      },
      {
        at: 8,
        metric: 'pore_pressure',
        level: 'yellow',
        ramp: 10,
        prefer: { asset_id: 'lg-slope-001', sensor_id: 'piezo-01' },
        note: 'groundwater rising at the slope toe after heavy rain',
      },
    ],
  },

  // Expected alerts: none. For soak and load runs where alerts would only be noise.
  quiet: {
    name: 'quiet',
    description: 'everyday operation only; no rule should fire',
    expected: [],
    incidents: [],
  },
};

export const DEFAULT_SCENARIO = 'normal';

/** One simulated (asset, sensor, metric) series, as the resolver sees it. */
export interface SeriesTarget {
  assetId: string;
  assetType: string;
  street: string;
  sensorId: string;
  metric: string;
  range: MetricRange;
}

export interface ResolvedIncident {
  spec: IncidentSpec;
  assetId: string;
  sensorId: string;
  metric: string;
  ruleId: string;
  level: Level;
  threshold: number | [number, number];
  /** Values strictly inside (lo, hi) meet `level` and no higher level of the rule. */
  band: [number, number];
  target: number;
}

export function ruleMatches(rule: ThresholdRuleConfig, t: SeriesTarget): boolean {
  const m = rule.match;
  return (
    rule.enabled &&
    (m.metric === undefined || m.metric.includes(t.metric)) &&
    (m.asset_type === undefined || m.asset_type.includes(t.assetType)) &&
    (m.asset_id === undefined || m.asset_id.includes(t.assetId)) &&
    (m.sensor_id === undefined || m.sensor_id.includes(t.sensorId)) &&
    (m.street === undefined || m.street.includes(t.street))
  );
}

/** The band of values that meets `level` of `rule` but not the next higher level. */
export function levelBand(rule: ThresholdRuleConfig, level: Level, direction: 'high' | 'low' = 'high'): { band: [number, number]; threshold: number | [number, number] } | undefined {
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

/**
 * Binds a scenario's incidents to sensors and rules of the configuration. Incidents that find no
 * sensor with a matching rule, or whose band lies outside the metric's range, are skipped with a
 * warning.
 */
export function resolveScenario(
  scenario: ScenarioSpec,
  rules: WatchpostConfig['rules'],
  series: readonly SeriesTarget[],
): { incidents: ResolvedIncident[]; warnings: string[] } {
  const incidents: ResolvedIncident[] = [];
  const warnings: string[] = [];
  for (const spec of scenario.incidents) {
    const candidates: Array<{ target: SeriesTarget; rule: ThresholdRuleConfig }> = [];
    for (const target of series) {
      if (target.metric !== spec.metric) continue;
      const rule = rules.find((r) => ruleMatches(r, target) && r.levels[spec.level] !== undefined);
      if (rule) candidates.push({ target, rule });
    }
    const preferred = spec.prefer
      ? candidates.find((c) => c.target.assetId === spec.prefer!.asset_id && (spec.prefer!.sensor_id === undefined || c.target.sensorId === spec.prefer!.sensor_id))
      : undefined;
    const chosen = preferred ?? candidates[0];
    if (!chosen) {
      warnings.push(`scenario ${scenario.name}: no simulated sensor of metric ${spec.metric} has a rule with level ${spec.level}; skipped "${spec.note}"`);
      continue;
    }
    const { band: rawBand, threshold } = levelBand(chosen.rule, spec.level, spec.direction)!;
    const range = chosen.target.range;
    const band: [number, number] = [Math.max(rawBand[0], range.min ?? -Infinity), Math.min(rawBand[1], range.max ?? Infinity)];
    if (!(band[0] < band[1])) {
      warnings.push(`scenario ${scenario.name}: the ${spec.level} band of rule ${chosen.rule.id} lies outside the range of metric ${spec.metric}; skipped "${spec.note}"`);
      continue;
    }
    incidents.push({
      spec,
      assetId: chosen.target.assetId,
      sensorId: chosen.target.sensorId,
      metric: spec.metric,
      ruleId: chosen.rule.id,
      level: spec.level,
      threshold,
      band,
      target: (band[0] + band[1]) / 2,
    });
  }
  return { incidents, warnings };
}

/** Seconds for the return to normal after a held incident (at least this, or the ramp time). */
const RECOVERY_S = 5;

/**
 * The value of a series under an incident, `elapsedMs` after the start of the run. Before and
 * after the incident it is the everyday value `normal`; while held it wanders around the target,
 * always inside the middle 60 % of the level's band.
 */
export function incidentValue(incident: ResolvedIncident, elapsedMs: number, normal: number, rng: Rng): number {
  const e = elapsedMs / 1000;
  const { at, ramp = 0, hold } = incident.spec;
  if (e < at) return normal;
  const [lo, hi] = incident.band;
  const width = hi - lo;
  if (e < at + ramp) return normal + (incident.target - normal) * ((e - at) / ramp);
  const held = clampToRange(incident.target + (width / 12) * gaussian(rng), { min: lo + 0.2 * width, max: hi - 0.2 * width });
  if (hold === undefined || e < at + ramp + hold) return held;
  const recovery = Math.max(ramp, RECOVERY_S);
  const r = (e - at - ramp - hold) / recovery;
  if (r < 1) return incident.target + (normal - incident.target) * r;
  return normal;
}
