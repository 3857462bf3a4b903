/**
 * The evaluation state of a rule set: plain data, owned by the caller (RuleRunner, replay) and
 * changed only by the pure functions of evaluate.ts, tick.ts and reconcile.ts.
 *
 * Memory: state is kept only where a rule needs it.
 * - threshold rules on `value`: a series only while it meets a level or has a pending `for` run;
 * - threshold rules on a windowed signal: a series while its window holds readings (swept by
 *   tick() once the window is empty relative to the platform clock and the series is at no level);
 * - stale: one entry per matched sensor (last reading on the platform clock);
 * - offline: one entry per device while it is offline;
 * - compound: per matched asset, the latest value or window of each condition's sensors;
 * - flapping: the times of the last max_changes + 1 level changes of an alert, within the window.
 */
import { LEVELS, type Level } from '../lib/levels.js';
import type { ReadingRule } from './compile.js';
import type { SampleWindow } from './signals.js';
import type { RuleEvent, Threshold } from './types.js';

export interface SeriesState {
  /** Effective level rank of this metric (0 = none, 1 = blue .. 4 = red). */
  level: number;
  /**
   * Per rank, the ts of the first reading of the current unbroken run meeting that level
   * (NaN = not met by the last reading). Index 0 is unused.
   */
  readonly since: number[];
  lastTs: number;
  /** The last judged value: the reading's for `value`, else the signal's. */
  lastValue: number;
  /** The signal's window; undefined for `value`. */
  window: SampleWindow | undefined;
  /**
   * After a restart, an alert on a windowed signal is restored with an empty window: its level
   * does not drop below `floor` until the window has refilled (`floorUntil`, event time, set at
   * the first reading). 0 = no floor.
   */
  floor: number;
  floorUntil: number;
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
  /** `series` has held more than one series at some time (until then the alert's level is its one series'). */
  multiSeries: boolean;
}

export interface StaleEntry {
  readonly assetId: string;
  readonly sensorId: string;
  readonly assetType: string;
  readonly street: string;
  /** The metric of the sensor's last matched reading (reported on the alert). */
  metric: string;
  /** Platform time of the last matched reading (or when the sensor was first watched). */
  lastSeen: number;
  /** A stale alert is open for it. */
  fired: boolean;
}

export interface AssetRef {
  readonly assetId: string;
  readonly assetType: string;
  readonly street: string;
}

export interface DeviceRef {
  readonly deviceId: string;
  readonly assets: readonly AssetRef[];
}

export interface OfflineEntry {
  readonly deviceId: string;
  /** The device's assets the rule covers: one alert each. */
  assets: AssetRef[];
  /** Platform time the device went offline. */
  since: number;
  fired: boolean;
}

export interface ConditionSeries {
  window: SampleWindow | undefined;
  lastTs: number;
  lastValue: number;
  /** The signal as of `judgedAt` (NaN = not defined yet). */
  signal: number;
  judgedAt: number;
}

export interface CompoundState {
  readonly assetId: string;
  readonly assetType: string;
  readonly street: string;
  /** 0, or the rule's rank while the compound holds. */
  level: number;
  /** ts of the first reading of the current run meeting the compound (NaN = not met). */
  since: number;
  floor: number;
  floorUntil: number;
  /** Per condition (by index): sensor id -> its series. */
  readonly conditions: Map<string, ConditionSeries>[];
}

export interface FlapState {
  /** Platform times of the recent level changes, oldest first, at most max_changes + 1. */
  readonly times: number[];
  flapping: boolean;
  /** Level changes since flapping started. */
  changesWhileFlapping: number;
  lastChangeAt: number;
  /** The last change, repeated by the `ended` event. */
  last: { assetId: string; sensorId: string; metric: string; level: Level | null; value: number; threshold: Threshold | null };
}

export interface EvaluateResult {
  /** The same object that was passed in. */
  readonly state: RuleState;
  /** In rule configuration order. Do not modify (the empty list is shared and frozen). */
  readonly events: readonly RuleEvent[];
}

/**
 * What evaluate() keeps per series (asset, sensor, metric) that has threshold state, so that a
 * reading of it costs three lookups: the rules that match it and, per threshold rule, its alert
 * and series state. A quiet series (no state) has no slot. A cache derived from the rule set and
 * from `RuleState.alerts` (the truth), never consulted by anything else:
 * - `refs[2i]`, `refs[2i + 1]`: the AlertState and SeriesState of `rules[i]` for this series, both
 *   undefined when the series has none for that rule;
 * - evaluate() keeps it in step with what it creates and forgets (dropping a slot left empty);
 *   whatever else changes `alerts` (tick's sweep, reconcileState, restoreAlert) calls
 *   invalidateSlots, and a slot from an older epoch is looked up again before use;
 * - it belongs to one rule set (`RuleState.slotsFor`) and is emptied when evaluate() is given
 *   another, and when it reaches the rule set's cache limit;
 * - a reading whose asset type or street differs from the slot's drops it (catalogue change).
 */
export interface SeriesSlot {
  /** The catalogue attributes the rules were matched on; a reading that disagrees refills the slot. */
  readonly assetType: string;
  readonly street: string;
  readonly rules: readonly ReadingRule[];
  readonly refs: (AlertState | SeriesState | undefined)[];
  epoch: number;
}

export interface RuleState {
  /** Threshold rules: ruleId -> assetId -> sensorId -> alert */
  readonly alerts: Map<string, Map<string, Map<string, AlertState>>>;
  /** Stale rules: ruleId -> assetId -> sensorId -> entry */
  readonly stale: Map<string, Map<string, Map<string, StaleEntry>>>;
  /** Offline rules: ruleId -> deviceId -> entry (only while offline) */
  readonly offline: Map<string, Map<string, OfflineEntry>>;
  /** Compound rules: ruleId -> assetId -> state */
  readonly compound: Map<string, Map<string, CompoundState>>;
  /** Rules with `flapping`: ruleId -> `${assetId}\u0000${sensorId}` -> state */
  readonly flapping: Map<string, Map<string, FlapState>>;
  /** Readings ignored because they were older than their series' last reading. */
  outOfOrder: number;
  /** No timed work (stale, offline, flapping end, sweep) is due before this platform time. */
  due: number;
  /** Platform time of the next sweep of idle windows and flapping records (Infinity: nothing to sweep). */
  nextSweep: number;
  /** The shared result for readings that change nothing. */
  readonly quiet: EvaluateResult;
  /** Per-series cache of evaluate(): metric -> assetId -> sensorId -> slot (see SeriesSlot). */
  readonly slots: Map<string, Map<string, Map<string, SeriesSlot>>>;
  /** Slots held, against `slotLimit` (the rule set's cache limit): past it they are emptied and refilled. */
  slotCount: number;
  slotLimit: number;
  /** Bumped by invalidateSlots: slots of an older epoch are looked up again. */
  slotEpoch: number;
  /** The rule set the slots were filled for. */
  slotsFor: object | undefined;
}

export const NO_EVENTS: readonly RuleEvent[] = Object.freeze([]);

export function createRuleState(): RuleState {
  const state = {
    alerts: new Map(),
    stale: new Map(),
    offline: new Map(),
    compound: new Map(),
    flapping: new Map(),
    outOfOrder: 0,
    due: Infinity,
    nextSweep: Infinity,
    slots: new Map(),
    slotCount: 0,
    slotLimit: 0,
    slotEpoch: 0,
    slotsFor: undefined,
  } as Omit<RuleState, 'quiet'> & { quiet: EvaluateResult };
  state.quiet = Object.freeze({ state, events: NO_EVENTS });
  return state;
}

/** Call after changing `state.alerts` outside evaluate(): its per-series slots are looked up again. */
export function invalidateSlots(state: RuleState): void {
  state.slotEpoch++;
}

/** Lowers the time of the next due timed work. */
export function scheduleDue(state: RuleState, at: number): void {
  if (at < state.due) state.due = at;
}

/** How often idle windows and flapping records are swept, platform time. */
export const SWEEP_INTERVAL_MS = 60_000;

/** Something that may need sweeping was created at platform time `now`: make sure a sweep is due. */
export function scheduleSweep(state: RuleState, now: number): void {
  if (state.nextSweep !== Infinity) return;
  state.nextSweep = now + SWEEP_INTERVAL_MS;
  scheduleDue(state, state.nextSweep);
}

export function newSeries(ts: number, value: number, window: SampleWindow | undefined): SeriesState {
  return { level: 0, since: [NaN, NaN, NaN, NaN, NaN], lastTs: ts, lastValue: value, window, floor: 0, floorUntil: NaN };
}

export function levelOf(rank: number): Level | null {
  return rank === 0 ? null : LEVELS[rank - 1]!;
}

export interface AlertRef {
  ruleId: string;
  assetId: string;
  sensorId: string;
  level: Level;
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

export interface StateStats {
  /** Threshold alerts held (at a level or with series). */
  alerts: number;
  /** Threshold series held. */
  series: number;
  /** Series holding a window (threshold and compound). */
  windows: number;
  /** Window slots in use (9 doubles each). */
  slots: number;
  staleSensors: number;
  offlineDevices: number;
  compoundAssets: number;
  flapping: number;
  outOfOrder: number;
}

/** Counts for metrics, benchmarks and tests. */
export function stateStats(state: RuleState): StateStats {
  const s: StateStats = { alerts: 0, series: 0, windows: 0, slots: 0, staleSensors: 0, offlineDevices: 0, compoundAssets: 0, flapping: 0, outOfOrder: state.outOfOrder };
  for (const byAsset of state.alerts.values()) {
    for (const bySensor of byAsset.values()) {
      for (const alert of bySensor.values()) {
        s.alerts++;
        s.series += alert.series.size;
        for (const series of alert.series.values()) {
          if (series.window) {
            s.windows++;
            s.slots += series.window.slots;
          }
        }
      }
    }
  }
  for (const byAsset of state.stale.values()) for (const bySensor of byAsset.values()) s.staleSensors += bySensor.size;
  for (const byDevice of state.offline.values()) s.offlineDevices += byDevice.size;
  for (const byAsset of state.compound.values()) {
    s.compoundAssets += byAsset.size;
    for (const cs of byAsset.values()) {
      for (const bySensor of cs.conditions) {
        for (const c of bySensor.values()) {
          if (c.window) {
            s.windows++;
            s.slots += c.window.slots;
          }
        }
      }
    }
  }
  for (const byKey of state.flapping.values()) for (const f of byKey.values()) if (f.flapping) s.flapping++;
  return s;
}
