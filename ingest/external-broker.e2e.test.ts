/**
 * External-broker mode against a real mosquitto: Watchpost's PUBACK to the broker waits until
 * the readings are durable, so a message not yet stored when Watchpost goes away is delivered
 * again to the next Watchpost on the same session, and one that was stored is not. A message
 * whose handler fails neither blocks the ones behind it nor gets lost.
 */
import mqtt from 'mqtt';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { silentLogger } from '../lib/logger.js';
import { externalBrokerSchema } from './config.js';
import { ExternalBroker } from './external-broker.js';
import type { IngestOutcome } from './ingest-service.js';
import type { InboundHandlers } from './message-bus.js';
import { mosquittoBinary, startMosquitto, type Mosquitto } from '../test/support/mosquitto.js';

const TOPIC = 'telemetry/lg-bridge-001/strain-01';

interface Call {
  payload: string;
  resolve: (outcome: IngestOutcome) => void;
}

function consumer(
  url: string,
  clientId: string,
  answer?: (payload: string, attempt: number) => IngestOutcome | undefined,
  extra: Record<string, unknown> = {},
  deps: { redeliverAfterMs?: number } = {},
) {
  const calls: Call[] = [];
  const attempts = new Map<string, number>();
  const handlers: InboundHandlers = {
    telemetry: (_source, _topic, _asset, _sensor, payload) =>
      new Promise<IngestOutcome>((resolve) => {
        const text = payload.toString();
        const attempt = (attempts.get(text) ?? 0) + 1;
        attempts.set(text, attempt);
        calls.push({ payload: text, resolve });
        const outcome = answer?.(text, attempt);
        if (outcome) resolve(outcome);
      }),
    status: () => undefined,
    rejected: () => undefined,
  };
  const broker = new ExternalBroker({ config: externalBrokerSchema.parse({ url, client_id: clientId, ...extra }), handlers, logger: silentLogger(), ...deps });
  return { broker, calls };
}

const stored: IngestOutcome = { accepted: 1, rejected: 0, stored: true };
const refused: IngestOutcome = { accepted: 0, rejected: 0, stored: false };

describe.skipIf(!mosquittoBinary)('ExternalBroker acknowledgements against mosquitto', () => {
  let mosquitto: Mosquitto;

  beforeAll(async () => {
    mosquitto = await startMosquitto();
  });
  afterAll(async () => {
    await mosquitto?.stop();
  });

  async function publish(payload: string) {
    const device = await mqtt.connectAsync(mosquitto.url, { protocolVersion: 4, reconnectPeriod: 0 });
    await device.publishAsync(TOPIC, payload, { qos: 1 });
    await device.endAsync();
  }

  it('holds the PUBACK until storage has the message: unstored messages come back to the next session, stored ones do not', async () => {
    const first = consumer(mosquitto.url, 'wp-ack-test');
    await first.broker.start();
    await publish('m1');
    await expect.poll(() => first.calls.map((c) => c.payload)).toEqual(['m1']);
    // Watchpost goes away before m1 is durable.
    await first.broker.stop();

    const second = consumer(mosquitto.url, 'wp-ack-test', () => stored);
    await second.broker.start();
    await expect.poll(() => second.calls.map((c) => c.payload)).toEqual(['m1']);
    await second.broker.stop();

    await publish('m2');
    const third = consumer(mosquitto.url, 'wp-ack-test', () => stored);
    await third.broker.start();
    await expect.poll(() => third.calls.map((c) => c.payload)).toEqual(['m2']);
    await third.broker.stop();
  });

  it('keeps a message the spool refuses unacknowledged and tries it again until it is stored', async () => {
    const c = consumer(mosquitto.url, 'wp-full-test', (_payload, attempt) => (attempt < 3 ? refused : stored));
    await c.broker.start();
    await publish('m3');
    await expect.poll(() => c.calls.length, { timeout: 5000 }).toBe(3);
    await c.broker.stop();
    await publish('m4');
    const next = consumer(mosquitto.url, 'wp-full-test', () => stored);
    await next.broker.start();
    await expect.poll(() => next.calls.map((x) => x.payload)).toEqual(['m4']);
    await next.broker.stop();
  });

  it('stores several messages at once but acknowledges each only once it and every earlier one are stored', async () => {
    const first = consumer(mosquitto.url, 'wp-pipeline-test');
    await first.broker.start();
    for (const m of ['p1', 'p2', 'p3', 'p4', 'p5']) await publish(m);
    // All five are handed to storage before any is stored: one fdatasync can commit them together.
    await expect.poll(() => first.calls.map((c) => c.payload)).toEqual(['p1', 'p2', 'p3', 'p4', 'p5']);
    // p1, p2 and p4 are stored; p3 is not, so p4 waits behind it.
    for (const i of [0, 1, 3]) first.calls[i]!.resolve(stored);
    await first.broker.stop();

    const second = consumer(mosquitto.url, 'wp-pipeline-test', () => stored);
    await second.broker.start();
    await expect.poll(() => second.calls.map((c) => c.payload)).toEqual(['p3', 'p4', 'p5']);
    await second.broker.stop();
  });

  it('tries a message whose handler fails again, holding the acknowledgements behind it, until it is stored', async () => {
    const c = consumer(mosquitto.url, 'wp-handler-retry', (payload, attempt) => {
      if (payload === 'f1' && attempt < 3) throw new Error('injected handler failure');
      return stored;
    });
    await c.broker.start();
    await publish('f1');
    await publish('f2');
    await expect.poll(() => c.calls.map((x) => x.payload), { timeout: 10_000 }).toEqual(['f1', 'f2', 'f1', 'f1']);
    await c.broker.stop();

    // Both were acknowledged: the next session gets only what came after.
    await publish('f3');
    const next = consumer(mosquitto.url, 'wp-handler-retry', () => stored);
    await next.broker.start();
    await expect.poll(() => next.calls.map((x) => x.payload)).toEqual(['f3']);
    await next.broker.stop();
  });

  it('releases a message whose handler keeps failing: later messages are acknowledged and stored, and the broker delivers it again', async () => {
    // One message in flight at a time: a slot that is never freed would stop everything behind it.
    const c = consumer(
      mosquitto.url,
      'wp-handler-release',
      (payload, attempt) => {
        if (payload === 'bad' && attempt <= 4) throw new Error('injected handler failure');
        return stored;
      },
      { max_inflight: 1 },
      { redeliverAfterMs: 300 },
    );
    await c.broker.start();
    for (const m of ['bad', 'g1', 'g2']) await publish(m);
    // Four attempts, released; g1 and g2 are taken and stored; after the reconnect the broker delivers 'bad' again, and it is stored.
    await expect.poll(() => c.calls.map((x) => x.payload), { timeout: 20_000 }).toEqual(['bad', 'bad', 'bad', 'bad', 'g1', 'g2', 'bad']);
    await c.broker.stop();

    // Everything was acknowledged in the end: nothing comes back to the next session but what is new.
    await publish('h1');
    const next = consumer(mosquitto.url, 'wp-handler-release', () => stored);
    await next.broker.start();
    await expect.poll(() => next.calls.map((x) => x.payload)).toEqual(['h1']);
    await next.broker.stop();
  });

  it('hands at most max_inflight unstored messages to storage and takes the next as one is stored', async () => {
    const c = consumer(mosquitto.url, 'wp-window-test', undefined, { max_inflight: 2 });
    await c.broker.start();
    for (const m of ['w1', 'w2', 'w3', 'w4']) await publish(m);
    await expect.poll(() => c.calls.map((x) => x.payload)).toEqual(['w1', 'w2']);
    await new Promise((r) => setTimeout(r, 300));
    expect(c.calls.map((x) => x.payload)).toEqual(['w1', 'w2']);
    c.calls[1]!.resolve(stored);
    await expect.poll(() => c.calls.map((x) => x.payload)).toEqual(['w1', 'w2', 'w3']);
    for (const x of c.calls) x.resolve(stored);
    await expect.poll(() => c.calls.map((x) => x.payload)).toEqual(['w1', 'w2', 'w3', 'w4']);
    c.calls[3]!.resolve(stored);
    await c.broker.stop();

    const next = consumer(mosquitto.url, 'wp-window-test', () => stored);
    await next.broker.start();
    await publish('w5');
    await expect.poll(() => next.calls.map((x) => x.payload)).toEqual(['w5']);
    await next.broker.stop();
  });
});
