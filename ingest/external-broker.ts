/**
 * External-broker mode: Watchpost is an MQTT client of mosquitto, EMQX or HiveMQ, which own
 * device authentication and ACLs. With `shared_group`, subscriptions use `$share/<group>/` so
 * several Watchpost instances split the load.
 *
 * Acknowledgements: the session is persistent (`clean: false`, stable client id) and a QoS 1
 * message is PUBACKed to the broker only once its readings are durable in the spool: mqtt.js
 * sends the PUBACK when `handleMessage` calls back (its backpressure hook; `customHandleAcks`
 * exists only for MQTT 5). Until then the broker keeps the message, and resends it if Watchpost dies.
 * When the spool is full the message is tried again (with backoff) and not acknowledged; mqtt.js
 * handles inbound messages one at a time, so consumption pauses and the broker queues for us
 * (size its per-client queue for the longest outage: mosquitto `max_queued_messages`).
 */
import mqtt, { type IClientOptions, type IPublishPacket, type MqttClient } from 'mqtt';
import { hostname } from 'node:os';
import type { Logger } from '../lib/logger.js';
import type { ExternalBrokerConfig } from './config.js';
import type { InboundHandlers, MessageBus, PublishOptions } from './message-bus.js';
import { parseTopic, topics } from './topics.js';
import { loadTls } from './tls.js';

export interface ExternalBrokerDeps {
  config: ExternalBrokerConfig;
  handlers: InboundHandlers;
  logger: Logger;
}

/** Backoff between attempts to store a message the spool refused. */
const STORE_RETRY_MIN_MS = 250;
const STORE_RETRY_MAX_MS = 5000;

export class ExternalBroker implements MessageBus {
  private client?: MqttClient;
  private readonly log: Logger;
  private stopping = false;

  constructor(private readonly deps: ExternalBrokerDeps) {
    this.log = deps.logger.child({ module: 'external-broker' });
  }

  async start(): Promise<void> {
    const { config } = this.deps;
    this.stopping = false;
    const tls = loadTls(config, 'broker');
    const options: IClientOptions = {
      protocolVersion: 4,
      username: config.username,
      password: config.password,
      // A stable client id with a persistent session keeps QoS 1 telemetry queued at the broker
      // while Watchpost restarts. Several instances on one host need their own `client_id`.
      clientId: config.client_id ?? `watchpost-${hostname().replace(/[^A-Za-z0-9_.-]/g, '-').slice(0, 40)}`,
      clean: false,
      reconnectPeriod: 2000,
      connectTimeout: 10_000,
      ...(tls.ca ? { ca: tls.ca } : {}),
      ...(tls.cert && tls.key ? { cert: tls.cert, key: tls.key } : {}),
    };
    const client = mqtt.connect(config.url, options);
    this.client = client;
    // Called for every inbound PUBLISH, one at a time; for QoS 1 the PUBACK is sent when it calls back.
    client.handleMessage = (packet, callback) => {
      if (packet.cmd !== 'publish') return callback();
      const done = () => callback();
      this.onReliableMessage(packet.topic, packet.payload as Buffer, packet).then(done, (err: Error) => {
        this.log.error({ err: err.message, topic: packet.topic.slice(0, 200) }, 'message handling failed; not acknowledged');
      });
    };
    client.on('error', (err) => this.log.error({ err: err.message }, 'external broker error'));
    client.on('reconnect', () => this.log.warn('reconnecting to external broker'));
    client.on('connect', (connack) => {
      this.log.info({ url: config.url.replace(/\/\/[^@/]*@/, '//[redacted]@'), session_present: connack.sessionPresent }, 'connected to external broker');
      client.subscribe(topics.inbound(config.shared_group), { qos: 1 }, (err, granted) => {
        if (err) return this.log.error({ err: err.message }, 'subscribe to external broker failed');
        const refused = (granted ?? []).filter((g) => g.qos === 128);
        if (refused.length > 0) this.log.error({ topics: refused.map((g) => g.topic) }, 'external broker refused subscriptions');
      });
    });
    await new Promise<void>((resolve, reject) => {
      const onConnect = () => {
        client.off('error', onError);
        resolve();
      };
      const onError = (err: Error) => {
        client.off('connect', onConnect);
        client.end(true);
        reject(new Error(`cannot connect to external broker: ${err.message}`));
      };
      client.once('connect', onConnect);
      client.once('error', onError);
    });
  }

  /**
   * A message: resolves once it may be acknowledged (stored, or rejected for good). While the
   * spool refuses a QoS 1 message, tries again with backoff; never resolves once stopping (the
   * broker keeps the message and sends it again on the next connection). A refused QoS 0
   * message is dropped (the device chose not to have it acknowledged).
   */
  private async onReliableMessage(topic: string, payload: Buffer, packet: IPublishPacket): Promise<void> {
    let delay = STORE_RETRY_MIN_MS;
    for (;;) {
      if (this.stopping) return new Promise<void>(() => undefined);
      const stored = await this.onMessage(topic, payload);
      if (stored || packet.qos === 0) return;
      if (delay === STORE_RETRY_MIN_MS) {
        this.log.warn({ topic: topic.slice(0, 200), message_id: packet.messageId }, 'storage refuses readings; holding the acknowledgement and retrying');
      }
      await new Promise((resolve) => setTimeout(resolve, delay));
      delay = Math.min(STORE_RETRY_MAX_MS, delay * 2);
    }
  }

  /** Handles one message; false when storage refused its readings (it must not be acknowledged). */
  private async onMessage(topic: string, payload: Buffer): Promise<boolean> {
    const { handlers, config } = this.deps;
    if (payload.length > config.max_payload_bytes) {
      handlers.rejected({}, topic, { reason: 'too_large', detail: `payload is ${payload.length} bytes; the limit is ${config.max_payload_bytes}` });
      return true;
    }
    const parsed = parseTopic(topic);
    if (parsed.kind === 'telemetry') {
      const outcome = await handlers.telemetry({}, topic, parsed.assetId, parsed.sensorId, payload);
      return outcome.stored;
    }
    if (parsed.kind === 'status') {
      const value = payload.toString('utf8');
      if (value === 'online' || value === 'offline') handlers.status(parsed.deviceId, value);
    }
    return true;
  }

  publish(topic: string, payload: string, options: PublishOptions = {}): void {
    this.client?.publish(topic, payload, { qos: options.qos ?? 0, retain: options.retain ?? false }, (err) => {
      if (err) this.log.error({ topic, err: err.message }, 'publish to external broker failed');
    });
  }

  port(): number | undefined {
    return undefined;
  }

  connected(): boolean {
    return this.client?.connected ?? false;
  }

  async stop(): Promise<void> {
    this.stopping = true;
    const client = this.client;
    this.client = undefined;
    if (!client) return;
    // Gracefully first, so PUBACKs of messages already stored go out (else they are only
    // delivered again: harmless). A message still waiting for storage is never acknowledged:
    // its handler does not call back once stopping. A broker that does not answer gets 3 s.
    let timer: ReturnType<typeof setTimeout> | undefined;
    const graceful = client.endAsync(false).then(() => true);
    const timeout = new Promise<boolean>((resolve) => (timer = setTimeout(() => resolve(false), 3000)));
    const ended = await Promise.race([graceful, timeout]).catch(() => false);
    clearTimeout(timer);
    if (!ended) await client.endAsync(true);
  }
}
