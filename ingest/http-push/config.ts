/** Configuration of HTTP push (`adapters: - type: http`). */
import { z } from 'zod';
import { zDuration } from '../../lib/schema.js';

export const httpAdapterSchema = z.strictObject({
  type: z.literal('http'),
  /** Readings are posted to {path}/{asset_id}/{sensor_id} on the API's listener. */
  path: z
    .string()
    .regex(/^(\/[A-Za-z0-9_.-]+)+$/, 'must be an absolute path such as /ingest/v1 (segments of A-Z a-z 0-9 _ . -)')
    .refine((p) => !p.startsWith('/api/') && p !== '/api', 'must not be under /api (the HTTP API)')
    .default('/ingest/v1'),
  /** Per device: a token bucket of `burst` requests refilled at `requests_per_second`. */
  rate_limit: z
    .strictObject({
      requests_per_second: z.number().positive().max(100_000).default(5),
      burst: z.number().int().min(1).max(1_000_000).default(20),
    })
    .default({ requests_per_second: 5, burst: 20 }),
  /** A request whose body stops arriving for this long is closed (a client sending a byte a minute holds nothing). */
  idle_timeout: zDuration.default(10_000),
});

export type HttpAdapterConfig = z.output<typeof httpAdapterSchema>;
