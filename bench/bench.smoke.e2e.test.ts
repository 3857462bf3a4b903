/**
 * Keeps the benchmark scripts working: each scenario runs from the build at a tiny size and must
 * exit 0 and end with its JSON line of figures. Figures are not judged (benchmarks are not
 * tests), except what is a correctness property at any size: no acknowledged reading lost.
 */
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { influxdAvailable } from './support/influxd.js';
import { mosquittoBinary } from './support/mosquitto.js';
import { postgresAvailable } from './support/postgres.js';
import { rabbitmqAvailable } from './support/rabbitmq.js';
import { ROOT } from '../test/support/watchpost-process.js';

const BENCH = join(ROOT, 'dist', 'bench', 'index.js');

/** Runs one scenario and returns its last stdout line, parsed. */
function runScenario(name: string, env: Record<string, string>): Promise<Record<string, unknown>> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [BENCH, name], { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr.on('data', (d: Buffer) => (err = (err + d.toString()).slice(-4000)));
    child.once('exit', (code) => {
      if (code !== 0) return reject(new Error(`bench ${name} exited with ${code}: ${err}\n${out.slice(-2000)}`));
      const last = out.trim().split('\n').pop() ?? '';
      try {
        resolve(JSON.parse(last) as Record<string, unknown>);
      } catch {
        reject(new Error(`bench ${name} did not end with a JSON line: ${out.slice(-2000)}`));
      }
    });
  });
}

const tiny = { DEVICES: '4', PUBLISHERS: '1', DURATION_S: '2' };

describe.skipIf(!influxdAvailable)('benchmark scenarios at a tiny size', () => {
  it('ingest-qos1 and ingest-batch report their figures, with nothing lost', async () => {
    for (const scenario of ['ingest-qos1', 'ingest-batch']) {
      const figures = await runScenario(scenario, { ...tiny, INFLIGHT: '2' });
      expect(figures).toMatchObject({ scenario, readings_lost: 0, publish_errors: 0 });
      expect(figures.readings_acked).toBeGreaterThan(0);
      expect(figures.readings_stored).toBe(figures.readings_acked);
      expect(figures.ceiling_readings_per_s).toBeGreaterThan(0);
    }
  }, 180_000);

  it('ceiling writes every point it reports', async () => {
    const figures = await runScenario('ceiling', { POINTS: '20000', DEVICES: '4' });
    expect(figures).toMatchObject({ scenario: 'ceiling', points: 20_000 });
  }, 120_000);

  it('alert-latency times every alert it fires', async () => {
    const figures = await runScenario('alert-latency', { ...tiny, BACKGROUND: '200', CYCLES: '3' });
    expect(figures).toMatchObject({ scenario: 'alert-latency', alerts: 3 });
    expect(figures.p50_ms).toBeGreaterThan(0);
    // Scraped from Watchpost's /metrics: the spool committed groups, and the main thread worked, during the run.
    expect(figures.spool_sync_p50_ms).toBeGreaterThan(0);
    expect(figures.event_loop_utilization).toBeGreaterThan(0);
  }, 180_000);

  it.skipIf(mosquittoBinary === undefined)(
    'alert-latency through mosquitto times every alert it fires',
    async () => {
      const figures = await runScenario('alert-latency', { ...tiny, BACKGROUND: '200', CYCLES: '3', BROKER: 'mosquitto' });
      expect(figures).toMatchObject({ scenario: 'alert-latency', broker: 'mosquitto', alerts: 3 });
      expect(figures.p50_ms).toBeGreaterThan(0);
    },
    180_000,
  );

  it('connections measures a handful of devices', async () => {
    const figures = await runScenario('connections', { DEVICES: '20', PUBLISHERS: '1', INTERVAL_S: '1', MEASURE_S: '2' });
    expect(figures).toMatchObject({ scenario: 'connections', devices: 20 });
    expect(figures.metrics_scrape_p50_ms).toBeGreaterThan(0);
  }, 180_000);

  it('spool-drain drains the backlog of a short outage with nothing lost', async () => {
    const figures = await runScenario('spool-drain', { DEVICES: '4', PUBLISHERS: '1', OUTAGE_S: '3', WARMUP_S: '1', LIVE_AFTER_S: '5', RETRY_MAX_DELAY_S: '1' });
    expect(figures).toMatchObject({ scenario: 'spool-drain', readings_lost: 0 });
  }, 180_000);

  it.skipIf(mosquittoBinary === undefined)(
    'external-broker reports 2 instances sharing the load, with nothing lost',
    async () => {
      const figures = await runScenario('external-broker', { ...tiny, INFLIGHT: '2', INSTANCES: '2' });
      expect(figures).toMatchObject({ scenario: 'external-broker-x2', instances: 2, readings_lost: 0 });
      expect(figures.readings_acked).toBeGreaterThan(0);
    },
    240_000,
  );

  it.skipIf(mosquittoBinary === undefined || !postgresAvailable || !rabbitmqAvailable)(
    'cluster reports 2 instances in cluster mode, with nothing lost, the alerts timed and the hand-over',
    async () => {
      const figures = await runScenario('cluster', { ...tiny, INFLIGHT: '2', INSTANCES: '2', LATENCY_SAMPLES: '2', PARTITIONS: '4' });
      expect(figures).toMatchObject({ scenario: 'cluster-x2', instances: 2, readings_lost: 0, alert_samples: 2 });
      expect(figures.readings_acked).toBeGreaterThan(0);
      expect(figures.hand_over_ms).toBeGreaterThan(0);
    },
    300_000,
  );
});

describe('in-process benchmark scenarios at a tiny size', () => {
  it('spool reports appends and drain rates', async () => {
    const figures = await runScenario('spool', { BENCH_SECONDS: '0.3', DRAIN_RECORDS: '20000' });
    expect(figures).toMatchObject({ scenario: 'spool' });
    expect(figures.drain_per_s).toBeGreaterThan(0);
  }, 120_000);
});
