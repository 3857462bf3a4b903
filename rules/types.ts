/** What rule evaluation emits for the alert stage. */
import type { Level } from '../lib/levels.js';

export type Threshold = number | [number, number];

/**
 * Flapping marks (rules with `flapping: { window, max_changes }`), for the alert stage to hold
 * notifications (contract: a flapping alert's notifications are held until it is stable for one
 * window, then one summary is sent):
 * - `started`: this level change is the one that exceeded max_changes within the window;
 * - `flapping`: a level change while the alert is flapping;
 * - `ended`: no change for one window (platform clock) since the last one. This event repeats the
 *   current level (null when the last change cleared it), so it is not a level change: the alert
 *   state machine ignores it, and the alert stage sends its summary.
 */
export type FlappingMark = 'started' | 'flapping' | 'ended';

/**
 * The effective level of one (rule, asset, sensor) changed on event time.
 * level === null: no level is met any longer (after hysteresis), the alert should resolve.
 */
export interface RuleEvent {
  ruleId: string;
  assetId: string;
  /** The sensor; the device id for `offline` rules; `*` for compound rules (one alert per asset). */
  sensorId: string;
  metric: string;
  level: Level | null;
  /**
   * The value that caused the change: the reading, or the rule's signal (rate, aggregate, angle);
   * seconds of silence for `stale`, seconds offline for `offline`.
   */
  value: number;
  /** The threshold of the level now met (or of the level just left when level is null). */
  threshold: Threshold | null;
  /** Event time: the reading's ts; for stale, offline and flapping events the platform time. */
  ts: number;
  /** Only for rules with `flapping` while (or when ceasing to be) flapping. */
  flapping?: FlappingMark;
  /** With `flapping`: level changes in this flapping episode so far, including this one (on `ended`: in all). */
  changes?: number;
  /**
   * Why a level null event clears the alert when it is not the condition itself: `data_returned`
   * (stale), `device_online` (offline), `rule_changed` (a reload made the rule no longer cover it).
   */
  reason?: 'data_returned' | 'device_online' | 'rule_changed';
}

/** Compound alerts are one per (rule, asset); this stands in their sensor_id. */
export const COMPOUND_SENSOR_ID = '*';
/** The `metric` of offline alerts. */
export const OFFLINE_METRIC = 'status';
