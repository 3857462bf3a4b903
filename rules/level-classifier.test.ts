import { describe, expect, it, vi } from 'vitest';
import type { API, Fact } from 'node-rules';
import { compileLevel, createDirectClassifier, createNodeRulesClassifier, SyncRuleEngine, type CompiledLevel } from './level-classifier.js';

describe('SyncRuleEngine', () => {
  it('runs execute to completion before returning', () => {
    const engine = new SyncRuleEngine(
      [
        { id: 'low', priority: 1, condition: (R: API, f: Fact) => R.when(f.x > 1), consequence: (R: API, f: Fact) => { f.low = true; R.stop(); } },
        { id: 'high', priority: 2, condition: (R: API, f: Fact) => R.when(f.x > 5), consequence: (R: API, f: Fact) => { f.high = true; R.stop(); } },
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
  const above: CompiledLevel[] = [
    compileLevel('red', 4, 'above', 300, 20),
    compileLevel('orange', 3, 'above', 250, 20),
    compileLevel('yellow', 2, 'above', 200, 20),
  ];
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
    expect(createNodeRulesClassifier(levels, { quietGate: false }).classify(value, held)).toBe(expected);
  });

  it('the quiet gate skips the engine only for a series at no level inside the least severe band', () => {
    const execute = vi.spyOn(SyncRuleEngine.prototype, 'execute');
    try {
      const gated = createNodeRulesClassifier(above);
      expect([gated.classify(150, 0), gated.classify(200, 0)]).toEqual([0, 0]);
      expect(execute).toHaveBeenCalledTimes(0);
      expect([gated.classify(150, 2), gated.classify(201, 0)]).toEqual([0, 2]);
      expect(execute).toHaveBeenCalledTimes(2);
      expect(createNodeRulesClassifier(above, { quietGate: false }).classify(150, 0)).toBe(0);
      expect(execute).toHaveBeenCalledTimes(3);
    } finally {
      execute.mockRestore();
    }
  });

  it('caps an outside hysteresis larger than half the band so the level can still clear', () => {
    const level = compileLevel('yellow', 2, 'outside', [0, 10], 8);
    expect([level.holdLo, level.holdHi]).toEqual([5, 5]);
    const c = createDirectClassifier([level]);
    expect([c.classify(11, 0), c.classify(5.1, 2), c.classify(5, 2)]).toEqual([2, 2, 0]);
  });

  it('agree on random values and held levels', () => {
    const levels: CompiledLevel[] = [
      compileLevel('red', 4, 'below', -50, 7),
      compileLevel('orange', 3, 'below', -20, 7),
      compileLevel('blue', 1, 'below', 0, 7),
    ];
    const viaRules = createNodeRulesClassifier(levels);
    const ungated = createNodeRulesClassifier(levels, { quietGate: false });
    const direct = createDirectClassifier(levels);
    let seed = 7;
    const rand = () => ((seed = (seed * 1103515245 + 12345) % 2147483648) / 2147483648);
    for (let i = 0; i < 5000; i++) {
      const value = Math.round((rand() * 140 - 90) * 10) / 10;
      const held = Math.floor(rand() * 5);
      const expected = direct.classify(value, held);
      expect([viaRules.classify(value, held), ungated.classify(value, held)]).toEqual([expected, expected]);
    }
  });
});
