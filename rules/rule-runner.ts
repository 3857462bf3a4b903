/**
 * Owns the compiled rule set and its evaluation state, and runs accepted readings through them.
 * No timers and no clock of its own: time comes in with the readings (event time).
 */
import type { Reading } from '../ingest/reading.js';
import type { Level } from '../lib/levels.js';
import type { RuleConfig } from './config.js';
import { compileRules, type CompiledRuleSet, type CompileOptions } from './compile.js';
import { createRuleState, evaluate, reconcileState, restoreAlert, stateStats, type AlertRef, type RuleState } from './evaluate.js';
import type { RuleEvent } from './types.js';

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

export class RuleRunner {
  private ruleSet: CompiledRuleSet;
  private readonly state: RuleState = createRuleState();

  constructor(
    configs: readonly RuleConfig[],
    private readonly options: Partial<CompileOptions> = {},
  ) {
    this.ruleSet = compileRules(configs, options);
  }

  /** Evaluates readings in order; returns the level changes they cause. */
  process(readings: readonly Reading[]): RuleEvent[] {
    let events: RuleEvent[] | undefined;
    for (let i = 0; i < readings.length; i++) {
      const result = evaluate(this.ruleSet, this.state, readings[i]!);
      if (result.events.length > 0) (events ??= []).push(...result.events);
    }
    return events ?? [];
  }

  /** Seeds the state with alerts that were open before a restart, so they can resolve. */
  restore(open: readonly OpenAlertSeed[]): void {
    for (const a of open) {
      if (!this.ruleSet.get(a.rule_id)) continue;
      restoreAlert(this.state, {
        ruleId: a.rule_id,
        assetId: a.asset_id,
        sensorId: a.sensor_id,
        assetType: a.asset_type,
        street: a.street,
        metric: a.metric,
        level: a.level,
        value: a.value,
      });
    }
  }

  /** Swaps in a new rule set; returns the alerts of rules that no longer exist or match. */
  replace(configs: readonly RuleConfig[]): AlertRef[] {
    this.ruleSet = compileRules(configs, this.options);
    return reconcileState(this.ruleSet, this.state);
  }

  get rules(): CompiledRuleSet {
    return this.ruleSet;
  }

  stats(): { alerts: number; series: number; outOfOrder: number } {
    return stateStats(this.state);
  }
}
