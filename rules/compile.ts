/**
 * Compiles validated rule configuration (rules/config.ts) into what evaluation runs: match sets,
 * levels most severe first with their hysteresis bands, a level classifier, and the data the
 * alert stage needs (`RuleInfo`). Disabled rules are left out.
 */
import { LEVELS, levelRank, type Level } from '../lib/levels.js';
import type { EscalationRef, RuleConfig, ThresholdRuleConfig } from './config.js';
import { compileLevel, createClassifier, type ClassifierKind, type Comparison, type CompiledLevel, type LevelClassifier } from './level-classifier.js';
import { compileMatch, RuleIndex, type CompiledMatch } from './rule-index.js';
import type { Threshold } from './types.js';

/** What the alert stage needs to know about a rule. */
export interface RuleInfo {
  id: string;
  /** The configured name, or the id when the rule has none. */
  name: string;
  /** The configured message template, if any (see rules/template.ts for the default). */
  message?: string;
  plan: readonly string[];
  escalation?: EscalationRef;
}

export interface CompiledThresholdRule {
  readonly kind: 'threshold';
  readonly id: string;
  readonly name: string;
  readonly match: CompiledMatch;
  /** Most severe first. */
  readonly levels: readonly CompiledLevel[];
  /** Threshold per level rank (index 1 = blue .. 4 = red); null where the rule has no such level. */
  readonly thresholds: readonly (Threshold | null)[];
  readonly forMs: number;
  readonly hysteresis: number;
  readonly classifier: LevelClassifier;
  readonly info: RuleInfo;
}

/** Every kind of compiled rule; later kinds (rate, aggregates, stale, ...) join this union. */
export type CompiledRule = CompiledThresholdRule;

export interface CompileOptions {
  /** How levels are classified; both give the same results. */
  classifier: ClassifierKind;
  /**
   * node-rules only: answer "no level" without running the engine for a series at no level whose
   * value is inside the least severe level's band (exact; see level-classifier.ts).
   */
  quietGate: boolean;
  /** Bound of the rule index's per-series candidate cache. */
  cacheLimit: number;
}

export const DEFAULT_COMPILE_OPTIONS: CompileOptions = { classifier: 'node-rules', quietGate: true, cacheLimit: 200_000 };

export class CompiledRuleSet {
  readonly rules: readonly CompiledRule[];
  readonly index: RuleIndex<CompiledRule>;
  private readonly byId: ReadonlyMap<string, CompiledRule>;

  constructor(rules: readonly CompiledRule[], options: CompileOptions) {
    const byId = new Map<string, CompiledRule>();
    for (const rule of rules) {
      if (byId.has(rule.id)) throw new Error(`duplicate rule id "${rule.id}"`);
      byId.set(rule.id, rule);
    }
    this.rules = rules;
    this.byId = byId;
    this.index = new RuleIndex(rules, { cacheLimit: options.cacheLimit });
  }

  get(ruleId: string): CompiledRule | undefined {
    return this.byId.get(ruleId);
  }

  info(ruleId: string): RuleInfo | undefined {
    return this.byId.get(ruleId)?.info;
  }

  get size(): number {
    return this.rules.length;
  }
}

export function compileRules(configs: readonly RuleConfig[], options: Partial<CompileOptions> = {}): CompiledRuleSet {
  const opts = { ...DEFAULT_COMPILE_OPTIONS, ...options };
  const rules = configs.filter((c) => c.enabled).map((c) => compileThresholdRule(c, opts));
  return new CompiledRuleSet(rules, opts);
}

export function compileThresholdRule(config: ThresholdRuleConfig, options: Partial<CompileOptions> = {}): CompiledThresholdRule {
  const opts = { ...DEFAULT_COMPILE_OPTIONS, ...options };
  const levels: CompiledLevel[] = [];
  const thresholds: (Threshold | null)[] = [null, null, null, null, null];
  for (const level of [...LEVELS].reverse() as Level[]) {
    const condition = config.levels[level];
    if (condition === undefined) continue;
    let comparison: Comparison;
    let threshold: Threshold;
    if ('above' in condition) [comparison, threshold] = ['above', condition.above];
    else if ('below' in condition) [comparison, threshold] = ['below', condition.below];
    else [comparison, threshold] = ['outside', [condition.outside[0], condition.outside[1]]];
    const rank = levelRank(level);
    levels.push(compileLevel(level, rank, comparison, threshold, config.hysteresis));
    thresholds[rank] = threshold;
  }
  const name = config.name ?? config.id;
  const info: RuleInfo = { id: config.id, name, plan: config.plan };
  if (config.message !== undefined) info.message = config.message;
  if (config.escalation !== undefined) info.escalation = config.escalation;
  return {
    kind: 'threshold',
    id: config.id,
    name,
    match: compileMatch(config.match),
    levels,
    thresholds,
    forMs: config.for,
    hysteresis: config.hysteresis,
    classifier: createClassifier(opts.classifier, levels, { quietGate: opts.quietGate }),
    info,
  };
}
