import { once } from 'node:events';
import net, { type AddressInfo } from 'node:net';
import { Aedes, type AedesPublishPacket } from 'aedes';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { LEVELS, type Level } from '../lib/levels.js';
import { silentLogger } from '../lib/logger.js';
import type { Condition } from '../rules/config.js';
import { loadConfig } from '../server/config/load.js';
import type { WatchpostConfig } from '../server/config/schema.js';
import { dueAt, planTime, parseStart, stepTs } from './clock.js';
import { effectValue, rainBetween, resolveValueEffects, ruleMatches, shapeAt, valueRules, type SeriesTarget, type ValueRule } from './scenario-effects.js';
import { SCENARIOS, raisesMatch } from './scenarios.js';
import { createSignal, hashSeed, mulberry32 } from './signals.js';
import { defaultBrokerUrl, planSimulation, readingAt, runSimulation, simulatedReadings, type SimulatedReading } from './simulate.js';
import { replayOnEventTime, type ReplayItem } from '../rules/replay.js';
import { RuleRunner } from '../rules/rule-runner.js';
import { RATE, RUNS } from '../test/support/scenario-runs.js';

function demoConfig(): WatchpostConfig {
  const result = loadConfig('config-demo', {});
  if (!result.ok) throw new Error(`config-demo does not load: ${JSON.stringify(result.errors)}`);
  return result.config;
}

/** Every (asset, sensor, metric) of the demo configuration. */
function demoSeries(config: WatchpostConfig): SeriesTarget[] {
  return config.assets.flatMap((asset) =>
    (asset.sensors ?? []).flatMap((sensor) =>
      (sensor.metrics ?? []).map((metric) => ({
        assetId: asset.id,
        assetType: asset.type,
        street: asset.street,
        sensorId: sensor.id,
        metric,
        range: { min: config.metrics[metric]?.min, max: config.metrics[metric]?.max },
      })),
    ),
  );
}

/** Plain entry test of one level (contract: above / below / outside are strict). */
function meets(cond: Condition, value: number): boolean {
  if ('above' in cond) return value > cond.above;
  if ('below' in cond) return value < cond.below;
  return value < cond.outside[0] || value > cond.outside[1];
}

/** The highest level of `rule` that `value` meets, or undefined. */
function levelOf(rule: ValueRule, value: number): Level | undefined {
  return [...LEVELS].reverse().find((l) => rule.levels[l] !== undefined && meets(rule.levels[l], value));
}

const asNumber = (v: number | boolean) => (typeof v === 'boolean' ? (v ? 1 : 0) : v);

/** `for` of a value rule of the demo configuration, in ms. */
function forMs(config: WatchpostConfig, ruleId: string): number {
  return (config.rules.find((r) => r.id === ruleId) as { for?: number }).for ?? 0;
}

/**
 * A small model of threshold evaluation on event time (plain thresholds, `for`, no hysteresis),
 * enough to see which value rules a run of readings trips and the levels each alert passes through.
 */
function tripped(config: WatchpostConfig, readings: Iterable<SimulatedReading>): Map<string, Level[]> {
  const rules = valueRules(config.rules);
  const assets = new Map(config.assets.map((a) => [a.id, a]));
  const since = new Map<string, Map<Level, number>>();
  const held = new Map<string, Level[]>();
  for (const { assetId, sensorId, reading } of readings) {
    const asset = assets.get(assetId)!;
    for (const [metric, raw] of Object.entries(reading.values)) {
      const value = asNumber(raw);
      for (const rule of rules.filter((r) => ruleMatches(r, { assetId, sensorId, metric, assetType: asset.type, street: asset.street, range: {} }))) {
        const key = `${rule.id} ${assetId}/${sensorId}`;
        const runs = since.get(key) ?? new Map<Level, number>();
        since.set(key, runs);
        const met = levelOf(rule, value);
        for (const level of LEVELS) {
          if (met !== undefined && LEVELS.indexOf(level) <= LEVELS.indexOf(met) && rule.levels[level]) {
            if (!runs.has(level)) runs.set(level, reading.ts);
            const path = held.get(key) ?? [];
            if (reading.ts - runs.get(level)! >= forMs(config, rule.id) && !path.includes(level) && (path.length === 0 || LEVELS.indexOf(level) > LEVELS.indexOf(path.at(-1)!))) {
              held.set(key, [...path, level]);
            }
          } else runs.delete(level);
        }
      }
    }
  }
  return held;
}

describe('demo configuration', () => {
  it('loads without errors and without any environment variable', () => {
    const result = loadConfig('config-demo', {});
    expect(result.ok ? [] : result.errors).toEqual([]);
    expect(result.files).toEqual(['assets.yaml', 'departments.yaml', 'devices.yaml', 'escalation.yaml', 'gb26875.yaml', 'metrics.yaml', 'platform.yaml', 'rules.yaml']);
  });

  it('covers each kind of asset on Longgang streets, with catalogued metrics', () => {
    const config = demoConfig();
    expect(new Set(config.assets.map((a) => a.type))).toEqual(new Set(['bridge', 'slope', 'pipeline', 'fire', 'building']));
    for (const asset of config.assets) {
      const [lon, lat] = asset.location!;
      expect(lon).toBeGreaterThan(114.05);
      expect(lon).toBeLessThan(114.35);
      expect(lat).toBeGreaterThan(22.6);
      expect(lat).toBeLessThan(22.8);
      expect(asset.street).toMatch(/街道$/);
      for (const sensor of asset.sensors!) {
        for (const metric of sensor.metrics!) expect(config.metrics[metric], `${asset.id}/${sensor.id} ${metric}`).toBeDefined();
      }
    }
  });

  it('has the sensors the issue names: cable force, inclinometer, sprinkler, tank, GB 26875 panel states', () => {
    const sensors = Object.fromEntries(demoSeries(demoConfig()).map((s) => [`${s.assetId}/${s.sensorId}/${s.metric}`, true]));
    for (const key of [
      'lg-bridge-001/cable-01/cable_force',
      'lg-slope-001/incl-01/displacement',
      'lg-building-001/sprinkler-01/sprinkler_pressure',
      'lg-building-001/tank-roof/tank_level',
      'lg-building-001/hydrant-roof/hydrant_pressure',
      'lg-building-001/panel/fire_alarm',
      'lg-building-001/panel/fault',
      'lg-building-001/panel/supervisory',
      'lg-building-001/panel/disabled',
    ]) {
      expect(sensors[key], key).toBe(true);
    }
  });

  it('gives every asset exactly one publishing device, and an observer for the operations centre', () => {
    const config = demoConfig();
    const owners = config.assets.map((a) => config.devices.filter((d) => d.assets.includes(a.id)).map((d) => d.id));
    expect(owners.every((o) => o.length === 1)).toBe(true);
    const ops = config.devices.find((d) => d.id === 'city-ops-centre')!;
    expect(ops).toMatchObject({ assets: [], subscribe: ['alerts/#', 'status/#'] });
    for (const d of config.devices) expect(d.secret!.length).toBeGreaterThanOrEqual(8);
  });

  it('points the simulator at the embedded broker on loopback', () => {
    expect(defaultBrokerUrl(demoConfig())).toBe('mqtt://127.0.0.1:1883');
  });
});

describe('signals', () => {
  it('mulberry32 is deterministic per seed', () => {
    const a = mulberry32(42);
    const b = mulberry32(42);
    const c = mulberry32(43);
    const seqA = Array.from({ length: 5 }, a);
    expect(Array.from({ length: 5 }, b)).toEqual(seqA);
    expect(Array.from({ length: 5 }, c)).not.toEqual(seqA);
    expect(seqA.every((x) => x >= 0 && x < 1)).toBe(true);
  });

  it('every generator repeats itself exactly for the same seed and timestamps', () => {
    const config = demoConfig();
    const t0 = Date.parse('2025-07-01T00:00:00+08:00');
    for (const [metric, entry] of Object.entries(config.metrics)) {
      const run = (seed: number) => {
        const next = createSignal(metric, entry, mulberry32(hashSeed(seed, metric)));
        return Array.from({ length: 600 }, (_, i) => next(t0 + i * 1000));
      };
      expect(run(7), metric).toEqual(run(7));
    }
    const strain = (seed: number) => {
      const next = createSignal('strain', config.metrics.strain!, mulberry32(seed));
      return Array.from({ length: 20 }, (_, i) => next(t0 + i * 1000));
    };
    expect(strain(1)).not.toEqual(strain(2));
  });

  it('stays inside the catalogue range and trips no demo rule over a whole day of everyday operation', () => {
    const config = demoConfig();
    const rules = valueRules(config.rules);
    const t0 = Date.parse('2025-07-01T00:00:00+08:00');
    const trips: string[] = [];
    for (const seed of [1, 2]) {
      for (const s of demoSeries(config)) {
        const next = createSignal(s.metric, s.range, mulberry32(hashSeed(seed, s.assetId, s.sensorId, s.metric)));
        const mine = rules.filter((r) => ruleMatches(r, s));
        const since = new Map<string, number>();
        let lo = Infinity;
        let hi = -Infinity;
        for (let t = t0; t < t0 + 86_400_000; t += 1000) {
          const v = next(t);
          lo = Math.min(lo, v);
          hi = Math.max(hi, v);
          for (const rule of mine) {
            if (levelOf(rule, v) === undefined) since.delete(rule.id);
            else {
              const start = since.get(rule.id) ?? t;
              since.set(rule.id, start);
              if (t - start >= forMs(config, rule.id)) trips.push(`${rule.id} ${s.assetId}/${s.sensorId} ${v} at ${new Date(t).toISOString()}`);
            }
          }
        }
        expect(lo, `${s.assetId}/${s.sensorId} ${s.metric} min`).toBeGreaterThanOrEqual(s.range.min!);
        expect(hi, `${s.assetId}/${s.sensorId} ${s.metric} max`).toBeLessThanOrEqual(s.range.max!);
      }
    }
    expect(trips.slice(0, 5)).toEqual([]);
  });
});

describe('simulated clock', () => {
  const now = Date.parse('2025-07-01T10:00:00Z');

  it('keeps real time at speed 1: reading k at start + k / rate', () => {
    const plan = planTime({ now, speed: 1, rate: 4, duration: 2 });
    expect(plan).toEqual({ speed: 1, rate: 4, start: now, stepMs: 250, intervalMs: 250, steps: 9, durationS: 2, historySteps: 0, historyStepMs: 60_000 });
  });

  it('plays a one-hour scenario at speed 60 in a minute that ends now, a reading per simulated minute', () => {
    const plan = planTime({ now, speed: 60, rate: 1, length: 3600 });
    expect(plan.start).toBe(now - 3_540_000);
    expect(plan.stepMs).toBe(60_000);
    expect(plan.steps).toBe(61);
    expect(plan.durationS).toBe(60);
    expect(stepTs(plan, 60)).toBe(now + 60_000);
    // never published before its own timestamp, so never ahead of the platform's clock
    for (let k = 0; k < plan.steps!; k++) expect(dueAt(plan, k, now, 0)).toBeGreaterThanOrEqual(stepTs(plan, k));
    expect(dueAt(plan, 60, now, 0)).toBe(now + 60_000);
  });

  it('starts an open-ended compressed run a day back, and honours --start', () => {
    expect(planTime({ now, speed: 600, rate: 10 }).start).toBe(now - 86_400_000);
    expect(planTime({ now, speed: 60, rate: 1, length: 3600, start: 1_700_000_000_000 }).start).toBe(1_700_000_000_000);
    expect(parseStart('2025-07-01T08:00:00+08:00')).toBe(Date.parse('2025-07-01T00:00:00Z'));
    expect(parseStart('1700000000000')).toBe(1_700_000_000_000);
    expect(() => parseStart('yesterday')).toThrow(/--start must be/);
    expect(() => planTime({ now, speed: 0, rate: 1 })).toThrow(/speed must be > 0/);
    expect(() => planTime({ now, speed: 1, rate: 5000 })).toThrow(/rate must be > 0 and ≤ 1000/);
  });
});

describe('scenarios', () => {
  const config = demoConfig();
  const start = Date.parse('2025-07-01T06:00:00+08:00');
  const run = (scenario: string, options: { speed?: number; rate?: number; seed?: number; duration?: number } = {}) => [
    ...simulatedReadings(config, { scenario, start, now: start, speed: 60, rate: 1, ...options }),
  ];

  it('has the scenarios of the issue, each with its expected alerts documented', () => {
    expect(Object.keys(SCENARIOS).sort()).toEqual(
      ['device_offline', 'disposal', 'drift', 'fire', 'gas_leak', 'incident', 'landslide', 'normal', 'pipe_burst', 'quiet', 'sensor_dropout', 'spike', 'storm'].sort(),
    );
    for (const s of Object.values(SCENARIOS)) {
      const { warnings } = resolveValueEffects(s, config.rules, demoSeries(config));
      expect(warnings, s.name).toEqual([]);
      for (const e of s.expected) expect(e.levels.length, `${s.name} ${e.rule_id}`).toBeGreaterThan(0);
    }
  });

  it('binds the normal scenario to the chronic low-pressure hydrant in 水径村', () => {
    const { effects } = resolveValueEffects(SCENARIOS.normal!, config.rules, demoSeries(config));
    expect(effects.map(({ assetId, sensorId, metric, target }) => ({ assetId, sensorId, metric, target }))).toEqual([
      {
        assetId: 'lg-hydrant-002',
        sensorId: 'hp-02',
        metric: 'hydrant_pressure',
        target: { kind: 'level', ruleId: 'hydrant-pressure-low', level: 'yellow', band: [0.2, 0.25], threshold: 0.25, value: 0.225 },
      },
    ]);
  });

  it('holds every level target inside exactly its promised level of the demo rules', () => {
    const rules = valueRules(config.rules);
    for (const scenario of Object.values(SCENARIOS)) {
      for (const resolved of resolveValueEffects(scenario, config.rules, demoSeries(config)).effects) {
        if (resolved.target.kind !== 'level') continue;
        const rule = rules.find((r) => r.id === (resolved.target as { ruleId: string }).ruleId)!;
        const rng = mulberry32(1);
        const { at, ramp = 0 } = resolved.effect;
        expect(effectValue(resolved, at * 1000 - 1, 12.5, rng)).toBe(12.5);
        for (let i = 0; i < 200; i++) {
          const v = effectValue(resolved, (at + ramp) * 1000 + i * 100, 0, rng);
          expect(levelOf(rule, v), `${scenario.name} ${rule.id} ${v}`).toBe(resolved.target.level);
        }
      }
    }
  });

  it('shapes: 0 at the start, 1 at the end, monotone; creep accelerates', () => {
    for (const shape of ['linear', 'creep', 'collapse', 'saturating'] as const) {
      expect(shapeAt(shape, 0)).toBe(0);
      expect(shapeAt(shape, 1)).toBe(1);
      let previous = 0;
      for (let u = 0.01; u <= 1; u += 0.01) {
        expect(shapeAt(shape, u)).toBeGreaterThanOrEqual(previous);
        previous = shapeAt(shape, u);
      }
    }
    // the creep's velocity rises through the run: a tenth of the way in it has moved almost nothing
    expect(shapeAt('creep', 0.5)).toBeLessThan(0.05);
    expect(shapeAt('creep', 0.9) - shapeAt('creep', 0.8)).toBeGreaterThan(shapeAt('creep', 0.6) - shapeAt('creep', 0.5));
  });

  it('replays byte for byte with the same seed, start, speed and rate', () => {
    const a = run('landslide').map((r) => `${r.topic} ${JSON.stringify(r.reading)}`);
    const b = run('landslide').map((r) => `${r.topic} ${JSON.stringify(r.reading)}`);
    // a day of history at one reading per minute, then the hour
    expect(a.length).toBe((1440 + 61) * 32);
    expect(b).toEqual(a);
    expect(run('landslide', { seed: 2 }).map((r) => `${r.topic} ${JSON.stringify(r.reading)}`)).not.toEqual(a);
  });

  it('landslide: the crest creeps through the tangent-angle stages and the cumulative thresholds within the hour', () => {
    const readings = run('landslide');
    const all = readings.filter((r) => r.sensorId === 'gnss-01').map((r) => ({ t: r.elapsed, x: r.reading.values.displacement as number }));
    expect(all).toHaveLength(1440 + 61);
    const gnss = all.filter((r) => r.t >= 0);
    // tangent angle (improved method) over a day against the steady creep of 0.5 mm/d (the demo's
    // calibration of this slope): T = x / v, alpha = atan(dT/dt in days)
    const alpha = (t: number) => {
      const window = all.filter((r) => r.t > t - 86_400 && r.t <= t);
      return (Math.atan((window.at(-1)!.x - window[0]!.x) / 0.5 / ((window.at(-1)!.t - window[0]!.t) / 86_400)) * 180) / Math.PI;
    };
    expect(alpha(0)).toBeLessThan(45); // a day of everyday creep
    expect(alpha(1800)).toBeLessThan(80);
    expect(alpha(2400)).toBeGreaterThan(85);
    expect(alpha(3600)).toBeGreaterThan(89);
    // velocity at the end: several mm per simulated minute (imminent sliding)
    expect(gnss[60]!.x - gnss[59]!.x).toBeGreaterThan(4);
    expect(gnss[60]!.x - gnss[0]!.x).toBeGreaterThan(85);
    const trips = tripped(config, readings);
    expect(trips.get('slope-displacement lg-slope-001/gnss-01')).toEqual(['yellow', 'orange', 'red']);
    expect(trips.get('slope-displacement lg-slope-001/incl-01')).toEqual(['yellow', 'orange']);
    expect(trips.get('slope-displacement lg-slope-001/gnss-02')).toEqual(['yellow']);
  });

  it('storm: 110–175 mm over three hours on every slope gauge; groundwater into the yellow band', () => {
    const readings = run('storm', { speed: 120 });
    for (const asset of ['lg-slope-001', 'lg-slope-002']) {
      const total = readings.filter((r) => r.assetId === asset && r.sensorId === 'rain-01' && r.elapsed >= 0).reduce((mm, r) => mm + (r.reading.values.rainfall as number), 0);
      expect(total, asset).toBeGreaterThan(110);
      expect(total, asset).toBeLessThan(175);
    }
    expect(rainBetween(SCENARIOS.storm!.effects.find((e) => e.kind === 'rain') as never, 0, 3 * 3600)).toBeGreaterThan(130);
    expect(tripped(config, readings).get('slope-pore-pressure lg-slope-001/piezo-01')).toEqual(['yellow']);
  });

  it('every scenario trips exactly its documented value-rule alerts (a model of the rules; the e2e test runs the platform)', () => {
    const speeds: Record<string, number> = { drift: 30, spike: 5, sensor_dropout: 5, device_offline: 5, landslide: 30, pipe_burst: 5, gas_leak: 5, fire: 5, storm: 90 };
    for (const scenario of Object.values(SCENARIOS)) {
      const readings = scenario.length === undefined ? run(scenario.name, { speed: 1, duration: 60 }) : run(scenario.name, { speed: speeds[scenario.name] ?? 5 });
      const got = tripped(config, readings);
      const ids = new Set(valueRules(config.rules).map((r) => r.id));
      const expected = scenario.expected.filter((e) => ids.has(e.rule_id) && !e.noise);
      expect([...got.keys()].sort(), scenario.name).toEqual(expected.map((e) => `${e.rule_id} ${e.asset_id}/${e.sensor_id}`).sort());
      for (const e of expected) {
        const path = got.get(`${e.rule_id} ${e.asset_id}/${e.sensor_id}`)!;
        expect(raisesMatch(path, e.levels), `${scenario.name} ${e.rule_id} ${e.sensor_id}: ${path.join(' ')}`).toBe(true);
      }
    }
  });

  it("the e2e test's compression raises the documented levels through the rule engine at any hour of the day", () => {
    // The everyday values follow a daily cycle, so a compression that samples a ramp too coarsely
    // can skip a level band at some hours only (the e2e test then fails by the clock). The real
    // rules (RuleRunner, on event time), every 3 hours of a day, the newest alert of each key.
    const valueIds = new Set(valueRules(config.rules).map((r) => r.id));
    const assets = new Map(config.assets.map((a) => [a.id, a]));
    for (const [name, compression] of Object.entries(RUNS)) {
      const scenario = SCENARIOS[name]!;
      const expected = scenario.expected.filter((e) => valueIds.has(e.rule_id) && !e.noise);
      for (let hour = 0; hour < 24; hour += 3) {
        const at = Date.parse('2025-07-01T00:00:00+08:00') + hour * 3_600_000;
        const speed = compression.step * RATE;
        const readings = [...simulatedReadings(config, { scenario: name, start: at, now: at, speed, rate: RATE, ...(compression.duration ? { duration: compression.duration } : {}) })];
        const items: ReplayItem[] = readings
          .flatMap(({ assetId, sensorId, reading }) => {
            const asset = assets.get(assetId)!;
            return Object.entries(reading.values).map(([metric, raw]) => ({ assetId, sensorId, assetType: asset.type, street: asset.street, metric, value: asNumber(raw), ts: reading.ts }));
          })
          .sort((a, b) => a.ts - b.ts)
          .map((reading) => ({ kind: 'reading' as const, ts: reading.ts, reading }));
        const raises = new Map<string, Level[]>(); // the newest alert of each key: its firing and raised levels
        const current = new Map<string, number>();
        for (const event of replayOnEventTime(new RuleRunner(config.rules), items)) {
          const key = `${event.ruleId} ${event.assetId}/${event.sensorId}`;
          const rank = event.level === null ? 0 : LEVELS.indexOf(event.level) + 1;
          const was = current.get(key) ?? 0;
          if (was === 0 && rank > 0) raises.set(key, [event.level!]);
          else if (rank > was) raises.get(key)!.push(event.level!);
          current.set(key, rank);
        }
        for (const e of expected) {
          const key = `${e.rule_id} ${e.asset_id}/${e.sensor_id}`;
          const path = raises.get(key) ?? [];
          expect(raisesMatch(path, e.levels), `${name} at ${hour}:00 (+08:00): ${key} raised ${path.join(' → ') || 'nothing'}, documented ${e.levels.join(' → ')}`).toBe(true);
          expect((current.get(key) ?? 0) > 0, `${name} at ${hour}:00: ${key} open`).toBe(e.open);
        }
      }
    }
  });

  it('spike: one outlier reading per sensor, then back to everyday values', () => {
    const readings = run('spike', { speed: 5 });
    const strain = readings.filter((r) => r.sensorId === 'strain-01').map((r) => r.reading.values.strain as number);
    expect(strain.filter((v) => v === 850)).toHaveLength(1);
    expect(strain.filter((v) => v > 200)).toHaveLength(1);
  });

  it('sensor_dropout: the cut displacement meter stops reporting; the accelerometer comes back', () => {
    const readings = run('sensor_dropout', { speed: 5 });
    const disp = readings.filter((r) => r.assetId === 'lg-slope-002' && r.sensorId === 'disp-01');
    expect(disp.at(-1)!.elapsed).toBeLessThan(60);
    const accel = readings.filter((r) => r.sensorId === 'accel-01').map((r) => r.elapsed);
    expect(accel.filter((t) => t >= 300 && t < 420)).toEqual([]);
    expect(accel.at(-1)).toBe(900);
  });

  it('plans the default run with the demo devices and their published secrets', () => {
    const plan = planSimulation(config);
    expect(plan.scenario.name).toBe('normal');
    expect(plan.devices.map((d) => d.id)).toEqual(['dau-bridge-001', 'dau-slope-001', 'dau-slope-002', 'rtu-gas-001', 'dau-hydrant-001', 'dau-hydrant-002', 'fire-gw-001']);
    const hydrant = plan.devices.find((d) => d.id === 'dau-hydrant-002')!.sensors.find((s) => s.sensorId === 'hp-02')!;
    const reading = readingAt(hydrant, Date.parse('2025-07-01T08:00:00+08:00'), 0)!;
    expect(reading.values.hydrant_pressure).toBeGreaterThan(0.2);
    expect(reading.values.hydrant_pressure).toBeLessThan(0.25);
    expect(() => planSimulation(config, { scenario: 'meteor' })).toThrow(/unknown scenario "meteor"/);
    expect(plan.devices.find((d) => d.id === 'dau-slope-002')!.outages).toEqual([]);
    expect(planSimulation(config, { scenario: 'device_offline' }).devices.find((d) => d.id === 'dau-slope-002')!.outages).toHaveLength(1);
  });
});

interface Seen {
  clientId: string;
  topic: string;
  payload: string;
  qos: number;
  retain: boolean;
}

describe('MQTT round trip against an aedes broker', () => {
  let broker: Aedes;
  let server: net.Server;
  let url: string;
  let published: Seen[];
  let logins: Map<string, { username: string | undefined; password: string | undefined; will: { topic: string; payload: string; retain: boolean } | undefined }>;
  let deniedPublishes: string[];
  const config = demoConfig();
  const secrets = new Map(config.devices.map((d) => [d.id, d.secret!]));

  beforeEach(async () => {
    published = [];
    logins = new Map();
    deniedPublishes = [];
    broker = await Aedes.createBroker({
      preConnect: (_client, packet, done) => {
        logins.set(packet.clientId, {
          username: packet.username,
          password: packet.password?.toString(),
          will: packet.will ? { topic: packet.will.topic, payload: packet.will.payload.toString(), retain: packet.will.retain === true } : undefined,
        });
        done(null, true);
      },
      authenticate: (_client, username, password, done) => {
        const ok = username !== undefined && secrets.get(username) === password?.toString();
        done(ok ? null : Object.assign(new Error('bad credentials'), { returnCode: 4 }), ok);
      },
      authorizePublish: (client, packet, done) => {
        const device = config.devices.find((d) => d.id === logins.get(client?.id ?? '')?.username);
        const [kind, id] = packet.topic.split('/');
        const ok = device !== undefined && (kind === 'telemetry' ? device.assets.includes(id!) : packet.topic === `status/${device.id}`);
        if (!ok) deniedPublishes.push(packet.topic);
        done(ok ? null : new Error('not allowed'));
      },
    });
    broker.on('publish', (packet: AedesPublishPacket, client) => {
      if (client) published.push({ clientId: client.id, topic: packet.topic, payload: packet.payload.toString(), qos: packet.qos, retain: packet.retain });
    });
    server = net.createServer(broker.handle);
    server.listen(0, '127.0.0.1');
    await once(server, 'listening');
    url = `mqtt://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });

  afterEach(async () => {
    await new Promise<void>((resolve) => broker.close(() => resolve()));
    await new Promise<void>((resolve) => server.close(() => resolve()));
  });

  it('publishes every demo asset with the devices’ credentials, and the normal scenario’s low hydrant pressure', async () => {
    // The platform reports a rejection to one device while the run is on.
    const rejection = { topic: 'telemetry/lg-gas-001/vw-01', reason: 'out_of_range', detail: 'gas_lel 140 is above the catalogue maximum 100' };
    broker.on('subscribe', (subs) => {
      if (subs.some((s) => s.topic === 'errors/rtu-gas-001')) {
        setTimeout(() => broker.publish({ cmd: 'publish', topic: 'errors/rtu-gas-001', payload: Buffer.from(JSON.stringify(rejection)), qos: 1, retain: false, dup: false }, () => {}), 50);
      }
    });

    const summary = await runSimulation(config, { url, duration: 2, rate: 4, logger: silentLogger() });

    const telemetry = published.filter((p) => p.topic.startsWith('telemetry/'));
    // every demo asset got readings, each a valid reading object
    for (const asset of config.assets) {
      const mine = telemetry.filter((p) => p.topic.startsWith(`telemetry/${asset.id}/`));
      expect(mine.length, asset.id).toBeGreaterThan(0);
      for (const p of mine) {
        const sensorId = p.topic.split('/')[2];
        const sensor = asset.sensors!.find((s) => s.id === sensorId)!;
        expect(sensor, p.topic).toBeDefined();
        const body = JSON.parse(p.payload) as { ts: unknown; values: Record<string, number | boolean> };
        expect(Object.keys(body).sort()).toEqual(['ts', 'values']);
        expect(Number.isInteger(body.ts)).toBe(true);
        expect(Math.abs((body.ts as number) - Date.now())).toBeLessThan(60_000);
        expect(Object.keys(body.values).sort()).toEqual([...sensor.metrics!].sort());
        for (const [metric, value] of Object.entries(body.values)) {
          const { min, max } = config.metrics[metric]!;
          expect(asNumber(value)).toBeGreaterThanOrEqual(min!);
          expect(asNumber(value)).toBeLessThanOrEqual(max!);
          if (['smoke', 'fire_alarm', 'fault'].includes(metric)) expect(typeof value).toBe('boolean');
        }
        expect(p.qos).toBe(1);
      }
    }

    // credentials: username = device id, password = its secret; last will = offline, retained
    const publishers = config.devices.filter((d) => d.assets.length > 0).map((d) => d.id);
    expect([...logins.values()].map((l) => l.username).sort()).toEqual([...publishers].sort());
    for (const login of logins.values()) {
      expect(login.password).toBe(secrets.get(login.username!));
      expect(login.will).toEqual({ topic: `status/${login.username}`, payload: 'offline', retain: true });
    }
    expect(deniedPublishes).toEqual([]);
    for (const p of telemetry) expect(config.devices.find((d) => d.id === logins.get(p.clientId)!.username)!.assets).toContain(p.topic.split('/')[1]);

    // status: online when connected, offline (retained) on the clean stop
    for (const id of publishers) {
      const status = published.filter((p) => p.topic === `status/${id}`).map((p) => [p.payload, p.retain, p.qos]);
      expect(status, id).toEqual([
        ['online', true, 1],
        ['offline', true, 1],
      ]);
    }

    // the scenario's incident: 水径村 hp-02 below the 0.25 MPa yellow level, above orange
    const lowHydrant = telemetry
      .filter((p) => p.topic === 'telemetry/lg-hydrant-002/hp-02')
      .map((p) => (JSON.parse(p.payload) as { values: { hydrant_pressure: number } }).values.hydrant_pressure);
    expect(lowHydrant.length).toBeGreaterThan(0);
    for (const v of lowHydrant) {
      expect(v).toBeLessThan(0.25);
      expect(v).toBeGreaterThan(0.2);
    }
    // ... and nothing else crosses a demo rule threshold
    const crossings = telemetry.flatMap((p) => {
      const [, assetId, sensorId] = p.topic.split('/') as [string, string, string];
      const asset = config.assets.find((a) => a.id === assetId)!;
      const body = JSON.parse(p.payload) as { values: Record<string, number | boolean> };
      return Object.entries(body.values).flatMap(([metric, value]) =>
        valueRules(config.rules)
          .filter((r) => ruleMatches(r, { assetId, assetType: asset.type, street: asset.street, sensorId, metric, range: {} }))
          .filter((r) => levelOf(r, asNumber(value)) !== undefined)
          .map((r) => `${r.id} ${assetId}/${sensorId}`),
      );
    });
    expect(new Set(crossings)).toEqual(new Set(['hydrant-pressure-low lg-hydrant-002/hp-02']));

    // the summary matches what the broker saw
    expect(summary.sent).toBe(telemetry.length);
    expect(summary.acknowledged).toBe(summary.sent);
    expect(summary.errors).toBe(0);
    expect(summary.unacknowledged).toBe(0);
    expect(Object.keys(summary.perAsset).sort()).toEqual(config.assets.map((a) => a.id).sort());
    expect(summary.rejected).toEqual([{ device: 'rtu-gas-001', ...rejection }]);
    expect(summary.rejectedTotal).toBe(1);
  });

  it('sends the incident scenario’s smoke alarm on the 18F detector two seconds in', async () => {
    const summary = await runSimulation(config, { url, scenario: 'incident', duration: 2.6, rate: 5, logger: silentLogger() });
    const smoke = (sensor: string) =>
      published.filter((p) => p.topic === `telemetry/lg-building-001/${sensor}`).map((p) => JSON.parse(p.payload) as { ts: number; values: { smoke: boolean } });
    const alarmed = smoke('smoke-18f-01').filter((r) => r.values.smoke);
    expect(alarmed.length).toBeGreaterThan(0);
    expect(smoke('smoke-18f-01')[0]!.values.smoke).toBe(false);
    expect(smoke('smoke-18f-02').every((r) => !r.values.smoke)).toBe(true);
    expect(summary.scenario).toBe('incident');
    expect(summary.errors).toBe(0);
  });

  it('reports a device the broker refuses and still ends on time', async () => {
    const started = Date.now();
    const summary = await runSimulation(config, { url, duration: 1, devices: 2, secrets: { 'dau-slope-001': 'wrong-secret-value' }, logger: silentLogger() });
    expect(Date.now() - started).toBeLessThan(5_000);
    expect(summary.refused).toEqual(['dau-slope-001']);
    expect(Object.keys(summary.perAsset)).toContain('lg-bridge-001');
    expect(published.some((p) => p.topic.startsWith('telemetry/lg-slope-001/'))).toBe(false);
  });

  it('load mode: replicas of the configured devices over a few connections, each reading once, with progress', async () => {
    const progress: number[] = [];
    const summary = await runSimulation(config, {
      url,
      scenario: 'quiet',
      devices: 50,
      connections: 10,
      rate: 5,
      duration: 1.2,
      logger: silentLogger(),
      onProgress: (p) => progress.push(p.sent),
    });
    const telemetry = published.filter((p) => p.topic.startsWith('telemetry/'));
    // 50 simulated devices = 7 configured ones, 7 times (and one more of the first) ...
    expect(summary.devices).toBe(50);
    // ... on 10 connections, at least one per device id, each logged in as that device
    expect(summary.connections).toBe(10);
    expect(new Set([...logins.values()].map((l) => l.username)).size).toBe(7);
    expect(logins.size).toBe(10);
    // every reading of every replica arrives once: 7 steps (0 … 1.2 s at 5/s) per sensor
    const perReplica = (d: number) => planSimulation(config).devices[d]!.sensors.length;
    let expected = 0;
    for (let i = 0; i < 50; i++) expected += perReplica(i % 7);
    expect(telemetry).toHaveLength(expected * 7);
    expect(summary.sent).toBe(expected * 7);
    expect(summary.acknowledged).toBe(summary.sent);
    // replicas are told apart by a millisecond offset: no two readings of a series share a timestamp
    const seen = new Set<string>();
    for (const p of telemetry) {
      const key = `${p.topic} ${(JSON.parse(p.payload) as { ts: number }).ts}`;
      expect(seen.has(key), key).toBe(false);
      seen.add(key);
    }
    expect(progress.at(-1)).toBe(summary.sent);
    expect(deniedPublishes).toEqual([]);
  });

  it('ends when aborted, and keeps going through a broker that is not there yet', async () => {
    const controller = new AbortController();
    const port = (server.address() as AddressInfo).port;
    await new Promise<void>((resolve) => server.close(() => resolve()));
    const run = runSimulation(config, { url: `mqtt://127.0.0.1:${port}`, devices: 1, rate: 10, logger: silentLogger(), signal: controller.signal });
    // the broker comes up late: readings made meanwhile are queued and delivered
    await new Promise((r) => setTimeout(r, 300));
    server = net.createServer(broker.handle);
    server.listen(port, '127.0.0.1');
    await once(server, 'listening');
    // Wait for the queued readings to arrive instead of for a fixed time.
    await expect.poll(() => published.some((p) => p.topic.startsWith('telemetry/lg-bridge-001/')), { timeout: 15_000 }).toBe(true);
    controller.abort();
    const summary = await run;
    expect(summary.acknowledged).toBeGreaterThan(0);
    expect(published.filter((p) => p.topic.startsWith('telemetry/lg-bridge-001/')).length).toBe(summary.acknowledged);
  });
});
