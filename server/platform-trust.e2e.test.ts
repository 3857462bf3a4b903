/**
 * What a hostile device can make observers see, on the embedded broker with the whole platform:
 * a publish the policy rejects (platform topics, another device's status, an asset the device
 * does not own, a last will to an alert topic) reaches no subscriber and is never retained; it
 * is counted and reported on errors/{device_id}.
 */
import mqtt, { type MqttClient } from 'mqtt';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { baseConfig, DEVICE_SECRET, startPlatform, tempDir, type RunningPlatform } from '../test/support/platform.js';

const OBSERVER_SECRET = 'observer-secret-0001';
const T0 = Date.parse('2025-11-28T02:00:00.000Z');

interface Seen {
  topic: string;
  payload: string;
  retain: boolean;
}

function collect(client: MqttClient): Seen[] {
  const seen: Seen[] = [];
  client.on('message', (topic, payload, packet) => seen.push({ topic, payload: payload.toString('utf8'), retain: packet.retain }));
  return seen;
}

describe('platform: forged publishes reach no observer', () => {
  let p: RunningPlatform;

  beforeAll(async () => {
    const config = baseConfig({ webhookUrl: 'http://127.0.0.1:9/hook', dataDir: tempDir('trust-data') });
    p = await startPlatform({
      ...config,
      devices: [...config.devices, { id: 'city-ops-centre', secret: OBSERVER_SECRET, subscribe: ['alerts/#', 'status/#', 'telemetry/#'] }],
    });
  });
  afterAll(async () => {
    await p?.stop();
  });

  it('forwards and retains none of them, counts them and reports each on errors/', async () => {
    const observer = await p.connect('city-ops-centre', OBSERVER_SECRET);
    const live = collect(observer);
    await observer.subscribeAsync(['telemetry/#', 'alerts/#', 'status/#'], { qos: 1 });

    const device = await p.connect('dau-bridge-001', DEVICE_SECRET);
    const errors = collect(device);
    await device.subscribeAsync('errors/dau-bridge-001', { qos: 1 });
    await device.publishAsync('alerts/red/lg-bridge-001', '{"event":"firing","level":"red"}', { qos: 1 });
    await device.publishAsync('alerts/red/bt-slope-002', '{"event":"firing"}', { qos: 1, retain: true });
    await device.publishAsync('status/city-ops-centre', 'offline', { qos: 1, retain: true });
    await device.publishAsync('telemetry/bt-slope-002/tilt-01', JSON.stringify({ ts: T0, values: { tilt: 9 } }), { qos: 1, retain: true });
    await device.publishAsync('telemetry/lg-bridge-001/strain-01', JSON.stringify([{ ts: T0, values: { strain: 10 } }, { ts: T0 + 1, values: { strain: 99_999 } }]), { qos: 1 });
    // A last will to an alert topic, published by the broker when the connection drops.
    const willing = await mqtt.connectAsync(p.mqttUrl, {
      username: 'dau-bridge-001',
      password: DEVICE_SECRET,
      protocolVersion: 4,
      reconnectPeriod: 0,
      will: { topic: 'alerts/red/lg-bridge-001', payload: Buffer.from('{"event":"firing","forged":"will"}'), qos: 1, retain: true },
    });
    const willClosed = new Promise<void>((resolve) => willing.once('close', () => resolve()));
    willing.stream.destroy();
    await willClosed;
    // $SYS is refused outright: the connection is closed.
    const sys = await p.connect('dau-bridge-001', DEVICE_SECRET);
    const sysClosed = new Promise<void>((resolve) => sys.once('close', () => resolve()));
    sys.publish('$SYS/broker/alerts', '1', { qos: 1 });
    await sysClosed;

    // Barrier: a genuine reading published after the forgeries reaches the observer after them.
    const genuine = JSON.stringify({ ts: T0 + 5, values: { strain: 12 } });
    await device.publishAsync('telemetry/lg-bridge-001/strain-01', genuine, { qos: 1 });
    await expect.poll(() => live.some((m) => m.payload === genuine), { timeout: 10_000 }).toBe(true);
    expect(live).toEqual([{ topic: 'telemetry/lg-bridge-001/strain-01', payload: genuine, retain: false }]);

    await expect.poll(() => errors.length, { timeout: 10_000 }).toBe(7);
    const lines = errors.map((e) => JSON.parse(e.payload) as { topic: string; reason: string });
    expect(errors.every((e) => e.topic === 'errors/dau-bridge-001')).toBe(true);
    expect(lines.map((l) => `${l.topic} ${l.reason}`).sort()).toEqual(
      [
        '$SYS/broker/alerts not_allowed',
        'alerts/red/bt-slope-002 bad_topic',
        'alerts/red/lg-bridge-001 bad_topic',
        'alerts/red/lg-bridge-001 bad_topic',
        'status/city-ops-centre not_allowed',
        'telemetry/bt-slope-002/tilt-01 not_allowed',
        'telemetry/lg-bridge-001/strain-01 out_of_range',
      ].sort(),
    );
    const metrics = await (await fetch(`${p.apiUrl}/metrics`)).text();
    expect(metrics).toMatch(/watchpost_ingest_rejected_total\{reason="bad_topic"\} 3\n/);
    expect(metrics).toMatch(/watchpost_ingest_rejected_total\{reason="not_allowed"\} 3\n/);
    expect(metrics).toMatch(/watchpost_ingest_rejected_total\{reason="out_of_range"\} 1\n/);
    expect(metrics).toMatch(/watchpost_mqtt_refused_total\{reason="publish_refused"\} 1\n/);

    // A later subscriber gets the retained messages: only the device's own status.
    await device.publishAsync('status/dau-bridge-001', 'online', { qos: 1, retain: true });
    const later = await p.connect('city-ops-centre', OBSERVER_SECRET);
    const retained = collect(later);
    // status/# last: the own status, stored last, is the last retained message sent.
    await later.subscribeAsync(['telemetry/#', 'alerts/#', 'status/#'], { qos: 1 });
    await expect.poll(() => retained.length, { timeout: 10_000 }).toBeGreaterThan(0);
    await expect.poll(() => retained.some((m) => m.topic === 'status/dau-bridge-001'), { timeout: 10_000 }).toBe(true);
    expect(retained).toEqual([{ topic: 'status/dau-bridge-001', payload: 'online', retain: true }]);
  });
});
