/**
 * `watchpost simulate` (the built command) against a broker address where nothing listens: the run
 * ends at its --duration, counts every reading it could not send and every failed connection
 * attempt as errors, says that nothing was delivered, and exits non-zero.
 */
import { describe, expect, it } from 'vitest';
import { freePort } from '../bench/support/binaries.js';
import { loadConfig } from '../server/config/load.js';
import { cliBuilt, runCli } from '../test/support/watchpost-process.js';
import { DEFAULT_SIMULATION_OPTIONS } from './options.js';
import { planSimulation } from './plan.js';

const DURATION_S = 2;

describe.skipIf(!cliBuilt)('watchpost simulate with no platform listening', () => {
  it('stops at --duration, counts what was never sent as errors, and exits 1', async () => {
    const loaded = loadConfig('config-demo', {});
    if (!loaded.ok) throw new Error('config-demo does not load');
    const plan = planSimulation(loaded.config);
    const sensors = plan.devices.reduce((n, d) => n + d.sensors.length, 0);
    // The default scenario has no history: readings 0 … DURATION_S of every sensor, one a second.
    const readings = sensors * (DURATION_S + 1);
    const port = await freePort();
    const url = `mqtt://127.0.0.1:${port}`;

    const result = await runCli(['simulate', '--config', 'config-demo', '--url', url, '--duration', String(DURATION_S)], { timeoutMs: 60_000 });

    expect(result.code).toBe(1);
    // stdout carries the log lines (JSON) and then the summary
    const summary = result.stdout.split('\n').filter((line) => line !== '' && !line.startsWith('{'));
    const attempts = Number(/ (\d+) failed connection attempts$/.exec(summary.at(-1) ?? '')?.[1]);
    // every connection tried at least once
    expect(attempts).toBeGreaterThanOrEqual(plan.devices.length);
    const seconds = Number(/\((\d+\.\d) s\)$/.exec(summary[1] ?? '')?.[1]);
    expect(summary).toEqual([
      `nothing was delivered: none of the ${plan.devices.length} connections to ${url} succeeded (is the platform running and listening there?)`,
      `scenario normal: 0 readings sent, 0 acknowledged, ${readings + attempts} errors, 0 unacknowledged, 0 rejected by the platform (${seconds.toFixed(1)} s)`,
      `  ${plan.devices.length} devices on ${plan.devices.length} connections; speed 1×, a reading every 1 simulated s per sensor; simulated - … -`,
      `  errors: ${readings} readings never sent, ${attempts} failed connection attempts`,
    ]);
    // It ended at the planned end (plus the last device's phase, under a second) and the stop,
    // not after waiting for a broker that never came.
    expect(seconds).toBeGreaterThanOrEqual(DURATION_S);
    expect(seconds * 1000).toBeLessThan(DURATION_S * 1000 + 1000 + DEFAULT_SIMULATION_OPTIONS.stopTimeoutMs);
  }, 90_000);
});
