/**
 * The `cluster` configuration section: several instances share the work through RabbitMQ
 * (readings partitioned by asset) and PostgreSQL (alert state, leases, rule checkpoints).
 * Without the section the instance runs alone on SQLite and needs neither engine.
 */
import { z } from 'zod';

export const INSTANCE_ID_PATTERN = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$/;
export const DEFAULT_PARTITIONS = 16;
export const MAX_PARTITIONS = 1024;

/** A URL of one of the engines: `required` names it when the field is missing. */
function engineUrl(engine: string, schemes: readonly string[], example: string) {
  return z.string({ error: (iss) => (iss.input === undefined ? `is required (the ${engine} URL, such as ${example})` : `must be a string (the ${engine} URL)`) }).superRefine((text, ctx) => {
    let url: URL;
    try {
      url = new URL(text);
    } catch {
      ctx.addIssue({ code: 'custom', message: `is not a URL (the ${engine} URL, such as ${example})` });
      return;
    }
    const scheme = url.protocol.replace(/:$/, '');
    if (!schemes.includes(scheme)) ctx.addIssue({ code: 'custom', message: `must use ${schemes.map((s) => `${s}://`).join(' or ')} (the ${engine} URL), not ${scheme}://` });
    else if (url.hostname === '') ctx.addIssue({ code: 'custom', message: `names no host (the ${engine} URL, such as ${example})` });
  });
}

export const clusterSchema = z
  .strictObject({
    /** This instance's name in the cluster: leases, platform alerts (sensor_id) and logs carry it. */
    instance_id: z
      .string({ error: (iss) => (iss.input === undefined ? "is required (this instance's name in the cluster, unique among the instances)" : undefined) })
      .regex(INSTANCE_ID_PATTERN, 'must be 1-64 characters of A-Z a-z 0-9 _ . - starting with a letter or digit')
      .describe("this instance's name in the cluster, unique among the instances (1-64 of A-Z a-z 0-9 _ . -)"),
    /** RabbitMQ: every accepted reading is published to the partition of its asset. */
    amqp_url: engineUrl('RabbitMQ', ['amqp', 'amqps'], 'amqp://watchpost:secret@rabbit.internal:5672/').describe(
      'RabbitMQ (amqp:// or amqps://): readings are published to quorum queues partitioned by asset',
    ),
    /** PostgreSQL: alerts, cases, silences, outbox, leases and rule checkpoints, shared by all instances. */
    postgres_url: engineUrl('PostgreSQL', ['postgres', 'postgresql'], 'postgres://watchpost:secret@pg.internal:5432/watchpost').describe(
      'PostgreSQL (postgres:// or postgresql://): the shared alert store, partition leases and rule checkpoints',
    ),
    /** Partitions of the reading stream; every instance must use the same number. */
    partitions: z
      .number()
      .int()
      .min(1)
      .max(MAX_PARTITIONS)
      .default(DEFAULT_PARTITIONS)
      .describe(`partitions of the reading stream (1-${MAX_PARTITIONS}, default ${DEFAULT_PARTITIONS}); the same on every instance`),
  })
  .optional();

export type ClusterConfig = NonNullable<z.output<typeof clusterSchema>>;

/** `host:port` of an engine URL, for errors and logs: never its user or password. */
export function engineAddress(url: string, defaultPort: number): string {
  try {
    const u = new URL(url);
    return `${u.hostname}:${u.port || defaultPort}`;
  } catch {
    return '(invalid URL)';
  }
}
