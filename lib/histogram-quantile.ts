/**
 * Quantiles from a Prometheus histogram in the text format, computed as Prometheus's
 * histogram_quantile does (linear interpolation within the bucket that holds the rank), for
 * benchmarks and tests that read /metrics.
 */

/** The cumulative buckets `[upper bound, count]` of one histogram (with the label set written inside `{}` before `le`, if any). */
export function histogramBuckets(text: string, name: string, labels = ''): Array<[number, number]> {
  const prefix = `${name}_bucket{${labels ? `${labels},` : ''}le="`;
  const buckets: Array<[number, number]> = [];
  for (const line of text.split('\n')) {
    if (!line.startsWith(prefix)) continue;
    const end = line.indexOf('"', prefix.length);
    const le = line.slice(prefix.length, end);
    buckets.push([le === '+Inf' ? Infinity : Number(le), Number(line.slice(line.indexOf(' ', end) + 1))]);
  }
  return buckets.sort((a, b) => a[0] - b[0]);
}

/** The q-quantile (0..1) of cumulative buckets; undefined when empty. Past the last finite bound: that bound. */
export function bucketQuantile(q: number, buckets: ReadonlyArray<readonly [number, number]>): number | undefined {
  const total = buckets.at(-1)?.[1] ?? 0;
  if (total === 0) return undefined;
  const rank = q * total;
  let lowerBound = 0;
  let lowerCount = 0;
  for (const [bound, count] of buckets) {
    if (count >= rank) {
      if (bound === Infinity) return lowerBound;
      if (count === lowerCount) return bound;
      return lowerBound + ((bound - lowerBound) * (rank - lowerCount)) / (count - lowerCount);
    }
    lowerBound = bound;
    lowerCount = count;
  }
  return lowerBound;
}

/** The q-quantile of a histogram in a /metrics text, or undefined when it has no observations. */
export function histogramQuantile(text: string, name: string, q: number, labels = ''): number | undefined {
  return bucketQuantile(q, histogramBuckets(text, name, labels));
}
