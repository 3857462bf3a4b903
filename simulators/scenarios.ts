/**
 * Simulation scenarios: what happens on top of the everyday signals, and when.
 *
 * A scenario is a list of effects on a timeline of *simulated* seconds from the start of the run
 * (`--speed` compresses it; see ./clock.ts):
 *
 * - `value`: drives one metric of one sensor along a physical shape (a step, a linear drift, the
 *   accelerating creep of a slope, the collapse of a burst main, the lagged rise of groundwater).
 *   Where it ends up is either a warning level — the value is derived from the configured rule that
 *   matches the sensor, so the scenario keeps raising the level it promises when thresholds are
 *   tuned — or an offset from the everyday value, or an absolute value.
 * - `spike`: one outlier reading (interference, a loose connector).
 * - `rain`: a rainfall intensity profile (mm/h) over every sensor of a metric of an asset type.
 * - `dropout`: a sensor stops reporting (cut cable, flat battery), optionally until a time.
 * - `offline`: a device loses its link without saying goodbye (its last will fires), buffers its
 *   readings, and replays them when it is back.
 *
 * Next to each scenario, `expected` lists the alerts the demo configuration's rules raise (rule,
 * asset, sensor, the levels the alert passes through, whether it is still open at the end, and,
 * for rule kinds that judge silence on the platform's clock, that they need `--speed 1`).
 * `simulators/scenarios.e2e.test.ts` runs every scenario through the platform and asserts them.
 *
 * This file is mostly the scenarios themselves (data, each with its story in comments); how effects
 * are bound to rules and shaped over time is in ./scenario-effects.ts.
 */
import type { Level } from '../lib/levels.js';
import { SimulationError } from './errors.js';

/** How a `value` effect moves from the everyday value to its target, over `ramp` seconds. */
export type Shape = 'step' | 'linear' | 'creep' | 'collapse' | 'saturating';

export interface SensorRef {
  asset_id: string;
  sensor_id: string;
}

export interface ValueEffect {
  kind: 'value';
  /** Simulated seconds after the start of the run. */
  at: number;
  metric: string;
  sensor: SensorRef;
  /** Drive the signal into this level of the matching rule (and hold it below the next level). */
  level?: Level;
  /** Else (or when no rule matches): end this far from the everyday value. */
  offset?: number;
  /** Else: end at this absolute value (booleans: 1 = true). */
  value?: number;
  shape?: Shape;
  /** Seconds to move from the everyday value to the target; 0 / absent = a step. */
  ramp?: number;
  /** Seconds at the target before returning to normal; absent = until the run ends. */
  hold?: number;
  /** For `outside` rules: leave the band upwards (default) or downwards. */
  direction?: 'high' | 'low';
  note: string;
}

export interface SpikeEffect {
  kind: 'spike';
  at: number;
  metric: string;
  sensor: SensorRef;
  /** The outlier, inside the metric's catalogue range (out-of-range readings are refused). */
  value: number;
  note: string;
}

export interface RainEffect {
  kind: 'rain';
  at: number;
  asset_type: string;
  metric: string;
  /** [seconds after `at`, intensity in mm/h], linear in between, 0 after the last point. */
  profile: ReadonlyArray<readonly [number, number]>;
  note: string;
}

export interface DropoutEffect {
  kind: 'dropout';
  at: number;
  sensor: SensorRef;
  /** Simulated seconds after the start of the run when it reports again; absent = never. */
  until?: number;
  note: string;
}

export interface OfflineEffect {
  kind: 'offline';
  at: number;
  device: string;
  /** Simulated seconds without a link. */
  duration: number;
  note: string;
}

export type Effect = ValueEffect | SpikeEffect | RainEffect | DropoutEffect | OfflineEffect;

/** An alert a scenario raises with the demo configuration. */
export interface ExpectedAlert {
  rule_id: string;
  asset_id: string;
  sensor_id: string;
  /** The levels the alert reaches, in order (its raises); the last one is its final level. */
  levels: readonly Level[];
  /** Open at the end of the run, or resolved before it. */
  open: boolean;
  /** Roughly when (simulated seconds) the first level fires. */
  about: number;
  /**
   * Rule kinds judged on the platform's clock (stale, offline) see silence in the platform's time,
   * so against a real platform these alerts appear only when the run is not compressed
   * (`--speed 1`); the e2e test runs the platform's clock at the simulation's speed instead.
   */
  needs_real_time?: boolean;
  /**
   * Measurement noise may raise this alert at yellow and resolve it again, any number of times (or
   * never) — a tangent-angle rule's yellow sits at the slope's everyday creep rate, so a GNSS point
   * crosses it now and then. Listed apart from the alert the story itself raises.
   */
  noise?: boolean;
}

export interface ScenarioSpec {
  name: string;
  description: string;
  /** Simulated seconds the story takes; absent = it goes on until stopped. */
  length?: number;
  /**
   * Simulated seconds of everyday readings before the story, sent from the devices' buffers when
   * the run starts, so rules with long windows are defined from the first minute (see ./clock.ts).
   */
  history?: number;
  effects: readonly Effect[];
  /** With config-demo; alerts of rules the configuration lacks are left out by the tests. */
  expected: readonly ExpectedAlert[];
}

/**
 * 水径村 (Buji) is an urban village on a hillside at the far end of its supply zone: the hydrant
 * behind the village (hp-02) reads 0.21–0.24 MPa all day. That is above the GB 50974 minimum
 * (0.14 MPa) but below the water utility's 0.25 MPa warning level — a standing yellow alert that
 * the district knows about and that a fire crew must plan around. Every scenario but `quiet` has it.
 */
const CHRONIC_LOW_HYDRANT: ValueEffect = {
  kind: 'value',
  at: 0,
  metric: 'hydrant_pressure',
  level: 'yellow',
  sensor: { asset_id: 'lg-hydrant-002', sensor_id: 'hp-02' },
  note: '水径村 hp-02: chronic low hydrant pressure (urban village at the end of the supply zone)',
};
const CHRONIC_EXPECTED: ExpectedAlert = { rule_id: 'hydrant-pressure-low', asset_id: 'lg-hydrant-002', sensor_id: 'hp-02', levels: ['yellow'], open: true, about: 5 };

const MIN = 60;
const HOUR = 3600;
const DAY = 86_400;

/** The tangent-angle yellow the 坂田 GNSS points may cross on noise during a day of history. */
const BANTIAN_GNSS_NOISE: ExpectedAlert[] = ['gnss-01', 'gnss-02'].map((sensor_id) => ({
  rule_id: 'landslide-tangent-angle-bantian',
  asset_id: 'lg-slope-001',
  sensor_id,
  levels: ['yellow'],
  open: false,
  about: -DAY,
  noise: true,
}));

// One effect and one expected alert per line, so that each timeline reads down the page.
// prettier-ignore
export const SCENARIOS: Readonly<Record<string, ScenarioSpec>> = {
  // Everyday operation. Alerts (config-demo): hydrant-pressure-low yellow on lg-hydrant-002/hp-02
  // after its `for: 5s`, open for good. Nothing else: every other signal stays inside every rule's
  // quiet band over a whole day (signals.test checks that).
  normal: {
    name: 'normal',
    description: 'everyday operation of every asset, plus the one chronic low-pressure hydrant in 水径村',
    effects: [CHRONIC_LOW_HYDRANT],
    expected: [CHRONIC_EXPECTED],
  },

  // Sensor drift, an hour of it (a month of a poisoned catalytic bead or a wet strain-gauge cable,
  // compressed so that a demo shows it). Alerts: gas-leak blue on lg-gas-001/vw-01 at ~35 min — a
  // false alarm that sends a crew to recalibrate; bridge-strain yellow on lg-bridge-001/strain-02
  // at ~50 min, where strain-01 next to it stays at its everyday 20–90 µε.
  drift: {
    name: 'drift',
    description: 'the 1# valve-well gas detector and the L/4 strain gauge drift upwards over an hour',
    length: HOUR,
    effects: [
      CHRONIC_LOW_HYDRANT,
      { kind: 'value', at: 0, metric: 'gas_lel', level: 'blue', shape: 'linear', ramp: HOUR, sensor: { asset_id: 'lg-gas-001', sensor_id: 'vw-01' }, note: 'vw-01 catalytic sensor zero drifts upwards' },
      { kind: 'value', at: 0, metric: 'strain', level: 'yellow', shape: 'linear', ramp: HOUR, sensor: { asset_id: 'lg-bridge-001', sensor_id: 'strain-02' }, note: 'strain-02 gauge drifts (moisture in its cable)' },
    ],
    expected: [
      CHRONIC_EXPECTED,
      { rule_id: 'gas-leak', asset_id: 'lg-gas-001', sensor_id: 'vw-01', levels: ['blue'], open: true, about: 35 * MIN },
      { rule_id: 'bridge-strain', asset_id: 'lg-bridge-001', sensor_id: 'strain-02', levels: ['yellow'], open: true, about: 50 * MIN },
    ],
  },

  // One-reading outliers on five sensors, each far past a red threshold and inside the catalogue
  // range. Alerts: only the chronic hydrant — every rule on these metrics has a `for` longer than
  // one reading, so a single outlier never raises an alert.
  spike: {
    name: 'spike',
    description: 'single-reading spikes on strain, gas, hydrant, deflection and pore pressure that the rules must ride out',
    length: 10 * MIN,
    effects: [
      CHRONIC_LOW_HYDRANT,
      { kind: 'spike', at: 60, metric: 'strain', value: 850, sensor: { asset_id: 'lg-bridge-001', sensor_id: 'strain-01' }, note: 'electrical interference on strain-01' },
      { kind: 'spike', at: 120, metric: 'gas_lel', value: 60, sensor: { asset_id: 'lg-gas-001', sensor_id: 'vw-01' }, note: 'vw-01 reads 60 %LEL once (water on the sensor head)' },
      { kind: 'spike', at: 180, metric: 'hydrant_pressure', value: 0.05, sensor: { asset_id: 'lg-hydrant-001', sensor_id: 'hp-01' }, note: 'hp-01 pressure transient as a main valve is operated' },
      { kind: 'spike', at: 240, metric: 'deflection', value: 90, sensor: { asset_id: 'lg-bridge-001', sensor_id: 'deflection-01' }, note: 'deflection-01 glitch' },
      { kind: 'spike', at: 300, metric: 'pore_pressure', value: 500, sensor: { asset_id: 'lg-slope-001', sensor_id: 'piezo-01' }, note: 'piezo-01 glitch' },
    ],
    expected: [CHRONIC_EXPECTED],
  },

  // The 大康 slope's wire displacement meter is cut at 1 min and never reports again; the bridge
  // accelerometer drops out from 5 to 7 min (shorter than any stale rule). Alerts: sensor-silent
  // (stale: 10m) yellow on lg-slope-002/disp-01 at ~11 min, open — at `--speed 1` only, since
  // silence is judged on the platform's clock.
  sensor_dropout: {
    name: 'sensor_dropout',
    description: 'a displacement meter stops reporting for good, an accelerometer for two minutes',
    length: 15 * MIN,
    effects: [
      CHRONIC_LOW_HYDRANT,
      { kind: 'dropout', at: MIN, sensor: { asset_id: 'lg-slope-002', sensor_id: 'disp-01' }, note: 'disp-01 wire cut' },
      { kind: 'dropout', at: 5 * MIN, until: 7 * MIN, sensor: { asset_id: 'lg-bridge-001', sensor_id: 'accel-01' }, note: 'accel-01 connector loose for two minutes' },
    ],
    expected: [CHRONIC_EXPECTED, { rule_id: 'sensor-silent', asset_id: 'lg-slope-002', sensor_id: 'disp-01', levels: ['yellow'], open: true, about: 11 * MIN, needs_real_time: true }],
  },

  // The 大康 slope's monitoring station loses its 4G link at 1 min (the broker fires its last will,
  // `status/dau-slope-002` = offline), buffers its readings, and is back at 6 min, replaying the
  // five minutes with their original timestamps. Alerts: dau-offline (offline: 2m) yellow on
  // lg-slope-002 / device dau-slope-002 at ~3 min, resolved at ~6 min — at `--speed 1` only
  // (platform clock).
  device_offline: {
    name: 'device_offline',
    description: 'a slope monitoring station drops off the network for five minutes and replays its buffer',
    length: 10 * MIN,
    effects: [CHRONIC_LOW_HYDRANT, { kind: 'offline', at: MIN, duration: 5 * MIN, device: 'dau-slope-002', note: 'dau-slope-002 4G link lost' }],
    expected: [CHRONIC_EXPECTED, { rule_id: 'dau-offline', asset_id: 'lg-slope-002', sensor_id: 'dau-slope-002', levels: ['yellow'], open: false, about: 3 * MIN, needs_real_time: true }],
  },

  // The 坂田 cut slope fails within the hour. A day of everyday creep comes first (the devices'
  // buffers, so that day-long windows are defined). Then creep runs at the everyday rate for 5 min,
  // accelerates exponentially (velocity ×e every 4 min: the initial and medium acceleration stages)
  // and from 35 min keeps accelerating linearly (imminent sliding, ~5 mm per minute at the crest by
  // the end, ~90 mm in all). The crest GNSS point moves most, the inclinometer at the sliding
  // surface less, the second-platform GNSS point least. Alerts (config-demo), all open at the end:
  // - landslide-tangent-angle-bantian (1-day window, v = 0.5 mm/d; yellow > 45°, orange > 80°,
  //   red > 85°) on gnss-01 yellow ~26 min, orange ~33 min, red ~36 min; on incl-01 red ~40 min and
  //   gnss-02 red ~42 min (at --speed 60: red within 36–42 s);
  // - slope-displacement (cumulative 30/45/60 mm, for: 1m): gnss-01 yellow ~44 min, orange ~49 min,
  //   red ~53 min; incl-01 yellow then orange; gnss-02 yellow;
  // - the GNSS points' tangent angle may flip to yellow and back during the day of history (noise
  //   of 0.1 mm against a calibration of 0.5 mm/d; the rule's flapping detection holds those).
  landslide: {
    name: 'landslide',
    description: 'the 坂田 cut slope creeps, accelerates through the tangent-angle stages and reaches imminent sliding within the hour',
    length: HOUR,
    history: DAY,
    effects: [
      CHRONIC_LOW_HYDRANT,
      { kind: 'value', at: 0, metric: 'displacement', offset: 90, shape: 'creep', ramp: HOUR, sensor: { asset_id: 'lg-slope-001', sensor_id: 'gnss-01' }, note: 'crest GNSS point: accelerating creep' },
      { kind: 'value', at: 0, metric: 'displacement', level: 'orange', offset: 42, shape: 'creep', ramp: HOUR, sensor: { asset_id: 'lg-slope-001', sensor_id: 'incl-01' }, note: 'inclinometer at the sliding surface' },
      { kind: 'value', at: 0, metric: 'displacement', level: 'yellow', offset: 28, shape: 'creep', ramp: HOUR, sensor: { asset_id: 'lg-slope-001', sensor_id: 'gnss-02' }, note: 'second-platform GNSS point' },
    ],
    expected: [
      CHRONIC_EXPECTED,
      { rule_id: 'landslide-tangent-angle-bantian', asset_id: 'lg-slope-001', sensor_id: 'gnss-01', levels: ['yellow', 'orange', 'red'], open: true, about: 26 * MIN },
      { rule_id: 'landslide-tangent-angle-bantian', asset_id: 'lg-slope-001', sensor_id: 'incl-01', levels: ['yellow', 'orange', 'red'], open: true, about: 29 * MIN },
      { rule_id: 'landslide-tangent-angle-bantian', asset_id: 'lg-slope-001', sensor_id: 'gnss-02', levels: ['yellow', 'orange', 'red'], open: true, about: 31 * MIN },
      ...BANTIAN_GNSS_NOISE,
      { rule_id: 'slope-displacement', asset_id: 'lg-slope-001', sensor_id: 'gnss-01', levels: ['yellow', 'orange', 'red'], open: true, about: 44 * MIN },
      { rule_id: 'slope-displacement', asset_id: 'lg-slope-001', sensor_id: 'incl-01', levels: ['yellow', 'orange'], open: true, about: 48 * MIN },
      { rule_id: 'slope-displacement', asset_id: 'lg-slope-001', sensor_id: 'gnss-02', levels: ['yellow'], open: true, about: 52 * MIN },
    ],
  },

  // The medium-pressure main under 平湖大街 bursts at 2 min (an excavator): the end-of-line
  // pressure collapses from 0.29 to ~0.1 MPa within half a minute, the regulator's outlet sags into
  // the orange band, and the metered flow surges from ~600 to ~3000 m³/h. Alerts: gas-pressure red
  // on lg-gas-001/pt-02 (~2.3 min) and orange on lg-gas-001/pt-01, both open.
  pipe_burst: {
    name: 'pipe_burst',
    description: 'a medium-pressure gas main bursts: pressure collapses, flow surges',
    length: 10 * MIN,
    effects: [
      CHRONIC_LOW_HYDRANT,
      { kind: 'value', at: 2 * MIN, metric: 'pressure', level: 'red', direction: 'low', shape: 'collapse', ramp: 30, sensor: { asset_id: 'lg-gas-001', sensor_id: 'pt-02' }, note: 'end-of-line pressure collapses' },
      { kind: 'value', at: 2 * MIN, metric: 'pressure', level: 'orange', direction: 'low', shape: 'collapse', ramp: 30, sensor: { asset_id: 'lg-gas-001', sensor_id: 'pt-01' }, note: 'regulator outlet sags under the flow' },
      { kind: 'value', at: 2 * MIN, metric: 'flow', value: 3000, shape: 'collapse', ramp: 20, sensor: { asset_id: 'lg-gas-001', sensor_id: 'fm-01' }, note: 'flow surges through the break' },
    ],
    expected: [
      CHRONIC_EXPECTED,
      { rule_id: 'gas-pressure', asset_id: 'lg-gas-001', sensor_id: 'pt-02', levels: ['red'], open: true, about: 2 * MIN + 20 },
      { rule_id: 'gas-pressure', asset_id: 'lg-gas-001', sensor_id: 'pt-01', levels: ['orange'], open: true, about: 2 * MIN + 20 },
    ],
  },

  // Gas seeping into valve well 2# from 1 min: the concentration climbs steadily past 10, 25 and
  // 50 %LEL over ten minutes. Alerts: gas-leak on lg-gas-001/vw-02, blue ~2.5 min, orange
  // ~5.5 min, red ~10 min, open.
  gas_leak: {
    name: 'gas_leak',
    description: 'combustible gas accumulating in a valve well, through 10, 25 and 50 %LEL',
    length: 15 * MIN,
    effects: [
      CHRONIC_LOW_HYDRANT,
      { kind: 'value', at: MIN, metric: 'gas_lel', level: 'red', shape: 'linear', ramp: 10 * MIN, sensor: { asset_id: 'lg-gas-001', sensor_id: 'vw-02' }, note: 'gas seeping into valve well 2#' },
    ],
    expected: [CHRONIC_EXPECTED, { rule_id: 'gas-leak', asset_id: 'lg-gas-001', sensor_id: 'vw-02', levels: ['blue', 'orange', 'red'], open: true, about: 150 }],
  },

  // A fire on the 18th floor of the 横岗 tower: the lift-lobby smoke detector at 30 s, the corridor
  // detector at 60 s, the panel confirms the fire at 75 s (two detectors); the sprinklers open at
  // 2 min (alarm valve: system pressure falls, the panel shows a supervisory signal, the roof tank
  // starts to drain), and at 3 min firefighters open the indoor hydrants: the pressure at the most
  // unfavourable hydrant falls below 0.14 MPa (the fire pump cannot keep up). Alerts: fire-alarm red
  // on lg-building-001/smoke-18f-01 (30 s), smoke-18f-02 (60 s) and panel (75 s);
  // hydrant-pressure-low on lg-building-001/hydrant-roof, red (~3.5 min); all open.
  fire: {
    name: 'fire',
    description: 'smoke on 18F, the panel’s fire state, sprinklers, then the hydrant pressure drop',
    length: 10 * MIN,
    effects: [
      CHRONIC_LOW_HYDRANT,
      { kind: 'value', at: 30, metric: 'smoke', value: 1, sensor: { asset_id: 'lg-building-001', sensor_id: 'smoke-18f-01' }, note: '18F lift lobby smoke detector alarms' },
      { kind: 'value', at: 60, metric: 'smoke', value: 1, sensor: { asset_id: 'lg-building-001', sensor_id: 'smoke-18f-02' }, note: '18F corridor smoke detector alarms' },
      { kind: 'value', at: 75, metric: 'fire_alarm', value: 1, sensor: { asset_id: 'lg-building-001', sensor_id: 'panel' }, note: 'fire alarm panel confirms the fire (two detectors)' },
      { kind: 'value', at: 2 * MIN, metric: 'supervisory', value: 1, sensor: { asset_id: 'lg-building-001', sensor_id: 'panel' }, note: 'alarm valve pressure switch: supervisory signal' },
      { kind: 'value', at: 2 * MIN, metric: 'sprinkler_pressure', value: 0.18, shape: 'collapse', ramp: 30, sensor: { asset_id: 'lg-building-001', sensor_id: 'sprinkler-01' }, note: 'sprinklers flowing' },
      { kind: 'value', at: 2 * MIN, metric: 'tank_level', offset: -1.2, shape: 'linear', ramp: 8 * MIN, sensor: { asset_id: 'lg-building-001', sensor_id: 'tank-roof' }, note: 'roof tank draining' },
      { kind: 'value', at: 3 * MIN, metric: 'hydrant_pressure', level: 'red', shape: 'collapse', ramp: 40, sensor: { asset_id: 'lg-building-001', sensor_id: 'hydrant-roof' }, note: 'indoor hydrants opened: pressure at the most unfavourable hydrant falls' },
    ],
    expected: [
      CHRONIC_EXPECTED,
      { rule_id: 'fire-alarm', asset_id: 'lg-building-001', sensor_id: 'smoke-18f-01', levels: ['red'], open: true, about: 30 },
      { rule_id: 'fire-alarm', asset_id: 'lg-building-001', sensor_id: 'smoke-18f-02', levels: ['red'], open: true, about: 60 },
      { rule_id: 'fire-alarm', asset_id: 'lg-building-001', sensor_id: 'panel', levels: ['red'], open: true, about: 75 },
      { rule_id: 'hydrant-pressure-low', asset_id: 'lg-building-001', sensor_id: 'hydrant-roof', levels: ['red'], open: true, about: 3.5 * MIN },
    ],
  },

  // A rainstorm over every slope for three hours after a day of everyday weather: ~135 mm,
  // peaking at 80 mm/h in the second hour (Guangdong's red rainstorm signal is ≥ 100 mm in 3 h;
  // each gauge catches 85–115 % of it). Groundwater at the 坂田 slope toe rises with a lag into the
  // yellow band of the pore-pressure rule; the saturated 大康 cut slope creeps 2 mm in 2.5 h (8 mm/d
  // over 6 h against its 0.8 mm/d calibration). Alerts (config-demo), all open at the end:
  // - slope-rainstorm (3-hour sum) on lg-slope-001/rain-01 and lg-slope-002/rain-01: orange > 50 mm
  //   at ~1.1 h, red > 100 mm at ~2.1 h;
  // - slope-pore-pressure yellow on lg-slope-001/piezo-01, ~1.6 h;
  // - landslide-tangent-angle-yuanshan on lg-slope-002/disp-01: yellow ~45 min, orange ~1.9 h;
  // - landslide-risk (24 h rain > 100 mm and > 5 mm/d over 6 h) red on lg-slope-002, ~2.1 h;
  // - the 坂田 GNSS points' tangent-angle yellow may come and go on noise, as in `landslide`.
  storm: {
    name: 'storm',
    description: 'three hours of heavy rain over all slopes; groundwater rises with a lag',
    length: 3 * HOUR,
    history: DAY,
    effects: [
      CHRONIC_LOW_HYDRANT,
      {
        kind: 'rain',
        at: 0,
        asset_type: 'slope',
        metric: 'rainfall',
        profile: [
          [0, 8],
          [20 * MIN, 35],
          [60 * MIN, 80],
          [100 * MIN, 70],
          [140 * MIN, 25],
          [3 * HOUR, 5],
        ],
        note: 'rainstorm over all slopes',
      },
      { kind: 'value', at: 15 * MIN, metric: 'pore_pressure', level: 'yellow', shape: 'saturating', ramp: 150 * MIN, sensor: { asset_id: 'lg-slope-001', sensor_id: 'piezo-01' }, note: 'groundwater rising at the slope toe' },
      { kind: 'value', at: 30 * MIN, metric: 'displacement', offset: 2, shape: 'linear', ramp: 150 * MIN, sensor: { asset_id: 'lg-slope-002', sensor_id: 'disp-01' }, note: 'the saturated 大康 cut slope creeps faster: 2 mm in 2.5 h' },
    ],
    expected: [
      CHRONIC_EXPECTED,
      { rule_id: 'slope-rainstorm', asset_id: 'lg-slope-001', sensor_id: 'rain-01', levels: ['orange', 'red'], open: true, about: 65 * MIN },
      { rule_id: 'slope-rainstorm', asset_id: 'lg-slope-002', sensor_id: 'rain-01', levels: ['orange', 'red'], open: true, about: 65 * MIN },
      { rule_id: 'slope-pore-pressure', asset_id: 'lg-slope-001', sensor_id: 'piezo-01', levels: ['yellow'], open: true, about: 95 * MIN },
      { rule_id: 'landslide-tangent-angle-yuanshan', asset_id: 'lg-slope-002', sensor_id: 'disp-01', levels: ['yellow', 'orange'], open: true, about: 45 * MIN },
      { rule_id: 'landslide-risk', asset_id: 'lg-slope-002', sensor_id: '*', levels: ['red'], open: true, about: 125 * MIN },
      ...BANTIAN_GNSS_NOISE,
    ],
  },

  // The original demo story at real time: a fire alarm in the high-rise, a gas leak, a bridge
  // overload that passes, and rising groundwater. Alerts (rate 1/s): fire-alarm red on
  // smoke-18f-01 (~2 s) and panel (~4 s); gas-leak blue ~8 s, orange ~13 s, red ~19 s on vw-02;
  // bridge-strain yellow then orange on strain-01 (~19 s), resolved ~43 s; gas-pressure yellow on
  // pt-02 (~26 s); slope-pore-pressure yellow on piezo-01 (~46 s).
  incident: {
    name: 'incident',
    description: 'normal, then a fire alarm in a high-rise, a gas leak, a bridge overload and rising groundwater',
    effects: [
      CHRONIC_LOW_HYDRANT,
      { kind: 'value', at: 2, metric: 'smoke', level: 'red', sensor: { asset_id: 'lg-building-001', sensor_id: 'smoke-18f-01' }, note: '18F lift lobby smoke detector alarms' },
      { kind: 'value', at: 4, metric: 'fire_alarm', level: 'red', sensor: { asset_id: 'lg-building-001', sensor_id: 'panel' }, note: 'fire alarm panel confirms the alarm' },
      { kind: 'value', at: 3, metric: 'gas_lel', level: 'red', shape: 'linear', ramp: 15, sensor: { asset_id: 'lg-gas-001', sensor_id: 'vw-02' }, note: 'gas leaking into valve well 2#: 10 -> 25 -> 50 %LEL' },
      { kind: 'value', at: 3, metric: 'pressure', level: 'yellow', direction: 'low', shape: 'linear', ramp: 15, sensor: { asset_id: 'lg-gas-001', sensor_id: 'pt-02' }, note: 'end-of-line gas pressure falls with the leak' },
      { kind: 'value', at: 5, metric: 'strain', level: 'orange', shape: 'linear', ramp: 5, hold: 30, sensor: { asset_id: 'lg-bridge-001', sensor_id: 'strain-01' }, note: 'overloaded truck convoy held on the mid-span for 30 s' },
      { kind: 'value', at: 8, metric: 'pore_pressure', level: 'yellow', shape: 'linear', ramp: 10, sensor: { asset_id: 'lg-slope-001', sensor_id: 'piezo-01' }, note: 'groundwater rising at the slope toe after heavy rain' },
    ],
    expected: [
      CHRONIC_EXPECTED,
      { rule_id: 'fire-alarm', asset_id: 'lg-building-001', sensor_id: 'smoke-18f-01', levels: ['red'], open: true, about: 2 },
      { rule_id: 'fire-alarm', asset_id: 'lg-building-001', sensor_id: 'panel', levels: ['red'], open: true, about: 4 },
      { rule_id: 'gas-leak', asset_id: 'lg-gas-001', sensor_id: 'vw-02', levels: ['blue', 'orange', 'red'], open: true, about: 8 },
      { rule_id: 'bridge-strain', asset_id: 'lg-bridge-001', sensor_id: 'strain-01', levels: ['yellow', 'orange'], open: false, about: 19 },
      { rule_id: 'gas-pressure', asset_id: 'lg-gas-001', sensor_id: 'pt-02', levels: ['yellow'], open: true, about: 26 },
      { rule_id: 'slope-pore-pressure', asset_id: 'lg-slope-001', sensor_id: 'piezo-01', levels: ['yellow'], open: true, about: 46 },
    ],
  },

  // The disposal loop (处置闭环), ten minutes at real time: an alarm for each department that owns
  // an asset, and a faulty hydrant transducer that raises three short alarms. The simulator drives
  // only the sensors; the duty room takes the steps through the API and the work-order page (README,
  // "The disposal loop"): the bridge overload is acknowledged, verified, dispatched to 住建桥梁养护
  // (lg-bridge) and closed from its phone link after arriving on site, its case outliving the
  // signal; the gas leak goes to 燃气 (lg-gas), the fire alarm to 消防 (lg-fire), the chronic low
  // pressure to 水务 (lg-water); each of hp-01's alarms is dismissed as `sensor_fault`, so
  // `watchpost report` shows lg-hydrant-001/hp-01 at the top of the false alarms.
  // Alerts: hydrant-pressure-low yellow on hp-02 (chronic), open; bridge-strain yellow then orange
  // on lg-bridge-001/strain-01 (~24 s), resolved at ~85 s; gas-leak blue then orange on
  // lg-gas-001/vw-02 (~40 s), open; fire-alarm red on lg-building-001/smoke-18f-01 (~60 s), open;
  // hydrant-pressure-low yellow on lg-hydrant-001/hp-01 at ~2, ~4 and ~6 min, each resolved after
  // 20 s (the first two listed as noise: the newest is the one the story checks).
  disposal: {
    name: 'disposal',
    description: 'one alarm per department to work through the disposal loop, and a faulty transducer raising false alarms',
    length: 10 * MIN,
    effects: [
      CHRONIC_LOW_HYDRANT,
      { kind: 'value', at: 10, metric: 'strain', level: 'orange', shape: 'linear', ramp: 5, hold: 60, sensor: { asset_id: 'lg-bridge-001', sensor_id: 'strain-01' }, note: 'overloaded truck convoy on the mid-span for a minute' },
      { kind: 'value', at: 30, metric: 'gas_lel', level: 'orange', shape: 'linear', ramp: 30, sensor: { asset_id: 'lg-gas-001', sensor_id: 'vw-02' }, note: 'gas seeping into valve well 2#' },
      { kind: 'value', at: 60, metric: 'smoke', value: 1, sensor: { asset_id: 'lg-building-001', sensor_id: 'smoke-18f-01' }, note: '18F lift lobby smoke detector alarms' },
      ...[2, 4, 6].map(
        (m): ValueEffect => ({ kind: 'value', at: m * MIN, metric: 'hydrant_pressure', level: 'yellow', hold: 20, sensor: { asset_id: 'lg-hydrant-001', sensor_id: 'hp-01' }, note: 'hp-01 transducer drifts low (a loose connector), then recovers' }),
      ),
    ],
    expected: [
      CHRONIC_EXPECTED,
      { rule_id: 'bridge-strain', asset_id: 'lg-bridge-001', sensor_id: 'strain-01', levels: ['yellow', 'orange'], open: false, about: 24 },
      { rule_id: 'gas-leak', asset_id: 'lg-gas-001', sensor_id: 'vw-02', levels: ['blue', 'orange'], open: true, about: 40 },
      { rule_id: 'fire-alarm', asset_id: 'lg-building-001', sensor_id: 'smoke-18f-01', levels: ['red'], open: true, about: 60 },
      { rule_id: 'hydrant-pressure-low', asset_id: 'lg-hydrant-001', sensor_id: 'hp-01', levels: ['yellow'], open: false, about: 6 * MIN + 5 },
      ...[2, 4].map((m): ExpectedAlert => ({ rule_id: 'hydrant-pressure-low', asset_id: 'lg-hydrant-001', sensor_id: 'hp-01', levels: ['yellow'], open: false, about: m * MIN + 5, noise: true })),
    ],
  },

  // Everyday operation only, without the chronic hydrant: no rule fires. For soak and load runs.
  quiet: {
    name: 'quiet',
    description: 'everyday operation only; no rule should fire',
    effects: [],
    expected: [],
  },
};

export const DEFAULT_SCENARIO = 'normal';

/**
 * Whether an alert's raises (its firing and level_raised levels, in order) match a documented
 * `levels`: it passes through each of them in order and ends at the last one. Sparse readings (a
 * high --speed) may add an intermediate level on the way, as a `for` is then met in one step.
 */
export function raisesMatch(path: readonly Level[], expected: readonly Level[]): boolean {
  let i = 0;
  for (const level of path) if (level === expected[i]) i++;
  return i === expected.length && path.at(-1) === expected.at(-1);
}

export function scenarioByName(name: string): ScenarioSpec {
  const scenario = SCENARIOS[name];
  if (!scenario) throw new SimulationError('unknown_scenario', `unknown scenario "${name}" (known: ${Object.keys(SCENARIOS).join(', ')})`);
  return scenario;
}
