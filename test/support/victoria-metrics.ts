/**
 * A private VictoriaMetrics single node for end-to-end tests of the InfluxDB 2.x write path
 * (`/api/v2/write`). VictoriaMetrics names a line protocol series `<measurement>_<field>`
 * (`strain_value`), keeps tags as labels, stores string fields as 0, and ignores org/bucket.
 * Retention is 100 years so fixed past timestamps are kept.
 *
 * Without `victoria-metrics` on PATH the suites skip with a warning; under CI=true that is a failure.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePort, requireBinary, waitFor } from './binaries.js';

export const victoriaMetricsBinary = requireBinary('victoria-metrics', 'victoria-metrics');
export const victoriaMetricsAvailable = victoriaMetricsBinary !== undefined;

/** One line of `/api/v1/export`. */
export interface ExportedSeries {
  metric: Record<string, string>;
  values: number[];
  timestamps: number[];
}

export interface VictoriaMetrics {
  url: string;
  port: number;
  /** Makes recently written samples searchable (`/internal/force_flush`). */
  forceFlush(): Promise<void>;
  /** `/api/v1/export?match[]=<selector>`, sorted by metric name and labels. */
  export(selector: string): Promise<ExportedSeries[]>;
  /** Stops the server and deletes its data. */
  stop(): Promise<void>;
}

export async function startVictoriaMetrics(): Promise<VictoriaMetrics> {
  if (!victoriaMetricsBinary) throw new Error('victoria-metrics is not installed');
  const dir = mkdtempSync(join(tmpdir(), 'watchpost-vm-'));
  const port = await freePort();
  const url = `http://127.0.0.1:${port}`;
  const child: ChildProcess = spawn(victoriaMetricsBinary, [`-httpListenAddr=127.0.0.1:${port}`, `-storageDataPath=${dir}`, '-retentionPeriod=100y', '-loggerLevel=ERROR'], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  const keep = (d: Buffer) => (output = (output + d.toString()).slice(-4000));
  child.stdout?.on('data', keep);
  child.stderr?.on('data', keep);
  const killOnExit = () => child.kill('SIGKILL');
  process.once('exit', killOnExit);

  const stop = async () => {
    process.off('exit', killOnExit);
    if (child.exitCode === null) {
      const exited = new Promise((resolve) => child.once('exit', resolve));
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), 10_000);
      await exited;
      clearTimeout(timer);
    }
    rmSync(dir, { recursive: true, force: true });
  };

  try {
    await waitFor(
      `victoria-metrics on port ${port}`,
      async () => {
        if (child.exitCode !== null) throw new Error(`victoria-metrics exited with ${child.exitCode}: ${output}`);
        const res = await fetch(`${url}/health`);
        return res.status === 200 ? true : undefined;
      },
      30_000,
    );
  } catch (err) {
    await stop();
    throw err;
  }

  return {
    url,
    port,
    async forceFlush() {
      const res = await fetch(`${url}/internal/force_flush`);
      await res.text();
      if (!res.ok) throw new Error(`force_flush: HTTP ${res.status}`);
    },
    async export(selector: string) {
      const res = await fetch(`${url}/api/v1/export?${new URLSearchParams({ 'match[]': selector })}`);
      const text = await res.text();
      if (!res.ok) throw new Error(`export ${selector}: HTTP ${res.status} ${text}`);
      const series = text
        .split('\n')
        .filter((line) => line.trim() !== '')
        .map((line) => JSON.parse(line) as ExportedSeries);
      const key = (s: ExportedSeries) => JSON.stringify(Object.entries(s.metric).sort(([a], [b]) => (a < b ? -1 : 1)));
      return series.sort((a, b) => (key(a) < key(b) ? -1 : key(a) > key(b) ? 1 : 0));
    },
    stop,
  };
}
