/**
 * External-broker mode: Watchpost is an MQTT client of mosquitto, EMQX or HiveMQ, which own
 * device authentication and ACLs. With `shared_group`, subscriptions use `$share/<group>/` so
 * several Watchpost instances split the load.
 *
 * Acknowledgements: the session is persistent (`clean: false`, stable client id) and a QoS 1
 * message is PUBACKed to the broker only once its readings are durable in the spool. Until then
 * the broker keeps the message, and sends it again if Watchpost dies or the connection drops.
 *
 * Pipelining: mqtt.js hands inbound PUBLISHes to `handleMessage` one at a time and sends the
 * PUBACK when it calls back, so waiting there would store one message per fdatasync. Instead
 * `handleMessage` starts storing the message and calls back at once with an error, which tells
 * mqtt.js not to send the PUBACK itself (`handlers/publish.js`: on an error it moves on to the
 * next packet without acknowledging); `OrderedAcks` sends the PUBACK once the message is stored,
 * in arrival order. So up to `max_inflight` messages (fewer if the broker limits unacknowledged
 * messages per client: EMQX `max_inflight`, mosquitto `max_inflight_messages`) are stored at
 * once and the spool commits them in groups. Beyond `max_inflight` the callback waits, which
 * stops mqtt.js reading the socket (TCP backpressure).
 *
 * Why not several subscriber connections per instance instead (each on `$share/...`, so the
 * broker spreads messages over them)? Measured, one pipelined connection already commits
 * 100–500 messages per fdatasync, and each extra connection is one more persistent session to
 * provision and, when their number shrinks, to orphan with queued messages at the broker.
 *
 * When the spool is full the message is tried again (with backoff) and not acknowledged; the
 * acknowledgements behind it wait too, the broker's in-flight window fills and it queues for us
 * (size its per-client queue for the longest outage: mosquitto `max_queued_messages`).
 *
 * When handling a message fails (the handler throws: a bug, or a part that cannot take it
 * now), it is tried again the same way, up to HANDLER_ATTEMPTS times, holding the
 * acknowledgements behind it. If it still fails it is released without an acknowledgement:
 * its in-flight slot is freed and the PUBACKs behind it go out, so one bad message does not
 * stop the rest. The broker still holds it; `redeliverAfterMs` later Watchpost drops the
 * connection and reconnects on the same session, and the broker delivers it (and whatever else
 * was not yet acknowledged) again. So it is eventually stored or keeps failing loudly, never
 * acknowledged unstored, and released messages never fill the broker's in-flight window.
 */
import mqtt, { type IClientOptions, type IPublishPacket, type MqttClient } from 'mqtt';
import { hostname } from 'node:os';
import type { Logger } from '../lib/logger.js';
import type { ExternalBrokerConfig } from './config.js';
import type { InboundHandlers, MessageBus, PublishOptions } from './message-bus.js';
import { parseTopic, topics } from './topics.js';
import { loadTls } from './tls.js';
import { OrderedAcks } from './ordered-acks.js';
import { isSparkplugTopic, parseSparkplugTopic } from './sparkplug/topics.js';

export interface ExternalBrokerDeps {
  config: ExternalBrokerConfig;
  handlers: InboundHandlers;
  logger: Logger;
  /** After a message is released unacknowledged, reconnect this much later so that the broker delivers it again (ms). */
  redeliverAfterMs?: number;
  /** More filters to subscribe to (the Sparkplug host's spBv1.0/{group}/+/{edge}/#), not shared between instances. */
  subscriptions?: string[];
  /** The connection's last will (the Sparkplug host's STATE offline). */
  will?: { topic: string; payload: string; qos: 0 | 1; retain: boolean };
}

/** Backoff between attempts to store a message the spool refused, or whose handling failed. */
const STORE_RETRY_MIN_MS = 250;
const STORE_RETRY_MAX_MS = 5000;
/** Attempts at a message whose handling fails (250 + 500 + 1000 ms of backoff) before it is released unacknowledged. */
const HANDLER_ATTEMPTS = 4;
export const DEFAULT_REDELIVER_AFTER_MS = 10_000;

/** How a message ended: acknowledge it (stored, or refused for good), or release it unacknowledged. */
type MessageOutcome = 'done' | 'release';

/**
 * Passed to mqtt.js's `handleMessage` callback for a QoS 1 message whose PUBACK Watchpost sends
 * itself once the message is stored; mqtt.js then sends none.
 */
const PUBACK_DEFERRED = Object.assign(new Error('PUBACK deferred until the message is stored'), { code: 'WATCHPOST_PUBACK_DEFERRED' });

/** The one mqtt.js internal used here: `_sendPacket` writes a packet (mqtt.js's own handlers call it so). */
interface PacketSender {
  _sendPacket(packet: { cmd: 'puback'; messageId: number }, cb?: (err?: Error) => void): void;
}

export class ExternalBroker implements MessageBus {
  private client?: MqttClient;
  private readonly log: Logger;
  private stopping = false;
  /** Messages between handing over to storage and its answer (not those waiting to retry). */
  private storing = 0;
  private whenIdle?: () => void;

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
      clientId:
        config.client_id ??
        `watchpost-${hostname()
          .replace(/[^A-Za-z0-9_.-]/g, '-')
          .slice(0, 40)}`,
      clean: false,
      reconnectPeriod: 2000,
      connectTimeout: 10_000,
      // mqtt.js calls its `debug` logger several times per message, ~3 % of the CPU even when
      // disabled; keep it only when DEBUG asks for it (DEBUG=mqttjs*).
      ...(process.env.DEBUG ? {} : { log: () => undefined }),
      ...(this.deps.will ? { will: { ...this.deps.will, payload: Buffer.from(this.deps.will.payload) } } : {}),
      ...(tls.ca ? { ca: tls.ca } : {}),
      ...(tls.cert && tls.key ? { cert: tls.cert, key: tls.key } : {}),
    };
    const client = mqtt.connect(config.url, options);
    this.client = client;
    this.acceptFrom(client);
    client.on('error', (err) => this.log.error({ err: err.message }, 'external broker error'));
    client.on('reconnect', () => this.log.warn('reconnecting to external broker'));
    client.on('connect', (connack) => {
      this.log.info({ url: config.url.replace(/\/\/[^@/]*@/, '//[redacted]@'), session_present: connack.sessionPresent }, 'connected to external broker');
      client.subscribe([...topics.inbound(config.shared_group), ...(this.deps.subscriptions ?? [])], { qos: 1 }, (err, granted) => {
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
   * Takes every inbound PUBLISH of `client`: starts storing it, lets mqtt.js read the next one at
   * once (up to `max_inflight` unfinished), and PUBACKs QoS 1 messages in arrival order once
   * stored. A lost connection forgets what was not acknowledged: the broker sends it again.
   */
  private acceptFrom(client: MqttClient): void {
    const max = this.deps.config.max_inflight;
    const sender = client as unknown as PacketSender;
    const acks = new OrderedAcks((messageId) => {
      if (!client.connected) return;
      sender._sendPacket({ cmd: 'puback', messageId }, (err) => {
        if (err) this.log.warn({ err: err.message, message_id: messageId }, 'PUBACK not sent; the broker will deliver the message again');
      });
    });
    let connection = 0;
    let inFlight = 0;
    const waiting: Array<() => void> = [];
    let redeliver: ReturnType<typeof setTimeout> | undefined;
    let released = 0;
    client.on('close', () => {
      connection++;
      acks.reset();
      clearTimeout(redeliver);
      redeliver = undefined;
      released = 0;
    });
    /** A message was released unacknowledged: reconnect soon, so the broker delivers it again. */
    const redeliverLater = () => {
      released++;
      if (redeliver) return;
      redeliver = setTimeout(() => {
        redeliver = undefined;
        if (this.stopping || !client.connected) return;
        this.log.warn({ released }, 'reconnecting to the external broker so that it delivers the messages released unacknowledged again');
        // As a network drop would: mqtt.js reconnects on the same session and keeps its own outgoing messages.
        client.stream.destroy();
      }, this.deps.redeliverAfterMs ?? DEFAULT_REDELIVER_AFTER_MS);
      redeliver.unref?.();
    };
    client.handleMessage = (packet, callback) => {
      if (packet.cmd !== 'publish') return callback();
      if (packet.qos === 2) {
        // Never subscribed at QoS 2; should a broker send one, mqtt.js's own QoS 2 flow acknowledges it when stored.
        void this.onReliableMessage(packet.topic, packet.payload as Buffer, packet, () => true).then((outcome) => {
          if (outcome === 'done') callback();
        });
        return;
      }
      const reliable = packet.qos === 1 && packet.messageId !== undefined;
      const release = reliable ? acks.add(packet.messageId!) : undefined;
      const current = connection;
      inFlight++;
      // Never rejects: a failing handler ends in 'release', so the slot and the PUBACKs behind it are always freed.
      void this.onReliableMessage(packet.topic, packet.payload as Buffer, packet, () => current === connection).then((outcome) => {
        inFlight--;
        if (outcome === 'done') release?.();
        else if (release && current === connection) {
          release(false);
          redeliverLater();
        }
        if (inFlight < max) waiting.shift()?.();
      });
      const next = () => (reliable ? callback(PUBACK_DEFERRED) : callback());
      if (inFlight < max) next();
      else waiting.push(next);
    };
  }

  /**
   * A message: resolves 'done' once it may be acknowledged (stored, or rejected for good). While
   * the spool refuses a QoS 1 message, tries again with backoff as long as its connection lasts;
   * a handler that throws gets HANDLER_ATTEMPTS attempts, then 'release'. Never rejects; never
   * resolves once stopping (the broker keeps the message and sends it again on the next
   * connection). A refused QoS 0 message is dropped (the device chose not to have it acknowledged).
   */
  private async onReliableMessage(topic: string, payload: Buffer, packet: IPublishPacket, connectionLasts: () => boolean): Promise<MessageOutcome> {
    let delay = STORE_RETRY_MIN_MS;
    let failures = 0;
    for (;;) {
      if (this.stopping) return new Promise<MessageOutcome>(() => undefined);
      this.storing++;
      let stored = false;
      try {
        stored = await this.onMessage(topic, payload);
      } catch (err) {
        failures++;
        const fields = { err: (err as Error).message, topic: topic.slice(0, 200), message_id: packet.messageId, attempt: failures };
        if (failures >= HANDLER_ATTEMPTS || packet.qos === 0) {
          this.log.error(fields, 'message handling keeps failing; released without acknowledgement (the broker delivers it again)');
          return 'release';
        }
        if (failures === 1) this.log.error(fields, 'message handling failed; holding the acknowledgement and retrying');
      } finally {
        if (--this.storing === 0) this.whenIdle?.();
      }
      if (stored || (packet.qos === 0 && failures === 0) || !connectionLasts()) return 'done';
      if (delay === STORE_RETRY_MIN_MS && failures === 0) {
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
    if (isSparkplugTopic(topic)) {
      const sparkplug = parseSparkplugTopic(topic);
      // The broker's ACLs decide who publishes these; commands are Watchpost's own, echoed back.
      return sparkplug && handlers.sparkplug ? handlers.sparkplug({}, sparkplug, topic, payload) : true;
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

  publish(topic: string, payload: string | Buffer, options: PublishOptions = {}): void {
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
    // Messages being stored finish (the spool commits within milliseconds) and are acknowledged
    // before the connection ends, so the broker does not send them again; at most 2 s.
    if (this.storing > 0) {
      let timer: ReturnType<typeof setTimeout> | undefined;
      await new Promise<void>((resolve) => {
        this.whenIdle = resolve;
        timer = setTimeout(resolve, 2000);
      });
      clearTimeout(timer);
      this.whenIdle = undefined;
    }
    await new Promise((resolve) => setImmediate(resolve));
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
