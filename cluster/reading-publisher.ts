/**
 * Publishes partition messages with publisher confirms: `publish()` resolves only when RabbitMQ
 * has the message (for a quorum queue: on a majority of its replicas) and rejects, with a
 * retryable AmqpError, as soon as that cannot be had (no connection, a broker alarm, a nack, the
 * channel closing, no confirm in time) so that the caller refuses the reading and its device
 * sends it again.
 *
 * Many publishes are in flight at once on one confirm channel; the broker confirms them in
 * batches (`multiple`), so no publish waits for another. When the socket's buffer is full
 * (`publish()` returned false) further messages wait in order for 'drain'.
 */
import type { ChannelModel, ConfirmChannel, Message } from 'amqplib';
import type { Logger } from '../lib/logger.js';
import type { AmqpConnection } from './amqp-connection.js';
import { AmqpError, AMQP_ERROR_CODES } from './amqp-errors.js';
import { encodeMessage, type PartitionMessage } from './messages.js';
import { queueName } from './partitions.js';

export interface ReadingPublisherOptions {
  logger: Logger;
  /** A publish not confirmed within this rejects with AMQP_TIMEOUT. */
  confirmTimeoutMs?: number;
  /** Publishes awaiting confirms (or drain) beyond this are refused at once with AMQP_OVERLOADED. */
  maxInFlight?: number;
  /** Pause before reopening a channel the broker closed while the connection stayed up. */
  channelRetryMs?: number;
}

export const DEFAULT_PUBLISHER_OPTIONS = {
  confirmTimeoutMs: 10_000,
  maxInFlight: 20_000,
  channelRetryMs: 500,
} as const;

export interface PublisherStats {
  /** Published and confirmed by the broker. */
  confirmed: number;
  /** Refused or failed (any AmqpError). */
  failed: number;
  /** Awaiting their confirm or drain now. */
  inFlight: number;
}

interface Pending {
  id: number;
  partition: number;
  bytes: Buffer;
  resolve: () => void;
  reject: (error: AmqpError) => void;
  timer: NodeJS.Timeout;
  settled: boolean;
  /** The broker returned it as unroutable (basic.return comes before its ack). */
  returned: boolean;
}

export class ReadingPublisher {
  private readonly options: Required<Omit<ReadingPublisherOptions, 'logger'>>;
  private readonly log: Logger;
  private channel: ConfirmChannel | undefined;
  /** Set while the socket buffer is full: new messages queue in `waiting`. */
  private draining = false;
  private readonly waiting: Pending[] = [];
  /** Sent, awaiting their confirm, by message id. */
  private readonly unconfirmed = new Map<number, Pending>();
  private nextId = 1;
  private started = false;
  private opening: Promise<void> | undefined;
  private retryTimer: NodeJS.Timeout | undefined;
  private unsubscribe: Array<() => void> = [];
  private counts = { confirmed: 0, failed: 0 };

  constructor(
    private readonly connection: AmqpConnection,
    options: ReadingPublisherOptions,
  ) {
    this.options = { ...DEFAULT_PUBLISHER_OPTIONS, ...options };
    this.log = options.logger;
  }

  /** Opens the confirm channel now (if connected) and after every reconnection. */
  async start(): Promise<void> {
    if (this.started) return;
    this.started = true;
    this.unsubscribe = [
      this.connection.onConnected((model) => void this.open(model)),
      this.connection.onDisconnected((err) => {
        this.channel = undefined;
        this.failAll(`the connection to RabbitMQ was lost: ${this.connection.describe(err)}`);
      }),
    ];
    const model = this.connection.model();
    if (model) await this.open(model);
  }

  /** Waits (bounded by the confirm timeout) for messages in flight, then closes the channel. */
  async stop(): Promise<void> {
    if (!this.started) return;
    this.started = false;
    for (const off of this.unsubscribe) off();
    this.unsubscribe = [];
    clearTimeout(this.retryTimer);
    await this.opening?.catch(() => undefined);
    const inFlight = [...this.waiting, ...this.unconfirmed.values()];
    await Promise.all(inFlight.map((p) => new Promise<void>((r) => (p.settled ? r() : void wrapSettle(p, r)))));
    const channel = this.channel;
    this.channel = undefined;
    await channel?.close().catch(() => undefined);
  }

  /** Resolves when the broker confirmed `message` into partition `partition`'s queue. */
  publish(partition: number, message: PartitionMessage): Promise<void> {
    let bytes: Buffer;
    try {
      queueName(partition);
      bytes = encodeMessage(message);
    } catch (err) {
      this.counts.failed += 1;
      return Promise.reject(err);
    }
    const refusal = this.refusal();
    if (refusal) {
      this.counts.failed += 1;
      return Promise.reject(refusal);
    }
    return new Promise<void>((resolve, reject) => {
      const pending: Pending = {
        id: this.nextId++,
        partition,
        bytes,
        resolve,
        reject,
        settled: false,
        returned: false,
        timer: setTimeout(
          () => this.settle(pending, new AmqpError(AMQP_ERROR_CODES.TIMEOUT, `RabbitMQ did not confirm a message for partition ${partition} within ${this.options.confirmTimeoutMs} ms`)),
          this.options.confirmTimeoutMs,
        ),
      };
      if (this.draining) this.waiting.push(pending);
      else this.send(pending);
    });
  }

  stats(): PublisherStats {
    return { ...this.counts, inFlight: this.waiting.length + this.unconfirmed.size };
  }

  /** Why a publish must be refused right now, if it must. */
  private refusal(): AmqpError | undefined {
    if (!this.started) return new AmqpError(AMQP_ERROR_CODES.STOPPED, 'the publisher is stopped');
    const status = this.connection.status();
    if (!status.connected || !this.channel) return new AmqpError(AMQP_ERROR_CODES.UNAVAILABLE, `RabbitMQ is not reachable${status.error ? `: ${status.error}` : ''}`);
    if (status.blocked) return new AmqpError(AMQP_ERROR_CODES.BLOCKED, `RabbitMQ blocks publishers: ${status.blocked}`);
    if (this.waiting.length + this.unconfirmed.size >= this.options.maxInFlight)
      return new AmqpError(AMQP_ERROR_CODES.OVERLOADED, `${this.options.maxInFlight} messages await their confirms already`);
    return undefined;
  }

  private send(pending: Pending): void {
    const channel = this.channel;
    if (!channel) return this.settle(pending, new AmqpError(AMQP_ERROR_CODES.CHANNEL_CLOSED, 'the channel to RabbitMQ closed'));
    this.unconfirmed.set(pending.id, pending);
    let writable: boolean;
    try {
      writable = channel.sendToQueue(
        queueName(pending.partition),
        pending.bytes,
        { persistent: true, mandatory: true, contentType: 'application/json', messageId: String(pending.id) },
        (err: unknown) => {
          this.unconfirmed.delete(pending.id);
          // amqplib calls back with 'message nacked' for a basic.nack, with 'channel closed' for the rest.
          if (err)
            this.settle(
              pending,
              err instanceof Error && err.message === 'message nacked'
                ? new AmqpError(AMQP_ERROR_CODES.NACKED, `RabbitMQ refused a message for partition ${pending.partition}`)
                : new AmqpError(AMQP_ERROR_CODES.CHANNEL_CLOSED, `the channel to RabbitMQ closed before the confirm of a message for partition ${pending.partition}`),
            );
          else if (pending.returned) this.settle(pending, new AmqpError(AMQP_ERROR_CODES.UNROUTABLE, `RabbitMQ has no queue ${queueName(pending.partition)}`));
          else this.settle(pending);
        },
      );
    } catch (err) {
      this.unconfirmed.delete(pending.id);
      return this.settle(pending, new AmqpError(AMQP_ERROR_CODES.CHANNEL_CLOSED, `cannot publish to RabbitMQ: ${this.connection.describe(err)}`, { cause: err }));
    }
    if (!writable) this.draining = true;
  }

  private onDrain(channel: ConfirmChannel): void {
    if (channel !== this.channel) return;
    this.draining = false;
    while (!this.draining && this.waiting.length > 0) {
      const next = this.waiting.shift()!;
      if (!next.settled) this.send(next);
    }
  }

  private settle(pending: Pending, error?: AmqpError): void {
    if (pending.settled) return;
    pending.settled = true;
    clearTimeout(pending.timer);
    this.unconfirmed.delete(pending.id);
    if (error) {
      this.counts.failed += 1;
      pending.reject(error);
    } else {
      this.counts.confirmed += 1;
      pending.resolve();
    }
  }

  private failAll(message: string): void {
    const all = [...this.waiting.splice(0), ...this.unconfirmed.values()];
    this.unconfirmed.clear();
    this.draining = false;
    for (const pending of all) this.settle(pending, new AmqpError(AMQP_ERROR_CODES.CHANNEL_CLOSED, message));
  }

  /** Opens the channel for `model`, after any opening still in progress (which may be for a lost connection). */
  private open(model: ChannelModel): Promise<void> {
    const opening = (this.opening ?? Promise.resolve())
      .then(() => this.openChannel(model))
      .finally(() => {
        if (this.opening === opening) this.opening = undefined;
      });
    this.opening = opening;
    return opening;
  }

  private async openChannel(model: ChannelModel): Promise<void> {
    if (!this.started || this.connection.model() !== model || this.channel) return;
    let channel: ConfirmChannel;
    try {
      channel = await model.createConfirmChannel();
    } catch (err) {
      this.log.warn({ err: this.connection.describe(err) }, 'cannot open the publish channel');
      this.retryOpen(model);
      return;
    }
    if (!this.started || this.connection.model() !== model) {
      await channel.close().catch(() => undefined);
      return;
    }
    channel.on('error', (err: Error) => this.log.warn({ err: this.connection.describe(err) }, 'publish channel error'));
    channel.on('drain', () => this.onDrain(channel));
    channel.on('return', (message: Message) => {
      const pending = this.unconfirmed.get(Number(message.properties.messageId));
      if (pending) pending.returned = true;
    });
    channel.on('close', () => {
      if (this.channel !== channel) return;
      this.channel = undefined;
      this.failAll('the channel to RabbitMQ closed before the confirm');
      if (this.started && this.connection.model() === model) this.retryOpen(model);
    });
    this.channel = channel;
    this.draining = false;
  }

  private retryOpen(model: ChannelModel): void {
    clearTimeout(this.retryTimer);
    this.retryTimer = setTimeout(() => void this.open(model), this.options.channelRetryMs);
  }
}

/** Calls `done` once `pending` settles (either way). */
function wrapSettle(pending: Pending, done: () => void): void {
  const { resolve, reject } = pending;
  pending.resolve = () => {
    resolve();
    done();
  };
  pending.reject = (error) => {
    reject(error);
    done();
  };
}
