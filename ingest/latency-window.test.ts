import { describe, expect, it } from 'vitest';
import { LatencyWindow, quantileRows } from './latency-window.js';

describe('LatencyWindow', () => {
  it('gives nearest-rank quantiles of the last N samples', () => {
    const w = new LatencyWindow(4);
    expect(w.quantiles([0.5])).toEqual([undefined]);
    expect(quantileRows(w)).toEqual([]);
    for (const ms of [100, 1, 2, 3, 4]) w.record(ms);
    expect(w.quantiles([0, 0.5, 0.99, 1])).toEqual([1, 2, 4, 4]);
    expect(quantileRows(w)).toEqual([
      [{ quantile: '0.5' }, 0.002],
      [{ quantile: '0.99' }, 0.004],
      [{ quantile: '1' }, 0.004],
    ]);
  });
});
