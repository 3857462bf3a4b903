/**
 * The embedded broker over real sockets, with the ingest stage replaced by a handler the test
 * controls: the PUBACK of a QoS 1 publish waits for storage, storage refusal leaves it
 * unacknowledged, and hostile clients (connect floods, password guessing, oversized or
 * malformed packets) are cut off per address.
 */
import { connect as netConnect } from 'node:net';
import mqtt, { type MqttClient } from 'mqtt';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { silentLogger } from '../lib/logger.js';
import { MetricsRegistry } from '../lib/metrics.js';
import { DeviceRegistry } from './broker-policy.js';
import { embeddedBrokerSchema } from './config.js';
import { EmbeddedBroker } from './embedded-broker.js';
import type { IngestOutcome } from './ingest-service.js';
import type { InboundHandlers } from './message-bus.js';
import type { Rejection } from './rejections.js';

const SECRET = 'bridge-secret-0001';
const TOPIC = 'telemetry/lg-bridge-001/strain-01';

interface Held {
  payload: string;
  release: (outcome: IngestOutcome) => void;
}

function harness(limits: Record<string, unknown> = {}, extra: Record<string, unknown> = {}) {
  const held: Held[] = [];
  const rejected: Array<{ topic: string; rejection: Rejection }> = [];
  const handlers: InboundHandlers = {
    telemetry: (_source, _topic, _asset, _sensor, payload) => new Promise<IngestOutcome>((resolve) => held.push({ payload: payload.toString(), release: resolve })),
    status: () => undefined,
    rejected: (_source, topic, rejection) => rejected.push({ topic, rejection }),
  };
  const metrics = new MetricsRegistry();
  const broker = new EmbeddedBroker({
    config: embeddedBrokerSchema.parse({ host: '127.0.0.1', port: 0, limits: { exempt: [], ...limits }, ...extra }),
    devices: new DeviceRegistry([
      { id: 'dau-bridge-001', secret: SECRET, assets: ['lg-bridge-001'], subscribe: [] },
      { id: 'display-001', secret: SECRET, assets: [], subscribe: ['telemetry/lg-bridge-001/#', 'status/#', 'alerts/#'] },
      { id: 'dau-slope-002', secret: SECRET, assets: [], subscribe: [] },
      { id: 'dau-slope-003', secret: SECRET, assets: [], subscribe: [] },
    ]),
    handlers,
    logger: silentLogger(),
    metrics,
  });
  const refused = (reason: string) => metrics.counter('watchpost_mqtt_refused_total', '').get({ reason });
  return { broker, held, rejected, refused, metrics };
}

const stored = (n: number): IngestOutcome => ({ accepted: n, rejected: 0, stored: true });

describe('EmbeddedBroker over sockets', () => {
  const brokers: EmbeddedBroker[] = [];
  const clients: MqttClient[] = [];
  afterEach(async () => {
    await Promise.all(clients.splice(0).map((c) => c.endAsync(true).catch(() => undefined)));
    await Promise.all(brokers.splice(0).map((b) => b.stop()));
  });

  async function start(h: ReturnType<typeof harness>) {
    brokers.push(h.broker);
    await h.broker.start();
    return `mqtt://127.0.0.1:${h.broker.port()}`;
  }

  async function device(url: string, password = SECRET, username = 'dau-bridge-001', session: { clientId?: string; clean?: boolean } = {}) {
    // allowRetries false: a connection closed before CONNACK rejects instead of waiting.
    const client = await mqtt.connectAsync(url, { username, password, protocolVersion: 4, reconnectPeriod: 0, connectTimeout: 3000, ...session }, false);
    clients.push(client);
    return client;
  }

  it('sends the PUBACK of a QoS 1 publish only once storage has the readings, for many publishes in flight at once', async () => {
    const h = harness();
    const client = await device(await start(h));
    const acked: number[] = [];
    const publishes = Array.from({ length: 50 }, (_, i) => client.publishAsync(TOPIC, JSON.stringify({ values: { strain: i } }), { qos: 1 }).then(() => acked.push(i)));
    // All 50 reach storage before any is acknowledged: storage can commit them as one group.
    await expect.poll(() => h.held.length).toBe(50);
    await new Promise((r) => setTimeout(r, 100));
    expect(acked).toEqual([]);
    for (const m of h.held.slice(0, 10)) m.release(stored(1));
    await expect.poll(() => acked.length).toBe(10);
    expect(acked).toEqual(Array.from({ length: 10 }, (_, i) => i));
    for (const m of h.held.slice(10)) m.release(stored(1));
    await Promise.all(publishes);
    expect(acked).toHaveLength(50);
  });

  it('forwards telemetry to a device allowed to subscribe to it (forwarding is skipped only while no one can)', async () => {
    const h = harness();
    const url = await start(h);
    const publisher = await device(url);
    // Nobody subscribed yet: acknowledged after storage, forwarded to no one.
    const first = publisher.publishAsync(TOPIC, JSON.stringify({ values: { strain: 1 } }), { qos: 1 });
    await expect.poll(() => h.held.length).toBe(1);
    h.held[0]!.release(stored(1));
    await first;

    const display = await device(url, SECRET, 'display-001');
    const received: string[] = [];
    display.on('message', (topic, payload) => received.push(`${topic} ${payload.toString()}`));
    await display.subscribeAsync('telemetry/lg-bridge-001/+', { qos: 1 });
    const second = publisher.publishAsync(TOPIC, JSON.stringify({ values: { strain: 2 } }), { qos: 1 });
    await expect.poll(() => h.held.length).toBe(2);
    h.held[1]!.release(stored(1));
    await second;
    await expect.poll(() => received).toEqual([`${TOPIC} {"values":{"strain":2}}`]);
  });

  it("forwards a device's telemetry without retaining it: a device retains only its own status", async () => {
    const h = harness();
    const url = await start(h);
    const publisher = await device(url);
    const published = publisher.publishAsync(TOPIC, JSON.stringify({ values: { strain: 7 } }), { qos: 1, retain: true });
    await expect.poll(() => h.held.length).toBe(1);
    h.held[0]!.release(stored(1));
    await published;
    await publisher.publishAsync('status/dau-bridge-001', 'online', { qos: 1, retain: true });
    expect(h.broker.retainedStore()).toEqual({ messages: 1, bytes: 'status/dau-bridge-001'.length + 'online'.length });

    const display = await device(url, SECRET, 'display-001');
    const received: string[] = [];
    display.on('message', (topic, payload, packet) => received.push(`${topic} ${payload.toString()} retain=${packet.retain}`));
    await display.subscribeAsync(['telemetry/lg-bridge-001/+', 'status/+'], { qos: 1 });
    await expect.poll(() => received).toEqual(['status/dau-bridge-001 online retain=true']);
  });

  it('does not acknowledge a publish storage refuses, and closes the connection so the device sends it again', async () => {
    const h = harness();
    const client = await device(await start(h));
    const closed = new Promise<void>((resolve) => client.once('close', () => resolve()));
    let settled = false;
    const publish = client.publishAsync(TOPIC, JSON.stringify({ values: { strain: 1 } }), { qos: 1 }).finally(() => (settled = true));
    await expect.poll(() => h.held.length).toBe(1);
    h.held[0]!.release({ accepted: 0, rejected: 0, stored: false });
    await closed;
    // Not acknowledged: the client still holds the message to send again when it reconnects.
    expect(settled).toBe(false);
    await client.endAsync(true);
    await expect(publish).rejects.toThrow(/Connection closed/);
  });

  it('refuses connections from an address past its connect rate', async () => {
    const h = harness({ connect_burst: 3, connects_per_second: 0.01 });
    const url = await start(h);
    for (let i = 0; i < 3; i++) await device(url);
    await expect(device(url)).rejects.toThrow();
    expect(h.refused('rate_limited')).toBe(1);
  });

  it('locks an address out after repeated bad passwords, even for the right password', async () => {
    const h = harness({ max_auth_failures: 3, auth_failure_window: '1m', lockout: '10m' });
    const url = await start(h);
    for (let i = 0; i < 3; i++) await expect(device(url, 'wrong-password')).rejects.toThrow(/Bad username or password/);
    expect(h.refused('bad_credentials')).toBe(3);
    await expect(device(url)).rejects.toThrow();
    expect(h.refused('locked_out')).toBe(1);
  });

  it('closes a connection whose packet announces more than the payload limit allows, before reading it', async () => {
    const h = harness({}, { max_payload_bytes: 1024 });
    const client = await device(await start(h));
    const closed = new Promise<void>((resolve) => client.once('close', () => resolve()));
    client.publish(TOPIC, Buffer.alloc(200_000, 0x20), { qos: 1 });
    await closed;
    expect(h.refused('too_large')).toBe(1);
    expect(h.held).toEqual([]);
  });

  it('lets a payload a little over the limit through to ingest, which rejects it as too_large with feedback', async () => {
    const h = harness({}, { max_payload_bytes: 1024 });
    const client = await device(await start(h));
    const publish = client.publishAsync(TOPIC, Buffer.alloc(2048, 0x20), { qos: 1 });
    await expect.poll(() => h.held.length).toBe(1);
    expect(h.held[0]!.payload).toHaveLength(2048);
    h.held[0]!.release({ accepted: 0, rejected: 1, stored: true });
    await publish;
    expect(h.refused('too_large')).toBe(0);
  });

  it('closes a connection that sends a malformed remaining length', async () => {
    const h = harness();
    await start(h);
    const socket = netConnect(h.broker.port()!, '127.0.0.1');
    await new Promise((resolve) => socket.once('connect', resolve));
    const closed = new Promise<void>((resolve) => socket.once('close', () => resolve()));
    socket.write(Buffer.from([0x10, 0xff, 0xff, 0xff, 0xff, 0x01]));
    await closed;
    expect(h.refused('malformed')).toBe(1);
  });

  it('keeps no retained message of a device publishing thousands to topics it may not use', async () => {
    const h = harness();
    const url = await start(h);
    const publisher = await device(url);
    const payload = Buffer.alloc(10 * 1024, 0x61);
    for (let batch = 0; batch < 20; batch++) {
      await Promise.all(Array.from({ length: 100 }, (_, i) => publisher.publishAsync(`alerts/red/forged-${batch * 100 + i}`, payload, { qos: 1, retain: true })));
    }
    expect(h.rejected).toHaveLength(2000);
    expect(h.rejected[0]!.rejection.reason).toBe('bad_topic');
    expect(h.broker.retainedStore()).toEqual({ messages: 0, bytes: 0 });
  });

  it('keeps at most broker.retained.max_messages retained messages, and drops the rest', async () => {
    const h = harness({}, { retained: { max_messages: 2 } });
    const url = await start(h);
    for (const id of ['dau-bridge-001', 'dau-slope-002', 'dau-slope-003']) {
      const d = await device(url, SECRET, id);
      await d.publishAsync(`status/${id}`, 'online', { qos: 1, retain: true });
    }
    expect(h.broker.retainedStore().messages).toBe(2);
    expect(h.metrics.counter('watchpost_mqtt_retained_dropped_total', '').get()).toBe(1);
    // A new value for a topic already retained replaces it within the limits.
    const bridge = await device(url);
    await bridge.publishAsync('status/dau-bridge-001', 'offline', { qos: 1, retain: true });
    expect(h.broker.retainedStore().messages).toBe(2);
    const later = await device(url, SECRET, 'display-001');
    const received: string[] = [];
    later.on('message', (topic, payload) => received.push(`${topic} ${payload.toString()}`));
    await later.subscribeAsync('status/#', { qos: 1 });
    await expect.poll(() => received.length).toBe(2);
    expect(received.sort()).toEqual(['status/dau-bridge-001 offline', 'status/dau-slope-002 online']);
  });

  it('refuses a client id held by another device (CONNACK 2); the holder stays connected and keeps its session', async () => {
    const h = harness();
    const url = await start(h);
    const session = { clientId: 'gateway-7', clean: false };
    const holder = await device(url, SECRET, 'dau-bridge-001', session);
    await holder.subscribeAsync('errors/dau-bridge-001', { qos: 1 });
    const holderClosed = vi.fn();
    holder.on('close', holderClosed);

    await expect(device(url, SECRET, 'display-001', session)).rejects.toThrow(/Identifier rejected/);
    expect(h.refused('client_id_taken')).toBe(1);
    expect(holder.connected).toBe(true);
    expect(holderClosed).not.toHaveBeenCalled();
    // Still the holder's session: a message for it arrives on this connection.
    const received: string[] = [];
    holder.on('message', (topic, payload) => received.push(`${topic} ${payload.toString()}`));
    h.broker.publish('errors/dau-bridge-001', 'first', { qos: 1 });
    await expect.poll(() => received).toEqual(['errors/dau-bridge-001 first']);

    // Offline, the session queues; another device presenting the id still gets neither it nor the queue.
    await holder.endAsync();
    h.broker.publish('errors/dau-bridge-001', 'queued', { qos: 1 });
    await expect(device(url, SECRET, 'display-001', session)).rejects.toThrow(/Identifier rejected/);
    expect(h.refused('client_id_taken')).toBe(2);

    // The holder takes its session back, queued message included.
    const back = await device(url, SECRET, 'dau-bridge-001', session);
    const again: string[] = [];
    back.on('message', (topic, payload) => again.push(`${topic} ${payload.toString()}`));
    await expect.poll(() => again).toEqual(['errors/dau-bridge-001 queued']);
    // ...and may take its own connection over (normal MQTT): the older one is closed.
    const backClosed = new Promise<void>((resolve) => back.once('close', () => resolve()));
    const takeover = await device(url, SECRET, 'dau-bridge-001', session);
    await backClosed;
    expect(takeover.connected).toBe(true);
    // A clean connection ends the session and the binding: the id is free for another device once it closes.
    await takeover.endAsync();
    const clean = await device(url, SECRET, 'dau-bridge-001', { clientId: 'gateway-7', clean: true });
    await clean.endAsync();
    const other = await device(url, SECRET, 'display-001', { clientId: 'gateway-7', clean: true });
    expect(other.connected).toBe(true);
  });

  it('bounds the persistent sessions one device holds under distinct client ids', async () => {
    const h = harness({}, { persistent_sessions_per_device: 2 });
    const url = await start(h);
    for (const id of ['p-1', 'p-2']) await (await device(url, SECRET, 'dau-bridge-001', { clientId: id, clean: false })).endAsync();
    await expect(device(url, SECRET, 'dau-bridge-001', { clientId: 'p-3', clean: false })).rejects.toThrow(/Identifier rejected/);
    // Its existing sessions and clean connections are still fine.
    expect((await device(url, SECRET, 'dau-bridge-001', { clientId: 'p-1', clean: false })).connected).toBe(true);
    expect((await device(url, SECRET, 'dau-bridge-001', { clientId: 'p-3', clean: true })).connected).toBe(true);
  });
});
