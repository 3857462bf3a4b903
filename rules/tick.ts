/**
 * Timed rule work on the platform clock, pure: `tick(ruleSet, state, now) -> events` and
 * `presence(ruleSet, state, device, status, now) -> events`. The composition root owns the timer
 * that calls tick (and replay calls it at `dueAt(state)` on event time).
 *
 * - stale: a watched sensor not heard from for the rule's duration fires (one alert per sensor);
 *   its next reading resolves it (evaluate.ts);
 * - offline: a device that went offline (status `offline`, last will, disconnect) and is not
 *   back `online` within the grace period fires, one alert per covered asset (sensor_id = the
 *   device id); `online` resolves them. Back within the grace period: nothing;
 * - flapping: a flapping alert stable for one window gets its `ended` event (flapping.ts);
 * - once a minute, idle windows and flapping records are swept (memory).
 *
 * `state.due` is a lower bound of the next time anything can be due (Infinity: nothing), so a tick
 * before it returns at once; replay drives the clock with it.
 */
import type { CompiledRuleSet } from './compile.js';
import { seconds } from './evaluate.js';
import { endFlapping, markFlapping } from './flapping.js';
import { offlineAssets } from './reconcile.js';
import { invalidateSlots, NO_EVENTS, scheduleDue, SWEEP_INTERVAL_MS, type DeviceRef, type OfflineEntry, type RuleState, type StaleEntry } from './state.js';
import { OFFLINE_METRIC, type RuleEvent } from './types.js';

/** The earliest platform time at which tick() may have work. */
export function dueAt(state: RuleState): number {
  return state.due;
}

export function tick(ruleSet: CompiledRuleSet, state: RuleState, now: number): readonly RuleEvent[] {
  if (now < state.due) return NO_EVENTS;
  const events: RuleEvent[] = [];
  let due = Infinity;

  for (const rule of ruleSet.staleRules) {
    const byAsset = state.stale.get(rule.id);
    if (byAsset === undefined) continue;
    for (const bySensor of byAsset.values()) {
      for (const entry of bySensor.values()) {
        if (entry.fired) continue;
        const deadline = entry.lastSeen + rule.staleMs;
        if (now < deadline) {
          if (deadline < due) due = deadline;
          continue;
        }
        entry.fired = true;
        const event: RuleEvent = {
          ruleId: rule.id,
          assetId: entry.assetId,
          sensorId: entry.sensorId,
          metric: entry.metric,
          level: rule.level,
          value: seconds(now - entry.lastSeen),
          threshold: seconds(rule.staleMs),
          ts: now,
        };
        if (rule.flapping !== undefined) markFlapping(rule, state, event, now);
        events.push(event);
      }
    }
  }

  for (const rule of ruleSet.offlineRules) {
    const byDevice = state.offline.get(rule.id);
    if (byDevice === undefined) continue;
    for (const entry of byDevice.values()) {
      if (entry.fired) continue;
      const deadline = entry.since + rule.graceMs;
      if (now < deadline) {
        if (deadline < due) due = deadline;
        continue;
      }
      entry.fired = true;
      for (const asset of entry.assets) {
        const event: RuleEvent = {
          ruleId: rule.id,
          assetId: asset.assetId,
          sensorId: entry.deviceId,
          metric: OFFLINE_METRIC,
          level: rule.level,
          value: seconds(now - entry.since),
          threshold: seconds(rule.graceMs),
          ts: now,
        };
        if (rule.flapping !== undefined) markFlapping(rule, state, event, now);
        events.push(event);
      }
    }
  }

  const flapDue = endFlapping((id) => ruleSet.get(id), state, now, events);
  if (flapDue < due) due = flapDue;

  if (now >= state.nextSweep) {
    sweep(ruleSet, state, now);
    const left = state.alerts.size > 0 || state.compound.size > 0 || state.flapping.size > 0;
    state.nextSweep = left ? now + SWEEP_INTERVAL_MS : Infinity;
  }
  state.due = Math.min(due, state.nextSweep);
  return events.length === 0 ? NO_EVENTS : events;
}

/**
 * A device's status changed (status/ publish, last will, disconnect). Returns the resolutions
 * of its offline alerts when it is back online.
 */
export function presence(ruleSet: CompiledRuleSet, state: RuleState, device: DeviceRef, status: 'online' | 'offline', now: number): readonly RuleEvent[] {
  let events: RuleEvent[] | undefined;
  for (const rule of ruleSet.offlineRules) {
    let byDevice = state.offline.get(rule.id);
    const entry = byDevice?.get(device.deviceId);
    if (status === 'offline') {
      if (entry !== undefined) continue; // already offline: the grace period runs from the first
      const assets = offlineAssets(rule, device.deviceId, device.assets);
      if (assets.length === 0) continue;
      if (byDevice === undefined) state.offline.set(rule.id, (byDevice = new Map<string, OfflineEntry>()));
      byDevice.set(device.deviceId, { deviceId: device.deviceId, assets, since: now, fired: false });
      scheduleDue(state, now + rule.graceMs);
      continue;
    }
    if (entry === undefined) continue;
    byDevice!.delete(device.deviceId);
    if (byDevice!.size === 0) state.offline.delete(rule.id);
    if (!entry.fired) continue;
    for (const asset of entry.assets) {
      const event: RuleEvent = {
        ruleId: rule.id,
        assetId: asset.assetId,
        sensorId: device.deviceId,
        metric: OFFLINE_METRIC,
        level: null,
        value: seconds(now - entry.since),
        threshold: seconds(rule.graceMs),
        ts: now,
        reason: 'device_online',
      };
      if (rule.flapping !== undefined) markFlapping(rule, state, event, now);
      (events ??= []).push(event);
    }
  }
  return events ?? NO_EVENTS;
}

/** A sensor a stale rule should watch before it has reported (from the asset catalogue). */
export interface WatchedSensor {
  assetId: string;
  sensorId: string;
  assetType: string;
  street: string;
  /** The sensor's configured metrics; undefined = any. */
  metrics?: readonly string[];
}

/**
 * Starts watching configured sensors for stale rules as of `now`, so a sensor that never reports
 * after a start (or after the rule is added) is noticed too. Sensors already watched keep their
 * last-heard time.
 */
export function watchSensors(ruleSet: CompiledRuleSet, state: RuleState, sensors: readonly WatchedSensor[], now: number): void {
  for (const rule of ruleSet.staleRules) {
    const m = rule.match;
    for (const s of sensors) {
      if ((m.assetId && !m.assetId.has(s.assetId)) || (m.assetType && !m.assetType.has(s.assetType)) || (m.street && !m.street.has(s.street))) continue;
      if (m.sensorId && !m.sensorId.has(s.sensorId)) continue;
      let metric: string | undefined;
      if (m.metric !== undefined) {
        metric = s.metrics === undefined ? [...m.metric][0] : s.metrics.find((x) => m.metric!.has(x));
        if (metric === undefined) continue; // the sensor has none of the rule's metrics
      } else metric = s.metrics?.[0] ?? '';
      let byAsset = state.stale.get(rule.id);
      if (byAsset === undefined) state.stale.set(rule.id, (byAsset = new Map<string, Map<string, StaleEntry>>()));
      let bySensor = byAsset.get(s.assetId);
      if (bySensor === undefined) byAsset.set(s.assetId, (bySensor = new Map<string, StaleEntry>()));
      if (bySensor.has(s.sensorId)) continue;
      bySensor.set(s.sensorId, { assetId: s.assetId, sensorId: s.sensorId, assetType: s.assetType, street: s.street, metric, lastSeen: now, fired: false });
      scheduleDue(state, now + rule.staleMs);
    }
  }
}

/** Forgets windows and compound series with nothing left in their window, at no level. */
function sweep(ruleSet: CompiledRuleSet, state: RuleState, now: number): void {
  invalidateSlots(state);
  for (const [ruleId, byAsset] of state.alerts) {
    const rule = ruleSet.get(ruleId);
    if (rule === undefined || rule.kind !== 'threshold' || rule.windowMs === 0) continue;
    const cutoff = now - rule.windowMs;
    for (const [assetId, bySensor] of byAsset) {
      for (const [sensorId, alert] of bySensor) {
        for (const [metric, series] of alert.series) {
          if (series.level === 0 && series.floor === 0 && series.lastTs <= cutoff && series.since.every((s, i) => i === 0 || Number.isNaN(s))) alert.series.delete(metric);
        }
        if (alert.series.size === 0 && alert.level === 0) bySensor.delete(sensorId);
      }
      if (bySensor.size === 0) byAsset.delete(assetId);
    }
    if (byAsset.size === 0) state.alerts.delete(ruleId);
  }
  for (const [ruleId, byAsset] of state.compound) {
    const rule = ruleSet.get(ruleId);
    if (rule === undefined || rule.kind !== 'compound') continue;
    for (const [assetId, cs] of byAsset) {
      for (const condition of rule.conditions) {
        if (condition.signal.kind === 'value') continue;
        const cutoff = now - condition.signal.windowMs;
        const bySensor = cs.conditions[condition.index]!;
        for (const [sensorId, s] of bySensor) if (s.lastTs <= cutoff) bySensor.delete(sensorId);
      }
      if (cs.level === 0 && cs.floor === 0 && Number.isNaN(cs.since) && cs.conditions.every((m) => m.size === 0)) byAsset.delete(assetId);
    }
    if (byAsset.size === 0) state.compound.delete(ruleId);
  }
}
