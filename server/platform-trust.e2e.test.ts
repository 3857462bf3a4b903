/**
 * What a hostile device can make observers see, on the embedded broker with the whole platform:
 * a publish the policy rejects (platform topics, another device's status, an asset the device
 * does not own, a last will to an alert topic) reaches no subscriber and is never retained; it
 * is counted and reported on errors/{device_id}. A batch's rejections make one errors/ line and
 * one log line.
 */
import fc from 'fast-check';
import mqtt, { type MqttClient } from 'mqtt';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createLogger } from '../lib/logger.js';
import { baseConfig, DEVICE_SECRET, startPlatform, tempDir, type RunningPlatform } from '../test/support/platform.js';
import { PROPERTY_SEED } from '../test/support/property.js';

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
  const logLines: Array<Record<string, unknown>> = [];

  beforeAll(async () => {
    const config = baseConfig({ webhookUrl: 'http://127.0.0.1:9/hook', dataDir: tempDir('trust-data') });
    p = await startPlatform(
      {
        ...config,
        devices: [...config.devices, { id: 'city-ops-centre', secret: OBSERVER_SECRET, subscribe: ['alerts/#', 'status/#', 'telemetry/#'] }],
      },
      { logger: createLogger({ level: 'warn', destination: { write: (line: string) => void logLines.push(JSON.parse(line) as Record<string, unknown>) } }) },
    );
  });
  const rejectedTotal = (reason: string) => p.platform.metrics.counter('watchpost_ingest_rejected_total', '').get({ reason });
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
    await device.publishAsync(
      'telemetry/lg-bridge-001/strain-01',
      JSON.stringify([
        { ts: T0, values: { strain: 10 } },
        { ts: T0 + 1, values: { strain: 99_999 } },
      ]),
      { qos: 1 },
    );
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
    expect(['bad_topic', 'not_allowed', 'out_of_range'].map((reason) => rejectedTotal(reason))).toEqual([3, 3, 1]);
    expect(p.platform.metrics.counter('watchpost_mqtt_refused_total', '').get({ reason: 'publish_refused' })).toBe(1);

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

  it('reports a 1,000-reading batch with bad readings in one errors/ line and one log line, counting each reading', async () => {
    const device = await p.connect('dau-bridge-001', DEVICE_SECRET);
    const errors = collect(device);
    await device.subscribeAsync('errors/dau-bridge-001', { qos: 1 });
    const batch = Array.from({ length: 1000 }, (_, i) => ({ ts: T0 + 10_000 + i, values: { strain: i % 5 === 0 ? 99_999 : i % 7 === 3 ? 'x' : i } }));
    const bad = batch.flatMap((r, i) => (r.values.strain === 99_999 ? [{ index: i, reason: 'out_of_range' }] : r.values.strain === 'x' ? [{ index: i, reason: 'bad_value' }] : []));
    const outOfRange = bad.filter((b) => b.reason === 'out_of_range').length;
    expect([bad.length, outOfRange]).toEqual([314, 200]);
    const before = { range: rejectedTotal('out_of_range'), value: rejectedTotal('bad_value') };
    const logsBefore = logLines.length;

    await device.publishAsync('telemetry/lg-bridge-001/strain-01', JSON.stringify(batch), { qos: 1 });
    // Barrier: a later rejected message's line comes after every line of the batch.
    await device.publishAsync('telemetry/lg-bridge-001/strain-99', JSON.stringify({ ts: T0, values: { strain: 1 } }), { qos: 1 });
    await expect.poll(() => errors.some((e) => e.payload.includes('strain-99')), { timeout: 10_000 }).toBe(true);

    expect(errors).toHaveLength(2);
    const line = JSON.parse(errors[0]!.payload);
    expect(line).toEqual({
      topic: 'telemetry/lg-bridge-001/strain-01',
      reason: 'out_of_range',
      detail: 'reading [0]: strain = 99999 is outside the plausible range [-5000, 5000]',
      rejected_count: 314,
      rejected_readings: bad.slice(0, 100).map((b) => ({ ...b, detail: expect.any(String) })),
    });
    expect(line.rejected_readings[1]).toEqual({ index: 3, reason: 'bad_value', detail: 'strain must be a finite number or a boolean' });
    expect(JSON.parse(errors[1]!.payload)).toEqual({
      topic: 'telemetry/lg-bridge-001/strain-99',
      reason: 'unknown_sensor',
      detail: 'sensor "strain-99" is not configured on asset "lg-bridge-001"',
    });

    const logged = logLines.slice(logsBefore).filter((l) => l.msg === 'telemetry rejected');
    expect(logged).toHaveLength(2);
    expect(logged[0]).toMatchObject({ level: 40, device_id: 'dau-bridge-001', topic: 'telemetry/lg-bridge-001/strain-01', rejected: 314, reasons: { out_of_range: 200, bad_value: 114 } });
    expect([rejectedTotal('out_of_range'), rejectedTotal('bad_value')]).toEqual([before.range + 200, before.value + 114]);
  });

  it("forwards only the device's own status and its wholly accepted telemetry, for random topics and payloads", async () => {
    const ids = ['dau-bridge-001', 'dau-slope-002', 'city-ops-centre', 'lg-bridge-001', 'bt-slope-002', 'strain-01', 'red'];
    const topic = fc
      .oneof(
        fc.string({ minLength: 1, maxLength: 40 }),
        fc
          .tuple(
            fc.constantFrom('telemetry', 'status', 'alerts', 'errors', 'Status'),
            fc.array(fc.oneof(fc.constantFrom(...ids), fc.string({ maxLength: 8 })), { minLength: 1, maxLength: 3 }),
          )
          .map(([h, rest]) => [h, ...rest].join('/')),
        fc.constantFrom('telemetry/lg-bridge-001/strain-01', 'status/dau-bridge-001'),
      )
      // What MQTT lets a client publish at all ($ topics close the connection: covered above).
      .filter((t) => t.length > 0 && !t.includes('+') && !t.includes('#') && !t.includes('\u0000') && !t.startsWith('$'));
    const payload = fc.constantFrom(
      'online',
      'offline',
      '{"values":{"strain":12}}',
      '{"values":{"strain":99999}}',
      '[{"values":{"strain":1}},{"values":{"strain":"x"}}]',
      '{"event":"firing"}',
    );
    const messages = fc.sample(fc.record({ topic, payload, retain: fc.boolean() }), { seed: PROPERTY_SEED, numRuns: 150 });
    const genuine = (m: { topic: string; payload: string }) =>
      (m.topic === 'telemetry/lg-bridge-001/strain-01' && m.payload === '{"values":{"strain":12}}') ||
      (m.topic === 'status/dau-bridge-001' && (m.payload === 'online' || m.payload === 'offline'));
    expect(messages.filter(genuine).length).toBeGreaterThan(5);
    expect(messages.filter((m) => !genuine(m)).length).toBeGreaterThan(100);

    const observer = await p.connect('city-ops-centre', OBSERVER_SECRET);
    const live = collect(observer);
    await observer.subscribeAsync(['telemetry/#', 'alerts/#', 'status/#'], { qos: 1 });
    const device = await p.connect('dau-bridge-001', DEVICE_SECRET);
    for (const m of messages) await device.publishAsync(m.topic, m.payload, { qos: 1, retain: m.retain });
    const marker = JSON.stringify({ ts: T0 + 20_000, values: { strain: 13 } });
    await device.publishAsync('telemetry/lg-bridge-001/strain-01', marker, { qos: 1 });
    await expect.poll(() => live.some((m) => m.payload === marker), { timeout: 20_000 }).toBe(true);

    const key = (m: { topic: string; payload: string }) => `${m.topic} ${m.payload}`;
    // Left out: the marker, the status retained by the test before, and alert events Watchpost itself publishes (its rule fires on strain).
    const fromDevice = live.filter((m) => m.payload !== marker && !m.retain && !m.payload.includes('"delivery_id"'));
    expect(fromDevice.map(key).sort()).toEqual(messages.filter(genuine).map(key).sort());

    await device.publishAsync('status/dau-bridge-001', 'online', { qos: 1, retain: true });
    const later = await p.connect('city-ops-centre', OBSERVER_SECRET);
    const retained = collect(later);
    await later.subscribeAsync(['telemetry/#', 'alerts/#', 'status/#'], { qos: 1 });
    await expect.poll(() => retained.some((m) => m.topic === 'status/dau-bridge-001'), { timeout: 10_000 }).toBe(true);
    expect(retained).toEqual([{ topic: 'status/dau-bridge-001', payload: 'online', retain: true }]);
  });
});
