/**
 * The demo's acceptance path in one process: the platform on the demo configuration (free ports,
 * a temporary data directory, the webhook pointed at a local receiver) and the default simulator
 * run against it. Every demo reading must be accepted, every asset must show readings through
 * the API, and the default scenario's alert must be visible within ten seconds.
 */
import { createHmac } from 'node:crypto';
import { rmSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { silentLogger } from '../lib/logger.js';
import { loadConfig } from '../server/config/load.js';
import type { WatchpostConfig } from '../server/config/schema.js';
import { Platform } from '../server/platform.js';
import { startReceiver, type Receiver } from '../test/support/receiver.js';
import { tempDir } from '../test/support/platform.js';
import { runSimulation, type SimulationSummary } from './simulate.js';

const VIEWER = 'demo-viewer-token-longgang';
const HOOK_SECRET = 'demo-ops-hook-secret-longgang';

interface ApiAlert {
  rule_id: string;
  level: string;
  state: string;
  asset_id: string;
  sensor_id: string;
}

describe('default simulation against the platform on the demo configuration', () => {
  let receiver: Receiver;
  let platform: Platform;
  let dataDir: string;
  let apiUrl: string;
  let summary: SimulationSummary;
  let firstAlertAfterMs: number | undefined;
  let alerts: ApiAlert[] = [];

  const get = async (path: string) => {
    const res = await fetch(`${apiUrl}${path}`, { headers: { authorization: `Bearer ${VIEWER}` } });
    expect(res.status).toBe(200);
    return (await res.json()) as Record<string, unknown>;
  };

  beforeAll(async () => {
    receiver = await startReceiver();
    const loaded = loadConfig('config-demo', {});
    if (!loaded.ok) throw new Error('config-demo does not load');
    const config: WatchpostConfig = {
      ...loaded.config,
      broker: { ...loaded.config.broker, port: 0 },
      api: { ...loaded.config.api, port: 0 },
      // Listening adapters on free ports too, so demo runs in parallel files do not collide.
      adapters: loaded.config.adapters.map((a) => ('port' in a ? { ...a, port: 0 } : a)),
      storage: { ...loaded.config.storage, data_dir: (dataDir = tempDir('simulate-e2e')) },
      channels: loaded.config.channels.map((c) => ({ ...c, url: receiver.url })),
    };
    platform = new Platform(config, { logger: silentLogger(), configDir: 'config-demo' });
    await platform.start();
    apiUrl = `http://127.0.0.1:${platform.httpPort()}`;

    const started = Date.now();
    const poll = setInterval(() => {
      get('/api/v1/alerts').then(
        (body) => {
          alerts = body.alerts as ApiAlert[];
          if (alerts.length > 0) firstAlertAfterMs ??= Date.now() - started;
        },
        () => undefined,
      );
    }, 250);
    try {
      summary = await runSimulation(config, { url: `mqtt://127.0.0.1:${platform.mqttPort()}`, duration: 10, logger: silentLogger() });
    } finally {
      clearInterval(poll);
    }
  }, 60_000);

  afterAll(async () => {
    await platform?.stop();
    await receiver?.close();
    if (dataDir) rmSync(dataDir, { recursive: true, force: true });
  });

  it('has every demo reading accepted', () => {
    expect(summary.rejected).toEqual([]);
    expect(summary.errors).toBe(0);
    expect(summary.acknowledged).toBe(summary.sent);
  });

  it('shows readings for every demo asset through the API', async () => {
    const body = await get('/api/v1/assets');
    const assets = body.assets as Array<{ id: string; latest: unknown[] }>;
    expect(assets.map((a) => a.id).sort()).toEqual(Object.keys(summary.perAsset).sort());
    for (const asset of assets) expect(asset.latest.length, asset.id).toBeGreaterThan(0);
  });

  it('fires the chronic low-pressure hydrant alert within ten seconds, and only that one', () => {
    expect(firstAlertAfterMs).toBeDefined();
    expect(firstAlertAfterMs!).toBeLessThanOrEqual(10_000);
    expect(alerts.map(({ rule_id, level, state, asset_id, sensor_id }) => ({ rule_id, level, state, asset_id, sensor_id }))).toEqual([
      { rule_id: 'hydrant-pressure-low', level: 'yellow', state: 'firing', asset_id: 'lg-hydrant-002', sensor_id: 'hp-02' },
    ]);
  });

  it('notifies the district-duty webhook, signed with the demo secret', async () => {
    const [request] = await receiver.waitForRequests(1);
    const body = JSON.parse(request!.body) as { event: string; tier: number; alert: ApiAlert & { street: string } };
    expect(body).toMatchObject({ event: 'firing', tier: 0, alert: { rule_id: 'hydrant-pressure-low', level: 'yellow', street: '布吉街道' } });
    const timestamp = request!.headers['x-watchpost-timestamp'] as string;
    const expected = createHmac('sha256', HOOK_SECRET).update(`${timestamp}.${request!.body}`).digest('hex');
    expect(request!.headers['x-watchpost-signature']).toBe(`sha256=${expected}`);
  });
});
