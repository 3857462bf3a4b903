import { describe, expect, it } from 'vitest';
import { compileRules, type CompiledThresholdRule } from './compile.js';
import { thresholdRuleSchema } from './config.js';

const parse = (r: Record<string, unknown>) => thresholdRuleSchema.parse(r);
const threshold = (set: ReturnType<typeof compileRules>, id: string) => set.get(id) as CompiledThresholdRule;

describe('compileRules', () => {
  const set = compileRules([
    parse({
      id: 'bridge-strain',
      name: '主梁应变超限',
      match: { asset_type: 'bridge', metric: 'strain' },
      levels: { yellow: { above: 200 }, red: { above: 300 }, orange: { above: 250 } },
      for: '30s',
      hysteresis: 20,
      escalation: { red: 'district-emergency', yellow: 'street-duty' },
      message: '{asset_name} 应变 {value}{unit}',
      plan: ['通知桥梁养护单位现场核查'],
    }),
    parse({ id: 'off', match: { metric: 'strain' }, levels: { red: { above: 1 } }, enabled: false }),
    parse({ id: 'low', match: { metric: ['level', 'flow'] }, levels: { blue: { below: 3 } } }),
  ]);

  it('skips disabled rules', () => {
    expect(set.rules.map((r) => r.id)).toEqual(['bridge-strain', 'low']);
    expect(set.get('off')).toBeUndefined();
    expect(set.info('off')).toBeUndefined();
  });

  it('keeps what the alert stage needs', () => {
    expect(set.info('bridge-strain')).toEqual({
      id: 'bridge-strain',
      name: '主梁应变超限',
      message: '{asset_name} 应变 {value}{unit}',
      plan: ['通知桥梁养护单位现场核查'],
      escalation: { red: 'district-emergency', yellow: 'street-duty' },
      kind: 'threshold',
    });
    expect(set.info('low')).toEqual({ id: 'low', name: 'low', plan: [], kind: 'threshold' });
  });

  it('orders levels most severe first, with thresholds by rank and durations in ms', () => {
    const rule = threshold(set, 'bridge-strain');
    expect(rule.levels.map((l) => [l.level, l.rank, l.comparison, l.threshold])).toEqual([
      ['red', 4, 'above', 300],
      ['orange', 3, 'above', 250],
      ['yellow', 2, 'above', 200],
    ]);
    expect(rule.thresholds).toEqual([null, null, 200, 250, 300]);
    expect([rule.forMs, rule.hysteresis]).toEqual([30_000, 20]);
    expect(rule.match.metric).toEqual(new Set(['strain']));
    expect(rule.match.assetType).toEqual(new Set(['bridge']));
    expect(rule.match.assetId).toBeUndefined();
    expect(threshold(set, 'low').match.metric).toEqual(new Set(['level', 'flow']));
  });

  it('uses node-rules by default and the direct classifier on request', () => {
    expect(threshold(set, 'low').classifier.kind).toBe('node-rules');
    const direct = compileRules([parse({ id: 'x', match: { metric: 'a' }, levels: { red: { above: 1 } } })], { classifier: 'direct' });
    expect(threshold(direct, 'x').classifier.kind).toBe('direct');
  });

  it('refuses duplicate ids', () => {
    const r = parse({ id: 'x', match: { metric: 'a' }, levels: { red: { above: 1 } } });
    expect(() => compileRules([r, r])).toThrow('duplicate rule id "x"');
  });
});
