/**
 * The instance's one connection to RabbitMQ. It declares the partition queues (durable quorum
 * queues with a single active consumer) every time it connects, reconnects with bounded backoff
 * when the connection is lost, and reports its state for /healthz without the password.
 *
 * Publisher and consumer open their channels from `model()` and learn of every (re)connection
 * through `onConnected` and of every loss through `onDisconnected`.
 */
import amqp, { type ChannelModel } from 'amqplib';
import type { Logger } from '../lib/logger.js';
import { redactString } from '../lib/logger.js';
import { AmqpError, AMQP_ERROR_CODES } from './amqp-errors.js';
import { allPartitions, queueName } from './partitions.js';

export interface AmqpConnectionOptions {
  /** amqp:// or amqps:// URL with credentials and virtual host. */
  url: string;
  /** The cluster's partition count: queues 0..partitions-1 are declared. */
  partitions: number;
  /** Shown to RabbitMQ as the connection name (management UI, logs). */
  instanceId: string;
  logger: Logger;
  /** How long start() keeps trying to reach the broker before it fails. */
  startTimeoutMs?: number;
  /** Time limit of one connection attempt (TCP, TLS and AMQP handshake). */
  connectTimeoutMs?: number;
  /** AMQP heartbeat: a silent broker is declared lost after about twice this. */
  heartbeatSeconds?: number;
  /** Reconnect backoff: first delay, growth factor, upper bound. */
  reconnectInitialMs?: number;
  reconnectMaxMs?: number;
}

export const DEFAULT_CONNECTION_OPTIONS = {
  startTimeoutMs: 15_000,
  connectTimeoutMs: 5_000,
  heartbeatSeconds: 10,
  reconnectInitialMs: 200,
  reconnectMaxMs: 5_000,
} as const;

/** The arguments of every partition queue; a queue that exists with others is a setup error. */
export const PARTITION_QUEUE_ARGUMENTS = { 'x-queue-type': 'quorum', 'x-single-active-consumer': true } as const;

export interface AmqpStatus {
  connected: boolean;
  /** Since when (epoch ms) the connection is in this state. */
  since: number;
  /** Why it is not connected (or why the last attempt failed); never a password. */
  error?: string;
  /** The broker publishes are refused by (a resource alarm), when it blocks. */
  blocked?: string;
  /** The URL with its userinfo redacted. */
  url: string;
}

type ConnectedListener = (model: ChannelModel) => void;
type DisconnectedListener = (error: Error) => void;

/** `amqp://user:pass@host:5672/vh` -> `amqp://[redacted]@host:5672/vh`. */
export function redactUrl(url: string): string {
  return redactString(url);
}

/** host:port of an AMQP URL, with the default port of its scheme, for error messages. */
export function brokerAddress(url: string): string {
  try {
    const parsed = new URL(url);
    const port = parsed.port || (parsed.protocol === 'amqps:' ? '5671' : '5672');
    return `${parsed.hostname}:${port}`;
  } catch {
    return '(an invalid URL)';
  }
}

export class AmqpConnection {
  private readonly options: Required<AmqpConnectionOptions>;
  private readonly log: Logger;
  private readonly connectUrl: string;
  private readonly address: string;
  private readonly password: string;
  private readonly user: string;
  private current: ChannelModel | undefined;
  private state: AmqpStatus;
  private stopped = true;
  private reconnectTimer: NodeJS.Timeout | undefined;
  private reconnectAttempt = 0;
  private connecting: Promise<void> | undefined;
  private readonly connectedListeners = new Set<ConnectedListener>();
  private readonly disconnectedListeners = new Set<DisconnectedListener>();

  constructor(options: AmqpConnectionOptions) {
    this.options = { ...DEFAULT_CONNECTION_OPTIONS, ...options };
    this.log = options.logger;
    const parsed = new URL(options.url);
    if (parsed.protocol !== 'amqp:' && parsed.protocol !== 'amqps:') throw new Error(`the AMQP URL must start with amqp:// or amqps://, not ${parsed.protocol}//`);
    if (!parsed.searchParams.has('heartbeat')) parsed.searchParams.set('heartbeat', String(this.options.heartbeatSeconds));
    this.connectUrl = parsed.toString();
    this.password = decodeURIComponent(parsed.password);
    this.user = decodeURIComponent(parsed.username) || 'guest';
    this.address = brokerAddress(options.url);
    this.state = { connected: false, since: Date.now(), url: redactUrl(options.url) };
  }

  /** Connects and declares the queues; rejects, naming host:port, if that fails for startTimeoutMs. */
  async start(): Promise<void> {
    this.stopped = false;
    const deadline = Date.now() + this.options.startTimeoutMs;
    let delay = this.options.reconnectInitialMs;
    for (;;) {
      try {
        await this.connectOnce();
        return;
      } catch (err) {
        const setup = err instanceof AmqpError && err.code === AMQP_ERROR_CODES.QUEUE_SETUP;
        if (this.stopped) throw new AmqpError(AMQP_ERROR_CODES.STOPPED, 'the AMQP connection was stopped while starting');
        const refused = this.loginRefusal(err);
        if (setup || refused || Date.now() + delay > deadline) {
          this.stopped = true;
          if (setup) throw err;
          if (refused) throw refused;
          throw new AmqpError(AMQP_ERROR_CODES.UNAVAILABLE, `cannot reach RabbitMQ at ${this.address}: ${this.describe(err)}`, { cause: err });
        }
        await new Promise((r) => setTimeout(r, delay));
        delay = Math.min(delay * 2, this.options.reconnectMaxMs);
      }
    }
  }

  /** Closes the connection; no reconnect after this. */
  async stop(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.reconnectTimer);
    this.reconnectTimer = undefined;
    await this.connecting?.catch(() => undefined);
    const model = this.current;
    this.current = undefined;
    if (model) {
      await closeWithin(model, this.options.connectTimeoutMs);
      this.setState({ connected: false, error: 'stopped' });
    }
  }

  /** The open connection, or undefined while disconnected. */
  model(): ChannelModel | undefined {
    return this.current;
  }

  status(): AmqpStatus {
    return { ...this.state };
  }

  get partitions(): number {
    return this.options.partitions;
  }

  /** Called after every (re)connection, once the queues are declared. Returns an unsubscribe. */
  onConnected(listener: ConnectedListener): () => void {
    this.connectedListeners.add(listener);
    return () => this.connectedListeners.delete(listener);
  }

  /** Called whenever an open connection is lost. Returns an unsubscribe. */
  onDisconnected(listener: DisconnectedListener): () => void {
    this.disconnectedListeners.add(listener);
    return () => this.disconnectedListeners.delete(listener);
  }

  /** An error message without the password, naming the broker. */
  describe(error: unknown): string {
    let message = error instanceof Error ? error.message || error.name : String(error);
    if (error instanceof AggregateError && error.errors.length > 0) message = error.errors.map((e: unknown) => (e instanceof Error ? e.message : String(e))).join('; ');
    if (this.password) message = message.split(this.password).join('[redacted]');
    return redactString(message);
  }

  /** A clear error when the broker answered but refused the login or the virtual host. */
  private loginRefusal(err: unknown): AmqpError | undefined {
    const message = this.describe(err);
    if (/ACCESS.REFUSED|\b403\b/.test(message)) {
      return new AmqpError(
        AMQP_ERROR_CODES.LOGIN_REFUSED,
        `RabbitMQ at ${this.address} refused the login of user "${this.user}" (check the user and password of cluster.amqp_url): ${message}`,
        { cause: err },
      );
    }
    if (/NOT.ALLOWED|\b530\b/.test(message)) {
      return new AmqpError(AMQP_ERROR_CODES.LOGIN_REFUSED, `RabbitMQ at ${this.address} refused the virtual host of cluster.amqp_url for user "${this.user}": ${message}`, { cause: err });
    }
    return undefined;
  }

  private connectOnce(): Promise<void> {
    const attempt = this.openAndDeclare().finally(() => {
      if (this.connecting === attempt) this.connecting = undefined;
    });
    this.connecting = attempt;
    return attempt;
  }

  private async openAndDeclare(): Promise<void> {
    let model: ChannelModel;
    try {
      model = await amqp.connect(this.connectUrl, {
        timeout: this.options.connectTimeoutMs,
        clientProperties: { connection_name: `watchpost ${this.options.instanceId}` },
      });
    } catch (err) {
      this.setState({ connected: false, error: this.describe(err) });
      throw err;
    }
    // An 'error' is always followed by 'close'; listening keeps it from being thrown.
    model.on('error', (err: Error) => this.log.warn({ err: this.describe(err) }, 'AMQP connection error'));
    try {
      await this.declareQueues(model);
    } catch (err) {
      await model.close().catch(() => undefined);
      this.setState({ connected: false, error: this.describe(err) });
      throw err;
    }
    if (this.stopped) {
      await model.close().catch(() => undefined);
      throw new AmqpError(AMQP_ERROR_CODES.STOPPED, 'the AMQP connection was stopped while connecting');
    }
    this.current = model;
    this.reconnectAttempt = 0;
    model.on('close', (err?: Error) => this.lost(model, err));
    model.on('blocked', (reason: string) => {
      this.state = { ...this.state, blocked: reason || 'blocked' };
      this.log.warn({ reason }, 'RabbitMQ blocks publishers');
    });
    model.on('unblocked', () => {
      const { blocked: _blocked, ...rest } = this.state;
      this.state = rest;
      this.log.info('RabbitMQ unblocks publishers');
    });
    this.setState({ connected: true });
    this.log.info({ broker: this.address, partitions: this.options.partitions }, 'connected to RabbitMQ');
    for (const listener of this.connectedListeners) {
      try {
        listener(model);
      } catch (err) {
        this.log.error({ err }, 'AMQP connected listener failed');
      }
    }
  }

  private async declareQueues(model: ChannelModel): Promise<void> {
    const channel = await model.createChannel();
    channel.on('error', () => undefined);
    let queue = '';
    try {
      for (const p of allPartitions(this.options.partitions)) {
        queue = queueName(p);
        await channel.assertQueue(queue, { durable: true, arguments: { ...PARTITION_QUEUE_ARGUMENTS } });
      }
      await channel.close();
    } catch (err) {
      throw new AmqpError(
        AMQP_ERROR_CODES.QUEUE_SETUP,
        `cannot declare the partition queue ${queue} on RabbitMQ at ${this.address} (a durable quorum queue with a single active consumer; a queue of that name with other arguments must be deleted): ${this.describe(err)}`,
        { cause: err },
      );
    }
  }

  private lost(model: ChannelModel, err: Error | undefined): void {
    if (this.current !== model) return;
    this.current = undefined;
    const error = err ?? new Error('connection closed');
    const { blocked: _blocked, ...rest } = this.state;
    this.state = rest;
    this.setState({ connected: false, error: this.describe(error) });
    if (!this.stopped) this.log.warn({ broker: this.address, err: this.describe(error) }, 'lost the connection to RabbitMQ');
    for (const listener of this.disconnectedListeners) {
      try {
        listener(error);
      } catch (e) {
        this.log.error({ err: e }, 'AMQP disconnected listener failed');
      }
    }
    this.scheduleReconnect();
  }

  private scheduleReconnect(): void {
    if (this.stopped || this.reconnectTimer) return;
    this.reconnectAttempt += 1;
    const base = Math.min(this.options.reconnectInitialMs * 2 ** (this.reconnectAttempt - 1), this.options.reconnectMaxMs);
    const delay = Math.round(base * (0.8 + Math.random() * 0.2));
    this.reconnectTimer = setTimeout(() => {
      this.reconnectTimer = undefined;
      if (this.stopped) return;
      this.connectOnce().catch((err: unknown) => {
        this.log.warn({ broker: this.address, attempt: this.reconnectAttempt, err: this.describe(err) }, 'cannot reconnect to RabbitMQ');
        this.scheduleReconnect();
      });
    }, delay);
  }

  private setState(change: { connected: boolean; error?: string }): void {
    const since = change.connected === this.state.connected ? this.state.since : Date.now();
    const next: AmqpStatus = { connected: change.connected, since, url: this.state.url };
    if (change.error !== undefined) next.error = change.error;
    if (this.state.blocked !== undefined && change.connected) next.blocked = this.state.blocked;
    this.state = next;
  }
}

/** Closes politely, or, when the broker does not answer in time, drops the socket. */
async function closeWithin(model: ChannelModel, ms: number): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  const timedOut = new Promise<'timeout'>((resolve) => (timer = setTimeout(() => resolve('timeout'), ms)));
  const outcome = await Promise.race([
    model.close().then(
      () => 'closed' as const,
      () => 'closed' as const,
    ),
    timedOut,
  ]);
  clearTimeout(timer);
  if (outcome === 'timeout') (model.connection as unknown as { stream?: { destroy(error?: Error): void } }).stream?.destroy(new Error('closed after no answer'));
}
