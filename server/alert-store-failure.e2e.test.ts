/**
 * alerts.db failing under a running platform (embedded broker, rules, a real webhook receiver):
 * the reading is acknowledged (it is durable in the spool), its alert waits in memory instead of
 * being lost, observers see the platform alert at once and /healthz says degraded; when the
 * store recovers the alert opens with its timeline and each notification arrives exactly once.
 */
import mqtt, { type MqttClient } from 'mqtt';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SqliteAlertStore } from '../alerts/sqlite/sqlite-alert-store.js';
import { failingAlertStore, type StoreFault } from '../test/support/alert-store.js';
import { waitFor } from '../test/support/binaries.js';
import { baseConfig, DEVICE_SECRET, startPlatform, tempDir, type RunningPlatform } from '../test/support/platform.js';
import { startReceiver, type Receiver } from '../test/support/receiver.js';

const T0 = Date.parse('2025-11-28T02:00:00.000Z');
const OBSERVER_SECRET = 'screen-secret-00001';

interface Body {
  delivery_id: string;
  event: string;
  alert: { id: string; rule_id: string; asset_id: string; started_at: string };
}

describe('alerts.db failing under the platform', () => {
  let receiver: Receiver;
  let p: RunningPlatform;
  let device: MqttClient;
  let observer: MqttClient;
  const fault: StoreFault = { on: false, calls: 0 };
  const seen: Array<{ topic: string; body: Body }> = [];

  beforeAll(async () => {
    receiver = await startReceiver();
    const config = baseConfig({ webhookUrl: receiver.url, dataDir: tempDir('alerts-db-failure') });
    config.devices.push({ id: 'ops-screen', secret: OBSERVER_SECRET, assets: [], subscribe: ['alerts/#'] } as (typeof config.devices)[number]);
    config.escalations.push({ id: 'fallback', tiers: [{ after: '0s', notify: ['ops-hook'] }] });
    p = await startPlatform(config, { openAlertStore: (dir) => failingAlertStore(SqliteAlertStore.open(dir), fault) });
    device = await p.connect('dau-bridge-001', DEVICE_SECRET);
    observer = await mqtt.connectAsync(p.mqttUrl, { username: 'ops-screen', password: OBSERVER_SECRET, protocolVersion: 4, reconnectPeriod: 0 });
    observer.on('message', (topic, payload) => seen.push({ topic, body: JSON.parse(payload.toString('utf8')) as Body }));
    await observer.subscribeAsync('alerts/#', { qos: 1 });
  });

  afterAll(async () => {
    fault.on = false;
    await observer?.endAsync(true);
    await p?.stop();
    await receiver?.close();
  });

  const health = async () => {
    const res = await fetch(`${p.apiUrl}/healthz`);
    return { status: res.status, body: (await res.json()) as Record<string, unknown> };
  };

  it('keeps the alert of an acknowledged reading until alerts.db takes it, and notifies it once', async () => {
    fault.on = true;
    // Acknowledged: the reading is durable in the spool before the alert stage runs.
    await device.publishAsync('telemetry/lg-bridge-001/strain-01', JSON.stringify({ ts: T0, values: { strain: 312.5 } }), { qos: 1 });
    await waitFor('the platform alert on MQTT', () => Promise.resolve(seen.some((m) => m.topic === 'alerts/red/watchpost') ? true : undefined));
    expect(seen.map((m) => [m.topic, m.body.event, m.body.alert.rule_id])).toEqual([['alerts/red/watchpost', 'firing', 'platform-alerts-db']]);
    const degraded = await health();
    expect(degraded.status).toBe(200);
    expect(degraded.body).toMatchObject({ status: 'degraded', alerts: { waiting: 1, error: 'database or disk is full' } });
    expect(receiver.requests).toHaveLength(0);
    const failedAt = Date.now();

    fault.on = false;
    const requests = await receiver.waitForRequests(3);
    const bodies = requests.map((r) => JSON.parse(r.body) as Body);
    expect(bodies.map((b) => [b.alert.rule_id, b.event]).sort()).toEqual([
      ['bridge-strain', 'firing'],
      ['platform-alerts-db', 'firing'],
      ['platform-alerts-db', 'resolved'],
    ]);
    expect((await health()).body.status).toBe('ok');

    const list = await p.api('GET', '/api/v1/alerts?asset_id=lg-bridge-001');
    expect(list.status).toBe(200);
    const alerts = (list.body as { alerts: Array<{ id: string; rule_id: string; state: string; level: string }> }).alerts;
    expect(alerts.map((a) => [a.rule_id, a.state, a.level])).toEqual([['bridge-strain', 'firing', 'red']]);
    const alert = (await p.api('GET', `/api/v1/alerts/${alerts[0]!.id}`)).body as { id: string; started_at: string };
    // Opened as of when the event came, not when it was stored.
    expect(Date.parse(alert.started_at)).toBeLessThanOrEqual(failedAt);
    const timelineOf = async (id: string) => ((await p.api('GET', `/api/v1/alerts/${id}`)).body as { timeline: Array<{ type: string }> }).timeline.map((e) => e.type);
    expect(await waitFor('the delivery recorded', async () => ((await timelineOf(alert.id)).includes('delivered') ? timelineOf(alert.id) : undefined))).toEqual([
      'firing',
      'queued',
      'delivered',
    ]);
    const outage = bodies.find((b) => b.alert.rule_id === 'platform-alerts-db')!.alert.id;
    const outageTimeline = await waitFor('the outage deliveries recorded', async () => {
      const types = await timelineOf(outage);
      return types.filter((t) => t === 'delivered').length === 2 ? types : undefined;
    });
    expect([...outageTimeline].sort()).toEqual(['delivered', 'delivered', 'firing', 'queued', 'queued', 'resolved']);
    // The rule's alert published when stored; the outage's end published; nothing twice.
    expect(seen.map((m) => [m.topic, m.body.event, m.body.alert.rule_id])).toEqual([
      ['alerts/red/watchpost', 'firing', 'platform-alerts-db'],
      ['alerts/red/lg-bridge-001', 'firing', 'bridge-strain'],
      ['alerts/red/watchpost', 'resolved', 'platform-alerts-db'],
    ]);
    // Exactly once: every delivery is recorded, and no notification was sent twice.
    expect(receiver.requests).toHaveLength(3);
    expect(new Set(bodies.map((b) => b.delivery_id)).size).toBe(3);
  });
});
