import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { silentLogger } from '../lib/logger.js';
import { baseConfig, startPlatform, tempDir, type RunningPlatform } from '../test/support/platform.js';
import { startReceiver, type Receiver } from '../test/support/receiver.js';
import { loadConfig } from '../server/config/load.js';
import { runGb26875Simulation } from './gb26875-publisher.js';

const BOOL = { min: 0, max: 1 };

describe('watchpost simulate --protocol gb26875', () => {
  let receiver: Receiver;
  let p: RunningPlatform;

  beforeAll(async () => {
    receiver = await startReceiver();
    const base = baseConfig({ webhookUrl: receiver.url, dataDir: tempDir('gb26875-sim') });
    p = await startPlatform({
      ...base,
      assets: [
        {
          id: 'lg-building-001',
          type: 'building',
          name: '四联片区超高层住宅',
          street: '横岗街道',
          sensors: [
            { id: 'smoke-18f-01', metrics: ['smoke'] },
            { id: 'smoke-18f-02', metrics: ['smoke'] },
            { id: 'panel', metrics: ['fire_alarm', 'fault', 'supervisory', 'disabled'] },
            { id: 'hydrant-roof', metrics: ['hydrant_pressure'] },
          ],
        },
      ],
      metrics: { smoke: BOOL, fire_alarm: BOOL, fault: BOOL, supervisory: BOOL, disabled: BOOL, hydrant_pressure: { unit: 'MPa', min: 0, max: 1.6 } },
      devices: [{ id: 'fire-gw-001', secret: 'demo-fire-gw-001', assets: ['lg-building-001'] }],
      rules: [{ id: 'fire-alarm', name: '高层建筑火警', match: { asset_type: 'building', metric: ['smoke', 'fire_alarm'] }, levels: { red: { above: 0.5 } }, escalation: 'bridge-duty' }],
      adapters: [
        {
          type: 'gb26875',
          host: '127.0.0.1',
          port: 0,
          devices: [
            {
              address: '0x0000AB12CD34',
              device: 'uitd-hg-001',
              asset: 'lg-building-001',
              sensors: [
                { id: 's-1-1', sensor: 'panel' },
                { id: 'c-1-1-00120001', sensor: 'smoke-18f-01', metrics: { fire_alarm: 'smoke' } },
                { id: 'c-1-1-00120002', sensor: 'smoke-18f-02', metrics: { fire_alarm: 'smoke' } },
                { id: 'c-1-1-00300003', sensor: 'hydrant-roof', metrics: { pressure: 'hydrant_pressure' } },
              ],
            },
          ],
        },
      ],
    });
  });

  afterAll(async () => {
    await p?.stop();
    await receiver?.close();
  });

  it('plays the fire scenario: both detectors and the panel raise fire-alarm, every frame confirmed', async () => {
    const loaded = loadConfig(p.configDir, {});
    if (!loaded.ok) throw new Error('config');
    // 90 simulated seconds at 30x: the detectors at 30 s and 60 s, the panel at 75 s.
    const summary = await runGb26875Simulation(loaded.config, { target: `127.0.0.1:${p.platform.gb26875Port()}`, scenario: 'fire', speed: 30, duration: 3, logger: silentLogger() });
    expect(summary).toMatchObject({ scenario: 'fire', devices: 1, denied: 0, unanswered: 0 });
    expect(summary.confirmed).toBe(summary.frames);
    expect(summary.frames).toBeGreaterThan(0);
    const alerts = (await p.api('GET', '/api/v1/alerts')).body.alerts as Array<{ rule_id: string; sensor_id: string; level: string }>;
    const fire = alerts
      .filter((a) => a.rule_id === 'fire-alarm')
      .map((a) => `${a.sensor_id}:${a.level}`)
      .sort();
    expect(fire).toEqual(['panel:red', 'smoke-18f-01:red', 'smoke-18f-02:red']);
  }, 30_000);
});
