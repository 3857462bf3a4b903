/**
 * The last N durations of an operation (storage writes, spool fsyncs), for quantile gauges on
 * /metrics. A ring buffer: recording is O(1) on the hot path; quantiles sort a copy when scraped.
 */
export class LatencyWindow {
  private readonly samples: Float64Array;
  private count = 0;
  private next = 0;

  constructor(readonly capacity = 1024) {
    this.samples = new Float64Array(capacity);
  }

  record(ms: number): void {
    this.samples[this.next] = ms;
    this.next = (this.next + 1) % this.capacity;
    if (this.count < this.capacity) this.count += 1;
  }

  /** Nearest-rank quantiles (q in [0, 1]) of the window, in ms; undefined when nothing was recorded. */
  quantiles(qs: readonly number[]): Array<number | undefined> {
    if (this.count === 0) return qs.map(() => undefined);
    const sorted = Array.from(this.samples.subarray(0, this.count)).sort((a, b) => a - b);
    return qs.map((q) => sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1))]);
  }
}

export const LATENCY_QUANTILES = [0.5, 0.99, 1] as const;

/** Gauge rows `{quantile}` in seconds, for MetricsRegistry's collect(). */
export function quantileRows(window: LatencyWindow): Array<[{ quantile: string }, number]> {
  const values = window.quantiles(LATENCY_QUANTILES);
  const rows: Array<[{ quantile: string }, number]> = [];
  LATENCY_QUANTILES.forEach((q, i) => {
    const v = values[i];
    if (v !== undefined) rows.push([{ quantile: String(q) }, Math.round(v * 1000) / 1e6]);
  });
  return rows;
}
