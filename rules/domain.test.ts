/**
 * Domain tests: the rules shipped in config-demo/rules.yaml against synthetic but physically
 * plausible series, on event time, asserting the exact alert timeline of each.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { ruleSchema, type RuleConfig } from './config.js';
import { replayOnEventTime, type ReplayItem } from './replay.js';
import { RuleRunner } from './rule-runner.js';
import { BRIDGE, GAS, HOUR, line, MIN, reading, SEC, SLOPE, status, T0, type AssetInfo } from '../test/support/rules.js';

const DEMO_RULES: RuleConfig[] = (parse(readFileSync(join(import.meta.dirname, '..', 'config-demo', 'rules.yaml'), 'utf8')) as { rules: unknown[] }).rules.map((r) => ruleSchema.parse(r));

function replay(items: ReplayItem[], end?: number, rules: RuleConfig[] = DEMO_RULES): string[] {
  items.sort((a, b) => a.ts - b.ts); // stable: equal ts keep their order
  return replayOnEventTime(new RuleRunner(rules), items, end).map((e) => line(e));
}

const round = (v: number, digits: number) => Number(v.toFixed(digits));

/** mulberry32, for deterministic sensor noise. */
function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = Math.imul(a ^ (a >>> 15), a | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

describe('slope: uniform creep, acceleration, failure (improved tangent-angle method)', () => {
  // 园山 draw-wire sensor, every 5 min, 0.01 mm. The rule's calibrated velocity is 0.8 mm/d; this dry
  // season the slope creeps at 0.72 mm/d (α = atan 0.9 = 42°). From day 10 it accelerates as in
  // Fukuzono's inverse-velocity model (1/v falls linearly to zero at failure on day 15):
  // v(t) = 0.72 / (1 - (t - 10 d) / 5 d), S(t) = S(10 d) - 0.72 · 5 · ln(1 - (t - 10 d) / 5 d).
  // The last reading is at 14 d 23:55; the wire snaps at failure and the sensor falls silent.
  const YUANSHAN: AssetInfo = { assetId: 'lg-slope-002', assetType: 'slope', street: '园山街道' };
  const S = (h: number) => (h <= 240 ? 12 + (0.72 * h) / 24 : 12 + 7.2 - 3.6 * Math.log(1 - (h - 240) / 120));
  const items = Array.from({ length: 360 * 12 }, (_, i) => reading(YUANSHAN, 'disp-01', 'displacement', T0 + i * 5 * MIN, round(S(i / 12), 2)));

  it('warns at 45°, 80° and 85°, well before cumulative displacement does, and notices the silence after failure', () => {
    expect(replay(items, T0 + 361 * HOUR)).toEqual([
      // α over 6 h passes 45° 11.6 h into the acceleration, 80° 16 h and 85° 6.75 h before failure
      'd10 11:35 landslide-tangent-angle-yuanshan lg-slope-002/disp-01 displacement yellow 45.4 45',
      'd14 07:45 landslide-tangent-angle-yuanshan lg-slope-002/disp-01 displacement orange 80.01 80',
      'd14 17:15 landslide-tangent-angle-yuanshan lg-slope-002/disp-01 displacement red 85.03 85',
      // the 30 mm cumulative alarm comes only after red (for: 1m needs a second reading above it)
      'd14 18:10 slope-displacement lg-slope-002/disp-01 displacement yellow 30.09 30',
      'd15 00:05 sensor-silent lg-slope-002/disp-01 displacement yellow 600 600',
    ]);
  });
});

describe('gas network: combustible gas in a valve well (GB/T 50493-2019)', () => {
  // 1# valve well, one reading a second: background 0.5 %LEL, a leak raising it by 1 %LEL/s from
  // 00:01:00 to 60 %LEL, then the crew ventilates the well (−2 %LEL/s from 00:03:00).
  const lel = (s: number) => (s < 60 ? 0.5 : s < 120 ? s - 60 + 0.5 : s < 180 ? 60 : Math.max(0.5, 60 - 2 * (s - 179)));
  const items = Array.from({ length: 240 }, (_, s) => reading(GAS, 'vw-01', 'gas_lel', T0 + s * SEC, lel(s)));

  it('blue at 10 %LEL, orange past the first alarm level (25 %LEL), red past the second (50 %LEL), each after 2 s', () => {
    expect(replay(items)).toEqual([
      '00:01:12 gas-leak lg-gas-001/vw-01 gas_lel blue 12.5 10',
      '00:01:27 gas-leak lg-gas-001/vw-01 gas_lel orange 27.5 25',
      '00:01:52 gas-leak lg-gas-001/vw-01 gas_lel red 52.5 50',
      // down through the hysteresis band (2 %LEL): red is left below 48, orange below 23, blue below 8
      '00:03:05 gas-leak lg-gas-001/vw-01 gas_lel orange 48 25',
      '00:03:18 gas-leak lg-gas-001/vw-01 gas_lel blue 22 10',
      '00:03:25 gas-leak lg-gas-001/vw-01 gas_lel clear 8 10',
    ]);
  });
});

describe('hydrant network: pressure sagging after a main burst (GB 50974-2014)', () => {
  // hp-03, the least favourable hydrant of 龙岗墟, every 5 s, 0.001 MPa resolution: 0.32 MPa until
  // a main bursts at 00:01:00, then −0.001 MPa/s down to 0.10 MPa; the valve crew isolates the
  // break and pressure recovers at +0.0023 MPa/s from 00:10:00.
  const HYDRANT_001: AssetInfo = { assetId: 'lg-hydrant-001', assetType: 'fire', street: '龙岗街道' };
  const p = (s: number) => (s < 60 ? 0.32 : s < 600 ? Math.max(0.1, 0.32 - 0.001 * (s - 60)) : Math.min(0.32, 0.1 + 0.0023 * (s - 600)));
  const items = Array.from({ length: 180 }, (_, i) => reading(HYDRANT_001, 'hp-03', 'hydrant_pressure', T0 + i * 5 * SEC, round(p(i * 5), 3)));

  it('yellow below 0.25, orange below 0.20, red below the 0.14 MPa minimum, each held 5 s; back with 0.02 MPa hysteresis', () => {
    expect(replay(items)).toEqual([
      '00:02:20 hydrant-pressure-low lg-hydrant-001/hp-03 hydrant_pressure yellow 0.24 0.25',
      '00:03:10 hydrant-pressure-low lg-hydrant-001/hp-03 hydrant_pressure orange 0.19 0.2',
      '00:04:10 hydrant-pressure-low lg-hydrant-001/hp-03 hydrant_pressure red 0.13 0.14',
      '00:10:30 hydrant-pressure-low lg-hydrant-001/hp-03 hydrant_pressure orange 0.169 0.2',
      '00:10:55 hydrant-pressure-low lg-hydrant-001/hp-03 hydrant_pressure yellow 0.227 0.25',
      '00:11:15 hydrant-pressure-low lg-hydrant-001/hp-03 hydrant_pressure clear 0.272 0.25',
    ]);
  });
});

describe('bridge: girder strain with the daily temperature cycle', () => {
  // strain-01 every 30 s for two days: a static 172 µε (raised after a bearing seized), the daily
  // thermal cycle of ±33 µε peaking at 15:00, and passing traffic of up to ±6 µε. The afternoon
  // peak crosses the 200 µε yellow threshold slowly, with the traffic noise on top.
  const noise = rng(20250601);
  const items: ReplayItem[] = [];
  for (let t = 0; t < 2 * 24 * HOUR; t += 30 * SEC) {
    const hour = t / HOUR;
    const strain = 172 + 33 * Math.cos((2 * Math.PI * (hour - 15)) / 24) + (noise() * 2 - 1) * 6;
    items.push(reading(BRIDGE, 'strain-01', 'strain', T0 + t, round(strain, 1)));
  }

  it('with the shipped hysteresis (20 µε): one alert each afternoon, resolved in the evening', () => {
    expect(replay([...items])).toEqual([
      '12:28 bridge-strain lg-bridge-001/strain-01 strain yellow 200.4 200',
      '19:23 bridge-strain lg-bridge-001/strain-01 strain clear 179.6 200',
      'd1 12:19 bridge-strain lg-bridge-001/strain-01 strain yellow 200.9 200',
      'd1 19:26 bridge-strain lg-bridge-001/strain-01 strain clear 179.4 200',
    ]);
  });

  it('without hysteresis the same signal flaps across the threshold', () => {
    const noHysteresis = DEMO_RULES.map((r) => (r.id === 'bridge-strain' ? { ...r, hysteresis: 0, flapping: { windowMs: 30 * MIN, maxChanges: 6 } } : r));
    const timeline = replay([...items], undefined, noHysteresis).filter((l) => l.includes('bridge-strain'));
    expect(timeline.length).toBe(302);
    // flapping detection (more than 6 changes in 30 min) marks both afternoons, and their end
    expect(timeline.filter((l) => /\[flapping (started|ended)/.test(l))).toEqual([
      '12:39:30 bridge-strain lg-bridge-001/strain-01 strain yellow 200.6 200 [flapping started, 7 changes]',
      '18:29 bridge-strain lg-bridge-001/strain-01 strain clear 194.5 200 [flapping ended, 154 changes]',
      'd1 12:33:30 bridge-strain lg-bridge-001/strain-01 strain yellow 202.9 200 [flapping started, 7 changes]',
      'd1 18:07 bridge-strain lg-bridge-001/strain-01 strain clear 199.5 200 [flapping ended, 146 changes]',
    ]);
  });
});

describe('a sensor falling silent and a device dropping off', () => {
  // dau-slope-001 (solar + 4G) reports its five sensors every minute. A 40 s 4G drop-out at
  // 01:00 is ridden out; at 02:00:30 its battery is flat (the broker publishes its last will) and
  // it is back at 06:00 when the sun is up.
  const SENSORS: Array<[string, string, number]> = [
    ['gnss-01', 'displacement', 12.4],
    ['gnss-02', 'displacement', 8.1],
    ['rain-01', 'rainfall', 0],
    ['piezo-01', 'pore_pressure', 31.5],
    ['tilt-01', 'tilt', 0.2],
  ];
  const assets = [{ assetId: SLOPE.assetId, assetType: SLOPE.assetType, street: SLOPE.street }];
  const items: ReplayItem[] = [status('dau-slope-001', assets, 'online', T0)];
  for (let m = 0; m <= 6 * 60 + 5; m++) {
    if (m > 120 && m < 360) continue;
    for (const [sensor, metric, value] of SENSORS) items.push(reading(SLOPE, sensor, metric, T0 + m * MIN, value));
  }
  items.push(status('dau-slope-001', assets, 'offline', T0 + HOUR), status('dau-slope-001', assets, 'online', T0 + HOUR + 40 * SEC));
  items.push(status('dau-slope-001', assets, 'offline', T0 + 2 * HOUR + 30 * SEC), status('dau-slope-001', assets, 'online', T0 + 6 * HOUR - SEC));

  it('offline after the 2 min grace, one stale alert per sensor after 10 min, all resolved when it is back', () => {
    expect(replay(items)).toEqual([
      '02:02:30 dau-offline lg-slope-001/dau-slope-001 status yellow 120 120',
      '02:10 sensor-silent lg-slope-001/gnss-01 displacement yellow 600 600',
      '02:10 sensor-silent lg-slope-001/gnss-02 displacement yellow 600 600',
      '02:10 sensor-silent lg-slope-001/rain-01 rainfall yellow 600 600',
      '02:10 sensor-silent lg-slope-001/piezo-01 pore_pressure yellow 600 600',
      '02:10 sensor-silent lg-slope-001/tilt-01 tilt yellow 600 600',
      '05:59:59 dau-offline lg-slope-001/dau-slope-001 status clear 14369 120 (device_online)',
      '06:00 sensor-silent lg-slope-001/gnss-01 displacement clear 14400 600 (data_returned)',
      '06:00 sensor-silent lg-slope-001/gnss-02 displacement clear 14400 600 (data_returned)',
      '06:00 sensor-silent lg-slope-001/rain-01 rainfall clear 14400 600 (data_returned)',
      '06:00 sensor-silent lg-slope-001/piezo-01 pore_pressure clear 14400 600 (data_returned)',
      '06:00 sensor-silent lg-slope-001/tilt-01 tilt clear 14400 600 (data_returned)',
    ]);
  });
});
