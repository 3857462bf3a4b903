import { z } from 'zod';
import { describe, expect, it } from 'vitest';
import { didYouMean, editDistance, fieldsAt, unknownFieldMessage } from './schema.js';

describe('unknown-field helpers', () => {
  it('measures edits, a swap of neighbours counting one', () => {
    expect(editDistance('levles', 'levels')).toBe(1);
    expect(editDistance('secrte', 'secret')).toBe(1);
    expect(editDistance('Levels', 'levels')).toBe(0);
    expect(editDistance('', 'abc')).toBe(3);
    expect(editDistance('kitten', 'sitting')).toBe(3);
  });

  it('suggests the nearest field within a third of the word, and nothing farther', () => {
    expect(didYouMean('levles', ['id', 'levels', 'stale'])).toBe('levels');
    expect(didYouMean('abvoe', ['above', 'below', 'outside'])).toBe('above');
    expect(didYouMean('colour', ['id', 'secret', 'secret_hash', 'assets', 'subscribe'])).toBeUndefined();
    expect(didYouMean('x', ['y'])).toBe('y');
    expect(unknownFieldMessage('levles', ['levels'])).toBe('unknown field "levles" (did you mean "levels"?)');
    expect(unknownFieldMessage('colour', ['id', 'secret'])).toBe('unknown field "colour" (accepted: id, secret)');
    expect(unknownFieldMessage('brokr', ['broker'], 'section')).toBe('unknown section "brokr" (did you mean "broker"?)');
  });

  it('finds the fields of a nested object through wrappers, arrays and records', () => {
    const inner = z.strictObject({ above: z.number().optional(), below: z.number().optional() }).refine(() => true);
    const schema = z.strictObject({
      levels: z.strictObject({ red: inner.transform((c) => c).optional() }),
      list: z.array(z.strictObject({ id: z.string() })).default([]),
      map: z.record(z.string(), z.strictObject({ unit: z.string() })),
      either: z.union([z.string(), z.strictObject({ a: z.string() })]),
    });
    expect(fieldsAt(schema, [])).toEqual(['levels', 'list', 'map', 'either']);
    expect(fieldsAt(schema, ['levels', 'red'])).toEqual(['above', 'below']);
    expect(fieldsAt(schema, ['list', 3])).toEqual(['id']);
    expect(fieldsAt(schema, ['map', 'strain'])).toEqual(['unit']);
    expect(fieldsAt(schema, ['either'])).toBeUndefined();
    expect(fieldsAt(schema, ['nowhere'])).toBeUndefined();
  });
});
