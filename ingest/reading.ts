/**
 * One accepted metric value, after topic parsing, payload decoding and catalogue checks.
 * A published reading object with several values becomes several of these.
 */
export interface Reading {
  assetId: string;
  sensorId: string;
  assetType: string;
  street: string;
  metric: string;
  /** Finite number; booleans arrive as 1 / 0. */
  value: number;
  /** Event time, epoch milliseconds. */
  ts: number;
}
