/** What rule evaluation emits for the alert stage. */
import type { Level } from '../lib/levels.js';

export type Threshold = number | [number, number];

/**
 * The effective level of one (rule, asset, sensor) changed on event time.
 * level === null: no level is met any longer (after hysteresis), the alert should resolve.
 */
export interface RuleEvent {
  ruleId: string;
  assetId: string;
  sensorId: string;
  metric: string;
  level: Level | null;
  /** The reading value that caused the change. */
  value: number;
  /** The threshold of the level now met (or of the level just left when level is null). */
  threshold: Threshold | null;
  /** Event time of the reading, epoch ms. */
  ts: number;
}
