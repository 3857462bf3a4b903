/**
 * How busy the main thread is, and how much memory the process holds, for /metrics.
 *
 * Everything Watchpost does for a message (MQTT parsing, decoding, the spool, rules, alerts)
 * runs on the one main thread. When that thread is busy all the time, every message waits for
 * the ones before it, and an alarm's latency grows with the queue: the event loop's utilization
 * and delay say so before the alert latency does. Figures cover the last completed window
 * (`windowMs`, default 10 s), so a scrape at any interval reads the same values.
 */
import { monitorEventLoopDelay, performance, type EventLoopUtilization, type IntervalHistogram } from 'node:perf_hooks';
import type { MetricsRegistry } from './metrics.js';

export interface RuntimeMetricsOptions {
  /** Length of the window the event-loop figures cover (ms). */
  windowMs: number;
  /** Resolution of the event-loop delay sampling (ms). */
  resolutionMs: number;
}

export const DEFAULT_RUNTIME_METRICS_OPTIONS: RuntimeMetricsOptions = { windowMs: 10_000, resolutionMs: 10 };

interface Window {
  utilization: number;
  delayP50: number;
  delayP99: number;
  delayMax: number;
}

export class RuntimeMetrics {
  private readonly options: RuntimeMetricsOptions;
  private histogram?: IntervalHistogram;
  private timer?: NodeJS.Timeout;
  private elu?: EventLoopUtilization;
  private last?: Window;

  constructor(
    private readonly metrics: MetricsRegistry,
    options: Partial<RuntimeMetricsOptions> = {},
  ) {
    this.options = { ...DEFAULT_RUNTIME_METRICS_OPTIONS, ...options };
  }

  start(): void {
    if (this.timer) return;
    const histogram = monitorEventLoopDelay({ resolution: this.options.resolutionMs });
    histogram.enable();
    this.histogram = histogram;
    this.elu = performance.eventLoopUtilization();
    this.timer = setInterval(() => this.closeWindow(), this.options.windowMs);
    this.timer.unref();

    this.metrics
      .gauge('watchpost_event_loop_utilization', 'Share of the last window (10 s) the main thread was busy (0-1); near 1, messages queue and alert latency grows.')
      .collect(() => (this.last ? [[undefined, round(this.last.utilization, 4)]] : []));
    this.metrics
      .gauge('watchpost_event_loop_delay_seconds', 'How late the main thread ran a ready timer over the last window (10 s), by quantile.')
      .collect(() =>
        this.last
          ? [
              [{ quantile: '0.5' }, this.last.delayP50],
              [{ quantile: '0.99' }, this.last.delayP99],
              [{ quantile: '1' }, this.last.delayMax],
            ]
          : [],
      );
    this.metrics.gauge('watchpost_process_resident_memory_bytes', 'Resident memory of the process (RSS).').collect(() => [[undefined, process.memoryUsage.rss()]]);
    this.metrics.gauge('watchpost_heap_used_bytes', 'V8 heap in use (live objects and garbage not yet collected).').collect(() => [[undefined, process.memoryUsage().heapUsed]]);
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
    this.histogram?.disable();
    this.histogram = undefined;
  }

  private closeWindow(): void {
    const histogram = this.histogram!;
    const since = performance.eventLoopUtilization(this.elu);
    this.elu = performance.eventLoopUtilization();
    // The histogram holds the time between samples (ns), which includes the sampling interval itself; a window without samples reads 0.
    const interval = this.options.resolutionMs * 1e6;
    const seconds = (ns: number) => (histogram.count > 0 && Number.isFinite(ns) ? round(Math.max(0, ns - interval) / 1e9, 6) : 0);
    this.last = { utilization: since.utilization, delayP50: seconds(histogram.percentile(50)), delayP99: seconds(histogram.percentile(99)), delayMax: seconds(histogram.max) };
    histogram.reset();
  }
}

function round(value: number, digits: number): number {
  const f = 10 ** digits;
  return Math.round(value * f) / f;
}
