/**
 * The whole path against a real InfluxDB 1.6 (Debian's influxd): devices publish over MQTT with
 * their credentials, readings and alert events are queried back with InfluxQL.
 */
import { createHmac } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { waitFor } from '../test/support/binaries.js';
import { influxdAvailable, startInfluxd, type Influxd } from '../test/support/influxd.js';
import { baseConfig, DEVICE_SECRET, HOOK_SECRET, OTHER_SECRET, startPlatform, tempDir, type RunningPlatform } from '../test/support/platform.js';
import { startReceiver, type Receiver } from '../test/support/receiver.js';

const T0 = Date.parse('2025-11-28T02:00:00.000Z');

describe.skipIf(!influxdAvailable)('platform with InfluxDB 1.6', () => {
  let influx: Influxd;
  let receiver: Receiver;
  let p: RunningPlatform;

  async function series(q: string) {
    const [result] = await influx.query(q);
    return result?.series ?? [];
  }

  beforeAll(async () => {
    influx = await startInfluxd({ database: 'telemetry' });
    receiver = await startReceiver();
    p = await startPlatform(baseConfig({ webhookUrl: receiver.url, dataDir: tempDir('data'), influx: { url: influx.url, version: 1, database: 'telemetry' } }));
  });
  afterAll(async () => {
    await p?.stop();
    await receiver?.close();
    await influx?.stop();
  });

  it('writes one point per metric value with the contract layout', async () => {
    const device = await p.connect('dau-bridge-001', DEVICE_SECRET);
    await device.publishAsync(
      'telemetry/lg-bridge-001/strain-01',
      JSON.stringify([
        { ts: T0, values: { strain: 123.4, temperature: 21 } },
        { ts: '2025-11-28T10:00:01.250+08:00', values: { strain: 124 } },
      ]),
      { qos: 1 },
    );
    const strain = await waitFor('strain points', async () => {
      const s = await series('SELECT value, asset_id, asset_type, sensor_id, street FROM strain');
      return s[0]?.values.length === 2 ? s : undefined;
    });
    expect(strain).toEqual([
      {
        name: 'strain',
        columns: ['time', 'value', 'asset_id', 'asset_type', 'sensor_id', 'street'],
        values: [
          [T0, 123.4, 'lg-bridge-001', 'bridge', 'strain-01', '龙城街道'],
          [T0 + 1250, 124, 'lg-bridge-001', 'bridge', 'strain-01', '龙城街道'],
        ],
      },
    ]);
    expect(await series('SHOW TAG KEYS FROM strain')).toEqual([{ name: 'strain', columns: ['tagKey'], values: [['asset_id'], ['asset_type'], ['sensor_id'], ['street']] }]);
    expect(await series('SHOW FIELD KEYS FROM strain')).toEqual([{ name: 'strain', columns: ['fieldKey', 'fieldType'], values: [['value', 'float']] }]);
    expect(await series('SELECT value FROM temperature')).toEqual([{ name: 'temperature', columns: ['time', 'value'], values: [[T0, 21]] }]);
  });

  it('stores nothing of a rejected message or of a device publishing for another asset', async () => {
    const device = await p.connect('dau-bridge-001', DEVICE_SECRET);
    const other = await p.connect('dau-slope-002', OTHER_SECRET);
    await device.publishAsync('telemetry/lg-bridge-001/strain-01', '{"ts": 1764295200123, "values": {"strain": ', { qos: 1 });
    await device.publishAsync('telemetry/lg-bridge-001/unknown-sensor', JSON.stringify({ ts: T0 + 5, values: { strain: 1 } }), { qos: 1 });
    await device.publishAsync('telemetry/lg-bridge-001/strain-01', JSON.stringify({ ts: T0 + 6, values: { pressure: 1 } }), { qos: 1 });
    await other.publishAsync('telemetry/lg-bridge-001/strain-01', JSON.stringify({ ts: T0 + 7, values: { strain: 1 } }), { qos: 1 });
    await device.publishAsync('telemetry/lg-bridge-001/strain-01', JSON.stringify({ ts: T0 + 8, values: { strain: 8 } }), { qos: 1 });
    await waitFor('marker point', async () => ((await series(`SELECT value FROM strain WHERE time = ${T0 + 8}ms`)).length ? true : undefined));
    expect((await series('SELECT value FROM strain'))[0]!.values).toEqual([
      [T0, 123.4],
      [T0 + 8, 8],
      [T0 + 1250, 124],
    ]);
    expect(await series('SHOW MEASUREMENTS')).toEqual([{ name: 'measurements', columns: ['name'], values: [['strain'], ['temperature']] }]);
    const metrics = await (await fetch(`${p.apiUrl}/metrics`)).text();
    for (const reason of ['bad_json', 'unknown_sensor', 'unknown_metric', 'not_allowed']) {
      expect(metrics).toContain(`watchpost_ingest_rejected_total{reason="${reason}"} 1`);
    }
  });

  it('turns a threshold crossing into one signed webhook and alert_events points', async () => {
    const device = await p.connect('dau-bridge-001', DEVICE_SECRET);
    await device.publishAsync('telemetry/lg-bridge-001/strain-01', JSON.stringify({ ts: T0 + 60_000, values: { strain: 260 } }), { qos: 1 });
    const [first] = await receiver.waitForRequests(1);
    const body = JSON.parse(first!.body);
    expect(body).toMatchObject({ event: 'firing', tier: 0, alert: { level: 'orange', value: 260, threshold: 250, rule_id: 'bridge-strain' } });
    const ts = first!.headers['x-watchpost-timestamp'] as string;
    expect(first!.headers['x-watchpost-signature']).toBe(`sha256=${createHmac('sha256', HOOK_SECRET).update(`${ts}.${first!.body}`).digest('hex')}`);

    // Back below orange minus hysteresis (250 - 20) but above yellow: a drop, recorded, not notified.
    await device.publishAsync('telemetry/lg-bridge-001/strain-01', JSON.stringify({ ts: T0 + 61_000, values: { strain: 225 } }), { qos: 1 });
    // Below yellow minus hysteresis (200 - 20): resolved, notified to those notified so far.
    await device.publishAsync('telemetry/lg-bridge-001/strain-01', JSON.stringify({ ts: T0 + 62_000, values: { strain: 150 } }), { qos: 1 });
    const [, resolved] = await receiver.waitForRequests(2);
    expect(JSON.parse(resolved!.body)).toMatchObject({ event: 'resolved', alert: { id: body.alert.id, state: 'resolved' } });
    expect(receiver.requests).toHaveLength(2);

    const events = await waitFor('alert_events points', async () => {
      const s = await series(`SELECT alert_id, value, message, rule_id, asset_id, level, event FROM alert_events WHERE alert_id = '${body.alert.id}'`);
      return s[0]?.values.length === 3 ? s[0] : undefined;
    });
    expect(events.columns).toEqual(['time', 'alert_id', 'value', 'message', 'rule_id', 'asset_id', 'level', 'event']);
    expect(events.values.map((v) => [v[2], v[4], v[5], v[6], v[7]])).toEqual([
      [260, 'bridge-strain', 'lg-bridge-001', 'orange', 'firing'],
      [225, 'bridge-strain', 'lg-bridge-001', 'yellow', 'level_dropped'],
      [150, 'bridge-strain', 'lg-bridge-001', 'yellow', 'resolved'],
    ]);
    expect(await series('SHOW FIELD KEYS FROM alert_events')).toEqual([
      {
        name: 'alert_events',
        columns: ['fieldKey', 'fieldType'],
        values: [
          ['alert_id', 'string'],
          ['message', 'string'],
          ['value', 'float'],
        ],
      },
    ]);
  });
});
