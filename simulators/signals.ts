/**
 * Seeded, physically plausible signals for the device simulators. Every generator is a pure
 * function of its seed and the sequence of timestamps it is asked about: the same seed and the
 * same timestamps give the same values, so a simulation can be replayed exactly.
 *
 * The shapes follow what the sensors see in the field in Shenzhen:
 * - bridge strain / deflection: a daily temperature cycle (peak around 15:00 local time) plus
 *   passing heavy vehicles (2–4 s half-sine pulses) plus gauge noise;
 * - slope displacement: slow creep from the start of the run plus GNSS noise; rainfall as
 *   showers (Markov on/off); pore pressure and tilt nearly constant;
 * - gas pressure and flow, hydrant pressure: the daily demand cycle (morning, noon and evening
 *   peaks) pulls pressure down and flow up;
 * - combustible gas: a sensor near zero with drift; smoke, fire alarm, fault: false.
 * - external prestressing tendon force: nearly constant, a little lower in the afternoon heat and
 *   higher under passing trucks;
 * - sprinkler pressure held by the jockey pump (slow saw-tooth between its cut-in and cut-out
 *   pressures), roof tank level refilled by its float valve;
 * - fire alarm panel states after GB 26875 (fire, fault, supervisory, disabled): all false.
 * Values are rounded to the sensor's resolution and clamped into the metric catalogue's range.
 */

export type Rng = () => number;

/** mulberry32: a tiny, fast, well-distributed 32-bit PRNG. Returns floats in [0, 1). */
export function mulberry32(seed: number): Rng {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** FNV-1a over the parts, so each (seed, asset, sensor, metric) gets its own stream. */
export function hashSeed(...parts: Array<string | number>): number {
  let h = 0x811c9dc5;
  for (const part of parts) {
    const text = `${String(part)}\u0000`;
    for (let i = 0; i < text.length; i++) {
      h ^= text.charCodeAt(i);
      h = Math.imul(h, 0x01000193);
    }
  }
  return h >>> 0;
}

/** Standard normal variate (Box–Muller). */
export function gaussian(rng: Rng): number {
  const u = 1 - rng(); // (0, 1]
  const v = rng();
  return Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * v);
}

/** Metrics that devices send as JSON booleans (stored as 1 / 0). */
export const BOOLEAN_METRICS: ReadonlySet<string> = new Set(['smoke', 'fire_alarm', 'fault', 'supervisory', 'disabled']);

/** Decimal places each metric is reported with (the sensor's resolution). */
const RESOLUTION: Readonly<Record<string, number>> = {
  strain: 1,
  deflection: 2,
  acceleration: 3,
  temperature: 1,
  displacement: 2,
  rainfall: 1,
  pore_pressure: 1,
  tilt: 3,
  pressure: 4,
  flow: 1,
  gas_lel: 1,
  hydrant_pressure: 3,
  cable_force: 1,
  sprinkler_pressure: 3,
  tank_level: 3,
};

export interface MetricRange {
  min?: number | undefined;
  max?: number | undefined;
}

/** Rounds to the metric's resolution (4 decimals for unknown metrics). */
export function roundForMetric(metric: string, value: number): number {
  const decimals = BOOLEAN_METRICS.has(metric) ? 0 : (RESOLUTION[metric] ?? 4);
  const factor = 10 ** decimals;
  const rounded = Math.round(value * factor) / factor;
  return Object.is(rounded, -0) ? 0 : rounded;
}

export function clampToRange(value: number, range: MetricRange): number {
  let v = value;
  if (range.min !== undefined && v < range.min) v = range.min;
  if (range.max !== undefined && v > range.max) v = range.max;
  return v;
}

/** A generator: the metric's value at epoch-millisecond `ts`. Calls must have non-decreasing ts. */
export type SignalGenerator = (ts: number) => number;

/** Hours since local midnight in Shenzhen (UTC+8, no daylight saving), fractional. */
export function shenzhenHour(ts: number): number {
  return (((ts / 3_600_000 + 8) % 24) + 24) % 24;
}

/** Daily temperature cycle in [-1, 1], coldest around 03:00, warmest around 15:00. */
export function dailyCycle(ts: number): number {
  return Math.sin((2 * Math.PI * (shenzhenHour(ts) - 9)) / 24);
}

function peak(hour: number, at: number, width: number): number {
  // circular distance, so the 23:00 -> 01:00 wrap stays smooth
  const d = Math.min(Math.abs(hour - at), 24 - Math.abs(hour - at));
  return Math.exp(-(d * d) / (2 * width * width));
}

/** Residential gas demand in [0, 1]: breakfast, lunch and the larger dinner peak. */
export function gasDemand(ts: number): number {
  const h = shenzhenHour(ts);
  return Math.min(1, 0.12 + 0.55 * peak(h, 7, 1.0) + 0.75 * peak(h, 11.5, 1.0) + 0.88 * peak(h, 18.5, 1.3));
}

/** Water demand in [0, 1]: morning and evening peaks, a smaller one at noon. */
export function waterDemand(ts: number): number {
  const h = shenzhenHour(ts);
  return Math.min(1, 0.2 + 0.8 * peak(h, 7.5, 1.2) + 0.45 * peak(h, 12, 1.0) + 0.75 * peak(h, 20, 1.5));
}

/**
 * Poisson-arriving half-sine pulses (passing heavy vehicles). `perHour` arrivals, amplitudes in
 * [ampLo, ampHi], durations in [durLo, durHi] seconds.
 */
function pulses(rng: Rng, perHour: number, ampLo: number, ampHi: number, durLo: number, durHi: number) {
  const active: Array<{ start: number; amp: number; dur: number }> = [];
  return (ts: number, dt: number): number => {
    if (dt > 0 && rng() < 1 - Math.exp((-perHour * dt) / 3600)) {
      active.push({ start: ts, amp: ampLo + (ampHi - ampLo) * rng(), dur: (durLo + (durHi - durLo) * rng()) * 1000 });
    }
    let sum = 0;
    for (let i = active.length - 1; i >= 0; i--) {
      const p = active[i]!;
      const tau = ts - p.start;
      if (tau > p.dur) active.splice(i, 1);
      else sum += p.amp * Math.sin((Math.PI * tau) / p.dur);
    }
    return sum;
  };
}

type Factory = (rng: Rng, range: MetricRange, sensorId: string) => (ts: number, dt: number) => number;

/**
 * Displacement noise (1σ, mm) by instrument, told by the demo's sensor ids: a GNSS point's
 * Kalman-filtered solution (raw epochs scatter by 1–3 mm), a fixed inclinometer, a draw-wire meter
 * (0.01 mm resolution).
 */
export function displacementNoise(sensorId: string): number {
  if (sensorId.startsWith('gnss')) return 0.1;
  if (sensorId.startsWith('incl')) return 0.05;
  return 0.02;
}

const FACTORIES: Readonly<Record<string, Factory>> = {
  strain: (rng) => {
    const base = 20 + 30 * rng();
    const thermal = 20 + 15 * rng();
    const trucks = pulses(rng, 90, 15, 60, 2, 4);
    return (ts, dt) => base + thermal * dailyCycle(ts) + trucks(ts, dt) + 1.5 * gaussian(rng);
  },
  deflection: (rng) => {
    const base = 0.5 + rng();
    const trucks = pulses(rng, 90, 3, 12, 2, 4);
    return (ts, dt) => base + 2 * dailyCycle(ts) + trucks(ts, dt) + 0.05 * gaussian(rng);
  },
  acceleration: (rng) => {
    const trucks = pulses(rng, 90, 0.05, 0.25, 3, 6);
    return (ts, dt) => (0.01 + trucks(ts, dt)) * gaussian(rng);
  },
  temperature: (rng) => {
    const base = 24 + 5 * rng();
    return (ts) => base + 6 * dailyCycle(ts - 3_600_000) + 0.1 * gaussian(rng);
  },
  displacement: (rng, _range, sensorId) => {
    const base = 6 + 6 * rng();
    const mmPerDay = 0.02 + 0.05 * rng();
    const noise = displacementNoise(sensorId);
    let start: number | undefined;
    return (ts) => {
      start ??= ts;
      return base + (mmPerDay * (ts - start)) / 86_400_000 + noise * gaussian(rng);
    };
  },
  rainfall: (rng) => {
    // Shenzhen wet season: a shower starts about every 8 h, lasts 10–40 min at 1–15 mm/h (at most
    // ~10 mm, far from the 50 mm in 3 h of an orange rainstorm signal).
    let raining = rng() < 0.2;
    let intensity = 1 + 14 * rng() ** 2;
    let remaining = (10 + 30 * rng()) * 60;
    let bucket = 0;
    return (_ts, dt) => {
      if (!raining && dt > 0 && rng() < 1 - Math.exp((-0.125 * dt) / 3600)) {
        raining = true;
        intensity = 1 + 14 * rng() ** 2;
        remaining = (10 + 30 * rng()) * 60;
      }
      if (raining) {
        remaining -= dt;
        if (remaining <= 0) raining = false;
        bucket += Math.max(0, (intensity * (1 + 0.3 * gaussian(rng)) * dt) / 3600);
      }
      // A tipping bucket reports whole 0.1 mm tips; the rest stays in the bucket, so a fast
      // reporting rate loses no rain.
      const tips = Math.floor(bucket / 0.1 + 1e-9);
      bucket -= tips * 0.1;
      return tips * 0.1;
    };
  },
  pore_pressure: (rng) => {
    const base = 25 + 20 * rng();
    return (ts) => base + 0.5 * Math.sin((4 * Math.PI * shenzhenHour(ts)) / 24) + 0.2 * gaussian(rng);
  },
  tilt: (rng) => {
    const base = -0.3 + 0.6 * rng();
    return (ts) => base + 0.01 * dailyCycle(ts) + 0.002 * gaussian(rng);
  },
  pressure: (rng) => {
    const base = 0.3 + 0.01 * rng();
    return (ts) => base - 0.025 * gasDemand(ts) + 0.001 * gaussian(rng);
  },
  flow: (rng) => {
    const base = 120 + 60 * rng();
    return (ts) => base + 900 * gasDemand(ts) + 10 * gaussian(rng);
  },
  gas_lel: (rng) => {
    const zero = 0.3 * rng();
    return () => Math.abs(zero + 0.2 * gaussian(rng));
  },
  hydrant_pressure: (rng) => {
    const base = 0.32 + 0.05 * rng();
    return (ts) => base - 0.04 * waterDemand(ts) + 0.003 * gaussian(rng);
  },
  cable_force: (rng) => {
    // External prestressing tendon (体外预应力钢束) read by a magnetic-flux sensor: ~1300 kN,
    // about 0.5 % lower in the afternoon as the girder warms, +2–8 kN under heavy vehicles.
    const base = 1250 + 100 * rng();
    const trucks = pulses(rng, 90, 2, 8, 2, 4);
    return (ts, dt) => base * (1 - 0.005 * dailyCycle(ts)) + trucks(ts, dt) + 0.8 * gaussian(rng);
  },
  sprinkler_pressure: (rng) => {
    // Wet-pipe system side of the alarm valve, kept between 0.42 and 0.48 MPa by the jockey pump:
    // slow leakage lets it fall, the pump restores it in a minute.
    const low = 0.42 + 0.01 * rng();
    const high = low + 0.06;
    let p = low + 0.06 * rng();
    let pumping = false;
    return (_ts, dt) => {
      if (pumping) {
        p += (0.06 * dt) / 60;
        if (p >= high) pumping = false;
      } else {
        p -= (0.06 * dt) / 14_400; // about 4 h from cut-out to cut-in
        if (p <= low) pumping = true;
      }
      p = Math.min(high, Math.max(low - 0.005, p));
      return p + 0.001 * gaussian(rng);
    };
  },
  tank_level: (rng) => {
    // Roof fire-water tank (高位消防水箱, 18 m³): the float valve refills from 2.80 m to 2.95 m.
    let level = 2.8 + 0.15 * rng();
    let filling = false;
    return (_ts, dt) => {
      if (filling) {
        level += (0.15 * dt) / 600;
        if (level >= 2.95) filling = false;
      } else {
        level -= (0.15 * dt) / 21_600; // evaporation and seepage: a refill every ~6 h
        if (level <= 2.8) filling = true;
      }
      return level + 0.002 * gaussian(rng);
    };
  },
  smoke: () => () => 0,
  fire_alarm: () => () => 0,
  fault: () => () => 0,
  supervisory: () => () => 0,
  disabled: () => () => 0,
};

/** Metrics the simulator has a physical model for. */
export const MODELLED_METRICS: readonly string[] = Object.keys(FACTORIES);

/**
 * For metrics without a model: a mean-reverting random walk around the middle of the
 * catalogue range (or around 0 with unit spread when the range is open).
 */
const genericFactory: Factory = (rng, range) => {
  const lo = range.min ?? (range.max !== undefined ? range.max - 10 : -1);
  const hi = range.max ?? (range.min !== undefined ? range.min + 10 : 1);
  const mean = (lo + hi) / 2;
  const spread = (hi - lo) / 10;
  let x = mean + spread * (rng() - 0.5);
  return (_ts, dt) => {
    const k = Math.min(1, dt / 60);
    x += (mean - x) * k + spread * 0.1 * Math.sqrt(k) * gaussian(rng);
    return x;
  };
};

/**
 * Creates the generator for one metric of one sensor. Values are rounded to the sensor's
 * resolution and always lie inside `range` (the metric catalogue's min / max).
 */
export function createSignal(metric: string, range: MetricRange, rng: Rng, sensorId = ''): SignalGenerator {
  const raw = (FACTORIES[metric] ?? genericFactory)(rng, range, sensorId);
  let last: number | undefined;
  return (ts: number) => {
    const dt = last === undefined ? 0 : Math.min(Math.max((ts - last) / 1000, 0), 3600);
    last = ts;
    return clampToRange(roundForMetric(metric, raw(ts, dt)), range);
  };
}

/** Metrics a sensor of an asset type reports when the configuration does not list them. */
export const DEFAULT_METRICS_BY_TYPE: Readonly<Record<string, readonly string[]>> = {
  bridge: ['strain', 'deflection', 'acceleration', 'temperature', 'cable_force'],
  slope: ['displacement', 'rainfall', 'pore_pressure', 'tilt'],
  pipeline: ['pressure', 'flow', 'gas_lel'],
  fire: ['hydrant_pressure'],
  building: ['smoke', 'fire_alarm', 'fault', 'supervisory', 'disabled', 'sprinkler_pressure', 'tank_level'],
};
