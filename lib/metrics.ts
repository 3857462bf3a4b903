/**
 * A small Prometheus text-format registry. Counters and gauges keyed by label values; the
 * hot path does one Map lookup per increment.
 */
type Labels = Record<string, string>;

function labelKey(labels: Labels | undefined): string {
  if (!labels) return '';
  const keys = Object.keys(labels).sort();
  return keys.map((k) => `${k}="${escapeLabel(labels[k]!)}"`).join(',');
}

function escapeLabel(value: string): string {
  return value.replace(/\\/g, '\\\\').replace(/\n/g, '\\n').replace(/"/g, '\\"');
}

abstract class Metric {
  protected readonly values = new Map<string, number>();
  constructor(
    readonly name: string,
    readonly help: string,
    readonly type: 'counter' | 'gauge',
  ) {}

  get(labels?: Labels): number {
    return this.values.get(labelKey(labels)) ?? 0;
  }

  render(): string {
    const lines = [`# HELP ${this.name} ${this.help}`, `# TYPE ${this.name} ${this.type}`];
    for (const [key, value] of this.values) lines.push(`${this.name}${key ? `{${key}}` : ''} ${value}`);
    return lines.join('\n');
  }
}

export class Counter extends Metric {
  constructor(name: string, help: string) {
    super(name, help, 'counter');
  }

  inc(labels?: Labels, by = 1): void {
    const key = labelKey(labels);
    this.values.set(key, (this.values.get(key) ?? 0) + by);
  }
}

export class Gauge extends Metric {
  private collector?: () => Array<[Labels | undefined, number]>;

  constructor(name: string, help: string) {
    super(name, help, 'gauge');
  }

  set(value: number, labels?: Labels): void {
    this.values.set(labelKey(labels), value);
  }

  /** Computes the gauge's values when scraped instead of on every change. */
  collect(fn: () => Array<[Labels | undefined, number]>): void {
    this.collector = fn;
  }

  override render(): string {
    if (this.collector) {
      this.values.clear();
      for (const [labels, value] of this.collector()) this.values.set(labelKey(labels), value);
    }
    return super.render();
  }
}

export class MetricsRegistry {
  private readonly metrics = new Map<string, Metric>();

  counter(name: string, help: string): Counter {
    return this.register(name, () => new Counter(name, help)) as Counter;
  }

  gauge(name: string, help: string): Gauge {
    return this.register(name, () => new Gauge(name, help)) as Gauge;
  }

  render(): string {
    return [...this.metrics.values()].map((m) => m.render()).join('\n') + '\n';
  }

  private register(name: string, make: () => Metric): Metric {
    let metric = this.metrics.get(name);
    if (!metric) {
      metric = make();
      this.metrics.set(name, metric);
    }
    return metric;
  }
}
