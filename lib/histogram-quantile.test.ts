import { describe, expect, it } from 'vitest';
import { bucketQuantile, histogramBuckets, histogramQuantile } from './histogram-quantile.js';
import { MetricsRegistry } from './metrics.js';

describe('histogram quantiles', () => {
  it('interpolates within the bucket that holds the rank, as histogram_quantile does', () => {
    const buckets: Array<[number, number]> = [
      [0.1, 10],
      [0.2, 30],
      [0.4, 40],
      [Infinity, 40],
    ];
    expect(bucketQuantile(0.25, buckets)).toBeCloseTo(0.1, 12);
    expect(bucketQuantile(0.5, buckets)).toBeCloseTo(0.15, 12);
    expect(bucketQuantile(0.875, buckets)).toBeCloseTo(0.3, 12);
    expect(
      bucketQuantile(0, [
        [1, 0],
        [Infinity, 0],
      ]),
    ).toBeUndefined();
    // Beyond the last finite bound: that bound.
    expect(
      bucketQuantile(0.99, [
        [1, 1],
        [Infinity, 10],
      ]),
    ).toBe(1);
  });

  it('reads the buckets of a rendered histogram', async () => {
    const metrics = new MetricsRegistry();
    const h = metrics.histogram('t_seconds', 'test', [0.01, 0.1, 1]);
    for (const v of [0.005, 0.05, 0.05, 0.5]) h.observe(v);
    const text = await metrics.render();
    expect(histogramBuckets(text, 't_seconds')).toEqual([
      [0.01, 1],
      [0.1, 3],
      [1, 4],
      [Infinity, 4],
    ]);
    expect(histogramQuantile(text, 't_seconds', 0.5)).toBeCloseTo(0.055, 12);
    expect(histogramQuantile(text, 'absent_seconds', 0.5)).toBeUndefined();
  });
});
