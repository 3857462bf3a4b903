import { describe, expect, it } from 'vitest';
import { decodePayload, MAX_BATCH } from './payload.js';

const NOW = Date.parse('2025-11-28T02:00:00.000Z');

describe('decodePayload', () => {
  it('decodes a single reading with epoch ms, numbers and booleans', () => {
    const out = decodePayload(Buffer.from('{"ts":1764295200123,"values":{"strain":123.4,"smoke":true,"door":false}}'), NOW);
    expect(out).toEqual({
      readings: [
        {
          ts: 1764295200123,
          values: [
            ['strain', 123.4],
            ['smoke', 1],
            ['door', 0],
          ],
          index: undefined,
        },
      ],
      rejections: [],
    });
  });

  it('accepts RFC 3339 timestamps with offsets and fills a missing ts with the receive time', () => {
    const out = decodePayload('[{"ts":"2025-11-28T10:00:00.5+08:00","values":{"a":1}},{"values":{"a":2}}]', NOW);
    expect(out.readings).toEqual([
      { ts: Date.parse('2025-11-28T02:00:00.500Z'), values: [['a', 1]], index: 0 },
      { ts: NOW, values: [['a', 2]], index: 1 },
    ]);
    expect(out.rejections).toEqual([]);
  });

  it('judges a batch reading by reading', () => {
    const out = decodePayload(
      JSON.stringify([
        { ts: NOW - 1000, values: { a: 1 } },
        { ts: NOW + 3_600_001, values: { a: 2 } },
        { ts: NOW, values: { A: 3 } },
        { ts: NOW, values: { a: 'x' } },
        { ts: NOW, values: {} },
        { ts: NOW, values: { a: 1 }, extra: 1 },
        7,
        { ts: 1.5e12 + 0.5, values: { a: 1 } },
        { ts: 1764295200, values: { a: 1 } },
        { ts: '2025-11-28 10:00', values: { a: 1 } },
      ]),
      NOW,
    );
    expect(out.readings).toEqual([{ ts: NOW - 1000, values: [['a', 1]], index: 0 }]);
    expect(out.rejections.map((r) => [r.index, r.reason])).toEqual([
      [1, 'bad_timestamp'],
      [2, 'bad_metric'],
      [3, 'bad_value'],
      [4, 'bad_shape'],
      [5, 'bad_shape'],
      [6, 'bad_shape'],
      [7, 'bad_timestamp'],
      [8, 'bad_timestamp'],
      [9, 'bad_timestamp'],
    ]);
  });

  it('accepts a timestamp exactly 1 h ahead and old timestamps from replayed buffers', () => {
    const out = decodePayload(
      JSON.stringify([
        { ts: NOW + 3_600_000, values: { a: 1 } },
        { ts: NOW - 30 * 86_400_000, values: { a: 1 } },
      ]),
      NOW,
    );
    expect(out.rejections).toEqual([]);
    expect(out.readings).toHaveLength(2);
  });

  it('rejects bad JSON, wrong shapes and oversized batches', () => {
    expect(decodePayload('{"ts":', NOW).rejections[0]!.reason).toBe('bad_json');
    expect(decodePayload('null', NOW).rejections[0]!.reason).toBe('bad_shape');
    expect(decodePayload('"x"', NOW).rejections[0]!.reason).toBe('bad_shape');
    expect(decodePayload('[]', NOW).rejections[0]!.reason).toBe('bad_shape');
    expect(decodePayload('{"values":[1,2]}', NOW).rejections[0]!.reason).toBe('bad_shape');
    const big = JSON.stringify(Array.from({ length: MAX_BATCH + 1 }, () => ({ values: { a: 1 } })));
    expect(decodePayload(big, NOW)).toEqual({ readings: [], rejections: [{ reason: 'too_many', detail: `a batch holds at most ${MAX_BATCH} readings, got ${MAX_BATCH + 1}` }] });
  });

  it('refuses non-finite numbers written as huge literals', () => {
    expect(decodePayload('{"values":{"a":1e999}}', NOW).rejections[0]!.reason).toBe('bad_value');
  });

  it('does not let __proto__ or constructor keys through as metrics', () => {
    expect(decodePayload('{"values":{"__proto__":1}}', NOW).rejections[0]!.reason).toBe('bad_metric');
    expect(decodePayload('{"values":{"constructor":1}}', NOW).readings[0]!.values).toEqual([['constructor', 1]]);
  });
});
