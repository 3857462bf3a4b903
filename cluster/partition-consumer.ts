/**
 * Consumes the partition queues this instance holds, one channel per partition.
 *
 * Order: the messages of one partition reach the handler strictly in queue order and one call at
 * a time: `consume` hands over one message per call, `consumeBatches` the messages that are
 * already buffered (up to `maxBatch`, in order) per call. A message is acked only after the
 * handler's promise for it resolved, and acks go out in delivery order.
 *
 * A handler that rejects is retried after a delay that grows with every consecutive failure:
 * after the delay the partition's channel is closed, which returns every unacked message of the
 * partition to the queue in order, and the partition is consumed again. Closing (not nacking
 * one by one) keeps the order: messages already on their way are returned with the rest.
 *
 * A message that is not a valid partition message is logged (size and reason, never its
 * contents) and acked, so it cannot stop the partition.
 *
 * The queues have a single active consumer: during a hand-over the other instance's consumer
 * waits until this one's channel closes. `cancel` lets the handler call in progress finish and
 * acks it, then closes the channel, which returns the unprocessed messages, in order, to the queue
 * for the next consumer. After a lost connection the partitions still held are consumed again
 * as soon as the connection is back (never while a handler call of the old channel still runs).
 */
import type { Channel, ChannelModel, ConsumeMessage } from 'amqplib';
import type { Logger } from '../lib/logger.js';
import type { AmqpConnection } from './amqp-connection.js';
import { decodeMessage, type PartitionMessage } from './messages.js';
import { queueName } from './partitions.js';

export type PartitionHandler = (message: PartitionMessage) => Promise<void>;
export type PartitionBatchHandler = (messages: PartitionMessage[]) => Promise<void>;

export interface PartitionConsumerOptions {
  logger: Logger;
  /** Unacked messages per partition (AMQP prefetch): bounds memory and redelivery after a crash. */
  prefetch?: number;
  /** Delay before the first retry after a handler failure; doubled per consecutive failure. */
  retryInitialMs?: number;
  retryMaxMs?: number;
}

export const DEFAULT_CONSUMER_OPTIONS = {
  prefetch: 64,
  retryInitialMs: 1_000,
  retryMaxMs: 30_000,
} as const;

export interface PartitionConsumerStatus {
  partition: number;
  /** A consumer is registered on the broker (it may be waiting as the single active consumer's second). */
  consuming: boolean;
  /** Messages acked after the handler resolved. */
  handled: number;
  /** Invalid messages logged and acked. */
  bad: number;
  /** Consecutive handler failures (0 when the last call succeeded). */
  failures: number;
}

interface Delivery {
  message: ConsumeMessage;
  channel: Channel;
}

interface Held {
  partition: number;
  handler: PartitionBatchHandler;
  maxBatch: number;
  channel: Channel | undefined;
  /** Delivered on `channel`, not yet given to the handler. */
  buffer: Delivery[];
  /** The last worker run; awaited before a new channel or a cancel completes. */
  worker: Promise<void> | undefined;
  working: boolean;
  opening: Promise<void> | undefined;
  cancelled: boolean;
  failures: number;
  handled: number;
  bad: number;
  retryTimer: NodeJS.Timeout | undefined;
  wake: (() => void) | undefined;
}

export class PartitionConsumer {
  private readonly options: Required<Omit<PartitionConsumerOptions, 'logger'>>;
  private readonly log: Logger;
  private readonly held = new Map<number, Held>();
  private unsubscribe: Array<() => void> = [];

  constructor(
    private readonly connection: AmqpConnection,
    options: PartitionConsumerOptions,
  ) {
    this.options = { ...DEFAULT_CONSUMER_OPTIONS, ...options };
    if (!Number.isInteger(this.options.prefetch) || this.options.prefetch < 1 || this.options.prefetch > 65_535) throw new RangeError('prefetch must be an integer from 1 to 65535');
    this.log = options.logger;
    this.unsubscribe = [
      this.connection.onConnected(() => {
        for (const held of this.held.values()) void this.open(held);
      }),
      this.connection.onDisconnected(() => {
        for (const held of this.held.values()) this.detach(held);
      }),
    ];
  }

  /** Consumes partition `p`, one message per handler call. Resolves once registered on the broker (or, while disconnected, at once: it is consumed on reconnection). */
  consume(partition: number, handler: PartitionHandler): Promise<void> {
    return this.hold(partition, 1, async (messages) => {
      for (const message of messages) await handler(message);
    });
  }

  /** Consumes partition `p`, handing over the buffered messages in order, up to `maxBatch` per call. */
  consumeBatches(partition: number, handler: PartitionBatchHandler, maxBatch = this.options.prefetch): Promise<void> {
    if (!Number.isInteger(maxBatch) || maxBatch < 1) throw new RangeError('maxBatch must be a positive integer');
    return this.hold(partition, maxBatch, handler);
  }

  /**
   * Stops consuming `p`: the handler call in progress finishes and is acked; the rest goes back
   * to the queue. With `waitMs`, a handler call still running after that long is abandoned: the
   * channel closes anyway, so its messages go to the next consumer (and its result is not acked).
   */
  async cancel(partition: number, options: { waitMs?: number } = {}): Promise<void> {
    const held = this.held.get(partition);
    if (!held) return;
    this.held.delete(partition);
    held.cancelled = true;
    clearTimeout(held.retryTimer);
    held.wake?.();
    await held.opening?.catch(() => undefined);
    if (options.waitMs === undefined) await held.worker;
    else if (held.worker) {
      let timer: NodeJS.Timeout | undefined;
      await Promise.race([held.worker, new Promise<void>((resolve) => (timer = setTimeout(resolve, options.waitMs)))]);
      clearTimeout(timer);
    }
    await this.closeChannel(held);
  }

  /** Cancels every partition. */
  async stop(): Promise<void> {
    for (const off of this.unsubscribe) off();
    this.unsubscribe = [];
    await Promise.all([...this.held.keys()].map((p) => this.cancel(p)));
  }

  /** The partitions held, in order. */
  partitions(): number[] {
    return [...this.held.keys()].sort((a, b) => a - b);
  }

  status(): PartitionConsumerStatus[] {
    return this.partitions().map((p) => {
      const h = this.held.get(p)!;
      return { partition: p, consuming: h.channel !== undefined, handled: h.handled, bad: h.bad, failures: h.failures };
    });
  }

  private async hold(partition: number, maxBatch: number, handler: PartitionBatchHandler): Promise<void> {
    queueName(partition);
    if (this.held.has(partition)) throw new Error(`partition ${partition} is consumed already`);
    const held: Held = {
      partition,
      handler,
      maxBatch,
      channel: undefined,
      buffer: [],
      worker: undefined,
      working: false,
      opening: undefined,
      cancelled: false,
      failures: 0,
      handled: 0,
      bad: 0,
      retryTimer: undefined,
      wake: undefined,
    };
    this.held.set(partition, held);
    await this.open(held);
  }

  /** Opens the partition's channel, after any opening still in progress (which may be for a lost connection). */
  private open(held: Held): Promise<void> {
    const opening = (held.opening ?? Promise.resolve())
      .then(() => this.openChannel(held))
      .finally(() => {
        if (held.opening === opening) held.opening = undefined;
      });
    held.opening = opening;
    return opening;
  }

  private async openChannel(held: Held): Promise<void> {
    // Never two handler calls of one partition at once: the old channel's call finishes first.
    await held.worker;
    const model = this.connection.model();
    if (held.cancelled || held.channel || !model) return;
    let channel: Channel;
    try {
      channel = await model.createChannel();
      channel.on('error', (err: Error) => this.log.warn({ partition: held.partition, err: this.connection.describe(err) }, 'partition channel error'));
      channel.on('close', () => this.channelClosed(held, channel, model));
      await channel.prefetch(this.options.prefetch);
      held.channel = channel;
      await channel.consume(queueName(held.partition), (message) => this.delivered(held, channel, message), { noAck: false });
    } catch (err) {
      if (held.channel) {
        const failed = held.channel;
        held.channel = undefined;
        await failed.close().catch(() => undefined);
      }
      this.log.warn({ partition: held.partition, err: this.connection.describe(err) }, 'cannot consume the partition queue');
      this.retryLater(held, model);
      return;
    }
    if (held.cancelled) await this.closeChannel(held);
  }

  private delivered(held: Held, channel: Channel, message: ConsumeMessage | null): void {
    if (held.channel !== channel || held.cancelled) return;
    if (message === null) {
      // The broker cancelled the consumer (queue deleted, leader moved): consume again later.
      this.log.warn({ partition: held.partition }, 'RabbitMQ cancelled the partition consumer');
      void this.closeChannel(held).then(() => this.retryLater(held, this.connection.model()));
      return;
    }
    held.buffer.push({ message, channel });
    // The worker runs until the buffer is empty; deliveries meanwhile join its buffer.
    if (!held.working) held.worker = this.work(held);
  }

  /**
   * Hands the buffer to the handler until it is empty. `working` is cleared in the same turn as
   * the loop sees the buffer empty (a `finally` of this function, no await between), so a
   * delivery never waits behind a worker that has ended.
   */
  private async work(held: Held): Promise<void> {
    held.working = true;
    try {
      for (;;) {
        if (held.cancelled || held.buffer.length === 0) return;
        if (!(await this.next(held))) return;
      }
    } catch (err) {
      this.log.error({ partition: held.partition, err }, 'partition worker failed');
    } finally {
      held.working = false;
    }
  }

  /** One batch: false when the partition must stop for now (handler failure, cancel). */
  private async next(held: Held): Promise<boolean> {
    const channel = held.channel;
    const batch = held.buffer.splice(0, held.maxBatch);
    if (!channel || batch[0]!.channel !== channel) {
      // Deliveries of a closed channel: the broker returns them to the queue.
      held.buffer = held.buffer.filter((d) => d.channel === channel);
      return true;
    }
    const messages: PartitionMessage[] = [];
    for (const delivery of batch) {
      try {
        messages.push(decodeMessage(delivery.message.content));
      } catch (err) {
        held.bad += 1;
        this.log.warn({ partition: held.partition, bytes: delivery.message.content.length, err: (err as Error).message }, 'dropped an invalid partition message');
      }
    }
    try {
      if (messages.length > 0) await held.handler(messages);
    } catch (err) {
      held.failures += 1;
      const delay = Math.min(this.options.retryInitialMs * 2 ** (held.failures - 1), this.options.retryMaxMs);
      this.log.warn({ partition: held.partition, failures: held.failures, retryInMs: delay, err }, 'partition handler failed; its messages go back to the queue');
      held.buffer = [];
      await this.sleep(held, delay);
      if (held.cancelled) return false;
      // Returns every unacked message of the partition, in order; then consume again.
      await this.closeChannel(held);
      this.retryLater(held, this.connection.model(), 0);
      return false;
    }
    held.failures = 0;
    if (held.channel === channel) {
      channel.ack(batch[batch.length - 1]!.message, true);
      held.handled += batch.length;
    }
    return true;
  }

  private sleep(held: Held, ms: number): Promise<void> {
    return new Promise<void>((resolve) => {
      const timer = setTimeout(done, ms);
      function done() {
        clearTimeout(timer);
        held.wake = undefined;
        resolve();
      }
      held.wake = done;
    });
  }

  private channelClosed(held: Held, channel: Channel, model: ChannelModel): void {
    if (held.channel !== channel) return;
    held.channel = undefined;
    held.buffer = [];
    // Closed by the broker while the connection stays up: consume again after a pause.
    if (!held.cancelled && this.connection.model() === model) this.retryLater(held, model);
  }

  /** Forgets the channel of a lost connection; its unacked messages are the broker's again. */
  private detach(held: Held): void {
    held.channel = undefined;
    held.buffer = [];
  }

  private async closeChannel(held: Held): Promise<void> {
    const channel = held.channel;
    held.channel = undefined;
    held.buffer = [];
    if (channel) await channel.close().catch(() => undefined);
  }

  private retryLater(held: Held, model: ChannelModel | undefined, delayMs = this.options.retryInitialMs): void {
    if (held.cancelled || !model || this.held.get(held.partition) !== held) return;
    clearTimeout(held.retryTimer);
    held.retryTimer = setTimeout(() => {
      held.retryTimer = undefined;
      if (this.connection.model() === model) void this.open(held);
    }, delayMs);
  }
}
