import fc from 'fast-check';
import { describe, expect, it, vi } from 'vitest';
import type { Level } from '../lib/levels.js';
import { params } from '../test/support/property.js';
import type { API, Fact } from 'node-rules';
import { compileLevel, createDirectClassifier, createNodeRulesClassifier, StableGate, SyncRuleEngine, type CompiledLevel, type Comparison } from './level-classifier.js';

describe('SyncRuleEngine', () => {
  it('runs execute to completion before returning', () => {
    const engine = new SyncRuleEngine(
      [
        {
          id: 'low',
          priority: 1,
          condition: (R: API, f: Fact) => R.when(f.x > 1),
          consequence: (R: API, f: Fact) => {
            f.low = true;
            R.stop();
          },
        },
        {
          id: 'high',
          priority: 2,
          condition: (R: API, f: Fact) => R.when(f.x > 5),
          consequence: (R: API, f: Fact) => {
            f.high = true;
            R.stop();
          },
        },
      ],
      { ignoreFactChanges: true },
    );
    const seen: Fact[] = [];
    const input = { x: 3 };
    engine.execute(input, (fact) => seen.push(fact));
    expect(seen).toEqual([{ x: 3, low: true, matchPath: ['low'] }]);
    expect(input).toEqual({ x: 3 }); // node-rules works on a clone
  });
});

describe('level classifiers', () => {
  // red above 300, orange above 250, yellow above 200, hysteresis 20, most severe first
  const above: CompiledLevel[] = [compileLevel('red', 4, 'above', 300, 20), compileLevel('orange', 3, 'above', 250, 20), compileLevel('yellow', 2, 'above', 200, 20)];
  const outside: CompiledLevel[] = [compileLevel('red', 4, 'outside', [-10, 10], 1), compileLevel('blue', 1, 'outside', [-5, 5], 1)];

  const cases: [CompiledLevel[], number, number, number][] = [
    // levels, value, held rank, expected rank
    [above, 100, 0, 0],
    [above, 200, 0, 0],
    [above, 201, 0, 2],
    [above, 301, 0, 4],
    [above, 295, 4, 4], // red held until 280
    [above, 280, 4, 3], // red cleared, orange held
    [above, 231, 3, 3],
    [above, 230, 3, 2],
    [above, 260, 2, 3], // higher level entered on its plain threshold
    [above, 249, 2, 2],
    [above, 181, 2, 2],
    [above, 180, 2, 0],
    [outside, 0, 0, 0],
    [outside, -6, 0, 1],
    [outside, 4.5, 1, 1],
    [outside, 4, 1, 0],
    [outside, 9.5, 4, 4],
    [outside, 9, 4, 1],
  ];

  it.each(cases)('case %#: value %s held %s', (levels, value, held, expected) => {
    expect(createDirectClassifier(levels).classify(value, held)).toBe(expected);
    expect(createNodeRulesClassifier(levels).classify(value, held)).toBe(expected);
    expect(createNodeRulesClassifier(levels, { stableGate: false }).classify(value, held)).toBe(expected);
  });

  it('the stable gate skips the engine only where the series stays at the level it holds', () => {
    const execute = vi.spyOn(SyncRuleEngine.prototype, 'execute');
    try {
      const gated = createNodeRulesClassifier(above);
      // quiet; yellow held (above 200, held down to 180); orange held (up to 300 inclusive); red held
      expect([
        gated.classify(150, 0),
        gated.classify(200, 0),
        gated.classify(240, 2),
        gated.classify(181, 2),
        gated.classify(300, 3),
        gated.classify(281, 4),
        gated.classify(1e9, 4),
      ]).toEqual([0, 0, 2, 2, 3, 4, 4]);
      expect(execute).toHaveBeenCalledTimes(0);
      // a level left, a level entered, a more severe level entered, a held rank the rule lacks
      expect([gated.classify(150, 2), gated.classify(201, 0), gated.classify(251, 2), gated.classify(180, 2), gated.classify(280, 4), gated.classify(210, 1)]).toEqual([0, 2, 3, 0, 3, 2]);
      expect(execute).toHaveBeenCalledTimes(6);
      expect(createNodeRulesClassifier(above, { stableGate: false }).classify(150, 0)).toBe(0);
      expect(execute).toHaveBeenCalledTimes(7);
    } finally {
      execute.mockRestore();
    }
  });

  it('the stable gate passes exactly the values that classify as the held rank', () => {
    const gate = new StableGate(outside);
    const direct = createDirectClassifier(outside);
    for (let v = -12; v <= 12; v += 0.5) {
      for (let held = 0; held <= 4; held++) expect([v, held, gate.holds(v, held)]).toEqual([v, held, direct.classify(v, held) === held && (held === 0 || held === 1 || held === 4)]);
    }
    expect([gate.holds(NaN, 0), gate.holds(0, 5), gate.holds(0, -1)]).toEqual([false, false, false]);
  });

  it('caps an outside hysteresis larger than half the band so the level can still clear', () => {
    const level = compileLevel('yellow', 2, 'outside', [0, 10], 8);
    expect([level.holdLo, level.holdHi]).toEqual([5, 5]);
    const c = createDirectClassifier([level]);
    expect([c.classify(11, 0), c.classify(5.1, 2), c.classify(5, 2)]).toEqual([2, 2, 0]);
  });

  it('agree on random values and held levels', () => {
    const levels: CompiledLevel[] = [compileLevel('red', 4, 'below', -50, 7), compileLevel('orange', 3, 'below', -20, 7), compileLevel('blue', 1, 'below', 0, 7)];
    const viaRules = createNodeRulesClassifier(levels);
    const ungated = createNodeRulesClassifier(levels, { stableGate: false });
    const direct = createDirectClassifier(levels);
    let seed = 7;
    const rand = () => (seed = (seed * 1103515245 + 12345) % 2147483648) / 2147483648;
    for (let i = 0; i < 5000; i++) {
      const value = Math.round((rand() * 140 - 90) * 10) / 10;
      const held = Math.floor(rand() * 5);
      const expected = direct.classify(value, held);
      expect([viaRules.classify(value, held), ungated.classify(value, held)]).toEqual([expected, expected]);
    }
  });
});

describe('stable gate (property)', () => {
  const RANKS: [Level, number][] = [
    ['blue', 1],
    ['yellow', 2],
    ['orange', 3],
    ['red', 4],
  ];
  // Any levels at all (nesting is not assumed by the gate), values on and around their edges.
  const levelsArb = fc
    .tuple(
      fc.subarray(RANKS, { minLength: 1 }),
      fc.constantFrom<Comparison>('above', 'below', 'outside'),
      fc.array(fc.integer({ min: -50, max: 50 }), { minLength: 8, maxLength: 8 }),
      fc.constantFrom(0, 0.5, 3, 20),
      fc.boolean(),
    )
    .map(([ranks, comparison, points, hysteresis, mixed]) =>
      ranks
        .map(([level, rank], i) => {
          const c: Comparison = mixed ? (['above', 'below', 'outside'] as const)[Math.abs(i + points[7]!) % 3]! : comparison;
          const a = points[2 * i]!;
          const b = points[2 * i + 1]!;
          const threshold = c === 'outside' ? ([Math.min(a, b), Math.max(a, b) + 1] as [number, number]) : a;
          return compileLevel(level, rank, c, threshold, hysteresis);
        })
        .reverse(),
    );
  const valueArb = fc.oneof(
    fc.integer({ min: -80, max: 80 }),
    fc.double({ min: -80, max: 80, noNaN: true }),
    fc.integer({ min: -1600, max: 1600 }).map((n) => n / 20),
    fc.constantFrom(Infinity, -Infinity),
  );

  it('passes exactly the values whose classification is the held rank, and the gated engine agrees with the others', () => {
    fc.assert(
      fc.property(levelsArb, fc.array(fc.tuple(valueArb, fc.integer({ min: 0, max: 4 })), { minLength: 1, maxLength: 30 }), (levels, cases) => {
        const gate = new StableGate(levels);
        const direct = createDirectClassifier(levels);
        const gated = createNodeRulesClassifier(levels);
        const ungated = createNodeRulesClassifier(levels, { stableGate: false });
        for (const [value, held] of cases) {
          const expected = direct.classify(value, held);
          expect([value, held, gate.holds(value, held)]).toEqual([value, held, expected === held]);
          expect([gated.classify(value, held), ungated.classify(value, held)]).toEqual([expected, expected]);
        }
      }),
      params(),
    );
  });
});
