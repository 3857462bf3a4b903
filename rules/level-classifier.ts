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
  return value < level.enterLo || value > level.enterHi || (level.rank <= heldRank && (value < level.holdLo || value > level.holdHi));
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

/**
 * The values for which a series' level stays exactly as held: for held rank r, those that meet
 * level r (with its hysteresis) and no more severe level (on its plain entry band). Then the
 * classification is r whatever the engine, and no alert can change: the reading only continues
 * the runs it is already part of. For r = 0 these are the values inside every level's entry band
 * (the "quiet" readings).
 *
 * Exact by construction, for any set of levels (nesting is not assumed): it restates
 * `levelMet` of the levels ranked above r (they are entered on their entry band only, since
 * rank > held) and of level r itself, which is the first met in most-severe-first order. A held
 * rank the rule has no level for (after a reload changed the levels) never passes.
 */
export class StableGate {
  /**
   * Per held rank r (0..4), at 2r and 2r + 1: the intersection of the entry bands of the levels
   * ranked above r. One plain array of doubles: a reading touches one small object, not several.
   */
  private readonly bands: number[] = [];
  /** Per held rank: its level (undefined for 0, and where the rule has no such level). */
  private readonly own: (CompiledLevel | undefined)[] = [];

  constructor(levels: readonly CompiledLevel[]) {
    for (let r = 0; r <= 4; r++) {
      let lo = -Infinity;
      let hi = Infinity;
      for (const l of levels) {
        if (l.rank <= r) continue;
        if (l.enterLo > lo) lo = l.enterLo;
        if (l.enterHi < hi) hi = l.enterHi;
      }
      const own = levels.find((l) => l.rank === r);
      if (r > 0 && own === undefined) [lo, hi] = [Infinity, -Infinity]; // empty: never passes
      this.bands.push(lo, hi);
      this.own.push(own);
    }
  }

  /** Whether `value` classifies as `heldRank` itself (false when unsure, e.g. NaN or a rank outside 0..4). */
  holds(value: number, heldRank: number): boolean {
    if (!(value >= this.bands[2 * heldRank]! && value <= this.bands[2 * heldRank + 1]!)) return false;
    const own = this.own[heldRank];
    return own === undefined || value < own.enterLo || value > own.enterHi || value < own.holdLo || value > own.holdHi;
  }
}

export interface NodeRulesClassifierOptions {
  /**
   * Skip the engine when the value keeps the series exactly at the level it holds (StableGate):
   * a series at no level whose value meets no level (a quiet reading), or a series at a level
   * whose value still meets it and no more severe one. Exact, and it keeps node-rules' deep-cloning
   * path for the readings that change a level: those that can change an alert.
   */
  stableGate: boolean;
}

export const DEFAULT_NODE_RULES_OPTIONS: NodeRulesClassifierOptions = { stableGate: true };

class NodeRulesClassifier implements LevelClassifier {
  readonly kind = 'node-rules' as const;
  private readonly engine: SyncRuleEngine;
  private readonly gate: StableGate | undefined;
  private result = -1;
  private readonly done = (fact: Fact): void => {
    this.result = (fact as LevelFact).level;
  };

  constructor(levels: readonly CompiledLevel[], options: NodeRulesClassifierOptions) {
    this.gate = options.stableGate ? new StableGate(levels) : undefined;
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
    if (this.gate !== undefined && this.gate.holds(value, heldRank)) return heldRank;
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
