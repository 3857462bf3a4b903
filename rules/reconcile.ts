/**
 * Continuity of the evaluation state across reloads (reconcileState) and restarts (restoreAlert).
 * Pure functions over RuleState.
 */
import { LEVELS, levelRank, type Level } from '../lib/levels.js';
import type { CompiledOfflineRule, CompiledRule, CompiledRuleSet } from './compile.js';
import { matches, type CompiledMatch } from './rule-index.js';
import { SampleWindow } from './signals.js';
import {
  invalidateSlots,
  newSeries,
  scheduleDue,
  scheduleSweep,
  type AlertRef,
  type AlertState,
  type AssetRef,
  type CompoundState,
  type ConditionSeries,
  type FlapState,
  type OfflineEntry,
  type RuleState,
  type StaleEntry,
} from './state.js';
import { flapKey } from './flapping.js';
import { COMPOUND_SENSOR_ID, type Threshold } from './types.js';

function assetMatches(match: CompiledMatch | CompiledOfflineRule['match'], asset: AssetRef): boolean {
  return (
    (match.assetId === undefined || match.assetId.has(asset.assetId)) &&
    (match.assetType === undefined || match.assetType.has(asset.assetType)) &&
    (match.street === undefined || match.street.has(asset.street))
  );
}

/** The assets of a device that an offline rule covers (none when the device is not matched). */
export function offlineAssets(rule: CompiledOfflineRule, deviceId: string, assets: readonly AssetRef[]): AssetRef[] {
  if (rule.match.deviceId !== undefined && !rule.match.deviceId.has(deviceId)) return [];
  return assets.filter((a) => assetMatches(rule.match, a));
}

/**
 * After a reload: forgets the state of rules that are gone (removed or disabled) or whose
 * signature changed (another kind, signal, level or conditions; see compile.ts), and of the
 * series, sensors, devices and assets the remaining rules no longer match. Returns the alerts that
 * were at a level and have been forgotten, so the alert stage can resolve them. A threshold alert
 * that keeps some series but loses the one that held its level is not reported; its next reading
 * emits the change.
 */
export function reconcileState(ruleSet: CompiledRuleSet, state: RuleState, previous?: CompiledRuleSet): AlertRef[] {
  const dropped: AlertRef[] = [];
  invalidateSlots(state);
  const current = (ruleId: string): CompiledRule | undefined => {
    const rule = ruleSet.get(ruleId);
    if (rule === undefined) return undefined;
    const before = previous?.get(ruleId);
    return before !== undefined && before.signature !== rule.signature ? undefined : rule;
  };

  for (const [ruleId, byAsset] of state.alerts) {
    const rule = current(ruleId);
    for (const [assetId, bySensor] of byAsset) {
      for (const [sensorId, alert] of bySensor) {
        if (rule === undefined || rule.kind !== 'threshold') alert.series.clear();
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

  for (const [ruleId, byAsset] of state.stale) {
    const rule = current(ruleId);
    for (const [assetId, bySensor] of byAsset) {
      for (const [sensorId, entry] of bySensor) {
        const keep = rule !== undefined && rule.kind === 'stale' && (rule.match.metric !== undefined ? rule.match.metric.has(entry.metric) : true) && staleMatches(rule.match, entry);
        if (keep) {
          if (!entry.fired) scheduleDue(state, entry.lastSeen + rule.staleMs);
          continue;
        }
        bySensor.delete(sensorId);
        if (entry.fired) dropped.push({ ruleId, assetId, sensorId, level: levelOfRule(previous?.get(ruleId) ?? ruleSet.get(ruleId)) ?? 'yellow' });
      }
      if (bySensor.size === 0) byAsset.delete(assetId);
    }
    if (byAsset.size === 0) state.stale.delete(ruleId);
  }

  for (const [ruleId, byDevice] of state.offline) {
    const rule = current(ruleId);
    for (const [deviceId, entry] of byDevice) {
      const kept = rule !== undefined && rule.kind === 'offline' ? offlineAssets(rule, deviceId, entry.assets) : [];
      if (entry.fired) {
        for (const asset of entry.assets) {
          if (!kept.includes(asset)) dropped.push({ ruleId, assetId: asset.assetId, sensorId: deviceId, level: levelOfRule(previous?.get(ruleId) ?? ruleSet.get(ruleId)) ?? 'yellow' });
        }
      }
      if (kept.length === 0) byDevice.delete(deviceId);
      else {
        entry.assets = kept;
        if (!entry.fired && rule?.kind === 'offline') scheduleDue(state, entry.since + rule.graceMs);
      }
    }
    if (byDevice.size === 0) state.offline.delete(ruleId);
  }

  for (const [ruleId, byAsset] of state.compound) {
    const rule = current(ruleId);
    for (const [assetId, cs] of byAsset) {
      if (rule !== undefined && rule.kind === 'compound' && assetMatches(rule.match, cs)) continue;
      byAsset.delete(assetId);
      if (cs.level > 0) dropped.push({ ruleId, assetId, sensorId: COMPOUND_SENSOR_ID, level: LEVELS[cs.level - 1]! });
    }
    if (byAsset.size === 0) state.compound.delete(ruleId);
  }

  for (const ruleId of state.flapping.keys()) {
    if (ruleSet.get(ruleId)?.flapping === undefined) state.flapping.delete(ruleId);
  }
  return dropped;
}

function staleMatches(match: CompiledMatch, entry: { assetId: string; sensorId: string; assetType: string; street: string }): boolean {
  return assetMatches(match, entry) && (match.sensorId === undefined || match.sensorId.has(entry.sensorId));
}

function levelOfRule(rule: CompiledRule | undefined): Level | undefined {
  return rule !== undefined && rule.kind !== 'threshold' ? rule.level : undefined;
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
 * Seeds the state with an alert that was open before a restart, so that it can resolve (a fresh
 * state would hold no level and stay silent) and does not fire twice:
 * - threshold rules: the level is taken as effective since forever, and no reading is treated as
 *   out of order; the next reading below the threshold resolves it. On a windowed signal the
 *   window restarts empty, so the level is held (not lowered) until the window has refilled;
 * - stale: the sensor counts as silent; its next reading resolves the alert;
 * - offline: the device counts as offline; its `online` resolves the alert;
 * - compound: held like a windowed threshold alert, then judged on fresh readings.
 * `now` is the platform time of the restart (stale and offline entries).
 */
export function restoreAlert(state: RuleState, open: RestoredAlert, rule?: CompiledRule, now = 0): void {
  const rank = levelRank(open.level);
  invalidateSlots(state);
  if (rule?.kind === 'stale') {
    let byAsset = state.stale.get(rule.id);
    if (byAsset === undefined) state.stale.set(rule.id, (byAsset = new Map<string, Map<string, StaleEntry>>()));
    let bySensor = byAsset.get(open.assetId);
    if (bySensor === undefined) byAsset.set(open.assetId, (bySensor = new Map<string, StaleEntry>()));
    bySensor.set(open.sensorId, { assetId: open.assetId, sensorId: open.sensorId, assetType: open.assetType, street: open.street, metric: open.metric, lastSeen: now, fired: true });
    return;
  }
  if (rule?.kind === 'offline') {
    let byDevice = state.offline.get(rule.id);
    if (byDevice === undefined) state.offline.set(rule.id, (byDevice = new Map<string, OfflineEntry>()));
    let entry = byDevice.get(open.sensorId);
    if (entry === undefined) byDevice.set(open.sensorId, (entry = { deviceId: open.sensorId, assets: [], since: now, fired: true }));
    if (!entry.assets.some((a) => a.assetId === open.assetId)) entry.assets.push({ assetId: open.assetId, assetType: open.assetType, street: open.street });
    return;
  }
  if (rule?.kind === 'compound') {
    let byAsset = state.compound.get(rule.id);
    if (byAsset === undefined) state.compound.set(rule.id, (byAsset = new Map<string, CompoundState>()));
    byAsset.set(open.assetId, {
      assetId: open.assetId,
      assetType: open.assetType,
      street: open.street,
      level: rule.rank,
      since: -Infinity,
      floor: rule.rank,
      floorUntil: NaN,
      conditions: rule.conditions.map(() => new Map<string, ConditionSeries>()),
    });
    scheduleSweep(state, now);
    return;
  }
  let byAsset = state.alerts.get(open.ruleId);
  if (byAsset === undefined) state.alerts.set(open.ruleId, (byAsset = new Map<string, Map<string, AlertState>>()));
  let bySensor = byAsset.get(open.assetId);
  if (bySensor === undefined) byAsset.set(open.assetId, (bySensor = new Map<string, AlertState>()));
  let alert = bySensor.get(open.sensorId);
  if (alert === undefined) {
    alert = { ruleId: open.ruleId, assetId: open.assetId, sensorId: open.sensorId, assetType: open.assetType, street: open.street, level: 0, series: new Map(), multiSeries: false };
    bySensor.set(open.sensorId, alert);
  }
  const windowMs = rule?.kind === 'threshold' ? rule.windowMs : 0;
  const series = newSeries(-Infinity, open.value, windowMs > 0 ? new SampleWindow(windowMs) : undefined);
  series.level = rank;
  for (let r = 1; r <= rank; r++) series.since[r] = -Infinity;
  if (windowMs > 0) {
    series.floor = rank;
    scheduleSweep(state, now);
  }
  alert.series.set(open.metric, series);
  if (alert.series.size > 1) alert.multiSeries = true;
  if (rank > alert.level) alert.level = rank;
}

/**
 * After a restart: an alert the alert stage still holds as flapping (it keeps that across
 * restarts) is flapping again here, as of `now`, so its `ended` event comes once it has been
 * stable for one window. Returns false when the rule no longer detects flapping (the caller
 * should release the hold).
 */
export function restoreFlapping(ruleSet: CompiledRuleSet, state: RuleState, alert: RestoredAlert & { threshold: Threshold | null }, now: number): boolean {
  const rule = ruleSet.get(alert.ruleId);
  if (rule?.flapping === undefined) return false;
  let byKey = state.flapping.get(rule.id);
  if (byKey === undefined) state.flapping.set(rule.id, (byKey = new Map<string, FlapState>()));
  byKey.set(flapKey(alert.assetId, alert.sensorId), {
    times: [],
    flapping: true,
    changesWhileFlapping: 0,
    lastChangeAt: now,
    last: { assetId: alert.assetId, sensorId: alert.sensorId, metric: alert.metric, level: alert.level, value: alert.value, threshold: alert.threshold },
  });
  scheduleDue(state, now + rule.flapping.windowMs);
  scheduleSweep(state, now);
  return true;
}
