/**
 * Owns the compiled rule set and its evaluation state, and runs readings, device status and the
 * clock through them. No timers and no clock of its own: the caller passes the platform time
 * (`now`); readings carry their event time.
 */
import type { Reading } from '../ingest/reading.js';
import type { Level } from '../lib/levels.js';
import type { RuleConfig } from './config.js';
import { compileRules, type CompiledRuleSet, type CompileOptions } from './compile.js';
import { createRuleState, evaluate, reconcileState, restoreAlert, stateStats, type AlertRef, type DeviceRef, type RuleState, type StateStats } from './evaluate.js';
import { dueAt, presence, tick, watchSensors, type WatchedSensor } from './tick.js';
import { restoreFlapping } from './reconcile.js';
import { dropAssetState, exportAssetStates, importAssetState, type AssetSnapshot } from './state-codec.js';
import type { RuleEvent, Threshold } from './types.js';

export interface OpenAlertSeed {
  rule_id: string;
  asset_id: string;
  sensor_id: string;
  asset_type: string;
  street: string;
  metric: string;
  level: Level;
  value: number;
}

/** What a reload changed, by rule id, in configuration order. */
export interface ReloadChanges {
  added: string[];
  /** Gone from the configuration: their alerts resolve with reason `rule_removed`. */
  removed: string[];
  /** Still configured but `enabled: false`: reason `rule_disabled`. */
  disabled: string[];
  /** Another kind, signal, level or conditions: state dropped, alerts resolve with `rule_changed`. */
  changed: string[];
  /** Other edits (thresholds, for, hysteresis, match, texts, escalation): state kept. */
  updated: string[];
  /** Alerts of kept rules that the rule no longer covers (match narrowed): resolve with `rule_changed`. */
  unmatched: AlertRef[];
}

export class RuleRunner {
  private ruleSet: CompiledRuleSet;
  private configList: readonly RuleConfig[];
  private readonly state: RuleState = createRuleState();
  private sensors: readonly WatchedSensor[] = [];

  constructor(
    configs: readonly RuleConfig[],
    private readonly options: Partial<CompileOptions> = {},
  ) {
    this.ruleSet = compileRules(configs, options);
    this.configList = configs;
  }

  /** Evaluates readings in order; returns the level changes they cause. `now`: platform time (default: each reading's ts). */
  process(readings: readonly Reading[], now?: number): RuleEvent[] {
    let events: RuleEvent[] | undefined;
    for (let i = 0; i < readings.length; i++) {
      const result = evaluate(this.ruleSet, this.state, readings[i]!, now);
      if (result.events.length > 0) (events ??= []).push(...result.events);
    }
    return events ?? [];
  }

  /** Timed work due at platform time `now` (stale sensors, offline devices, flapping ends). */
  tick(now: number): RuleEvent[] {
    const events = tick(this.ruleSet, this.state, now);
    return events.length === 0 ? [] : [...events];
  }

  /** The earliest platform time at which tick() may have work. */
  dueAt(): number {
    return dueAt(this.state);
  }

  /** A device went offline or came back. */
  presence(device: DeviceRef, status: 'online' | 'offline', now: number): RuleEvent[] {
    const events = presence(this.ruleSet, this.state, device, status, now);
    return events.length === 0 ? [] : [...events];
  }

  /** Configured sensors that stale rules watch from `now` even before they report. */
  watch(sensors: readonly WatchedSensor[], now: number): void {
    this.sensors = sensors;
    watchSensors(this.ruleSet, this.state, sensors, now);
  }

  /** Seeds the state with alerts that were open before a restart, so they can resolve. Returns the rule ids that no longer exist. */
  restore(open: readonly OpenAlertSeed[], now = 0): string[] {
    const unknown = new Set<string>();
    for (const a of open) {
      const rule = this.ruleSet.get(a.rule_id);
      if (!rule) {
        unknown.add(a.rule_id);
        continue;
      }
      restoreAlert(
        this.state,
        { ruleId: a.rule_id, assetId: a.asset_id, sensorId: a.sensor_id, assetType: a.asset_type, street: a.street, metric: a.metric, level: a.level, value: a.value },
        rule,
        now,
      );
    }
    return [...unknown];
  }

  /**
   * Alerts the alert stage still holds as flapping after a restart: flapping again as of `now`.
   * Returns the ones whose rule no longer detects flapping (their hold should be released).
   */
  restoreFlapping(open: ReadonlyArray<OpenAlertSeed & { threshold: Threshold | null }>, now: number): OpenAlertSeed[] {
    const release: OpenAlertSeed[] = [];
    for (const a of open) {
      const restored = restoreFlapping(
        this.ruleSet,
        this.state,
        {
          ruleId: a.rule_id,
          assetId: a.asset_id,
          sensorId: a.sensor_id,
          assetType: a.asset_type,
          street: a.street,
          metric: a.metric,
          level: a.level,
          value: a.value,
          threshold: a.threshold,
        },
        now,
      );
      if (!restored) release.push(a);
    }
    return release;
  }

  /** The evaluation state of these assets as plain JSON (rules/state-codec.ts), one snapshot per asset, empty ones included. */
  exportAssets(assetIds: ReadonlySet<string>): AssetSnapshot[] {
    return exportAssetStates(this.ruleSet, this.state, assetIds);
  }

  /** Replaces the state of the snapshots' assets with theirs (validated ones: decodeAssetSnapshot). */
  importAssets(snapshots: readonly AssetSnapshot[]): void {
    importAssetState(this.ruleSet, this.state, snapshots);
  }

  /** Forgets the state of these assets (a partition handed over). */
  dropAssets(assetIds: ReadonlySet<string>): void {
    dropAssetState(this.state, assetIds);
  }

  /** Swaps in a new rule set, keeping the state of rules whose evaluation did not change. */
  replace(configs: readonly RuleConfig[], now = 0): ReloadChanges {
    const previous = this.ruleSet;
    const next = compileRules(configs, this.options);
    const before = new Map(this.configList.map((c) => [c.id, JSON.stringify(c)]));
    const configured = new Map(configs.map((c) => [c.id, c]));
    const changes: ReloadChanges = { added: [], removed: [], disabled: [], changed: [], updated: [], unmatched: [] };
    for (const rule of previous.rules) {
      const after = next.get(rule.id);
      if (after === undefined) (configured.has(rule.id) ? changes.disabled : changes.removed).push(rule.id);
      else if (after.signature !== rule.signature) changes.changed.push(rule.id);
      else if (before.get(rule.id) !== JSON.stringify(configured.get(rule.id))) changes.updated.push(rule.id);
    }
    for (const rule of next.rules) if (previous.get(rule.id) === undefined) changes.added.push(rule.id);
    this.ruleSet = next;
    this.configList = configs;
    const gone = new Set([...changes.removed, ...changes.disabled, ...changes.changed]);
    changes.unmatched = reconcileState(next, this.state, previous).filter((a) => !gone.has(a.ruleId));
    watchSensors(next, this.state, this.sensors, now);
    return changes;
  }

  get rules(): CompiledRuleSet {
    return this.ruleSet;
  }

  /** The configuration of the rules in force, including disabled ones. */
  get configs(): readonly RuleConfig[] {
    return this.configList;
  }

  stats(): StateStats {
    return stateStats(this.state);
  }
}
