/**
 * External-broker mode against a real mosquitto: Watchpost subscribes with `$share/<group>/`,
 * devices authenticate at mosquitto, alert events come back out on alerts/{level}/{asset_id}.
 */
import mqtt from 'mqtt';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { waitFor } from '../test/support/binaries.js';
import { mosquittoBinary, startMosquitto, type Mosquitto } from '../test/support/mosquitto.js';
import { baseConfig, startPlatform, tempDir, type RunningPlatform } from '../test/support/platform.js';
import { startReceiver, type Receiver } from '../test/support/receiver.js';

const T0 = Date.parse('2025-11-28T02:00:00.000Z');

describe.skipIf(!mosquittoBinary)('platform with an external mosquitto broker', () => {
  let broker: Mosquitto;
  let receiver: Receiver;
  let p: RunningPlatform;
  const logLines: Array<{ level: number; msg: string; [k: string]: unknown }> = [];

  beforeAll(async () => {
    broker = await startMosquitto({ users: { watchpost: 'platform-pass-1', 'dau-bridge-001': 'bridge-secret-0001' } });
    receiver = await startReceiver();
    p = await startPlatform(
      baseConfig({
        webhookUrl: receiver.url,
        dataDir: tempDir('data'),
        broker: { url: broker.url, username: 'watchpost', password: 'platform-pass-1', shared_group: 'watchpost' },
      }),
      { logger: pino({ level: 'info' }, { write: (line: string) => logLines.push(JSON.parse(line)) }) },
    );
  });
  afterAll(async () => {
    await p?.stop();
    await receiver?.close();
    await broker?.stop();
  });

  it('warns at start that with a shared subscription each instance judges rules on its share of the messages', () => {
    const warning = logLines.find((l) => l.msg.startsWith('broker.shared_group:'));
    expect(warning).toMatchObject({ level: 40, shared_group: 'watchpost' });
    expect(warning!.msg).toContain('hash_clientid');
  });

  it('ingests through a shared subscription and publishes alert events back', async () => {
    expect(p.platform.mqttPort()).toBeUndefined();
    const observer = await mqtt.connectAsync(broker.url, { username: 'watchpost', password: 'platform-pass-1', protocolVersion: 4, reconnectPeriod: 0 });
    await observer.subscribeAsync('alerts/#', { qos: 1 });
    const alertMessage = new Promise<{ topic: string; payload: string }>((resolve) => observer.on('message', (topic, payload) => resolve({ topic, payload: payload.toString() })));

    const device = await mqtt.connectAsync(broker.url, { username: 'dau-bridge-001', password: 'bridge-secret-0001', protocolVersion: 4, reconnectPeriod: 0 });
    await device.publishAsync('telemetry/lg-bridge-001/strain-01', JSON.stringify({ ts: T0, values: { strain: 100 } }), { qos: 1 });
    await device.publishAsync('telemetry/lg-bridge-001/strain-01', JSON.stringify({ ts: T0 + 1000, values: { strain: 320 } }), { qos: 1 });

    const alert = await alertMessage;
    expect(alert.topic).toBe('alerts/red/lg-bridge-001');
    expect(JSON.parse(alert.payload)).toMatchObject({ event: 'firing', alert: { level: 'red', asset_id: 'lg-bridge-001', value: 320, threshold: 300 } });
    const [hook] = await receiver.waitForRequests(1);
    expect(JSON.parse(hook!.body)).toMatchObject({ event: 'firing', alert: { id: JSON.parse(alert.payload).alert.id } });

    const db = new Database(join(p.dataDir, 'telemetry.db'), { readonly: true });
    try {
      const rows = await waitFor('readings stored', async () => {
        const r = db.prepare('SELECT ts, value FROM readings WHERE metric = ? ORDER BY ts').all('strain');
        return r.length === 2 ? r : undefined;
      });
      expect(rows).toEqual([
        { ts: T0, value: 100 },
        { ts: T0 + 1000, value: 320 },
      ]);
    } finally {
      db.close();
    }
    await device.endAsync();
    await observer.endAsync();
  });

  it('refuses to start with wrong broker credentials, with a clear error', async () => {
    await expect(
      startPlatform(baseConfig({ webhookUrl: receiver.url, dataDir: tempDir('data'), broker: { url: broker.url, username: 'watchpost', password: 'wrong-password' } })),
    ).rejects.toThrow(/cannot connect to external broker: .*Not authorized|cannot connect to external broker: .*Bad username/i);
  });
});
