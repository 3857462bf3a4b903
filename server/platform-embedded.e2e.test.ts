/**
 * The whole path on embedded defaults: aedes broker, embedded SQLite telemetry store, rules,
 * alerts, a real webhook receiver and the HTTP API.
 */
import { createHmac } from 'node:crypto';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import type { MqttClient } from 'mqtt';
import mqtt from 'mqtt';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { waitFor } from '../test/support/binaries.js';
import { fetchOpenApi, openApiMismatches, type OpenApiDocument } from '../test/support/openapi.js';
import { baseConfig, DEVICE_SECRET, HOOK_SECRET, OTHER_SECRET, startPlatform, tempDir, VIEWER_TOKEN, type RunningPlatform } from '../test/support/platform.js';
import { startReceiver, type Receiver } from '../test/support/receiver.js';

const T0 = Date.parse('2025-11-28T02:00:00.000Z');

function nextMessage(client: MqttClient, topic: string): Promise<{ topic: string; payload: string }> {
  return new Promise((resolve) => {
    const onMessage = (t: string, payload: Buffer) => {
      if (t !== topic) return;
      client.off('message', onMessage);
      resolve({ topic: t, payload: payload.toString('utf8') });
    };
    client.on('message', onMessage);
  });
}

describe('platform on embedded defaults', () => {
  let receiver: Receiver;
  let p: RunningPlatform;
  let db: Database.Database;
  const rows = (sql: string, ...params: unknown[]) => db.prepare(sql).all(...params) as Array<Record<string, unknown>>;
  let openApi: OpenApiDocument | undefined;
  /** The answer is what GET /openapi.json says the route answers with that status. */
  const asDocumented = async (method: string, path: string, res: { status: number; body: unknown }) =>
    expect(openApiMismatches((openApi ??= await fetchOpenApi(p.apiUrl)), method, path, res.status, res.body)).toEqual([]);

  beforeAll(async () => {
    receiver = await startReceiver();
    p = await startPlatform(baseConfig({ webhookUrl: receiver.url, dataDir: tempDir('data') }));
    db = new Database(join(p.dataDir, 'telemetry.db'), { readonly: true, fileMustExist: true });
  });
  afterAll(async () => {
    db?.close();
    await p?.stop();
    await receiver?.close();
  });

  it('stores readings in the embedded store when no influx section is configured', async () => {
    const device = await p.connect('dau-bridge-001', DEVICE_SECRET);
    await device.publishAsync('telemetry/lg-bridge-001/strain-01', JSON.stringify({ ts: T0, values: { strain: 123.4, temperature: 21 } }), { qos: 1 });
    const stored = await waitFor('readings in telemetry.db', async () => {
      const r = rows('SELECT metric, asset_id, sensor_id, asset_type, street, ts, value FROM readings ORDER BY metric');
      return r.length === 2 ? r : undefined;
    });
    expect(stored).toEqual([
      { metric: 'strain', asset_id: 'lg-bridge-001', sensor_id: 'strain-01', asset_type: 'bridge', street: '龙城街道', ts: T0, value: 123.4 },
      { metric: 'temperature', asset_id: 'lg-bridge-001', sensor_id: 'strain-01', asset_type: 'bridge', street: '龙城街道', ts: T0, value: 21 },
    ]);
    const assets = await p.api('GET', '/api/v1/assets', undefined, VIEWER_TOKEN);
    expect(assets.status).toBe(200);
    await asDocumented('GET', '/api/v1/assets', assets);
    const bridge = assets.body.assets.find((a: { id: string }) => a.id === 'lg-bridge-001');
    expect(bridge.latest).toEqual(expect.arrayContaining([{ sensor_id: 'strain-01', metric: 'strain', value: 123.4, ts: new Date(T0).toISOString() }]));
  });

  it('rejects a bad payload on errors/{device_id} and stores nothing of it', async () => {
    const device = await p.connect('dau-bridge-001', DEVICE_SECRET);
    await device.subscribeAsync('errors/dau-bridge-001', { qos: 1 });
    const feedback = nextMessage(device, 'errors/dau-bridge-001');
    await device.publishAsync('telemetry/lg-bridge-001/strain-01', '{"ts": 1764295200123, "values": {"strain": "high"}}', { qos: 1 });
    expect(JSON.parse((await feedback).payload)).toEqual({
      topic: 'telemetry/lg-bridge-001/strain-01',
      reason: 'bad_value',
      detail: 'strain must be a finite number or a boolean',
    });
    const outOfRange = nextMessage(device, 'errors/dau-bridge-001');
    await device.publishAsync('telemetry/lg-bridge-001/strain-01', JSON.stringify({ ts: T0 + 1, values: { strain: 9999 } }), { qos: 1 });
    expect(JSON.parse((await outOfRange).payload).reason).toBe('out_of_range');
    const metrics = await (await fetch(`${p.apiUrl}/metrics`)).text();
    expect(metrics).toMatch(/watchpost_ingest_rejected_total\{reason="bad_value"\} 1/);
    expect(metrics).toMatch(/watchpost_ingest_rejected_total\{reason="out_of_range"\} 1/);
    // A valid marker after the rejected ones: once it is stored, the rejected ones would be too.
    await device.publishAsync('telemetry/lg-bridge-001/strain-01', JSON.stringify({ ts: T0 + 2, values: { strain: 50 } }), { qos: 1 });
    await waitFor('marker reading', async () => (rows('SELECT 1 FROM readings WHERE ts = ?', T0 + 2).length ? true : undefined));
    expect(rows('SELECT ts, value FROM readings WHERE metric = ? ORDER BY ts', 'strain')).toEqual([
      { ts: T0, value: 123.4 },
      { ts: T0 + 2, value: 50 },
    ]);
  });

  it('refuses wrong credentials at CONNECT and another device publishing for an asset not its own', async () => {
    await expect(p.connect('dau-bridge-001', 'wrong-secret')).rejects.toThrow(/Bad username or password/i);
    await expect(p.connect('no-such-device', DEVICE_SECRET)).rejects.toThrow(/Bad username or password/i);
    await expect(mqtt.connectAsync(p.mqttUrl, { reconnectPeriod: 0, protocolVersion: 4 })).rejects.toThrow(/Bad username or password/i);

    const other = await p.connect('dau-slope-002', OTHER_SECRET);
    await other.subscribeAsync('errors/dau-slope-002', { qos: 1 });
    const feedback = nextMessage(other, 'errors/dau-slope-002');
    await other.publishAsync('telemetry/lg-bridge-001/strain-01', JSON.stringify({ ts: T0 + 3, values: { strain: 77 } }), { qos: 1 });
    expect(JSON.parse((await feedback).payload)).toEqual({
      topic: 'telemetry/lg-bridge-001/strain-01',
      reason: 'not_allowed',
      detail: 'device may not publish for asset "lg-bridge-001"',
    });
    // Subscribing to another device's errors/ is refused (SUBACK 128, which mqtt.js raises).
    await expect(other.subscribeAsync('errors/dau-bridge-001', { qos: 1 })).rejects.toThrow(/Subscribe error/);
    expect(rows('SELECT 1 FROM readings WHERE ts = ?', T0 + 3)).toEqual([]);
  });

  it('delivers exactly one signed webhook for a threshold crossing, and an acknowledgement shows in the timeline', async () => {
    const device = await p.connect('dau-bridge-001', DEVICE_SECRET);
    const observerless = receiver.requests.length;
    expect(observerless).toBe(0);
    for (const [i, strain] of [310, 315, 305].entries()) {
      await device.publishAsync('telemetry/lg-bridge-001/strain-01', JSON.stringify({ ts: T0 + 10_000 + i * 1000, values: { strain } }), { qos: 1 });
    }
    const [firing] = await receiver.waitForRequests(1);
    const body = JSON.parse(firing!.body);
    const ts = firing!.headers['x-watchpost-timestamp'] as string;
    expect(firing!.headers['x-watchpost-signature']).toBe(`sha256=${createHmac('sha256', HOOK_SECRET).update(`${ts}.${firing!.body}`).digest('hex')}`);
    expect(firing!.headers['x-watchpost-delivery']).toBe(body.delivery_id);
    expect(firing!.headers['content-type']).toMatch(/^application\/json/);
    expect(body).toEqual({
      delivery_id: expect.stringMatching(/^[0-9a-f-]{36}$/),
      event: 'firing',
      tier: 0,
      to: [],
      alert: {
        id: expect.any(String),
        rule_id: 'bridge-strain',
        rule_name: '主梁应变超限',
        level: 'red',
        state: 'firing',
        asset_id: 'lg-bridge-001',
        asset_name: '龙岗河大桥',
        asset_type: 'bridge',
        street: '龙城街道',
        sensor_id: 'strain-01',
        metric: 'strain',
        value: 310,
        threshold: 300,
        started_at: expect.stringMatching(/^\d{4}-\d\d-\d\dT/),
        message: '龙岗河大桥 strain-01 应变 310µε，超过red阈值 300',
        plan: ['通知桥梁养护单位现场核查', '必要时封闭交通'],
        ack_url: expect.stringMatching(/^https:\/\/watchpost\.example\.org\//),
        case: { status: 'new', department: null, work_order_id: null },
      },
    });

    const list = await p.api('GET', '/api/v1/alerts?state=firing', undefined, VIEWER_TOKEN);
    expect(list.status).toBe(200);
    await asDocumented('GET', '/api/v1/alerts?state=firing', list);
    expect(list.body.alerts.map((a: { id: string; level: string }) => [a.id, a.level])).toEqual([[body.alert.id, 'red']]);

    const viewerAck = await p.api('POST', `/api/v1/alerts/${body.alert.id}/ack`, { note: 'x' }, VIEWER_TOKEN);
    expect(viewerAck).toEqual({ status: 403, body: { error: 'forbidden', message: 'this needs the operator role' } });
    await asDocumented('POST', `/api/v1/alerts/${body.alert.id}/ack`, viewerAck);
    const ack = await p.api('POST', `/api/v1/alerts/${body.alert.id}/ack`, { note: '已通知养护单位' });
    expect(ack.status).toBe(200);
    await asDocumented('POST', `/api/v1/alerts/${body.alert.id}/ack`, ack);
    const [, acknowledged] = await receiver.waitForRequests(2);
    expect(JSON.parse(acknowledged!.body)).toMatchObject({ event: 'acknowledged', alert: { id: body.alert.id, state: 'acknowledged' } });
    expect(receiver.requests.filter((r) => JSON.parse(r.body).event === 'firing')).toHaveLength(1);

    const detail = await p.api('GET', `/api/v1/alerts/${body.alert.id}`, undefined, VIEWER_TOKEN);
    expect(detail.status).toBe(200);
    await asDocumented('GET', `/api/v1/alerts/${body.alert.id}`, detail);
    const timeline = detail.body.timeline as Array<{ type: string; by?: string; note?: string }>;
    expect(timeline.map((e) => e.type)).toEqual(expect.arrayContaining(['firing', 'delivered', 'acknowledged']));
    expect(timeline.find((e) => e.type === 'acknowledged')).toMatchObject({ by: 'duty-officer', note: '已通知养护单位' });

    const fired = await (await fetch(`${p.apiUrl}/metrics`)).text();
    expect(fired).toMatch(/watchpost_alerts_fired_total\{level="red"\} 1/);
  });

  it('tracks device status from status/ publishes and an unclean disconnect, and drops a client publishing to $SYS', async () => {
    const device = await p.connect('dau-slope-002', OTHER_SECRET);
    await device.publishAsync('status/dau-slope-002', 'online', { qos: 1, retain: true });
    const online = await p.api('GET', '/api/v1/devices', undefined, VIEWER_TOKEN);
    expect(online.body.devices.find((d: { id: string }) => d.id === 'dau-slope-002')).toMatchObject({ status: 'online', assets: ['bt-slope-002'] });
    await asDocumented('GET', '/api/v1/devices', online);

    const willing = await mqtt.connectAsync(p.mqttUrl, {
      username: 'dau-bridge-001',
      password: DEVICE_SECRET,
      protocolVersion: 4,
      reconnectPeriod: 0,
      will: { topic: 'status/dau-bridge-001', payload: Buffer.from('offline'), qos: 1, retain: true },
    });
    await willing.publishAsync('status/dau-bridge-001', 'online', { qos: 1, retain: true });
    willing.stream.destroy(); // an unclean disconnect: the broker publishes the last will
    await waitFor('last will', async () => {
      const r = await p.api('GET', '/api/v1/devices', undefined, VIEWER_TOKEN);
      return r.body.devices.find((d: { id: string; status: string }) => d.id === 'dau-bridge-001' && d.status === 'offline') ? true : undefined;
    });

    const closed = new Promise<void>((resolve) => device.once('close', () => resolve()));
    device.publish('$SYS/broker/uptime', '1', { qos: 1 });
    await closed;
  });

  it('answers API errors with codes', async () => {
    expect(await p.api('GET', '/api/v1/alerts', undefined, 'not-a-token-at-all')).toEqual({ status: 401, body: { error: 'unauthorized', message: 'unknown token' } });
    expect((await p.api('GET', '/api/v1/alerts/nope', undefined, VIEWER_TOKEN)).status).toBe(404);
    expect((await p.api('GET', '/api/v1/alerts?level=purple', undefined, VIEWER_TOKEN)).body.error).toBe('bad_request');
    const health = await fetch(`${p.apiUrl}/healthz`);
    expect(health.status).toBe(200);
    expect(await health.json()).toMatchObject({ status: 'ok' });
    for (const [path, token] of [
      ['/api/v1/alerts', 'not-a-token-at-all'],
      ['/api/v1/alerts/nope', VIEWER_TOKEN],
      ['/api/v1/alerts?level=purple', VIEWER_TOKEN],
      ['/api/v1/rules', VIEWER_TOKEN],
    ] as const) {
      await asDocumented('GET', path, await p.api('GET', path, undefined, token));
    }
    const healthAgain = await fetch(`${p.apiUrl}/healthz`);
    await asDocumented('GET', '/healthz', { status: healthAgain.status, body: await healthAgain.json() });
  });
});
