import { execFileSync } from 'node:child_process';
import amqp from 'amqplib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { rabbitmqAvailable, startRabbitMQ, type RabbitServer } from './support/rabbitmq.js';

describe.skipIf(!rabbitmqAvailable)('private RabbitMQ', () => {
  let server: RabbitServer;
  beforeAll(async () => {
    server = await startRabbitMQ();
  }, 120_000);
  afterAll(async () => {
    await server?.destroy();
  });

  it('keeps a durable quorum queue and its messages across stop() and start()', async () => {
    const queue = 'support.check';
    let connection = await amqp.connect(server.url);
    const channel = await connection.createConfirmChannel();
    await channel.assertQueue(queue, { durable: true, arguments: { 'x-queue-type': 'quorum' } });
    channel.sendToQueue(queue, Buffer.from('kept'), { persistent: true });
    await channel.waitForConfirms();
    await connection.close();

    await server.stop();
    await expect(amqp.connect(server.url, { timeout: 1000 })).rejects.toThrow();
    await server.start();

    connection = await amqp.connect(server.url);
    const again = await connection.createChannel();
    const message = await again.get(queue, { noAck: true });
    expect(message && message.content.toString()).toBe('kept');
    await connection.close();
  }, 120_000);

  it('runs rabbitmqctl against its own node', async () => {
    const out = await server.ctl(['list_users', '--quiet']);
    expect(out).toMatch(/^watchpost\s/m);
    expect(out).not.toMatch(/^guest\s/m);
  }, 60_000);

  it('refuses a wrong password', async () => {
    const wrong = server.url.replace(/:[0-9a-f]+@/, ':wrong@');
    await expect(amqp.connect(wrong)).rejects.toThrow(/ACCESS_REFUSED|403/);
  });

  it('leaves no beam.smp of its own after destroy()', async () => {
    const running = () => execFileSync('sh', ['-c', 'pgrep -a beam.smp || true'], { encoding: 'utf8' });
    expect(running()).toContain(`-home ${server.dir} `);
    await server.destroy();
    expect(running()).not.toContain(`-home ${server.dir} `);
  }, 60_000);
});
