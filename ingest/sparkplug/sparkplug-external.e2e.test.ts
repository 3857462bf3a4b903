/**
 * The Sparkplug B host behind an external broker (a real mosquitto, which owns the ACLs): the
 * host subscribes to its nodes' spBv1.0/{group}/+/{edge}/#, stores NBIRTH/NDATA readings, asks
 * for a rebirth after a gap, and its STATE offline is the connection's retained will.
 */
import mqtt, { type MqttClient } from 'mqtt';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mosquittoBinary, startMosquitto, type Mosquitto } from '../../test/support/mosquitto.js';
import { baseConfig, startPlatform, tempDir, VIEWER_TOKEN, type RunningPlatform } from '../../test/support/platform.js';
import { decodeSparkplug, encodeSparkplug } from './codec.js';

const T = 1_764_295_200_000;
const topic = (type: string) => `spBv1.0/longgang/${type}/dau-bridge-001`;

describe.skipIf(!mosquittoBinary)('Sparkplug B host behind mosquitto', () => {
  let broker: Mosquitto;
  let p: RunningPlatform;
  let edge: MqttClient;
  const received: Array<{ topic: string; payload: Buffer; retain: boolean }> = [];

  beforeAll(async () => {
    broker = await startMosquitto({ users: { watchpost: 'platform-pass-1', 'dau-bridge-001': 'bridge-secret-0001' } });
    p = await startPlatform({
      ...baseConfig({ webhookUrl: 'http://127.0.0.1:9/hook', dataDir: tempDir('sparkplug-ext'), broker: { url: broker.url, username: 'watchpost', password: 'platform-pass-1' } }),
      adapters: [{ type: 'sparkplug', host_id: 'watchpost', nodes: [{ group: 'longgang', edge: 'dau-bridge-001', asset: 'lg-bridge-001' }] }],
    });
    edge = await mqtt.connectAsync(broker.url, { username: 'dau-bridge-001', password: 'bridge-secret-0001', protocolVersion: 4, reconnectPeriod: 0 });
    edge.on('message', (t, payload, packet) => void received.push({ topic: t, payload, retain: packet.retain }));
    await edge.subscribeAsync([topic('NCMD'), 'spBv1.0/STATE/watchpost'], { qos: 1 });
  });
  afterAll(async () => {
    await edge?.endAsync().catch(() => undefined);
    await p?.stop();
    await broker?.stop();
  });

  const latest = async () => {
    const res = await p.api('GET', '/api/v1/assets', undefined, VIEWER_TOKEN);
    return res.body.assets.find((a: { id: string }) => a.id === 'lg-bridge-001').latest as Array<{ metric: string; value: number }>;
  };

  it('sees the host STATE retained, stores births and data, and asks for a rebirth after a gap', async () => {
    await expect.poll(() => received.find((m) => m.topic === 'spBv1.0/STATE/watchpost')?.retain, { timeout: 10_000 }).toBe(true);
    expect(JSON.parse(received.find((m) => m.topic === 'spBv1.0/STATE/watchpost')!.payload.toString())).toMatchObject({ online: true });

    const birth = encodeSparkplug({
      timestamp: T,
      seq: 0,
      metrics: [
        { name: 'bdSeq', type: 'UInt64', value: 0 },
        { name: 'strain-01/Strain', alias: 1, type: 'Double', value: 42.5 },
      ],
    });
    await edge.publishAsync(topic('NBIRTH'), birth, { qos: 1 });
    await edge.publishAsync(topic('NDATA'), encodeSparkplug({ timestamp: T + 1000, seq: 1, metrics: [{ alias: 1, type: 'Double', value: 43.25 }] }), { qos: 1 });
    await expect.poll(async () => (await latest()).find((l) => l.metric === 'strain')?.value, { timeout: 10_000 }).toBe(43.25);

    await edge.publishAsync(topic('NDATA'), encodeSparkplug({ timestamp: T + 2000, seq: 9, metrics: [{ alias: 1, type: 'Double', value: 99 }] }), { qos: 1 });
    await expect.poll(() => received.some((m) => m.topic === topic('NCMD')), { timeout: 10_000 }).toBe(true);
    const command = decodeSparkplug(received.find((m) => m.topic === topic('NCMD'))!.payload);
    expect(command.metrics.map((m) => [m.name, m.value])).toEqual([['Node Control/Rebirth', 1]]);
    expect((await latest()).find((l) => l.metric === 'strain')?.value).toBe(43.25);
  });

  it('leaves its STATE offline retained when it stops', async () => {
    await p.platform.stop();
    const watcher = await mqtt.connectAsync(broker.url, { username: 'dau-bridge-001', password: 'bridge-secret-0001', protocolVersion: 4, reconnectPeriod: 0 });
    try {
      const state = new Promise<{ payload: Buffer; retain: boolean }>((resolve) => watcher.on('message', (_t, payload, packet) => resolve({ payload, retain: packet.retain })));
      await watcher.subscribeAsync('spBv1.0/STATE/watchpost', { qos: 1 });
      const got = await state;
      expect(got.retain).toBe(true);
      expect(JSON.parse(got.payload.toString())).toEqual({ online: false, timestamp: expect.any(Number) });
    } finally {
      await watcher.endAsync();
    }
  });
});
