import { deflateRawSync } from 'node:zlib';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import type { Reading } from '../ingest/reading.js';
import type { RuleConfig } from './config.js';
import { ruleSchema } from './config.js';
import { RuleRunner } from './rule-runner.js';
import { decodeAssetSnapshot, isEmptySnapshot, num, SNAPSHOT_VERSION, SnapshotError, unnum, type AssetSnapshot } from './state-codec.js';
import type { AssetRef } from './state.js';
import type { RuleEvent } from './types.js';
import { params } from '../test/support/property.js';

const T0 = Date.parse('2025-06-01T00:00:00+08:00');

const RULES = [
  {
    id: 'level',
    match: { metric: 'level' },
    levels: { red: { above: 80 }, orange: { above: 60 }, yellow: { above: 40 } },
    for: '5s',
    hysteresis: 3,
    flapping: { window: '30s', max_changes: 3 },
  },
  { id: 'level-rate', match: { metric: 'level' }, signal: { rate: '1m', window: '20s' }, levels: { orange: { above: 90 }, yellow: { above: 30 } } },
  { id: 'rain-avg', match: { metric: 'rain' }, signal: { avg: '15s' }, levels: { yellow: { above: 50 } }, for: '3s', hysteresis: 2 },
  { id: 'rain-sum', match: { metric: 'rain' }, signal: { sum: '10s' }, levels: { red: { above: 200 } } },
  { id: 'gas-min', match: { metric: 'gas' }, signal: { min: '10s' }, levels: { blue: { below: 10 } } },
  { id: 'gas-band', match: { metric: 'gas' }, levels: { yellow: { outside: [20, 70] } }, hysteresis: 1 },
  { id: 'bridge-any', match: { asset_type: 'bridge', metric: ['level', 'gas'] }, levels: { red: { above: 95 }, blue: { above: 75 } }, for: '2s' },
  { id: 'silent', match: { asset_type: 'slope' }, stale: '20s', level: 'yellow', flapping: { window: '1m', max_changes: 2 } },
  { id: 'dau-offline', match: { asset_type: 'slope' }, offline: '10s', level: 'orange' },
  {
    id: 'wet-and-high',
    match: { asset_type: 'slope' },
    all: [
      { metric: 'rain', signal: { sum: '10s' }, above: 100 },
      { metric: 'level', above: 50 },
    ],
    level: 'red',
    for: '2s',
  },
  {
    id: 'gas-or-level',
    any: [
      { metric: 'gas', above: 60, hysteresis: 5 },
      { metric: 'level', signal: { max: '10s' }, above: 70 },
    ],
    level: 'orange',
  },
];
const configs = (rules: readonly unknown[] = RULES): RuleConfig[] => rules.map((r) => ruleSchema.parse(r));

const ASSETS: AssetRef[] = [
  { assetId: 'lg-slope-001', assetType: 'slope', street: '坂田街道' },
  { assetId: 'lg-slope-002', assetType: 'slope', street: '园山街道' },
  { assetId: 'lg-bridge-001', assetType: 'bridge', street: '坂田街道' },
];
const ALL = new Set(ASSETS.map((a) => a.assetId));
const DEVICES = [
  { deviceId: 'dau-01', assets: [ASSETS[1]!, ASSETS[0]!] },
  { deviceId: 'dau-02', assets: [ASSETS[2]!] },
];
const METRICS = ['level', 'rain', 'gas'] as const;
const WATCHED = ASSETS.flatMap((a) => [0, 1].map((s) => ({ ...a, sensorId: `s${s}`, metrics: [...METRICS] })));

type Op =
  /** `repeat` readings of one series, `gap` ms apart, the value changing by `slope` each time. */
  | { k: 'reading'; asset: number; sensor: number; metric: number; dt: number; lag: number; value: number; repeat: number; gap: number; slope: number }
  | { k: 'presence'; device: number; online: boolean; dt: number }
  | { k: 'tick'; dt: number };

const opArb: fc.Arbitrary<Op> = fc.oneof(
  {
    weight: 8,
    arbitrary: fc.record({
      k: fc.constant('reading' as const),
      // Mostly one asset in quick succession, so windows fill, `for` runs complete and compounds meet.
      asset: fc.oneof({ weight: 3, arbitrary: fc.constant(0) }, { weight: 2, arbitrary: fc.nat(2) }),
      sensor: fc.nat(1),
      metric: fc.nat(2),
      dt: fc.oneof({ weight: 6, arbitrary: fc.integer({ min: 0, max: 1500 }) }, { weight: 1, arbitrary: fc.integer({ min: 0, max: 30_000 }) }),
      lag: fc.oneof({ weight: 4, arbitrary: fc.constant(0) }, { weight: 1, arbitrary: fc.integer({ min: 0, max: 3000 }) }),
      value: fc.oneof(fc.integer({ min: 0, max: 100 }), fc.double({ min: 0, max: 100, noNaN: true }), fc.constantFrom(40, 60, 80, 10, 20, 70, 85, 99)),
      repeat: fc.oneof({ weight: 2, arbitrary: fc.constant(1) }, { weight: 1, arbitrary: fc.integer({ min: 2, max: 12 }) }),
      gap: fc.integer({ min: 100, max: 2000 }),
      slope: fc.oneof(fc.constant(0), fc.integer({ min: -12, max: 12 }), fc.double({ min: -5, max: 5, noNaN: true })),
    }),
  },
  { weight: 1, arbitrary: fc.record({ k: fc.constant('presence' as const), device: fc.nat(1), online: fc.boolean(), dt: fc.integer({ min: 0, max: 15_000 }) }) },
  { weight: 2, arbitrary: fc.record({ k: fc.constant('tick' as const), dt: fc.integer({ min: 0, max: 12_000 }) }) },
);

const key = (e: RuleEvent) => `${e.ruleId}\u0000${e.assetId}\u0000${e.sensorId}`;
/** Timed work visits assets in the order the state first met them, which a hand-over does not keep: compare it by alert. */
const byAlert = (events: RuleEvent[]) => [...events].sort((a, b) => (key(a) < key(b) ? -1 : key(a) > key(b) ? 1 : 0));

/** Runs one op; `clock` is the platform time before it. Returns the new clock and the op's events. */
function step(runner: RuleRunner, op: Op, clock: number): [number, RuleEvent[]] {
  const now = clock + op.dt;
  switch (op.k) {
    case 'reading': {
      const asset = ASSETS[op.asset]!;
      const events: RuleEvent[] = [];
      let t = now;
      for (let i = 0; i < op.repeat; i++, t += op.gap) {
        const reading: Reading = { ...asset, sensorId: `s${op.sensor}`, metric: METRICS[op.metric]!, value: op.value + i * op.slope, ts: t - op.lag };
        events.push(...runner.process([reading], t));
      }
      return [t, events];
    }
    case 'presence':
      return [now, runner.presence(DEVICES[op.device]!, op.online ? 'online' : 'offline', now)];
    case 'tick':
      return [now, byAlert(runner.tick(now))];
  }
}

/** What a checkpoint goes through: JSON text, then validation. */
const viaJson = (snapshots: AssetSnapshot[]) => snapshots.map((s) => decodeAssetSnapshot(JSON.parse(JSON.stringify(s))));

/** What a snapshot holds that judges readings to come: levels, `for` runs, floors, timers and flapping episodes. */
const judging = (s: AssetSnapshot) => ({
  alerts: s.alerts.flatMap((a) =>
    a.series.filter((x) => x.level > 0 || x.floor > 0 || x.since.some((t) => t !== 'NaN')).map((x) => [a.rule, a.sensor, a.level, x.metric, x.level, x.since, x.floor]),
  ),
  stale: s.stale,
  offline: s.offline,
  compound: s.compound.map((c) => [c.rule, c.level, c.since, c.floor]),
  flapping: s.flapping.filter((f) => f.flapping),
});

function fresh(rules?: readonly unknown[]): RuleRunner {
  const runner = new RuleRunner(configs(rules));
  return runner;
}

describe('rule state snapshots', () => {
  it('a hand-over at any points continues exactly: the same events and the same final state as one runner', () => {
    fc.assert(
      fc.property(fc.array(opArb, { minLength: 1, maxLength: 120 }), fc.uniqueArray(fc.nat(120), { maxLength: 4 }), (ops, splits) => {
        const reference = fresh();
        reference.watch(WATCHED, T0);
        let runner = fresh();
        runner.watch(WATCHED, T0);
        let refClock = T0;
        let clock = T0;
        for (let i = 0; i < ops.length; i++) {
          if (splits.includes(i)) {
            const snapshots = viaJson(runner.exportAssets(ALL));
            runner = fresh();
            runner.importAssets(snapshots);
          }
          const [t1, expected] = step(reference, ops[i]!, refClock);
          const [t2, actual] = step(runner, ops[i]!, clock);
          refClock = t1;
          clock = t2;
          expect(actual).toEqual(expected);
        }
        expect(runner.exportAssets(ALL)).toEqual(reference.exportAssets(ALL));
        expect({ ...runner.stats(), outOfOrder: 0 }).toEqual({ ...reference.stats(), outOfOrder: 0 });
      }),
      params(150),
    );
  });

  it('partitions handed to two owners judge as one runner does: each owner gets only its assets', () => {
    // lg-slope-001 and lg-slope-002 share a device (dau-01): one partition; lg-bridge-001 the other.
    const partitionOf = (assetId: string) => (assetId === 'lg-bridge-001' ? 1 : 0);
    const mine = (p: number) => new Set([...ALL].filter((a) => partitionOf(a) === p));
    fc.assert(
      fc.property(fc.array(opArb, { minLength: 1, maxLength: 100 }), fc.nat(100), (ops, split) => {
        const reference = fresh();
        reference.watch(WATCHED, T0);
        const owners = [reference, reference];
        const cut = fresh();
        cut.watch(WATCHED, T0);
        let clock = T0;
        let refClock = T0;
        for (let i = 0; i < ops.length; i++) {
          if (i === split) {
            // One instance hands partition 1 to another and keeps partition 0.
            const second = fresh();
            second.importAssets(viaJson(cut.exportAssets(mine(1))));
            cut.dropAssets(mine(1));
            expect(cut.exportAssets(mine(1)).every(isEmptySnapshot)).toBe(true);
            owners[0] = cut;
            owners[1] = second;
          }
          const op = ops[i]!;
          const [t1, expected] = step(reference, op, refClock);
          refClock = t1;
          if (i < split) {
            const [t2, actual] = step(cut, op, clock);
            clock = t2;
            expect(actual).toEqual(expected);
            continue;
          }
          if (op.k === 'tick') {
            const events = owners.map((o) => step(o, op, clock)[1]);
            clock += op.dt;
            expect(byAlert(events.flat())).toEqual(expected);
          } else {
            const p = op.k === 'reading' ? partitionOf(ASSETS[op.asset]!.assetId) : partitionOf(DEVICES[op.device]!.assets[0]!.assetId);
            const [t2, actual] = step(owners[p]!, op, clock);
            clock = t2;
            expect(actual).toEqual(expected);
          }
        }
        // Owners sweep idle windows on their own schedule (memory only), so compare what judges.
        if (split < ops.length) for (const p of [0, 1]) expect(owners[p]!.exportAssets(mine(p)).map(judging)).toEqual(reference.exportAssets(mine(p)).map(judging));
      }),
      params(150),
    );
  });

  it('an alert over several metrics keeps the level another metric holds', () => {
    const r = (metric: string, value: number, s: number): Reading => ({ ...ASSETS[2]!, sensorId: 's0', metric, value, ts: T0 + s * 1000 });
    const a = fresh([RULES.find((x) => x.id === 'bridge-any')]);
    expect(a.process([r('gas', 96, 0), r('level', 96, 1), r('gas', 96, 2), r('level', 96, 3)]).map((e) => [e.metric, e.level, e.ts - T0])).toEqual([['gas', 'red', 2000]]);
    const b = fresh([RULES.find((x) => x.id === 'bridge-any')]);
    b.importAssets(viaJson(a.exportAssets(ALL)));
    expect(b.process([r('gas', 0, 4)])).toEqual([]); // level still holds red
    expect(b.process([r('level', 0, 5)]).map((e) => [e.metric, e.level])).toEqual([['level', null]]);
  });

  it('numbers JSON cannot hold are written as their names', () => {
    for (const x of [NaN, Infinity, -Infinity, -0, 0, 1.5e-300, -2.5]) expect(Object.is(unnum(JSON.parse(JSON.stringify(num(x))) as never), x)).toBe(true);
    expect([NaN, Infinity, -Infinity, -0].map(num)).toEqual(['NaN', 'Infinity', '-Infinity', '-0']);
  });

  it('a window keeps its exact running sum across a hand-over (compensated sums of 0.1 mm tips)', () => {
    const rules = [{ id: 'rain', match: { metric: 'rain' }, signal: { sum: '10m' }, levels: { yellow: { above: 99.99999999999 } } }];
    const a = fresh(rules);
    const tip = (i: number): Reading => ({ ...ASSETS[0]!, sensorId: 'r', metric: 'rain', value: 0.1, ts: T0 + i * 100 });
    for (let i = 0; i < 999; i++) expect(a.process([tip(i)])).toEqual([]);
    const b = fresh(rules);
    b.importAssets(viaJson(a.exportAssets(ALL)));
    expect(b.process([tip(999)])).toEqual([
      { ruleId: 'rain', assetId: 'lg-slope-001', sensorId: 'r', metric: 'rain', level: 'yellow', value: 100, threshold: 99.99999999999, ts: T0 + 99_900 },
    ]);
  });

  it('one snapshot per asset asked for, empty ones included', () => {
    const runner = fresh();
    const [s] = runner.exportAssets(new Set(['nowhere']));
    expect(s).toEqual({ v: SNAPSHOT_VERSION, assetId: 'nowhere', schedule: { due: 'Infinity', sweep: 'Infinity' }, alerts: [], stale: [], offline: [], compound: [], flapping: [] });
    expect(isEmptySnapshot(s!)).toBe(true);
  });

  it('import replaces what the runner held for an asset; dropAssets forgets exactly those assets', () => {
    const runner = fresh();
    const r = (assetId: string, metric: string, value: number, ts: number): Reading => ({ ...ASSETS.find((a) => a.assetId === assetId)!, sensorId: 's0', metric, value, ts });
    runner.process([r('lg-slope-001', 'gas', 90, T0), r('lg-bridge-001', 'gas', 95, T0 + 1)]);
    const before = runner.exportAssets(ALL);
    expect(before.map((s) => s.alerts.map((a) => a.rule))).toEqual([['gas-min', 'gas-band'], [], ['gas-min', 'gas-band', 'bridge-any']]);
    runner.dropAssets(new Set(['lg-slope-001']));
    const after = runner.exportAssets(ALL);
    expect(isEmptySnapshot(after[0]!)).toBe(true);
    expect(after[2]).toEqual(before[2]);
    // Back again: the asset's alert resolves as it would have.
    runner.importAssets([before[0]!]);
    expect(runner.process([r('lg-slope-001', 'gas', 50, T0 + 2)]).map((e) => [e.ruleId, e.level])).toEqual([
      ['gas-band', null],
      ['gas-or-level', null],
    ]);
  });

  it('records of rules that are gone or whose evaluation changed are left out; the others are kept', () => {
    const runner = fresh();
    const reading: Reading = { ...ASSETS[0]!, sensorId: 's0', metric: 'rain', value: 90, ts: T0 };
    runner.process([reading, { ...reading, ts: T0 + 5000 }]);
    const snapshots = viaJson(runner.exportAssets(ALL));
    expect(snapshots[0]!.alerts.map((a) => a.rule)).toEqual(['rain-avg', 'rain-sum']);
    const changed = RULES.filter((r) => r.id !== 'rain-sum').map((r) => (r.id === 'rain-avg' ? { ...r, signal: { avg: '1m' } } : r.id === 'silent' ? { ...r, stale: '1h' } : r));
    const next = fresh(changed);
    next.importAssets(snapshots);
    const kept = next.exportAssets(ALL)[0]!;
    expect(kept.alerts).toEqual([]);
    expect(kept.stale.map((e) => [e.rule, e.sensor])).toEqual([['silent', 's0']]);
    expect(kept.compound.map((c) => c.rule)).toEqual(['wet-and-high']);
  });

  it('decoding refuses other versions and anything that is not a snapshot', () => {
    const runner = fresh();
    runner.process([{ ...ASSETS[0]!, sensorId: 's0', metric: 'rain', value: 90, ts: T0 }]);
    const good = JSON.parse(JSON.stringify(runner.exportAssets(ALL)[0])) as Record<string, unknown>;
    expect(decodeAssetSnapshot(good)).toEqual(good);
    const bad = (mutate: (s: any) => void) => {
      const s = structuredClone(good) as any;
      mutate(s);
      return () => decodeAssetSnapshot(s);
    };
    expect(bad((s) => (s.v = 2))).toThrow(new SnapshotError('rule state snapshot version 2 is not supported (this build reads version 1)'));
    expect(() => decodeAssetSnapshot(null)).toThrow(SnapshotError);
    expect(() => decodeAssetSnapshot('{"v":1}')).toThrow(/version "\{\\"v\\":1\}"|version undefined/);
    expect(bad((s) => delete s.alerts)).toThrow(/alerts/);
    expect(bad((s) => (s.extra = 1))).toThrow(SnapshotError);
    expect(bad((s) => (s.alerts[0].level = 5))).toThrow(/alerts\.0\.level/);
    expect(bad((s) => (s.alerts[0].series[0].since = [1, 2]))).toThrow(/since/);
    expect(bad((s) => (s.alerts[0].series[0].lastTs = 'soon'))).toThrow(/lastTs/);
    expect(bad((s) => (s.alerts[0].series[0].window.slots = '***'))).toThrow(/slots/);
    // Valid JSON, but not a window of this rule: import refuses it and changes nothing.
    const wrongSize = structuredClone(good) as any;
    wrongSize.alerts[0].series[0].window.slots = deflateRawSync(Buffer.alloc(8)).toString('base64');
    const target = fresh();
    expect(() => target.importAssets([decodeAssetSnapshot(wrongSize)])).toThrow(new SnapshotError('window slots are not whole'));
    const bomb = structuredClone(good) as any;
    bomb.alerts[0].series[0].window.slots = deflateRawSync(Buffer.alloc(1_000_000)).toString('base64');
    expect(() => target.importAssets([decodeAssetSnapshot(bomb)])).toThrow(/window slots do not inflate: .*(buffer|length)/i);
    const notDeflated = structuredClone(good) as any;
    notDeflated.alerts[0].series[0].window.slots = Buffer.alloc(72).toString('base64');
    expect(() => target.importAssets([decodeAssetSnapshot(notDeflated)])).toThrow(/window slots do not inflate/);
    const wrongWindow = structuredClone(good) as any;
    wrongWindow.alerts[0].series[0].window.ms = 1234;
    expect(() => target.importAssets([decodeAssetSnapshot(wrongWindow)])).toThrow(/a window of 1234 ms where the rule has 15000 ms/);
    expect(target.exportAssets(ALL).every(isEmptySnapshot)).toBe(true);
  });
});
