/** Configuration of the Sparkplug B host application (`adapters: - type: sparkplug`). */
import { z } from 'zod';
import { zDuration, zId, zMetric } from '../../lib/schema.js';

/** A Sparkplug group id, edge node id or device id as it may appear in a topic level. */
export const SPARKPLUG_ID = /^[A-Za-z0-9_.-]{1,64}$/;
const zSparkplugId = z.string().regex(SPARKPLUG_ID, 'must be 1-64 characters of A-Z a-z 0-9 _ . -');

export const sparkplugNodeSchema = z.strictObject({
  group: zSparkplugId,
  /** The edge node id; it is also the device id (in `devices:`) the node logs in with on the embedded broker. */
  edge: zId,
  /** A Sparkplug device of the node, or "*" for all of them (and the node's own metrics). */
  device: z.union([z.literal('*'), zSparkplugId]).default('*'),
  asset: zId,
  /** Sensor of the node's own metrics (NBIRTH/NDATA) without a folder; default the edge node id. */
  sensor: zId.optional(),
  /** Sparkplug metric name -> catalogue metric name; names not listed follow the mapping rule. */
  metrics: z.record(z.string().min(1).max(256), zMetric).default({}),
});

export const sparkplugAdapterSchema = z.strictObject({
  type: z.literal('sparkplug'),
  /** The host application id: Watchpost publishes spBv1.0/STATE/{host_id}. */
  host_id: zSparkplugId.default('watchpost'),
  nodes: z.array(sparkplugNodeSchema).min(1),
  /** At most one rebirth request per node this often. */
  rebirth_interval: zDuration.default(5000),
});

export type SparkplugAdapterConfig = z.output<typeof sparkplugAdapterSchema>;
export type SparkplugNodeConfig = z.output<typeof sparkplugNodeSchema>;
