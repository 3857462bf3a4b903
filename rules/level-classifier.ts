/**
 * Level classification: which level of a threshold rule does a value meet, given the level the
 * series currently holds (for hysteresis)?
 *
 * Two interchangeable implementations with the same semantics:
 * - `node-rules`: one node-rules engine per YAML rule whose rules are the levels (red has the
 *   highest priority), as the platform brief asks ("rules compiled onto node-rules");
 * - `direct`: the same tests as plain compiled predicates, for comparison and for hot paths.
 *
 * Semantics of one level with threshold t and hysteresis h:
 * - above t: entered when value > t; held (once active) while value > t - h;
 * - below t: entered when value < t; held while value < t + h;
 * - outside [lo, hi]: entered when value < lo || value > hi; held while value < lo + h || value > hi - h.
 * "Active" means the series holds this level or a higher one (levels are nested, so holding red
 * means yellow is active too). A level above the held one is entered on its plain threshold only.
 */
import { RuleEngine, type API, type Fact, type Rule } from 'node-rules';
import type { Level } from '../lib/levels.js';
import type { Threshold } from './types.js';

export type Comparison = 'above' | 'below' | 'outside';

/**
 * One level of a rule, reduced to two bands: the level is entered when the value lies outside
 * [enterLo, enterHi] and, once active, held while it lies outside [holdLo, holdHi]. `above` and
 * `below` use ±Infinity for the open side, so all three comparisons share one test.
 */
export interface CompiledLevel {
  readonly level: Level;
  /** 1 (blue) .. 4 (red); 0 means "no level" wherever ranks are used. */
  readonly rank: number;
  readonly comparison: Comparison;
  readonly threshold: Threshold;
  readonly enterLo: number;
  readonly enterHi: number;
  readonly holdLo: number;
  readonly holdHi: number;
}

export interface LevelClassifier {
  readonly kind: ClassifierKind;
  /**
   * The rank of the highest level met by `value` (0 = none) for a series that currently holds
   * `heldRank` (0 = none). Synchronous and free of side effects on the caller's data.
   */
  classify(value: number, heldRank: number): number;
}

export type ClassifierKind = 'node-rules' | 'direct';

/**
 * A threshold shifted by the hysteresis, as written in decimal: 0.14 + 0.02 is 0.16, not
 * 0.16000000000000003, so a reading of exactly 0.16 is back past the threshold by the hysteresis.
 */
function shifted(t: number, by: number): number {
  return by === 0 ? t : Number((t + by).toPrecision(15));
}

/** Builds the bands of one level. For `outside`, h is capped at half the band so it can clear. */
export function compileLevel(level: Level, rank: number, comparison: Comparison, threshold: Threshold, hysteresis: number): CompiledLevel {
  const h = hysteresis;
  if (comparison === 'above') {
    const t = threshold as number;
    return { level, rank, comparison, threshold, enterLo: -Infinity, enterHi: t, holdLo: -Infinity, holdHi: shifted(t, -h) };
  }
  if (comparison === 'below') {
    const t = threshold as number;
    return { level, rank, comparison, threshold, enterLo: t, enterHi: Infinity, holdLo: shifted(t, h), holdHi: Infinity };
  }
  const [lo, hi] = threshold as [number, number];
  const capped = Math.min(h, (hi - lo) / 2);
  return { level, rank, comparison, threshold, enterLo: lo, enterHi: hi, holdLo: shifted(lo, capped), holdHi: shifted(hi, -capped) };
}

/** Whether one level is met by `value` for a series holding `heldRank`. */
export function levelMet(level: CompiledLevel, value: number, heldRank: number): boolean {
  return (
    value < level.enterLo ||
    value > level.enterHi ||
    (level.rank <= heldRank && (value < level.holdLo || value > level.holdHi))
  );
}

/** Plain predicates. `levels` must be sorted most severe first. */
export function createDirectClassifier(levels: readonly CompiledLevel[]): LevelClassifier {
  const ordered = levels.slice();
  const n = ordered.length;
  return {
    kind: 'direct',
    classify(value: number, heldRank: number): number {
      for (let i = 0; i < n; i++) {
        const l = ordered[i]!;
        if (value < l.enterLo || value > l.enterHi || (l.rank <= heldRank && (value < l.holdLo || value > l.holdHi))) return l.rank;
      }
      return 0;
    },
  };
}

/**
 * node-rules runs every step through its public `nextTick`, which defers with process.nextTick.
 * Here nextTick calls straight through, so `execute` finishes (and calls its callback) before it
 * returns: the loop in node-rules' dist/index.js (condition -> API.when -> nextTick(consequence or
 * API.next) -> FnRuleLoop(x + 1) ... -> nextTick(callback)) has no other asynchronous step.
 * The recursion depth is a few frames per rule, so this is only meant for small rule lists such
 * as the levels of one rule.
 */
export class SyncRuleEngine extends RuleEngine {
  override nextTick(callback: () => void): void {
    callback();
  }
}

interface LevelFact extends Fact {
  value: number;
  held: number;
  level: number;
}

export interface NodeRulesClassifierOptions {
  /**
   * Skip the engine when the series holds no level and the value is inside the least severe
   * level's entry band: then no level can be met (levels are nested), so the answer is 0 without
   * asking. Exact, and it keeps the common quiet reading off node-rules' deep-cloning path.
   */
  quietGate: boolean;
}

export const DEFAULT_NODE_RULES_OPTIONS: NodeRulesClassifierOptions = { quietGate: true };

class NodeRulesClassifier implements LevelClassifier {
  readonly kind = 'node-rules' as const;
  private readonly engine: SyncRuleEngine;
  private readonly gate: CompiledLevel | undefined;
  private result = -1;
  private readonly done = (fact: Fact): void => {
    this.result = (fact as LevelFact).level;
  };

  constructor(levels: readonly CompiledLevel[], options: NodeRulesClassifierOptions) {
    this.gate = options.quietGate ? levels[levels.length - 1] : undefined;
    const rules: Rule[] = levels.map((l) => ({
      id: l.level,
      name: l.level,
      // node-rules sorts by priority only when both are truthy: ranks start at 1.
      priority: l.rank,
      condition(R: API, fact: Fact) {
        R.when(levelMet(l, (fact as LevelFact).value, (fact as LevelFact).held));
      },
      consequence(R: API, fact: Fact) {
        (fact as LevelFact).level = l.rank;
        R.stop();
      },
    }));
    // Conditions never change the fact, so node-rules need not deep-compare it after each rule.
    this.engine = new SyncRuleEngine(rules, { ignoreFactChanges: true });
  }

  classify(value: number, heldRank: number): number {
    const gate = this.gate;
    if (heldRank === 0 && gate !== undefined && value >= gate.enterLo && value <= gate.enterHi) return 0;
    this.result = -1;
    const fact: LevelFact = { value, held: heldRank, level: 0 };
    this.engine.execute(fact, this.done);
    const result = this.result;
    if (result < 0) throw new Error('node-rules did not complete synchronously (has RuleEngine.execute changed?)');
    return result;
  }
}

/** One node-rules engine per rule; its rules are the levels, most severe first. */
export function createNodeRulesClassifier(levels: readonly CompiledLevel[], options: Partial<NodeRulesClassifierOptions> = {}): LevelClassifier {
  return new NodeRulesClassifier(levels, { ...DEFAULT_NODE_RULES_OPTIONS, ...options });
}

export function createClassifier(kind: ClassifierKind, levels: readonly CompiledLevel[], options: Partial<NodeRulesClassifierOptions> = {}): LevelClassifier {
  return kind === 'node-rules' ? createNodeRulesClassifier(levels, options) : createDirectClassifier(levels);
}
