import { describe, expect, it } from 'vitest';
import { RetainedBudget } from './retained-budget.js';

describe('RetainedBudget', () => {
  it('admits retained messages within the count and byte limits, counting topic and payload bytes', () => {
    const budget = new RetainedBudget({ maxMessages: 2, maxBytes: 40 });
    expect(budget.admit('status/a', 6)).toBe(true); // 8 + 6
    expect(budget.admit('status/b', 7)).toBe(true); // 8 + 7
    expect([budget.messages(), budget.totalBytes()]).toEqual([2, 29]);
    expect(budget.admit('status/c', 1)).toBe(false);
    // Replacing a topic's message is within the count; an empty payload deletes.
    expect(budget.admit('status/a', 7)).toBe(true);
    expect(budget.admit('status/b', 0)).toBe(true);
    expect([budget.messages(), budget.totalBytes()]).toEqual([1, 15]);
  });

  it("forgets a topic's old message when its new one does not fit (the caller deletes it)", () => {
    const budget = new RetainedBudget({ maxMessages: 10, maxBytes: 30 });
    expect(budget.admit('status/a', 6)).toBe(true);
    expect(budget.admit('status/a', 100)).toBe(false);
    expect([budget.messages(), budget.totalBytes()]).toEqual([0, 0]);
    expect(budget.admit('状态/a', 1)).toBe(true);
    expect(budget.totalBytes()).toBe(Buffer.byteLength('状态/a') + 1);
  });
});
