import { describe, expect, it } from 'vitest';
import type { Reading } from '../ingest/reading.js';
import { AMQP_ERROR_CODES, AmqpError } from './amqp-errors.js';
import { decodeMessage, encodeMessage, MAX_MESSAGE_BYTES, readingMessages, type PartitionMessage } from './messages.js';
import { partitionOf } from './partitions.js';

const reading = (assetId: string, value: number, ts = 1_700_000_000_000): Reading => ({ assetId, sensorId: 's1', assetType: 'bridge', street: '龙城街道', metric: 'strain', value, ts });

function decodeError(bytes: Buffer): AmqpError {
  try {
    decodeMessage(bytes);
  } catch (err) {
    return err as AmqpError;
  }
  throw new Error('decoded');
}

describe('partition messages', () => {
  it('round-trips readings and presence as compact JSON', () => {
    const readings: PartitionMessage = { v: 1, kind: 'readings', instance: 'wp-1', readings: [reading('a1', 1.5), reading('a1', -2)] };
    const presence: PartitionMessage = { v: 1, kind: 'presence', instance: 'wp-1', deviceId: 'dev-9', status: 'offline', at: 1_700_000_000_123 };
    const bytes = encodeMessage(readings);
    expect(bytes.toString()).toBe(JSON.stringify(readings));
    expect(decodeMessage(bytes)).toEqual(readings);
    expect(decodeMessage(encodeMessage(presence))).toEqual(presence);
  });

  it('refuses what is not a partition message, saying where', () => {
    const cases: Array<[string, RegExp]> = [
      ['not json', /not JSON/],
      ['{"v":2,"kind":"readings","instance":"a","readings":[]}', /kind|v/],
      ['{"v":1,"kind":"readings","instance":"a","readings":[]}', /readings/],
      ['{"v":1,"kind":"readings","instance":"-bad","readings":[{"assetId":"a"}]}', /instance/],
      ['{"v":1,"kind":"readings","instance":"a","readings":[{"assetId":"a","sensorId":"s","assetType":"t","street":"","metric":"m","value":null,"ts":1}]}', /readings\.0\.value/],
      ['{"v":1,"kind":"presence","instance":"a","deviceId":"d","status":"away","at":1}', /status/],
      ['[1,2]', /message/],
    ];
    for (const [text, reason] of cases) {
      const err = decodeError(Buffer.from(text));
      expect(err).toBeInstanceOf(AmqpError);
      expect(err.code).toBe(AMQP_ERROR_CODES.BAD_MESSAGE);
      expect(err.canRetry()).toBe(false);
      expect(err.message).toMatch(reason);
    }
    expect(decodeError(Buffer.alloc(MAX_MESSAGE_BYTES + 1, 0x20)).message).toMatch(/exceeds/);
  });

  it('strips unknown fields from readings', () => {
    const text = '{"v":1,"kind":"readings","instance":"a","readings":[{"assetId":"a","sensorId":"s","assetType":"t","street":"","metric":"m","value":1,"ts":1,"extra":true}]}';
    expect(decodeMessage(Buffer.from(text))).toEqual({
      v: 1,
      kind: 'readings',
      instance: 'a',
      readings: [{ assetId: 'a', sensorId: 's', assetType: 't', street: '', metric: 'm', value: 1, ts: 1 }],
    });
  });

  it('refuses to encode a message beyond the limit', () => {
    const big: PartitionMessage = { v: 1, kind: 'readings', instance: 'a', readings: Array.from({ length: 20_000 }, (_, i) => reading(`asset-${'x'.repeat(40)}-${i}`, i)) };
    expect(() => encodeMessage(big)).toThrow(expect.objectContaining({ code: AMQP_ERROR_CODES.TOO_LARGE }));
  });

  it('groups readings by partition, keeps their order and splits large groups', () => {
    const readings = [reading('a', 1), reading('b', 2), reading('a', 3), reading('c', 4), reading('b', 5)];
    const messages = readingMessages('wp-1', readings, 4);
    const byPartition = new Map<number, number[]>();
    for (const { partition, message } of messages) {
      expect(message.kind).toBe('readings');
      if (message.kind !== 'readings') continue;
      for (const r of message.readings) {
        expect(partitionOf(r.assetId, 4)).toBe(partition);
        byPartition.set(partition, [...(byPartition.get(partition) ?? []), r.value]);
      }
    }
    const expected = new Map<number, number[]>();
    for (const r of readings) expected.set(partitionOf(r.assetId, 4), [...(expected.get(partitionOf(r.assetId, 4)) ?? []), r.value]);
    expect(byPartition).toEqual(expected);
    expect(messages.map((m) => m.partition)).toEqual([...expected.keys()].sort((x, y) => x - y));

    const many = Array.from({ length: 12_000 }, (_, i) => reading('one-asset', i));
    const split = readingMessages('wp-1', many, 16);
    expect(split.length).toBeGreaterThan(1);
    const values = split.flatMap(({ message }) => (message.kind === 'readings' ? message.readings.map((r) => r.value) : []));
    expect(values).toEqual(many.map((r) => r.value));
    for (const { message } of split) expect(encodeMessage(message).length).toBeLessThanOrEqual(MAX_MESSAGE_BYTES);
  });
});
