/**
 * How a run with a length ends when the broker does not deliver: a broker that accepts the
 * devices but never acknowledges their readings holds the run only for the end grace, and every
 * reading left without a PUBACK is counted as an error.
 */
import { once } from 'node:events';
import net, { type AddressInfo } from 'node:net';
import { Aedes } from 'aedes';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { silentLogger } from '../lib/logger.js';
import { loadConfig } from '../server/config/load.js';
import type { SimulatorConfig } from './config.js';
import { DEFAULT_SIMULATION_OPTIONS } from './options.js';
import { formatSummary } from './report.js';
import { runSimulation } from './simulate.js';

function demoConfig(): SimulatorConfig {
  const result = loadConfig('config-demo', {});
  if (!result.ok) throw new Error('config-demo does not load');
  return result.config;
}

describe('a run against a broker that never acknowledges', () => {
  let broker: Aedes;
  let server: net.Server;
  let url: string;
  let held = 0;

  beforeEach(async () => {
    held = 0;
    broker = await Aedes.createBroker({
      // Telemetry is never authorised nor refused: no PUBACK ever comes.
      authorizePublish: (_client, packet, done) => {
        if (packet.topic.startsWith('telemetry/')) held += 1;
        else done(null);
      },
    });
    server = net.createServer(broker.handle);
    server.listen(0, '127.0.0.1');
    await once(server, 'listening');
    url = `mqtt://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });

  afterEach(async () => {
    await new Promise<void>((resolve) => broker.close(() => resolve()));
    await new Promise<void>((resolve) => server.close(() => resolve()));
  });

  it('ends within the grace after its planned end and counts the unacknowledged readings as errors', async () => {
    const duration = 1;
    const summary = await runSimulation(demoConfig(), { url, devices: 1, duration, logger: silentLogger() });

    expect(summary.sent).toBeGreaterThan(0);
    // the broker got them (aedes holds back the rest of a connection's packets behind one it waits on)
    expect(held).toBeGreaterThan(0);
    expect(summary.acknowledged).toBe(0);
    expect(summary.unacknowledged).toBe(summary.sent);
    expect(summary.unsent).toBe(0);
    expect(summary.errors).toBe(summary.sent);
    expect(summary.neverConnected).toBe(0);
    // planned end + the last device's phase (under a second) + the grace + stopping (publishing
    // `offline` and disconnecting, each bounded by the stop timeout)
    const { endGraceMs, stopTimeoutMs } = DEFAULT_SIMULATION_OPTIONS;
    expect(summary.durationMs).toBeGreaterThanOrEqual(duration * 1000 + endGraceMs);
    expect(summary.durationMs).toBeLessThan(duration * 1000 + 1000 + endGraceMs + 2 * stopTimeoutMs + 2000);
    expect(formatSummary(summary).split('\n')[0]).toBe(`nothing was delivered: connected to ${url}, but no reading was acknowledged`);
    expect(formatSummary(summary)).toContain(`\n  errors: ${summary.sent} readings published but not acknowledged`);
  }, 30_000);
});
