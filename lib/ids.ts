/**
 * Identifier rules from the contract. Every id that reaches an MQTT topic, a line of InfluxDB
 * line protocol or SQL is checked against these first.
 */
export const ID_PATTERN = /^[A-Za-z0-9_.-]{1,64}$/;
export const METRIC_PATTERN = /^[a-z][a-z0-9_]{0,63}$/;

export function isValidId(id: unknown): id is string {
  return typeof id === 'string' && ID_PATTERN.test(id);
}

export function isValidMetric(name: unknown): name is string {
  return typeof name === 'string' && METRIC_PATTERN.test(name);
}
