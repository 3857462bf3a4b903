/**
 * The simulated clock: which timestamps a run's readings carry, and when each is published.
 *
 * Readings are numbered per sensor: reading k carries `ts = start + k × step` exactly, whatever the
 * wall clock does, so a run with the same seed, scenario, speed, rate and start is replayed byte
 * for byte. `--rate` is readings per wall-clock second per sensor; `--speed` is simulated seconds
 * per wall-clock second, so consecutive readings are `step = speed / rate` simulated seconds apart
 * (speed 60, rate 1: one reading per simulated minute, published every second).
 *
 * The platform refuses readings more than 1 h ahead of its clock, and a compressed run would soon
 * be, so a run never publishes a reading before the wall clock has reached its timestamp. When the
 * run has a length (`--duration`, or the scenario's own length at `--speed`), it therefore starts
 * in the past, at `now + duration − duration × speed`, and its last reading is stamped with the
 * moment it ends: a one-minute landslide at speed 60 covers the hour up to now. An open-ended run
 * at a speed above 1 starts a day in the past and, having caught up with the present, goes on at
 * real time. `--start` pins the first timestamp (for replays); readings still wait for their time.
 *
 * A scenario may need history — a day of a slope's everyday creep before the landslide, so that
 * rules with day-long windows (tangent angle, 24 h rain) are defined when the story begins. The
 * devices send it from their buffers as soon as they connect, as batches of up to 1000 readings,
 * one per simulated minute (or per step, if coarser), stamped before the start.
 */
import { SimulationError } from './errors.js';

export interface TimePlanOptions {
  /** Wall-clock now (ms). */
  now: number;
  /** Simulated seconds per wall-clock second, > 0. */
  speed: number;
  /** Readings per wall-clock second per sensor, > 0. */
  rate: number;
  /** Wall-clock seconds the run lasts; undefined = the scenario's length / speed, or open-ended. */
  duration?: number;
  /** Simulated seconds the scenario's story takes, if it has an end. */
  length?: number;
  /** First timestamp (ms); default as described above. */
  start?: number;
  /** Simulated seconds of history before the start, sent from the devices' buffers at once. */
  history?: number;
}

export interface TimePlan {
  speed: number;
  rate: number;
  /** Timestamp (ms) of reading 0. */
  start: number;
  /** Simulated ms between consecutive readings of one sensor. */
  stepMs: number;
  /** Wall-clock ms between consecutive readings of one sensor. */
  intervalMs: number;
  /** Readings per sensor (k = 0 … steps − 1); undefined = until stopped. */
  steps?: number;
  /** Wall-clock seconds the run is planned to take; undefined = until stopped. */
  durationS?: number;
  /** Readings per sensor before the start (k = −historySteps … −1), historyStepMs apart. */
  historySteps: number;
  historyStepMs: number;
}

/** History is sent at one reading per simulated minute, or the run's own step if coarser. */
export const HISTORY_STEP_MS = 60_000;

/** An open-ended compressed run starts this far in the past. */
export const OPEN_ENDED_HISTORY_MS = 86_400_000;

export const MAX_SPEED = 100_000;

export function planTime(options: TimePlanOptions): TimePlan {
  const { now, speed, rate } = options;
  if (!(Number.isFinite(speed) && speed > 0 && speed <= MAX_SPEED)) {
    throw new SimulationError('invalid_option', `speed must be > 0 and ≤ ${MAX_SPEED} simulated seconds per second (got ${speed})`);
  }
  if (!(Number.isFinite(rate) && rate > 0 && rate <= 1000)) {
    throw new SimulationError('invalid_option', `rate must be > 0 and ≤ 1000 readings per second per sensor (got ${rate})`);
  }
  if (options.duration !== undefined && !(Number.isFinite(options.duration) && options.duration >= 0)) {
    throw new SimulationError('invalid_option', `duration must be a number of seconds ≥ 0 (got ${options.duration})`);
  }
  if (options.start !== undefined && !Number.isFinite(options.start)) {
    throw new SimulationError('invalid_option', `start must be a time (got ${options.start})`);
  }
  const stepMs = (1000 * speed) / rate;
  const intervalMs = 1000 / rate;
  const historyStepMs = Math.max(stepMs, HISTORY_STEP_MS);
  const historySteps = Math.floor(((options.history ?? 0) * 1000) / historyStepMs);
  const durationS = options.duration ?? (options.length !== undefined ? options.length / speed : undefined);
  if (durationS === undefined) {
    const start = options.start ?? (speed > 1 ? now - OPEN_ENDED_HISTORY_MS : now);
    return { speed, rate, start, stepMs, intervalMs, historySteps, historyStepMs };
  }
  const spanMs = durationS * 1000 * speed;
  const start = options.start ?? Math.round(now + durationS * 1000 - spanMs);
  // Reading 0 at the start and one every step up to and including the end of the span.
  const steps = Math.floor(spanMs / stepMs + 1e-9) + 1;
  return { speed, rate, start, stepMs, intervalMs, steps, durationS, historySteps, historyStepMs };
}

/** Timestamp of reading k (ms, whole). */
export function stepTs(plan: TimePlan, k: number): number {
  return Math.round(plan.start + k * plan.stepMs);
}

/** Timestamp of history reading j (j = 1 … historySteps, the oldest first is historySteps). */
export function historyTs(plan: TimePlan, j: number): number {
  return Math.round(plan.start - j * plan.historyStepMs);
}

/**
 * Wall-clock time (ms) at which reading k is due, for a run that began at `wallStart` with this
 * sensor's publishing phase: on schedule, but never before the reading's own timestamp.
 */
export function dueAt(plan: TimePlan, k: number, wallStart: number, phaseMs: number): number {
  return Math.max(wallStart + phaseMs + k * plan.intervalMs, stepTs(plan, k));
}

/** Parses `--start`: epoch milliseconds or an RFC 3339 / ISO 8601 time. */
export function parseStart(text: string): number {
  const trimmed = text.trim();
  const ms = /^\d+$/.test(trimmed) ? Number(trimmed) : Date.parse(trimmed);
  if (!Number.isFinite(ms)) throw new SimulationError('invalid_option', `--start must be epoch milliseconds or an RFC 3339 time (got "${text}")`);
  return ms;
}
