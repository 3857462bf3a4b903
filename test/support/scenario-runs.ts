/**
 * How simulators/scenarios.e2e.test.ts compresses each scenario, shared with the pure check in
 * simulators/simulate.test.ts that the compression raises the documented levels at any hour.
 */
/**
 * How each scenario is compressed: simulated seconds between readings, and the run for open-ended
 * ones. A step must leave a reading inside every level band a documented alert passes through,
 * whatever the time of day (the everyday values follow a daily cycle): at 2 s the incident's 5 s
 * strain ramp was sampled at 20 % and 60 % only, so whether a reading fell in the yellow band
 * depended on the hour the test ran.
 */
export const RUNS: Record<string, { step: number; duration?: number }> = {
  normal: { step: 1, duration: 3 },
  quiet: { step: 1, duration: 3 },
  incident: { step: 1, duration: 4 },
  drift: { step: 60 },
  spike: { step: 10 },
  sensor_dropout: { step: 10 },
  device_offline: { step: 10 },
  landslide: { step: 60 },
  pipe_burst: { step: 10 },
  gas_leak: { step: 10 },
  fire: { step: 5 },
  disposal: { step: 2 },
  storm: { step: 90 },
};
/** Readings per wall-clock second per sensor. */
export const RATE = 20;
