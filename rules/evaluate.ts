/**
 * Pure rule evaluation on event time: `evaluate(ruleSet, state, reading, now) -> { state, events }`.
 * No timers, no I/O, no clock: the reading's `ts` is the time of threshold and compound rules, and
 * `now` (the platform clock, passed in) only tells stale rules when the sensor was last heard.
 * Timed rule work (stale, offline, the end of flapping) is tick.ts.
 *
 * For speed the state is mutated in place and the same object returned; there is no copy of the
 * previous state. Readings that match no rule, or match rules without changing any effective
 * level, return a shared result object with a frozen empty `events` list.
 *
 * Threshold rules:
 * - A series is (rule, asset, sensor, metric). Its signal is the reading (`value`) or computed
 *   from the series' window (signals.ts); a windowed signal that is not defined yet (a rate over
 *   less than half its window) judges nothing. For each series, the classifier gives the highest
 *   level met by the signal (with hysteresis relative to the level the series holds).
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
 *   metric that holds the new level and that metric's last signal (the reading's own when it is
 *   the holder, and always for a clear), with the threshold of the new level (or of the level
 *   left, for a clear).
 *
 * Stale rules: every matched reading refreshes its sensor's last-heard time (platform clock); a
 * sensor with an open stale alert resolves on its first reading (reason `data_returned`).
 *
 * Compound rules (`all` / `any`), one alert per (rule, asset) with sensor_id `*`:
 * - each condition is met when some sensor of the asset with its metric (and sensor filter)
 *   meets it: its own latest reading or window, judged at the current reading's ts;
 * - `all`: every condition met; `any`: at least one. `for` and hysteresis (on each condition,
 *   while the compound holds) work as for threshold rules; a clear is immediate.
 *
 * Out of order: a reading older than the last one seen for its series is ignored entirely (no
 * change to levels, windows, `for` runs or events) and counted in `state.outOfOrder`; equal
 * timestamps are processed in arrival order. Once a series has been forgotten there is no last
 * timestamp to compare with, so a late reading is then judged like a new one.
 */
import type { Reading } from '../ingest/reading.js';
import { LEVELS } from '../lib/levels.js';
import type { CompiledCompoundRule, CompiledRuleSet, CompiledStaleRule, CompiledThresholdRule, ReadingRule } from './compile.js';
import { markFlapping } from './flapping.js';
import { levelMet } from './level-classifier.js';
import { displaySignal, SampleWindow, windowSignal, windowSignalAt, type WindowedSignal } from './signals.js';
import {
  newSeries,
  scheduleDue,
  scheduleSweep,
  type AlertState,
  type CompoundState,
  type ConditionSeries,
  type EvaluateResult,
  type RuleState,
  type SeriesSlot,
  type SeriesState,
  type StaleEntry,
} from './state.js';
import { COMPOUND_SENSOR_ID, type RuleEvent } from './types.js';

export * from './state.js';
export { reconcileState, restoreAlert, type RestoredAlert } from './reconcile.js';

/**
 * Runs one reading through every rule that matches it. `now` is the platform time the reading
 * arrived (stale rules); it defaults to the reading's ts, as in replay.
 */
export function evaluate(ruleSet: CompiledRuleSet, state: RuleState, reading: Reading, now: number = reading.ts): EvaluateResult {
  const slot = currentSlot(ruleSet, state, reading);
  const rules = slot !== undefined ? slot.rules : ruleSet.index.candidates(reading);
  if (rules.length === 0) return state.quiet;
  let events: RuleEvent[] | undefined;
  for (let i = 0; i < rules.length; i++) {
    const rule = rules[i]!;
    let event: RuleEvent | undefined;
    switch (rule.kind) {
      case 'threshold':
        event = stepThreshold(rule, state, reading, now, slot, rules, i);
        break;
      case 'stale':
        event = touchStale(rule, state, reading, now);
        break;
      case 'compound':
        event = stepCompound(rule, state, reading, now);
        break;
    }
    if (event !== undefined) {
      if (rule.flapping !== undefined) markFlapping(rule, state, event, now);
      (events ??= []).push(event);
    }
  }
  return events === undefined ? state.quiet : { state, events };
}

/**
 * The reading's series slot (state.ts, SeriesSlot) when its series has threshold state: three
 * lookups. Undefined otherwise (a quiet series keeps no slot: the rule index and `state.alerts`
 * answer for it, as cheaply).
 */
function currentSlot(ruleSet: CompiledRuleSet, state: RuleState, reading: Reading): SeriesSlot | undefined {
  if (state.slotsFor !== ruleSet) clearSlots(state, ruleSet);
  const slot = state.slots.get(reading.metric)?.get(reading.assetId)?.get(reading.sensorId);
  if (slot === undefined) return undefined;
  if (slot.assetType !== reading.assetType || slot.street !== reading.street) {
    dropSlot(state, reading); // a catalogue change: the rule index matches the rules again
    return undefined;
  }
  if (slot.epoch !== state.slotEpoch) {
    resolveSlot(state, slot, reading);
    if (isEmpty(slot)) {
      dropSlot(state, reading);
      return undefined;
    }
  }
  return slot;
}

/** The slot of the reading's series, created (and filled from `state.alerts`) when it has none. */
function ensureSlot(state: RuleState, reading: Reading, rules: readonly ReadingRule[]): SeriesSlot {
  const { metric, assetId, sensorId } = reading;
  let byAsset = state.slots.get(metric);
  let bySensor = byAsset?.get(assetId);
  const slot = bySensor?.get(sensorId);
  if (slot !== undefined && slot.rules === rules && slot.assetType === reading.assetType && slot.street === reading.street) {
    if (slot.epoch !== state.slotEpoch) resolveSlot(state, slot, reading);
    return slot;
  }
  if (slot === undefined && state.slotCount >= state.slotLimit) {
    state.slots.clear();
    state.slotCount = 0;
    byAsset = bySensor = undefined;
  }
  const fresh: SeriesSlot = { assetType: reading.assetType, street: reading.street, rules, refs: new Array<AlertState | SeriesState | undefined>(rules.length * 2), epoch: -1 };
  resolveSlot(state, fresh, reading);
  if (byAsset === undefined) state.slots.set(metric, (byAsset = new Map<string, Map<string, SeriesSlot>>()));
  if (bySensor === undefined) byAsset.set(assetId, (bySensor = new Map<string, SeriesSlot>()));
  bySensor.set(sensorId, fresh);
  if (slot === undefined) state.slotCount++;
  return fresh;
}

function dropSlot(state: RuleState, reading: Reading): void {
  const byAsset = state.slots.get(reading.metric);
  const bySensor = byAsset?.get(reading.assetId);
  if (bySensor === undefined || !bySensor.delete(reading.sensorId)) return;
  state.slotCount--;
  if (bySensor.size === 0) {
    byAsset!.delete(reading.assetId);
    if (byAsset!.size === 0) state.slots.delete(reading.metric);
  }
}

function clearSlots(state: RuleState, ruleSet: CompiledRuleSet): void {
  state.slots.clear();
  state.slotCount = 0;
  state.slotsFor = ruleSet;
  state.slotLimit = ruleSet.cacheLimit;
}

function isEmpty(slot: SeriesSlot): boolean {
  for (const ref of slot.refs) if (ref !== undefined) return false;
  return true;
}

/** Looks up the alert and series of each threshold rule of the slot in `state.alerts`. */
function resolveSlot(state: RuleState, slot: SeriesSlot, reading: Reading): void {
  const { rules, refs } = slot;
  for (let i = 0; i < rules.length; i++) {
    const rule = rules[i]!;
    const alert = rule.kind === 'threshold' ? state.alerts.get(rule.id)?.get(reading.assetId)?.get(reading.sensorId) : undefined;
    const series = alert?.series.get(reading.metric);
    refs[2 * i] = series === undefined ? undefined : alert;
    refs[2 * i + 1] = series;
  }
  slot.epoch = state.slotEpoch;
}

/** Adds a new series to `state.alerts` (creating its alert when the sensor has none) and to its slot. */
function attachSeries(rule: CompiledThresholdRule, state: RuleState, reading: Reading, rules: readonly ReadingRule[], i: number, series: SeriesState): AlertState {
  const slot = ensureSlot(state, reading, rules);
  const { assetId, sensorId } = reading;
  let byAsset = state.alerts.get(rule.id);
  if (byAsset === undefined) state.alerts.set(rule.id, (byAsset = new Map<string, Map<string, AlertState>>()));
  let bySensor = byAsset.get(assetId);
  if (bySensor === undefined) byAsset.set(assetId, (bySensor = new Map<string, AlertState>()));
  let alert = bySensor.get(sensorId);
  if (alert === undefined) {
    alert = { ruleId: rule.id, assetId, sensorId, assetType: reading.assetType, street: reading.street, level: 0, series: new Map(), multiSeries: false };
    bySensor.set(sensorId, alert);
  }
  alert.series.set(reading.metric, series);
  if (alert.series.size > 1) alert.multiSeries = true;
  slot.refs[2 * i] = alert;
  slot.refs[2 * i + 1] = series;
  return alert;
}

/** Forgets a series (and its alert once it has none) in `state.alerts`, and in its slot (and the slot once it holds nothing). */
function detachSeries(rule: CompiledThresholdRule, state: RuleState, reading: Reading, i: number, alert: AlertState): void {
  const slot = state.slots.get(reading.metric)?.get(reading.assetId)?.get(reading.sensorId);
  if (slot !== undefined) {
    if (slot.refs[2 * i + 1] === alert.series.get(reading.metric)) slot.refs[2 * i] = slot.refs[2 * i + 1] = undefined;
    else slot.epoch = -1; // not the slot this reading was judged with: look it up again
    if (isEmpty(slot)) dropSlot(state, reading);
  }
  alert.series.delete(reading.metric);
  if (alert.series.size > 0) return;
  const byAsset = state.alerts.get(rule.id)!;
  const bySensor = byAsset.get(reading.assetId)!;
  bySensor.delete(reading.sensorId);
  if (bySensor.size === 0) {
    byAsset.delete(reading.assetId);
    if (byAsset.size === 0) state.alerts.delete(rule.id);
  }
}

function stepThreshold(
  rule: CompiledThresholdRule,
  state: RuleState,
  reading: Reading,
  now: number,
  slot: SeriesSlot | undefined,
  rules: readonly ReadingRule[],
  i: number,
): RuleEvent | undefined {
  const { assetId, sensorId, metric, ts } = reading;
  let alert: AlertState | undefined;
  let series: SeriesState | undefined;
  if (slot !== undefined) {
    alert = slot.refs[2 * i] as AlertState | undefined;
    series = slot.refs[2 * i + 1] as SeriesState | undefined;
  } else {
    // No slot when the reading began: the series had no state (or the slots were emptied); an
    // earlier rule of this reading may have added some since, so ask `state.alerts`.
    alert = state.alerts.get(rule.id)?.get(assetId)?.get(sensorId);
    series = alert?.series.get(metric);
  }
  if (series !== undefined && ts < series.lastTs) {
    state.outOfOrder++;
    return undefined;
  }
  const windowed = rule.windowMs > 0;
  let value = reading.value;
  if (windowed) {
    if (series === undefined) {
      series = newSeries(ts, NaN, new SampleWindow(rule.windowMs));
      alert = attachSeries(rule, state, reading, rules, i, series);
      scheduleSweep(state, now);
    }
    const window = series.window ?? (series.window = new SampleWindow(rule.windowMs));
    window.push(ts, value);
    window.prune(ts);
    series.lastTs = ts;
    value = windowSignal(rule.signal as WindowedSignal, window);
    if (Number.isNaN(value)) return undefined; // not defined yet: nothing is judged
  }
  const held = series === undefined ? 0 : series.level;
  const met = rule.classifier.classify(value, held);

  if (series === undefined) {
    if (met === 0) return undefined; // nothing to remember, nothing to say
    series = newSeries(ts, value, undefined);
    alert = attachSeries(rule, state, reading, rules, i, series);
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
  if (series.floor > 0) {
    if (Number.isNaN(series.floorUntil)) series.floorUntil = ts + rule.windowMs;
    if (ts < series.floorUntil) {
      if (next < series.floor) next = series.floor;
    } else series.floor = 0;
  }
  series.level = next;
  series.lastTs = ts;
  series.lastValue = value;

  let alertLevel = next;
  if (alert!.multiSeries && alert!.series.size > 1) {
    for (const s of alert!.series.values()) if (s.level > alertLevel) alertLevel = s.level;
  }

  if (!windowed && next === 0 && met === 0) detachSeries(rule, state, reading, i, alert!);

  const previous = alert!.level;
  if (alertLevel === previous) return undefined;
  alert!.level = alertLevel;
  if (alertLevel === 0) {
    return { ruleId: rule.id, assetId, sensorId, metric, level: null, value: displaySignal(rule.signal, value), threshold: rule.thresholds[previous] ?? null, ts };
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
    value: displaySignal(rule.signal, holderValue),
    threshold: rule.thresholds[alertLevel] ?? null,
    ts,
  };
}

function touchStale(rule: CompiledStaleRule, state: RuleState, reading: Reading, now: number): RuleEvent | undefined {
  const { assetId, sensorId } = reading;
  let byAsset = state.stale.get(rule.id);
  if (byAsset === undefined) state.stale.set(rule.id, (byAsset = new Map<string, Map<string, StaleEntry>>()));
  let bySensor = byAsset.get(assetId);
  if (bySensor === undefined) byAsset.set(assetId, (bySensor = new Map<string, StaleEntry>()));
  const entry = bySensor.get(sensorId);
  if (entry === undefined) {
    bySensor.set(sensorId, { assetId, sensorId, assetType: reading.assetType, street: reading.street, metric: reading.metric, lastSeen: now, fired: false });
    scheduleDue(state, now + rule.staleMs);
    return undefined;
  }
  const silentSince = entry.lastSeen;
  if (now > entry.lastSeen) entry.lastSeen = now;
  entry.metric = reading.metric;
  if (!entry.fired) return undefined;
  entry.fired = false;
  scheduleDue(state, entry.lastSeen + rule.staleMs);
  return {
    ruleId: rule.id,
    assetId,
    sensorId,
    metric: reading.metric,
    level: null,
    value: seconds(now - silentSince),
    threshold: seconds(rule.staleMs),
    ts: now,
    reason: 'data_returned',
  };
}

/** Milliseconds as seconds, to the millisecond. */
export function seconds(ms: number): number {
  return Math.max(0, Math.round(ms)) / 1000;
}

function stepCompound(rule: CompiledCompoundRule, state: RuleState, reading: Reading, now: number): RuleEvent | undefined {
  const { assetId, sensorId, metric, ts, value } = reading;
  let byAsset = state.compound.get(rule.id);
  let cs = byAsset?.get(assetId);
  let matched = false;
  let own: { index: number; signal: number } | undefined;
  for (const c of rule.conditions) {
    if (c.metric !== metric || (c.sensorIds !== undefined && !c.sensorIds.has(sensorId))) continue;
    matched = true;
    if (cs === undefined) {
      if (byAsset === undefined) state.compound.set(rule.id, (byAsset = new Map<string, CompoundState>()));
      cs = newCompound(rule, reading);
      byAsset.set(assetId, cs);
      scheduleSweep(state, now);
    }
    const bySensor = cs.conditions[c.index]!;
    let s = bySensor.get(sensorId);
    if (s !== undefined && ts < s.lastTs) continue;
    if (s === undefined) {
      s = { window: c.signal.kind === 'value' ? undefined : new SampleWindow(c.signal.windowMs), lastTs: ts, lastValue: value, signal: NaN, judgedAt: NaN };
      bySensor.set(sensorId, s);
    }
    s.lastTs = ts;
    s.lastValue = value;
    if (s.window !== undefined) {
      s.window.push(ts, value);
      s.window.prune(ts);
      s.signal = windowSignal(c.signal as WindowedSignal, s.window);
    } else s.signal = value;
    s.judgedAt = ts;
    own ??= { index: c.index, signal: s.signal };
  }
  if (!matched || cs === undefined) return undefined;
  if (own === undefined) {
    state.outOfOrder++;
    return undefined;
  }

  const held = cs.level > 0 ? rule.rank : 0;
  let met = rule.mode === 'all';
  let firstMet: { index: number; signal: number } | undefined;
  for (const c of rule.conditions) {
    const signal = conditionSignal(rule, c.index, cs, ts, held);
    const ok = !Number.isNaN(signal);
    if (ok) firstMet ??= { index: c.index, signal };
    if (rule.mode === 'all' && !ok) {
      met = false;
      break;
    }
    if (rule.mode === 'any' && ok) {
      met = true;
      break;
    }
  }

  let next = cs.level;
  if (met) {
    if (Number.isNaN(cs.since)) cs.since = ts;
    if (cs.level === 0 && ts - cs.since >= rule.forMs) next = rule.rank;
  } else {
    cs.since = NaN;
    next = 0;
  }
  if (cs.floor > 0) {
    if (Number.isNaN(cs.floorUntil)) cs.floorUntil = ts + rule.windowMs;
    if (ts < cs.floorUntil) {
      if (next < cs.floor) next = cs.floor;
    } else cs.floor = 0;
  }
  if (next === cs.level) return undefined;
  cs.level = next;
  // Report the reading's condition when its signal is defined, else the first condition met.
  const report = !Number.isNaN(own.signal) ? own : (firstMet ?? own);
  const condition = rule.conditions[report.index]!;
  const reported = Number.isNaN(report.signal) ? value : displaySignal(condition.signal, report.signal);
  return {
    ruleId: rule.id,
    assetId,
    sensorId: COMPOUND_SENSOR_ID,
    metric: condition.metric,
    level: next === 0 ? null : rule.level,
    value: reported,
    threshold: condition.threshold,
    ts,
  };
}

function newCompound(rule: CompiledCompoundRule, reading: Reading): CompoundState {
  return {
    assetId: reading.assetId,
    assetType: reading.assetType,
    street: reading.street,
    level: 0,
    since: NaN,
    floor: 0,
    floorUntil: NaN,
    conditions: rule.conditions.map(() => new Map<string, ConditionSeries>()),
  };
}

/**
 * The signal of the first of the asset's sensors that meets condition `index` at event time ts,
 * or NaN when none does.
 */
function conditionSignal(rule: CompiledCompoundRule, index: number, cs: CompoundState, ts: number, held: number): number {
  const condition = rule.conditions[index]!;
  for (const s of cs.conditions[index]!.values()) {
    let signal: number;
    if (s.window === undefined) signal = s.lastValue;
    else if (s.judgedAt === ts) signal = s.signal;
    else signal = windowSignalAt(condition.signal as WindowedSignal, s.window, ts);
    if (!Number.isNaN(signal) && levelMet(condition.level, signal, held)) return signal;
  }
  return NaN;
}
