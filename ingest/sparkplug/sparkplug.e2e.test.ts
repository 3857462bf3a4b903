/**
 * The Sparkplug B host application on the embedded broker, with a real mqtt.js client as the
 * edge node: NBIRTH with aliases and NDATA by alias become stored readings (acknowledged once
 * durable), a sequence gap asks for a rebirth (NCMD) and makes the node offline, NDEATH makes it
 * offline, Watchpost's STATE is retained, and the policy keeps nodes to their own topics.
 */
import type { MqttClient } from 'mqtt';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { baseConfig, DEVICE_SECRET, OTHER_SECRET, startPlatform, tempDir, VIEWER_TOKEN, type RunningPlatform } from '../../test/support/platform.js';
import { decodeSparkplug, encodeSparkplug } from './codec.js';

const T = 1_764_295_200_000;
const NODE = 'spBv1.0/longgang/{type}/dau-bridge-001';
const topic = (type: string) => NODE.replace('{type}', type);

interface Received {
  topic: string;
  payload: Buffer;
  retain: boolean;
}

/** Messages a client receives, awaited by predicate (bounded by the test timeout). */
function inbox(client: MqttClient) {
  const messages: Received[] = [];
  const waiters: Array<() => void> = [];
  client.on('message', (t, payload, packet) => {
    messages.push({ topic: t, payload, retain: packet.retain });
    for (const w of waiters.splice(0)) w();
  });
  return {
    messages,
    async next(match: (m: Received) => boolean, from = 0): Promise<Received> {
      for (;;) {
        const found = messages.slice(from).find(match);
        if (found) return found;
        await new Promise<void>((resolve) => waiters.push(resolve));
      }
    },
  };
}

describe('Sparkplug B host on the embedded broker', () => {
  let p: RunningPlatform;
  let edge: MqttClient;
  let box: ReturnType<typeof inbox>;

  beforeAll(async () => {
    const base = baseConfig({ webhookUrl: 'http://127.0.0.1:9/hook', dataDir: tempDir('sparkplug') });
    const config = {
      ...base,
      rules: [...base.rules, { id: 'node-offline', match: { device_id: 'dau-bridge-001' }, offline: '1s', level: 'yellow', escalation: 'bridge-duty' }],
      adapters: [{ type: 'sparkplug', host_id: 'watchpost', nodes: [{ group: 'longgang', edge: 'dau-bridge-001', device: '*', asset: 'lg-bridge-001' }] }],
    };
    p = await startPlatform(config, { ruleTickMs: 50 });
    edge = await p.connect('dau-bridge-001', DEVICE_SECRET, 'edge-dau-bridge-001');
    box = inbox(edge);
    await edge.subscribeAsync([topic('NCMD'), 'spBv1.0/STATE/watchpost'], { qos: 1 });
  });
  afterAll(() => p?.stop());

  const latest = async () => {
    const res = await p.api('GET', '/api/v1/assets', undefined, VIEWER_TOKEN);
    return res.body.assets.find((a: { id: string }) => a.id === 'lg-bridge-001').latest as Array<{ sensor_id: string; metric: string; value: number; ts: string }>;
  };
  const presence = async () => {
    const res = await p.api('GET', '/api/v1/devices', undefined, VIEWER_TOKEN);
    return res.body.devices.find((d: { id: string }) => d.id === 'dau-bridge-001').status as string;
  };
  const birth = (bdSeq: number) =>
    encodeSparkplug({
      timestamp: T,
      seq: 0,
      metrics: [
        { name: 'bdSeq', type: 'UInt64', value: bdSeq },
        { name: 'Node Control/Rebirth', alias: 3, type: 'Boolean', value: false },
        { name: 'strain-01/Strain', alias: 1, type: 'Double', value: 100.5, timestamp: T },
        { name: 'strain-01/Temperature', alias: 2, type: 'Float', value: 20.25, timestamp: T },
      ],
    });

  it('publishes its STATE retained (Sparkplug 3.0 JSON)', async () => {
    const state = await box.next((m) => m.topic === 'spBv1.0/STATE/watchpost');
    expect(state.retain).toBe(true);
    const body = JSON.parse(state.payload.toString('utf8'));
    expect(body).toEqual({ online: true, timestamp: expect.any(Number) });
  });

  it('stores the values of NBIRTH and of NDATA by alias once acknowledged', async () => {
    await edge.publishAsync(topic('NBIRTH'), birth(0), { qos: 1 });
    expect(await latest()).toEqual([
      { sensor_id: 'strain-01', metric: 'strain', value: 100.5, ts: new Date(T).toISOString() },
      { sensor_id: 'strain-01', metric: 'temperature', value: 20.25, ts: new Date(T).toISOString() },
    ]);
    expect(await presence()).toBe('online');
    await edge.publishAsync(topic('NDATA'), encodeSparkplug({ timestamp: T + 1000, seq: 1, metrics: [{ alias: 1, type: 'Double', value: 150.25, timestamp: T + 1000 }] }), { qos: 1 });
    expect((await latest())[0]).toEqual({ sensor_id: 'strain-01', metric: 'strain', value: 150.25, ts: new Date(T + 1000).toISOString() });
  });

  it('asks for a rebirth after a sequence gap, marks the node offline and stores nothing until the rebirth', async () => {
    const from = box.messages.length;
    await edge.publishAsync(topic('NDATA'), encodeSparkplug({ timestamp: T + 2000, seq: 5, metrics: [{ alias: 1, type: 'Double', value: 999, timestamp: T + 2000 }] }), { qos: 1 });
    const ncmd = await box.next((m) => m.topic === topic('NCMD'), from);
    const command = decodeSparkplug(ncmd.payload);
    expect(command.metrics).toEqual([{ name: 'Node Control/Rebirth', type: 'Boolean', value: 1, timestamp: expect.any(Number) }]);
    expect(await presence()).toBe('offline');
    expect((await latest())[0]!.value).toBe(150.25);
    // The offline rule sees the stale node.
    const offlineAlerts = async () =>
      (await p.api('GET', '/api/v1/alerts?state=firing', undefined, VIEWER_TOKEN)).body.alerts.filter((a: { rule_id: string }) => a.rule_id === 'node-offline');
    await expect
      .poll(async () => (await offlineAlerts()).map((a: { asset_id: string; sensor_id: string }) => `${a.asset_id}/${a.sensor_id}`), { timeout: 10_000 })
      .toEqual(['lg-bridge-001/dau-bridge-001']);

    await edge.publishAsync(topic('NBIRTH'), birth(1), { qos: 1 });
    expect(await presence()).toBe('online');
    await expect.poll(async () => (await offlineAlerts()).length, { timeout: 10_000 }).toBe(0);
    await edge.publishAsync(topic('NDATA'), encodeSparkplug({ timestamp: T + 3000, seq: 1, metrics: [{ alias: 2, type: 'Float', value: 22.5, timestamp: T + 3000 }] }), { qos: 1 });
    expect((await latest())[1]).toEqual({ sensor_id: 'strain-01', metric: 'temperature', value: 22.5, ts: new Date(T + 3000).toISOString() });
  });

  it('ignores an NDEATH of an older birth, and an NDEATH of the current one makes the node offline', async () => {
    await edge.publishAsync(topic('NDEATH'), encodeSparkplug({ metrics: [{ name: 'bdSeq', type: 'UInt64', value: 0 }] }), { qos: 1 });
    expect(await presence()).toBe('online');
    await edge.publishAsync(topic('NDEATH'), encodeSparkplug({ metrics: [{ name: 'bdSeq', type: 'UInt64', value: 1 }] }), { qos: 1 });
    expect(await presence()).toBe('offline');
  });

  it('keeps nodes to their own group and edge topics', async () => {
    const slope = await p.connect('dau-slope-002', OTHER_SECRET);
    const errors = inbox(slope);
    await slope.subscribeAsync('errors/dau-slope-002', { qos: 1 });
    // Not an edge node, and not its edge id: refused, never stored.
    await slope.publishAsync(topic('NBIRTH'), birth(7), { qos: 1 });
    const line = JSON.parse((await errors.next((m) => m.topic === 'errors/dau-slope-002')).payload.toString('utf8'));
    expect(line).toEqual({ topic: topic('NBIRTH'), reason: 'not_allowed', detail: 'this device is not a configured Sparkplug edge node' });
    // Its own edge id in another group, and commands: refused.
    const own = inbox(edge);
    await edge.subscribeAsync('errors/dau-bridge-001', { qos: 1 });
    await edge.publishAsync('spBv1.0/futian/NBIRTH/dau-bridge-001', birth(8), { qos: 1 });
    expect(JSON.parse((await own.next((m) => m.topic === 'errors/dau-bridge-001')).payload.toString('utf8'))).toEqual({
      topic: 'spBv1.0/futian/NBIRTH/dau-bridge-001',
      reason: 'not_allowed',
      detail: 'an edge node may publish only spBv1.0/{its group}/…/dau-bridge-001',
    });
    // A node may not subscribe to other nodes' topics.
    await expect(edge.subscribeAsync('spBv1.0/longgang/NCMD/dau-slope-002', { qos: 1 })).rejects.toThrow('Subscribe error');
    expect(await presence()).toBe('offline');
  });
});
