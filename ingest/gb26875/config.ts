/** Configuration of a GB/T 26875.3 adapter (`adapters:` entry with `type: gb26875`). */
import { z } from 'zod';
import { zDuration, zId, zMetric } from '../../lib/schema.js';
import { isAddress, MAX_APP_DATA, normalizeAddress } from './frame.js';

const zAddress = z.string().refine(isAddress, 'must be "0x" and 12 hex digits (the 6-byte address as a little-endian number), e.g. "0x0000AB12CD34"').transform(normalizeAddress);

/** A point of the device (system s-…, component c-…, transmission device uitd) renamed onto the catalogue. */
const pointSchema = z.strictObject({
  id: z.string().regex(/^(s-\d{1,3}-\d{1,3}|c-\d{1,3}-\d{1,3}-[0-9a-f]{8}|uitd)$/, 'must be s-{system type}-{system address}, c-{system type}-{system address}-{8 hex digits} or uitd'),
  sensor: zId,
  /** Which of the point's metrics are stored, under which catalogue names; all under their own names when omitted. */
  metrics: z.record(zMetric, zMetric).optional(),
});

const deviceMappingSchema = z.strictObject({
  address: zAddress,
  device: zId,
  asset: zId,
  sensors: z.array(pointSchema).default([]),
});

export const DEFAULT_GB26875 = {
  host: '0.0.0.0',
  port: 9026,
  /** Local time of the devices' time labels (China Standard Time). */
  utc_offset: '+08:00',
  max_connections: 1000,
  max_connections_per_address: 8,
  max_app_data_bytes: MAX_APP_DATA,
  /** A frame must be complete this long after its first byte. */
  frame_timeout: 10_000,
  /** A link with no valid frame for this long is closed, and its device offline. */
  idle_timeout: 180_000,
  /** Frames of one connection waiting to be stored before the connection is paused. */
  max_pending_frames: 64,
  sync_time: true,
} as const;

export const gb26875AdapterSchema = z
  .strictObject({
    type: z.literal('gb26875'),
    host: z.string().min(1).default(DEFAULT_GB26875.host),
    port: z.number().int().min(0).max(65535).default(DEFAULT_GB26875.port),
    /** The monitoring centre's own address, the destination of its frames. */
    address: zAddress.default('0x000000000000'),
    utc_offset: z
      .string()
      .regex(/^[+-]\d{2}:\d{2}$/, 'must be ±HH:MM, e.g. +08:00')
      .default(DEFAULT_GB26875.utc_offset),
    max_connections: z.number().int().min(1).default(DEFAULT_GB26875.max_connections),
    max_connections_per_address: z.number().int().min(1).default(DEFAULT_GB26875.max_connections_per_address),
    max_app_data_bytes: z.number().int().min(2).max(MAX_APP_DATA).default(DEFAULT_GB26875.max_app_data_bytes),
    frame_timeout: zDuration.default(DEFAULT_GB26875.frame_timeout),
    idle_timeout: zDuration.default(DEFAULT_GB26875.idle_timeout),
    max_pending_frames: z.number().int().min(1).default(DEFAULT_GB26875.max_pending_frames),
    sync_time: z.boolean().default(DEFAULT_GB26875.sync_time),
    devices: z.array(deviceMappingSchema).default([]),
  })
  .superRefine((a, ctx) => {
    const seen = new Set<string>();
    a.devices.forEach((d, i) => {
      if (seen.has(d.address)) ctx.addIssue({ code: 'custom', path: ['devices', i, 'address'], message: `duplicate address ${d.address}` });
      seen.add(d.address);
    });
  });

export type Gb26875AdapterConfig = z.output<typeof gb26875AdapterSchema>;
export type Gb26875DeviceMapping = Gb26875AdapterConfig['devices'][number];

export function utcOffsetMinutes(text: string): number {
  const sign = text.startsWith('-') ? -1 : 1;
  return sign * (Number(text.slice(1, 3)) * 60 + Number(text.slice(4, 6)));
}
