import { describe, expect, it } from 'vitest';
import { matchSchema } from './config.js';
import { compileMatch, RuleIndex, type IndexedRule, type SeriesRef } from './rule-index.js';

function rule(id: string, match: Record<string, unknown>): IndexedRule {
  return { id, match: compileMatch(matchSchema.parse(match)) };
}

const rules = [
  rule('any-strain', { metric: 'strain' }),
  rule('bridge-strain', { metric: 'strain', asset_type: 'bridge' }),
  rule('two-assets', { metric: ['strain', 'tilt'], asset_id: ['a1', 'a2'] }),
  rule('sensor-tilt', { metric: 'tilt', sensor_id: ['s2'] }),
  rule('streets', { metric: 'strain', street: ['龙城街道', '坂田街道'] }),
  rule('slope-or-pipe', { metric: ['rainfall'], asset_type: ['slope', 'pipeline'], street: '布吉街道' }),
];

const ref = (over: Partial<SeriesRef>): SeriesRef => ({ assetId: 'a9', sensorId: 's1', assetType: 'building', street: '南湾街道', metric: 'strain', ...over });
const ids = (index: RuleIndex<IndexedRule>, r: SeriesRef) => index.candidates(r).map((x) => x.id);

describe('RuleIndex', () => {
  const index = new RuleIndex(rules);

  it.each([
    [ref({}), ['any-strain']],
    [ref({ assetType: 'bridge' }), ['any-strain', 'bridge-strain']],
    [ref({ assetId: 'a2' }), ['any-strain', 'two-assets']],
    [ref({ assetId: 'a1', assetType: 'bridge', street: '坂田街道' }), ['any-strain', 'bridge-strain', 'two-assets', 'streets']],
    [ref({ metric: 'tilt' }), []],
    [ref({ metric: 'tilt', sensorId: 's2' }), ['sensor-tilt']],
    [ref({ metric: 'tilt', sensorId: 's2', assetId: 'a1' }), ['two-assets', 'sensor-tilt']],
    [ref({ metric: 'rainfall', assetType: 'slope', street: '布吉街道' }), ['slope-or-pipe']],
    [ref({ metric: 'rainfall', assetType: 'pipeline', street: '龙城街道' }), []],
    [ref({ metric: 'rainfall', assetType: 'bridge', street: '布吉街道' }), []],
    [ref({ metric: 'smoke' }), []],
  ])('case %#', (r, expected) => {
    expect(ids(index, r)).toEqual(expected);
    expect(ids(index, r)).toEqual(expected); // again, from the cache
  });

  it('returns one shared empty list for readings no rule matches, without caching unknown metrics', () => {
    const fresh = new RuleIndex(rules);
    const a = fresh.candidates(ref({ metric: 'smoke' }));
    const b = fresh.candidates(ref({ metric: 'humidity', assetId: 'zz' }));
    expect(a).toBe(b);
    expect(fresh.cacheSize).toBe(0);
    expect(fresh.candidates(ref({ metric: 'tilt' }))).toBe(a);
    expect(fresh.cacheSize).toBe(1);
  });

  it('returns the same list object for a cached series', () => {
    const fresh = new RuleIndex(rules);
    expect(fresh.candidates(ref({ assetType: 'bridge' }))).toBe(fresh.candidates(ref({ assetType: 'bridge' })));
  });

  it('keys the cache by asset only when no rule of the metric filters on sensor_id', () => {
    const fresh = new RuleIndex(rules);
    for (const sensorId of ['s1', 's2', 's3']) fresh.candidates(ref({ sensorId }));
    expect(fresh.cacheSize).toBe(1);
    for (const sensorId of ['s1', 's2', 's3']) fresh.candidates(ref({ sensorId, metric: 'tilt' }));
    expect(fresh.cacheSize).toBe(4);
  });

  it('hands out a metric-only bucket without any cache', () => {
    const fresh = new RuleIndex([rule('x', { metric: 'smoke' }), rule('y', { metric: ['smoke', 'heat'] })]);
    expect(ids(fresh, ref({ metric: 'smoke' }))).toEqual(['x', 'y']);
    expect(ids(fresh, ref({ metric: 'heat' }))).toEqual(['y']);
    expect(fresh.cacheSize).toBe(0);
  });

  it('stays within its cache bound and keeps answering correctly', () => {
    const small = new RuleIndex(rules, { cacheLimit: 3 });
    for (let i = 0; i < 10; i++) {
      expect(ids(small, ref({ assetId: i % 2 ? 'a1' : `b${i}`, sensorId: `x${i}`, metric: 'tilt' }))).toEqual(i % 2 ? ['two-assets'] : []);
      expect(small.cacheSize).toBeLessThanOrEqual(3);
    }
    small.clearCache();
    expect(small.cacheSize).toBe(0);
  });

  it('recomputes an asset whose type or street changed (catalogue change) instead of answering from the cache', () => {
    const fresh = new RuleIndex(rules);
    expect(ids(fresh, ref({ assetId: 'c1' }))).toEqual(['any-strain']);
    expect(ids(fresh, ref({ assetId: 'c1', assetType: 'bridge' }))).toEqual(['any-strain', 'bridge-strain']);
    expect(ids(fresh, ref({ assetId: 'c1', assetType: 'bridge', street: '龙城街道' }))).toEqual(['any-strain', 'bridge-strain', 'streets']);
    expect(ids(fresh, ref({ assetId: 'c1', metric: 'tilt', sensorId: 's2' }))).toEqual(['sensor-tilt']);
    expect(ids(fresh, ref({ assetId: 'c1', metric: 'tilt', sensorId: 's3', street: 'x' }))).toEqual([]);
    expect(fresh.cacheSize).toBe(2);
  });

  it('puts rules without a metric filter in every bucket, in configuration order', () => {
    const mixed = new RuleIndex([rule('m1', { metric: 'strain' }), { id: 'all', match: compileMatch({ asset_type: ['bridge'] }) }, rule('m2', { metric: 'strain' })]);
    expect(ids(mixed, ref({ assetType: 'bridge' }))).toEqual(['m1', 'all', 'm2']);
    expect(ids(mixed, ref({ assetType: 'bridge', metric: 'smoke' }))).toEqual(['all']);
    expect(ids(mixed, ref({ metric: 'smoke' }))).toEqual([]);
  });
});
