/** How a simulation run is asked for, and its defaults. */
import type { Logger } from '../lib/logger.js';
import type { SimulationProgress } from './report.js';
import { DEFAULT_SCENARIO } from './scenarios.js';

export interface SimulationOptions {
  /** Broker URL, e.g. mqtt://127.0.0.1:1883 (see defaultBrokerUrl). */
  url: string;
  /** Scenario name (SCENARIOS); default `normal`. */
  scenario?: string;
  /** Readings per wall-clock second per sensor; default 1. */
  rate?: number;
  /** Simulated seconds per wall-clock second; default 1. */
  speed?: number;
  /** Wall-clock seconds; undefined = the scenario's length / speed, or until `signal` aborts. */
  duration?: number;
  /** Timestamp of the first reading (ms); default: see ./clock.ts. */
  start?: number;
  /** Seed of every signal generator; default 1. */
  seed?: number;
  /** Simulated devices: the first N configured ones, or replicas of them beyond that (load mode). */
  devices?: number;
  /** MQTT connections for all simulated devices (each for one device id); default one per device. */
  connections?: number;
  logger: Logger;
  signal?: AbortSignal;
  /** device id -> secret, for devices configured with `secret_hash` only (or to override). */
  secrets?: Record<string, string>;
  /** Called about once a second while the run is on, and once at the end. */
  onProgress?: (progress: SimulationProgress) => void;
}

export const DEFAULT_SIMULATION_OPTIONS = {
  scenario: DEFAULT_SCENARIO,
  rate: 1,
  speed: 1,
  seed: 1,
  /** First reconnect delay; doubled after every failed attempt up to maxBackoffMs, ±20 % jitter. */
  backoffMs: 1_000,
  maxBackoffMs: 30_000,
  connectTimeoutMs: 10_000,
  /** Readings a connection keeps waiting for PUBACK (or queued while offline) before it holds back. */
  maxInflight: 10_000,
  /** How long stopping waits for outstanding PUBACKs before closing the connection anyway. */
  stopTimeoutMs: 3_000,
  /**
   * After the planned end of a run with a length, a live connection may still be delivering
   * (buffered readings, PUBACKs in flight): the run waits while acknowledgements keep arriving at
   * least this often, and never longer than overrunMs. With no connection up it ends at once.
   */
  endGraceMs: 5_000,
  overrunMs: 60_000,
  /** Rejections kept in the summary (all are counted). */
  maxRejectedKept: 1_000,
  progressIntervalMs: 1_000,
} as const;
