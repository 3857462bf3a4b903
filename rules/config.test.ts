import { describe, expect, it } from 'vitest';
import { ruleSchema } from './config.js';

/** The issues of one rule as `path: message` lines. */
function errors(rule: unknown): string[] {
  const result = ruleSchema.safeParse(rule);
  if (result.success) return [];
  return result.error.issues.map((i) => `${i.path.join('.') || '(rule)'}: ${i.message}`);
}

/** The parsed rule, as a plain record (each kind has other fields). */
function parse(rule: unknown): Record<string, unknown> {
  const result = ruleSchema.safeParse(rule);
  if (!result.success) throw new Error(errors(rule).join('\n'));
  return result.data;
}

const LEVELS = { red: { above: 300 }, orange: { above: 250 }, yellow: { above: 200 } };

describe('rule schema: every kind', () => {
  it('threshold rules with each signal, normalised to milliseconds', () => {
    expect(parse({ id: 'v', match: { metric: 'strain' }, levels: LEVELS })).toMatchObject({ kind: 'threshold', signal: { kind: 'value' }, for: 0, hysteresis: 0 });
    expect(parse({ id: 'r', match: { metric: 'displacement' }, levels: LEVELS, signal: { rate: '1d', window: '6h' } }).signal).toEqual({
      kind: 'rate',
      perMs: 86_400_000,
      windowMs: 21_600_000,
    });
    expect(parse({ id: 'r1', match: { metric: 'displacement' }, levels: LEVELS, signal: { rate: '1h' } }).signal).toEqual({ kind: 'rate', perMs: 3_600_000, windowMs: 3_600_000 });
    for (const kind of ['avg', 'min', 'max', 'sum'] as const) {
      expect(parse({ id: kind, match: { metric: 'rainfall' }, levels: LEVELS, signal: { [kind]: '10m' } }).signal).toEqual({ kind, windowMs: 600_000 });
    }
    expect(parse({ id: 't', match: { metric: 'displacement' }, levels: LEVELS, signal: { tangent_angle: '6h', velocity: 0.8 } }).signal).toEqual({
      kind: 'tangent_angle',
      windowMs: 21_600_000,
      velocity: 0.8,
    });
  });

  it('stale, offline and compound rules as in the contract', () => {
    expect(parse({ id: 'sensor-silent', match: { asset_type: ['bridge', 'slope'] }, stale: '10m', level: 'yellow' })).toMatchObject({
      kind: 'stale',
      stale: 600_000,
      level: 'yellow',
      match: { asset_type: ['bridge', 'slope'] },
    });
    expect(parse({ id: 'dau-offline', offline: '2m', level: 'yellow' })).toMatchObject({ kind: 'offline', offline: 120_000, level: 'yellow', match: {} });
    const compound = parse({
      id: 'landslide-risk',
      match: { asset_type: 'slope' },
      all: [
        { metric: 'rainfall', signal: { sum: '24h' }, above: 100 },
        { metric: 'displacement', signal: { rate: '1d', window: '6h' }, above: 5 },
      ],
      level: 'red',
      plan: ['撤离坡下人员'],
      escalation: { red: 'district-emergency' },
    });
    expect(compound).toMatchObject({
      kind: 'compound',
      mode: 'all',
      level: 'red',
      conditions: [
        { metric: 'rainfall', signal: { kind: 'sum', windowMs: 86_400_000 }, condition: { above: 100 } },
        { metric: 'displacement', signal: { kind: 'rate', perMs: 86_400_000, windowMs: 21_600_000 }, condition: { above: 5 } },
      ],
    });
    expect(parse({ id: 'a', any: [{ metric: 'smoke', above: 0.5 }], level: 'red' })).toMatchObject({ kind: 'compound', mode: 'any' });
  });

  it('flapping on any kind', () => {
    expect(parse({ id: 'f', match: { metric: 'strain' }, levels: LEVELS, flapping: { window: '30m', max_changes: 6 } }).flapping).toEqual({ windowMs: 1_800_000, maxChanges: 6 });
    expect(parse({ id: 'g', stale: '1m', level: 'blue', flapping: { window: '1h', max_changes: 3 } }).flapping).toEqual({ windowMs: 3_600_000, maxChanges: 3 });
  });
});

describe('rule schema: bad rules name the field and the reason', () => {
  it.each([
    [
      'unknown field at the top, with the fields of the kind',
      { id: 'x', match: { metric: 'strain' }, levels: LEVELS, treshold: 3 },
      ['treshold: unknown field (a threshold rule has id, name, escalation, dispatch, message, plan, enabled, flapping, match, levels, for, hysteresis, signal)'],
    ],
    ['unknown field in a level', { id: 'x', match: { metric: 'strain' }, levels: { red: { abvoe: 100 } } }, ['levels.red.abvoe: unknown field "abvoe" (did you mean "above"?)']],
    [
      'red below yellow for above',
      { id: 'x', match: { metric: 'strain' }, levels: { red: { above: 100 }, yellow: { above: 200 } } },
      ['levels.red: red threshold must be stricter than yellow ({"above":100} vs {"above":200})'],
    ],
    [
      'red above yellow for below',
      { id: 'x', match: { metric: 'p' }, levels: { red: { below: 0.3 }, yellow: { below: 0.25 } } },
      ['levels.red: red threshold must be stricter than yellow ({"below":0.3} vs {"below":0.25})'],
    ],
    [
      'mixed comparisons',
      { id: 'x', match: { metric: 'p' }, levels: { red: { below: 1 }, yellow: { above: 2 } } },
      ['levels: every level must use the same comparison (found above, below)'],
    ],
    ['a band the wrong way round', { id: 'x', match: { metric: 'p' }, levels: { red: { outside: [5, 1] } } }, ['levels.red.outside: needs [low, high] with low < high']],
    ['bad duration', { id: 'x', match: { metric: 'strain' }, levels: LEVELS, for: '30 seconds' }, ['for: "30 seconds" is not a duration (use 500ms, 30s, 10m, 6h or 1d)']],
    ['negative hysteresis', { id: 'x', match: { metric: 'strain' }, levels: LEVELS, hysteresis: -1 }, ['hysteresis: Too small: expected number to be >=0']],
    ['threshold without metric', { id: 'x', levels: LEVELS, match: { asset_type: 'bridge' } }, ['match.metric: a threshold rule needs match.metric']],
    [
      'unknown signal',
      { id: 'x', match: { metric: 'm' }, levels: LEVELS, signal: 'median' },
      ['signal: unknown signal "median"; use value, { rate: 1d, window: 6h }, { avg|min|max|sum: 10m } or { tangent_angle: 6h, velocity: 0.8 }'],
    ],
    ['unknown field in a signal', { id: 'x', match: { metric: 'm' }, levels: LEVELS, signal: { rate: '1d', windw: '6h' } }, ['signal.windw: unknown field (this signal has rate, window)']],
    ['zero window', { id: 'x', match: { metric: 'm' }, levels: LEVELS, signal: { sum: '0s' } }, ['signal.sum: must be longer than 0']],
    ['too long a window', { id: 'x', match: { metric: 'm' }, levels: LEVELS, signal: { avg: '40d' } }, ['signal.avg: must be at most 31d']],
    [
      'tangent angle without velocity',
      { id: 'x', match: { metric: 'm' }, levels: LEVELS, signal: { tangent_angle: '6h' } },
      ['signal.velocity: needs the slope’s constant-deformation rate per day from its calibration, a number > 0 (e.g. velocity: 0.8)'],
    ],
    ['stale without level', { id: 'x', stale: '10m' }, ['level: must be one of blue, yellow, orange, red']],
    ['stale of zero', { id: 'x', stale: '0s', level: 'yellow' }, ['stale: must be longer than 0']],
    ['unknown level', { id: 'x', offline: '2m', level: 'purple' }, ['level: must be one of blue, yellow, orange, red']],
    [
      'offline with a sensor match',
      { id: 'x', offline: '2m', level: 'yellow', match: { sensor_id: 's1' } },
      ['match.sensor_id: unknown field "sensor_id" (accepted: device_id, asset_type, asset_id, street)'],
    ],
    ['levels on a stale rule', { id: 'x', stale: '2m', level: 'yellow', levels: LEVELS }, ['stale: a rule is of one kind: it has both levels and stale']],
    ['no kind', { id: 'x', match: { metric: 'm' } }, ['(rule): a rule needs one of levels (threshold), stale, offline, all or any (compound)']],
    ['a misspelt kind', { id: 'x', match: { metric: 'm' }, levles: LEVELS }, ['levles: unknown field "levles" (did you mean "levels"?)']],
    [
      'no kind and an unknown field',
      { id: 'x', match: { metric: 'm' }, colour: 'red' },
      [
        'colour: unknown field "colour" (accepted: id, name, escalation, dispatch, message, plan, enabled, flapping, match, levels, for, hysteresis, signal, stale, level, offline, all, any)',
        '(rule): a rule needs one of levels (threshold), stale, offline, all or any (compound)',
      ],
    ],
    ['all and any', { id: 'x', all: [], any: [], level: 'red' }, ['any: a rule is of one kind: it has both all and any']],
    ['compound condition without comparison', { id: 'x', all: [{ metric: 'rainfall', signal: { sum: '1h' } }], level: 'red' }, ['all.0: needs exactly one of above, below or outside']],
    ['compound without conditions', { id: 'x', any: [], level: 'red' }, ['any: needs at least one condition']],
    ['flapping without max_changes', { id: 'x', stale: '1m', level: 'red', flapping: { window: '30m' } }, ['flapping.max_changes: Invalid input: expected number, received undefined']],
  ])('%s', (_name, rule, expected) => {
    expect(errors(rule)).toEqual(expected);
  });
});
