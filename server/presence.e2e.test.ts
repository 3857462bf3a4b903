/**
 * Device presence is kept for configured devices only: behind an external broker (a real
 * mosquitto) anyone may publish status/{any id}, and those of unknown ids are ignored, so the
 * presence map stays bounded by the configuration.
 */
import mqtt from 'mqtt';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mosquittoBinary, startMosquitto, type Mosquitto } from '../test/support/mosquitto.js';
import { baseConfig, startPlatform, tempDir, VIEWER_TOKEN, type RunningPlatform } from '../test/support/platform.js';

describe.skipIf(!mosquittoBinary)('presence behind an external broker', () => {
  let broker: Mosquitto;
  let p: RunningPlatform;
  const logLines: Array<{ msg: string; device_id?: string; status?: string }> = [];

  beforeAll(async () => {
    broker = await startMosquitto({ users: { watchpost: 'platform-pass-1', 'dau-bridge-001': 'bridge-secret-0001' } });
    p = await startPlatform(
      baseConfig({ webhookUrl: 'http://127.0.0.1:9/hook', dataDir: tempDir('presence-data'), broker: { url: broker.url, username: 'watchpost', password: 'platform-pass-1' } }),
      { logger: pino({ level: 'info' }, { write: (line: string) => void logLines.push(JSON.parse(line)) }) },
    );
  });
  afterAll(async () => {
    await p?.stop();
    await broker?.stop();
  });

  it('ignores status/ of ids that are not configured devices', async () => {
    const client = await mqtt.connectAsync(broker.url, { username: 'dau-bridge-001', password: 'bridge-secret-0001', protocolVersion: 4, reconnectPeriod: 0 });
    try {
      for (let i = 0; i < 50; i++) await client.publishAsync(`status/ghost-${i}`, 'online', { qos: 1 });
      // Barrier: the configured device's status, published after the others, is handled after them.
      await client.publishAsync('status/dau-bridge-001', 'online', { qos: 1 });
      await expect.poll(() => logLines.some((l) => l.msg === 'device status' && l.device_id === 'dau-bridge-001'), { timeout: 10_000 }).toBe(true);
    } finally {
      await client.endAsync();
    }
    expect(logLines.filter((l) => l.msg === 'device status').map((l) => `${l.device_id} ${l.status}`)).toEqual(['dau-bridge-001 online']);
    expect((p.platform as unknown as { presence: Map<string, unknown> }).presence.size).toBe(1);
    const devices = await p.api('GET', '/api/v1/devices', undefined, VIEWER_TOKEN);
    expect(devices.body.devices.map((d: { id: string; status: string }) => `${d.id} ${d.status}`)).toEqual(['dau-bridge-001 online', 'dau-slope-002 unknown']);
  });
});
