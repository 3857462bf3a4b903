/**
 * Compiles validated rule configuration (rules/config.ts) into what evaluation runs: match sets,
 * levels most severe first with their hysteresis bands, a level classifier, signals, and the data
 * the alert stage needs (`RuleInfo`). Disabled rules are left out.
 */
import { LEVELS, levelRank, type Level } from '../lib/levels.js';
import type { CompoundRuleConfig, EscalationRef, FlappingConfig, OfflineRuleConfig, RuleConfig, SignalConfig, StaleRuleConfig, ThresholdRuleConfig, Condition } from './config.js';
import { compileLevel, createClassifier, type ClassifierKind, type Comparison, type CompiledLevel, type LevelClassifier } from './level-classifier.js';
import { compileMatch, RuleIndex, type CompiledMatch } from './rule-index.js';
import { signalUnit, windowOf } from './signals.js';
import { DEFAULT_COMPOUND_MESSAGE, DEFAULT_OFFLINE_MESSAGE, DEFAULT_STALE_MESSAGE } from './template.js';
import type { Threshold } from './types.js';

export type RuleKind = 'threshold' | 'stale' | 'offline' | 'compound';

/** What the alert stage needs to know about a rule. */
export interface RuleInfo {
  id: string;
  /** The configured name, or the id when the rule has none. */
  name: string;
  /** The configured message template, or the kind's default (none for threshold rules: see rules/template.ts). */
  message?: string;
  plan: readonly string[];
  escalation?: EscalationRef;
  kind: RuleKind;
}

interface CompiledBase {
  readonly id: string;
  readonly name: string;
  readonly info: RuleInfo;
  readonly flapping: FlappingConfig | undefined;
  /**
   * What the rule's evaluation state depends on. A reload keeps the state of a rule whose
   * signature is unchanged (thresholds, `for`, hysteresis, match and texts may change) and starts
   * a rule afresh when it changed (another kind, signal, level or conditions).
   */
  readonly signature: string;
}

export interface CompiledThresholdRule extends CompiledBase {
  readonly kind: 'threshold';
  readonly match: CompiledMatch;
  /** Most severe first. */
  readonly levels: readonly CompiledLevel[];
  /** Threshold per level rank (index 1 = blue .. 4 = red); null where the rule has no such level. */
  readonly thresholds: readonly (Threshold | null)[];
  readonly forMs: number;
  readonly hysteresis: number;
  readonly classifier: LevelClassifier;
  readonly signal: SignalConfig;
  /** Window length of the signal; 0 for `value`. */
  readonly windowMs: number;
}

export interface CompiledStaleRule extends CompiledBase {
  readonly kind: 'stale';
  readonly match: CompiledMatch;
  readonly staleMs: number;
  readonly level: Level;
  readonly rank: number;
}

export interface CompiledOfflineMatch {
  readonly deviceId?: ReadonlySet<string>;
  readonly assetType?: ReadonlySet<string>;
  readonly assetId?: ReadonlySet<string>;
  readonly street?: ReadonlySet<string>;
}

export interface CompiledOfflineRule extends CompiledBase {
  readonly kind: 'offline';
  readonly match: CompiledOfflineMatch;
  readonly graceMs: number;
  readonly level: Level;
  readonly rank: number;
}

export interface CompiledCondition {
  readonly index: number;
  readonly metric: string;
  readonly sensorIds: ReadonlySet<string> | undefined;
  readonly signal: SignalConfig;
  /** The condition as one level at the rule's rank, with the rule's hysteresis. */
  readonly level: CompiledLevel;
  readonly threshold: Threshold;
}

export interface CompiledCompoundRule extends CompiledBase {
  readonly kind: 'compound';
  readonly mode: 'all' | 'any';
  /** Asset filters, and `metric` = the conditions' metrics (for the rule index). */
  readonly match: CompiledMatch;
  readonly conditions: readonly CompiledCondition[];
  readonly level: Level;
  readonly rank: number;
  readonly forMs: number;
  readonly hysteresis: number;
  /** Longest window among the conditions (0 when all use `value`). */
  readonly windowMs: number;
}

export type CompiledRule = CompiledThresholdRule | CompiledStaleRule | CompiledOfflineRule | CompiledCompoundRule;
/** Rules that readings are run through (offline rules react to device status instead). */
export type ReadingRule = CompiledThresholdRule | CompiledStaleRule | CompiledCompoundRule;

export interface CompileOptions {
  /** How levels are classified; both give the same results. */
  classifier: ClassifierKind;
  /**
   * node-rules only: answer without running the engine when the value keeps the series at the
   * level it holds (quiet readings included; exact: StableGate in level-classifier.ts).
   */
  stableGate: boolean;
  /** Bound of the rule index's per-series candidate cache, and of each RuleState's series slots. */
  cacheLimit: number;
}

export const DEFAULT_COMPILE_OPTIONS: CompileOptions = { classifier: 'node-rules', stableGate: true, cacheLimit: 200_000 };

export class CompiledRuleSet {
  readonly rules: readonly CompiledRule[];
  readonly index: RuleIndex<ReadingRule>;
  readonly staleRules: readonly CompiledStaleRule[];
  readonly offlineRules: readonly CompiledOfflineRule[];
  /** Bound of the per-series caches: the rule index's, and the slots evaluate() keeps in a RuleState. */
  readonly cacheLimit: number;
  private readonly byId: ReadonlyMap<string, CompiledRule>;

  constructor(rules: readonly CompiledRule[], options: CompileOptions) {
    const byId = new Map<string, CompiledRule>();
    for (const rule of rules) {
      if (byId.has(rule.id)) throw new Error(`duplicate rule id "${rule.id}"`);
      byId.set(rule.id, rule);
    }
    this.rules = rules;
    this.byId = byId;
    this.cacheLimit = options.cacheLimit;
    this.index = new RuleIndex(
      rules.filter((r): r is ReadingRule => r.kind !== 'offline'),
      { cacheLimit: options.cacheLimit },
    );
    this.staleRules = rules.filter((r): r is CompiledStaleRule => r.kind === 'stale');
    this.offlineRules = rules.filter((r): r is CompiledOfflineRule => r.kind === 'offline');
  }

  get(ruleId: string): CompiledRule | undefined {
    return this.byId.get(ruleId);
  }

  info(ruleId: string): RuleInfo | undefined {
    return this.byId.get(ruleId)?.info;
  }

  /**
   * The unit of an alert's value: the metric's unit for values and aggregates, per period for
   * rates (`mm/d`), degrees for tangent angles, seconds for stale and offline rules.
   */
  unit(ruleId: string, metric: string, metricUnit: string): string {
    const rule = this.byId.get(ruleId);
    if (!rule) return metricUnit;
    switch (rule.kind) {
      case 'threshold':
        return signalUnit(rule.signal, metricUnit);
      case 'compound': {
        const condition = rule.conditions.find((c) => c.metric === metric);
        return condition ? signalUnit(condition.signal, metricUnit) : metricUnit;
      }
      case 'stale':
      case 'offline':
        return 's';
    }
  }

  get size(): number {
    return this.rules.length;
  }
}

export function compileRules(configs: readonly RuleConfig[], options: Partial<CompileOptions> = {}): CompiledRuleSet {
  const opts = { ...DEFAULT_COMPILE_OPTIONS, ...options };
  const rules = configs.filter((c) => c.enabled).map((c) => compileRule(c, opts));
  return new CompiledRuleSet(rules, opts);
}

export function compileRule(config: RuleConfig, options: Partial<CompileOptions> = {}): CompiledRule {
  switch (config.kind) {
    case 'threshold':
      return compileThresholdRule(config, options);
    case 'stale':
      return compileStaleRule(config);
    case 'offline':
      return compileOfflineRule(config);
    case 'compound':
      return compileCompoundRule(config);
  }
}

function infoOf(config: RuleConfig, kind: RuleKind, defaultMessage: string | undefined): RuleInfo {
  const info: RuleInfo = { id: config.id, name: config.name ?? config.id, plan: config.plan, kind };
  const message = config.message ?? defaultMessage;
  if (message !== undefined) info.message = message;
  if (config.escalation !== undefined) info.escalation = config.escalation;
  return info;
}

function comparisonOf(condition: Condition): [Comparison, Threshold] {
  if ('above' in condition) return ['above', condition.above];
  if ('below' in condition) return ['below', condition.below];
  return ['outside', [condition.outside[0], condition.outside[1]]];
}

export function compileThresholdRule(config: ThresholdRuleConfig, options: Partial<CompileOptions> = {}): CompiledThresholdRule {
  const opts = { ...DEFAULT_COMPILE_OPTIONS, ...options };
  const levels: CompiledLevel[] = [];
  const thresholds: (Threshold | null)[] = [null, null, null, null, null];
  for (const level of [...LEVELS].reverse()) {
    const condition = config.levels[level];
    if (condition === undefined) continue;
    const [comparison, threshold] = comparisonOf(condition);
    const rank = levelRank(level);
    levels.push(compileLevel(level, rank, comparison, threshold, config.hysteresis));
    thresholds[rank] = threshold;
  }
  const signal = config.signal;
  return {
    kind: 'threshold',
    id: config.id,
    name: config.name ?? config.id,
    match: compileMatch(config.match),
    levels,
    thresholds,
    forMs: config.for,
    hysteresis: config.hysteresis,
    classifier: createClassifier(opts.classifier, levels, { stableGate: opts.stableGate }),
    signal,
    windowMs: windowOf(signal),
    info: infoOf(config, 'threshold', undefined),
    flapping: config.flapping,
    signature: `threshold|${JSON.stringify(signal)}`,
  };
}

function compileStaleRule(config: StaleRuleConfig): CompiledStaleRule {
  return {
    kind: 'stale',
    id: config.id,
    name: config.name ?? config.id,
    match: compileMatch(config.match),
    staleMs: config.stale,
    level: config.level,
    rank: levelRank(config.level),
    info: infoOf(config, 'stale', DEFAULT_STALE_MESSAGE),
    flapping: config.flapping,
    signature: `stale|${config.level}`,
  };
}

function compileOfflineRule(config: OfflineRuleConfig): CompiledOfflineRule {
  const set = (values: readonly string[] | undefined) => (values === undefined ? undefined : new Set(values));
  return {
    kind: 'offline',
    id: config.id,
    name: config.name ?? config.id,
    match: { deviceId: set(config.match.device_id), assetType: set(config.match.asset_type), assetId: set(config.match.asset_id), street: set(config.match.street) },
    graceMs: config.offline,
    level: config.level,
    rank: levelRank(config.level),
    info: infoOf(config, 'offline', DEFAULT_OFFLINE_MESSAGE),
    flapping: config.flapping,
    signature: `offline|${config.level}`,
  };
}

function compileCompoundRule(config: CompoundRuleConfig): CompiledCompoundRule {
  const rank = levelRank(config.level);
  const conditions: CompiledCondition[] = config.conditions.map((c, index) => {
    const [comparison, threshold] = comparisonOf(c.condition);
    return {
      index,
      metric: c.metric,
      sensorIds: c.sensor_id === undefined ? undefined : new Set(c.sensor_id),
      signal: c.signal,
      level: compileLevel(config.level, rank, comparison, threshold, c.hysteresis ?? config.hysteresis),
      threshold,
    };
  });
  const metrics = [...new Set(conditions.map((c) => c.metric))];
  const match = compileMatch({ ...config.match, metric: metrics });
  return {
    kind: 'compound',
    id: config.id,
    name: config.name ?? config.id,
    mode: config.mode,
    match,
    conditions,
    level: config.level,
    rank,
    forMs: config.for,
    hysteresis: config.hysteresis,
    windowMs: Math.max(0, ...conditions.map((c) => windowOf(c.signal))),
    info: infoOf(config, 'compound', DEFAULT_COMPOUND_MESSAGE),
    flapping: config.flapping,
    signature: `compound|${config.mode}|${config.level}|${JSON.stringify(config.conditions.map((c) => [c.metric, c.sensor_id ?? null, c.signal]))}`,
  };
}
