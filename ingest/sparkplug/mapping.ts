/**
 * Sparkplug metric names to the catalogue's sensors and metrics (docs/adapters-sparkplug.md):
 * - the metric: the node's `metrics` map (by the full Sparkplug name) if it lists the name, else
 *   the name's last `/` segment in snake_case (lower case, every run of other characters than
 *   a-z 0-9 becomes `_`, no `_` at either end): `Strain` -> `strain`, `Temp (C)` -> `temp_c`;
 * - the sensor: the segment before the last one if the name has a folder
 *   (`strain-01/Strain` -> sensor `strain-01`), else the Sparkplug device id (D* messages), else
 *   the node's `sensor` (default the edge node id).
 */

/** Metrics of the protocol itself, never readings. */
export function isControlMetric(name: string): boolean {
  return name === 'bdSeq' || name.startsWith('Node Control/') || name.startsWith('Device Control/') || name.startsWith('Properties/') || name.startsWith('Node Info/');
}

export function snakeCase(segment: string): string {
  return segment
    .toLowerCase()
    .replace(/[^a-z0-9]+/g, '_')
    .replace(/^_+|_+$/g, '');
}

/** A sensor id from a folder name: characters outside A-Z a-z 0-9 _ . - become `_`. */
function sensorId(segment: string): string {
  return segment.replace(/[^A-Za-z0-9_.-]/g, '_').slice(0, 64);
}

export function mapMetricName(name: string, explicit: Readonly<Record<string, string>>, defaultSensor: string): { sensor: string; metric: string } {
  const segments = name.split('/');
  const sensor = segments.length > 1 ? sensorId(segments[segments.length - 2]!) : defaultSensor;
  const metric = Object.hasOwn(explicit, name) ? explicit[name]! : snakeCase(segments[segments.length - 1]!);
  return { sensor: sensor || defaultSensor, metric };
}
