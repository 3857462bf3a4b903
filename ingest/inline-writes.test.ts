import { describe, expect, it } from 'vitest';
import { InlineWrites } from './inline-writes.js';

describe('InlineWrites', () => {
  it('tolerates an occasional slow group among fast ones', () => {
    const judge = new InlineWrites(2);
    for (let i = 0; i < 50; i++) expect(judge.tooSlow(0.1)).toBe(false);
    expect(judge.tooSlow(6)).toBe(false); // one spike of 3x the limit: the average stays low
    for (let i = 0; i < 50; i++) expect(judge.tooSlow(0.1)).toBe(false);
  });

  it('moves to the thread pool once groups are slow on average', () => {
    const judge = new InlineWrites(2);
    const verdicts = Array.from({ length: 30 }, () => judge.tooSlow(3));
    // 3 ms per group: the average passes 2 ms after 11 groups (1 - 0.9^n > 2/3).
    expect(verdicts.indexOf(true)).toBe(10);
    expect(judge.averageMs()).toBeGreaterThan(2);
  });

  it('moves at once when one group stalls for ten times the limit, and starts over after reset', () => {
    const judge = new InlineWrites(2);
    expect(judge.tooSlow(0.1)).toBe(false);
    expect(judge.tooSlow(25)).toBe(true);
    judge.reset();
    expect(judge.averageMs()).toBe(0);
    expect(judge.tooSlow(0.1)).toBe(false);
  });
});
