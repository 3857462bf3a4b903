/**
 * A device's persistent MQTT session across a reload: when its subscription filters change, its
 * connection closes and the session's stored subscriptions are forgotten (nothing is queued for
 * it offline under filters it no longer has); when only its secret changes, the connection closes
 * and the subscriptions stay (what was published meanwhile is delivered when it is back).
 */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import mqtt, { type MqttClient } from 'mqtt';
import { stringify } from 'yaml';
import { afterEach, describe, expect, it } from 'vitest';
import { baseConfig, DEVICE_SECRET, startPlatform, tempDir, type RunningPlatform } from '../test/support/platform.js';

const strain = (value: number) => JSON.stringify({ ts: Date.now(), values: { strain: value } });

let p: RunningPlatform | undefined;
afterEach(async () => {
  await p?.stop();
  p = undefined;
});

async function connect(url: string, password: string): Promise<MqttClient> {
  return mqtt.connectAsync(url, { username: 'dau-bridge-001', password, clientId: 'dau-bridge-001-session', clean: false, protocolVersion: 4, reconnectPeriod: 0, connectTimeout: 5000 });
}

/** Every topic received, in order, until one on `until`. */
function topicsUntil(client: MqttClient, until: string): Promise<string[]> {
  const seen: string[] = [];
  return new Promise((resolve) =>
    client.on('message', (topic) => {
      seen.push(topic);
      if (topic === until) resolve(seen);
    }),
  );
}

async function run(change: (device: Record<string, unknown>) => Record<string, unknown>, newSecret: string): Promise<string[]> {
  const config = baseConfig({ webhookUrl: 'http://127.0.0.1:9/unused', dataDir: join(tempDir('registry-sessions'), 'data') });
  config.devices[0] = { ...config.devices[0]!, subscribe: ['alerts/#'] } as (typeof config.devices)[number];
  p = await startPlatform(config);
  const first = await connect(p.mqttUrl, DEVICE_SECRET);
  await first.subscribeAsync('alerts/#', { qos: 1 });
  const closed = new Promise<void>((resolve) => first.once('close', () => resolve()));
  const edited = { ...config, devices: [change(config.devices[0]), ...config.devices.slice(1)] };
  writeFileSync(join(p.configDir, 'watchpost.yaml'), stringify(edited));
  expect(p.platform.reloadConfig('api')).toMatchObject({ ok: true, changed: true, changes: { devices: { changed: ['dau-bridge-001'] } } });
  await closed;
  first.end(true);

  // While the session is offline, an alert is published on alerts/red/… (the reading from another, clean connection).
  const other = await mqtt.connectAsync(p.mqttUrl, {
    username: 'dau-bridge-001',
    password: newSecret,
    clientId: 'dau-bridge-001-other',
    clean: true,
    protocolVersion: 4,
    reconnectPeriod: 0,
  });
  await other.publishAsync('telemetry/lg-bridge-001/strain-01', strain(350), { qos: 1 });
  await new Promise<void>((resolve, reject) => {
    const deadline = Date.now() + 10_000;
    const poll = async () => {
      const alerts = (await p!.api('GET', '/api/v1/alerts?asset_id=lg-bridge-001')).body.alerts as unknown[];
      if (alerts.length > 0) return resolve();
      if (Date.now() > deadline) return reject(new Error('no alert opened'));
      setTimeout(() => void poll(), 50);
    };
    void poll();
  });
  await other.endAsync(true);

  // Back in its session: what was queued for it arrives first, then the answer to a refused reading.
  const again = await mqtt.connectAsync(p.mqttUrl, {
    username: 'dau-bridge-001',
    password: newSecret,
    clientId: 'dau-bridge-001-session',
    clean: false,
    protocolVersion: 4,
    reconnectPeriod: 0,
  });
  const received = topicsUntil(again, 'errors/dau-bridge-001');
  await again.subscribeAsync('errors/dau-bridge-001', { qos: 1 });
  await again.publishAsync('telemetry/lg-bridge-001/strain-01', '{"not":"a reading"}', { qos: 1 });
  const topics = await received;
  await again.endAsync(true);
  return topics;
}

describe('persistent sessions across a reload', () => {
  it('changed subscription filters: the connection closes and the session keeps none of the old subscriptions', async () => {
    const topics = await run((d) => ({ ...d, subscribe: [] }), DEVICE_SECRET);
    expect(topics).toEqual(['errors/dau-bridge-001']);
  }, 30_000);

  it('a changed secret: the connection closes, the session keeps its subscriptions', async () => {
    const topics = await run((d) => ({ ...d, secret: 'a-new-bridge-secret' }), 'a-new-bridge-secret');
    expect(topics).toEqual(['alerts/red/lg-bridge-001', 'errors/dau-bridge-001']);
  }, 30_000);
});
