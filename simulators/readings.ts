/**
 * The readings a simulated sensor publishes: its everyday signal, the scenario's effects on it, and
 * its history; and every reading of a whole run without a broker (replay files, tests, dry runs).
 */
import { historyTs, planTime, stepTs, type TimePlan } from './clock.js';
import type { SimulatorConfig } from './config.js';
import { SimulationError } from './errors.js';
import { DEFAULT_SIMULATION_OPTIONS, type SimulationOptions } from './options.js';
import { planSimulation, type SensorPlan } from './plan.js';
import { effectValue, rainBetween } from './scenario-effects.js';
import { scenarioByName } from './scenarios.js';
import { clampToRange, roundForMetric } from './signals.js';
/** The reading object a device publishes (contract: MQTT, reading object). */
export interface ReadingPayload {
  ts: number;
  values: Record<string, number | boolean>;
}

/**
 * The reading a sensor publishes at `ts`, `elapsedMs` (simulated) into the run, or undefined while
 * the scenario has it dropped out. Advances its generators, so call it once per reading, in order.
 */
export function readingAt(sensor: SensorPlan, ts: number, elapsedMs: number, stepMs = 1000): ReadingPayload | undefined {
  const values: Record<string, number | boolean> = {};
  const e = elapsedMs / 1000;
  for (const s of sensor.series) {
    let v = s.next(ts);
    if (s.effect) v = effectValue(s.effect, elapsedMs, v, s.effectRng);
    if (s.rain) {
      const r = s.rain;
      r.bucket += r.lastS === undefined ? 0 : rainBetween(r.effect, r.lastS, e) * r.factor;
      r.lastS = e;
      // Whole 0.1 mm tips, at most the gauge's range per report; the rest stays in the bucket.
      const tips = Math.min(Math.floor(r.bucket / 0.1 + 1e-9) * 0.1, Math.max(0, (s.range.max ?? Infinity) - v));
      r.bucket -= tips;
      v += tips;
    }
    for (const spike of s.spikes) {
      if (e >= spike.at && e - spike.at < stepMs / 1000) v = spike.value;
    }
    v = clampToRange(roundForMetric(s.metric, v), s.range);
    values[s.metric] = s.boolean ? v >= 0.5 : v;
  }
  if (sensor.dropouts.some((d) => e >= d.at && (d.until === undefined || e < d.until))) return undefined;
  return { ts, values };
}

/** One reading of a run, as `simulatedReadings` yields it. */
export interface SimulatedReading {
  deviceId: string;
  assetId: string;
  sensorId: string;
  topic: string;
  /** Simulated seconds since the start of the run. */
  elapsed: number;
  reading: ReadingPayload;
}

/**
 * Every reading a run of the configured devices would publish, in order, without a broker: the
 * same plan, clock and values as runSimulation (replay files, tests, dry runs). Needs a run with an
 * end (a scenario length or `duration`). Device link losses do not change the readings (devices
 * replay their buffers), only when they arrive.
 */
export function* simulatedReadings(
  config: SimulatorConfig,
  options: Pick<SimulationOptions, 'scenario' | 'seed' | 'speed' | 'rate' | 'duration' | 'start' | 'secrets'> & { now?: number },
): Generator<SimulatedReading> {
  const scenario = scenarioByName(options.scenario ?? DEFAULT_SIMULATION_OPTIONS.scenario);
  const time = planTime({
    now: options.now ?? Date.now(),
    speed: options.speed ?? DEFAULT_SIMULATION_OPTIONS.speed,
    rate: options.rate ?? DEFAULT_SIMULATION_OPTIONS.rate,
    duration: options.duration,
    length: scenario.length,
    start: options.start,
    history: scenario.history,
  });
  if (time.steps === undefined) throw new SimulationError('invalid_option', `scenario ${scenario.name} goes on until stopped; give a duration`);
  const plan = planSimulation(config, { scenario: scenario.name, seed: options.seed, secrets: options.secrets });
  for (const device of plan.devices) {
    for (const sensor of device.sensors) {
      for (const item of historyOf(sensor, time)) yield { deviceId: device.id, assetId: sensor.assetId, sensorId: sensor.sensorId, topic: sensor.topic, ...item };
    }
  }
  for (let k = 0; k < time.steps; k++) {
    const ts = stepTs(time, k);
    for (const device of plan.devices) {
      for (const sensor of device.sensors) {
        const reading = readingAt(sensor, ts, k * time.stepMs, time.stepMs);
        if (reading) yield { deviceId: device.id, assetId: sensor.assetId, sensorId: sensor.sensorId, topic: sensor.topic, elapsed: (k * time.stepMs) / 1000, reading };
      }
    }
  }
}

/** A sensor's history readings (oldest first), advancing its generators. */
export function* historyOf(sensor: SensorPlan, time: TimePlan, tsOffset = 0): Generator<{ elapsed: number; reading: ReadingPayload }> {
  for (let j = time.historySteps; j >= 1; j--) {
    const reading = readingAt(sensor, historyTs(time, j) + tsOffset, -j * time.historyStepMs, time.historyStepMs);
    if (reading) yield { elapsed: (-j * time.historyStepMs) / 1000, reading };
  }
}
