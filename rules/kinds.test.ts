/**
 * Every rule kind and signal through RuleRunner on event time (replayOnEventTime simulates the
 * platform clock), asserting whole timelines.
 */
import { describe, expect, it } from 'vitest';
import { replayOnEventTime, type ReplayItem } from './replay.js';
import { ruleSchema } from './config.js';
import { BRIDGE, GAS, HOUR, HYDRANT, line, MIN, reading, runnerOf, SEC, SLOPE, status, T0 } from '../test/support/rules.js';

const run = (rules: unknown[], items: ReplayItem[], end?: number) => replayOnEventTime(runnerOf(rules), items, end).map((e) => line(e));
const r2 = (v: number) => Math.round(v * 100) / 100;
const readingOf = (item: ReplayItem) => {
  if (item.kind !== 'reading') throw new Error('not a reading');
  return item.reading;
};

describe('threshold rules on windowed signals', () => {
  it('rate: displacement speeding up and slowing down again, judged over 6 h', () => {
    // 0.1 mm/h (2.4 mm/d) until 10 h, 0.3 mm/h until 20 h, 0.5 mm/h until 30 h, then 0.05 mm/h.
    const disp = (h: number) => r2(h <= 10 ? 0.1 * h : h <= 20 ? 1 + 0.3 * (h - 10) : h <= 30 ? 4 + 0.5 * (h - 20) : 9 + 0.05 * (h - 30));
    const items = Array.from({ length: 41 }, (_, h) => reading(SLOPE, 'gnss-01', 'displacement', T0 + h * HOUR, disp(h)));
    const rule = { id: 'disp-rate', match: { metric: 'displacement' }, signal: { rate: '1d', window: '6h' }, levels: { red: { above: 10 }, yellow: { above: 5 } } };
    expect(run([rule], items)).toEqual([
      '13:00 disp-rate lg-slope-001/gnss-01 displacement yellow 5.28 5', // (1.9 - 0.8) mm over 8 h..13 h
      '23:00 disp-rate lg-slope-001/gnss-01 displacement red 10.08 10',
      'd1 07:00 disp-rate lg-slope-001/gnss-01 displacement yellow 9.84 5',
      'd1 10:00 disp-rate lg-slope-001/gnss-01 displacement clear 3.36 5',
    ]);
  });

  it('sum: short-duration heavy rain (mm in the last hour), with for', () => {
    // 5-minute tips: 1 mm each until 00:30, then 4 mm each until 01:10, then dry.
    const items: ReplayItem[] = [];
    for (let m = 5; m <= 150; m += 5) items.push(reading(SLOPE, 'rain-01', 'rainfall', T0 + m * MIN, m <= 30 ? 1 : m <= 70 ? 4 : 0));
    const rule = { id: 'rain-1h', match: { metric: 'rainfall' }, signal: { sum: '1h' }, levels: { orange: { above: 30 }, yellow: { above: 20 } }, for: '10m' };
    expect(run([rule], items)).toEqual([
      // above 20 mm from 00:50 (6 + 4 x 4 = 22); held 10 min: yellow at 01:00 (30 mm, not above 30)
      '01:00 rain-1h lg-slope-001/rain-01 rainfall yellow 30 20',
      // above 30 mm from 01:05 (the 00:05 tip has left: 5 + 4 x 7 = 33); held 10 min: orange at 01:15
      '01:15 rain-1h lg-slope-001/rain-01 rainfall orange 35 30',
      '01:35 rain-1h lg-slope-001/rain-01 rainfall yellow 28 20', // a drop is immediate
      '01:45 rain-1h lg-slope-001/rain-01 rainfall clear 20 20',
    ]);
  });

  it('avg, min and max', () => {
    const values = [0.3, 0.28, 0.12, 0.29, 0.3, 0.31, 0.3, 0.29];
    const items = values.map((v, i) => reading(HYDRANT, 'hp-02', 'hydrant_pressure', T0 + i * MIN, v));
    const rules = [
      { id: 'p-min', match: { metric: 'hydrant_pressure' }, signal: { min: '3m' }, levels: { red: { below: 0.14 } } },
      { id: 'p-avg', match: { metric: 'hydrant_pressure' }, signal: { avg: '3m' }, levels: { yellow: { below: 0.25 } } },
      { id: 'p-max', match: { metric: 'hydrant_pressure' }, signal: { max: '2m' }, levels: { blue: { above: 0.305 } } },
    ];
    expect(run(rules, items)).toEqual([
      '00:02 p-min lg-hydrant-002/hp-02 hydrant_pressure red 0.12 0.14',
      '00:02 p-avg lg-hydrant-002/hp-02 hydrant_pressure yellow 0.2333 0.25',
      '00:05 p-min lg-hydrant-002/hp-02 hydrant_pressure clear 0.29 0.14', // the 0.12 reading left the 3-minute window
      '00:05 p-avg lg-hydrant-002/hp-02 hydrant_pressure clear 0.3 0.25',
      '00:05 p-max lg-hydrant-002/hp-02 hydrant_pressure blue 0.31 0.305',
      '00:07 p-max lg-hydrant-002/hp-02 hydrant_pressure clear 0.3 0.305',
    ]);
  });

  it('ignores readings older than the series’ last one, keeping the window as it was', () => {
    const rule = { id: 's', match: { metric: 'rainfall' }, signal: { sum: '1h' }, levels: { yellow: { above: 10 } } };
    const runner = runnerOf([rule]);
    const items = [
      reading(SLOPE, 'rain-01', 'rainfall', T0 + 10 * MIN, 6),
      reading(SLOPE, 'rain-01', 'rainfall', T0 + 5 * MIN, 9),
      reading(SLOPE, 'rain-01', 'rainfall', T0 + 20 * MIN, 4.5),
    ];
    const events = items.flatMap((i) => runner.process([readingOf(i)], i.ts));
    expect(events.map((e) => line(e))).toEqual(['00:20 s lg-slope-001/rain-01 rainfall yellow 10.5 10']);
    expect(runner.stats()).toMatchObject({ outOfOrder: 1, windows: 1, slots: 2 });
  });
});

describe('stale rules', () => {
  const rule = { id: 'sensor-silent', match: { asset_type: ['bridge', 'slope'] }, stale: '10m', level: 'yellow' };

  it('fires once per sensor when it falls silent and resolves when data returns (platform clock)', () => {
    const items: ReplayItem[] = [];
    for (let m = 0; m <= 60; m++) {
      items.push(reading(BRIDGE, 'strain-02', 'strain', T0 + m * MIN, 120));
      if (m <= 30 || m >= 60) items.push(reading(BRIDGE, 'strain-01', 'strain', T0 + m * MIN, 120));
    }
    expect(run([rule], items, T0 + 90 * MIN)).toEqual([
      '00:40 sensor-silent lg-bridge-001/strain-01 strain yellow 600 600',
      '01:00 sensor-silent lg-bridge-001/strain-01 strain clear 1800 600 (data_returned)',
      // strain-02 stops at 01:00 with the end of the recording; the clock runs on to 01:30
      '01:10 sensor-silent lg-bridge-001/strain-02 strain yellow 600 600',
      '01:10 sensor-silent lg-bridge-001/strain-01 strain yellow 600 600',
    ]);
  });

  it('watches configured sensors that never report, and not assets the rule does not match', () => {
    const runner = runnerOf([rule]);
    runner.watch(
      [
        { ...SLOPE, sensorId: 'gnss-01', metrics: ['displacement'] },
        { ...GAS, sensorId: 'pt-01', metrics: ['pressure'] },
      ],
      T0,
    );
    expect(replayOnEventTime(runner, [], T0 + 15 * MIN).map((e) => line(e))).toEqual(['00:10 sensor-silent lg-slope-001/gnss-01 displacement yellow 600 600']);
  });

  it('a metric filter: only that metric counts as a sign of life', () => {
    const only = { id: 'no-strain', match: { metric: 'strain' }, stale: '5m', level: 'blue' };
    const items = [
      reading(BRIDGE, 'strain-01', 'strain', T0, 1),
      reading(BRIDGE, 'strain-01', 'temperature', T0 + 4 * MIN, 20),
      reading(BRIDGE, 'strain-01', 'temperature', T0 + 8 * MIN, 20),
    ];
    expect(run([only], items)).toEqual(['00:05 no-strain lg-bridge-001/strain-01 strain blue 300 300']);
  });
});

describe('offline rules', () => {
  const assets = [{ assetId: 'lg-slope-001', assetType: 'slope', street: '坂田街道' }];

  it('a device not back within the grace period; back in time is nothing', () => {
    const rule = { id: 'dau-offline', offline: '2m', level: 'yellow' };
    const items = [
      status('dau-slope-001', assets, 'online', T0),
      status('dau-slope-001', assets, 'offline', T0 + 5 * MIN), // last will: a 4G drop-out
      status('dau-slope-001', assets, 'online', T0 + 6 * MIN + 30 * SEC),
      status('dau-slope-001', assets, 'offline', T0 + HOUR), // solar battery empty
      status('dau-slope-001', assets, 'offline', T0 + HOUR + MIN), // a second disconnect does not restart the grace period
      status('dau-slope-001', assets, 'online', T0 + 2 * HOUR),
    ];
    expect(run([rule], items)).toEqual([
      '01:02 dau-offline lg-slope-001/dau-slope-001 status yellow 120 120',
      '02:00 dau-offline lg-slope-001/dau-slope-001 status clear 3600 120 (device_online)',
    ]);
  });

  it('one alert per covered asset; match by device id or by the assets it serves', () => {
    const two = [
      { assetId: 'lg-hydrant-001', assetType: 'fire', street: '龙岗街道' },
      { assetId: 'lg-slope-009', assetType: 'slope', street: '园山街道' },
    ];
    const rules = [
      { id: 'fire-dau-offline', match: { asset_type: 'fire' }, offline: '1m', level: 'orange' },
      { id: 'named', match: { device_id: ['dau-x'] }, offline: '0s', level: 'blue' },
    ];
    expect(run(rules, [status('dau-x', two, 'offline', T0), status('dau-x', two, 'online', T0 + 10 * MIN)])).toEqual([
      '00:00 named lg-hydrant-001/dau-x status blue 0 0',
      '00:00 named lg-slope-009/dau-x status blue 0 0',
      '00:01 fire-dau-offline lg-hydrant-001/dau-x status orange 60 60',
      '00:10 fire-dau-offline lg-hydrant-001/dau-x status clear 600 60 (device_online)',
      '00:10 named lg-hydrant-001/dau-x status clear 600 0 (device_online)',
      '00:10 named lg-slope-009/dau-x status clear 600 0 (device_online)',
    ]);
  });
});

describe('compound rules', () => {
  const landslide = {
    id: 'landslide-risk',
    match: { asset_type: 'slope' },
    all: [
      { metric: 'rainfall', signal: { sum: '24h' }, above: 100 },
      { metric: 'displacement', signal: { rate: '1d', window: '6h' }, above: 5 },
    ],
    level: 'red',
  };

  it('all: heavy rain over 24 h together with a displacement rate, on one asset', () => {
    const items: ReplayItem[] = [];
    for (let h = 1; h <= 48; h++) {
      // 12 mm/h from 01:00 to 10:00 (120 mm), dry after that
      items.push(reading(SLOPE, 'rain-01', 'rainfall', T0 + h * HOUR, h <= 10 ? 12 : 0));
      // creep of 1.2 mm/d, 9.6 mm/d from 06:00 to 18:00, then 1.2 mm/d again
      const d = h <= 6 ? 0.05 * h : h <= 18 ? 0.3 + 0.4 * (h - 6) : 5.1 + 0.05 * (h - 18);
      items.push(reading(SLOPE, 'gnss-01', 'displacement', T0 + h * HOUR + 30 * SEC, r2(d)));
    }
    // Another slope with the same rain but no movement: no alert.
    for (let h = 1; h <= 12; h++) items.push(reading({ ...SLOPE, assetId: 'lg-slope-002' }, 'rain-01', 'rainfall', T0 + h * HOUR + 45 * SEC, 12));
    items.sort((a, b) => a.ts - b.ts);
    expect(run([landslide], items)).toEqual([
      // the rate over 6 h passes 5 mm/d at 09:00 ((1.5 - 0.2) mm in 5 h), with 108 mm of rain by then
      '09:00:30 landslide-risk lg-slope-001/* displacement red 6.24 5',
      // and falls back under it at 21:00 ((5.25 - 4.3) mm in 5 h) while the rain sum is still 120 mm
      '21:00:30 landslide-risk lg-slope-001/* displacement clear 4.56 5',
    ]);
  });

  it('any: one met condition is enough; hysteresis holds each condition while the compound holds', () => {
    const rule = {
      id: 'gas-any',
      any: [
        { metric: 'gas_lel', above: 25, hysteresis: 0.5 },
        { metric: 'pressure', below: 0.15 },
      ],
      level: 'orange',
    };
    const items = [
      reading(GAS, 'pt-02', 'pressure', T0, 0.3),
      reading(GAS, 'vw-01', 'gas_lel', T0 + MIN, 26),
      reading(GAS, 'vw-01', 'gas_lel', T0 + 2 * MIN, 24.8), // within hysteresis: still met
      reading(GAS, 'pt-02', 'pressure', T0 + 3 * MIN, 0.1),
      reading(GAS, 'vw-01', 'gas_lel', T0 + 4 * MIN, 3),
      reading(GAS, 'pt-02', 'pressure', T0 + 5 * MIN, 0.3),
    ];
    expect(run([rule], items)).toEqual(['00:01 gas-any lg-gas-001/* gas_lel orange 26 25', '00:05 gas-any lg-gas-001/* pressure clear 0.3 0.15']);
  });
});

describe('flapping', () => {
  it('marks the change that exceeds max_changes, the changes after it, and the end after one stable window', () => {
    const rule = { id: 'strain', match: { metric: 'strain' }, levels: { yellow: { above: 200 } }, flapping: { window: '30m', max_changes: 4 } };
    const values = [190, 205, 195, 210, 198, 203, 199, 201, 150, 150];
    const items = values.map((v, i) => reading(BRIDGE, 'strain-01', 'strain', T0 + i * 2 * MIN, v));
    expect(run([rule], items, T0 + 2 * HOUR)).toEqual([
      '00:02 strain lg-bridge-001/strain-01 strain yellow 205 200',
      '00:04 strain lg-bridge-001/strain-01 strain clear 195 200',
      '00:06 strain lg-bridge-001/strain-01 strain yellow 210 200',
      '00:08 strain lg-bridge-001/strain-01 strain clear 198 200',
      '00:10 strain lg-bridge-001/strain-01 strain yellow 203 200 [flapping started, 5 changes]',
      '00:12 strain lg-bridge-001/strain-01 strain clear 199 200 [flapping flapping, 6 changes]',
      '00:14 strain lg-bridge-001/strain-01 strain yellow 201 200 [flapping flapping, 7 changes]',
      '00:16 strain lg-bridge-001/strain-01 strain clear 150 200 [flapping flapping, 8 changes]',
      '00:46 strain lg-bridge-001/strain-01 strain clear 150 200 [flapping ended, 8 changes]',
    ]);
  });
});

describe('flapping across a restart', () => {
  it('an alert still held as flapping ends one stable window after the restart; a rule without flapping releases it', () => {
    const rule = { id: 'strain', match: { metric: 'strain' }, levels: { yellow: { above: 200 } }, flapping: { window: '30m', max_changes: 4 } };
    const plain = { id: 'plain', match: { metric: 'strain' }, levels: { yellow: { above: 200 } } };
    const runner = runnerOf([rule, plain]);
    const seed = (rule_id: string) => ({
      rule_id,
      asset_id: BRIDGE.assetId,
      sensor_id: 'strain-01',
      asset_type: 'bridge',
      street: BRIDGE.street,
      metric: 'strain',
      level: 'yellow' as const,
      value: 205,
      threshold: 200,
    });
    expect(runner.restoreFlapping([seed('strain'), seed('plain')], T0).map((a) => a.rule_id)).toEqual(['plain']);
    expect(replayOnEventTime(runner, [], T0 + HOUR).map((e) => line(e))).toEqual(['00:30 strain lg-bridge-001/strain-01 strain yellow 205 200 [flapping ended, 0 changes]']);
  });
});

describe('reload and restart', () => {
  const strain = { id: 'strain', match: { asset_type: 'bridge', metric: 'strain' }, levels: { red: { above: 300 }, yellow: { above: 200 } } };
  const rain = { id: 'rain', match: { metric: 'rainfall' }, signal: { sum: '1h' }, levels: { yellow: { above: 10 } } };
  const silent = { id: 'silent', stale: '10m', level: 'yellow' };
  const parse = (rules: unknown[]) => rules.map((r) => ruleSchema.parse(r));

  it('keeps the state of rules whose evaluation is unchanged, and reports what changed', () => {
    const runner = runnerOf([strain, rain, silent]);
    const feed = (items: ReplayItem[]) => items.flatMap((i) => (i.kind === 'reading' ? runner.process([i.reading], i.ts) : [])).map((e) => line(e));
    expect(feed([reading(BRIDGE, 'strain-01', 'strain', T0, 250), reading(SLOPE, 'rain-01', 'rainfall', T0, 8)])).toEqual(['00:00 strain lg-bridge-001/strain-01 strain yellow 250 200']);
    const changes = runner.replace(
      parse([
        { ...strain, levels: { red: { above: 240 }, yellow: { above: 200 } } }, // thresholds edited: state kept
        { ...rain, signal: { sum: '2h' } }, // another window: starts afresh
        { id: 'new', stale: '1h', level: 'blue' },
      ]),
      T0 + MIN,
    );
    expect(changes).toEqual({ added: ['new'], removed: ['silent'], disabled: [], changed: ['rain'], updated: ['strain'], unmatched: [] });
    // strain is still at yellow (no second firing); the next reading is judged by the new thresholds.
    expect(feed([reading(BRIDGE, 'strain-01', 'strain', T0 + 2 * MIN, 250), reading(SLOPE, 'rain-01', 'rainfall', T0 + 2 * MIN, 3)])).toEqual([
      '00:02 strain lg-bridge-001/strain-01 strain red 250 240',
    ]);
  });

  it('a narrowed match reports the alerts it no longer covers; a disabled rule is reported as such', () => {
    const runner = runnerOf([strain, silent]);
    runner.process([readingOf(reading(BRIDGE, 'strain-01', 'strain', T0, 250))], T0);
    const changes = runner.replace(
      parse([
        { ...strain, match: { asset_type: 'tunnel', metric: 'strain' } },
        { ...silent, enabled: false },
      ]),
      T0,
    );
    expect(changes).toEqual({
      added: [],
      removed: [],
      disabled: ['silent'],
      changed: [],
      updated: ['strain'],
      unmatched: [{ ruleId: 'strain', assetId: 'lg-bridge-001', sensorId: 'strain-01', level: 'yellow' }],
    });
    expect(runner.stats()).toMatchObject({ alerts: 0, series: 0, staleSensors: 0 });
  });

  it('restored alerts resolve after a restart, and a windowed one waits for its window to refill', () => {
    const disp = { id: 'disp', match: { metric: 'displacement' }, signal: { avg: '1h' }, levels: { yellow: { above: 30 } } };
    const offline = { id: 'off', offline: '2m', level: 'yellow' };
    const runner = runnerOf([strain, disp, { ...silent, stale: '2h' }, offline]);
    const seed = (rule_id: string, asset: typeof SLOPE, sensor_id: string, metric: string, value: number) => ({
      rule_id,
      asset_id: asset.assetId,
      sensor_id,
      asset_type: asset.assetType,
      street: asset.street,
      metric,
      level: 'yellow' as const,
      value,
    });
    expect(
      runner.restore(
        [
          seed('strain', BRIDGE, 'strain-01', 'strain', 250),
          seed('disp', SLOPE, 'gnss-01', 'displacement', 35),
          seed('silent', SLOPE, 'rain-01', 'rainfall', 600),
          seed('off', SLOPE, 'dau-slope-001', 'status', 300),
          seed('gone', SLOPE, 'x', 'y', 1),
        ],
        T0,
      ),
    ).toEqual(['gone']);
    const items: ReplayItem[] = [
      reading(BRIDGE, 'strain-01', 'strain', T0 + MIN, 150),
      reading(SLOPE, 'rain-01', 'rainfall', T0 + MIN, 0),
      status('dau-slope-001', [SLOPE], 'online', T0 + 2 * MIN),
    ];
    for (let m = 0; m <= 70; m += 10) items.push(reading(SLOPE, 'gnss-01', 'displacement', T0 + 5 * MIN + m * MIN, 20));
    items.sort((a, b) => a.ts - b.ts);
    expect(replayOnEventTime(runner, items).map((e) => line(e))).toEqual([
      '00:01 strain lg-bridge-001/strain-01 strain clear 150 200',
      '00:01 silent lg-slope-001/rain-01 rainfall clear 60 7200 (data_returned)',
      '00:02 off lg-slope-001/dau-slope-001 status clear 120 120 (device_online)',
      // avg is 20 from the first reading, but the window is only full one hour after it
      '01:05 disp lg-slope-001/gnss-01 displacement clear 20 30',
    ]);
  });
});
