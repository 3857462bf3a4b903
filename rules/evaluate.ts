/**
 * Pure rule evaluation on event time: `evaluate(ruleSet, state, reading) -> { state, events }`.
 * No timers, no I/O, no clock; the reading's `ts` is the only time used.
 *
 * For speed the state is mutated in place and the same object returned; there is no copy of the
 * previous state. Readings that match no rule, or match rules
 * without changing any effective level, return a shared result object with a frozen empty
 * `events` list and allocate nothing.
 *
 * Model (threshold rules):
 * - A series is (rule, asset, sensor, metric). For each, the classifier gives the highest level
 *   met by the value (with hysteresis relative to the level the series holds).
 * - Hysteresis is relative to the effective (fired) level: the held level and those below it
 *   stay met inside the hysteresis band, while a level that is still pending (waiting for `for`)
 *   must meet its plain threshold at every reading.
 * - `for`: a level above the one held becomes effective once it has been met by every reading
 *   of the series for at least forMs of event time: it fires at the first reading whose
 *   ts - (ts of the first reading of the unbroken run meeting it) >= forMs. A reading that no
 *   longer meets it breaks the run. With forMs = 0 it fires on the first reading. A raise waits
 *   `for` for the new level (an intermediate level that has already waited long enough is
 *   taken meanwhile); a drop to a lower level that is still met, and a clear, are immediate.
 *   Continuity is judged at readings only: a gap between two readings that both meet the level
 *   counts as held.
 * - An alert is (rule, asset, sensor); its effective level is the highest among its metrics'
 *   series. An event is emitted whenever that level changes (null = resolved). It names the
 *   metric that holds the new level and that metric's last value (the reading's own when it is
 *   the holder, and always for a clear), with the threshold of the new level (or of the level
 *   left, for a clear).
 * - Out of order: a reading older than the last one seen for its series is ignored entirely (no
 *   change to levels, `for` runs or events) and counted in `state.outOfOrder`; equal timestamps
 *   are processed in arrival order. Once a series has been forgotten (see below) there is no
 *   last timestamp to compare with, so a late reading is then judged like a new one.
 * - Memory: only series that meet some level or have a pending `for` run are kept; a series
 *   back at no level with nothing pending is removed, and so are emptied alerts.
 */
import type { Reading } from '../ingest/reading.js';
import { LEVELS, levelRank, type Level } from '../lib/levels.js';
import type { CompiledRule, CompiledRuleSet } from './compile.js';
import { matches } from './rule-index.js';
import type { RuleEvent } from './types.js';

export interface SeriesState {
  /** Effective level rank of this metric (0 = none, 1 = blue .. 4 = red). */
  level: number;
  /**
   * Per rank, the ts of the first reading of the current unbroken run meeting that level
   * (NaN = not met by the last reading). Index 0 is unused.
   */
  readonly since: number[];
  lastTs: number;
  lastValue: number;
}

export interface AlertState {
  readonly ruleId: string;
  readonly assetId: string;
  readonly sensorId: string;
  /** Kept so a reload can tell whether the rule still matches (reconcileState). */
  readonly assetType: string;
  readonly street: string;
  /** Effective level rank of the alert: the highest of its series (0 = none). */
  level: number;
  /** metric -> series */
  readonly series: Map<string, SeriesState>;
}

export interface EvaluateResult {
  /** The same object that was passed in. */
  readonly state: RuleState;
  /** In rule configuration order. Do not modify (the empty list is shared and frozen). */
  readonly events: readonly RuleEvent[];
}

export interface RuleState {
  /** ruleId -> assetId -> sensorId -> alert */
  readonly alerts: Map<string, Map<string, Map<string, AlertState>>>;
  /** Readings ignored because they were older than their series' last reading. */
  outOfOrder: number;
  /** The shared result for readings that change nothing. */
  readonly quiet: EvaluateResult;
}

const NO_EVENTS: readonly RuleEvent[] = Object.freeze([]);

export function createRuleState(): RuleState {
  const state = { alerts: new Map(), outOfOrder: 0 } as { alerts: RuleState['alerts']; outOfOrder: number; quiet: EvaluateResult };
  state.quiet = Object.freeze({ state, events: NO_EVENTS });
  return state;
}

/**
 * Runs one reading through every rule that matches it. `now` (platform clock) is accepted for
 * rule kinds that need it (stale, offline); threshold rules use only `reading.ts`.
 */
export function evaluate(ruleSet: CompiledRuleSet, state: RuleState, reading: Reading, now?: number): EvaluateResult {
  void now;
  const rules = ruleSet.index.candidates(reading);
  if (rules.length === 0) return state.quiet;
  let events: RuleEvent[] | undefined;
  for (let i = 0; i < rules.length; i++) {
    const event = stepThreshold(rules[i]!, state, reading);
    if (event !== undefined) (events ??= []).push(event);
  }
  return events === undefined ? state.quiet : { state, events };
}

function newSeries(ts: number, value: number): SeriesState {
  return { level: 0, since: [NaN, NaN, NaN, NaN, NaN], lastTs: ts, lastValue: value };
}

function stepThreshold(rule: CompiledRule, state: RuleState, reading: Reading): RuleEvent | undefined {
  const { assetId, sensorId, metric, value, ts } = reading;
  let byAsset = state.alerts.get(rule.id);
  let bySensor = byAsset?.get(assetId);
  let alert = bySensor?.get(sensorId);
  let series = alert?.series.get(metric);
  if (series !== undefined && ts < series.lastTs) {
    state.outOfOrder++;
    return undefined;
  }
  const held = series === undefined ? 0 : series.level;
  const met = rule.classifier.classify(value, held);

  if (series === undefined) {
    if (met === 0) return undefined; // nothing to remember, nothing to say
    if (byAsset === undefined) state.alerts.set(rule.id, (byAsset = new Map()));
    if (bySensor === undefined) byAsset.set(assetId, (bySensor = new Map()));
    if (alert === undefined) {
      alert = { ruleId: rule.id, assetId, sensorId, assetType: reading.assetType, street: reading.street, level: 0, series: new Map() };
      bySensor.set(sensorId, alert);
    }
    series = newSeries(ts, value);
    alert.series.set(metric, series);
  }

  // The unbroken run of each level: starts at its first meeting reading, ends at one that misses.
  const since = series.since;
  for (let rank = 1; rank <= 4; rank++) {
    if (rank > met) since[rank] = NaN;
    else if (Number.isNaN(since[rank])) since[rank] = ts;
  }

  let next: number;
  if (met <= series.level || rule.forMs === 0) {
    next = met;
  } else {
    next = series.level;
    for (const level of rule.levels) {
      if (level.rank > met) continue;
      if (level.rank <= series.level) break;
      if (ts - since[level.rank]! >= rule.forMs) {
        next = level.rank;
        break;
      }
    }
  }
  series.level = next;
  series.lastTs = ts;
  series.lastValue = value;

  let alertLevel = next;
  if (alert!.series.size > 1) {
    for (const s of alert!.series.values()) if (s.level > alertLevel) alertLevel = s.level;
  }

  if (next === 0 && met === 0) {
    alert!.series.delete(metric);
    if (alert!.series.size === 0) {
      bySensor!.delete(sensorId);
      if (bySensor!.size === 0) {
        byAsset!.delete(assetId);
        if (byAsset!.size === 0) state.alerts.delete(rule.id);
      }
    }
  }

  const previous = alert!.level;
  if (alertLevel === previous) return undefined;
  alert!.level = alertLevel;
  if (alertLevel === 0) {
    return { ruleId: rule.id, assetId, sensorId, metric, level: null, value, threshold: rule.thresholds[previous] ?? null, ts };
  }
  // Report the metric that holds the new level: this reading's, or another one of the sensor.
  let holderMetric = metric;
  let holderValue = value;
  if (next !== alertLevel) {
    for (const [m, s] of alert!.series) {
      if (s.level === alertLevel) {
        holderMetric = m;
        holderValue = s.lastValue;
        break;
      }
    }
  }
  return {
    ruleId: rule.id,
    assetId,
    sensorId,
    metric: holderMetric,
    level: LEVELS[alertLevel - 1]!,
    value: holderValue,
    threshold: rule.thresholds[alertLevel] ?? null,
    ts,
  };
}

export interface AlertRef {
  ruleId: string;
  assetId: string;
  sensorId: string;
  level: Level;
}

/**
 * After a reload: forgets the state of rules that are gone (removed or disabled) and of series
 * the remaining rules no longer match. Returns the alerts that were at a level and have been
 * forgotten, so the alert stage can resolve them. An alert that keeps some series but loses the
 * one that held its level is not reported; its next reading emits the change.
 */
export function reconcileState(ruleSet: CompiledRuleSet, state: RuleState): AlertRef[] {
  const dropped: AlertRef[] = [];
  for (const [ruleId, byAsset] of state.alerts) {
    const rule = ruleSet.get(ruleId);
    for (const [assetId, bySensor] of byAsset) {
      for (const [sensorId, alert] of bySensor) {
        if (rule === undefined) alert.series.clear();
        else {
          for (const metric of alert.series.keys()) {
            if (!matches(rule.match, { assetId, sensorId, assetType: alert.assetType, street: alert.street, metric })) alert.series.delete(metric);
          }
        }
        if (alert.series.size > 0) continue;
        bySensor.delete(sensorId);
        if (alert.level > 0) dropped.push({ ruleId, assetId, sensorId, level: LEVELS[alert.level - 1]! });
      }
      if (bySensor.size === 0) byAsset.delete(assetId);
    }
    if (byAsset.size === 0) state.alerts.delete(ruleId);
  }
  return dropped;
}

/** An open alert as the alert stage persisted it, to seed the state after a restart. */
export interface RestoredAlert extends AlertRef {
  assetType: string;
  street: string;
  metric: string;
  /** The last value reported for the alert. */
  value: number;
}

/**
 * Seeds the state with an alert that was open before a restart, so that the next reading below
 * its threshold resolves it (a fresh state would hold no level and stay silent). The level is
 * taken as effective since forever and no reading is treated as out of order.
 */
export function restoreAlert(state: RuleState, open: RestoredAlert): void {
  const rank = levelRank(open.level);
  let byAsset = state.alerts.get(open.ruleId);
  if (byAsset === undefined) state.alerts.set(open.ruleId, (byAsset = new Map()));
  let bySensor = byAsset.get(open.assetId);
  if (bySensor === undefined) byAsset.set(open.assetId, (bySensor = new Map()));
  let alert = bySensor.get(open.sensorId);
  if (alert === undefined) {
    alert = { ruleId: open.ruleId, assetId: open.assetId, sensorId: open.sensorId, assetType: open.assetType, street: open.street, level: 0, series: new Map() };
    bySensor.set(open.sensorId, alert);
  }
  const series = newSeries(-Infinity, open.value);
  series.level = rank;
  for (let r = 1; r <= rank; r++) series.since[r] = -Infinity;
  alert.series.set(open.metric, series);
  if (rank > alert.level) alert.level = rank;
}

/** The alerts currently at a level, for inspection and tests. */
export function activeAlerts(state: RuleState): AlertRef[] {
  const out: AlertRef[] = [];
  for (const byAsset of state.alerts.values()) {
    for (const bySensor of byAsset.values()) {
      for (const alert of bySensor.values()) {
        if (alert.level > 0) out.push({ ruleId: alert.ruleId, assetId: alert.assetId, sensorId: alert.sensorId, level: LEVELS[alert.level - 1]! });
      }
    }
  }
  return out;
}

/** Counts for metrics and tests: alerts and series held, readings ignored as out of order. */
export function stateStats(state: RuleState): { alerts: number; series: number; outOfOrder: number } {
  let alerts = 0;
  let series = 0;
  for (const byAsset of state.alerts.values()) {
    for (const bySensor of byAsset.values()) {
      for (const alert of bySensor.values()) {
        alerts++;
        series += alert.series.size;
      }
    }
  }
  return { alerts, series, outOfOrder: state.outOfOrder };
}
