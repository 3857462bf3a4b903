/**
 * The RabbitMQ side of cluster mode against a real RabbitMQ 3.10: confirms, order, the single
 * active consumer hand-over, redelivery, an outage and bad messages.
 */
import amqp from 'amqplib';
import { pino } from 'pino';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { Reading } from '../ingest/reading.js';
import { silentLogger } from '../lib/logger.js';
import { freePort, waitFor } from '../test/support/binaries.js';
import { rabbitmqAvailable, startRabbitMQ, type RabbitServer } from '../test/support/rabbitmq.js';
import { AmqpConnection, type AmqpConnectionOptions } from './amqp-connection.js';
import { AMQP_ERROR_CODES, AmqpError } from './amqp-errors.js';
import type { PartitionMessage } from './messages.js';
import { PartitionConsumer } from './partition-consumer.js';
import { queueName } from './partitions.js';
import { ReadingPublisher } from './reading-publisher.js';

const PARTITIONS = 8;
const logger = process.env.AMQP_TEST_LOG ? pino({ level: 'debug' }) : silentLogger();

const reading = (seq: number, assetId = 'asset-1'): Reading => ({
  assetId,
  sensorId: 's1',
  assetType: 'bridge',
  street: '龙城街道',
  metric: 'strain',
  value: seq,
  ts: 1_700_000_000_000 + seq,
});
const message = (seq: number, assetId?: string): PartitionMessage => ({ v: 1, kind: 'readings', instance: 'wp-test', readings: [reading(seq, assetId)] });
const seqOf = (m: PartitionMessage): number => (m.kind === 'readings' ? m.readings[0]!.value : -1);

describe.skipIf(!rabbitmqAvailable)('cluster over RabbitMQ', () => {
  let server: RabbitServer;
  const cleanups: Array<() => Promise<void>> = [];

  beforeAll(async () => {
    server = await startRabbitMQ();
  }, 120_000);

  afterEach(async () => {
    for (const cleanup of cleanups.splice(0).reverse()) await cleanup().catch(() => undefined);
  });

  afterAll(async () => {
    await server?.destroy();
  });

  async function connection(overrides: Partial<AmqpConnectionOptions> = {}): Promise<AmqpConnection> {
    const c = new AmqpConnection({ url: server.url, partitions: PARTITIONS, instanceId: 'wp-test', logger, reconnectMaxMs: 500, ...overrides });
    await c.start();
    cleanups.push(() => c.stop());
    return c;
  }

  async function publisher(c: AmqpConnection, confirmTimeoutMs?: number): Promise<ReadingPublisher> {
    const p = new ReadingPublisher(c, { logger, ...(confirmTimeoutMs ? { confirmTimeoutMs } : {}) });
    await p.start();
    cleanups.push(() => p.stop());
    return p;
  }

  function consumer(c: AmqpConnection, options: { prefetch?: number; retryInitialMs?: number } = {}): PartitionConsumer {
    const k = new PartitionConsumer(c, { logger, retryInitialMs: 200, ...options });
    cleanups.push(() => k.stop());
    return k;
  }

  /** Empties a queue left over by an earlier test. */
  async function purge(partition: number): Promise<void> {
    const raw = await amqp.connect(server.url);
    const channel = await raw.createChannel();
    await channel.purgeQueue(queueName(partition));
    await raw.close();
  }

  it('declares durable quorum queues with a single active consumer, idempotently', async () => {
    await connection();
    await connection();
    const raw = await amqp.connect(server.url);
    const channel = await raw.createChannel();
    for (let p = 0; p < PARTITIONS; p++) expect((await channel.checkQueue(queueName(p))).queue).toBe(queueName(p));
    // Declaring with other arguments is refused: the arguments are what we asked for.
    channel.on('error', () => undefined);
    await expect(channel.assertQueue(queueName(0), { durable: true, arguments: { 'x-queue-type': 'classic' } })).rejects.toThrow(/PRECONDITION_FAILED/);
    await raw.close().catch(() => undefined);
  });

  it('names the broker and hides the password when it cannot be reached at start', async () => {
    const port = await freePort();
    const url = `amqp://watchpost:hunter2secret@127.0.0.1:${port}/`;
    const c = new AmqpConnection({ url, partitions: 1, instanceId: 'wp-test', logger, startTimeoutMs: 300 });
    const started = Date.now();
    const err = (await c.start().catch((e: unknown) => e)) as AmqpError;
    expect(Date.now() - started).toBeLessThan(5000);
    expect(err).toBeInstanceOf(AmqpError);
    expect(err.code).toBe(AMQP_ERROR_CODES.UNAVAILABLE);
    expect(err.message).toContain(`127.0.0.1:${port}`);
    expect(err.message).toMatch(/ECONNREFUSED/);
    const status = c.status();
    expect(status.connected).toBe(false);
    expect(JSON.stringify(status)).not.toContain('hunter2secret');
    expect(status.url).toBe(`amqp://[redacted]@127.0.0.1:${port}/`);
  });

  it('a wrong password is an error at start, without the password', async () => {
    const url = server.url.replace(/:[0-9a-f]+@/, ':wrongpassword@');
    const c = new AmqpConnection({ url, partitions: 1, instanceId: 'wp-test', logger, startTimeoutMs: 10_000 });
    const started = Date.now();
    const err = (await c.start().catch((e: unknown) => e)) as AmqpError;
    expect(err.code).toBe(AMQP_ERROR_CODES.LOGIN_REFUSED);
    expect(err.message).toContain('refused the login of user "watchpost"');
    expect(err.message).toMatch(/ACCESS.REFUSED/);
    // Not retried until the start timeout: the broker answered.
    expect(Date.now() - started).toBeLessThan(3000);
    expect(err.message).toContain(`127.0.0.1:${server.port}`);
    expect(err.message + JSON.stringify(c.status())).not.toContain('wrongpassword');
  });

  it('round trip: a confirmed publish reaches the consumer of its partition', async () => {
    const c = await connection();
    for (let p = 0; p < PARTITIONS; p++) await purge(p);
    const pub = await publisher(c);
    const sub = consumer(c);
    const received = new Map<number, PartitionMessage[]>();
    for (let p = 0; p < PARTITIONS; p++) {
      await sub.consume(p, async (m) => {
        received.set(p, [...(received.get(p) ?? []), m]);
      });
    }
    const sent: Array<[number, PartitionMessage]> = [
      [0, message(1)],
      [3, message(2, 'other')],
      [7, { v: 1, kind: 'presence', instance: 'wp-test', deviceId: 'dev-1', status: 'online', at: 1_700_000_000_000 }],
    ];
    await Promise.all(sent.map(([p, m]) => pub.publish(p, m)));
    expect(pub.stats()).toEqual({ confirmed: 3, failed: 0, inFlight: 0 });
    await waitFor('three messages', async () => ([...received.values()].flat().length === 3 ? true : undefined), 10_000);
    expect([...received.entries()].sort((a, b) => a[0] - b[0])).toEqual(sent.map(([p, m]) => [p, [m]]));
    await waitFor('acks', async () => (sub.status().reduce((n, s) => n + s.handled, 0) === 3 ? true : undefined), 10_000);
  });

  it('a publish to a partition without a queue is refused, not confirmed into nothing', async () => {
    const c = await connection();
    const pub = await publisher(c);
    // The cluster declared 0..7; 9 has no queue.
    const err = (await pub.publish(9, message(1)).catch((e: unknown) => e)) as AmqpError;
    expect(err).toBeInstanceOf(AmqpError);
    expect(err.code).toBe(AMQP_ERROR_CODES.UNROUTABLE);
    expect(err.message).toContain('watchpost.readings.9');
    await pub.publish(0, message(2));
    expect(pub.stats()).toEqual({ confirmed: 1, failed: 1, inFlight: 0 });
    await purge(0);
  });

  it('hands one partition to the handler strictly in order, one at a time, also across a handler failure', async () => {
    const c = await connection();
    await purge(1);
    const pub = await publisher(c);
    const N = 400;
    await Promise.all(Array.from({ length: N }, (_, i) => pub.publish(1, message(i))));
    const handled: number[] = [];
    const calls: number[] = [];
    let running = 0;
    let maxRunning = 0;
    let failedOnce = false;
    const sub = consumer(c, { prefetch: 50 });
    await sub.consume(1, async (m) => {
      running += 1;
      maxRunning = Math.max(maxRunning, running);
      calls.push(seqOf(m));
      await new Promise((r) => setImmediate(r));
      running -= 1;
      if (seqOf(m) === 123 && !failedOnce) {
        failedOnce = true;
        throw new Error('storage down for a moment');
      }
      handled.push(seqOf(m));
    });
    await waitFor(`${N} handled`, async () => (handled.length >= N ? true : undefined), 30_000);
    expect(handled).toEqual(Array.from({ length: N }, (_, i) => i));
    expect(maxRunning).toBe(1);
    // 123 was offered twice: it failed, the partition went back to the queue and resumed at 123.
    expect(calls.filter((s) => s === 123)).toHaveLength(2);
    expect(calls.indexOf(123)).toBe(123);
    expect(calls.slice(123, 125)).toEqual([123, 123]);
    await waitFor('acks', async () => (sub.status()[0]?.handled === N ? true : undefined), 10_000);
  }, 60_000);

  it('batches come in order and are acked as a whole', async () => {
    const c = await connection();
    await purge(2);
    const pub = await publisher(c);
    const N = 300;
    await Promise.all(Array.from({ length: N }, (_, i) => pub.publish(2, message(i))));
    const seen: number[] = [];
    const sizes: number[] = [];
    const sub = consumer(c, { prefetch: 100 });
    await sub.consumeBatches(
      2,
      async (batch) => {
        sizes.push(batch.length);
        seen.push(...batch.map(seqOf));
        await new Promise((r) => setTimeout(r, 5));
      },
      40,
    );
    await waitFor(`${N} in batches`, async () => (seen.length >= N ? true : undefined), 30_000);
    expect(seen).toEqual(Array.from({ length: N }, (_, i) => i));
    expect(Math.max(...sizes)).toBeLessThanOrEqual(40);
    expect(sizes.length).toBeLessThan(N);
    await waitFor('acks', async () => (sub.status()[0]?.handled === N ? true : undefined), 10_000);
  }, 60_000);

  it('single active consumer: of two consumers only one receives; on its cancel the other takes over, nothing lost or repeated', async () => {
    const a = await connection({ instanceId: 'wp-a' });
    await purge(3);
    const b = await connection({ instanceId: 'wp-b' });
    const pub = await publisher(a);
    const byA: number[] = [];
    const byB: number[] = [];
    const subA = consumer(a, { prefetch: 20 });
    const subB = consumer(b, { prefetch: 20 });
    await subA.consume(3, async (m) => {
      byA.push(seqOf(m));
      await new Promise((r) => setTimeout(r, 2));
    });
    await subB.consume(3, async (m) => {
      byB.push(seqOf(m));
    });
    const N = 300;
    await Promise.all(Array.from({ length: N }, (_, i) => pub.publish(3, message(i))));
    await waitFor('A handles 100', async () => (byA.length >= 100 ? true : undefined), 30_000);
    expect(byB).toEqual([]);
    await subA.cancel(3);
    const handledByA = byA.length;
    await waitFor('B takes over the rest', async () => (byA.length + byB.length >= N ? true : undefined), 30_000);
    // Nothing after the cancel reached A; B has exactly the rest, in order.
    expect(byA.length).toBe(handledByA);
    expect([...byA, ...byB]).toEqual(Array.from({ length: N }, (_, i) => i));
    await waitFor('B acks', async () => (subB.status()[0]?.handled === N - handledByA ? true : undefined), 10_000);
  }, 60_000);

  it('a consumer that dies without acking: its messages are delivered to the next one', async () => {
    const a = await connection({ instanceId: 'wp-a' });
    await purge(4);
    const b = await connection({ instanceId: 'wp-b' });
    const pub = await publisher(b);
    const gotA: number[] = [];
    const subA = consumer(a, { prefetch: 10 });
    let release = () => undefined as void;
    const hang = new Promise<void>((r) => (release = r));
    cleanups.push(async () => release());
    await subA.consume(4, async (m) => {
      gotA.push(seqOf(m));
      await hang; // never acked while the instance lives
    });
    const byB: number[] = [];
    const subB = consumer(b);
    await subB.consume(4, async (m) => {
      byB.push(seqOf(m));
    });
    await Promise.all(Array.from({ length: 20 }, (_, i) => pub.publish(4, message(i))));
    await waitFor('A got the first', async () => (gotA.length === 1 ? true : undefined), 10_000);
    expect(byB).toEqual([]);
    // The instance dies: its connection drops without a goodbye.
    (a.model()!.connection as unknown as { stream: { destroy(error: Error): void } }).stream.destroy(new Error('killed'));
    await waitFor('B got all', async () => (byB.length >= 20 ? true : undefined), 30_000);
    expect(byB).toEqual(Array.from({ length: 20 }, (_, i) => i));
    expect(gotA).toEqual([0]);
  }, 60_000);

  it('a bad message is dropped and acked; the partition goes on', async () => {
    const c = await connection();
    await purge(5);
    const pub = await publisher(c);
    const raw = await amqp.connect(server.url);
    const channel = await raw.createConfirmChannel();
    channel.sendToQueue(queueName(5), Buffer.from('{"v":1,"kind":"readings"'), { persistent: true });
    channel.sendToQueue(queueName(5), Buffer.from(JSON.stringify({ v: 9 })), { persistent: true });
    await channel.waitForConfirms();
    await raw.close();
    await pub.publish(5, message(42));
    const got: number[] = [];
    const sub = consumer(c);
    await sub.consume(5, async (m) => {
      got.push(seqOf(m));
    });
    await waitFor('the good one', async () => (got.length === 1 ? true : undefined), 10_000);
    expect(got).toEqual([42]);
    await waitFor('bad ones counted', async () => (sub.status()[0]?.bad === 2 && sub.status()[0]?.handled === 3 ? true : undefined), 10_000);
    const check = await amqp.connect(server.url);
    const ch = await check.createChannel();
    expect((await ch.checkQueue(queueName(5))).messageCount).toBe(0);
    await check.close();
  });

  it('RabbitMQ down: publish is refused at once; after it is back, publishing and consuming resume', async () => {
    const c = await connection();
    await purge(6);
    const pub = await publisher(c, 3000);
    const got: number[] = [];
    let slow = false;
    const sub = consumer(c);
    await sub.consume(6, async (m) => {
      if (slow) await new Promise((r) => setTimeout(r, 10));
      got.push(seqOf(m));
    });
    await pub.publish(6, message(1));
    await waitFor('first', async () => (got.length === 1 ? true : undefined), 10_000);
    // Confirmed but mostly not yet consumed when the broker stops: they must survive its restart.
    slow = true;
    await Promise.all(Array.from({ length: 100 }, (_, i) => pub.publish(6, message(10 + i))));

    // Publishes in flight as the broker goes down: each one is either confirmed or refused, none hangs.
    const inFlight = Array.from({ length: 300 }, (_, i) =>
      pub.publish(6, message(110 + i)).then(
        () => 110 + i,
        (e: unknown) => e as AmqpError,
      ),
    );
    const stopping = server.stop();
    const outcomes = await Promise.all(inFlight);
    const confirmed = [...Array.from({ length: 100 }, (_, i) => 10 + i), ...outcomes.filter((o): o is number => typeof o === 'number')];
    const consumedBeforeStop = got.length;
    for (const o of outcomes) if (typeof o !== 'number') expect([o.code, o.canRetry()]).toEqual([expect.stringMatching(/^AMQP_(UNAVAILABLE|CHANNEL_CLOSED|TIMEOUT)$/), true]);
    await waitFor('disconnected', async () => (c.status().connected ? undefined : true), 30_000);
    const started = Date.now();
    const err = (await pub.publish(6, message(2)).catch((e: unknown) => e)) as AmqpError;
    expect(Date.now() - started).toBeLessThan(100);
    expect(err).toBeInstanceOf(AmqpError);
    expect(err.code).toBe(AMQP_ERROR_CODES.UNAVAILABLE);
    expect(err.canRetry()).toBe(true);
    expect(c.status().error).toBeTruthy();
    expect(JSON.stringify(c.status())).not.toContain(new URL(server.url).password);
    expect(sub.status()[0]?.consuming).toBe(false);
    await stopping;

    await server.start();
    await waitFor('reconnected', async () => (c.status().connected ? true : undefined), 30_000);
    // The publish channel and the consumer come back by themselves.
    await waitFor('publish works again', () => pub.publish(6, message(3)).then(() => true), 15_000, 100);
    await waitFor('consumed again', async () => (got.includes(3) ? true : undefined), 30_000);
    expect(consumedBeforeStop).toBeLessThan(90);
    // Every confirmed message arrived (some may twice: handled, but the ack was lost with the broker); the refused one never.
    for (const seq of confirmed) expect(got).toContain(seq);
    expect(got).not.toContain(2);
    expect(new Set(got)).toEqual(new Set([1, 3, ...confirmed, ...got.filter((s) => s >= 110 && s < 410)]));
    expect(got.at(-1)).toBe(3);
    expect(sub.status()[0]?.consuming).toBe(true);
  }, 120_000);

  it('connections closed by the broker twice while a device publishes: all arrive, first copies in order', async () => {
    const c = await connection();
    await purge(5);
    const pub = await publisher(c, 3000);
    const got: number[] = [];
    const sub = consumer(c);
    await sub.consume(5, async (m) => {
      got.push(seqOf(m));
    });
    const N = 300;
    let refused = 0;
    // A device: sends k again until it is confirmed, then k+1.
    const device = (async () => {
      for (let k = 0; k < N; k++) {
        for (;;) {
          try {
            await pub.publish(5, message(k));
            break;
          } catch (err) {
            expect((err as AmqpError).canRetry()).toBe(true);
            refused += 1;
            await new Promise((r) => setTimeout(r, 20));
          }
        }
        await new Promise((r) => setTimeout(r, 5));
      }
    })();
    for (let i = 0; i < 2; i++) {
      await waitFor('progress', async () => (got.length > (i + 1) * 50 ? true : undefined), 30_000);
      await server.ctl(['close_all_connections', 'test']);
    }
    await device;
    await waitFor('all consumed', async () => (new Set(got).size === N ? true : undefined), 30_000);
    expect([...new Set(got)]).toEqual(Array.from({ length: N }, (_, k) => k));
    expect(refused).toBeGreaterThan(0);
  }, 120_000);

  it('a memory alarm blocks publishers: publish is refused at once, and works again when it clears', async () => {
    const c = await connection();
    const pub = await publisher(c, 2000);
    await pub.publish(0, message(1));
    await server.ctl(['set_vm_memory_high_watermark', '0']);
    try {
      // RabbitMQ blocks a connection when it next publishes: that publish waits for its confirm in vain.
      await waitFor(
        'blocked',
        async () => {
          if (c.status().blocked) return true;
          const first = (await pub.publish(0, message(9)).catch((e: unknown) => e)) as AmqpError | undefined;
          expect([undefined, AMQP_ERROR_CODES.TIMEOUT, AMQP_ERROR_CODES.BLOCKED]).toContain(first?.code);
          return c.status().blocked ? true : undefined;
        },
        30_000,
      );
      const started = Date.now();
      const err = (await pub.publish(0, message(2)).catch((e: unknown) => e)) as AmqpError;
      expect(Date.now() - started).toBeLessThan(100);
      expect(err.code).toBe(AMQP_ERROR_CODES.BLOCKED);
      expect(err.canRetry()).toBe(true);
    } finally {
      await server.ctl(['set_vm_memory_high_watermark', '0.4']);
    }
    await waitFor('unblocked', async () => (c.status().blocked ? undefined : true), 30_000);
    await pub.publish(0, message(3));
    await purge(0);
  }, 90_000);

  it('cancel with waitMs abandons a handler that hangs; its message goes to the next consumer', async () => {
    const a = await connection({ instanceId: 'wp-a' });
    const b = await connection({ instanceId: 'wp-b' });
    await purge(2);
    const pub = await publisher(a);
    let release = () => undefined as void;
    const hang = new Promise<void>((r) => (release = r));
    cleanups.push(async () => release());
    const gotA: number[] = [];
    const subA = consumer(a);
    await subA.consume(2, async (m) => {
      gotA.push(seqOf(m));
      await hang;
    });
    const byB: number[] = [];
    const subB = consumer(b);
    await subB.consume(2, async (m) => {
      byB.push(seqOf(m));
    });
    await Promise.all([0, 1, 2].map((i) => pub.publish(2, message(i))));
    await waitFor('A holds the first', async () => (gotA.length === 1 ? true : undefined), 10_000);
    const started = Date.now();
    await subA.cancel(2, { waitMs: 300 });
    expect(Date.now() - started).toBeLessThan(5000);
    await waitFor('B has all three', async () => (byB.length === 3 ? true : undefined), 10_000);
    expect(byB).toEqual([0, 1, 2]);
    release();
  });

  it('benchmark: confirmed publishes and consumed messages per second', async () => {
    const c = await connection();
    await purge(7);
    const pub = await publisher(c);
    const N = 5000;
    const perMessage = 10;
    const body = (i: number): PartitionMessage => ({ v: 1, kind: 'readings', instance: 'wp-test', readings: Array.from({ length: perMessage }, (_, k) => reading(i * perMessage + k)) });
    const t0 = performance.now();
    await Promise.all(Array.from({ length: N }, (_, i) => pub.publish(7, body(i))));
    const publishMs = performance.now() - t0;
    let count = 0;
    const sub = consumer(c, { prefetch: 256 });
    const t1 = performance.now();
    await sub.consumeBatches(7, async (batch) => {
      count += batch.length;
    });
    await waitFor('all consumed', async () => (count >= N ? true : undefined), 60_000, 5);
    const consumeMs = performance.now() - t1;
    const oneAtATime = { count: 0 };
    await sub.cancel(7);
    await Promise.all(Array.from({ length: 1000 }, (_, i) => pub.publish(7, body(i))));
    const t2 = performance.now();
    await sub.consume(7, async () => {
      oneAtATime.count += 1;
    });
    await waitFor('all consumed one at a time', async () => (oneAtATime.count >= 1000 ? true : undefined), 60_000, 5);
    const singleMs = performance.now() - t2;
    await sub.cancel(7);
    // One publish at a time, as a single device's messages are: the confirm's round trip.
    const latencies: number[] = [];
    for (let i = 0; i < 200; i++) {
      const t = performance.now();
      await pub.publish(7, body(i));
      latencies.push(performance.now() - t);
    }
    latencies.sort((x, y) => x - y);
    console.log(
      `[bench] ${N} confirmed publishes (${perMessage} readings each) in ${publishMs.toFixed(0)} ms = ${Math.round((N / publishMs) * 1000)}/s; ` +
        `consumed in batches ${Math.round((N / consumeMs) * 1000)}/s; one at a time ${Math.round((1000 / singleMs) * 1000)}/s; ` +
        `sequential publish confirm p50 ${latencies[100]!.toFixed(1)} ms, p99 ${latencies[198]!.toFixed(1)} ms`,
    );
    expect(count).toBe(N);
    expect(oneAtATime.count).toBe(1000);
    await purge(7);
  }, 120_000);
});
