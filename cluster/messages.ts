/**
 * What travels through a partition queue: the readings an instance accepted for the partition's
 * assets, or a device's presence change. Compact JSON; decoding checks the size first and the
 * shape with zod, so a corrupt or foreign message is an error the consumer logs and drops, never a
 * crash or a loop.
 */
import { z } from 'zod';
import type { Reading } from '../ingest/reading.js';
import { AmqpError, AMQP_ERROR_CODES } from './amqp-errors.js';
import { partitionOf } from './partitions.js';

export type PartitionMessage =
  { v: 1; kind: 'readings'; instance: string; readings: Reading[] } | { v: 1; kind: 'presence'; instance: string; deviceId: string; status: 'online' | 'offline'; at: number };

/** The largest message encoded or accepted, in bytes; readings beyond it go into further messages. */
export const MAX_MESSAGE_BYTES = 1024 * 1024;
/** Longest id, metric, type or street a message may carry (far above what the config allows). */
const MAX_TEXT = 1024;

export const INSTANCE_ID = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$/;

const text = z.string().min(1).max(MAX_TEXT);
const epochMs = z.number().finite().min(0);

const readingSchema = z.object({
  assetId: text,
  sensorId: text,
  assetType: text,
  street: z.string().max(MAX_TEXT),
  metric: text,
  value: z.number().finite(),
  ts: epochMs,
});

const messageSchema = z.discriminatedUnion('kind', [
  z.object({ v: z.literal(1), kind: z.literal('readings'), instance: z.string().regex(INSTANCE_ID), readings: z.array(readingSchema).min(1) }),
  z.object({
    v: z.literal(1),
    kind: z.literal('presence'),
    instance: z.string().regex(INSTANCE_ID),
    deviceId: text,
    status: z.enum(['online', 'offline']),
    at: epochMs,
  }),
]);

/** The message as JSON bytes. Throws AMQP_TOO_LARGE beyond MAX_MESSAGE_BYTES. */
export function encodeMessage(message: PartitionMessage): Buffer {
  const bytes = Buffer.from(JSON.stringify(message), 'utf8');
  if (bytes.length > MAX_MESSAGE_BYTES) throw new AmqpError(AMQP_ERROR_CODES.TOO_LARGE, `a partition message of ${bytes.length} bytes exceeds ${MAX_MESSAGE_BYTES}`);
  return bytes;
}

/** The message in `bytes`, checked. Throws AMQP_BAD_MESSAGE saying what is wrong. */
export function decodeMessage(bytes: Buffer): PartitionMessage {
  if (bytes.length > MAX_MESSAGE_BYTES) throw new AmqpError(AMQP_ERROR_CODES.BAD_MESSAGE, `a message of ${bytes.length} bytes exceeds ${MAX_MESSAGE_BYTES}`);
  let json: unknown;
  try {
    json = JSON.parse(bytes.toString('utf8'));
  } catch (err) {
    throw new AmqpError(AMQP_ERROR_CODES.BAD_MESSAGE, `a message is not JSON: ${(err as Error).message}`, { cause: err });
  }
  const parsed = messageSchema.safeParse(json);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    const where = issue && issue.path.length > 0 ? issue.path.join('.') : 'message';
    throw new AmqpError(AMQP_ERROR_CODES.BAD_MESSAGE, `a message is not a partition message: ${where}: ${issue?.message ?? 'invalid'}`);
  }
  return parsed.data;
}

/** Bytes that a reading adds to a readings message (its JSON and a comma). */
function readingBytes(reading: Reading): number {
  return Buffer.byteLength(JSON.stringify(reading), 'utf8') + 1;
}

/**
 * The readings as messages per partition: grouped by `partitionOf(assetId, partitions)`, in their
 * order within each partition, split so that every message stays within MAX_MESSAGE_BYTES.
 */
export function readingMessages(instance: string, readings: readonly Reading[], partitions: number): Array<{ partition: number; message: PartitionMessage }> {
  const groups = new Map<number, Reading[]>();
  for (const reading of readings) {
    const p = partitionOf(reading.assetId, partitions);
    let group = groups.get(p);
    if (!group) groups.set(p, (group = []));
    group.push(reading);
  }
  const envelope = Buffer.byteLength(JSON.stringify({ v: 1, kind: 'readings', instance, readings: [] }), 'utf8');
  const out: Array<{ partition: number; message: PartitionMessage }> = [];
  for (const [partition, group] of [...groups].sort((a, b) => a[0] - b[0])) {
    let chunk: Reading[] = [];
    let size = envelope;
    for (const reading of group) {
      const bytes = readingBytes(reading);
      if (chunk.length > 0 && size + bytes > MAX_MESSAGE_BYTES) {
        out.push({ partition, message: { v: 1, kind: 'readings', instance, readings: chunk } });
        chunk = [];
        size = envelope;
      }
      chunk.push(reading);
      size += bytes;
    }
    out.push({ partition, message: { v: 1, kind: 'readings', instance, readings: chunk } });
  }
  return out;
}
