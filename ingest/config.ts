/** Configuration of the ingest stage: broker, storage, assets, metric catalogue and devices. */
import { z } from 'zod';
import { zDuration, zId, zMetric } from '../lib/schema.js';

const port = z.number().int().min(0).max(65535);

const BYTE_UNITS: Record<string, number> = { B: 1, KB: 1e3, MB: 1e6, GB: 1e9, KiB: 1024, MiB: 1024 ** 2, GiB: 1024 ** 3 };
const BYTES = /^(\d+(?:\.\d+)?)\s*(B|KB|MB|GB|KiB|MiB|GiB)?$/;

/** A size in bytes: a whole number, or a string such as `512MiB`, `2GiB`, `100MB`. */
export const zBytes = z.union([z.number(), z.string()]).transform((value, ctx) => {
  if (typeof value === 'number') {
    if (Number.isSafeInteger(value) && value >= 0) return value;
    ctx.addIssue({ code: 'custom', message: `${value} is not a whole number of bytes` });
    return z.NEVER;
  }
  const m = BYTES.exec(value.trim());
  if (!m) {
    ctx.addIssue({ code: 'custom', message: `"${value}" is not a size (use a number of bytes, or 64KiB, 512MiB, 2GiB, 100MB)` });
    return z.NEVER;
  }
  return Math.round(Number(m[1]) * BYTE_UNITS[m[2] ?? 'B']!);
});

/** A file holding a PEM certificate or key; read at start. */
const pemFile = z.string().min(1);

/** TLS from PEM files: the server's certificate chain and key, optionally a CA to require client certificates. */
export const tlsFilesSchema = z.strictObject({
  cert_file: pemFile,
  key_file: pemFile,
  /** Clients must present a certificate signed by this CA (mutual TLS). */
  ca_file: pemFile.optional(),
});

/**
 * Per-address limits of the embedded broker against connect floods and password guessing.
 * Devices behind one carrier NAT share an address, so the defaults are generous.
 */
export const connectLimitsSchema = z.strictObject({
  /** New TCP connections per second per client address (token bucket refill). */
  connects_per_second: z.number().positive().max(100_000).default(20),
  /** Connections an address may open at once before the rate applies. */
  connect_burst: z.number().int().min(1).max(1_000_000).default(200),
  /** Failed logins from one address within `auth_failure_window` that lock it out. */
  max_auth_failures: z.number().int().min(1).max(1_000_000).default(20),
  auth_failure_window: zDuration.default(300_000),
  /** How long a locked-out address is refused. */
  lockout: zDuration.default(600_000),
  /**
   * Addresses never limited (exact match, e.g. a trusted gateway). Loopback by default: local
   * tools (simulators, benchmarks) open thousands of connections from it. Behind a proxy on the
   * same host every client is loopback: set `exempt: []` there.
   */
  exempt: z.array(z.string().min(1)).default(['127.0.0.1', '::1']),
});

export const DEFAULT_CONNECT_LIMITS: z.output<typeof connectLimitsSchema> = {
  connects_per_second: 20,
  connect_burst: 200,
  max_auth_failures: 20,
  auth_failure_window: 300_000,
  lockout: 600_000,
  exempt: ['127.0.0.1', '::1'],
};

/**
 * Retained messages the embedded broker keeps: devices' own status/{device_id} and the
 * platform's retained publishes (nothing else is retained). Past either bound a new retained
 * message is not kept (it is still delivered live) and its topic's old one is dropped.
 */
export const retainedLimitsSchema = z.strictObject({
  max_messages: z.number().int().min(1).max(10_000_000).default(100_000),
  max_bytes: zBytes.pipe(z.number().int().min(1024, 'must be at least 1KiB')).default(64 * 1024 ** 2),
});

export const DEFAULT_RETAINED_LIMITS: z.output<typeof retainedLimitsSchema> = { max_messages: 100_000, max_bytes: 64 * 1024 ** 2 };

/** Persistent sessions (clean: false) one device may hold under distinct client ids at once. */
export const DEFAULT_PERSISTENT_SESSIONS_PER_DEVICE = 16;

export const embeddedBrokerSchema = z.strictObject({
  host: z.string().default('0.0.0.0'),
  port: port.default(1883),
  allow_anonymous: z.boolean().default(false),
  max_payload_bytes: z
    .number()
    .int()
    .min(256)
    .max(16 * 1024 * 1024)
    .default(1024 * 1024),
  /** MQTT over TLS on its own port; with it, the plain listener is off unless `plaintext: true`. */
  tls: tlsFilesSchema.extend({ port: port.default(8883) }).optional(),
  /** Keep the plain listener on `port` when `tls` is set. */
  plaintext: z.boolean().optional(),
  limits: connectLimitsSchema.default(DEFAULT_CONNECT_LIMITS),
  retained: retainedLimitsSchema.default(DEFAULT_RETAINED_LIMITS),
  persistent_sessions_per_device: z.number().int().min(1).max(100_000).default(DEFAULT_PERSISTENT_SESSIONS_PER_DEVICE),
});

export const externalBrokerSchema = z.strictObject({
  url: z.string().regex(/^(mqtts?|tcp|ssl|wss?):\/\//, 'must be an mqtt://, mqtts://, ws:// or wss:// URL'),
  username: z.string().optional(),
  password: z.string().optional(),
  client_id: zId.optional(),
  shared_group: zId.optional(),
  max_payload_bytes: z
    .number()
    .int()
    .min(256)
    .max(16 * 1024 * 1024)
    .default(1024 * 1024),
  /**
   * Messages being stored at once per connection, their PUBACKs held until durable (the broker's
   * own in-flight window, e.g. mosquitto `max_inflight_messages`, may allow fewer).
   */
  max_inflight: z.number().int().min(1).max(65_535).default(300),
  /** For mqtts:// with a private CA, and client certificates if the broker asks for them. */
  ca_file: pemFile.optional(),
  cert_file: pemFile.optional(),
  key_file: pemFile.optional(),
});

export const brokerSchema = z.union([externalBrokerSchema, embeddedBrokerSchema]).default({
  host: '0.0.0.0',
  port: 1883,
  allow_anonymous: false,
  max_payload_bytes: 1024 * 1024,
  limits: DEFAULT_CONNECT_LIMITS,
  retained: DEFAULT_RETAINED_LIMITS,
  persistent_sessions_per_device: DEFAULT_PERSISTENT_SESSIONS_PER_DEVICE,
});

export const influxSchema = z
  .strictObject({
    url: z
      .string()
      .regex(/^https?:\/\//, 'must be an http:// or https:// URL')
      .refine((url) => !/^https?:\/\/[^/]*@/.test(url), 'must not hold credentials: use username/password or token'),
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
    /** Cap of the retry backoff while InfluxDB is down: how soon after it is back the backlog starts draining. */
    retry_max_delay: zDuration.default(10_000),
    /** Write requests in flight at once (InfluxDB 1.x; the 2.x client sends one at a time). */
    concurrency: z.number().int().min(1).max(16).default(2),
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

/**
 * The durable spool in `data_dir/spool/`: every accepted reading is appended here (and, with
 * `fsync: always`, fsynced) before the device is acknowledged; the writer drains it to the
 * backend oldest first. See ingest/spool.ts.
 */
export const spoolSchema = z
  .strictObject({
    /** Bytes of unwritten points the spool may hold; when full, QoS 1 publishes are not acknowledged. */
    max_bytes: zBytes
      .pipe(
        z
          .number()
          .int()
          .min(1024 * 1024, 'must be at least 1MiB'),
      )
      .default(2 * 1024 ** 3),
    /** Size at which a segment file is closed and a new one started. */
    segment_bytes: zBytes
      .pipe(
        z
          .number()
          .int()
          .min(64 * 1024, 'must be at least 64KiB')
          .max(1024 ** 3, 'must be at most 1GiB'),
      )
      .default(64 * 1024 ** 2),
    /**
     * always: a reading is acknowledged only after fdatasync (survives a power cut);
     * interval: after write() (survives a crash of Watchpost, not of the machine), fsync every `fsync_interval`.
     */
    fsync: z.enum(['always', 'interval']).default('always'),
    fsync_interval: zDuration.default(1000),
    /** Wait this long to gather more appends into one write + fsync (0: as soon as the previous one ends). */
    group_commit_delay: zDuration.default(0),
    /** Spool usage (percent of max_bytes) that raises the platform alert `platform-spool`. */
    alert_percent: z.number().min(1).max(100).default(80),
  })
  .refine((s) => s.segment_bytes <= s.max_bytes, { message: 'segment_bytes must not exceed max_bytes', path: ['segment_bytes'] });

export const DEFAULT_SPOOL: z.output<typeof spoolSchema> = {
  max_bytes: 2 * 1024 ** 3,
  segment_bytes: 64 * 1024 ** 2,
  fsync: 'always',
  fsync_interval: 1000,
  group_commit_delay: 0,
  alert_percent: 80,
};

/** Platform deadman: alerts (to the `fallback` escalation, if configured) when the data path stops. 0 = off. */
export const deadmanSchema = z.strictObject({
  /** No reading accepted from any device for this long. */
  no_readings: zDuration.default(600_000),
  /** Storage writes failing without a success for this long. */
  failing_writes: zDuration.default(300_000),
});

export const DEFAULT_DEADMAN: z.output<typeof deadmanSchema> = { no_readings: 600_000, failing_writes: 300_000 };

/**
 * Points the backend refuses for their content (field type conflict, parse error) are kept in
 * `data_dir/quarantine.jsonl`, rotated at `max_bytes` with `keep` older files (ingest/quarantine.ts).
 * Absent: these defaults.
 */
export const quarantineSchema = z.strictObject({
  max_bytes: zBytes
    .pipe(
      z
        .number()
        .int()
        .min(64 * 1024, 'must be at least 64KiB'),
    )
    .default(64 * 1024 ** 2),
  keep: z.number().int().min(0).max(100).default(3),
});

export const DEFAULT_QUARANTINE: z.output<typeof quarantineSchema> = { max_bytes: 64 * 1024 ** 2, keep: 3 };

/** How long stored data is kept. */
export const retentionSchema = z.strictObject({
  /**
   * Readings and alert events in the embedded telemetry store (telemetry.db) older than this are
   * deleted; 0s keeps them forever. Default 400d: the district's archive year plus margin, so the
   * readings behind an archived alert are still there. InfluxDB keeps its own retention policy.
   */
  telemetry: zDuration.default(400 * 86_400_000),
  /**
   * Alerts in alerts.db resolved longer ago than this are deleted with their timeline and
   * notifications (alerts/retention.ts); 0s keeps them forever. Default 400d, as for telemetry.
   */
  alerts: zDuration.default(400 * 86_400_000),
});

export const DEFAULT_RETENTION: z.output<typeof retentionSchema> = { telemetry: 400 * 86_400_000, alerts: 400 * 86_400_000 };

export const storageSchema = z
  .strictObject({
    data_dir: z.string().min(1).default('./data'),
    influx: influxSchema.optional(),
    spool: spoolSchema.default(DEFAULT_SPOOL),
    deadman: deadmanSchema.default(DEFAULT_DEADMAN),
    quarantine: quarantineSchema.optional(),
    retention: retentionSchema.default(DEFAULT_RETENTION),
  })
  .default({ data_dir: './data', spool: DEFAULT_SPOOL, deadman: DEFAULT_DEADMAN, retention: DEFAULT_RETENTION });

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
  /** The department that owns the asset (权属单位): where `dispatch: { department: owner }` sends work orders. */
  owner: zId.optional(),
  /** Supervising departments (主管部门), told of its overdue work orders. */
  authorities: z.array(zId).max(20).optional(),
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
export type SpoolConfig = z.output<typeof spoolSchema>;
export type DeadmanConfig = z.output<typeof deadmanSchema>;
export type QuarantineConfig = z.output<typeof quarantineSchema>;
export type ConnectLimitsConfig = z.output<typeof connectLimitsSchema>;
export type RetainedLimitsConfig = z.output<typeof retainedLimitsSchema>;
export type TlsFilesConfig = z.output<typeof tlsFilesSchema>;
export type AssetConfig = z.output<typeof assetSchema>;
export type MetricConfig = z.output<typeof metricSchema>;
export type DeviceConfig = z.output<typeof deviceSchema>;

export function isExternalBroker(broker: BrokerConfig): broker is ExternalBrokerConfig {
  return 'url' in broker;
}
