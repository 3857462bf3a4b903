/** Configuration of the ingest stage: broker, storage, assets, metric catalogue and devices. */
import { z } from 'zod';
import { zDuration, zId, zMetric } from '../lib/schema.js';

const port = z.number().int().min(0).max(65535);

export const embeddedBrokerSchema = z.strictObject({
  host: z.string().default('0.0.0.0'),
  port: port.default(1883),
  allow_anonymous: z.boolean().default(false),
  max_payload_bytes: z.number().int().min(256).max(16 * 1024 * 1024).default(1024 * 1024),
});

export const externalBrokerSchema = z.strictObject({
  url: z.string().regex(/^(mqtts?|tcp|ssl|wss?):\/\//, 'must be an mqtt://, mqtts://, ws:// or wss:// URL'),
  username: z.string().optional(),
  password: z.string().optional(),
  client_id: zId.optional(),
  shared_group: zId.optional(),
  max_payload_bytes: z.number().int().min(256).max(16 * 1024 * 1024).default(1024 * 1024),
});

export const brokerSchema = z
  .union([externalBrokerSchema, embeddedBrokerSchema])
  .default({ host: '0.0.0.0', port: 1883, allow_anonymous: false, max_payload_bytes: 1024 * 1024 });

export const influxSchema = z
  .strictObject({
    url: z.string().regex(/^https?:\/\//, 'must be an http:// or https:// URL'),
    version: z.union([z.literal(1), z.literal(2)]).default(1),
    database: z.string().min(1).optional(),
    retention_policy: z.string().min(1).optional(),
    username: z.string().optional(),
    password: z.string().optional(),
    org: z.string().min(1).optional(),
    bucket: z.string().min(1).optional(),
    token: z.string().optional(),
    batch_size: z.number().int().min(1).max(100_000).default(5000),
    flush_interval: zDuration.default(1000),
    timeout: zDuration.default(10_000),
  })
  .superRefine((influx, ctx) => {
    if (influx.version === 1 && !influx.database) {
      ctx.addIssue({ code: 'custom', path: ['database'], message: 'is required when version is 1' });
    }
    if (influx.version === 2) {
      for (const key of ['org', 'bucket'] as const) {
        if (!influx[key]) ctx.addIssue({ code: 'custom', path: [key], message: 'is required when version is 2' });
      }
    }
  });

export const storageSchema = z
  .strictObject({
    data_dir: z.string().min(1).default('./data'),
    influx: influxSchema.optional(),
  })
  .default({ data_dir: './data' });

export const sensorSchema = z.strictObject({
  id: zId,
  metrics: z.array(zMetric).min(1).optional(),
});

export const assetSchema = z.strictObject({
  id: zId,
  type: z.string().regex(/^[a-z][a-z0-9_]{0,31}$/, 'must be a lower-case word such as bridge, slope, pipeline, fire'),
  name: z.string().min(1).max(200),
  street: z.string().min(1).max(100),
  location: z.tuple([z.number().min(-180).max(180), z.number().min(-90).max(90)]).optional(),
  sensors: z.array(sensorSchema).optional(),
});

export const metricSchema = z
  .strictObject({
    unit: z.string().max(32).default(''),
    min: z.number().optional(),
    max: z.number().optional(),
    description: z.string().optional(),
  })
  .refine((m) => m.min === undefined || m.max === undefined || m.min <= m.max, {
    message: 'min must not be greater than max',
  });

export const deviceSchema = z
  .strictObject({
    id: zId,
    secret: z.string().min(8, 'must be at least 8 characters').optional(),
    secret_hash: z
      .string()
      .regex(/^scrypt\$\d+\$\d+\$\d+\$[A-Za-z0-9+/=]+\$[A-Za-z0-9+/=]+$/, 'must be scrypt$N$r$p$salt$hash (base64), as printed by `watchpost hash-secret`')
      .optional(),
    assets: z.array(zId).default([]),
    subscribe: z.array(z.string().min(1)).default([]),
  })
  .refine((d) => (d.secret === undefined) !== (d.secret_hash === undefined), {
    message: 'needs exactly one of secret or secret_hash',
  });

export type EmbeddedBrokerConfig = z.output<typeof embeddedBrokerSchema>;
export type ExternalBrokerConfig = z.output<typeof externalBrokerSchema>;
export type BrokerConfig = z.output<typeof brokerSchema>;
export type InfluxConfig = z.output<typeof influxSchema>;
export type StorageConfig = z.output<typeof storageSchema>;
export type AssetConfig = z.output<typeof assetSchema>;
export type MetricConfig = z.output<typeof metricSchema>;
export type DeviceConfig = z.output<typeof deviceSchema>;

export function isExternalBroker(broker: BrokerConfig): broker is ExternalBrokerConfig {
  return 'url' in broker;
}
