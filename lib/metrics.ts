/**
 * The platform's metrics, exposed in the Prometheus text format by a prom-client Registry
 * (which also escapes names, help texts and label values, and renders histograms).
 *
 * Counters and gauges keep their values here, keyed by label values: the hot path does one Map
 * lookup per increment, callers need not declare label names up front (prom-client needs them
 * when a metric is created), and `get()` reads a value synchronously. When scraped, the values
 * are copied into prom-client metrics. Histograms are prom-client's own.
 */
import { Counter as PromCounter, Gauge as PromGauge, Histogram as PromHistogram, Registry, collectDefaultMetrics } from 'prom-client';

export type Labels = Record<string, string>;

interface Series {
  labels: Labels;
  value: number;
}

/** Bucket bounds (seconds) for the duration of an operation: 100 µs to 10 s. */
export const LATENCY_BUCKETS: readonly number[] = [0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];

/** A copy with the keys in order, so that a series' labels always render the same way. */
function sortedLabels(labels: Labels | undefined): Labels {
  if (!labels) return {};
  return Object.fromEntries(
    Object.keys(labels)
      .sort()
      .map((k) => [k, labels[k]!]),
  );
}

function labelKey(labels: Labels | undefined): string {
  if (!labels) return '';
  const keys = Object.keys(labels);
  if (keys.length === 1) return `${keys[0]}\u0000${labels[keys[0]!]}`;
  return keys
    .sort()
    .map((k) => `${k}\u0000${labels[k]}`)
    .join('\u0001');
}

abstract class SeriesMetric {
  protected readonly series = new Map<string, Series>();
  private prom?: PromCounter | PromGauge;
  private promLabels = '';

  constructor(
    private readonly registry: Registry,
    readonly name: string,
    readonly help: string,
  ) {}

  get(labels?: Labels): number {
    return this.series.get(labelKey(labels))?.value ?? 0;
  }

  /** Copies the values into the prom-client metric, (re)created with the label names seen so far. */
  publish(): void {
    if (this.series.size === 0) {
      if (this.prom) this.registry.removeSingleMetric(this.name);
      this.prom = undefined;
      return;
    }
    const names = new Set<string>();
    for (const { labels } of this.series.values()) for (const k of Object.keys(labels)) names.add(k);
    const labelNames = [...names].sort();
    if (!this.prom || labelNames.join(',') !== this.promLabels) {
      if (this.prom) this.registry.removeSingleMetric(this.name);
      this.prom = this.create({ name: this.name, help: this.help, labelNames, registers: [this.registry] });
      this.promLabels = labelNames.join(',');
    }
    this.prom.reset();
    for (const { labels, value } of this.series.values()) this.write(this.prom, labels, value);
  }

  protected abstract create(config: { name: string; help: string; labelNames: string[]; registers: Registry[] }): PromCounter | PromGauge;
  protected abstract write(prom: PromCounter | PromGauge, labels: Labels, value: number): void;
}

export class Counter extends SeriesMetric {
  inc(labels?: Labels, by = 1): void {
    const key = labelKey(labels);
    const s = this.series.get(key);
    if (s) s.value += by;
    else this.series.set(key, { labels: sortedLabels(labels), value: by });
  }

  protected create(config: { name: string; help: string; labelNames: string[]; registers: Registry[] }): PromCounter {
    return new PromCounter(config);
  }

  protected write(prom: PromCounter, labels: Labels, value: number): void {
    prom.inc(labels, value);
  }
}

export class Gauge extends SeriesMetric {
  private collector?: () => Array<[Labels | undefined, number]>;

  set(value: number, labels?: Labels): void {
    const key = labelKey(labels);
    const s = this.series.get(key);
    if (s) s.value = value;
    else this.series.set(key, { labels: sortedLabels(labels), value });
  }

  /** Computes the gauge's values when scraped instead of on every change. */
  collect(fn: () => Array<[Labels | undefined, number]>): void {
    this.collector = fn;
  }

  override publish(): void {
    if (this.collector) {
      this.series.clear();
      for (const [labels, value] of this.collector()) this.set(value, labels);
    }
    super.publish();
  }

  protected create(config: { name: string; help: string; labelNames: string[]; registers: Registry[] }): PromGauge {
    return new PromGauge(config);
  }

  protected write(prom: PromGauge, labels: Labels, value: number): void {
    prom.set(labels, value);
  }
}

/** A Prometheus histogram (`_bucket`, `_sum`, `_count`), with the label names given when created. */
export class Histogram {
  private readonly prom: PromHistogram;

  constructor(registry: Registry, name: string, help: string, buckets: readonly number[], labelNames: readonly string[] = []) {
    this.prom = new PromHistogram({ name, help, buckets: [...buckets], labelNames: [...labelNames], registers: [registry] });
  }

  observe(value: number, labels?: Labels): void {
    if (labels) this.prom.observe(labels, value);
    else this.prom.observe(value);
  }
}

/** Default metrics that enumerate every open file descriptor, handle or resource when scraped. */
const PER_CONNECTION_DEFAULT_METRICS = ['process_open_fds', 'nodejs_active_handles', 'nodejs_active_handles_total', 'nodejs_active_resources', 'nodejs_active_resources_total'];

export class MetricsRegistry {
  readonly registry = new Registry();
  private readonly metrics = new Map<string, SeriesMetric | Histogram>();
  private defaults = false;

  counter(name: string, help: string): Counter {
    return this.register(name, Counter, () => new Counter(this.registry, name, help));
  }

  gauge(name: string, help: string): Gauge {
    return this.register(name, Gauge, () => new Gauge(this.registry, name, help));
  }

  histogram(name: string, help: string, buckets: readonly number[] = LATENCY_BUCKETS, labelNames: readonly string[] = []): Histogram {
    return this.register(name, Histogram, () => new Histogram(this.registry, name, help, buckets, labelNames));
  }

  /**
   * prom-client's process and Node.js metrics (CPU, memory, heap, GC, event loop); once per
   * registry. Without those whose cost grows with the connections (a scrape would list every
   * file descriptor, handle and resource: tens of milliseconds at 10,000 devices).
   */
  collectDefaultMetrics(): void {
    if (this.defaults) return;
    this.defaults = true;
    collectDefaultMetrics({ register: this.registry });
    for (const name of PER_CONNECTION_DEFAULT_METRICS) this.registry.removeSingleMetric(name);
  }

  /** The Prometheus text exposition of every metric. */
  async render(): Promise<string> {
    for (const metric of this.metrics.values()) if (metric instanceof SeriesMetric) metric.publish();
    return this.registry.metrics();
  }

  get contentType(): string {
    return this.registry.contentType;
  }

  private register<T extends SeriesMetric | Histogram>(name: string, kind: abstract new (...args: never[]) => T, make: () => T): T {
    const existing = this.metrics.get(name);
    if (existing) {
      if (!(existing instanceof kind)) throw new Error(`metric ${name} is already registered as another type`);
      return existing;
    }
    const metric = make();
    this.metrics.set(name, metric);
    return metric;
  }
}
