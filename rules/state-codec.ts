/**
 * The evaluation state of single assets as plain JSON, and back, exactly: what a partition's new
 * owner needs to continue the windows, `for` runs, hysteresis, stale and offline timers, compound
 * conditions and flapping histories of the assets it takes over (cluster/rule-checkpoints.ts
 * stores it).
 *
 * One AssetSnapshot per asset holds everything RuleState keeps for it:
 * - threshold alerts of its sensors, with their series (levels, `for` runs, windows, floors);
 * - stale entries of its sensors;
 * - offline entries of devices that cover it, reduced to this asset (`position` keeps its place
 *   among the device's assets, so a device's assets imported together fire in the same order);
 * - its compound state per compound rule, and the flapping histories of its alerts.
 * Each record names its rule and the rule's signature: on import, records of rules that are gone
 * or whose evaluation changed since (another kind, signal, level or conditions) are left out, as a
 * reload would drop them. `schedule` is the exporting state's timed-work bounds (due, sweep): an
 * import lowers the importing state's bounds to them, so nothing due is missed, and a fresh state
 * fed every snapshot of an export continues exactly as the exporting one.
 *
 * Numbers that JSON cannot hold (NaN, ±Infinity, -0) are written as strings; windows as base64 of
 * their deflated little-endian doubles (exact, and about a tenth of the raw size). Pure: no I/O, no clock. Not kept: the out-of-order counter (a
 * metric of the instance) and the per-series lookup cache (rebuilt on use).
 */
import { deflateRawSync, inflateRawSync } from 'node:zlib';
import { z } from 'zod';
import { LEVELS, type Level } from '../lib/levels.js';
import type { CompiledRule, CompiledRuleSet } from './compile.js';
import { flapKey } from './flapping.js';
import { MAX_SLOTS, MAX_WINDOW_MS, SampleWindow, type WindowSnapshot } from './signals.js';
import {
  invalidateSlots,
  scheduleDue,
  type AlertState,
  type AssetRef,
  type CompoundState,
  type ConditionSeries,
  type FlapState,
  type OfflineEntry,
  type RuleState,
  type SeriesState,
  type StaleEntry,
} from './state.js';
import type { Threshold } from './types.js';

export const SNAPSHOT_VERSION = 1;

/** A number as JSON: finite numbers as they are, the others as their name. */
export type Num = number | 'NaN' | 'Infinity' | '-Infinity' | '-0';

export interface WindowJson {
  ms: number;
  samples: number;
  sumHi: Num;
  sumLo: Num;
  evictions: number;
  min: Num;
  max: Num;
  /** The slots' 9 doubles each, field by field, little-endian, deflated (raw), base64. */
  slots: string;
}

export interface SeriesJson {
  metric: string;
  level: number;
  /** Per rank 0..4 (0 unused). */
  since: Num[];
  lastTs: Num;
  lastValue: Num;
  window: WindowJson | null;
  floor: number;
  floorUntil: Num;
}

export interface AlertJson {
  rule: string;
  sig: string;
  sensor: string;
  assetType: string;
  street: string;
  level: number;
  multiSeries: boolean;
  series: SeriesJson[];
}

export interface StaleJson {
  rule: string;
  sig: string;
  sensor: string;
  assetType: string;
  street: string;
  metric: string;
  lastSeen: Num;
  fired: boolean;
}

export interface OfflineJson {
  rule: string;
  sig: string;
  device: string;
  position: number;
  assetType: string;
  street: string;
  since: Num;
  fired: boolean;
}

export interface ConditionJson {
  sensor: string;
  window: WindowJson | null;
  lastTs: Num;
  lastValue: Num;
  signal: Num;
  judgedAt: Num;
}

export interface CompoundJson {
  rule: string;
  sig: string;
  assetType: string;
  street: string;
  level: number;
  since: Num;
  floor: number;
  floorUntil: Num;
  /** Per condition index, its sensors in the order they were first seen. */
  conditions: ConditionJson[][];
}

export interface FlapJson {
  rule: string;
  sig: string;
  sensor: string;
  times: Num[];
  flapping: boolean;
  changesWhileFlapping: number;
  lastChangeAt: Num;
  metric: string;
  level: Level | null;
  value: Num;
  threshold: Threshold | null;
}

export interface AssetSnapshot {
  v: typeof SNAPSHOT_VERSION;
  assetId: string;
  schedule: { due: Num; sweep: Num };
  alerts: AlertJson[];
  stale: StaleJson[];
  offline: OfflineJson[];
  compound: CompoundJson[];
  flapping: FlapJson[];
}

export class SnapshotError extends Error {
  readonly code = 'invalid_rule_snapshot';
  constructor(message: string) {
    super(message);
    this.name = 'SnapshotError';
  }

  /** A snapshot that does not decode will not decode on a retry either. */
  canRetry(): boolean {
    return false;
  }
}

// ---- numbers and windows ----

export function num(x: number): Num {
  if (Number.isFinite(x)) return Object.is(x, -0) ? '-0' : x;
  return Number.isNaN(x) ? 'NaN' : x > 0 ? 'Infinity' : '-Infinity';
}

export function unnum(x: Num): number {
  switch (x) {
    case 'NaN':
      return NaN;
    case 'Infinity':
      return Infinity;
    case '-Infinity':
      return -Infinity;
    case '-0':
      return -0;
    default:
      return x;
  }
}

/** Doubles per slot (signals.ts). */
const SLOT_FIELDS = 9;

/**
 * The slots' doubles field by field (every slot's first timestamp, then every last timestamp, …),
 * little-endian, deflated: neighbouring slots' fields are alike (and first = last = min = max in a
 * slot of one reading), so a full window shrinks four- to tenfold (fastest level: a checkpoint is
 * written after every batch).
 */
function packSlots(slots: Float64Array): string {
  const n = slots.length / SLOT_FIELDS;
  const bytes = Buffer.alloc(slots.length * 8);
  for (let i = 0; i < n; i++) for (let k = 0; k < SLOT_FIELDS; k++) bytes.writeDoubleLE(slots[i * SLOT_FIELDS + k]!, (k * n + i) * 8);
  return deflateRawSync(bytes, { level: 1 }).toString('base64');
}

function unpackSlots(packed: string, windowMs: number): Float64Array {
  // At most the slots a window of this length can hold (SampleWindow.restore checks the count again).
  const limit = (Math.ceil(windowMs / Math.max(1, Math.floor(windowMs / MAX_SLOTS))) + 3) * SLOT_FIELDS * 8;
  let bytes: Buffer;
  try {
    bytes = inflateRawSync(Buffer.from(packed, 'base64'), { maxOutputLength: Math.max(limit, 1) });
  } catch (error) {
    throw new SnapshotError(`window slots do not inflate: ${(error as Error).message}`);
  }
  if (bytes.length % (SLOT_FIELDS * 8) !== 0) throw new SnapshotError('window slots are not whole');
  const n = bytes.length / (SLOT_FIELDS * 8);
  const slots = new Float64Array(n * SLOT_FIELDS);
  for (let i = 0; i < n; i++) for (let k = 0; k < SLOT_FIELDS; k++) slots[i * SLOT_FIELDS + k] = bytes.readDoubleLE((k * n + i) * 8);
  return slots;
}

function encodeWindow(w: SampleWindow): WindowJson {
  const s = w.snapshot();
  return {
    ms: s.windowMs,
    samples: s.samples,
    sumHi: num(s.sumHi),
    sumLo: num(s.sumLo),
    evictions: s.evictions,
    min: num(s.min),
    max: num(s.max),
    slots: packSlots(s.slots),
  };
}

function decodeWindow(j: WindowJson, windowMs: number): SampleWindow {
  if (j.ms !== windowMs) throw new SnapshotError(`a window of ${j.ms} ms where the rule has ${windowMs} ms`);
  const slots = unpackSlots(j.slots, j.ms);
  const s: WindowSnapshot = { windowMs: j.ms, samples: j.samples, sumHi: unnum(j.sumHi), sumLo: unnum(j.sumLo), evictions: j.evictions, min: unnum(j.min), max: unnum(j.max), slots };
  try {
    return SampleWindow.restore(s);
  } catch (error) {
    throw new SnapshotError((error as Error).message);
  }
}

// ---- validation ----

const numSchema = z.union([z.number(), z.enum(['NaN', 'Infinity', '-Infinity', '-0'])]);
const id = z.string().max(256);
const rank = z.number().int().min(0).max(4);
const count = z.number().int().min(0);
const windowSchema = z.strictObject({
  ms: z.number().int().min(1).max(MAX_WINDOW_MS),
  samples: count,
  sumHi: numSchema,
  sumLo: numSchema,
  evictions: count,
  min: numSchema,
  max: numSchema,
  slots: z.base64(),
});
const ruleRef = { rule: id, sig: z.string().max(16_384) };
const thresholdSchema = z.union([z.number(), z.tuple([z.number(), z.number()])]);

const snapshotSchema = z.strictObject({
  v: z.literal(SNAPSHOT_VERSION),
  assetId: id,
  schedule: z.strictObject({ due: numSchema, sweep: numSchema }),
  alerts: z.array(
    z.strictObject({
      ...ruleRef,
      sensor: id,
      assetType: id,
      street: id,
      level: rank,
      multiSeries: z.boolean(),
      series: z.array(
        z.strictObject({
          metric: id,
          level: rank,
          since: z.array(numSchema).length(5),
          lastTs: numSchema,
          lastValue: numSchema,
          window: windowSchema.nullable(),
          floor: rank,
          floorUntil: numSchema,
        }),
      ),
    }),
  ),
  stale: z.array(z.strictObject({ ...ruleRef, sensor: id, assetType: id, street: id, metric: id, lastSeen: numSchema, fired: z.boolean() })),
  offline: z.array(z.strictObject({ ...ruleRef, device: id, position: count, assetType: id, street: id, since: numSchema, fired: z.boolean() })),
  compound: z.array(
    z.strictObject({
      ...ruleRef,
      assetType: id,
      street: id,
      level: rank,
      since: numSchema,
      floor: rank,
      floorUntil: numSchema,
      conditions: z.array(z.array(z.strictObject({ sensor: id, window: windowSchema.nullable(), lastTs: numSchema, lastValue: numSchema, signal: numSchema, judgedAt: numSchema }))),
    }),
  ),
  flapping: z.array(
    z.strictObject({
      ...ruleRef,
      sensor: id,
      times: z.array(numSchema),
      flapping: z.boolean(),
      changesWhileFlapping: count,
      lastChangeAt: numSchema,
      metric: id,
      level: z.enum(LEVELS).nullable(),
      value: numSchema,
      threshold: thresholdSchema.nullable(),
    }),
  ),
});

/**
 * Validates a stored snapshot (parsed JSON). Throws SnapshotError for another format version or
 * anything that is not a snapshot of this version.
 */
export function decodeAssetSnapshot(json: unknown): AssetSnapshot {
  const version = typeof json === 'object' && json !== null ? (json as { v?: unknown }).v : undefined;
  if (version !== SNAPSHOT_VERSION) throw new SnapshotError(`rule state snapshot version ${JSON.stringify(version)} is not supported (this build reads version ${SNAPSHOT_VERSION})`);
  const result = snapshotSchema.safeParse(json);
  if (!result.success) {
    const issue = result.error.issues[0]!;
    throw new SnapshotError(`rule state snapshot: ${issue.path.join('.') || '(root)'}: ${issue.message}`);
  }
  return result.data;
}

/** The snapshot holds no state (the asset is quiet). */
export function isEmptySnapshot(s: AssetSnapshot): boolean {
  return s.alerts.length === 0 && s.stale.length === 0 && s.offline.length === 0 && s.compound.length === 0 && s.flapping.length === 0;
}

// ---- export ----

function encodeSeries(metric: string, s: SeriesState): SeriesJson {
  return {
    metric,
    level: s.level,
    since: s.since.map(num),
    lastTs: num(s.lastTs),
    lastValue: num(s.lastValue),
    window: s.window === undefined ? null : encodeWindow(s.window),
    floor: s.floor,
    floorUntil: num(s.floorUntil),
  };
}

/** Everything `state` holds for one asset. Rules are visited in rule set order, so equal states give equal snapshots. */
export function exportAssetState(ruleSet: CompiledRuleSet, state: RuleState, assetId: string): AssetSnapshot {
  return exportAssetStates(ruleSet, state, [assetId])[0]!;
}

/** Per rule, per asset: what is keyed by device (offline) or by asset and sensor together (flapping). */
type ByRuleAsset<T> = Map<string, Map<string, T[]>>;

function push<T>(index: ByRuleAsset<T>, ruleId: string, assetId: string, item: T): void {
  let byAsset = index.get(ruleId);
  if (byAsset === undefined) index.set(ruleId, (byAsset = new Map<string, T[]>()));
  const list = byAsset.get(assetId);
  if (list === undefined) byAsset.set(assetId, [item]);
  else list.push(item);
}

/** One snapshot per asset, in the order given; offline and flapping records are indexed once for all of them. */
export function exportAssetStates(ruleSet: CompiledRuleSet, state: RuleState, assetIds: Iterable<string>): AssetSnapshot[] {
  const wanted = new Set(assetIds);
  const offline: ByRuleAsset<[OfflineEntry, number]> = new Map();
  for (const [ruleId, byDevice] of state.offline) {
    for (const e of byDevice.values())
      e.assets.forEach((a, position) => {
        if (wanted.has(a.assetId)) push(offline, ruleId, a.assetId, [e, position]);
      });
  }
  const flapping: ByRuleAsset<[string, FlapState]> = new Map();
  for (const [ruleId, byKey] of state.flapping) {
    for (const [key, f] of byKey) {
      const cut = key.indexOf('\u0000');
      const assetId = key.slice(0, cut);
      if (wanted.has(assetId)) push(flapping, ruleId, assetId, [key.slice(cut + 1), f]);
    }
  }
  return [...wanted].map((assetId) => exportOne(ruleSet, state, assetId, offline, flapping));
}

function exportOne(ruleSet: CompiledRuleSet, state: RuleState, assetId: string, offline: ByRuleAsset<[OfflineEntry, number]>, flapping: ByRuleAsset<[string, FlapState]>): AssetSnapshot {
  const snapshot: AssetSnapshot = {
    v: SNAPSHOT_VERSION,
    assetId,
    schedule: { due: num(state.due), sweep: num(state.nextSweep) },
    alerts: [],
    stale: [],
    offline: [],
    compound: [],
    flapping: [],
  };
  for (const rule of ruleSet.rules) {
    const ref = { rule: rule.id, sig: rule.signature };
    for (const alert of state.alerts.get(rule.id)?.get(assetId)?.values() ?? []) {
      snapshot.alerts.push({
        ...ref,
        sensor: alert.sensorId,
        assetType: alert.assetType,
        street: alert.street,
        level: alert.level,
        multiSeries: alert.multiSeries,
        series: [...alert.series].map(([metric, s]) => encodeSeries(metric, s)),
      });
    }
    for (const e of state.stale.get(rule.id)?.get(assetId)?.values() ?? []) {
      snapshot.stale.push({ ...ref, sensor: e.sensorId, assetType: e.assetType, street: e.street, metric: e.metric, lastSeen: num(e.lastSeen), fired: e.fired });
    }
    for (const [e, position] of offline.get(rule.id)?.get(assetId) ?? []) {
      const asset = e.assets[position]!;
      snapshot.offline.push({ ...ref, device: e.deviceId, position, assetType: asset.assetType, street: asset.street, since: num(e.since), fired: e.fired });
    }
    const cs = state.compound.get(rule.id)?.get(assetId);
    if (cs !== undefined) {
      snapshot.compound.push({
        ...ref,
        assetType: cs.assetType,
        street: cs.street,
        level: cs.level,
        since: num(cs.since),
        floor: cs.floor,
        floorUntil: num(cs.floorUntil),
        conditions: cs.conditions.map((bySensor) =>
          [...bySensor].map(([sensor, c]) => ({
            sensor,
            window: c.window === undefined ? null : encodeWindow(c.window),
            lastTs: num(c.lastTs),
            lastValue: num(c.lastValue),
            signal: num(c.signal),
            judgedAt: num(c.judgedAt),
          })),
        ),
      });
    }
    for (const [sensor, f] of flapping.get(rule.id)?.get(assetId) ?? []) {
      snapshot.flapping.push({
        ...ref,
        sensor,
        times: f.times.map(num),
        flapping: f.flapping,
        changesWhileFlapping: f.changesWhileFlapping,
        lastChangeAt: num(f.lastChangeAt),
        metric: f.last.metric,
        level: f.last.level,
        value: num(f.last.value),
        threshold: f.last.threshold,
      });
    }
  }
  return snapshot;
}

// ---- drop ----

/** Forgets everything `state` holds for these assets. */
export function dropAssetState(state: RuleState, assetIds: ReadonlySet<string>): void {
  if (assetIds.size === 0) return;
  invalidateSlots(state);
  for (const byAsset of [state.alerts, state.stale, state.compound] as Map<string, Map<string, unknown>>[]) {
    for (const [ruleId, m] of byAsset) {
      for (const assetId of assetIds) m.delete(assetId);
      if (m.size === 0) byAsset.delete(ruleId);
    }
  }
  for (const [ruleId, byDevice] of state.offline) {
    for (const [deviceId, entry] of byDevice) {
      const kept = entry.assets.filter((a) => !assetIds.has(a.assetId));
      if (kept.length === entry.assets.length) continue;
      if (kept.length === 0) byDevice.delete(deviceId);
      else entry.assets = kept;
    }
    if (byDevice.size === 0) state.offline.delete(ruleId);
  }
  for (const [ruleId, byKey] of state.flapping) {
    for (const key of byKey.keys()) if (assetIds.has(key.slice(0, key.indexOf('\u0000')))) byKey.delete(key);
    if (byKey.size === 0) state.flapping.delete(ruleId);
  }
  for (const [metric, byAsset] of state.slots) {
    for (const assetId of assetIds) {
      const bySensor = byAsset.get(assetId);
      if (bySensor === undefined) continue;
      state.slotCount -= bySensor.size;
      byAsset.delete(assetId);
    }
    if (byAsset.size === 0) state.slots.delete(metric);
  }
}

// ---- import ----

function nested<K, V>(map: Map<K, V>, key: K, make: () => V): V {
  let v = map.get(key);
  if (v === undefined) map.set(key, (v = make()));
  return v;
}

/**
 * Loads snapshots into `state`, replacing whatever it held for their assets. Records of rules the
 * rule set no longer has, or whose signature changed, are left out. The snapshots must be valid
 * (decodeAssetSnapshot); a window that does not fit its rule throws SnapshotError before anything
 * is changed.
 */
export function importAssetState(ruleSet: CompiledRuleSet, state: RuleState, snapshots: readonly AssetSnapshot[]): void {
  const current = (ref: { rule: string; sig: string }, kind: CompiledRule['kind']): CompiledRule | undefined => {
    const rule = ruleSet.get(ref.rule);
    return rule !== undefined && rule.kind === kind && rule.signature === ref.sig ? rule : undefined;
  };
  // Build everything first, so a bad snapshot changes nothing.
  const alerts: AlertState[] = [];
  const stale: { ruleId: string; entry: StaleEntry }[] = [];
  const offline: { ruleId: string; j: OfflineJson; asset: AssetRef }[] = [];
  const compound: { ruleId: string; cs: CompoundState }[] = [];
  const flapping: { ruleId: string; key: string; fs: FlapState }[] = [];
  let due = Infinity;
  let sweep = Infinity;
  for (const snap of snapshots) {
    const assetId = snap.assetId;
    due = Math.min(due, unnum(snap.schedule.due));
    sweep = Math.min(sweep, unnum(snap.schedule.sweep));
    for (const a of snap.alerts) {
      const rule = current(a, 'threshold');
      if (rule?.kind !== 'threshold') continue;
      const series = new Map<string, SeriesState>();
      for (const s of a.series) {
        if (s.window !== null && rule.windowMs === 0) throw new SnapshotError(`a window for rule "${rule.id}", which judges values`);
        series.set(s.metric, {
          level: s.level,
          since: s.since.map(unnum),
          lastTs: unnum(s.lastTs),
          lastValue: unnum(s.lastValue),
          window: s.window === null ? undefined : decodeWindow(s.window, rule.windowMs),
          floor: s.floor,
          floorUntil: unnum(s.floorUntil),
        });
      }
      alerts.push({ ruleId: rule.id, assetId, sensorId: a.sensor, assetType: a.assetType, street: a.street, level: a.level, series, multiSeries: a.multiSeries });
    }
    for (const e of snap.stale) {
      const rule = current(e, 'stale');
      if (rule === undefined) continue;
      stale.push({ ruleId: rule.id, entry: { assetId, sensorId: e.sensor, assetType: e.assetType, street: e.street, metric: e.metric, lastSeen: unnum(e.lastSeen), fired: e.fired } });
    }
    for (const e of snap.offline) {
      const rule = current(e, 'offline');
      if (rule === undefined) continue;
      offline.push({ ruleId: rule.id, j: e, asset: { assetId, assetType: e.assetType, street: e.street } });
    }
    for (const c of snap.compound) {
      const rule = current(c, 'compound');
      if (rule?.kind !== 'compound') continue;
      if (c.conditions.length !== rule.conditions.length) throw new SnapshotError(`compound rule "${rule.id}" has ${rule.conditions.length} conditions, the snapshot ${c.conditions.length}`);
      const conditions = c.conditions.map((sensors, index) => {
        const signal = rule.conditions[index]!.signal;
        const bySensor = new Map<string, ConditionSeries>();
        for (const s of sensors) {
          if ((s.window === null) !== (signal.kind === 'value')) throw new SnapshotError(`condition ${index} of compound rule "${rule.id}": window and signal disagree`);
          bySensor.set(s.sensor, {
            window: s.window === null || signal.kind === 'value' ? undefined : decodeWindow(s.window, signal.windowMs),
            lastTs: unnum(s.lastTs),
            lastValue: unnum(s.lastValue),
            signal: unnum(s.signal),
            judgedAt: unnum(s.judgedAt),
          });
        }
        return bySensor;
      });
      compound.push({
        ruleId: rule.id,
        cs: { assetId, assetType: c.assetType, street: c.street, level: c.level, since: unnum(c.since), floor: c.floor, floorUntil: unnum(c.floorUntil), conditions },
      });
    }
    for (const f of snap.flapping) {
      const rule = ruleSet.get(f.rule);
      if (rule === undefined || rule.signature !== f.sig || rule.flapping === undefined) continue;
      flapping.push({
        ruleId: rule.id,
        key: flapKey(assetId, f.sensor),
        fs: {
          times: f.times.map(unnum),
          flapping: f.flapping,
          changesWhileFlapping: f.changesWhileFlapping,
          lastChangeAt: unnum(f.lastChangeAt),
          last: { assetId, sensorId: f.sensor, metric: f.metric, level: f.level, value: unnum(f.value), threshold: f.threshold },
        },
      });
    }
  }

  dropAssetState(state, new Set(snapshots.map((s) => s.assetId)));
  invalidateSlots(state);
  for (const alert of alerts)
    nested(
      nested(state.alerts, alert.ruleId, () => new Map<string, Map<string, AlertState>>()),
      alert.assetId,
      () => new Map<string, AlertState>(),
    ).set(alert.sensorId, alert);
  for (const { ruleId, entry } of stale)
    nested(
      nested(state.stale, ruleId, () => new Map<string, Map<string, StaleEntry>>()),
      entry.assetId,
      () => new Map<string, StaleEntry>(),
    ).set(entry.sensorId, entry);
  // A device's assets in the order the exporting state held them.
  offline.sort((a, b) => a.j.position - b.j.position);
  for (const { ruleId, j, asset } of offline) {
    const byDevice = nested(state.offline, ruleId, () => new Map<string, OfflineEntry>());
    const entry = byDevice.get(j.device);
    if (entry === undefined) byDevice.set(j.device, { deviceId: j.device, assets: [asset], since: unnum(j.since), fired: j.fired });
    else entry.assets.push(asset);
  }
  for (const { ruleId, cs } of compound) nested(state.compound, ruleId, () => new Map<string, CompoundState>()).set(cs.assetId, cs);
  for (const { ruleId, key, fs } of flapping) nested(state.flapping, ruleId, () => new Map<string, FlapState>()).set(key, fs);
  if (snapshots.length > 0) {
    scheduleDue(state, due);
    if (sweep < state.nextSweep) state.nextSweep = sweep;
    scheduleDue(state, state.nextSweep);
  }
}
