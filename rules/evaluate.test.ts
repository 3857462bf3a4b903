import { describe, expect, it } from 'vitest';
import type { Reading } from '../ingest/reading.js';
import { compileRules, type CompileOptions } from './compile.js';
import { thresholdRuleSchema } from './config.js';
import { activeAlerts, createRuleState, evaluate, invalidateSlots, reconcileState, restoreAlert, stateStats, type RuleState } from './evaluate.js';
import { tick } from './tick.js';
import type { RuleEvent } from './types.js';

type RuleInput = Record<string, unknown>;

function ruleSet(rules: RuleInput[], options: Partial<CompileOptions> = {}) {
  return compileRules(
    rules.map((r) => thresholdRuleSchema.parse({ match: { metric: 'strain' }, ...r })),
    options,
  );
}

const base: Reading = { assetId: 'a1', sensorId: 's1', assetType: 'bridge', street: '龙城街道', metric: 'strain', value: 0, ts: 0 };

/** Feeds [ts, value] pairs (or full readings) and returns every event in order. */
function run(set: ReturnType<typeof ruleSet>, input: (readonly [number, number] | Partial<Reading>)[], state: RuleState = createRuleState()): RuleEvent[] {
  const events: RuleEvent[] = [];
  for (const item of input) {
    const reading: Reading = Array.isArray(item) ? { ...base, ts: item[0], value: item[1] } : { ...base, ...(item as Partial<Reading>) };
    const result = evaluate(set, state, reading);
    expect(result.state).toBe(state);
    events.push(...result.events);
  }
  return events;
}

function ev(ts: number, level: RuleEvent['level'], value: number, threshold: RuleEvent['threshold'], extra: Partial<RuleEvent> = {}): RuleEvent {
  return { ruleId: 'r', assetId: 'a1', sensorId: 's1', metric: 'strain', level, value, threshold, ts, ...extra };
}

const counts = (state: RuleState) => {
  const { alerts, series, outOfOrder } = stateStats(state);
  return { alerts, series, outOfOrder };
};

function mulberry32(seed: number) {
  return () => {
    seed = (seed + 0x6d2b79f5) | 0;
    let t = Math.imul(seed ^ (seed >>> 15), 1 | seed);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const STEPS = { red: { above: 300 }, orange: { above: 250 }, yellow: { above: 200 } };

const VARIANTS: [string, Partial<CompileOptions>][] = [
  ['node-rules', { classifier: 'node-rules' }],
  ['node-rules without stable gate', { classifier: 'node-rules', stableGate: false }],
  ['direct', { classifier: 'direct' }],
];

describe.each(VARIANTS)('evaluate (%s classifier)', (_name, options) => {
  const compile = (rules: RuleInput[]) => ruleSet(rules, options);

  it('above: raises and drops through several levels', () => {
    const set = compile([{ id: 'r', levels: STEPS }]);
    expect(
      run(set, [
        [1, 100],
        [2, 210],
        [3, 260],
        [4, 310],
        [5, 260],
        [6, 100],
      ]),
    ).toEqual([ev(2, 'yellow', 210, 200), ev(3, 'orange', 260, 250), ev(4, 'red', 310, 300), ev(5, 'orange', 260, 250), ev(6, null, 100, 250)]);
  });

  it('a value exactly on the threshold does not meet it', () => {
    const set = compile([{ id: 'r', levels: STEPS }]);
    expect(
      run(set, [
        [1, 200],
        [2, 250.0001],
        [3, 300],
      ]),
    ).toEqual([ev(2, 'orange', 250.0001, 250)]);
  });

  it('below: levels and a clear report the threshold of the level left', () => {
    const set = compile([{ id: 'r', levels: { red: { below: 5 }, yellow: { below: 10 } } }]);
    expect(
      run(set, [
        [1, 12],
        [2, 9],
        [3, 4],
        [4, 11],
      ]),
    ).toEqual([ev(2, 'yellow', 9, 10), ev(3, 'red', 4, 5), ev(4, null, 11, 5)]);
  });

  it('outside: either side of the band', () => {
    const set = compile([{ id: 'r', levels: { red: { outside: [-10, 10] }, yellow: { outside: [-5, 5] } } }]);
    expect(
      run(set, [
        [1, 0],
        [2, 6],
        [3, -11],
        [4, 3],
        [5, -5],
        [6, -5.5],
      ]),
    ).toEqual([ev(2, 'yellow', 6, [-5, 5]), ev(3, 'red', -11, [-10, 10]), ev(4, null, 3, [-10, 10]), ev(6, 'yellow', -5.5, [-5, 5])]);
  });

  it('hysteresis: a value oscillating around the threshold does not flap', () => {
    const set = compile([{ id: 'r', levels: { yellow: { above: 200 } }, hysteresis: 10 }]);
    const input = [
      [1, 195],
      [2, 201],
      [3, 199],
      [4, 202],
      [5, 198],
      [6, 191],
      [7, 190],
      [8, 201],
    ] as const;
    expect(run(set, [...input])).toEqual([ev(2, 'yellow', 201, 200), ev(7, null, 190, 200), ev(8, 'yellow', 201, 200)]);
  });

  it('without hysteresis the same signal flaps', () => {
    const set = compile([{ id: 'r', levels: { yellow: { above: 200 } } }]);
    const input = [
      [1, 195],
      [2, 201],
      [3, 199],
      [4, 202],
      [5, 198],
      [6, 191],
      [7, 190],
      [8, 201],
    ] as const;
    expect(run(set, [...input])).toEqual([ev(2, 'yellow', 201, 200), ev(3, null, 199, 200), ev(4, 'yellow', 202, 200), ev(5, null, 198, 200), ev(8, 'yellow', 201, 200)]);
  });

  it('hysteresis over several levels: the held level and those below it are sticky, higher ones are not', () => {
    const set = compile([{ id: 'r', levels: { orange: { above: 250 }, yellow: { above: 200 } }, hysteresis: 20 }]);
    expect(
      run(set, [
        [1, 260],
        [2, 240],
        [3, 230],
        [4, 195],
        [5, 250],
        [6, 251],
        [7, 185],
        [8, 180],
      ]),
    ).toEqual([ev(1, 'orange', 260, 250), ev(3, 'yellow', 230, 200), ev(6, 'orange', 251, 250), ev(7, 'yellow', 185, 200), ev(8, null, 180, 200)]);
  });

  it('hysteresis for below and outside', () => {
    const below = compile([{ id: 'r', levels: { yellow: { below: 10 } }, hysteresis: 2 }]);
    expect(
      run(below, [
        [1, 9],
        [2, 11],
        [3, 11.9],
        [4, 12],
      ]),
    ).toEqual([ev(1, 'yellow', 9, 10), ev(4, null, 12, 10)]);
    const outside = compile([{ id: 'r', levels: { yellow: { outside: [-5, 5] } }, hysteresis: 1 }]);
    expect(
      run(outside, [
        [1, 6],
        [2, 4.5],
        [3, 4],
        [4, -6],
        [5, -4.5],
        [6, -3.9],
      ]),
    ).toEqual([ev(1, 'yellow', 6, [-5, 5]), ev(3, null, 4, [-5, 5]), ev(4, 'yellow', -6, [-5, 5]), ev(6, null, -3.9, [-5, 5])]);
  });

  it('for: fires once the condition has held for the duration on event time; a miss restarts it', () => {
    const set = compile([{ id: 'r', levels: { red: { above: 300 }, yellow: { above: 200 } }, for: '30s' }]);
    const s = 1000;
    const input = [
      [0, 210],
      [10 * s, 220],
      [20 * s, 190], // the miss at 20s breaks the run started at 0s
      [30 * s, 210],
      [50 * s, 215],
      [60 * s, 220], // held 30s..60s: fires at 60s
      [70 * s, 310],
      [90 * s, 320],
      [100 * s, 305], // red held 70s..100s
      [110 * s, 250], // drop: immediate
      [120 * s, 100], // clear: immediate
    ] as const;
    expect(run(set, [...input])).toEqual([ev(60 * s, 'yellow', 220, 200), ev(100 * s, 'red', 305, 300), ev(110 * s, 'yellow', 250, 200), ev(120 * s, null, 100, 200)]);
  });

  it('for: a long gap between two meeting readings counts as held; a lower level keeps its own run', () => {
    const set = compile([{ id: 'r', levels: { red: { above: 300 }, yellow: { above: 200 } }, for: '30s' }]);
    expect(
      run(set, [
        [0, 310],
        [40_000, 310],
      ]),
    ).toEqual([ev(40_000, 'red', 310, 300)]);
    // red from 0s, broken at 20s; yellow has held since 0s and fires at 30s.
    expect(
      run(set, [
        [0, 310],
        [20_000, 250],
        [30_000, 250],
      ]),
    ).toEqual([ev(30_000, 'yellow', 250, 200)]);
  });

  it('for: a raise above an active level restarts its run after a miss', () => {
    const set = compile([{ id: 'r', levels: { red: { above: 300 }, yellow: { above: 200 } }, for: '30s' }]);
    const s = 1000;
    const input = [
      [0, 210],
      [30 * s, 210],
      [40 * s, 310],
      [50 * s, 250],
      [60 * s, 310],
      [80 * s, 310],
      [90 * s, 310],
    ] as const;
    expect(run(set, [...input])).toEqual([ev(30 * s, 'yellow', 210, 200), ev(90 * s, 'red', 310, 300)]);
  });

  it('for = 0 fires on the first reading', () => {
    const set = compile([{ id: 'r', levels: STEPS }]);
    expect(run(set, [[5, 400]])).toEqual([ev(5, 'red', 400, 300)]);
  });

  it('out-of-order readings are ignored and counted; equal timestamps are processed', () => {
    const set = compile([{ id: 'r', levels: { yellow: { above: 200 } }, for: '30s' }]);
    const state = createRuleState();
    // the late 100 at 5s would have broken the run; it is ignored.
    expect(
      run(
        set,
        [
          [0, 210],
          [10_000, 215],
          [5_000, 100],
          [30_000, 220],
          [25_000, 100],
          [30_000, 100],
        ],
        state,
      ),
    ).toEqual([ev(30_000, 'yellow', 220, 200), ev(30_000, null, 100, 200)]);
    expect(state.outOfOrder).toBe(2);
  });

  it('a rule over several metrics: the alert follows the highest metric and reports the holder', () => {
    const set = compile([{ id: 'r', match: { metric: ['strain', 'temperature'] }, levels: { red: { above: 300 }, yellow: { above: 200 } } }]);
    const t = (ts: number, metric: string, value: number) => ({ ts, metric, value });
    expect(run(set, [t(1, 'strain', 310), t(2, 'temperature', 210), t(3, 'strain', 100), t(4, 'temperature', 100), t(5, 'strain', 100)])).toEqual([
      ev(1, 'red', 310, 300),
      ev(3, 'yellow', 210, 200, { metric: 'temperature' }),
      ev(4, null, 100, 200, { metric: 'temperature' }),
    ]);
  });

  it('keeps one state per (rule, asset, sensor) and evaluates every matching rule in order', () => {
    const set = compile([
      { id: 'r', levels: { yellow: { above: 200 } } },
      { id: 'r2', match: { metric: 'strain', asset_type: 'bridge' }, levels: { red: { above: 100 } } },
    ]);
    expect(
      run(set, [
        { ts: 1, value: 250 },
        { ts: 2, value: 250, sensorId: 's2' },
        { ts: 3, value: 150, assetId: 'a2', assetType: 'slope' },
      ]),
    ).toEqual([ev(1, 'yellow', 250, 200), ev(1, 'red', 250, 100, { ruleId: 'r2' }), ev(2, 'yellow', 250, 200, { sensorId: 's2' }), ev(2, 'red', 250, 100, { ruleId: 'r2', sensorId: 's2' })]);
  });
});

describe('state', () => {
  it('a reading that matches no rule returns the shared quiet result', () => {
    const set = ruleSet([{ id: 'r', levels: STEPS }]);
    const state = createRuleState();
    const result = evaluate(set, state, { ...base, metric: 'tilt', value: 1e9 });
    expect(result).toBe(state.quiet);
    expect(result.events).toEqual([]);
    expect(Object.isFrozen(result.events)).toBe(true);
    expect(evaluate(set, state, { ...base, value: 10 })).toBe(state.quiet);
    expect(counts(state)).toEqual({ alerts: 0, series: 0, outOfOrder: 0 });
  });

  it('only series at a level or pending are kept, and are removed once clear', () => {
    const set = ruleSet([{ id: 'r', match: { metric: ['strain', 'tilt'] }, levels: { yellow: { above: 200 } }, for: '10s' }]);
    const state = createRuleState();
    run(set, [{ ts: 0, value: 250 }], state);
    expect(counts(state)).toEqual({ alerts: 1, series: 1, outOfOrder: 0 });
    expect(activeAlerts(state)).toEqual([]);
    run(
      set,
      [
        { ts: 10_000, value: 250 },
        { ts: 10_000, value: 300, metric: 'tilt' },
      ],
      state,
    );
    expect(counts(state)).toEqual({ alerts: 1, series: 2, outOfOrder: 0 });
    expect(activeAlerts(state)).toEqual([{ ruleId: 'r', assetId: 'a1', sensorId: 's1', level: 'yellow' }]);
    run(
      set,
      [
        { ts: 11_000, value: 0 },
        { ts: 11_000, value: 0, metric: 'tilt' },
      ],
      state,
    );
    expect(counts(state)).toEqual({ alerts: 0, series: 0, outOfOrder: 0 });
    expect(state.alerts.size).toBe(0);
  });

  it('reconcileState drops rules that are gone and series no longer matched, reporting active alerts', () => {
    const old = ruleSet([
      { id: 'r1', match: { metric: 'strain', asset_type: 'bridge' }, levels: STEPS },
      { id: 'r2', match: { metric: 'strain', street: '龙城街道' }, levels: STEPS },
      { id: 'r3', levels: STEPS },
      { id: 'r4', levels: STEPS, for: '1m' },
    ]);
    const state = createRuleState();
    run(
      old,
      [
        { ts: 1, value: 310 },
        { ts: 1, value: 210, assetId: 'a2' },
      ],
      state,
    );
    expect(activeAlerts(state).map((a) => `${a.ruleId}/${a.assetId}/${a.level}`)).toEqual(['r1/a1/red', 'r1/a2/yellow', 'r2/a1/red', 'r2/a2/yellow', 'r3/a1/red', 'r3/a2/yellow']);

    const next = ruleSet([
      { id: 'r2', match: { metric: 'strain', street: '龙城街道', asset_id: 'a2' }, levels: STEPS },
      { id: 'r3', levels: STEPS },
      { id: 'r4', levels: STEPS, for: '1m', enabled: false },
    ]);
    expect(reconcileState(next, state)).toEqual([
      { ruleId: 'r1', assetId: 'a1', sensorId: 's1', level: 'red' },
      { ruleId: 'r1', assetId: 'a2', sensorId: 's1', level: 'yellow' },
      { ruleId: 'r2', assetId: 'a1', sensorId: 's1', level: 'red' },
    ]);
    expect(activeAlerts(state).map((a) => `${a.ruleId}/${a.assetId}/${a.level}`)).toEqual(['r2/a2/yellow', 'r3/a1/red', 'r3/a2/yellow']);
    // r4 had only pending runs: dropped silently.
    expect(state.alerts.has('r4')).toBe(false);
    // The kept state continues under the new rule set.
    expect(run(next, [{ ts: 2, value: 0 }], state)).toEqual([ev(2, null, 0, 300, { ruleId: 'r3' })]);
  });

  it('restoreAlert lets the next reading below the threshold resolve an alert opened before a restart', () => {
    const set = ruleSet([{ id: 'r', levels: STEPS, hysteresis: 20 }]);
    const state = createRuleState();
    restoreAlert(state, { ruleId: 'r', assetId: 'a1', sensorId: 's1', assetType: 'bridge', street: '龙城街道', metric: 'strain', level: 'orange', value: 260 });
    expect(
      run(
        set,
        [
          [1, 240],
          [2, 229],
          [3, 150],
        ],
        state,
      ),
    ).toEqual([ev(2, 'yellow', 229, 200), ev(3, null, 150, 200)]);
  });
});

describe('node-rules and direct classifiers', () => {
  it('agree on a randomized sequence of readings over varied rules', () => {
    const rand = mulberry32(20240607);
    const rules: RuleInput[] = [
      { id: 'up', match: { metric: ['strain', 'tilt'] }, levels: STEPS, hysteresis: 15, for: '20s' },
      { id: 'down', match: { metric: 'strain' }, levels: { red: { below: 120 }, yellow: { below: 180 } }, hysteresis: 10 },
      { id: 'band', match: { metric: 'tilt' }, levels: { red: { outside: [100, 300] }, blue: { outside: [150, 250] } }, hysteresis: 20, for: '5s' },
      { id: 'plain', match: { metric: ['strain', 'tilt'], sensor_id: 's1' }, levels: { orange: { above: 220 } } },
    ];
    const viaRules = ruleSet(rules, { classifier: 'node-rules' });
    const ungated = ruleSet(rules, { classifier: 'node-rules', stableGate: false });
    const direct = ruleSet(rules, { classifier: 'direct' });
    const a = createRuleState();
    const b = createRuleState();
    const c = createRuleState();
    const value = new Map<string, number>();
    const eventsA: RuleEvent[] = [];
    const eventsB: RuleEvent[] = [];
    const eventsC: RuleEvent[] = [];
    let ts = 0;
    for (let i = 0; i < 20_000; i++) {
      ts += Math.floor(rand() * 4000);
      const sensorId = rand() < 0.5 ? 's1' : 's2';
      const metric = rand() < 0.5 ? 'strain' : 'tilt';
      const key = `${sensorId}/${metric}`;
      const v = Math.min(400, Math.max(0, (value.get(key) ?? 200) + (rand() - 0.5) * 40));
      value.set(key, v);
      const reading: Reading = { ...base, sensorId, metric, value: Math.round(v * 10) / 10, ts: rand() < 0.02 ? ts - 10_000 : ts };
      eventsA.push(...evaluate(viaRules, a, reading).events);
      eventsB.push(...evaluate(direct, b, reading).events);
      eventsC.push(...evaluate(ungated, c, reading).events);
    }
    expect(eventsA.length).toBeGreaterThan(500);
    expect(new Set(eventsA.map((e) => `${e.ruleId}:${e.level}`)).size).toBeGreaterThanOrEqual(9);
    expect(eventsA).toEqual(eventsB);
    expect(eventsC).toEqual(eventsB);
    expect(a.outOfOrder).toBe(b.outOfOrder);
    expect(a.outOfOrder).toBeGreaterThan(0);
  });
});

describe('series slots', () => {
  it('give the events of looking every series up afresh, with any cache limit, across sweeps, restores, reloads and catalogue changes', () => {
    const rand = mulberry32(977);
    const rules: RuleInput[] = [
      { id: 'up', match: { metric: ['strain', 'tilt'] }, levels: STEPS, hysteresis: 15, for: '20s' },
      { id: 'avg', match: { metric: 'tilt' }, signal: { avg: '1m' }, levels: { red: { above: 280 }, yellow: { above: 220 } }, hysteresis: 5, for: '10s' },
      { id: 'street', match: { metric: 'strain', street: '龙城街道' }, levels: { orange: { above: 230 } } },
    ];
    const options: Partial<CompileOptions>[] = [{}, { cacheLimit: 3 }, { classifier: 'direct', cacheLimit: 1 }];
    const sets = options.map((o) => ruleSet(rules, o));
    const reloaded = options.map((o) => ruleSet(rules, o)); // the same rules compiled again, as a reload does
    const reference = ruleSet(rules);
    const states = sets.map(() => createRuleState());
    const refState = createRuleState();
    const got: RuleEvent[][] = sets.map(() => []);
    const expected: RuleEvent[] = [];
    const value = new Map<string, number>();
    let ts = 0;
    for (let i = 0; i < 12_000; i++) {
      ts += Math.floor(rand() * 3000);
      const sensorId = ['s1', 's2', 's3'][Math.floor(rand() * (i % 2000 < 1000 ? 3 : 2))]!; // s3 goes quiet for a while: its windows are swept
      const metric = rand() < 0.5 ? 'strain' : 'tilt';
      const key = `${sensorId}/${metric}`;
      const v = Math.min(400, Math.max(0, (value.get(key) ?? 200) + (rand() - 0.5) * 50));
      value.set(key, v);
      const street = rand() < 0.03 ? '南湾街道' : '龙城街道'; // a catalogue change now and then
      const reading: Reading = { ...base, sensorId, metric, street, value: Math.round(v * 10) / 10, ts: rand() < 0.02 ? ts - 10_000 : ts };
      const restore = i % 3001 === 3000;
      const sweepNow = i % 97 === 0;
      const reload = i % 4003 === 4002;
      sets.forEach((set, k) => {
        const state = states[k]!;
        if (restore) restoreAlert(state, { ruleId: 'up', assetId: 'a1', sensorId: 's2', assetType: 'bridge', street: '龙城街道', metric: 'tilt', level: 'red', value: 310 }, set.get('up'));
        if (reload) {
          [sets[k], reloaded[k]] = [reloaded[k]!, set];
          reconcileState(sets[k], state, set);
        }
        if (sweepNow) got[k]!.push(...tick(sets[k]!, state, ts));
        got[k]!.push(...evaluate(sets[k]!, state, reading).events);
      });
      if (restore)
        restoreAlert(refState, { ruleId: 'up', assetId: 'a1', sensorId: 's2', assetType: 'bridge', street: '龙城街道', metric: 'tilt', level: 'red', value: 310 }, reference.get('up'));
      if (sweepNow) expected.push(...tick(reference, refState, ts));
      invalidateSlots(refState); // every series looked up in state.alerts, as if there were no slots
      expected.push(...evaluate(reference, refState, reading).events);
    }
    expect(expected.length).toBeGreaterThan(500);
    expect(new Set(expected.map((e) => `${e.ruleId}:${e.level}`)).size).toBeGreaterThanOrEqual(7);
    for (const events of got) expect(events).toEqual(expected);
    expect(stateStats(states[0]!)).toEqual(stateStats(refState));
    expect(states[1]!.slotCount).toBeLessThanOrEqual(3);
  });
});
